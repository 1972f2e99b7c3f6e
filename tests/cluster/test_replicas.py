"""Cluster mode end to end: coordinator replicas as real processes on real etcd.

Election among three replicas and follower redirects; SIGKILL of the leader while
100 workflows run; a paused (SIGSTOP) leader fenced out; an etcd member lost with
quorum kept; etcd unavailable altogether. Failover times are printed, not asserted
(the benchmark in bench/failover.py measures them).
"""

from __future__ import annotations

import asyncio
import collections
import json
import signal
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from agent_sdk import Client, UnavailableError
from agentmesh.v1 import registry_pb2, registry_pb2_grpc, workflow_pb2, workflow_pb2_grpc
from tests.cluster.etcd_server import EtcdCluster
from tests.cluster.replicas import (
    LEADER_SERVICE,
    SERVING,
    ReplicaProcess,
    cluster_status,
    health,
    leaders,
    unique_prefix,
    wait_leader,
)
from tests.conftest import AgentProcess, eventually

pytestmark = pytest.mark.timeout(180)

NOT_SERVING = 2


def chain(steps: int, seconds: float) -> dict[str, Any]:
    return {
        "id": "chain",
        "steps": [
            {
                "id": f"s{i}",
                "type": "task",
                "capability": "record",
                "input": {"path": "$.input.path", "seconds": seconds},
                "output": {f"s{i}": "$.output.pid"},
                **({"next": f"s{i + 1}"} if i + 1 < steps else {}),
            }
            for i in range(steps)
        ],
    }


def fan_out(seconds: float) -> dict[str, Any]:
    """s0, then two branches in parallel (their results land in neighbouring engine
    turns, which must commit in order), then s2: four tasks per execution."""

    def task(step_id: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": step_id,
            "type": "task",
            "capability": "record",
            "input": {"path": "$.input.path", "seconds": seconds},
            **extra,
        }

    return {
        "id": "fan",
        "steps": [
            task("s0", next="fan"),
            {
                "id": "fan",
                "type": "parallel",
                "parallel": {
                    "branches": [
                        {"name": "left", "steps": [task("b0")]},
                        {"name": "right", "steps": [task("b1")]},
                    ]
                },
                "next": "s2",
            },
            task("s2"),
        ],
    }


FAN_TASKS = ["b0", "b1", "s0", "s2"]


