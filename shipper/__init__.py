"""The agent process: config, CLI, packet loop, publisher, queue, outputs, setup."""
