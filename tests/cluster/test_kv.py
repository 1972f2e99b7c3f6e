"""The KV protocol's behaviour, checked identically on MemoryKV and on a real etcd.

Each test runs twice: once on MemoryKV with a fake clock, once on EtcdKV against the
module's etcd member.  Where they must agree they share one assertion, so MemoryKV
cannot drift from etcd's semantics unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from coordinator.kv import (
    KV,
    Compacted,
    Compare,
    Delete,
    KeyValue,
    KVError,
    LeaseNotFound,
    Put,
    Range,
    WatchEvent,
)
from coordinator.kv.etcd import EtcdKV
from coordinator.kv.memory import MemoryKV
from tests.cluster.etcd_server import EtcdCluster

pytestmark = pytest.mark.timeout(30)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    kv: KV
    clock: FakeClock | None  # None: real etcd, real time

    async def wait_gone(self, key: bytes, ttl: int) -> None:
        """Let a lease of ``ttl`` seconds run out and wait until ``key`` is gone."""
        if self.clock is not None:
            self.clock.now += ttl + 0.01
            assert await self.kv.get(key) is None
            return
        # etcd checks expiry every 500 ms and may round the TTL up to its minimum.
        async with asyncio.timeout(ttl + 5):
            # Polling a remote store: there is no local event to wait on.
            while await self.kv.get(key) is not None:  # noqa: ASYNC110
                await asyncio.sleep(0.1)


@pytest.fixture(params=["memory", "etcd"])
async def h(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "memory":
        clock = FakeClock()
        mem = MemoryKV(clock=clock)
        yield Harness(mem, clock)
        await mem.close()
    else:
        # Only the sync server fixture can be fetched lazily; the client is made here.
        cluster: EtcdCluster = request.getfixturevalue("etcd")
        etcd_kv = EtcdKV(cluster.endpoints, timeout=3.0)
        await etcd_kv.delete(b"", prefix=True)
        try:
            yield Harness(etcd_kv, None)
        finally:
            await etcd_kv.close()


async def take(it: AsyncIterator[WatchEvent], n: int, timeout: float = 5.0) -> list[WatchEvent]:
    out: list[WatchEvent] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await anext(it))
    return out


def summary(events: list[WatchEvent]) -> list[tuple[str, bytes, bytes]]:
    return [(e.type, e.kv.key, e.kv.value) for e in events]


async def test_put_get_revisions_and_versions(h: Harness) -> None:
    kv = h.kv
    assert await kv.get(b"a") is None
    r1 = await kv.put(b"a", b"1")
    r2 = await kv.put(b"a", b"2")
    assert r2 == r1 + 1
    got = await kv.get(b"a")
    assert got == KeyValue(b"a", b"2", create_revision=r1, mod_revision=r2, version=2, lease=0)
    # Deleting resets the key's history: a re-created key has a new create revision.
    assert await kv.delete(b"a") == 1
    r3 = await kv.put(b"a", b"3")
    again = await kv.get(b"a")
    assert again is not None
    assert (again.create_revision, again.version) == (r3, 1)


async def test_delete_of_nothing_does_not_bump_revision(h: Harness) -> None:
    kv = h.kv
    rev = await kv.put(b"x", b"1")
    assert await kv.delete(b"missing") == 0
    _, header = await kv.range(b"x")
    assert header == rev


async def test_range_prefix_sorted_by_key_or_create_revision(h: Harness) -> None:
    kv = h.kv
    await kv.put(b"p/c", b"1")
    await kv.put(b"p/a", b"2")
    last = await kv.put(b"p/b", b"3")
    await kv.put(b"q/z", b"outside")
    await kv.put(b"p", b"the prefix itself is not under p/")
    by_key, header = await kv.range(b"p/", prefix=True)
    assert [k.key for k in by_key] == [b"p/a", b"p/b", b"p/c"]
    assert header >= last
    by_create, _ = await kv.range(b"p/", prefix=True, sort_by_create=True)
    assert [k.key for k in by_create] == [b"p/c", b"p/a", b"p/b"]
    first, _ = await kv.range(b"p/", prefix=True, limit=1, sort_by_create=True)
    assert [k.key for k in first] == [b"p/c"]
    everything, _ = await kv.range(b"", prefix=True)
    assert len(everything) == 5
    assert await kv.delete(b"p/", prefix=True) == 3
    assert (await kv.range(b"p/", prefix=True))[0] == []


async def test_txn_create_if_absent_is_the_election_primitive(h: Harness) -> None:
    kv = h.kv
    absent = Compare(b"e/me", "create", "=", 0)
    won = await kv.txn([absent], [Put(b"e/me", b"addr1")], [Range(b"e/me")])
    assert won.succeeded and won.ranges == []
    lost = await kv.txn([absent], [Put(b"e/me", b"addr2")], [Range(b"e/me")])
    assert not lost.succeeded
    assert [k.value for k in lost.ranges[0]] == [b"addr1"]
    assert lost.ranges[0][0].create_revision == won.revision
    # Fencing: a write guarded by our key's create revision holds only while it does.
    fence = Compare(b"e/me", "create", "=", won.revision)
    assert (await kv.txn([fence], [Put(b"state", b"v1")], [])).succeeded
    await kv.delete(b"e/me")
    await kv.put(b"e/me", b"someone else")
    assert not (await kv.txn([fence], [Put(b"state", b"v2")], [])).succeeded
    assert (await kv.get(b"state")) is not None
    assert (await kv.get(b"state")).value == b"v1"  # type: ignore[union-attr]


async def test_txn_compares_on_missing_keys_match_etcd(h: Harness) -> None:
    kv = h.kv
    # A missing key is version 0 / mod 0 / lease 0, and never equals any value, not even b"".
    for c, expected in [
        (Compare(b"nope", "version", "=", 0), True),
        (Compare(b"nope", "mod", "<", 1), True),
        (Compare(b"nope", "lease", "=", 0), True),
        (Compare(b"nope", "value", "=", b""), False),
        (Compare(b"nope", "value", "!=", b"x"), False),
    ]:
        assert (await kv.txn([c], [], [])).succeeded is expected, c
    await kv.put(b"k", b"b")
    for c, expected in [
        (Compare(b"k", "value", ">", b"a"), True),
        (Compare(b"k", "value", "<", b"a"), False),
        (Compare(b"k", "version", ">", 0), True),
    ]:
        assert (await kv.txn([c], [], [])).succeeded is expected, c


async def test_txn_writes_share_one_revision(h: Harness) -> None:
    kv = h.kv
    await kv.put(b"old", b"x")
    res = await kv.txn([], [Put(b"t/1", b"a"), Put(b"t/2", b"b"), Delete(b"old")], [])
    one, two = await kv.get(b"t/1"), await kv.get(b"t/2")
    assert one is not None and two is not None
    assert one.mod_revision == two.mod_revision == res.revision
    assert await kv.get(b"old") is None


async def test_txn_rejects_duplicate_puts(h: Harness) -> None:
    with pytest.raises(KVError):
        await h.kv.txn([], [Put(b"d", b"1"), Put(b"d", b"2")], [])
    assert await h.kv.get(b"d") is None


async def test_lease_keepalive_expiry_and_revoke(h: Harness) -> None:
    kv = h.kv
    lease = await kv.grant(1)
    await kv.put(b"l/a", b"1", lease=lease)
    await kv.put(b"l/b", b"2", lease=lease)
    got = await kv.get(b"l/a")
    assert got is not None and got.lease == lease
    assert await kv.keepalive(lease) >= 1
    assert (await kv.txn([Compare(b"l/a", "lease", "=", lease)], [], [])).succeeded
    await h.wait_gone(b"l/a", 1)
    assert await kv.get(b"l/b") is None
    with pytest.raises(LeaseNotFound):
        await kv.keepalive(lease)
    with pytest.raises(LeaseNotFound):
        await kv.put(b"l/c", b"3", lease=lease)

    other = await kv.grant(30)
    await kv.put(b"l/d", b"4", lease=other)
    await kv.revoke(other)
    assert await kv.get(b"l/d") is None
    with pytest.raises(LeaseNotFound):
        await kv.revoke(other)


async def test_watch_from_revision_sees_history_and_live_events_in_order(h: Harness) -> None:
    kv = h.kv
    start = await kv.put(b"w/a", b"1")
    await kv.put(b"w/b", b"2")
    await kv.put(b"elsewhere", b"-")
    await kv.delete(b"w/a")
    watch = kv.watch(b"w/", prefix=True, start_revision=start)
    try:
        history = await take(watch, 3)
        assert summary(history) == [
            ("put", b"w/a", b"1"),
            ("put", b"w/b", b"2"),
            ("delete", b"w/a", b""),
        ]
        assert [e.revision for e in history] == sorted(e.revision for e in history)
        assert history[0].revision == start
        rev = await kv.put(b"w/c", b"3")
        live = await take(watch, 1)
        assert summary(live) == [("put", b"w/c", b"3")]
        assert live[0].revision == rev
        assert live[0].kv.create_revision == rev
    finally:
        await watch.aclose()  # type: ignore[attr-defined]


async def test_watch_single_key_and_lease_expiry_events(h: Harness) -> None:
    kv = h.kv
    lease = await kv.grant(1)
    rev = await kv.put(b"k", b"v", lease=lease)
    watch = kv.watch(b"k", start_revision=rev)
    try:
        assert summary(await take(watch, 1)) == [("put", b"k", b"v")]
        await h.wait_gone(b"k", 1)
        assert summary(await take(watch, 1)) == [("delete", b"k", b"")]
    finally:
        await watch.aclose()  # type: ignore[attr-defined]


async def test_compaction_makes_older_watches_raise_compacted(h: Harness) -> None:
    kv = h.kv
    old = await kv.put(b"c", b"1")
    await kv.put(b"c", b"2")
    now = await kv.put(b"c", b"3")
    await kv.compact(now)
    watch = kv.watch(b"c", start_revision=old)
    with pytest.raises(Compacted) as info:
        async with asyncio.timeout(5):
            await anext(watch)
    assert info.value.revision == now
    # The recovery path: re-list, then watch from the listing's revision + 1.
    kvs, header = await kv.range(b"c")
    assert [k.value for k in kvs] == [b"3"]
    resumed = kv.watch(b"c", start_revision=header + 1)
    try:
        await kv.put(b"c", b"4")
        assert summary(await take(resumed, 1)) == [("put", b"c", b"4")]
    finally:
        await resumed.aclose()  # type: ignore[attr-defined]


async def test_cancelling_a_watch_releases_it(h: Harness) -> None:
    kv = h.kv
    rev = await kv.put(b"z", b"0")
    watching = asyncio.Event()

    async def consume() -> None:
        # From ``rev``: the first event proves the watch is established; the task then
        # waits inside the watch for the next one, which is where it is cancelled.
        async for _ in kv.watch(b"z", start_revision=rev):
            watching.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(5):
        await watching.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task
    assert task.cancelled()
    if isinstance(kv, MemoryKV):
        assert kv._watchers == []
    # The store still works and a new watch still sees events.
    watch = kv.watch(b"z", start_revision=rev)
    try:
        assert summary(await take(watch, 1)) == [("put", b"z", b"0")]
    finally:
        await watch.aclose()  # type: ignore[attr-defined]


async def test_health_reports_a_leader(h: Harness) -> None:
    health = await h.kv.health()
    assert health["healthy"] is True
    assert health["leader"]
    assert len(health["members"]) == 1
