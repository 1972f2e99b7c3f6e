"""An in-memory :class:`~coordinator.kv.KV` that behaves like etcd.

For unit tests of the election and store logic: no I/O, and lease time comes from an
injectable monotonic ``clock`` so tests step time instead of sleeping.  Modelled on
etcd's mvcc semantics:

- one global revision, bumped once per write transaction that changes something
  (a delete of nothing does not bump it, exactly as in etcd);
- per key ``create_revision``/``mod_revision``/``version``; deleting a key resets them;
- leases expire when ``clock()`` passes their deadline; expiry is applied at the start of
  every call and by :meth:`MemoryKV.expire`, and deletes the lease's keys in one revision;
- watches replay history from their start revision, then follow live;
  :meth:`MemoryKV.compact` discards older history.

Errors are those of :mod:`coordinator.kv`; :meth:`MemoryKV.set_unavailable` makes
every call raise ``KVUnavailable`` so callers' outage handling can be tested.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from coordinator.kv._api import (
    Compacted,
    Compare,
    Delete,
    KeyValue,
    KVError,
    KVUnavailable,
    LeaseNotFound,
    Op,
    Put,
    Range,
    TxnResult,
    WatchEvent,
    compare_holds,
    prefix_end,
)

__all__ = ["MemoryKV"]


@dataclass
class _Lease:
    ttl: int
    deadline: float
    keys: set[bytes] = field(default_factory=set)


@dataclass
class _Watcher:
    start: bytes
    end: bytes | None  # None: the single key ``start``
    queue: asyncio.Queue[WatchEvent]

    def matches(self, key: bytes) -> bool:
        if self.end is None:
            return key == self.start
        return self.start <= key and (self.end == b"\0" or key < self.end)


class MemoryKV:
    """In-memory etcd model. Not thread-safe; use from one event loop."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[bytes, KeyValue] = {}
        # etcd starts at revision 1 with an empty store.
        self._revision = 1
        self._compacted = 0
        self._history: list[WatchEvent] = []
        self._leases: dict[int, _Lease] = {}
        self._next_lease = 0x1000
        self._watchers: list[_Watcher] = []
        self._unavailable = False
        self._closed = False

    # -- test controls -------------------------------------------------------

    @property
    def revision(self) -> int:
        """The store's current revision (the last write's)."""
        return self._revision

    def set_unavailable(self, unavailable: bool) -> None:
        """Simulate losing (or regaining) quorum: every call raises KVUnavailable."""
        self._unavailable = unavailable

    def expire(self) -> list[int]:
        """Expire every lease whose deadline has passed; returns the expired ids."""
        now = self._clock()
        dead = [lid for lid, lease in self._leases.items() if lease.deadline <= now]
        for lid in dead:
            self._revoke(lid)
        return dead

    # -- KV protocol ---------------------------------------------------------

    async def _enter(self) -> None:
        # Every real etcd call is a network round trip, i.e. a suspension point where
        # other tasks (watchers, keepalive loops) run. Yield here too, so that unit
        # tests see realistic interleavings instead of runs of calls that never yield.
        await asyncio.sleep(0)
        if self._closed:
            raise KVError("kv is closed")
        if self._unavailable:
            raise KVUnavailable("memory kv set unavailable")
        self.expire()

    async def get(self, key: bytes) -> KeyValue | None:
        await self._enter()
        return self._data.get(key)

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
        await self._enter()
        op = Range(key, prefix, limit, end, reverse)
        return self._range(op, sort_by_create), self._revision

    async def txn(
        self, compares: Sequence[Compare], success_ops: Sequence[Op], failure_ops: Sequence[Op]
    ) -> TxnResult:
        await self._enter()
        ok = all(self._compare(c) for c in compares)
        ops = success_ops if ok else failure_ops
        self._check_ops(ops)
        ranges: list[list[KeyValue]] = []
        events: list[tuple[str, KeyValue]] = []
        rev = self._revision + 1
        for op in ops:
            if isinstance(op, Range):
                ranges.append(self._range(op, sort_by_create=False))
            elif isinstance(op, Put):
                events.append(("put", self._put(op, rev)))
            else:
                events.extend(("delete", kv) for kv in self._delete(op, rev))
        self._commit(events)
        return TxnResult(ok, self._revision, ranges)

    async def put(self, key: bytes, value: bytes, lease: int = 0) -> int:
        return (await self.txn([], [Put(key, value, lease)], [])).revision

    async def delete(self, key: bytes, prefix: bool = False) -> int:
        await self._enter()
        events = self._delete(Delete(key, prefix), self._revision + 1)
        self._commit([("delete", kv) for kv in events])
        return len(events)

    async def grant(self, ttl: int) -> int:
        await self._enter()
        if ttl <= 0:
            raise KVError(f"lease ttl must be positive, got {ttl}")
        self._next_lease += 1
        self._leases[self._next_lease] = _Lease(ttl, self._clock() + ttl)
        return self._next_lease

    async def keepalive(self, lease_id: int) -> int:
        await self._enter()
        lease = self._leases.get(lease_id)
        if lease is None:
            raise LeaseNotFound(f"lease {lease_id:x} not found")
        lease.deadline = self._clock() + lease.ttl
        return lease.ttl

    async def revoke(self, lease_id: int) -> None:
        await self._enter()
        if lease_id not in self._leases:
            raise LeaseNotFound(f"lease {lease_id:x} not found")
        self._revoke(lease_id)

    def watch(
        self, key: bytes, prefix: bool = False, start_revision: int = 0
    ) -> AsyncIterator[WatchEvent]:
        return self._watch(key, prefix, start_revision)

    async def _watch(
        self, key: bytes, prefix: bool, start_revision: int
    ) -> AsyncIterator[WatchEvent]:
        await self._enter()
        start = start_revision or self._revision + 1
        if start < self._compacted:
            raise Compacted(self._compacted)
        w = _Watcher(key, prefix_end(key) if prefix else None, asyncio.Queue())
        # Replay and registration happen with no await in between, so no event is
        # missed or delivered twice.
        for ev in self._history:
            if ev.revision >= start and w.matches(ev.kv.key):
                w.queue.put_nowait(ev)
        self._watchers.append(w)
        try:
            while True:
                yield await w.queue.get()
        finally:
            self._watchers.remove(w)

    async def compact(self, revision: int) -> None:
        await self._enter()
        if revision > self._revision:
            raise KVError(f"compact revision {revision} is in the future")
        if revision <= self._compacted:
            raise Compacted(self._compacted)
        self._compacted = revision
        self._history = [ev for ev in self._history if ev.revision >= revision]

    async def health(self) -> dict[str, Any]:
        healthy = not self._unavailable and not self._closed
        return {
            "healthy": healthy,
            "leader": 1 if healthy else None,
            "members": [{"id": 1, "name": "memory", "client_urls": []}],
            "endpoints": {"memory": {"reachable": healthy}},
        }

    async def close(self) -> None:
        self._closed = True

    # -- internals -----------------------------------------------------------

    def _compare(self, c: Compare) -> bool:
        return compare_holds(c, self._data.get(c.key))

    def _check_ops(self, ops: Sequence[Op]) -> None:
        # etcd rejects the whole transaction, before applying anything.
        seen: set[bytes] = set()
        for op in ops:
            if isinstance(op, Put):
                if op.key in seen:
                    raise KVError("duplicate key given in txn request")
                seen.add(op.key)
                if op.lease and op.lease not in self._leases:
                    raise LeaseNotFound(f"lease {op.lease:x} not found")

    def _keys(self, key: bytes, prefix: bool) -> list[bytes]:
        if not prefix:
            return [key] if key in self._data else []
        end = prefix_end(key)
        return sorted(k for k in self._data if k >= key and (end == b"\0" or k < end))

    def _range(self, op: Range, sort_by_create: bool) -> list[KeyValue]:
        if op.end:
            keys = sorted(k for k in self._data if op.key <= k and (op.end == b"\0" or k < op.end))
        else:
            keys = self._keys(op.key, op.prefix)
        kvs = [self._data[k] for k in keys]
        if sort_by_create:
            kvs.sort(key=lambda kv: kv.create_revision)
        elif op.reverse:
            kvs.reverse()
        return kvs[: op.limit] if op.limit > 0 else kvs

    def _put(self, op: Put, rev: int) -> KeyValue:
        old = self._data.get(op.key)
        if old is not None and old.lease and old.lease in self._leases:
            self._leases[old.lease].keys.discard(op.key)
        if old is None:
            kv = KeyValue(op.key, op.value, rev, rev, 1, op.lease)
        else:
            kv = replace(
                old, value=op.value, mod_revision=rev, version=old.version + 1, lease=op.lease
            )
        self._data[op.key] = kv
        if op.lease:
            self._leases[op.lease].keys.add(op.key)
        return kv

    def _delete(self, op: Delete, rev: int) -> list[KeyValue]:
        gone = []
        for k in self._keys(op.key, op.prefix):
            old = self._data.pop(k)
            if old.lease in self._leases:
                self._leases[old.lease].keys.discard(k)
            # A delete event carries the key with the deletion's revision, as etcd does.
            gone.append(KeyValue(k, b"", 0, rev, 0, 0))
        return gone

    def _commit(self, events: list[tuple[str, KeyValue]]) -> None:
        if not events:
            return  # nothing changed: etcd does not bump the revision
        self._revision += 1
        for typ, kv in events:
            ev = WatchEvent("put" if typ == "put" else "delete", kv, self._revision)
            self._history.append(ev)
            for w in self._watchers:
                if w.matches(kv.key):
                    w.queue.put_nowait(ev)

    def _revoke(self, lease_id: int) -> None:
        lease = self._leases.pop(lease_id)
        rev = self._revision + 1
        events: list[tuple[str, KeyValue]] = []
        for k in sorted(lease.keys):
            events.extend(("delete", kv) for kv in self._delete(Delete(k), rev))
        self._commit(events)
