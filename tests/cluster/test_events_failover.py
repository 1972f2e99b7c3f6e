"""A subscriber that outlives its leader: SIGKILL of the leader replica mid-way, a
follower takes over, and the SDK's stream resumes on it after the last event it handed
out, with no gap and no duplicate (the executions' histories, in etcd, are the oracle)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent_sdk import Client, Event
from tests.cluster.etcd_server import EtcdCluster
from tests.cluster.replicas import ReplicaProcess, unique_prefix, wait_leader
from tests.conftest import assert_stream_is_the_history, read_until, read_until_done, wait_chain

pytestmark = pytest.mark.timeout(120)

TICKS = wait_chain("ticks", steps=10, ms=150)


async def test_a_subscriber_resumes_on_the_new_leader(etcd: EtcdCluster, tmp_path: Path) -> None:
    prefix = unique_prefix()
    replicas = [ReplicaProcess(f"r{i}", etcd.endpoints, prefix, tmp_path) for i in range(2)]
    try:
        leader = await wait_leader(replicas)
        follower = next(r for r in replicas if r is not leader)
        async with Client(",".join(r.address for r in replicas), timeout=30) as client:
            await client.define_workflow("ticks", TICKS)
            events: list[Event] = []
            async with client.subscribe_to_events({"workflowName": "ticks"}) as stream:
                ids = [(await client.start_workflow("ticks", {"n": n})).id for n in range(4)]
                await read_until(stream, events, steps_completed=6)
                killed_at = events[-1].sequence
                started = time.monotonic()
                leader.kill()  # SIGKILL: its lease must expire before the follower leads
                assert not any(e.type == "execution.completed" for e in events), "mid-way"
                await read_until_done(stream, events, ids)
                print(f"all done {time.monotonic() - started:.2f} s after the kill")
            assert client.address == follower.address
            after = [e for e in events if e.sequence > killed_at and e.type != "stream.truncated"]
            assert after, "events from the new leader"
            # The new leader cannot know which live events of the old one the stream
            # missed: the stream says so, once, where it resumed.
            markers = [e for e in events if e.type == "stream.truncated"]
            assert len(markers) == 1 and markers[0].sequence >= killed_at, markers
            await assert_stream_is_the_history(client, events, ids)
    finally:
        for r in replicas:
            r.stop()
