"""The store's global event log (``StoredEvent.position``, ``read_log``, ``log_floor``,
``reserve_positions``), against every store: memory, SQLite (a real file) and
``EtcdStore`` on MemoryKV; plus SQLite's migration to schema 5 and etcd's own concerns
(the log entry's operation, the layout, the forward lookup, fencing).

tests/cluster/test_store_log_etcd.py collects the ``store``, ``backend``, ``durable``
and ``kv_backend`` tests again against a real etcd member.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from coordinator.engine.batches import split_batch
from coordinator.errors import NotCampaigning
from coordinator.kv import KV, Compare, prefix_end
from coordinator.kv.memory import MemoryKV
from coordinator.store import (
    EtcdStore,
    ExecutionRecord,
    Fenced,
    MemoryStore,
    SqliteStore,
    Store,
    StoredEvent,
    StoreError,
)
from tests.unit.test_store import T0, ex


def pev(execution_id: str, seq: int, position: int, second: int | None = None) -> StoredEvent:
    """An event whose type, time and data all say which one it is, so a store that
    mixed up the pointers of its log could not hand back a look-alike."""
    return StoredEvent(
        execution_id,
        seq,
        f"{execution_id}.{seq}",
        T0 + timedelta(seconds=position if second is None else second),
        {"at": [execution_id, seq], "position": position},
        position,
    )


def positions(events: Sequence[StoredEvent]) -> list[int]:
    return [e.position for e in events]


@dataclass
class Backend:
    """Where a store keeps its data; ``new()`` builds another store over the same data
    (the same SQLite file, the same KV and prefix): a restart, or another replica."""

    kind: str  # "memory", "sqlite" or "etcd"
    path: Path = Path()
    kv: KV = field(default_factory=MemoryKV)
    prefix: str = "/test-log"

    def new(self) -> Store:
        if self.kind == "memory":
            return MemoryStore()
        if self.kind == "sqlite":
            return SqliteStore(self.path)
        return EtcdStore(self.kv, self.prefix)

    async def opened(self) -> Store:
        s = self.new()
        await s.open()
        return s


@pytest.fixture(params=["memory", "sqlite", "etcd"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, tmp_path / "store.db")


@pytest.fixture(params=["sqlite", "etcd"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The stores whose data outlives the store object."""
    return Backend(request.param, tmp_path / "store.db")


@pytest.fixture
def kv_backend() -> Backend:
    """The etcd store's KV and prefix (MemoryKV here; a real member in tests/cluster)."""
    return Backend("etcd")


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    s = await backend.opened()
    try:
        yield s
    finally:
        await s.close()


# Five commits across three executions (one id that etcd must percent-encode); the
# positions increase in commit order, with gaps between commits.
LOG: list[list[StoredEvent]] = [
    [pev("a", 1, 1), pev("b", 1, 2)],
    [pev("a", 2, 5)],
    [pev("c/x", 1, 10), pev("c/x", 2, 11), pev("a", 3, 12)],
    [pev("b", 2, 13), pev("b", 3, 14)],
    [pev("a", 4, 20)],
]
ALL = [e for batch in LOG for e in batch]


async def commit_log(store: Store, batches: Sequence[Sequence[StoredEvent]] = LOG) -> None:
    seen: set[str] = set()
    for batch in batches:
        # Index rows for the executions the batch starts, as the engine writes them.
        records = [ex(e.execution_id) for e in batch if e.execution_id not in seen]
        seen.update(e.execution_id for e in batch)
        await store.commit(batch, records)


# -- the log, against every store ------------------------------------------------------


async def test_read_log_returns_every_execution_in_position_order(store: Store) -> None:
    assert await store.read_log(0) == []
    await commit_log(store)
    got = await store.read_log(0)
    assert got == ALL  # execution id, seq, type, time, data and position, all of them
    assert positions(got) == [1, 2, 5, 10, 11, 12, 13, 14, 20]
    assert [(e.execution_id, e.seq) for e in got][3:6] == [("c/x", 1), ("c/x", 2), ("a", 3)]
    # Each execution's own history still reads back as before.
    assert await store.load_events("a") == [e for e in ALL if e.execution_id == "a"]


