"""The suite's side of the Packetbeat comparison (scripts/pbcompare.py does the work)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scripts import pbcompare
from scripts.pbcompare import CompareError, Job, Result
from tests.helpers import need


def packetbeat() -> Path:
    """The pinned Packetbeat 9.3.0, built on first use; without Go the test is skipped
    (fails under CI=true)."""
    try:
        return pbcompare.find_packetbeat()
    except CompareError as exc:
        need(f"Packetbeat {pbcompare.PACKETBEAT_VERSION} (scripts/build-packetbeat: {exc})")
        raise


def compare(jobs: Sequence[Job], workdir: Path, cache: bool = True) -> tuple[Result, dict[str, Result]]:
    """Both tools on every job; Packetbeat's events are cached unless ``cache`` is off (live
    recordings differ every session)."""
    total, per = pbcompare.run_jobs(jobs, binary=packetbeat(), workdir=workdir, cache=cache)
    print()
    print(pbcompare.report(total))
    return total, per


def explain(res: Result) -> str:
    """A failing capture's story: its table and every undocumented difference."""
    return "\n" + pbcompare.report(res) + "\n(see docs/differences.md for how to document a deliberate one)"
