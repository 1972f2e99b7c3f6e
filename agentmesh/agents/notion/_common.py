"""What the notion agent's modules share: the timestamp pages and rows carry, and
reading an optional string field of a task's input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agentmesh.agents._inputs import bad


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def opt_str(inp: dict[str, Any], key: str) -> str | None:
    """``inp[key]`` when it is a non-empty string, None when absent or empty; BadInput when
    it is not a string."""
    value = inp.get(key)
    if value is not None and not isinstance(value, str):
        raise bad(f"{key}: expected a string")
    return value or None
