"""The etcd store's global log: the keys that order every execution's events.

Each commit that carries events with a position (``StoredEvent.position``) also puts
one key, in the same fenced transaction::

    <prefix>/log/<first position, 20 digits>   [[position, execution id, seq], ...]
    <prefix>/log-floor                         the reservation, as decimal text

A commit's positions are contiguous and commits never overlap (the engine assigns a
turn's positions in one go), so the entry that holds position ``p`` is the last key at
or below ``p``: ``read_log(after)`` reads that one key backwards, then the keys after
it forwards, then the events they point at (one transaction of reads per chunk).
A key per commit rather than per event keeps the write cost at one operation per
transaction; the events themselves are not copied.
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
    first = min(p[0] for p in pointers)
    value = json.dumps(pointers, separators=(",", ":")).encode()
    return Put(host._key("log", position_key(first)), value)


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
    before, _ = await host._call(host.kv.range(log, end=start, limit=1, reverse=True))
    rest, _ = await host._call(host.kv.range(start, end=prefix_end(log), limit=limit))
    pointers: list[tuple[int, str, int]] = []
    for kv in (*before, *rest):
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
    log = host._key("log") + b"/"
    last, _ = await host._call(host.kv.range(log, end=prefix_end(log), limit=1, reverse=True))
    stored = max((int(p[0]) for p in json.loads(last[0].value)), default=0) if last else 0
    return max(stored, _reserved(await host._call(host.kv.get(host._key("log-floor")))))


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