async def test_read_log_starts_after_the_given_position(store: Store) -> None:
    await commit_log(store)
    # Inside a batch: 10 is the first of 10, 11, 12; 11 the middle one.
    assert positions(await store.read_log(10)) == [11, 12, 13, 14, 20]
    assert positions(await store.read_log(11)) == [12, 13, 14, 20]
    assert positions(await store.read_log(12)) == [13, 14, 20]
    # In a gap between commits, at the last position, past it.
    assert positions(await store.read_log(7)) == [10, 11, 12, 13, 14, 20]
    assert await store.read_log(20) == []
    assert await store.read_log(1000) == []
    for after in range(22):
        assert await store.read_log(after) == [e for e in ALL if e.position > after], after


async def test_read_log_limit_and_paging_walk_the_log_once(store: Store) -> None:
    await commit_log(store)
    assert positions(await store.read_log(0, limit=2)) == [1, 2]
    assert positions(await store.read_log(10, limit=1)) == [11]
    assert positions(await store.read_log(10, limit=2)) == [11, 12]
    assert positions(await store.read_log(11, limit=3)) == [12, 13, 14]  # across commits
    assert positions(await store.read_log(0, limit=len(ALL) + 5)) == positions(ALL)
    for limit in range(1, len(ALL) + 2):
        walked: list[StoredEvent] = []
        cursor = 0
        while page := await store.read_log(cursor, limit):
            assert len(page) <= limit
            # Only the last page may be short.
            assert len(page) == limit or len(walked) + len(page) == len(ALL), limit
            walked += page
            cursor = page[-1].position
        assert walked == ALL, limit  # no gap, no duplicate, in order


async def test_events_without_a_position_stay_out_of_the_log(store: Store) -> None:
    await store.commit([pev("a", 1, 0), pev("a", 2, 3), pev("b", 1, 0)], [ex("a"), ex("b")])
    assert await store.log_floor() == 3
    await store.commit([pev("b", 2, 0)])  # a batch with no event in the log
    assert await store.log_floor() == 3
    await store.commit([pev("b", 3, 4)])
    assert await store.load_events("a") == [pev("a", 1, 0), pev("a", 2, 3)]
    assert positions(await store.load_events("b")) == [0, 0, 4]
    assert await store.read_log(0) == [pev("a", 2, 3), pev("b", 3, 4)]
    assert await store.read_log(3) == [pev("b", 3, 4)]
    assert await store.log_floor() == 4
    got = await store.get_execution("b")
    assert got is not None and got.last_seq == 3  # unpositioned events count as ever


async def test_batches_committed_out_of_position_order(store: Store) -> None:
    x1, x2, x3 = pev("x", 1, 20), pev("x", 2, 21), pev("x", 3, 30)
    y1, y2, z1 = pev("y", 1, 15), pev("y", 2, 16), pev("z", 1, 25)
    await store.commit([x1, x2])
    await store.commit([y1, y2])  # lower positions, committed later
    assert await store.log_floor() == 21  # the highest, not the last committed
    assert await store.read_log(0) == [y1, y2, x1, x2]
    assert await store.read_log(15) == [y2, x1, x2]
    assert await store.read_log(16) == [x1, x2]
    assert await store.read_log(17) == [x1, x2]
    assert await store.read_log(20) == [x2]
    assert await store.read_log(0, limit=3) == [y1, y2, x1]
    await store.commit([x3])
    await store.commit([z1])
    assert await store.read_log(21) == [z1, x3]
    assert await store.read_log(25) == [x3]
    assert await store.read_log(16, limit=3) == [x1, x2, z1]
    assert await store.log_floor() == 30


async def test_load_events_returns_the_stored_position(store: Store) -> None:
    await store.commit([pev("a", 1, 7), pev("a", 2, 8)], [ex("a")])
    await store.commit([pev("a", 3, 0)])
    await store.commit([pev("a", 4, 123_456_789_012)])  # past 32 bits
    assert positions(await store.load_events("a")) == [7, 8, 0, 123_456_789_012]
    assert await store.load_events("a", 1) == [
        pev("a", 2, 8),
        pev("a", 3, 0),
        pev("a", 4, 123_456_789_012),
    ]
    assert positions(await store.read_log(8)) == [123_456_789_012]


