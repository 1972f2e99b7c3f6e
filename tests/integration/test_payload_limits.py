"""One payload limit, checked where payloads enter: whatever the coordinator accepts
decodes in every message that carries it, and nothing undecodable kills an agent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from agent_sdk import Agent, Client, InvalidArgumentError, Task
from agentmesh import payload, wire
from agentmesh.v1 import agent_pb2, types_pb2
from coordinator.server import Coordinator
from tests.conftest import running

LIMIT = payload.MAX_DEPTH


def nested(levels: int, leaf: Any = "leaf") -> Any:
    """``levels`` objects deep (a list at the bottom when levels > 0)."""
    value: Any = leaf
    for i in range(levels):
        value = {"n": value} if i else [value]
    return value


def echo_agent(coordinator: Coordinator, **kw: Any) -> Agent:
    agent = Agent("echo", coordinator.address, **kw)

    @agent.capability("echo")
    async def echo(task: Task) -> Any:
        return task.input.get("value")

    @agent.capability("deep")
    async def deep(task: Task) -> Any:
        return nested(int(task.input["levels"]))

    return agent


async def test_payloads_at_the_limit_travel_and_beyond_are_refused(
    coordinator: Coordinator, client: Client
) -> None:
    async with running(echo_agent(coordinator)):
        at_limit = nested(LIMIT - 1)  # inside {"value": ...}: LIMIT deep in all
        t = await client.assign_task("echo", {"value": at_limit})
        done = await client.wait_task(t.id, timeout=10)
        assert done.status == "completed" and done.result == at_limit
        with pytest.raises(InvalidArgumentError, match=f"task input is nested more than {LIMIT}"):
            await client.assign_task("echo", {"value": nested(LIMIT)})
        big = "x" * (payload.max_bytes(coordinator.settings.max_message_bytes) + 1)
        with pytest.raises(InvalidArgumentError, match=r"task input is .* bytes as JSON, over"):
            await client.assign_task("echo", {"value": big})
        # a handler's output over the limit fails its task on the agent, which keeps serving
        t = await client.assign_task("deep", {"levels": LIMIT + 5})
        failed = await client.wait_task(t.id, timeout=10)
        assert failed.status == "failed" and failed.error is not None
        assert failed.error.type == "PAYLOAD_TOO_LARGE"
        assert f"the handler's output is nested more than {LIMIT}" in failed.error.message
        t = await client.assign_task("echo", {"value": 1})
        assert (await client.wait_task(t.id, timeout=10)).result == 1


async def test_big_tasks_are_split_across_batches(coordinator: Coordinator, client: Client) -> None:
    """Eight tasks of nearly a quarter of the message limit each, queued for one agent
    with eight free slots: they travel in several batches, never one oversized one."""
    size = payload.max_bytes(coordinator.settings.max_message_bytes) - 100
    tasks = [
        await client.assign_task("echo", {"value": str(i) * size}, wait_for_agent=True)
        for i in range(8)
    ]
    async with running(echo_agent(coordinator, max_concurrency=8)):
        for i, t in enumerate(tasks):
            done = await client.wait_task(t.id, timeout=30)
            assert done.status == "completed" and done.result == str(i) * size


async def test_a_result_too_deep_from_a_raw_agent_fails_its_task(
    coordinator: Coordinator, client: Client
) -> None:
    async with grpc.aio.insecure_channel(coordinator.address) as ch:
        call = ch.stream_stream(
            "/agentmesh.v1.AgentService/Connect",
            request_serializer=agent_pb2.AgentMessage.SerializeToString,
            response_deserializer=agent_pb2.CoordinatorMessage.FromString,
        )()
        hello = agent_pb2.Hello(
            name="raw", capabilities=[types_pb2.Capability(name="raw")], max_concurrency=1
        )
        await call.write(agent_pb2.AgentMessage(hello=hello))
        assert (await call.read()).WhichOneof("body") == "welcome"
        t = await client.assign_task("raw", {})
        batch = await call.read()
        dispatch = batch.tasks.tasks[0]
        result = agent_pb2.TaskResult(output=wire.to_value(nested(LIMIT + 3)))
        update = agent_pb2.TaskUpdate(task_id=dispatch.task_id, attempt=1, result=result)
        await call.write(agent_pb2.AgentMessage(updates=agent_pb2.TaskUpdates(updates=[update])))
        done = await client.wait_task(t.id, timeout=10)
        call.cancel()
    assert done.status == "failed" and done.error is not None
    assert done.error.type == "PAYLOAD_TOO_LARGE"
    assert "the task's output is nested more than" in done.error.message


async def test_workflow_payloads_are_bounded_where_they_enter(
    coordinator: Coordinator, client: Client
) -> None:
    flow = {
        "id": "wrap",
        "steps": [
            {
                "id": "wrap",
                "type": "task",
                "capability": "echo",
                "input": {"value": "$.input.value"},
                "output": {"wrapped": {"inner": {"x": "$.output"}}},
            }
        ],
    }
    await client.define_workflow("wrap", flow)
    with pytest.raises(InvalidArgumentError, match="workflow input is nested more than"):
        await client.start_workflow("wrap", {"value": nested(LIMIT)})
    with pytest.raises(InvalidArgumentError, match="event payload is nested more than"):
        await client.trigger_event("go", {"p": nested(LIMIT)})
    async with running(echo_agent(coordinator)):
        ok = await client.start_workflow("wrap", {"value": nested(3)})
        assert (await client.wait_execution(ok.id, timeout=10)).status == "completed"
        # the output mapping nests the result 2 levels deeper: the step fails, precisely
        e = await client.start_workflow("wrap", {"value": nested(LIMIT - 1)})
        done = await client.wait_execution(e.id, timeout=10)
        assert done.status == "failed" and done.error is not None
        assert f"variable 'wrapped' is nested more than {LIMIT} levels deep" in (done.error.message)
        # and the history of that execution still decodes
        assert (await client.get_execution_history(e.id))[-1].type == "execution.failed"


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited protobuf field, written by hand (protobuf would refuse)."""

    def varint(n: int) -> bytes:
        out = b""
        while True:
            low, n = n & 0x7F, n >> 7
            if not n:
                return out + bytes([low])
            out += bytes([low | 0x80])

    return varint(number << 3 | 2) + varint(len(data)) + data


