"""The narrow key-value protocol cluster mode is written against.

Election, discovery and the etcd store talk to etcd only through :class:`KV`, a
small slice of the etcd v3 API (ranges, multi-op transactions with compares,
leases, watches).  Two implementations exist: :class:`~coordinator.kv.memory.MemoryKV`
(faithful in-memory model for unit tests, injectable clock) and
:class:`~coordinator.kv.etcd.EtcdKV` (the real thing, over gRPC).

Values are frozen dataclasses; no protobuf crosses this boundary.

Errors::

    KVError                 base: anything the store refused (bad request, auth, ...)
    ├── KVUnavailable       no quorum, no reachable endpoint, timeout; retryable.
    │                       A *write* that raised this may or may not have been applied.
    ├── Compacted           a watch's start revision was compacted: re-list, then watch
    │                       again from the listing's header revision + 1.
    └── LeaseNotFound       the lease expired or was revoked (or never existed).

Semantics follow etcd exactly where they matter for the election recipe: one global
revision counter; every key carries create/mod revision and version; all writes of one
transaction share a revision; a missing key compares as create=mod=version=lease=0
and never equals any value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from agentmesh.protocol import prefix_end
from coordinator.errors import Compacted, KVError, KVUnavailable, LeaseNotFound

__all__ = [
    "KV",
    "Compacted",
    "Compare",
    "CompareOp",
    "CompareTarget",
    "Delete",
    "KVError",
    "KVUnavailable",
    "KeyValue",
    "LeaseNotFound",
    "Op",
    "Put",
    "Range",
    "TxnResult",
    "WatchEvent",
    "prefix_end",
]


@dataclass(frozen=True, slots=True)
class KeyValue:
    """A stored key with etcd's metadata: create/mod revision, version, lease."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


CompareTarget = Literal["create", "mod", "version", "value", "lease"]
CompareOp = Literal["=", "!=", "<", ">"]


@dataclass(frozen=True, slots=True)
class Compare:
    """One transaction guard: ``<target>(key) <op> value``.

    ``value`` is bytes for the ``"value"`` target and an int otherwise.
    """

    key: bytes
    target: CompareTarget
    op: CompareOp
    value: int | bytes

    def __post_init__(self) -> None:
        # Catch a swapped type here, where the mistake is made, not as a silent
        # always-false compare deep inside a transaction.
        if (self.target == "value") != isinstance(self.value, bytes):
            raise TypeError(f"compare target {self.target!r} does not take {self.value!r}")


@dataclass(frozen=True, slots=True)
class Put:
    """A transaction operation: set ``key`` to ``value`` (under ``lease`` if non-zero)."""

    key: bytes
    value: bytes
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    """A transaction operation: delete ``key`` (every key under it with ``prefix``)."""

    key: bytes
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Range:
    """A transaction operation: read ``key`` (a prefix with ``prefix``, at most ``limit``).

    With ``end``, the keys in ``[key, end)`` instead (``prefix`` is ignored);
    ``reverse`` returns them in descending key order (with ``limit``: the last ones).
    """

    key: bytes
    prefix: bool = False
    limit: int = 0
    end: bytes = b""
    reverse: bool = False


Op = Put | Delete | Range


@dataclass(frozen=True, slots=True)
class TxnResult:
    """Outcome of :meth:`KV.txn`.

    ``revision`` is the store revision after the transaction; ``ranges`` holds one
    list per :class:`Range` op of the branch taken, in op order.
    """

    succeeded: bool
    revision: int
    ranges: list[list[KeyValue]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change a watch saw: a put or a delete of ``kv`` at ``revision``."""

    type: Literal["put", "delete"]
    kv: KeyValue
    revision: int


def compare_holds(compare: Compare, kv: KeyValue | None) -> bool:
    """Evaluate ``compare`` against ``kv`` (None: the key is missing) exactly as etcd
    does: a missing key never matches a value compare ("nil" has no value) and compares
    as zero for every revision-like target."""
    if kv is None:
        if compare.target == "value":
            return False
        kv = KeyValue(compare.key, b"", 0, 0, 0, 0)
    actual: int | bytes
    if compare.target == "value":
        actual = kv.value
    else:
        actual = {
            "create": kv.create_revision,
            "mod": kv.mod_revision,
            "version": kv.version,
            "lease": kv.lease,
        }[compare.target]
    # Both sides have the same type: Compare.__post_init__ checks the expected side.
    expected = compare.value
    if compare.op == "=":
        return actual == expected
    if compare.op == "!=":
        return actual != expected
    if compare.op == "<":
        return actual < expected  # type: ignore[operator]
    return actual > expected  # type: ignore[operator]


@runtime_checkable
class KV(Protocol):
    """The slice of etcd v3 that cluster mode uses.

    Cancelling any coroutine abandons the request: a cancelled write may or may not
    have been applied (as with :class:`KVUnavailable`).
    """

    async def get(self, key: bytes) -> KeyValue | None:
        """The key's current value, or None."""
        ...

    async def range(
        self,
        key: bytes,
        prefix: bool = False,
        limit: int = 0,
        sort_by_create: bool = False,
        *,
        end: bytes = b"",
        reverse: bool = False,
    ) -> tuple[list[KeyValue], int]:
        """Keys (sorted by key, or ascending create revision) and the header revision;
        ``end`` and ``reverse`` as for :class:`Range`."""
        ...

    async def txn(
        self, compares: Sequence[Compare], success_ops: Sequence[Op], failure_ops: Sequence[Op]
    ) -> TxnResult:
        """If every compare holds run ``success_ops``, else ``failure_ops``; atomically."""
        ...

    async def put(self, key: bytes, value: bytes, lease: int = 0) -> int:
        """Write a key; returns the new revision. Raises LeaseNotFound for a dead lease."""
        ...

    async def delete(self, key: bytes, prefix: bool = False) -> int:
        """Delete a key (or every key under a prefix); returns how many were deleted."""
        ...

    async def grant(self, ttl: int) -> int:
        """Create a lease of ``ttl`` seconds; returns its id.

        etcd raises a short TTL to its minimum (1.5 election timeouts, rounded up to a
        whole second), so do not rely on a lease ending sooner than that.
        """
        ...

    async def keepalive(self, lease_id: int) -> int:
        """Refresh a lease once; returns its TTL. Raises LeaseNotFound if it is gone."""
        ...

    async def revoke(self, lease_id: int) -> None:
        """End a lease now, deleting its keys. Raises LeaseNotFound if it is gone."""
        ...

    def watch(
        self, key: bytes, prefix: bool = False, start_revision: int = 0
    ) -> AsyncIterator[WatchEvent]:
        """Events on a key or prefix, from ``start_revision`` (inclusive) on.

        ``start_revision=0`` means "from when the watch is established" (the first
        iteration): to miss nothing, list first and watch from header revision + 1.
        Raises Compacted if ``start_revision`` is older than the compaction point, and
        KVUnavailable if the stream breaks (resume from the last revision seen + 1).
        Closing or cancelling the iteration releases the watch.
        """
        ...

    async def compact(self, revision: int) -> None:
        """Discard history older than ``revision``; older watches raise Compacted."""
        ...

    async def health(self) -> dict[str, Any]:
        """``{"healthy", "leader", "members", "endpoints"}``; never raises KVUnavailable."""
        ...

    async def close(self) -> None:
        """Release connections and watches; safe to call twice."""
        ...