async def test_log_floor_and_reservations(store: Store) -> None:
    assert await store.log_floor() == 0
    await store.reserve_positions(0)
    assert await store.log_floor() == 0
    await store.commit([pev("a", 1, 1), pev("a", 2, 2), pev("a", 3, 3)])
    assert await store.log_floor() == 3
    await store.reserve_positions(1000)
    assert await store.log_floor() == 1000
    await store.reserve_positions(500)  # lower: a no-op
    assert await store.log_floor() == 1000
    await store.reserve_positions(1000)
    assert await store.log_floor() == 1000
    await store.commit([pev("a", 4, 1001)])  # above the reservation: the stored one counts
    assert await store.log_floor() == 1001
    await store.reserve_positions(1001)
    assert await store.log_floor() == 1001
    await store.reserve_positions(1500)
    assert await store.log_floor() == 1500
    # Reservations are no events: the log holds what was committed, nothing more.
    assert positions(await store.read_log(0)) == [1, 2, 3, 1001]


async def test_a_reservation_before_any_event(store: Store) -> None:
    await store.reserve_positions(50)
    assert await store.log_floor() == 50
    assert await store.read_log(0) == []
    await store.commit([pev("a", 1, 51)])
    assert await store.log_floor() == 51


async def test_log_floor_and_positions_survive_a_restart(durable: Backend) -> None:
    first = await durable.opened()
    try:
        assert await first.log_floor() == 0
        await first.commit([pev("a", 1, 1), pev("b", 1, 2)], [ex("a"), ex("b")])
        await first.reserve_positions(1000)
        await first.reserve_positions(10)
    finally:
        await first.close()
    second = await durable.opened()
    try:
        assert await second.log_floor() == 1000
        assert await second.read_log(0) == [pev("a", 1, 1), pev("b", 1, 2)]
        assert await second.load_events("b") == [pev("b", 1, 2)]
        await second.commit([pev("a", 2, 1001)])
        await second.reserve_positions(600)
    finally:
        await second.close()
    third = await durable.opened()
    try:
        assert await third.log_floor() == 1001
        assert positions(await third.read_log(0)) == [1, 2, 1001]
        await third.reserve_positions(5000)
    finally:
        await third.close()
    fourth = await durable.opened()
    try:
        assert await fourth.log_floor() == 5000
    finally:
        await fourth.close()


@pytest.mark.parametrize(
    ("position", "message"),
    [
        pytest.param(-1, "event 'bad' seq 1: position must not be negative", id="negative"),
        pytest.param(True, "event 'bad' seq 1: .*not bool", id="true"),
        pytest.param(False, "event 'bad' seq 1: .*not bool", id="false"),
        pytest.param(2.0, "event 'bad' seq 1: position must be a int, not float", id="float"),
        pytest.param("3", "event 'bad' seq 1: position must be a int, not str", id="str"),
    ],
)
async def test_bad_positions_are_refused_and_nothing_written(
    store: Store, position: object, message: str
) -> None:
    bad = replace(pev("bad", 1, 2), position=cast(Any, position))
    with pytest.raises(StoreError, match=message):
        await store.commit([pev("ok", 1, 1), bad], [ex("ok"), ex("bad")])
    assert await store.load_events("ok") == []
    assert await store.load_events("bad") == []
    assert await store.get_execution("ok") is None
    assert await store.read_log(0) == []
    assert await store.log_floor() == 0
    # Nothing half-written stands in the way of the corrected batch.
    await store.commit([pev("ok", 1, 1), pev("bad", 1, 2)], [ex("ok"), ex("bad")])
    assert await store.read_log(0) == [pev("ok", 1, 1), pev("bad", 1, 2)]


# -- SQLite: schema 4 -> 5 -------------------------------------------------------------

