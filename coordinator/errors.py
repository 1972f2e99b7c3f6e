"""Domain errors raised by the coordinator core.

    MeshError
    ├── InvalidArgument      the request itself is wrong
    ├── NotFound             an agent or task id that does not exist
    ├── AlreadyExists
    ├── FailedPrecondition   valid, but the mesh cannot do it now (no capable agent)
    ├── PermissionDenied     the caller cannot prove it is who it says (an agent's secret)
    ├── ResourceExhausted    a queue or limit is full; retry later
    └── Unavailable          the coordinator is shutting down

Each maps to exactly one gRPC status code in ``coordinator.api.status``.
"""

from __future__ import annotations


class MeshError(Exception):
    """Base class of every error the coordinator core raises on purpose."""


class InvalidArgument(MeshError):
    pass


class NotFound(MeshError):
    pass


class AlreadyExists(MeshError):
    pass


class FailedPrecondition(MeshError):
    pass


class PermissionDenied(MeshError):
    pass


class ResourceExhausted(MeshError):
    pass


class Unavailable(MeshError):
    pass
