"""An agent's identity cannot be taken over: resuming an id, or acting as a polling agent,
takes the session secret only that agent was given."""

from __future__ import annotations

import grpc
import pytest

from agent_sdk import Agent, Client, PermissionDeniedError, Task
from agentmesh.v1 import agent_pb2, agent_pb2_grpc, types_pb2
from coordinator.server import Coordinator
from tests.conftest import eventually, running


def hello(agent_id: str, secret: str = "") -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(
        hello=agent_pb2.Hello(
            name="impostor",
            capabilities=[types_pb2.Capability(name="echo")],
            max_concurrency=4,
            agent_id=agent_id,
            session_secret=secret,
        )
    )


async def first_reply(address: str, msg: agent_pb2.AgentMessage) -> agent_pb2.CoordinatorMessage:
    """Open a raw agent stream, send ``msg``, return the first answer (or raise)."""
    async with grpc.aio.insecure_channel(address) as ch:
        call = agent_pb2_grpc.AgentServiceStub(ch).Connect()
        await call.write(msg)
        reply = await call.read()
        call.cancel()
        assert isinstance(reply, agent_pb2.CoordinatorMessage)
        return reply


async def test_a_hello_with_another_agents_id_is_refused(
    coordinator: Coordinator, client: Client
) -> None:
    seen: list[str] = []
    victim = Agent("victim", coordinator.address, max_concurrency=4)

    @victim.capability("echo")
    async def echo(task: Task) -> object:
        seen.append(task.id)
        return task.input

    async with running(victim):
        victim_id = victim.agent_id
        for secret in ("", "guessed", victim_id):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await first_reply(coordinator.address, hello(victim_id, secret))
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert refused.value.details() == (
                f"agent id {victim_id!r} belongs to another session (connected); resuming it "
                "needs the session_secret of that session's Welcome"
            )
        # the victim keeps its identity and its tasks
        agents = await client.list_agents()
        assert [(a.id, a.name) for a in agents] == [(victim_id, "victim")]
        t = await client.assign_task("echo", {"secret": "input"}, agent_id=victim_id)
        done = await client.wait_task(t.id, timeout=10)
        assert done.status == "completed" and seen == [t.id]
        # an unknown id is granted as asked (a coordinator that restarted forgot it)
        reply = await first_reply(coordinator.address, hello("fresh-id"))
        assert reply.welcome.agent_id == "fresh-id" and len(reply.welcome.session_secret) >= 32


async def test_the_sdk_resumes_its_id_with_its_secret(coordinator: Coordinator) -> None:
    agent = Agent("resumer", coordinator.address)

    @agent.capability("echo")
    async def echo(task: Task) -> object:
        return task.input

    async with running(agent):
        first_id = agent.agent_id
        assert coordinator.mesh is not None
        first_secret = coordinator.mesh.agents[first_id].session_secret
        coordinator.mesh.leave(first_id, "test: stream lost")  # offline, still known
        sink = coordinator.mesh.agents[first_id].sink
        assert sink is not None
        sink.close("test: stream lost")
        await eventually(
            lambda: (
                agent.stats.sessions == 2
                and coordinator.mesh is not None
                and coordinator.mesh.agents[first_id].connected
            ),
            timeout=10,
        )
        assert agent.agent_id == first_id
        # a new secret per session: the old one no longer resumes anything
        assert coordinator.mesh.agents[first_id].session_secret != first_secret


async def test_an_offline_agents_id_needs_its_secret_too(
    coordinator: Coordinator, client: Client
) -> None:
    reply = await first_reply(coordinator.address, hello(""))
    agent_id, secret = reply.welcome.agent_id, reply.welcome.session_secret
    mesh = coordinator.mesh
    assert mesh is not None
    await eventually(lambda: not mesh.agents[agent_id].connected)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await first_reply(coordinator.address, hello(agent_id))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "(offline, and still known)" in (refused.value.details() or "")
    resumed = await first_reply(coordinator.address, hello(agent_id, secret))
    assert resumed.welcome.agent_id == agent_id


async def test_polling_calls_need_the_agents_secret(coordinator: Coordinator) -> None:
    async with Client(coordinator.address) as owner, Client(coordinator.address) as other:
        agent_id = await owner.register_agent("poller", ["lookup"])
        t = await owner.assign_task("lookup", {"q": "private"})
        for call in (other.poll_tasks(agent_id, wait=0.1), other.heartbeat(agent_id)):
            with pytest.raises(PermissionDeniedError, match="need its session_secret"):
                await call
        with pytest.raises(PermissionDeniedError):
            await other.poll_tasks(agent_id, wait=0.1, session_secret="wrong")
        polled = await other.poll_tasks(
            agent_id, wait=2, session_secret=owner.session_secret(agent_id)
        )
        assert [p.id for p in polled] == [t.id]
        assert await owner.heartbeat(agent_id) == "busy"  # its one slot holds the task
