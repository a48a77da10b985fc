"""The agent process, in rooms (see ``shipper/README.md``): ``agent`` (CLI, settings, packet loop),
``pipeline`` (envelope, queues, publisher), ``outputs`` (where events go) and ``setup`` (templates,
ILM, dashboards)."""

import protocols  # noqa: F401  (first: protocols.compiled decides where the hot modules load from)
