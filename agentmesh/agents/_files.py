"""Writing files in the workspace, as the build and notion agents do: whole or not at all.

``write_atomic`` writes a temporary sibling and renames it over the target, so a reader
sees the old content or the new, never half; ``write_new`` creates a file only if no file
of that name exists (two tasks racing for it: one wins, the other is told).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename (parents created); the temporary file
    is removed whatever happens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_new(path: Path, content: str) -> bool:
    """Create ``path`` with ``content`` (parents created); False when it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(content)
    except FileExistsError:
        return False
    return True
