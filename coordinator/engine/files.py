"""Definition files for the engine: ``agentmesh.documents`` reads them (shared with the
SDK, so both sides refuse the same files); this turns its refusals into issues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentmesh.documents import DocumentError, read_document
from coordinator.engine.issues import Issue
from coordinator.errors import DefinitionError


def read_definition_file(path: str | Path) -> dict[str, Any]:
    """The document in a ``.json``, ``.yaml`` or ``.yml`` file, not yet parsed (for
    templates). Raises ``DefinitionError`` for a file ``read_document`` refuses (too
    big, malformed, a duplicate key, an alias bomb, not an object), located at
    ``<file name>: line L column C``; ``OSError`` when it cannot be read."""
    try:
        return read_document(path)
    except DocumentError as e:
        raise DefinitionError([Issue(e.location, e.message)]) from None


__all__ = ["read_definition_file"]