async def test_the_sdk_survives_a_message_it_cannot_decode() -> None:
    """A coordinator of another make sends a batch nested beyond protobuf's limit: the
    SDK runs the task that decodes, reports the other failed, and keeps its stream."""
    results: dict[str, agent_pb2.TaskResult] = {}
    got_both = asyncio.Event()
    deep = wire.to_struct({"v": nested(40)}).SerializeToString()  # 120+ protobuf levels
    bad = agent_pb2.TaskDispatch(task_id="bad", attempt=1, capability="echo").SerializeToString()
    good = agent_pb2.TaskDispatch(
        task_id="good", attempt=1, capability="echo", input=wire.to_struct({"value": 7})
    ).SerializeToString()
    crafted = _field(2, _field(1, bad + _field(4, deep)) + _field(1, good))

    async def connect(
        requests: AsyncIterator[agent_pb2.AgentMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        await anext(requests)  # Hello
        welcome = agent_pb2.Welcome(agent_id="a-1", heartbeat_interval_ms=1000)
        yield agent_pb2.CoordinatorMessage(welcome=welcome).SerializeToString()
        yield crafted
        async for msg in requests:
            for u in msg.updates.updates:
                if u.HasField("result"):
                    results[u.task_id] = u.result
            if len(results) == 2:
                got_both.set()

    server = grpc.aio.server()
    handler = grpc.stream_stream_rpc_method_handler(
        connect,
        request_deserializer=agent_pb2.AgentMessage.FromString,
        response_serializer=lambda b: b,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("agentmesh.v1.AgentService", {"Connect": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    agent = Agent("victim", f"127.0.0.1:{port}")

    @agent.capability("echo")
    async def echo(task: Task) -> Any:
        return task.input.get("value")

    serving = asyncio.create_task(agent.serve())
    try:
        await asyncio.wait_for(got_both.wait(), 10)
        assert wire.from_value(results["good"].output) == 7
        assert results["bad"].error.type == "UndecodableTask"
        assert "could not decode this task" in results["bad"].error.message
        assert agent.stats.sessions == 1 and not serving.done()  # still on its first stream
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        await server.stop(0)
