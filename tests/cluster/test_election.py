"""Election and fencing on the in-memory KV: campaign order, resign, expiry, fencing."""

from __future__ import annotations

import asyncio

import pytest

from coordinator.kv import Put
from coordinator.kv.election import Election, ElectionError, Fenced, Session
from coordinator.kv.etcd import EtcdKV
from coordinator.kv.memory import MemoryKV
from tests.cluster.etcd_server import EtcdCluster
from tests.conftest import eventually


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watching(kv: MemoryKV, key: bytes) -> bool:
    """Whether a watch on ``key`` (or on the prefix ``key``) is established in ``kv``."""
    return any(w.start == key for w in kv._watchers)


async def test_first_candidate_leads_and_the_next_waits_for_it() -> None:
    kv = MemoryKV()
    async with Session(kv, ttl=10) as s1, Session(kv, ttl=10) as s2:
        e1, e2 = Election(s1, "/am/leader"), Election(s2, "/am/leader")
        await e1.campaign(b"replica-1")
        assert e1.leading
        second = asyncio.create_task(e2.campaign(b"replica-2"))
        # Campaigning, the second candidate watches its predecessor's key: it waits.
        await eventually(lambda: second.done() or watching(kv, e1.key), timeout=2)
        assert not second.done(), "the second candidate must wait for the first"
        leader = await e1.leader()
        assert leader is not None and leader.value == b"replica-1"
        await e1.resign()
        await asyncio.wait_for(second, 2)
        leader = await e2.leader()
        assert leader is not None and leader.value == b"replica-2"


async def test_fencing_refuses_a_deposed_leaders_writes() -> None:
    clock = Clock()
    kv = MemoryKV(clock=clock)
    old = Session(kv, ttl=5, clock=clock)
    await old.open()
    e_old = Election(old, "/am/leader")
    await e_old.campaign(b"old")
    fence = e_old.fence()
    # the old leader "pauses" past its TTL: the lease expires in etcd
    clock.now += 10
    kv.expire()
    assert not old.alive, "a session must not trust a lease past its TTL"
    async with Session(kv, ttl=5, clock=clock) as new:
        e_new = Election(new, "/am/leader")
        await asyncio.wait_for(e_new.campaign(b"new"), 2)
        # the old leader wakes up and writes with its fence: refused
        result = await kv.txn([fence], [Put(b"/am/state/x", b"stale")], [])
        assert not result.succeeded
        assert await kv.get(b"/am/state/x") is None
        with pytest.raises(Fenced):
            await e_old.proclaim(b"still me?")
        # the new leader's fenced writes go through
        ok = await kv.txn([e_new.fence()], [Put(b"/am/state/x", b"fresh")], [])
        assert ok.succeeded
    await old.close()


async def test_observe_follows_leadership_changes() -> None:
    kv = MemoryKV()
    async with Session(kv, ttl=10) as s1, Session(kv, ttl=10) as s2:
        e1, e2 = Election(s1, "/am/leader"), Election(s2, "/am/leader")
        seen: list[bytes | None] = []

        async def watch() -> None:
            # observe() may merge changes that happen in a burst; it must end on the latest
            async for leader in e2.observe():
                seen.append(None if leader is None else leader.value)
                if seen[-1] == b"two":
                    return

        watcher = asyncio.create_task(watch())
        # observe() has yielded the first leader (none) and watches for changes.
        await eventually(lambda: watching(kv, b"/am/leader/"), timeout=2)
        assert seen == [None]
        await e1.campaign(b"one")
        await e1.resign()
        await e2.campaign(b"two")
        await asyncio.wait_for(watcher, 2)
        assert seen[0] is None and seen[-1] == b"two"


async def test_cancelled_campaign_withdraws_the_candidacy() -> None:
    kv = MemoryKV()
    async with Session(kv, ttl=10) as s1, Session(kv, ttl=10) as s2:
        e1, e2 = Election(s1, "/am/leader"), Election(s2, "/am/leader")
        await e1.campaign(b"one")
        pending = asyncio.create_task(e2.campaign(b"two"))
        # The candidacy key is written and the campaign waits on its predecessor.
        await eventually(lambda: pending.done() or watching(kv, e1.key), timeout=2)
        kvs, _ = await kv.range(b"/am/leader/", prefix=True)
        assert [k.value for k in kvs] == [b"one", b"two"]
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        kvs, _ = await kv.range(b"/am/leader/", prefix=True)
        assert [k.value for k in kvs] == [b"one"]


async def test_session_ttl_is_validated() -> None:
    with pytest.raises(ValueError, match="under 2 s"):
        Session(MemoryKV(), ttl=1)
    assert issubclass(Fenced, ElectionError)


async def test_a_paused_leader_is_fenced_on_real_etcd(etcd: EtcdCluster) -> None:
    """The SIGSTOP scenario at the KV level: the old leader's keepalive stops past its
    TTL, another replica is elected, and the old one's guarded writes are refused."""
    kv_old = EtcdKV(etcd.endpoints, timeout=3.0)
    kv_new = EtcdKV(etcd.endpoints, timeout=3.0)
    try:
        await kv_old.delete(b"/fence/", prefix=True)
        old = Session(kv_old, ttl=2)
        await old.open()
        e_old = Election(old, "/fence/leader")
        await e_old.campaign(b"old")
        fence = e_old.fence()
        assert old._task is not None
        old._task.cancel()  # "paused": no more keepalives, and no revoke either
        async with Session(kv_new, ttl=2) as new:
            e_new = Election(new, "/fence/leader")
            await asyncio.wait_for(e_new.campaign(b"new"), 10)  # waits for the lease to expire
            assert not old.alive
            refused = await kv_old.txn([fence], [Put(b"/fence/state", b"stale")], [])
            assert not refused.succeeded
            assert await kv_new.get(b"/fence/state") is None
            with pytest.raises(Fenced):
                await e_old.proclaim(b"still me?")
            accepted = await kv_new.txn([e_new.fence()], [Put(b"/fence/state", b"fresh")], [])
            assert accepted.succeeded
            leader = await e_new.leader()
            assert leader is not None and leader.value == b"new"
        await old.close()
    finally:
        await kv_old.close()
        await kv_new.close()
