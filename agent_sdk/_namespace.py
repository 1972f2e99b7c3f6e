"""The namespace an agent or client acts in: the ``namespace`` argument of ``Agent`` and
``Client``, else ``AGENTMESH_NAMESPACE``, else ``default``; sent as the
``agentmesh-namespace`` metadata of every call (``namespace_metadata``).

An agent joins that one namespace and is routed its tasks only; a client sees that
namespace's workflows, executions, tasks and agents, and an id of another answers
``NotFoundError``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from agentmesh.protocol import DEFAULT_NAMESPACE, NAMESPACE_METADATA, NAMESPACE_PATTERN

NAMESPACE_ENV = "AGENTMESH_NAMESPACE"

_NAME = re.compile(NAMESPACE_PATTERN)


def resolve_namespace(namespace: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """``namespace`` when given, else ``AGENTMESH_NAMESPACE`` (unset or empty:
    ``default``). ValueError, naming where it came from, for a malformed name."""
    if namespace is None:
        value, where = environ.get(NAMESPACE_ENV, "") or DEFAULT_NAMESPACE, NAMESPACE_ENV
    else:
        value, where = namespace, "namespace argument"
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"{where}: {value[:80]!r} is not a namespace name (lowercase letters, digits "
            "and '-', 1 to 63, starting and ending with a letter or digit)"
        )
    return value


def namespace_metadata(namespace: str) -> tuple[tuple[str, str], ...]:
    """The call metadata naming ``namespace`` (none for the default: the server's)."""
    if namespace == DEFAULT_NAMESPACE:
        return ()
    return ((NAMESPACE_METADATA, namespace),)