# The schema of version 4, the last before the global log, as that release created it
# (today's _SCHEMA without events.position, its index and the log_floor table).
V4_SCHEMA = """
    CREATE TABLE schema_version (version INTEGER NOT NULL);
    INSERT INTO schema_version VALUES (1), (2), (3), (4);
    CREATE TABLE events (execution_id TEXT NOT NULL, seq INTEGER NOT NULL,
        type TEXT NOT NULL, time TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (execution_id, seq)) WITHOUT ROWID;
    CREATE TABLE executions (id TEXT PRIMARY KEY, workflow_name TEXT NOT NULL,
        workflow_version TEXT NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL,
        updated TEXT NOT NULL, parent_id TEXT NOT NULL, last_seq INTEGER NOT NULL,
        idempotency_key TEXT NOT NULL DEFAULT '', parent_key TEXT NOT NULL DEFAULT '',
        namespace TEXT NOT NULL DEFAULT 'default');
    CREATE INDEX executions_status ON executions (status);
    CREATE INDEX executions_namespace_idempotency_key
        ON executions (namespace, idempotency_key, created, id) WHERE idempotency_key != '';
    CREATE INDEX executions_workflow_name ON executions (workflow_name);
    CREATE INDEX executions_parent ON executions (parent_id, parent_key) WHERE parent_id != '';
    CREATE INDEX executions_namespace_created ON executions (namespace, created, id);
    CREATE TABLE workflows (namespace TEXT NOT NULL, name TEXT NOT NULL,
        version TEXT NOT NULL, definition TEXT NOT NULL, created TEXT NOT NULL,
        PRIMARY KEY (namespace, name, version));
"""


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def text(t: datetime) -> str:
    """A time as every release has stored it: fixed-width UTC text."""
    return t.isoformat(timespec="microseconds")


async def test_a_version_4_database_numbers_its_events_into_the_log(tmp_path: Path) -> None:
    """The events already stored join the log as 1..n in (time, execution id, seq)
    order; what is committed afterwards follows with higher positions."""
    path = tmp_path / "v4.db"
    # (id, seq, time), inserted out of order. Ties on time are broken by id, then seq:
    # neither the insertion order, nor the primary key's (id, seq), nor (time, seq, id).
    old = [
        ("b", 2, at(105)),
        ("a", 3, at(105)),
        ("b", 1, at(102)),
        ("a", 4, at(105)),
        ("a", 1, at(100)),
        ("a", 2, at(102)),
    ]
    with sqlite3.connect(path) as conn:
        conn.executescript(V4_SCHEMA)
        conn.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
            [(i, s, f"{i}.{s}", text(t), json.dumps({"s": s})) for i, s, t in old],
        )
        conn.executemany(
            "INSERT INTO executions VALUES (?, 'wf', '1', 'running', ?, ?, '', ?, '', '', ?)",
            [
                ("a", text(at(100)), text(at(105)), 4, "default"),
                ("b", text(at(102)), text(at(105)), 2, "team-b"),
            ],
        )
    conn.close()

    times = {(i, s): t for i, s, t in old}

    def old_event(i: str, s: int, position: int) -> StoredEvent:
        return StoredEvent(i, s, f"{i}.{s}", times[i, s], {"s": s}, position)

    numbered = [
        old_event("a", 1, 1),
        old_event("a", 2, 2),
        old_event("b", 1, 3),
        old_event("a", 3, 4),
        old_event("a", 4, 5),
        old_event("b", 2, 6),
    ]
    # New events with times earlier than every old one: a second numbering by time
    # (the migration run again) would reorder them, and take in the unpositioned one.
    new = [pev("a", 5, 7, second=0), pev("b", 3, 8, second=1)]
    async with SqliteStore(path) as store:
        assert await store.read_log(0) == numbered
        assert positions(await store.load_events("a")) == [1, 2, 4, 5]
        assert positions(await store.load_events("b")) == [3, 6]
        assert await store.log_floor() == 6
        record = await store.get_execution("b")
        assert record is not None and record.last_seq == 2 and record.namespace == "team-b"
        await store.commit(new)
        await store.commit([pev("c", 1, 0, second=0)])
        assert await store.read_log(6) == new
        assert await store.read_log(4, limit=3) == [*numbered[4:], new[0]]
        assert await store.log_floor() == 8
    async with SqliteStore(path) as again:  # migrated once: opens as the current version
        assert await again.read_log(0) == [*numbered, *new]
        assert positions(await again.load_events("c")) == [0]
        await again.reserve_positions(100)
        assert await again.log_floor() == 100
    with sqlite3.connect(path) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
        floors = conn.execute("SELECT floor FROM log_floor").fetchall()
    conn.close()
    assert versions == [1, 2, 3, 4, 5, 6]
    assert {"events_position", "log_floor"} <= names
    assert floors == [(100,)]  # one row, updated in place


async def test_an_empty_version_4_database_starts_the_log_at_zero(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V4_SCHEMA)
    conn.close()
    async with SqliteStore(path) as store:
        assert await store.log_floor() == 0
        assert await store.read_log(0) == []
        await store.commit([pev("a", 1, 1)])
        assert await store.read_log(0) == [pev("a", 1, 1)]


