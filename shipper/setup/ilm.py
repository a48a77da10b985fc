"""The ILM policy (Packetbeat 8.x: ``packetbeat``, hot phase, rollover at 50 GB or 30 days)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shipper.setup.template import Target

DEFAULT_POLICY_NAME = "packetbeat"


class PolicyError(ValueError):
    pass


def default_policy(target: Target | None = None) -> dict[str, Any]:
    # max_primary_shard_size exists since 7.13; older servers only know max_size.
    size_key = "max_primary_shard_size"
    if target is not None and not target.is_opensearch and target.version < (7, 13, 0):
        size_key = "max_size"
    return {"policy": {"phases": {"hot": {"actions": {"rollover": {size_key: "50gb", "max_age": "30d"}}}}}}


def load_policy(policy_file: str, target: Target | None = None) -> dict[str, Any]:
    """``setup.ilm.policy_file`` or the default policy."""
    if not policy_file:
        return default_policy(target)
    try:
        body = json.loads(Path(policy_file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read setup.ilm.policy_file {policy_file}: {exc.strerror}") from exc
    except ValueError as exc:
        raise PolicyError(f"setup.ilm.policy_file {policy_file} is not valid JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("policy"), dict):
        raise PolicyError(f"setup.ilm.policy_file {policy_file} must hold an object with a 'policy' key")
    return body
