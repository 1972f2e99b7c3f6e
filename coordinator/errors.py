"""Every error the coordinator raises on purpose: one tree, defined here.

    CoordinatorError
    ├── MeshError                a request the coordinator refuses; api/status.py maps each
    │   │                        kind to exactly one gRPC status code
    │   ├── InvalidArgument      the request itself is wrong
    │   ├── NotFound             an agent, task, execution or workflow that does not exist
    │   ├── AlreadyExists
    │   ├── FailedPrecondition   valid, but not possible now (no capable agent, wrong state)
    │   │   └── ServiceRefused   an external service answered a call with an error (4xx)
    │   ├── Unauthenticated      no valid credentials (bearer token, JWT, client certificate)
    │   ├── PermissionDenied     authenticated, but not allowed: a missing permission, a
    │   │                        namespace or capability outside the caller's, a wrong
    │   │                        agent session secret
    │   ├── ResourceExhausted    a queue or limit is full; retry later
    │   │   ├── QuotaExceeded    a namespace's quota (coordinator.quotas)
    │   │   └── SubscriberBehind an event subscriber fell its buffer behind (resume it)
    │   ├── OutOfRange           a position past what exists (an event sequence ahead of
    │   │                        the log)
    │   ├── DeadlineExceeded     the caller took too long to say what the protocol requires
    │   ├── Unimplemented        declared in the protocol, not served by this coordinator
    │   └── Unavailable          shutting down, starting, or etcd unreachable: retry
    │       ├── NotLeader        a cluster follower: the call belongs at the leader's address
    │       │                    (none yet while an election is pending)
    │       ├── LogClosed        the event log ended with its term (resume at the next)
    │       └── ServiceUnavailable  an external service is unreachable, timed out, failing
    │                            (429, 5xx) after its retries, or behind its open breaker
    ├── ConfigError              settings that cannot be used (also a ValueError)
    ├── DefinitionError          a workflow definition with errors; ``issues`` lists them
    │                            (also a ValueError)
    ├── ExpressionError          an expression that does not parse (also a ValueError)
    ├── EvaluationError          an expression that fails on its data (also a ValueError)
    ├── StoreError               the event store could not do what was asked
    │   ├── ConflictError        the write contradicts what is stored; nothing was written
    │   ├── StoreLocked          another process has the SQLite store open
    │   └── StoreUnavailable     etcd could not be reached or had no quorum: retryable; a
    │                            write that raised it may or may not have been applied
    ├── KVError                  the KV (etcd) refused a request
    │   ├── KVUnavailable        no quorum, no reachable endpoint, timeout: retryable
    │   ├── Compacted            a watch's start revision was compacted
    │   └── LeaseNotFound        the lease expired or was revoked
    └── ElectionError            leadership cannot be had or kept
        ├── NotCampaigning       an operation needs an election key we do not hold
        └── Fenced               a write guarded by our election key was refused (or the
                                 session can no longer be trusted): another replica
                                 leads; nothing was written, step down

    └── ListenError              the listen address cannot be bound (also an OSError)
        └── HttpListenError      the HTTP listener's (``http_listen``)

The modules that raise them re-export them (``coordinator.store.StoreError``,
``coordinator.kv.KVError``, ``coordinator.server.ListenError``, ...), so callers may
import them from where they work. Private exceptions that never leave their module
(``_Fail`` in the expression parser, say) are not part of the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


class CoordinatorError(Exception):
    """The root of every error the coordinator raises on purpose."""


# --------------------------------------------------------------------- requests


class MeshError(CoordinatorError):
    """A request the coordinator refuses; ``api.status`` maps it to a gRPC code."""


class InvalidArgument(MeshError):
    """The request itself is wrong; the message says which field and why."""

    pass


class NotFound(MeshError):
    """An agent, task, execution or workflow that does not exist."""

    pass


class AlreadyExists(MeshError):
    """What the request would create exists already (and differs)."""

    pass


class FailedPrecondition(MeshError):
    """Valid, but not possible now: no capable agent, a wrong state."""

    pass


class ServiceRefused(FailedPrecondition):
    """An external service answered a call with an error status (``status``, 4xx but
    429); calling again the same way fails the same way. ``body`` is its answer's start."""

    def __init__(self, message: str, status: int, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class Unauthenticated(MeshError):
    """The call carries no valid credentials (a bearer token, a JWT, a client
    certificate); the message says what was wrong without repeating the secret."""

    pass


class PermissionDenied(MeshError):
    """The caller may not do this: a permission its roles lack, a namespace or a
    capability outside its grant, or an agent's session secret that does not match."""

    pass


class ResourceExhausted(MeshError):
    """A queue or limit is full; retry later."""

    pass


class QuotaExceeded(ResourceExhausted):
    """A namespace is at one of its quotas (``coordinator.quotas``)."""

    def __init__(self, message: str, namespace: str = "", retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.retry_after = retry_after  # a rate quota: when a retry can pass (seconds)


class OutOfRange(MeshError):
    """A position past what exists, e.g. an event sequence ahead of the log."""

    pass


class SubscriberBehind(ResourceExhausted):
    """An event subscriber fell ``buffer`` events behind; ``last`` is the last sequence
    it was sent (it resumes after it, from the store)."""

    def __init__(self, last: int, buffer: int) -> None:
        super().__init__(
            f"subscriber fell more than {buffer} events behind; the last event delivered "
            f"was sequence {last}: resubscribe with from_sequence={last}"
        )
        self.last = last


class DeadlineExceeded(MeshError):
    """The caller took too long to say what the protocol requires (a Hello)."""

    pass


class Unimplemented(MeshError):
    """Declared in the protocol, not served by this coordinator version."""

    pass


class Unavailable(MeshError):
    """Shutting down, starting, or etcd unreachable: nothing was changed; retry."""

    pass


class LogClosed(Unavailable):
    """The event log ended (shutdown, lost leadership); ``last`` is the last sequence
    the subscriber was sent."""

    def __init__(self, reason: str, last: int = 0) -> None:
        super().__init__(
            f"event stream ended: {reason}; resubscribe with from_sequence={last} (the SDK does)"
        )
        self.last = last


class ServiceUnavailable(Unavailable):
    """An external service could not answer: unreachable, timed out, or failing (429,
    5xx: ``status``; 0 when it never answered) after its retries, or its circuit breaker
    is open (``retry_after`` seconds until a probe may go). Retryable."""

    def __init__(self, message: str, status: int = 0, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class NotLeader(Unavailable):
    """This replica does not lead. ``leader_address`` is where the call belongs; empty
    while no leader is known (an election is pending: retry shortly)."""

    def __init__(self, message: str, leader_address: str = "") -> None:
        super().__init__(message)
        self.leader_address = leader_address

    @property
    def election_pending(self) -> bool:
        """No leader is known yet: retry shortly rather than follow an address."""
        return not self.leader_address


# ------------------------------------------------------------ inputs and files


class ConfigError(CoordinatorError, ValueError):
    """Settings that cannot be used; the message names the setting and its source."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in a definition: where (a path such as ``steps[3].next``) and what."""

    location: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class DefinitionError(CoordinatorError, ValueError):
    """A definition cannot be used; ``issues`` holds every problem found, not only the
    first. ``str()`` lists them as ``location: message``, one per line."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(map(str, self.issues)))


# Characters of an expression's source an error's text quotes: a 4 KB expression in
# every one of a thousand issues would make the report megabytes long.
_QUOTED = 160


def _quote(source: str, position: int = 0) -> str:
    """The source, or the part of it around ``position`` with ``…`` for what is cut."""
    if len(source) <= _QUOTED:
        return source
    start = min(max(position - _QUOTED // 2, 0), len(source) - _QUOTED)
    end = start + _QUOTED
    return ("…" if start else "") + source[start:end] + ("…" if end < len(source) else "")


class ExpressionError(CoordinatorError, ValueError):
    """The source does not parse; ``position`` is a 0-based offset into ``source``.
    The text quotes at most 160 characters of the source, around the position."""

    def __init__(self, message: str, source: str, position: int) -> None:
        super().__init__(f"{message} at position {position} in '{_quote(source, position)}'")
        self.message = message
        self.source = source
        self.position = position


class EvaluationError(CoordinatorError, ValueError):
    """A well-formed expression failed on the scope it was given."""

    def __init__(self, message: str, source: str) -> None:
        super().__init__(f"{message} in '{_quote(source)}'")
        self.message = message
        self.source = source


# ------------------------------------------------------------------- the store


class StoreError(CoordinatorError):
    """The event store could not do what was asked; the message says what."""


class ConflictError(StoreError):
    """The write contradicts stored state; retrying the same write cannot succeed."""


class StoreLocked(StoreError):
    """Another process holds the store: two writers would corrupt each other's
    executions. ``holder`` is what that process wrote about itself."""

    def __init__(self, path: str, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"store {path} is in use by {holder or 'another process'}; "
            "only one coordinator may open a store (stop it, or give this one another "
            "--store-path)"
        )


class StoreUnavailable(StoreError):
    """etcd could not be reached or had no quorum. Retryable; a write is in doubt."""


# ----------------------------------------------------------- the KV and election


class KVError(CoordinatorError):
    """Base of every error a ``KV`` raises: anything it refused (bad request, auth)."""


class KVUnavailable(KVError):
    """No quorum, connection lost, or deadline exceeded. Retryable; writes are in doubt."""


class Compacted(KVError):
    """The requested watch start revision is older than the compaction revision:
    re-list, then watch again from the listing's header revision + 1."""

    def __init__(self, revision: int) -> None:
        super().__init__(f"revision compacted; oldest available revision is {revision}")
        self.revision = revision


class LeaseNotFound(KVError):
    """The lease does not exist (expired, revoked, or never granted)."""


class ElectionError(CoordinatorError):
    """Leadership cannot be had or kept."""


class NotCampaigning(ElectionError):
    """An operation needs an election key this replica does not hold."""


class ListenError(CoordinatorError, OSError):
    """The coordinator cannot bind its listen address; the message says why, in the
    operating system's words."""


class HttpListenError(ListenError):
    """The HTTP listener (``http_listen``) cannot bind its address."""


class Fenced(ElectionError):
    """A write guarded by our election key was refused, or the session behind it can no
    longer be trusted: another replica leads. Nothing was written; step down."""
