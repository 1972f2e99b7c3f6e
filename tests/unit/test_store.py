"""The durable store, against both implementations (real SQLite files, no mocks).

The contract tests take a ``store`` fixture: tests/unit/test_store_namespaces.py and
tests/cluster/test_etcd_store.py collect them again against ``EtcdStore``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest

import coordinator.store
from coordinator.domain import DEFAULT_NAMESPACE
from coordinator.store import (
    ConflictError,
    ExecutionRecord,
    ExecutionWhere,
    MemoryStore,
    SqliteStore,
    Store,
    StoredEvent,
    StoreError,
    StoreLocked,
    WorkflowRecord,
    open_store,
)
from coordinator.store._codec import QUEUED_TYPE, STARTED_TYPE

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def ev(execution_id: str, seq: int, data: dict[str, Any] | None = None) -> StoredEvent:
    return StoredEvent(
        execution_id, seq, f"Event{seq}", T0 + timedelta(seconds=seq), data or {"n": seq}
    )


def ex(
    id: str, status: str = "running", created: int = 0, workflow: str = "wf", last_seq: int = 0
) -> ExecutionRecord:
    t = T0 + timedelta(minutes=created)
    return ExecutionRecord(id, workflow, "1", status, t, t, "", last_seq)


def wf(name: str, version: str, created: int = 0, **definition: Any) -> WorkflowRecord:
    return WorkflowRecord(name, version, definition, T0 + timedelta(minutes=created))


def in_ns(namespace: str, record: ExecutionRecord) -> ExecutionRecord:
    return replace(record, namespace=namespace)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(request.param, str(tmp_path / "store.db") if request.param == "sqlite" else "")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def seqs(store: Store, execution_id: str, after: int = 0) -> list[int]:
    return [e.seq for e in await store.load_events(execution_id, after)]


def test_public_surface_is_pinned() -> None:
    assert sorted(coordinator.store.__all__) == sorted(
        [
            "ConflictError",
            "DocumentRecord",
            "EtcdStore",
            "ExecutionRecord",
            "ExecutionWhere",
            "Fenced",
            "MemoryStore",
            "SqliteStore",
            "Store",
            "StoreError",
            "StoreLocked",
            "StoreUnavailable",
            "StoredEvent",
            "WorkflowRecord",
            "open_store",
        ]
    )


def test_open_store_rejects_bad_arguments(tmp_path: Path) -> None:
    assert isinstance(open_store("memory"), MemoryStore)
    assert isinstance(open_store("sqlite", str(tmp_path / "x.db")), SqliteStore)
    with pytest.raises(ValueError, match="needs a database file path"):
        open_store("sqlite")
    with pytest.raises(ValueError, match="cannot build the etcd store"):
        open_store("etcd")
    with pytest.raises(ValueError, match="synchronous"):
        SqliteStore(tmp_path / "x.db", synchronous="OFF")


async def test_append_and_load_in_order(store: Store) -> None:
    await store.commit([ev("a", 1), ev("b", 1), ev("a", 2)])
    await store.commit([ev("a", 3)])
    events = await store.load_events("a")
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0] == ev("a", 1)
    assert await seqs(store, "a", after=1) == [2, 3]
    assert await seqs(store, "a", after=3) == []
    assert await seqs(store, "b") == [1]
    assert await store.load_events("nobody") == []


async def test_values_round_trip_as_utc_json(store: Store) -> None:
    plus2 = timezone(timedelta(hours=2))
    data = {"text": "héllo ✓", "nested": {"list": [1, 2.5, None, True]}, "tuple": (1, 2)}
    await store.commit([StoredEvent("a", 1, "T", datetime(2025, 1, 1, 12, tzinfo=plus2), data)])
    (got,) = await store.load_events("a")
    assert got.time == datetime(2025, 1, 1, 10, tzinfo=UTC) and got.time.utcoffset() == timedelta(0)
    assert got.data == {**data, "tuple": [1, 2]}  # JSON has no tuples
    got.data["text"] = "changed"  # a copy: the history cannot be edited through it
    assert (await store.load_events("a"))[0].data["text"] == "héllo ✓"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param([], [2], id="gap-on-first-event"),
        pytest.param([1, 2], [4], id="gap"),
        pytest.param([1, 2], [2], id="duplicate"),
        pytest.param([], [1, 3], id="gap-within-batch"),
        pytest.param([], [1, 1], id="duplicate-within-batch"),
        pytest.param([1], [3, 2], id="out-of-order-within-batch"),
    ],
)
async def test_seq_conflict_writes_nothing_of_the_batch(
    store: Store, first: list[int], second: list[int]
) -> None:
    if first:
        await store.commit([ev("a", s) for s in first], [ex("a")])
    with pytest.raises(ConflictError, match="execution 'a'"):
        # Valid parts of the batch (another execution, an index row) go down with it.
        await store.commit(
            [ev("other", 1), *(ev("a", s) for s in second)],
            [ex("a", "completed"), ex("other")],
        )
    assert await seqs(store, "a") == first
    assert await store.load_events("other") == []
    assert await store.get_execution("other") is None
    a = await store.get_execution("a")
    assert (a is None) if not first else (a is not None and a.status == "running")
    # The store is fine afterwards: the right next seq goes in.
    await store.commit([ev("a", len(first) + 1)])


async def test_execution_upsert_and_last_seq(store: Store) -> None:
    await store.commit([], [ex("a", "queued", last_seq=99)])  # last_seq is the store's
    assert await store.get_execution("a") == ex("a", "queued", last_seq=0)
    await store.commit([ev("a", 1), ev("a", 2)], [ex("a", "running")])
    assert await store.get_execution("a") == ex("a", "running", last_seq=2)
    await store.commit([ev("a", 3)])  # no index row in the batch: last_seq still follows
    got = await store.get_execution("a")
    assert got is not None and got.last_seq == 3 and got.status == "running"
    await store.commit([ev("b", 1)])  # events without an index row are fine
    assert await store.get_execution("b") is None
    await store.commit([], [ex("b", "paused")])
    assert await store.get_execution("b") == ex("b", "paused", last_seq=1)
    assert await store.get_execution("nobody") is None


async def test_list_executions_filters_and_orders_newest_first(store: Store) -> None:
    await store.commit(
        [],
        [
            ex("e1", "completed", created=1, workflow="build"),
            ex("e2", "running", created=2, workflow="build"),
            ex("e3", "failed", created=3, workflow="deploy"),
            ex("e4", "running", created=4, workflow="deploy"),
            ex("e0", "running", created=4, workflow="deploy"),  # same time: id breaks the tie
        ],
    )

    async def ids(**kwargs: Any) -> list[str]:
        return [r.id for r in await store.list_executions(**kwargs)]

    assert await ids() == ["e4", "e0", "e3", "e2", "e1"]
    assert await ids(statuses={"running"}) == ["e4", "e0", "e2"]
    assert await ids(statuses=["failed", "completed"]) == ["e3", "e1"]
    assert await ids(statuses=()) == []
    assert await ids(workflow_name="build") == ["e2", "e1"]
    assert await ids(statuses={"running"}, workflow_name="build") == ["e2"]
    assert await ids(limit=2) == ["e4", "e0"]
    assert await ids(limit=0) == []


async def test_list_executions_pages_ranges_children_and_text(store: Store) -> None:
    """``where``: children of a parent, an open time range, pages that resume past a
    cursor without a gap or a repeat, and a text search on the id and the input."""
    rows = [
        replace(ex(f"e{i:02}", created=i), parent_id="p" if i % 3 == 0 else "") for i in range(12)
    ]
    started = [
        StoredEvent(
            f"e{i:02}",
            1,
            STARTED_TYPE,
            T0,
            {"workflow": "versioned", "input": {"repo": f"Repo-{i}"}},
        )
        for i in range(12)
    ]
    started[5] = StoredEvent("e05", 1, "Other", T0, {"input": {"repo": "Repo-5"}})
    started[4] = StoredEvent("e04", 1, QUEUED_TYPE, T0, {"input": {"repo": "Repo-14"}})
    started[7] = StoredEvent("e07", 1, STARTED_TYPE, T0, {"input": {"repo": 'Café "Über"'}})
    await store.commit(started, rows)

    async def ids(where: ExecutionWhere, limit: int = 100, **kwargs: Any) -> list[str]:
        return [r.id for r in await store.list_executions(limit=limit, where=where, **kwargs)]

    assert await ids(ExecutionWhere(parent_id="p")) == ["e09", "e06", "e03", "e00"]
    assert await ids(ExecutionWhere(parent_id="")) == [
        "e11",
        "e10",
        "e08",
        "e07",
        "e05",
        "e04",
        "e02",
        "e01",
    ]
    window = ExecutionWhere(
        created_after=T0 + timedelta(minutes=3), created_before=T0 + timedelta(minutes=7)
    )
    assert await ids(window) == ["e06", "e05", "e04"]  # both bounds open
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = await store.list_executions(limit=5, where=ExecutionWhere(after=cursor))
        if not page:
            break
        pages.append([r.id for r in page])
        cursor = (page[-1].created, page[-1].id)
    assert pages == [
        ["e11", "e10", "e09", "e08", "e07"],
        ["e06", "e05", "e04", "e03", "e02"],
        ["e01", "e00"],
    ]
    assert await ids(ExecutionWhere(text="repo-1")) == ["e11", "e10", "e04", "e01"]  # any case
    assert await ids(ExecutionWhere(text="E0")) == [f"e{i:02}" for i in range(9, -1, -1)]
    assert await ids(ExecutionWhere(text="repo-5")) == []  # not a Started event: no input
    assert await ids(ExecutionWhere(text="repo-1"), limit=3) == ["e11", "e10", "e04"]
    assert await ids(ExecutionWhere(text="repo", parent_id="p"), statuses={"running"}) == [
        "e09",
        "e06",
        "e03",
        "e00",
    ]
    assert await ids(ExecutionWhere(text="nowhere")) == []
    assert await ids(ExecutionWhere(text="über")) == ["e07"]  # not ASCII, any case
    assert await ids(ExecutionWhere(text='fé \\"ü')) == ["e07"]  # as the input's JSON has it
    assert await ids(ExecutionWhere(text="version")) == []  # the input only, not the rest


async def test_find_execution_by_idempotency_key(store: Store) -> None:
    assert await store.find_execution("k1") is None
    assert await store.find_execution("") is None
    first = replace(ex("a"), idempotency_key="k1")
    await store.commit([ev("a", 1)], [first, replace(ex("b"), idempotency_key="k2")])
    # the index row is rewritten as the status changes; the key keeps pointing at it
    await store.commit([ev("a", 2)], [replace(first, status="completed")])
    found = await store.find_execution("k1")
    assert found is not None and found.id == "a" and found.status == "completed"
    assert found.idempotency_key == "k1" and found.last_seq == 2
    other = await store.find_execution("k2")
    assert other is not None and other.id == "b"
    assert await store.find_execution("k3") is None
    with pytest.raises(StoreError, match="idempotency_key"):
        await store.commit([], [replace(ex("c"), idempotency_key=7)])  # type: ignore[arg-type]


async def test_find_child_by_parent_and_key(store: Store) -> None:
    """Recovery asks for one child of one parent step: an index lookup, however many
    executions (children of other parents included) finished before it."""
    assert await store.find_child("p", "s.c1") is None
    assert await store.find_child("", "") is None  # top-level executions are nobody's child
    kids = [replace(ex(f"k{i}", created=i), parent_id="p", parent_key=f"s.c{i}") for i in (1, 2)]
    other = replace(ex("x", created=3), parent_id="q", parent_key="s.c1")
    await store.commit([ev("k1", 1), ev("k2", 1), ev("x", 1)], [*kids, other])
    await store.commit([ev("k1", 2)], [replace(kids[0], status="completed")])
    found = await store.find_child("p", "s.c1")
    assert found is not None and found.id == "k1" and found.status == "completed"
    assert found.parent_key == "s.c1" and found.last_seq == 2
    second = await store.find_child("p", "s.c2")
    assert second is not None and second.id == "k2"
    theirs = await store.find_child("q", "s.c1")
    assert theirs is not None and theirs.id == "x"
    assert await store.find_child("p", "s.c3") is None
    assert (await store.get_execution("k2")) == second
    with pytest.raises(StoreError, match="parent_key"):
        await store.commit([], [replace(ex("c"), parent_key=7)])  # type: ignore[arg-type]


async def test_workflows(store: Store) -> None:
    await store.put_workflow(wf("build", "1", created=1, steps=[1]))
    await store.put_workflow(wf("build", "2", created=2, steps=[2]))
    await store.put_workflow(wf("build", "3", created=2, steps=[3]))  # tie: "3" > "2"
    await store.put_workflow(wf("alpha", "1", created=5, steps=[]))

    latest = await store.get_workflow("build")
    assert latest == wf("build", "3", created=2, steps=[3])
    assert await store.get_workflow("build", "1") == wf("build", "1", created=1, steps=[1])
    assert await store.get_workflow("build", "9") is None
    assert await store.get_workflow("nothing") is None

    # Same definition again (any key order, any created): a no-op keeping the original.
    await store.put_workflow(WorkflowRecord("x", "1", {"a": 1, "b": 2}, T0))
    await store.put_workflow(WorkflowRecord("x", "1", {"b": 2, "a": 1}, T0 + timedelta(days=1)))
    assert await store.get_workflow("x", "1") == WorkflowRecord("x", "1", {"a": 1, "b": 2}, T0)
    with pytest.raises(ConflictError, match="'x' version '1' already exists"):
        await store.put_workflow(WorkflowRecord("x", "1", {"a": True, "b": 2}, T0))

    listed = [(w.name, w.version) for w in await store.list_workflows()]
    assert listed == [("alpha", "1"), ("build", "1"), ("build", "2"), ("build", "3"), ("x", "1")]

    assert await store.delete_workflow("build", "3") == 1
    assert await store.delete_workflow("build", "3") == 0
    assert (await store.get_workflow("build")) == wf("build", "2", created=2, steps=[2])
    assert await store.delete_workflow("build") == 2
    assert await store.get_workflow("build") is None
    assert [w.name for w in await store.list_workflows()] == ["alpha", "x"]


async def test_namespaces_keep_workflows_apart(store: Store) -> None:
    """The same name and version in two namespaces are two workflows."""
    a1 = WorkflowRecord("build", "1", {"steps": ["a"]}, T0, "team-a")
    b1 = WorkflowRecord("build", "1", {"steps": ["b"]}, T0 + timedelta(minutes=1), "team-b")
    b2 = WorkflowRecord("build", "2", {"steps": ["b2"]}, T0 + timedelta(minutes=2), "team-b")
    default = wf("build", "1", steps=["default"])
    for record in (a1, b1, b2, default):
        await store.put_workflow(record)
    await store.put_workflow(replace(a1, created=T0 + timedelta(days=1)))  # same: no-op
    with pytest.raises(ConflictError, match="'build' version '1' in namespace 'team-a'"):
        await store.put_workflow(replace(a1, definition={"steps": ["b"]}))

    assert await store.get_workflow("build", "1", "team-a") == a1
    assert await store.get_workflow("build", "1", "team-b") == b1
    assert await store.get_workflow("build", "", "team-a") == a1  # latest of team-a
    assert await store.get_workflow("build", namespace="team-b") == b2
    assert await store.get_workflow("build", "2", "team-a") is None
    assert await store.get_workflow("build", "1", "team-c") is None
    assert await store.get_workflow("build") == default  # the default namespace
    assert default.namespace == DEFAULT_NAMESPACE == "default"

    assert await store.list_workflows("team-a") == [a1]
    assert await store.list_workflows("team-b") == [b1, b2]
    assert await store.list_workflows("team-c") == []
    assert await store.list_workflows(DEFAULT_NAMESPACE) == [default]
    assert await store.list_workflows() == [default, a1, b1, b2]  # by namespace first

    assert await store.delete_workflow("build", "1", "team-b") == 1
    assert await store.get_workflow("build", "1", "team-b") is None
    assert await store.get_workflow("build", "1", "team-a") == a1
    assert await store.delete_workflow("build", namespace="team-a") == 1
    assert await store.delete_workflow("build", namespace="team-a") == 0
    assert await store.list_workflows() == [default, b2]
    assert await store.delete_workflow("build") == 1  # only the default namespace's
    assert await store.list_workflows() == [b2]


async def test_namespaces_filter_executions(store: Store) -> None:
    await store.commit(
        [ev("a1", 1), ev("b1", 1)],
        [
            in_ns("team-a", ex("a1", created=1)),
            in_ns("team-a", ex("a2", "completed", created=3)),
            in_ns("team-b", ex("b1", created=2)),
            ex("d1", created=4),
        ],
    )

    async def ids(**kwargs: Any) -> list[str]:
        return [r.id for r in await store.list_executions(**kwargs)]

    assert await ids() == ["d1", "a2", "b1", "a1"]  # None: every namespace
    assert await ids(namespace="team-a") == ["a2", "a1"]
    assert await ids(namespace="team-b") == ["b1"]
    assert await ids(namespace=DEFAULT_NAMESPACE) == ["d1"]
    assert await ids(namespace="team-c") == []
    assert await ids(namespace="team-a", statuses={"running"}) == ["a1"]
    assert await ids(namespace="team-a", limit=1) == ["a2"]
    assert await ids(namespace="team-b", workflow_name="other") == []
    # The namespace round-trips, through get and list, and ids are global keys.
    a1 = await store.get_execution("a1")
    assert a1 == in_ns("team-a", ex("a1", created=1, last_seq=1))
    assert (await store.list_executions(namespace="team-b"))[0].namespace == "team-b"
    d1 = await store.get_execution("d1")
    assert d1 is not None and d1.namespace == DEFAULT_NAMESPACE
    await store.commit([], [in_ns("team-b", ex("a1", "completed", created=1))])  # moved
    assert await ids(namespace="team-a") == ["a2"]
    assert await ids(namespace="team-b") == ["b1", "a1"]
    with pytest.raises(StoreError, match="namespace must be a str"):
        await store.commit([], [in_ns(cast(Any, None), ex("c"))])
    with pytest.raises(StoreError, match="namespace must be a str"):
        await store.put_workflow(WorkflowRecord("w", "1", {}, T0, cast(Any, 1)))


async def test_idempotency_keys_are_per_namespace(store: Store) -> None:
    a = replace(ex("a", created=1), idempotency_key="k", namespace="team-a")
    b = replace(ex("b", created=2), idempotency_key="k", namespace="team-b")
    d = replace(ex("d", created=3), idempotency_key="k")
    await store.commit([ev("a", 1)], [a, b, d])
    await store.commit([ev("a", 2)], [replace(a, status="completed")])
    found = await store.find_execution("k", "team-a")
    assert found == replace(a, status="completed", last_seq=2)
    other = await store.find_execution("k", "team-b")
    assert other is not None and other.id == "b" and other.namespace == "team-b"
    default = await store.find_execution("k")
    assert default is not None and default.id == "d"
    assert await store.find_execution("k", "team-c") is None
    assert await store.find_execution("", "team-a") is None
    # The key used later in another namespace leaves this one's lookup alone.
    await store.commit([], [replace(ex("c", created=9), idempotency_key="k", namespace="team-c")])
    again = await store.find_execution("k", "team-a")
    assert again is not None and again.id == "a"
    third = await store.find_execution("k", "team-c")
    assert third is not None and third.id == "c"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        pytest.param(
            StoredEvent("big", 1, "T", T0, {"blob": "x" * (16 * 1024 * 1024)}),
            r"event 'big' seq 1: serialized data is \d+ bytes, over the 16777216 byte limit",
            id="oversize",
        ),
        pytest.param(
            StoredEvent("bad", 1, "T", T0, {"when": T0}),
            "event 'bad' seq 1: data is not JSON-serializable",
            id="not-json",
        ),
        pytest.param(
            StoredEvent(cast(Any, 7), 1, "T", T0, {}),
            "event 7 seq 1: execution_id must be a str, not int",
            id="wrong-type",
        ),
        pytest.param(
            StoredEvent("naive", 1, "T", datetime(2025, 1, 1), {}),
            "event 'naive' seq 1: time .* is not timezone-aware",
            id="naive-time",
        ),
    ],
)
async def test_invalid_event_rejected_and_nothing_written(
    store: Store, event: StoredEvent, message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        await store.commit([ev("ok", 1), event], [ex("ok")])
    assert await store.load_events("ok") == []
    assert await store.load_events(str(event.execution_id)) == []
    assert await store.get_execution("ok") is None


async def test_close_is_idempotent_and_later_calls_fail(store: Store) -> None:
    await store.commit([ev("a", 1)])
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="store is closed"):
        await store.commit([ev("a", 2)])
    with pytest.raises(StoreError, match="store is closed"):
        await store.load_events("a")
    with pytest.raises(StoreError, match="store is closed"):
        await store.open()


async def test_use_before_open_fails() -> None:
    with pytest.raises(StoreError, match="not open"):
        await MemoryStore().commit([ev("a", 1)])
    s = SqliteStore("/nonexistent-dir/never-opened.db")
    with pytest.raises(StoreError, match="not open"):
        await s.get_execution("a")
    await s.close()  # closing a store that never opened is fine


async def reopened(store: Store) -> Store:
    """The same data through a fresh store: for SQLite, a new process's view of the file."""
    if isinstance(store, SqliteStore):
        await store.close()
        fresh = SqliteStore(store.path)
        await fresh.open()
        return fresh
    return store


