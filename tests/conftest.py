import sys
from pathlib import Path

# Run against this checkout even when another copy of the package is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
