"""Domain errors raised by the coordinator core.

    MeshError
    ├── InvalidArgument      the request itself is wrong
    ├── NotFound             an agent or task id that does not exist
    ├── AlreadyExists
    ├── FailedPrecondition   valid, but the mesh cannot do it now (no capable agent)
    ├── PermissionDenied     the caller cannot prove it is who it says (an agent's secret)
    ├── ResourceExhausted    a queue or limit is full; retry later
    ├── DeadlineExceeded     the caller took too long to say what the protocol requires
    ├── Unimplemented        declared in the protocol, not served by this coordinator
    └── Unavailable          shutting down, starting, or etcd unreachable: retry
        └── NotLeader        a cluster follower: the call belongs at the leader's address
                             (none yet while an election is pending)

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


class DeadlineExceeded(MeshError):
    pass


class Unimplemented(MeshError):
    pass


class Unavailable(MeshError):
    pass


class NotLeader(Unavailable):
    """This replica does not lead. ``leader_address`` is where the call belongs; empty
    while no leader is known (an election is pending: retry shortly)."""

    def __init__(self, message: str, leader_address: str = "") -> None:
        super().__init__(message)
        self.leader_address = leader_address

    @property
    def election_pending(self) -> bool:
        return not self.leader_address
