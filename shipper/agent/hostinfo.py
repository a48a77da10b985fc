"""The persistent agent id (``host.*`` comes from the ``add_host_metadata`` processor:
:mod:`shipper.pipeline.processors.hostmeta`)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path


def agent_id(data_path: Path) -> str:
    """The agent's uuid, kept in ``<path.data>/meta.json`` like libbeat does."""
    meta = data_path / "meta.json"
    try:
        with open(meta, encoding="utf-8") as fh:
            value = json.load(fh).get("uuid")
            if isinstance(value, str) and value:
                return value
    except (OSError, ValueError):
        pass
    new = str(uuid.uuid4())
    try:
        data_path.mkdir(parents=True, exist_ok=True)
        tmp = meta.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"uuid": new}, fh)
        os.replace(tmp, meta)
    except OSError:
        pass
    return new
