"""EtcdStore: the store contract tests of tests/unit/test_store.py, plus etcd's own
concerns (layout, txn limits, value size, fencing, outage), on MemoryKV and real etcd.

Every test gets a fresh prefix, so tests share the module's etcd member but never a key.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import pytest

from coordinator.errors import ElectionError
from coordinator.kv import KV, Compare, KVUnavailable, Op, Put, TxnResult
from coordinator.kv.election import Election, NotCampaigning, Session
from coordinator.kv.etcd import EtcdKV
from coordinator.kv.memory import MemoryKV
from coordinator.store import (
    ConflictError,
    EtcdStore,
    Fenced,
    Store,
    StoreError,
    StoreUnavailable,
    WorkflowRecord,
    open_store,
)
from tests.cluster.etcd_server import EtcdCluster
from tests.conftest import eventually
from tests.unit.test_store import (
    T0,
    ev,
    ex,
    seqs,
    test_append_and_load_in_order,
    test_close_is_idempotent_and_later_calls_fail,
    test_concurrent_commits_are_grouped_and_all_land,
    test_execution_upsert_and_last_seq,
    test_find_child_by_parent_and_key,
    test_find_execution_by_idempotency_key,
    test_invalid_event_rejected_and_nothing_written,
    test_list_executions_filters_and_orders_newest_first,
    test_list_executions_pages_ranges_children_and_text,
    test_seq_conflict_writes_nothing_of_the_batch,
    test_sequential_commits_to_one_execution_stay_contiguous,
    test_values_round_trip_as_utc_json,
    test_workflows,
)

# The contract tests, collected again here: pytest resolves their ``store`` fixture in
# this module, i.e. against EtcdStore on both KVs (the test_store module is not edited).
from tests.unit.test_store_documents import (
    test_bad_documents_are_refused_and_write_nothing,
    test_kinds_and_namespaces_keep_documents_apart,
    test_names_that_look_like_paths_stay_one_document,
    test_put_get_replace_delete,
)

__all__ = [
    "test_append_and_load_in_order",
    "test_bad_documents_are_refused_and_write_nothing",
    "test_close_is_idempotent_and_later_calls_fail",
    "test_concurrent_commits_are_grouped_and_all_land",
    "test_execution_upsert_and_last_seq",
    "test_find_child_by_parent_and_key",
    "test_find_execution_by_idempotency_key",
    "test_invalid_event_rejected_and_nothing_written",
    "test_kinds_and_namespaces_keep_documents_apart",
    "test_list_executions_filters_and_orders_newest_first",
    "test_list_executions_pages_ranges_children_and_text",
    "test_names_that_look_like_paths_stay_one_document",
    "test_put_get_replace_delete",
    "test_seq_conflict_writes_nothing_of_the_batch",
    "test_sequential_commits_to_one_execution_stay_contiguous",
    "test_values_round_trip_as_utc_json",
    "test_workflows",
]

# Each test is bounded well under the suite's 120 s default: a hang is a failure here.
pytestmark = pytest.mark.timeout(60)


@dataclass
class Env:
    kv: KV
    prefix: str

    def store(
        self,
        fence: Callable[[], Compare | None] | None = None,
        max_txn_ops: int = 128,
        max_value_bytes: int = 1_000_000,
        max_txn_bytes: int = 1_500_000,
        unavailable_timeout: float = 30.0,
    ) -> EtcdStore:
        return EtcdStore(
            self.kv,
            self.prefix,
            fence,
            max_txn_ops,
            max_value_bytes,
            max_txn_bytes=max_txn_bytes,
            unavailable_timeout=unavailable_timeout,
        )


@pytest.fixture(params=["memory", "etcd"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    prefix = f"/test-store/{uuid.uuid4().hex}"
    if request.param == "memory":
        yield Env(MemoryKV(), prefix)
        return
    # Only the sync server fixture can be fetched lazily; the client is made here.
    cluster: EtcdCluster = request.getfixturevalue("etcd")
    kv = EtcdKV(cluster.endpoints, timeout=3.0)
    try:
        yield Env(kv, prefix)
    finally:
        await kv.delete(prefix.encode() + b"/", prefix=True)
        await kv.close()


@pytest.fixture
async def store(env: Env) -> AsyncIterator[Store]:
    s = env.store()
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def keys(env: Env) -> list[str]:
    kvs, _ = await env.kv.range(env.prefix.encode() + b"/", prefix=True)
    return [kv.key.decode()[len(env.prefix) + 1 :] for kv in kvs]


def test_open_store_points_to_the_constructor() -> None:
    with pytest.raises(ValueError, match="construct EtcdStore"):
        open_store("etcd")
    assert issubclass(Fenced, ElectionError) and issubclass(StoreUnavailable, StoreError)


async def test_layout_escapes_ids_and_keeps_heads_apart(env: Env) -> None:
    async with env.store() as s:
        await s.commit([ev("a", 1), ev("a", 2), ev("a/b", 1)], [ex("a")])
        await s.put_workflow(WorkflowRecord("build/x", "1.0", {"steps": []}, T0))
        assert await keys(env) == [
            "events/a%2Fb/000000000001",
            "events/a/000000000001",
            "events/a/000000000002",
            "executions/a",
            "heads/a",
            "heads/a%2Fb",
            "ns/default/workflows/build%2Fx/1.0",
        ]
        # "a/b" is another execution, not events under "a".
        assert await seqs(s, "a") == [1, 2] and await seqs(s, "a/b") == [1]
        got = await s.get_workflow("build/x")
        assert got is not None and got.name == "build/x"
        # A fresh store over the same keys reads the same state (another replica).
        async with env.store() as other:
            record = await other.get_execution("a")
            assert record is not None and record.last_seq == 2


async def test_batch_over_max_txn_ops_is_refused_whole(env: Env) -> None:
    async with env.store(max_txn_ops=8) as s:
        # 7 events + 1 head = 8 operations: fits.
        await s.commit([ev("a", i) for i in range(1, 8)])
        # 8 events + 1 head = 9: refused, nothing written, and the caller can split.
        with pytest.raises(StoreError, match=r"needs 9 etcd operations.*limit of 8"):
            await s.commit([ev("a", i) for i in range(8, 16)])
        assert await seqs(s, "a") == list(range(1, 8))
        await s.commit([ev("a", i) for i in range(8, 12)])
        await s.commit([ev("a", i) for i in range(12, 16)])
        assert await seqs(s, "a") == list(range(1, 16))
        # Index rows count too; one row per id even if the batch repeats it.
        with pytest.raises(StoreError, match="needs 9 etcd operations"):
            await s.commit([], [ex(f"e{i}") for i in range(9)])
        await s.commit([], [ex("x", "queued"), ex("x", "running")] * 4)
        got = await s.get_execution("x")
        assert got is not None and got.status == "running"


async def test_oversize_values_are_refused_naming_the_event(env: Env) -> None:
    async with env.store(max_value_bytes=1000, max_txn_bytes=5000) as s:
        with pytest.raises(StoreError, match=r"event 'a' seq 2: stored value is \d+ bytes"):
            await s.commit([ev("a", 1), ev("a", 2, {"blob": "x" * 1000})], [ex("a")])
        with pytest.raises(
            StoreError, match="over the etcd store's 5000 byte limit per transaction"
        ):
            await s.commit([ev("a", i, {"blob": "x" * 800}) for i in range(1, 8)])
        with pytest.raises(StoreError, match="workflow 'w' version '1': stored value"):
            await s.put_workflow(WorkflowRecord("w", "1", {"blob": "x" * 1000}, T0))
        assert await keys(env) == []


async def test_real_etcd_limit_would_refuse_what_the_store_lets_through(
    etcd: EtcdCluster,
) -> None:
    # Why max_txn_ops defaults to etcd's 128: past it etcd refuses the whole txn itself.
    kv = EtcdKV(etcd.endpoints, timeout=3.0)
    prefix = f"/test-store/{uuid.uuid4().hex}"
    try:
        async with EtcdStore(kv, prefix, max_txn_ops=1000) as s:
            with pytest.raises(StoreError, match="etcd refused the request"):
                await s.commit([ev("a", i) for i in range(1, 200)])
            assert await s.load_events("a") == []
    finally:
        await kv.delete(prefix.encode() + b"/", prefix=True)
        await kv.close()


async def test_pipelined_commits_apply_in_call_order(env: Env) -> None:
    """The engine submits turn N+1 before turn N has landed; like the other stores, the
    etcd store applies batches in call order (no spurious seq gap)."""
    async with env.store() as store:
        batches = [
            [ev("a", 2 * i + 1, {"i": i}), ev("b", i + 1, {"i": i}), ev("a", 2 * i + 2, {})]
            for i in range(20)
        ]
        await asyncio.gather(*(store.commit(b) for b in batches))
        assert [e.seq for e in await store.load_events("a")] == list(range(1, 41))
        assert [e.data["i"] for e in await store.load_events("b")] == list(range(20))


async def test_two_replicas_racing_on_one_execution(env: Env) -> None:
    async with env.store() as one, env.store() as two:
        results = await asyncio.gather(
            one.commit([ev("a", 1, {"by": 1})]),
            two.commit([ev("a", 1, {"by": 2})]),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], ConflictError), results
        (event,) = await one.load_events("a")
        assert event.data == {"by": 1 if results[0] is None else 2}


async def test_fencing_refuses_a_deposed_leader(env: Env) -> None:
    election_prefix = f"{env.prefix}/leader"
    async with Session(env.kv, ttl=5) as s1, Session(env.kv, ttl=5) as s2:
        first = Election(s1, election_prefix)
        await asyncio.wait_for(first.campaign(b"one"), 10)
        stale: Compare = first.fence()
        # What a paused leader still holds: the compare it campaigned with.
        deposed = env.store(fence=lambda: stale)
        current = env.store(fence=first.fence)
        async with deposed, current:
            await deposed.commit([ev("a", 1)], [ex("a")])
            await deposed.put_workflow(WorkflowRecord("w", "1", {}, T0))

            await first.resign()
            second = Election(s2, election_prefix)
            await asyncio.wait_for(second.campaign(b"two"), 10)
            before = await keys(env)

            for write in (
                deposed.commit([ev("a", 2)], [ex("a", "completed")]),
                deposed.commit([], [ex("b")]),
                deposed.put_workflow(WorkflowRecord("w", "2", {}, T0)),
                deposed.delete_workflow("w"),
                # The store built on first.fence: resigned, so refused before etcd.
                current.commit([ev("a", 2)]),
            ):
                with pytest.raises(Fenced, match="no longer the leader"):
                    await write
            assert await keys(env) == before

            # The new leader's store writes fine.
            async with env.store(fence=second.fence) as leading:
                await leading.commit([ev("a", 2)], [ex("a", "completed")])
                assert await seqs(leading, "a") == [1, 2]
                assert await leading.delete_workflow("w") == 1
            await second.resign()


async def test_unavailable_kv_raises_store_unavailable_then_recovers() -> None:
    kv = MemoryKV()
    async with EtcdStore(kv, "/p", unavailable_timeout=0, unavailable_grace=0) as s:
        await s.commit([ev("a", 1)], [ex("a")])
        assert s.available and s.max_batch_ops == 127
        kv.set_unavailable(True)
        for call in (
            s.commit([ev("a", 2)]),
            s.load_events("a"),
            s.get_execution("a"),
            s.list_executions(),
            s.get_workflow("w"),
            s.list_workflows(),
            s.put_workflow(WorkflowRecord("w", "1", {}, T0)),
            s.delete_workflow("w"),
        ):
            with pytest.raises(StoreUnavailable, match="etcd is unavailable"):
                await call
        assert not s.available
        kv.set_unavailable(False)
        await s.commit([ev("a", 2)])
        assert s.available
        assert await seqs(s, "a") == [1, 2]


class CountingKV(MemoryKV):
    """A MemoryKV that counts the transactions it refused as unavailable: every commit
    attempt starts with one (reading the heads), so this counts a commit's retries."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def txn(
        self, compares: Sequence[Compare], success_ops: Sequence[Op], failure_ops: Sequence[Op]
    ) -> TxnResult:
        try:
            return await super().txn(compares, success_ops, failure_ops)
        except KVUnavailable:
            self.refused += 1
            raise


