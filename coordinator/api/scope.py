"""The namespace a call acts in: its ``agentmesh-namespace`` metadata, or the default.

Every servicer reads it here (with auth off too: namespaces partition data whether or
not anyone is checked against them); with auth on, the guard has already decided that
the caller may act in it. A name is a DNS label, as Kubernetes namespaces are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import grpc

from agentmesh.protocol import DEFAULT_NAMESPACE, NAMESPACE_METADATA, NAMESPACE_PATTERN
from coordinator.errors import InvalidArgument

_NAMESPACE = re.compile(NAMESPACE_PATTERN)


def requested(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The namespace ``metadata`` names, unchecked (``DEFAULT_NAMESPACE`` without one)."""
    for key, value in metadata or ():
        if key == NAMESPACE_METADATA and isinstance(value, str):
            return value
    return DEFAULT_NAMESPACE


def check(namespace: str) -> str:
    """``namespace`` if it is a namespace name, else InvalidArgument saying what one is."""
    if not _NAMESPACE.fullmatch(namespace):
        raise InvalidArgument(
            f"{NAMESPACE_METADATA}: {namespace[:80]!r} is not a namespace name "
            "(lowercase letters, digits and '-', at most 63)"
        )
    return namespace


def namespace_of(context: grpc.aio.ServicerContext) -> str:
    """The namespace the call acts in (InvalidArgument for a malformed name)."""
    return check(requested(context.invocation_metadata()))