async def follower_answer(address: str) -> grpc.aio.AioRpcError:
    """A call to ``address`` that must be refused (it is not the leader)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        try:
            await stub.Heartbeat(registry_pb2.HeartbeatRequest(agent_id="x"), timeout=5)
        except grpc.aio.AioRpcError as e:
            return e
    raise AssertionError(f"{address} answered a leader-only call")


def leader_metadata(e: grpc.aio.AioRpcError) -> str:
    for key, value in e.trailing_metadata() or ():
        if key == "agentmesh-leader":
            return str(value)
    return ""


async def completed_steps(client: Client, execution_id: str) -> list[str]:
    return [
        e.step_id
        for e in await client.get_execution_history(execution_id)
        if e.type == "step.completed"
    ]


# ---------------------------------------------------------------------------------------


async def test_three_replicas_elect_one_leader_and_followers_redirect(
    etcd: EtcdCluster, tmp_path: Path
) -> None:
    prefix = unique_prefix()
    replicas = [ReplicaProcess(f"r{i}", etcd.endpoints, prefix, tmp_path) for i in range(3)]
    try:
        leader = await wait_leader(replicas)
        followers = [r for r in replicas if r is not leader]

        async def settled() -> bool:
            # every replica live and registered, every follower aware of the leader
            if [await health(r.address) for r in replicas] != [SERVING] * 3:
                return False
            answers = [await follower_answer(f.address) for f in followers]
            return all(leader_metadata(e) == leader.address for e in answers)

        await eventually(settled, timeout=15)
        for f in followers:
            assert await health(f.address, LEADER_SERVICE) == NOT_SERVING
            e = await follower_answer(f.address)
            assert e.code() == grpc.StatusCode.UNAVAILABLE
            assert leader_metadata(e) == leader.address
            assert e.details() == (
                f"coordinator {f.id} is not the leader; the leader is {leader.id} "
                f"at {leader.address}"
            )
        status = cluster_status(etcd.endpoints, prefix)
        assert sorted(r["id"] for r in status["replicas"]) == ["r0", "r1", "r2"]
        assert status["leader"] == leader.id and status["leader_address"] == leader.address
        assert [r["id"] for r in status["replicas"] if r["leader"]] == [leader.id]
        term = status["term"]

        # a graceful stop resigns: another replica leads without waiting for a lease
        started = time.monotonic()
        leader.signal(signal.SIGTERM)
        assert leader.proc is not None and leader.proc.wait(15) == 0
        successor = await wait_leader(followers)
        print(f"graceful handover in {time.monotonic() - started:.2f} s")
        after = cluster_status(etcd.endpoints, prefix)
        assert after["leader"] == successor.id and after["term"] > term
        assert sorted(r["id"] for r in after["replicas"]) == sorted(f.id for f in followers)
    finally:
        for r in replicas:
            r.stop()


async def test_sigkill_leader_while_100_workflows_run(etcd: EtcdCluster, tmp_path: Path) -> None:
    executions = 100
    prefix, log = unique_prefix(), tmp_path / "runs.log"
    replicas = [
        ReplicaProcess(f"r{i}", etcd.endpoints, prefix, tmp_path, "--concurrency-limit", "200")
        for i in range(3)
    ]
    seeds = ",".join(r.address for r in replicas)
    agents: list[AgentProcess] = []
    try:
        leader = await wait_leader(replicas)
        agents = [
            AgentProcess(seeds, "--name", f"w{i}", "--capability", "record",
                         "--max-concurrency", "16")
            for i in range(2)
        ]  # fmt: skip
        for a in agents:
            await a.ready()
        async with Client(seeds, timeout=30) as client:
            await client.define_workflow("fan", fan_out(0.2))
            ids = [
                (
                    await client.start_workflow(
                        "fan", {"path": str(log)}, idempotency_key=f"run-{n}"
                    )
                ).id
                for n in range(executions)
            ]
            await eventually(
                lambda: log.exists() and len(log.read_text().splitlines()) >= 60, timeout=30
            )
            killed_at = time.monotonic()
            leader.kill()
            before = len(log.read_text().splitlines())
            assert before < executions * len(FAN_TASKS), "the kill must come mid-way"
            successor = await wait_leader([r for r in replicas if r is not leader])
            print(f"failover after SIGKILL: {time.monotonic() - killed_at:.2f} s (TTL 2 s)")

            # the same idempotency key finds the same execution on the new leader
            again = await client.start_workflow("fan", {"path": str(log)}, idempotency_key="run-0")
            assert again.id == ids[0]
            for execution_id in ids:
                done = await client.wait_execution(execution_id, timeout=60)
                assert done.status == "completed", (execution_id, done.error)
                # each task step completed exactly once in the durable history
                completed = await completed_steps(client, execution_id)
                assert sorted(c for c in completed if c != "fan") == FAN_TASKS, completed
            assert client.address == successor.address
        runs = [line.split() for line in log.read_text().splitlines()]
        keys = collections.Counter(r[3] for r in runs)
        reruns = sum(n - 1 for n in keys.values())
        print(f"{len(runs)} task runs for {len(keys)} tasks: {reruns} re-run after the kill")
        # every step ran; only work in flight at the kill ran twice, with the same key
        assert len({k.rsplit(".t", 1)[0] for k in keys}) == executions * len(FAN_TASKS)
        assert all(n <= 2 for n in keys.values()), keys.most_common(3)
        # A task re-runs if it was running at the kill, or had finished but its result
        # was not committed yet: at most two per agent slot (2 agents x 16 slots).
        assert reruns <= 2 * 2 * 16, "only work in flight at the kill re-runs"
    finally:
        for a in agents:
            a.stop()
        for r in replicas:
            r.stop()


async def test_a_paused_leader_is_fenced_and_steps_down(etcd: EtcdCluster, tmp_path: Path) -> None:
    prefix = unique_prefix()
    replicas = [ReplicaProcess(f"r{i}", etcd.endpoints, prefix, tmp_path) for i in range(2)]
    try:
        old = await wait_leader(replicas)
        term = cluster_status(etcd.endpoints, prefix)["term"]
        old.signal(signal.SIGSTOP)
        new = await wait_leader([r for r in replicas if r is not old])
        status = cluster_status(etcd.endpoints, prefix)
        assert status["leader"] == new.id and status["term"] > term

        # While still paused, a write is sent to the old leader; it wakes up believing
        # it leads. Whatever it does first, nothing it writes may land.
        async with grpc.aio.insecure_channel(old.address) as channel:
            stub = workflow_pb2_grpc.WorkflowServiceStub(channel)
            definition = workflow_pb2.DefineWorkflowRequest(name="stale")
            definition.definition.update(
                {"id": "stale", "steps": [{"id": "a", "type": "wait", "wait": {"seconds": 1}}]}
            )
            call = stub.DefineWorkflow(definition, timeout=20)
            # The call is on its way: the channel left IDLE to connect to the paused
            # process (whose kernel accepts and buffers it). Then the process wakes.
            await asyncio.wait_for(
                channel.wait_for_state_change(grpc.ChannelConnectivity.IDLE), timeout=10
            )
            old.signal(signal.SIGCONT)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
        print("the woken leader answered:", refused.value.details())

        # it steps down and now points at the new leader
        await eventually(lambda: "lost leadership" in old.log(), timeout=15)

        async def redirects_to_new() -> bool:
            return leader_metadata(await follower_answer(old.address)) == new.address

        await eventually(redirects_to_new, timeout=10)
        assert await leaders(replicas) == [new]
        async with Client(new.address) as client:
            names = [w.name for w in await client.list_workflows()]
        assert "stale" not in names, "a deposed leader's write landed"
    finally:
        for r in replicas:
            r.stop()


async def test_losing_one_etcd_member_does_not_interrupt(
    etcd_cluster: EtcdCluster, tmp_path: Path
) -> None:
    prefix, log = unique_prefix(), tmp_path / "runs.log"
    replicas = [
        ReplicaProcess(f"r{i}", etcd_cluster.endpoints, prefix, tmp_path, ttl=4) for i in range(2)
    ]
    seeds = ",".join(r.address for r in replicas)
    agent: AgentProcess | None = None
    try:
        leader = await wait_leader(replicas)
        term = cluster_status(etcd_cluster.endpoints, prefix)["term"]
        agent = AgentProcess(seeds, "--name", "w", "--capability", "record",
                             "--max-concurrency", "8")  # fmt: skip
        await agent.ready()
        async with Client(seeds, timeout=30) as client:
            await client.define_workflow("chain", chain(3, 0.1))
            first = [
                (await client.start_workflow("chain", {"path": str(log)})).id for _ in range(10)
            ]
            etcd_cluster.kill(0)  # the first endpoint: every replica's preferred member
            try:
                more = [
                    (await client.start_workflow("chain", {"path": str(log)})).id for _ in range(10)
                ]
                for execution_id in first + more:
                    done = await client.wait_execution(execution_id, timeout=60)
                    assert done.status == "completed", (execution_id, done.error)
                assert await leaders(replicas) == [leader]
                assert await health(leader.address) == SERVING
                status = cluster_status(etcd_cluster.endpoints[1:], prefix)
                assert status["leader"] == leader.id and status["term"] == term
            finally:
                etcd_cluster.restart(0)
        assert "lost leadership" not in leader.log()
    finally:
        if agent is not None:
            agent.stop()
        for r in replicas:
            r.stop()


async def test_etcd_unavailable_means_not_serving_then_recovery(tmp_path: Path) -> None:
    from tests.cluster.conftest import _binary

    log = tmp_path / "runs.log"
    with EtcdCluster(_binary(), size=1) as etcd:
        replica = ReplicaProcess("solo", etcd.endpoints, "/agentmesh", tmp_path, ttl=10)
        agent: AgentProcess | None = None
        try:
            await wait_leader([replica])
            agent = AgentProcess(replica.address, "--name", "w", "--capability", "record")
            await agent.ready()
            async with Client(replica.address, timeout=30) as client:
                await client.define_workflow("chain", chain(2, 0.1))
                before = await client.start_workflow("chain", {"path": str(log)})
                assert (await client.wait_execution(before.id, timeout=30)).status == "completed"

                etcd.kill(0)
                await eventually(lambda: _is(replica.address, NOT_SERVING), timeout=15)
                assert await health(replica.address, "liveness") == SERVING  # no restart
                with pytest.raises(UnavailableError) as refused:
                    await client.start_workflow("chain", {"path": str(log)})
                assert "etcd is unreachable" in str(refused.value)
                # reads are still served from memory
                assert (await client.get_execution_status(before.id)).status == "completed"

                etcd.restart(0)
                await eventually(lambda: _is(replica.address, SERVING), timeout=20)
                await wait_leader([replica])
                after = await client.start_workflow("chain", {"path": str(log)})
                assert (await client.wait_execution(after.id, timeout=30)).status == "completed"
        finally:
            if agent is not None:
                agent.stop()
            replica.stop()


async def _is(address: str, status: int) -> bool:
    return await health(address) == status


async def test_a_deposed_leader_that_has_not_noticed_cannot_write(
    etcd: EtcdCluster, tmp_path: Path
) -> None:
    """Its session is fine, but its election key is gone (an operator deleted it, or
    it expired while etcd was partitioned from it): etcd refuses its fenced writes."""
    from coordinator.kv.etcd import EtcdKV

    prefix = unique_prefix()
    replicas = [ReplicaProcess(f"r{i}", etcd.endpoints, prefix, tmp_path) for i in range(2)]
    try:
        old = await wait_leader(replicas)
        async with EtcdKV(etcd.endpoints) as kv:
            kvs, _ = await kv.range(f"{prefix}/election/".encode(), prefix=True)
            mine = [k for k in kvs if json.loads(k.value)["id"] == old.id]
            assert len(mine) == 1
            await kv.delete(mine[0].key)
        new = await wait_leader([r for r in replicas if r is not old])

        async with grpc.aio.insecure_channel(old.address) as channel:
            stub = workflow_pb2_grpc.WorkflowServiceStub(channel)
            request = workflow_pb2.DefineWorkflowRequest(name="stale")
            request.definition.update(
                {"id": "stale", "steps": [{"id": "a", "type": "wait", "wait": {"seconds": 1}}]}
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.DefineWorkflow(request, timeout=20)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "no longer the leader" in (refused.value.details() or "")
        await eventually(lambda: "etcd refused a write fenced" in old.log(), timeout=10)
        await eventually(lambda: leaders_are(replicas, [new]), timeout=10)
        async with Client(new.address) as client:
            assert "stale" not in [w.name for w in await client.list_workflows()]
    finally:
        for r in replicas:
            r.stop()


async def leaders_are(replicas: list[ReplicaProcess], expected: list[ReplicaProcess]) -> bool:
    return await leaders(replicas) == expected


async def test_every_replica_sees_the_agents_and_a_dead_agent_disappears(
    etcd: EtcdCluster, tmp_path: Path
) -> None:
    prefix = unique_prefix()
    replicas = [ReplicaProcess(f"r{i}", etcd.endpoints, prefix, tmp_path) for i in range(3)]
    agents: list[AgentProcess] = []
    try:
        leader = await wait_leader(replicas)
        # agents find the leader through etcd alone
        discovery = f"etcd://{','.join(etcd.endpoints)}{prefix}"
        agents = [
            AgentProcess(discovery, "--name", f"a{i}", "--capability", "echo") for i in range(2)
        ]
        ids = sorted([await a.ready() for a in agents])
        follower = next(r for r in replicas if r is not leader)
        await eventually(lambda: lists(follower.address, ids), timeout=10)
        assert await listed(leader.address) == ids

        agents[0].stop()  # SIGKILL: the leader notices the stream end and revokes its lease
        await eventually(lambda: lists(follower.address, ids[1:]), timeout=10)

        # The leader dies: nobody keeps the leases alive, but the survivor reconnects to
        # the new leader, which writes its entry again, under a lease of its own.
        key = directory_key(prefix, ids[1])
        old_lease = await entry_lease(etcd.endpoints, key)
        assert old_lease, "the old leader wrote the entry under a lease"
        leader.kill()
        new = await wait_leader([r for r in replicas if r is not leader])
        other = next(r for r in replicas if r not in (leader, new))
        await eventually(lambda: lists(new.address, ids[1:]), timeout=15)

        async def rewritten() -> bool:
            return (await entry_lease(etcd.endpoints, key)) not in (0, old_lease)

        # Not tied to the dead leader's lease any more: its expiry cannot remove it.
        await eventually(rewritten, timeout=15)
        assert await listed(other.address) == ids[1:]
    finally:
        for a in agents:
            a.stop()
        for r in replicas:
            r.stop()


def directory_key(prefix: str, agent_id: str) -> bytes:
    from urllib.parse import quote

    from coordinator.cluster.directory import AGENTS
    from coordinator.cluster.membership import cluster_key

    return cluster_key(prefix, AGENTS) + quote(agent_id, safe="").encode()


async def entry_lease(endpoints: list[str], key: bytes) -> int:
    """The lease of the agent directory entry ``key`` in etcd (0: no entry)."""
    from coordinator.kv.etcd import EtcdKV

    async with EtcdKV(endpoints) as kv:
        found = await kv.get(key)
    return found.lease if found is not None else 0


async def listed(address: str) -> list[str]:
    """Agent ids ListAgents returns at ``address`` (leader: memory; follower: etcd)."""
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await registry_pb2_grpc.RegistryServiceStub(channel).ListAgents(
            registry_pb2.ListAgentsRequest(), timeout=5
        )
    return sorted(a.id for a in reply.agents)


async def lists(address: str, expected: list[str]) -> bool:
    return await listed(address) == expected


async def test_an_etcd_outage_longer_than_the_lease_costs_leadership_not_work(
    tmp_path: Path,
) -> None:
    """Past the lease's trust window the leader steps down; once etcd is back the replica
    campaigns again, leads a new term and finishes what was running before the outage."""
    from tests.cluster.conftest import _binary

    log = tmp_path / "runs.log"
    with EtcdCluster(_binary(), size=1) as etcd:
        replica = ReplicaProcess("solo", etcd.endpoints, "/agentmesh", tmp_path, ttl=2)
        agent: AgentProcess | None = None
        try:
            await wait_leader([replica])
            term = cluster_status(etcd.endpoints, "/agentmesh")["term"]
            agent = AgentProcess(replica.address, "--name", "w", "--capability", "record")
            await agent.ready()
            async with Client(replica.address, timeout=30) as client:
                await client.define_workflow("chain", chain(2, 3.0))
                tick = {
                    "id": "tick",
                    "steps": [{"id": "w", "type": "wait", "wait": {"seconds": 0}}],
                }
                await client.define_workflow("tick", tick)
                early = await client.start_workflow("tick", {}, idempotency_key="early")
                assert (await client.wait_execution(early.id, timeout=10)).status == "completed"
                running = await client.start_workflow("chain", {"path": str(log)})
                await eventually(log.exists, timeout=10)  # s0 is running

                etcd.kill(0)
                await eventually(lambda: "lost leadership" in replica.log(), timeout=15)
                assert await leaders([replica]) == []
                etcd.restart(0)

                await wait_leader([replica], timeout=30)
                assert cluster_status(etcd.endpoints, "/agentmesh")["term"] > term
                done = await client.wait_execution(running.id, timeout=60)
                assert done.status == "completed", done.error
                assert sorted(await completed_steps(client, running.id)) == ["s0", "s1"]
                # the new term knows nothing in memory: the key is found in etcd
                again = await client.start_workflow("tick", {}, idempotency_key="early")
                assert again.id == early.id and again.status == "completed"
        finally:
            if agent is not None:
                agent.stop()
            replica.stop()
