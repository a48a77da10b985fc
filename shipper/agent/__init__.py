"""The agent: CLI, settings and config loading, the packet loop, beat wiring, logging,
monitoring, the HTTP stats endpoint, ``test output``, host info and version."""