async def test_commit_rides_out_a_short_outage() -> None:
    kv = CountingKV()
    async with EtcdStore(kv, "/p", unavailable_grace=0) as s:
        await s.commit([ev("a", 1)], [ex("a")])
        kv.set_unavailable(True)
        pending = asyncio.create_task(s.commit([ev("a", 2)], [ex("a", "completed")]))
        # Several backoffs: the first attempt and three retries were refused.
        await eventually(lambda: pending.done() or kv.refused >= 4, timeout=5)
        assert not pending.done() and not s.available
        kv.set_unavailable(False)
        await asyncio.wait_for(pending, 2)
        assert s.available
        assert await seqs(s, "a") == [1, 2]
        got = await s.get_execution("a")
        assert got is not None and got.status == "completed" and got.last_seq == 2


async def test_commit_gives_up_after_unavailable_timeout() -> None:
    kv = MemoryKV()
    async with EtcdStore(kv, "/p", unavailable_timeout=0.3, unavailable_grace=0) as s:
        kv.set_unavailable(True)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(StoreUnavailable, match=r"after 0.3 s of retries; nothing of the"):
            await s.commit([ev("a", 1)])
        assert 0.25 < loop.time() - t0 < 1.5
        assert not s.available
        kv.set_unavailable(False)
        assert await seqs(s, "a") == []
    with pytest.raises(ValueError, match="unavailable_timeout"):
        EtcdStore(kv, "/p", unavailable_timeout=-1)


