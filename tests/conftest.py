import sys
from pathlib import Path

# Run against this checkout even when another copy of the package is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pytest_collection_modifyitems(items: list) -> None:
    """Tests marked ``after_live`` run last: they compare what the live tests recorded."""
    last = [i for i in items if i.get_closest_marker("after_live") is not None]
    if last:
        items[:] = [i for i in items if i.get_closest_marker("after_live") is None] + last
