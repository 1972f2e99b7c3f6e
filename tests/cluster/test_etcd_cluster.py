"""EtcdKV against a three-member etcd cluster losing and regaining members.

One scenario, in order, because each step starts from the previous one's state:
kill the Raft leader (quorum kept: writes resume after a short election, through the
client's failover to a live endpoint), kill a second member (no quorum: calls fail with
KVUnavailable in bounded time, health says unhealthy), restart both (writes succeed again).

Then the cluster-mode pieces on top: a ``Session`` and an ``EtcdStore`` commit outlive the
loss of the Raft leader member (quorum kept), riding out the election in between.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest

from coordinator.kv import KVUnavailable
from coordinator.kv.election import Election, Session
from coordinator.kv.etcd import EtcdKV
from coordinator.store import EtcdStore
from tests.cluster.etcd_server import EtcdCluster
from tests.conftest import eventually
from tests.unit.test_store import ev, ex, seqs

pytestmark = pytest.mark.timeout(90)

# Per-request bounds for the client under test: a lost quorum must surface fast.
TIMEOUT = 1.0
CONNECT_TIMEOUT = 0.5


async def put_until_ok(kv: EtcdKV, key: bytes, within: float) -> float:
    """Retry a put through KVUnavailable; returns the seconds it took."""
    t0 = time.monotonic()
    async with asyncio.timeout(within):
        while True:
            try:
                await kv.put(key, b"v")
                return time.monotonic() - t0
            except KVUnavailable:
                await asyncio.sleep(0.1)


async def leader_index(kv: EtcdKV, cluster: EtcdCluster, within: float = 10.0) -> int:
    """The Raft leader's member index. Retried: on a loaded machine a member that was
    just restarted may not answer its status within the client's connect timeout."""
    deadline = time.monotonic() + within
    while True:
        health = await kv.health()
        leader = health["leader"]
        for i, m in enumerate(cluster.members):
            if health["endpoints"][m.endpoint].get("member_id") == leader:
                return i
        if time.monotonic() > deadline:
            raise AssertionError(f"no reachable leader among members: {health}")
        await asyncio.sleep(0.1)


@pytest.fixture
def cluster(etcd_cluster: EtcdCluster) -> Iterator[EtcdCluster]:
    yield etcd_cluster
    # Leave every member running for the next test of the module.
    down = [i for i, m in enumerate(etcd_cluster.members) if not m.running]
    for i in down:
        etcd_cluster.restart(i, wait=False)
    etcd_cluster.wait_healthy(etcd_cluster.members)


async def test_member_loss_quorum_kept_then_lost_then_recovered(cluster: EtcdCluster) -> None:
    async with EtcdKV(cluster.endpoints, timeout=TIMEOUT, connect_timeout=CONNECT_TIMEOUT) as kv:
        await kv.put(b"k", b"before")
        assert (await kv.health())["healthy"]
        assert len((await kv.health())["members"]) == 3

        # 1. Kill the leader: a new one is elected among the two left; writes resume.
        first = await leader_index(kv, cluster)
        cluster.kill(first)
        took = await put_until_ok(kv, b"k", within=5.0)
        # Once a leader exists again, writes go through without errors.
        for i in range(20):
            await kv.put(b"k", str(i).encode())
        got = await kv.get(b"k")
        assert got is not None and got.value == b"19"
        health = await kv.health()
        assert health["healthy"]
        assert not health["endpoints"][cluster.members[first].endpoint]["reachable"]
        print(f"writes resumed {took:.2f}s after killing the leader")

        # 2. Kill a second member: no quorum. Every call fails, fast and retryably.
        second = next(i for i, m in enumerate(cluster.members) if m.running)
        cluster.kill(second)
        t0 = time.monotonic()
        with pytest.raises(KVUnavailable):
            # A put may still land if sent before the survivor noticed; keep writing
            # until the loss shows, which must happen within a few request timeouts.
            async with asyncio.timeout(10):
                while True:
                    await kv.put(b"k", b"no quorum")
        with pytest.raises(KVUnavailable):
            await kv.get(b"k")
        assert time.monotonic() - t0 < 10
        assert not (await kv.health())["healthy"]

        # 3. Restart both: quorum returns and writes succeed again.
        cluster.restart(first, wait=False)
        cluster.restart(second, wait=False)
        took = await put_until_ok(kv, b"k", within=15.0)
        got = await kv.get(b"k")
        assert got is not None and got.value == b"v"
        assert (await kv.health())["healthy"]
        print(f"writes resumed {took:.2f}s after restarting two members")


async def test_failover_to_a_live_endpoint_when_the_first_is_down(cluster: EtcdCluster) -> None:
    # A follower, listed first, is dead before the client ever connects: every call
    # (writes included, since nothing was sent) moves on to the next endpoint.
    async with EtcdKV(cluster.endpoints, timeout=TIMEOUT, connect_timeout=CONNECT_TIMEOUT) as kv:
        leader = await leader_index(kv, cluster)
    follower = next(i for i in range(3) if i != leader)
    cluster.kill(follower)
    endpoints = [cluster.members[follower].endpoint] + [
        m.endpoint for i, m in enumerate(cluster.members) if i != follower
    ]
    async with EtcdKV(endpoints, timeout=TIMEOUT, connect_timeout=CONNECT_TIMEOUT) as kv:
        async with asyncio.timeout(15):  # functional, not a speed test: a loaded CI box is slow
            rev = await kv.put(b"f", b"1")
            got = await kv.get(b"f")
            assert got is not None and got.mod_revision == rev
            lease = await kv.grant(5)
            assert await kv.keepalive(lease) >= 1
            await kv.revoke(lease)


async def test_session_and_store_survive_losing_the_raft_leader(cluster: EtcdCluster) -> None:
    prefix = f"/test-cluster/{uuid.uuid4().hex}"
    async with EtcdKV(cluster.endpoints, timeout=TIMEOUT, connect_timeout=CONNECT_TIMEOUT) as kv:
        async with Session(kv, ttl=5) as session:
            election = Election(session, f"{prefix}/leader")
            await asyncio.wait_for(election.campaign(b"me"), 5)
            async with EtcdStore(kv, prefix, fence=election.fence) as store:
                await store.commit([ev("a", 1)], [ex("a")])
                # Kill the Raft leader (and, if it is the first endpoint, the member the
                # client talks to): the commit issued right after rides out the election.
                cluster.kill(await leader_index(kv, cluster))
                trusted_until = session._valid_until  # moves on with each good keepalive
                await asyncio.wait_for(store.commit([ev("a", 2)], [ex("a", "completed")]), 10)
                # The session kept its lease throughout: a keepalive succeeded after the
                # kill (every ttl / 3, retried meanwhile), and etcd is reachable again.
                await eventually(
                    lambda: (
                        session.done.is_set()
                        or (session._valid_until > trusted_until and session.reachable)
                    ),
                    timeout=10,
                )
                assert not session.done.is_set() and session.alive and election.leading
                await store.commit([ev("a", 3)])
                assert await seqs(store, "a") == [1, 2, 3] and store.available
            await election.resign()
        await kv.delete(prefix.encode() + b"/", prefix=True)
