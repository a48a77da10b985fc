"""What the live tests recorded from real servers, through real Packetbeat 9.3.0 and wirebeat,
with the recording's protocol options and again with every detail turned on (``detailed``).

Runs after every other test (``after_live``; tests/conftest.py moves it last) so that it sees
every recording of the session (``tests/oracle/recordings.py``). One test per protocol wirebeat
decodes: under CI=true a protocol without a live recording fails, so every protocol that lands
must record its live tests through ``live_capture(..., protocol=...)`` or ``record_for_oracle``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from protocols.registry import available
from scripts.pbcompare import Job, Result, default_config, detailed, with_protocols
from tests.helpers import need
from tests.oracle.oracle import compare, explain
from tests.oracle.recordings import RECORDINGS, Recording

pytestmark = [pytest.mark.integration, pytest.mark.after_live]


def _label(r: Recording, variant: str) -> str:
    return f"{r.label} ({variant})"


#: label → the command that repeats one comparison (config written next to the results).
REPRODUCE: dict[str, str] = {}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    if not RECORDINGS:
        return {}
    workdir = Path(tmp_path_factory.mktemp("pbcompare-live"))
    jobs = []
    for i, r in enumerate(RECORDINGS):
        cfg = with_protocols(default_config(), r.protocols)
        for variant, c in (("as recorded", cfg), ("detailed", detailed(cfg))):
            job = Job(r.pcap, c, _label(r, variant))
            path = workdir / f"config-{i}-{variant.replace(' ', '-')}.yml"
            path.write_text(yaml.safe_dump(c), encoding="utf-8")
            REPRODUCE[job.label] = f"scripts/compare-packetbeat -v -c {path} {r.pcap}"
            jobs.append(job)
    _total, per = compare(jobs, workdir, cache=False)
    return per


@pytest.mark.parametrize("protocol", available())
def test_live_recordings_match_packetbeat(protocol: str, results: dict[str, Result]) -> None:
    mine = [r for r in RECORDINGS if protocol in r.types]
    if not mine:
        need(f"a live recording of {protocol} in this session (run the integration tests with it)")
    labels = [_label(r, v) for r in mine for v in ("as recorded", "detailed")]
    failed = {label: results[label] for label in labels if not results[label].ok}
    assert not failed, "".join(
        f"\n== {label}{explain(res)}\nrepeat with: {REPRODUCE[label]}" for label, res in failed.items()
    )
    paired = sum(results[label].counts(protocol).paired for label in labels)
    assert paired > 0, f"no event of Packetbeat's paired in {labels}"
