"""Every shared capture through real Packetbeat 9.3.0 and wirebeat: the same events, field for
field, except the differences docs/differences.md documents. Twice: with the shipped config
(every protocol on its default ports, plus the ports Packetbeat's own tests give these captures)
and with every detail turned on (``send_request``/``send_response``, HTTP ``send_all_headers``,
Thrift on the framed transport). Events of protocols wirebeat does not decode yet are reported
as "not built" until the protocol lands (``protocols.registry.available()``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.pbcompare import Job, Result, default_config, detailed
from tests.helpers import SHARED_PCAPS, need
from tests.oracle.oracle import compare, explain

CAPTURES = sorted(p.name for p in SHARED_PCAPS.glob("*.pcap")) if SHARED_PCAPS.is_dir() else []
CONFIGS = {"shipped": default_config(), "detailed": detailed(default_config())}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    if not CAPTURES:
        need(f"shared captures in {SHARED_PCAPS}")
    jobs = [
        Job(SHARED_PCAPS / name, cfg, f"{name} ({variant})")
        for variant, cfg in CONFIGS.items()
        for name in CAPTURES
    ]
    _total, per = compare(jobs, Path(tmp_path_factory.mktemp("pbcompare")))
    return per


def test_there_are_shared_captures() -> None:
    if not CAPTURES:
        need(f"shared captures in {SHARED_PCAPS}")
    assert len(CAPTURES) >= 79


@pytest.mark.parametrize("variant", CONFIGS)
@pytest.mark.parametrize("name", CAPTURES)
def test_capture_matches_packetbeat(name: str, variant: str, results: dict[str, Result]) -> None:
    res = results[f"{name} ({variant})"]
    assert res.ok, explain(res)