async def test_concurrent_commits_are_grouped_and_all_land(store: Store) -> None:
    async def one(i: int) -> None:
        await store.commit([ev(f"e{i}", 1, {"i": i})], [ex(f"e{i}", created=i)])

    async def conflicting(i: int) -> None:
        with pytest.raises(ConflictError):
            await store.commit([ev(f"c{i}", 2)])

    before = store.transactions if isinstance(store, SqliteStore) else 0
    # Interleaved so that failing batches sit inside the same groups as good ones.
    await asyncio.gather(*(one(i) for i in range(200)), *(conflicting(i) for i in range(20)))
    if isinstance(store, SqliteStore):
        assert store.transactions - before < 200

    s = await reopened(store)
    try:
        assert len(await s.list_executions(limit=1000)) == 200
        for i in range(200):
            (got,) = await s.load_events(f"e{i}")
            assert got.data == {"i": i}
            record = await s.get_execution(f"e{i}")
            assert record is not None and record.last_seq == 1
        for i in range(20):
            assert await s.load_events(f"c{i}") == []
    finally:
        if s is not store:
            await s.close()


async def test_sequential_commits_to_one_execution_stay_contiguous(store: Store) -> None:
    # Each engine turn appends after the previous one returned.
    for seq in range(1, 51):
        await store.commit([ev("a", seq)], [ex("a")])
    s = await reopened(store)
    try:
        assert await seqs(s, "a") == list(range(1, 51))
        record = await s.get_execution("a")
        assert record is not None and record.last_seq == 50
    finally:
        if s is not store:
            await s.close()


