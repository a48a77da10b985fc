"""What the live tests recorded from real servers, through real Packetbeat 9.3.0 and wirebeat.

Runs after every other test (``after_live``; tests/conftest.py moves it last) so that it sees
every recording of the session (``tests/oracle/recordings.py``). One test per protocol wirebeat
decodes: under CI=true a protocol without a live recording fails, so every protocol that lands
must record its live tests through ``live_capture(..., protocol=...)`` or ``record_for_oracle``."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocols.registry import available
from scripts.pbcompare import Job, Result, default_config, with_protocols
from tests.helpers import need
from tests.oracle.oracle import compare, explain
from tests.oracle.recordings import RECORDINGS

pytestmark = [pytest.mark.integration, pytest.mark.after_live]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    if not RECORDINGS:
        return {}
    base = default_config()
    jobs = [Job(r.pcap, with_protocols(base, r.protocols), r.label) for r in RECORDINGS]
    _total, per = compare(jobs, Path(tmp_path_factory.mktemp("pbcompare-live")))
    return per


@pytest.mark.parametrize("protocol", available())
def test_live_recordings_match_packetbeat(protocol: str, results: dict[str, Result]) -> None:
    mine = [r for r in RECORDINGS if protocol in r.types]
    if not mine:
        need(f"a live recording of {protocol} in this session (run the integration tests with it)")
    failed = {r.label: results[r.label] for r in mine if not results[r.label].ok}
    assert not failed, "".join(f"\n== {label}{explain(res)}" for label, res in failed.items())
    paired = sum(results[r.label].counts(protocol).paired for r in mine)
    assert paired > 0, f"no {protocol} event of Packetbeat's paired in {[r.label for r in mine]}"
