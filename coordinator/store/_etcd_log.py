"""The etcd store's global log: the keys that order every execution's events.

Each commit that carries events with a position (``StoredEvent.position``) also puts
one key, in the same fenced transaction::

    <prefix>/log/<last position, 20 digits>    [[position, execution id, seq], ...]
    <prefix>/log-floor                         the reservation, as decimal text

An entry is keyed by the LAST position it holds, so every entry holding a position
above ``after`` has a key above ``after``: ``read_log(after)`` is one forward range
from ``log/<after + 1>`` (etcd applies its limit cheaply only without sorting), then
the events the entries point at (one transaction of reads per chunk). A key per
commit rather than per event keeps the write cost at one operation per transaction;
the events themselves are not copied. The entry is put only if absent, so two batches
can never share one silently.

``log_floor`` needs the highest position stored, and a reverse range would make etcd
sort the whole log: the reservation is read first and only the entries above it
(normally none: positions are reserved before they are handed out) are ranged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol, TypeVar

from coordinator.kv import KV, Compare, KeyValue, Op, Put, Range, prefix_end

from . import _codec as codec
from ._api import StoredEvent
from ._errors import StoreError

T = TypeVar("T")

_RESERVE_ATTEMPTS = 5


class Host(Protocol):
    """What the log needs of ``EtcdStore``."""

    kv: KV
    max_txn_ops: int

    def _key(self, *parts: str) -> bytes: ...

    def _event_key(self, execution_id: str, seq: int) -> bytes: ...

    async def _call(self, request: Awaitable[T]) -> T: ...

    async def _txn(self, guards: list[Compare], ops: Sequence[Op]) -> bool: ...


def position_key(position: int) -> str:
    # Zero-padded so key order is position order (uint64 fits in 20 digits).
    return f"{position:020d}"


def log_put(host: Host, rows: Sequence[codec.EventRow]) -> Put | None:
    """The log entry of a batch, or None when no event of it is in the log."""
    pointers = [(pos, id_, seq) for id_, seq, _, _, _, pos in rows if pos > 0]
    if not pointers:
        return None
    key = host._key("log", position_key(max(p[0] for p in pointers)))
    return Put(key, json.dumps(pointers, separators=(",", ":")).encode())


def guards(host: Host, puts: Sequence[Put]) -> list[Compare]:
    """The batch's log entry must not exist yet (it is the last put, when there is one)."""
    if puts and puts[-1].key.startswith(host._key("log") + b"/"):
        return [Compare(puts[-1].key, "create", "=", 0)]
    return []


def event_value(row: codec.EventRow) -> bytes:
    _, _, type_, time, data, position = row
    # data is already JSON text: splice it rather than parse and re-dump it.
    return f'{{"type":{json.dumps(type_)},"time":"{time}","data":{data},"pos":{position}}}'.encode()


def decode_event(execution_id: str, seq: int, value: bytes) -> StoredEvent:
    obj = json.loads(value)
    return StoredEvent(
        execution_id,
        seq,
        obj["type"],
        codec.decode_time(obj["time"]),
        obj["data"],
        int(obj.get("pos", 0)),
    )


async def read_log(host: Host, after: int, limit: int) -> list[StoredEvent]:
    limit = max(limit, 1)
    log = host._key("log") + b"/"
    start = log + position_key(after + 1).encode()
    entries, _ = await host._call(host.kv.range(start, end=prefix_end(log), limit=limit))
    pointers: list[tuple[int, str, int]] = []
    for kv in entries:
        entry: list[list[Any]] = json.loads(kv.value)
        pointers += [(int(p), str(i), int(s)) for p, i, s in entry if int(p) > after]
    pointers.sort()
    pointers = pointers[:limit]
    events: list[StoredEvent] = []
    step = max(host.max_txn_ops, 1)
    for at in range(0, len(pointers), step):
        chunk = pointers[at : at + step]
        result = await host._call(
            host.kv.txn([], [Range(host._event_key(i, s)) for _, i, s in chunk], [])
        )
        for (_, id_, seq), found in zip(chunk, result.ranges, strict=True):
            if found:  # an entry always has its events (one transaction); be lenient
                events.append(decode_event(id_, seq, found[0].value))
    return events


async def log_floor(host: Host) -> int:
    reserved = _reserved(await host._call(host.kv.get(host._key("log-floor"))))
    log = host._key("log") + b"/"
    start = log + position_key(reserved + 1).encode()
    above, _ = await host._call(host.kv.range(start, end=prefix_end(log)))
    return max([reserved, *(int(kv.key.rsplit(b"/", 1)[1]) for kv in above)])


def _reserved(kv: KeyValue | None) -> int:
    return 0 if kv is None else int(kv.value)


async def reserve(host: Host, upto: int) -> None:
    key = host._key("log-floor")
    for _ in range(_RESERVE_ATTEMPTS):
        found = await host._call(host.kv.get(key))
        if upto <= _reserved(found):
            return
        guard = Compare(key, "mod", "=", 0 if found is None else found.mod_revision)
        if await host._txn([guard], [Put(key, str(upto).encode())]):
            return
    raise StoreError(f"the log reservation kept changing ({_RESERVE_ATTEMPTS} attempts)")
