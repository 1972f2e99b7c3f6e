"""The agent stream as another language sees it: raw protobuf frames, no SDK.

What the protocol leaves optional must really be optional: heartbeats on a live stream,
and a draining agent resuming its identity with no credits to hand back its results.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import struct_pb2

from agent_sdk import Client
from agentmesh.v1 import agent_pb2, agent_pb2_grpc, types_pb2
from coordinator.server import Coordinator
from tests.conftest import eventually, fast_settings


@pytest.fixture
async def quick() -> AsyncIterator[Coordinator]:
    """A coordinator that takes a heartbeating agent offline after 300 ms of silence."""
    c = Coordinator(fast_settings(heartbeat_interval_ms=100, heartbeat_timeout_ms=300))
    await c.start()
    try:
        yield c
    finally:
        await c.stop(grace=1.0)


class RawAgent:
    """One agent stream driven frame by frame."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.call = agent_pb2_grpc.AgentServiceStub(channel).Connect()

    async def hello(
        self, credits: int = 1, agent_id: str = "", secret: str = ""
    ) -> agent_pb2.Welcome:
        await self.call.write(
            agent_pb2.AgentMessage(
                hello=agent_pb2.Hello(
                    name="raw",
                    capabilities=[types_pb2.Capability(name="echo")],
                    max_concurrency=credits,
                    protocol_version=1,
                    agent_id=agent_id,
                    session_secret=secret,
                )
            )
        )
        first: agent_pb2.CoordinatorMessage = await self.call.read()
        assert first.WhichOneof("body") == "welcome", first
        return first.welcome

    async def next_tasks(self) -> list[agent_pb2.TaskDispatch]:
        while True:
            msg = await self.call.read()
            assert msg is not grpc.aio.EOF, "the coordinator ended the stream"
            if msg.WhichOneof("body") == "tasks":
                return list(msg.tasks.tasks)

    async def result(self, task: agent_pb2.TaskDispatch, output: struct_pb2.Value) -> None:
        update = agent_pb2.TaskUpdate(
            task_id=task.task_id, attempt=task.attempt, result=agent_pb2.TaskResult(output=output)
        )
        await self.call.write(
            agent_pb2.AgentMessage(updates=agent_pb2.TaskUpdates(updates=[update]))
        )


async def test_an_agent_that_never_heartbeats_stays_online_on_a_live_stream(
    quick: Coordinator,
) -> None:
    async with grpc.aio.insecure_channel(quick.address) as channel, Client(quick.address) as client:
        raw = RawAgent(channel)
        welcome = await raw.hello()
        mesh = quick.mesh
        assert mesh is not None
        agent = mesh.agents[welcome.agent_id]
        loop = asyncio.get_running_loop()
        # Silent for well past the heartbeat timeout, on the coordinator's own clock.
        await eventually(lambda: loop.time() - agent.last_seen > 3 * 0.3, timeout=10)
        assert mesh.check_liveness() == []
        silent = await client.get_agent(welcome.agent_id)
        assert silent.status == "online" and silent.last_seen_time is not None
        # ...and it still gets work over that stream.
        assigned = await client.assign_task("echo", {"n": 1})
        [task] = await raw.next_tasks()
        assert task.task_id == assigned.id
        await raw.result(task, struct_pb2.Value(string_value="pong"))
        done = await client.wait_task(assigned.id, timeout=10)
        assert done.status == "completed" and done.result == "pong"
        # A message of any kind counts as seen (not only a Heartbeat).
        seen = (await client.get_agent(welcome.agent_id)).last_seen_time
        assert seen is not None and seen > silent.last_seen_time
        raw.call.cancel()


async def test_once_it_has_heartbeated_silence_takes_it_offline(quick: Coordinator) -> None:
    async with grpc.aio.insecure_channel(quick.address) as channel, Client(quick.address) as client:
        raw = RawAgent(channel)
        welcome = await raw.hello()
        await raw.call.write(agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat(healthy=True)))

        async def offline() -> bool:
            return (await client.get_agent(welcome.agent_id)).status == "offline"

        await eventually(offline, timeout=10)
        raw.call.cancel()


async def test_a_draining_agent_resumes_with_no_credits(quick: Coordinator) -> None:
    async with grpc.aio.insecure_channel(quick.address) as channel, Client(quick.address) as client:
        first = RawAgent(channel)
        welcome = await first.hello()
        first.call.cancel()  # the stream breaks

        async def offline() -> bool:
            return (await client.get_agent(welcome.agent_id)).status == "offline"

        await eventually(offline, timeout=10)
        again = RawAgent(channel)
        back = await again.hello(0, welcome.agent_id, welcome.session_secret)
        assert back.agent_id == welcome.agent_id
        assert (await client.get_agent(welcome.agent_id)).status == "draining"
        fresh = RawAgent(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await fresh.hello(0)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "0 is only for resuming a known agent id" in (refused.value.details() or "")
        again.call.cancel()
