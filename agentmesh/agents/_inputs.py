"""Task-input errors the reference agents share: one ``BadInput`` constructor.

Every agent refuses malformed input the same way, ``TaskError(message, type="BadInput")``,
with a message that names the field first (``"path: must be a string"``).
"""

from __future__ import annotations

from agent_sdk import TaskError

BAD_INPUT = "BadInput"


def bad(message: str) -> TaskError:
    """The ``BadInput`` error for ``message`` (the caller raises it)."""
    return TaskError(message, type=BAD_INPUT)