async def test_available_stays_true_through_a_blip_shorter_than_the_grace() -> None:
    """One failed call (an etcd member died under the request) is not an outage: the
    store reports unavailable only once calls have kept failing for the grace period."""
    kv = MemoryKV()
    async with EtcdStore(kv, "/p", unavailable_grace=0.3) as s:
        await s.commit([ev("a", 1)], [ex("a")])
        kv.set_unavailable(True)
        with pytest.raises(StoreUnavailable):
            await s.get_execution("a")
        assert s.available  # failing, but not for long yet
        await eventually(lambda: not s.available, timeout=5)
        kv.set_unavailable(False)
        assert (await s.get_execution("a")) is not None
        assert s.available
        # A later single failure starts a new grace period instead of continuing the old.
        kv.set_unavailable(True)
        with pytest.raises(StoreUnavailable):
            await s.load_events("a")
        assert s.available
        kv.set_unavailable(False)


class InDoubtKV(MemoryKV):
    """A KV whose next writing transaction raises KVUnavailable, having been applied
    (``applied=True``: the reply was lost) or not (the request was lost)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next: bool | None = None  # None: behave; else: applied or not
        self.failed = asyncio.Event()  # set once that transaction has raised
        self.writes = 0

    async def txn(
        self, compares: Sequence[Compare], success_ops: Sequence[Op], failure_ops: Sequence[Op]
    ) -> TxnResult:
        writing = any(isinstance(op, Put) for op in success_ops)
        applied = self.fail_next
        if writing and applied is not None:
            self.fail_next = None
            if applied:
                result = await super().txn(compares, success_ops, failure_ops)
                self.writes += result.succeeded
            self.failed.set()
            raise KVUnavailable("connection lost after sending")
        result = await super().txn(compares, success_ops, failure_ops)
        self.writes += writing and result.succeeded
        return result


@pytest.mark.parametrize("applied", [True, False])
async def test_an_in_doubt_commit_is_resolved_and_never_written_twice(applied: bool) -> None:
    kv = InDoubtKV()
    async with EtcdStore(kv, "/p") as s:
        await s.commit([ev("a", 1)], [ex("a")])
        revision = kv.revision
        kv.fail_next = applied
        await asyncio.wait_for(s.commit([ev("a", 2), ev("a", 3), ev("b", 1)], [ex("b")]), 2)
        # Written exactly once: by the failed attempt, or else by the retry.
        assert kv.writes == 2 and kv.revision == revision + 1
        assert await seqs(s, "a") == [1, 2, 3] and await seqs(s, "b") == [1]
        # The next commit continues at the right seq, and a repeat is a conflict.
        await s.commit([ev("a", 4)])
        with pytest.raises(ConflictError):
            await s.commit([ev("b", 1)])
        assert await seqs(s, "a") == [1, 2, 3, 4] and s.available


async def test_an_in_doubt_commit_that_did_not_land_conflicts_if_another_did() -> None:
    # The in-doubt batch was not applied, and meanwhile seq 2 was written by someone
    # else (a second, unfenced writer): the retry must not take that for its own.
    kv = InDoubtKV()
    async with EtcdStore(kv, "/p") as s, EtcdStore(kv, "/p") as other:
        await s.commit([ev("a", 1)])
        kv.fail_next = False
        pending = asyncio.create_task(s.commit([ev("a", 2, {"by": "s"})]))
        # The lost transaction has raised: ``s`` is in its first backoff (50 ms), so
        # ``other`` writes seq 2 before the retry re-reads the head.
        async with asyncio.timeout(2):
            await kv.failed.wait()
        await other.commit([ev("a", 2, {"by": "other"})])
        with pytest.raises(ConflictError):
            await asyncio.wait_for(pending, 2)
        (*_, last) = await s.load_events("a")
        assert last.data == {"by": "other"}


async def test_a_fence_lost_during_the_outage_stops_the_retries() -> None:
    kv = CountingKV()
    leading = True
    fence = Compare(b"/p/leader", "create", "=", 0)  # holds: the key is absent

    def current_fence() -> Compare:
        if not leading:
            raise NotCampaigning("session lost")
        return fence

    async with EtcdStore(kv, "/p", fence=current_fence) as s:
        await s.commit([ev("a", 1)])
        kv.set_unavailable(True)
        pending = asyncio.create_task(s.commit([ev("a", 2)]))
        # Riding out the outage: refused, backed off and retried at least once.
        await eventually(lambda: pending.done() or kv.refused >= 2, timeout=5)
        assert not pending.done()
        leading = False
        with pytest.raises(Fenced, match="no longer the leader"):
            await asyncio.wait_for(pending, 2)
        kv.set_unavailable(False)
        assert await seqs(s, "a") == [1]


async def test_close_waits_for_a_commit_riding_out_an_outage() -> None:
    kv = CountingKV()
    s = EtcdStore(kv, "/p")
    await s.open()
    kv.set_unavailable(True)
    pending = asyncio.create_task(s.commit([ev("a", 1)]))
    await eventually(lambda: kv.refused >= 1, timeout=5)  # the commit met the outage
    closing = asyncio.create_task(s.close())
    # close() has begun, and the commit retried again since: close is still waiting.
    refused = kv.refused
    await eventually(lambda: s._closed and kv.refused > refused, timeout=5)
    assert not closing.done() and not pending.done()
    kv.set_unavailable(False)
    await asyncio.wait_for(asyncio.gather(pending, closing), 2)
    async with EtcdStore(kv, "/p") as again:
        assert await seqs(again, "a") == [1]


async def test_cancelled_commit_is_still_written(env: Env) -> None:
    s = env.store()
    await s.open()
    task = asyncio.create_task(s.commit([ev("a", 1)], [ex("a")]))
    # One step lets commit() run up to its first await: it has submitted its batch as a
    # task of its own (not yet run) and waits for it. No I/O happened yet, on any KV.
    await asyncio.sleep(0)
    assert s._inflight and not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await s.close()  # waits for the submitted batch
    async with env.store() as again:
        assert await seqs(again, "a") == [1]


async def test_close_leaves_the_kv_open_and_size_is_zero(env: Env) -> None:
    async with env.store() as s:
        await s.commit([ev("a", 1)])
        assert s.size_bytes() == 0
    assert await env.kv.get(f"{env.prefix}/heads/a".encode()) is not None


async def test_commit_in_flight_while_etcd_restarts(etcd: EtcdCluster) -> None:
    """The single member goes away for about a second with a commit pending: the commit
    lands once etcd is back, exactly once, and the next one follows on."""
    kv = EtcdKV(etcd.endpoints, timeout=1.0, connect_timeout=0.5)
    prefix = f"/test-store/{uuid.uuid4().hex}"
    try:
        async with EtcdStore(kv, prefix, unavailable_timeout=20, unavailable_grace=0.5) as s:
            await s.commit([ev("a", 1)], [ex("a")])
            etcd.kill(0)
            try:
                pending = asyncio.create_task(s.commit([ev("a", 2), ev("a", 3)]))
                # Unavailable once the calls have kept failing for the grace period,
                # and the commit still waiting for etcd rather than given up.
                await eventually(lambda: not s.available, timeout=10)
                assert not pending.done()
            finally:
                await asyncio.to_thread(etcd.restart, 0)
            await asyncio.wait_for(pending, 20)
            assert s.available
            await s.commit([ev("a", 4)])
            assert await seqs(s, "a") == [1, 2, 3, 4]
            kvs, _ = await kv.range(f"{prefix}/events/".encode(), prefix=True)
            assert len(kvs) == 4
    finally:
        if not etcd.members[0].running:
            await asyncio.to_thread(etcd.restart, 0)
        await kv.delete(prefix.encode() + b"/", prefix=True)
        await kv.close()