async def test_sqlite_read_log_searches_the_position_index(tmp_path: Path) -> None:
    from coordinator.store import _sqlite

    path = tmp_path / "s.db"
    async with SqliteStore(path):
        pass
    with sqlite3.connect(path) as conn:
        plan = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {_sqlite._READ_LOG}", (0, 10))]
    conn.close()
    assert plan[0].startswith("SEARCH events USING INDEX events_position"), plan


# -- etcd: the log entry, the layout, the forward lookup, the fence --------------------


def turn(ops: int, first_position: int) -> tuple[list[StoredEvent], dict[str, ExecutionRecord]]:
    """A turn that ``split_batch`` counts as exactly ``ops`` operations: execution "a"
    (events, its head, an index row with an idempotency key and a parent: three), and
    "b/x" (one event, its head, no index row)."""
    n = ops - 6
    assert n >= 1
    events = [pev("a", s, first_position + s - 1) for s in range(1, n + 1)]
    events.append(pev("b/x", 1, first_position + n))
    record = replace(ex("a"), idempotency_key="k", parent_id="p", parent_key="s.c1")
    return events, {"a": record}


@pytest.mark.parametrize("max_txn_ops", [8, 128])
async def test_etcd_a_batch_of_max_batch_ops_commits_with_its_log_entry(
    kv_backend: Backend, max_txn_ops: int
) -> None:
    s = EtcdStore(kv_backend.kv, kv_backend.prefix, max_txn_ops=max_txn_ops)
    assert s.max_batch_ops == max_txn_ops - 1
    limit = s.max_batch_ops
    events, records = turn(limit, 1)
    # Exactly ``limit`` operations as the engine counts them: one part at the limit,
    # two parts one below it.
    assert split_batch(events, records, limit) == [(events, list(records.values()))]
    assert len(split_batch(events, records, limit - 1)) == 2
    async with s:
        # One operation more (another event of "b/x") does not fit beside the log entry,
        # and is refused whole.
        over = [*events, pev("b/x", 2, len(events) + 1)]
        with pytest.raises(
            StoreError, match=rf"needs {max_txn_ops + 1} etcd operations.*limit of {max_txn_ops}"
        ):
            await s.commit(over, list(records.values()))
        assert await s.load_events("a") == [] and await s.read_log(0) == []
        await s.commit(events, list(records.values()))
        assert await s.read_log(0, limit=1000) == events
        found = await s.find_execution("k")
        assert found is not None and found.last_seq == len(events) - 1
        child = await s.find_child("p", "s.c1")
        assert child is not None and child.id == "a"


