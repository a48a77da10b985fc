"""Everything from frame bytes to event dicts, sans-IO: capture time is the only clock."""

import protocols.compiled  # noqa: F401  (first: it decides where the hot modules load from)