async def test_close_flushes_submitted_commits(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    tasks = [asyncio.create_task(store.commit([ev(f"e{i}", 1)])) for i in range(50)]
    await asyncio.sleep(0)  # every task has queued its batch and is waiting
    await store.close()
    await asyncio.gather(*tasks)
    async with SqliteStore(tmp_path / "s.db") as again:
        assert all([await seqs(again, f"e{i}") == [1] for i in range(50)])


async def test_cancelled_commit_is_still_written(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    task = asyncio.create_task(store.commit([ev("a", 1)]))
    await asyncio.sleep(0)  # one step: commit() has queued its write and awaits it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await store.close()
    async with SqliteStore(tmp_path / "s.db") as again:
        assert await seqs(again, "a") == [1]


async def test_sqlite_file_and_size(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(path, synchronous="full") as store:
        assert store.synchronous == "FULL"
        await store.commit([ev("a", i) for i in range(1, 101)])
        assert store.size_bytes() > 0
        assert store.transactions == 1
    assert MemoryStore().size_bytes() == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchall() == [(6,)]
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone() == (100,)
    conn.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(path):
        pass
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE schema_version SET version = 7")
    conn.close()
    store = SqliteStore(path)
    with pytest.raises(StoreError, match="schema version 7 is newer than the supported version 6"):
        await store.open()
    await store.close()


async def test_a_version_1_database_is_migrated(tmp_path: Path) -> None:
    """Stores written before executions had an idempotency key open and keep working."""
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE schema_version (version INTEGER NOT NULL);
            INSERT INTO schema_version VALUES (1);
            CREATE TABLE executions (id TEXT PRIMARY KEY, workflow_name TEXT NOT NULL,
                workflow_version TEXT NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL,
                updated TEXT NOT NULL, parent_id TEXT NOT NULL, last_seq INTEGER NOT NULL);
            INSERT INTO executions VALUES ('old', 'wf', '1', 'completed',
                '2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00', '', 0);
            """
        )
    conn.close()
    async with SqliteStore(path) as store:
        old = await store.get_execution("old")
        assert old is not None and old.status == "completed" and old.idempotency_key == ""
        await store.commit([ev("new", 1)], [replace(ex("new"), idempotency_key="k")])
        found = await store.find_execution("k")
        assert found is not None and found.id == "new"
    async with SqliteStore(path) as again:  # migrated once: opens as the current version
        assert (await again.find_execution("k")) is not None
    with sqlite3.connect(path) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    conn.close()
    assert versions == [1, 2, 3, 4, 5, 6]


async def test_a_version_2_database_gains_the_parent_index(tmp_path: Path) -> None:
    """Children written before executions had a parent key are found by it after the
    migration: it is read back from each child's ExecutionStarted context."""
    path = tmp_path / "v2.db"
    started = '{"workflow":"child","context":{"parentId":"p","parentKey":"s.c1"}}'
    with sqlite3.connect(path) as conn:
        conn.executescript(
            f"""
            CREATE TABLE schema_version (version INTEGER NOT NULL);
            INSERT INTO schema_version VALUES (1);
            INSERT INTO schema_version VALUES (2);
            CREATE TABLE events (execution_id TEXT NOT NULL, seq INTEGER NOT NULL,
                type TEXT NOT NULL, time TEXT NOT NULL, data TEXT NOT NULL,
                PRIMARY KEY (execution_id, seq)) WITHOUT ROWID;
            CREATE TABLE executions (id TEXT PRIMARY KEY, workflow_name TEXT NOT NULL,
                workflow_version TEXT NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL,
                updated TEXT NOT NULL, parent_id TEXT NOT NULL, last_seq INTEGER NOT NULL,
                idempotency_key TEXT NOT NULL DEFAULT '');
            INSERT INTO events VALUES ('kid', 1, 'ExecutionStarted',
                '2026-01-01T00:00:00.000000+00:00', '{started}');
            INSERT INTO executions VALUES ('kid', 'child', '1', 'completed',
                '2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00',
                'p', 1, '');
            INSERT INTO executions VALUES ('top', 'wf', '1', 'running',
                '2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00',
                '', 0, '');
            """
        )
    conn.close()
    async with SqliteStore(path) as store:
        kid = await store.find_child("p", "s.c1")
        assert kid is not None and kid.id == "kid" and kid.parent_key == "s.c1"
        top = await store.get_execution("top")
        assert top is not None and top.parent_key == ""


async def test_one_store_object_at_a_time_opens_a_database(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first = SqliteStore(path, holder="coordinator c1 (pid 1, listening on 127.0.0.1:7)")
    await first.open()
    second = SqliteStore(path)
    with pytest.raises(StoreLocked) as refused:
        await second.open()
    assert refused.value.holder == "coordinator c1 (pid 1, listening on 127.0.0.1:7)"
    assert str(refused.value) == (
        f"store {path} is in use by coordinator c1 (pid 1, listening on 127.0.0.1:7); only "
        "one coordinator may open a store (stop it, or give this one another --store-path)"
    )
    await second.close()
    first.describe("coordinator c1 (pid 1, listening on 127.0.0.1:8)")
    with pytest.raises(StoreLocked, match=r"127\.0\.0\.1:8\)"):
        await SqliteStore(path).open()
    await first.close()
    async with SqliteStore(path) as third:  # released on close
        await third.commit([ev("a", 1)])


async def test_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"certainly not sqlite" * 100)
    store = SqliteStore(path)
    with pytest.raises(StoreError, match="cannot open"):
        await store.open()
    await store.close()


# The schema of version 3, the last before namespaces, as that release created it.
V3_SCHEMA = """
    CREATE TABLE schema_version (version INTEGER NOT NULL);
    INSERT INTO schema_version VALUES (1), (2), (3);
    CREATE TABLE events (execution_id TEXT NOT NULL, seq INTEGER NOT NULL,
        type TEXT NOT NULL, time TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (execution_id, seq)) WITHOUT ROWID;
    CREATE TABLE executions (id TEXT PRIMARY KEY, workflow_name TEXT NOT NULL,
        workflow_version TEXT NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL,
        updated TEXT NOT NULL, parent_id TEXT NOT NULL, last_seq INTEGER NOT NULL,
        idempotency_key TEXT NOT NULL DEFAULT '', parent_key TEXT NOT NULL DEFAULT '');
    CREATE INDEX executions_status ON executions (status);
    CREATE INDEX executions_idempotency_key
        ON executions (idempotency_key) WHERE idempotency_key != '';
    CREATE INDEX executions_workflow_name ON executions (workflow_name);
    CREATE INDEX executions_parent
        ON executions (parent_id, parent_key) WHERE parent_id != '';
    CREATE TABLE workflows (name TEXT NOT NULL, version TEXT NOT NULL,
        definition TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (name, version));
"""
V3_TIME = "2026-01-01T00:00:00.000000+00:00"


async def test_a_version_3_database_opens_in_the_default_namespace(tmp_path: Path) -> None:
    """Rows written before namespaces read back as namespace ``default``; the workflows
    table is rebuilt so that another namespace may reuse a name and version."""
    path = tmp_path / "v3.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V3_SCHEMA)
        conn.execute(
            "INSERT INTO events VALUES ('old', 1, 'ExecutionStarted', ?, '{}')", (V3_TIME,)
        )
        conn.executemany(
            "INSERT INTO executions VALUES (?, 'build', '1', ?, ?, ?, ?, ?, ?, ?)",
            [
                ("old", "completed", V3_TIME, V3_TIME, "", 1, "k", ""),
                ("kid", "running", V3_TIME, V3_TIME, "old", 0, "", "s.c1"),
            ],
        )
        conn.executemany(
            "INSERT INTO workflows VALUES (?, ?, ?, ?)",
            [("build", "1", '{"steps":[1]}', V3_TIME), ("build", "2", '{"steps":[2]}', V3_TIME)],
        )
    conn.close()
    t = datetime.fromisoformat(V3_TIME)
    async with SqliteStore(path) as store:
        old = await store.get_execution("old")
        assert old == ExecutionRecord(
            "old", "build", "1", "completed", t, t, "", 1, "k", "", DEFAULT_NAMESPACE
        )
        assert await store.find_execution("k") == old
        assert await store.find_execution("k", "team-a") is None
        kid = await store.find_child("old", "s.c1")
        assert kid is not None and kid.namespace == DEFAULT_NAMESPACE
        assert [r.id for r in await store.list_executions(namespace=DEFAULT_NAMESPACE)] == [
            "old",
            "kid",
        ]
        assert await store.list_executions(namespace="team-a") == []
        assert await store.list_workflows() == [
            WorkflowRecord("build", "1", {"steps": [1]}, t),
            WorkflowRecord("build", "2", {"steps": [2]}, t),
        ]
        assert await store.get_workflow("build") == WorkflowRecord("build", "2", {"steps": [2]}, t)
        # The new primary key: the same name and version, differently, in another namespace.
        other = WorkflowRecord("build", "1", {"steps": ["a"]}, T0, "team-a")
        await store.put_workflow(other)
        assert await store.get_workflow("build", "1", "team-a") == other
        with pytest.raises(ConflictError):
            await store.put_workflow(replace(other, namespace=DEFAULT_NAMESPACE))
        await store.commit([], [replace(ex("new"), idempotency_key="k", namespace="team-a")])
        found = await store.find_execution("k", "team-a")
        assert found is not None and found.id == "new"
    async with SqliteStore(path) as again:  # migrated once: opens as the current version
        assert len(await again.list_workflows()) == 3
    with sqlite3.connect(path) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        indexes = {
            n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        pk = [r[1] for r in conn.execute("PRAGMA table_info(workflows)") if r[5]]
    conn.close()
    assert versions == [1, 2, 3, 4, 5, 6]
    assert "executions_idempotency_key" not in indexes  # replaced by the per-namespace one
    assert {"executions_namespace_idempotency_key", "executions_namespace_created"} <= indexes
    assert pk == ["namespace", "name", "version"]


async def test_sqlite_lookups_are_index_searches(tmp_path: Path) -> None:
    """The per-namespace lookups (and the child lookup) search an index, never scan."""
    from coordinator.store import _sqlite, _sqlite_queries

    path = tmp_path / "s.db"
    async with SqliteStore(path):
        pass
    queries: list[tuple[str, Sequence[object]]] = [
        (_sqlite._FIND_BY_KEY, ("team-a", "k")),
        (_sqlite._FIND_CHILD, ("p", "s.c1")),
        _sqlite_queries.list_executions(None, "", 10, "team-a"),
        _sqlite_queries.list_executions({"running", "queued"}, "build", 10, "team-a"),
        # a page past a cursor, and a time range: bounds of the same index search
        _sqlite_queries.list_executions(None, "", 10, "team-a", ExecutionWhere(after=(T0, "x"))),
        _sqlite_queries.list_executions(
            None, "", 10, "team-a", ExecutionWhere(created_after=T0, created_before=T0)
        ),
        _sqlite_queries.list_executions(None, "", 10, "team-a", ExecutionWhere(text="x")),
    ]
    with sqlite3.connect(path) as conn:
        for sql, params in queries:
            plan = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            assert plan[0].startswith("SEARCH executions USING INDEX"), (sql, plan)
        (sql, params) = _sqlite_queries.list_executions(None, "", 10, "team-a")
        plan = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        assert plan == ["SEARCH executions USING INDEX executions_namespace_created (namespace=?)"]
    conn.close()


def test_the_store_knows_the_engines_started_event() -> None:
    """The text search reads inputs from an execution's first event: its types must be
    the engine's (the runtime writes ``execution.queued`` when admission holds a start)."""
    from coordinator.engine import runtime
    from coordinator.engine.events import Started

    assert Started.TYPE == STARTED_TYPE
    assert f'"{QUEUED_TYPE}"' in Path(runtime.__file__).read_text()