async def test_etcd_a_turn_split_by_split_batch_commits_in_order(kv_backend: Backend) -> None:
    async with EtcdStore(kv_backend.kv, kv_backend.prefix, max_txn_ops=8) as s:
        events = [pev(f"e{i % 3}", i // 3 + 1, 100 + i) for i in range(20)]
        records = {f"e{i}": replace(ex(f"e{i}"), idempotency_key=f"k{i}") for i in range(3)}
        parts = split_batch(events, records, s.max_batch_ops)
        assert len(parts) > 2
        for part_events, part_records in parts:
            await s.commit(part_events, part_records)
        assert await s.read_log(99) == events
        assert await s.read_log(110, limit=4) == events[11:15]
        assert await s.log_floor() == 119


async def test_etcd_read_log_reads_many_events_in_bounded_transactions(
    kv_backend: Backend,
) -> None:
    # Four operations per transaction: two events, a head and the log entry per commit,
    # and read_log must fetch the 24 events of 12 entries four at a time.
    async with EtcdStore(kv_backend.kv, kv_backend.prefix, max_txn_ops=4) as s:
        events = [pev(f"e{i}", seq, 10 * i + seq) for i in range(12) for seq in (1, 2)]
        for i in range(12):
            await s.commit(events[2 * i : 2 * i + 2])
        assert await s.read_log(0) == events
        assert await s.read_log(0, limit=5) == events[:5]
        assert await s.read_log(51, limit=7) == events[11:18]  # from e5 seq 2 (52)


def log_prefix(backend: Backend) -> bytes:
    return f"{backend.prefix}/log/".encode()


def log_key(backend: Backend, position: int) -> bytes:
    return log_prefix(backend) + f"{position:020d}".encode()


async def test_etcd_log_layout(kv_backend: Backend) -> None:
    kv = kv_backend.kv
    async with EtcdStore(kv, kv_backend.prefix) as s:
        await s.commit([pev("a", 1, 10), pev("c/x", 1, 11), pev("a", 2, 12)], [ex("a")])
        await s.commit([pev("z", 1, 0)])  # nothing in the log: no entry
        await s.commit([pev("z", 2, 0), pev("z", 3, 13)])  # only the positioned ones
        await s.reserve_positions(100)
        entries, _ = await kv.range(log_prefix(kv_backend), prefix=True)
        assert [(e.key, json.loads(e.value)) for e in entries] == [
            (log_key(kv_backend, 12), [[10, "a", 1], [11, "c/x", 1], [12, "a", 2]]),
            (log_key(kv_backend, 13), [[13, "z", 3]]),
        ]
        floor = await kv.get(f"{kv_backend.prefix}/log-floor".encode())
        assert floor is not None and floor.value == b"100"
        await s.reserve_positions(99)  # lower: nothing written
        again = await kv.get(f"{kv_backend.prefix}/log-floor".encode())
        assert again is not None and again.mod_revision == floor.mod_revision


async def test_etcd_forward_lookup_finds_the_entry_holding_after(kv_backend: Backend) -> None:
    kv = kv_backend.kv
    log = log_prefix(kv_backend)
    async with EtcdStore(kv, kv_backend.prefix) as s:
        batches = [[pev("a", 1, 1), pev("a", 2, 2), pev("a", 3, 3)]]
        batches.append([pev("b", 1, 10), pev("b", 2, 11), pev("a", 4, 12)])
        batches.append([pev("b", 3, 20)])
        everything = [e for b in batches for e in b]
        for batch in batches:
            await s.commit(batch)
        # Entries are keyed by their last position: the first key above ``after`` is
        # the entry holding position after + 1 (if any), found by a forward range.
        holder: dict[int, int | None] = {0: 3, 1: 3, 2: 3, 3: 12, 5: 12, 9: 12, 10: 12}
        holder |= {11: 12, 12: 20}
        holder |= {15: 20, 19: 20, 20: None, 25: None}
        for after, last_key in holder.items():
            found, _ = await kv.range(log_key(kv_backend, after + 1), end=prefix_end(log), limit=1)
            expected = [] if last_key is None else [log_key(kv_backend, last_key)]
            assert [f.key for f in found] == expected
            assert await s.read_log(after) == [e for e in everything if e.position > after]
        last, _ = await kv.range(log, end=prefix_end(log), limit=1, reverse=True)
        assert [f.key for f in last] == [log_key(kv_backend, 20)]
        assert await s.log_floor() == 20
        await s.reserve_positions(1000)
        assert await s.log_floor() == 1000
    async with EtcdStore(kv, kv_backend.prefix) as other:  # another replica
        assert await other.log_floor() == 1000
        assert await other.read_log(11) == everything[5:]


async def test_etcd_reserve_positions_is_fenced(kv_backend: Backend) -> None:
    kv = kv_backend.kv
    leader = f"{kv_backend.prefix}/leader".encode()
    fence = Compare(leader, "create", "=", 0)  # holds while the key is absent
    leading = [True]
    deposed: list[str] = []

    def current_fence() -> Compare:
        if not leading[0]:
            raise NotCampaigning("resigned")
        return fence

    def on_fenced() -> None:
        deposed.append("etcd refused the fence")

    async with EtcdStore(kv, kv_backend.prefix, fence=current_fence, on_fenced=on_fenced) as s:
        await s.commit([pev("a", 1, 1)])
        await s.reserve_positions(1000)
        assert await s.log_floor() == 1000
        await kv.put(leader, b"another coordinator")  # etcd now refuses our fence
        with pytest.raises(Fenced, match="no longer the leader"):
            await s.reserve_positions(2000)
        assert deposed == ["etcd refused the fence"]
        assert await s.log_floor() == 1000
        leading[0] = False  # the fence callable refuses: never reaches etcd
        with pytest.raises(Fenced, match="no longer the leader"):
            await s.reserve_positions(3000)
        assert deposed == ["etcd refused the fence"]
        assert await s.log_floor() == 1000
    async with EtcdStore(kv, kv_backend.prefix) as other:
        assert await other.log_floor() == 1000
        assert positions(await other.read_log(0)) == [1]
