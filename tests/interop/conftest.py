from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.interop.ljpeer import Receiver, make_pki


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[Callable[..., Receiver]]:
    """Start go-lumber receivers; all are stopped at the end of the test."""
    made: list[Receiver] = []

    def start(*args: str) -> Receiver:
        r = Receiver(tmp_path, *args).start()
        made.append(r)
        return r

    yield start
    for r in made:
        r.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))
