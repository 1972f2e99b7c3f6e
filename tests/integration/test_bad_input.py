"""Bad input gets a precise status and the server keeps serving."""

from __future__ import annotations

import grpc
import pytest

from agent_sdk import (
    Agent,
    AgentRejectedError,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    TaskRequest,
)
from agentmesh.v1 import agent_pb2, agent_pb2_grpc, task_pb2, task_pb2_grpc, types_pb2
from coordinator.server import Coordinator
from tests.conftest import running


async def _stream(address: str, *messages: agent_pb2.AgentMessage) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(address) as ch:
        call = agent_pb2_grpc.AgentServiceStub(ch).Connect()
        for m in messages:
            await call.write(m)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            while True:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    await call.wait_for_connection()
                    await call
                    pytest.fail("stream ended without an error status")
        return info.value


def hello(**kw: object) -> agent_pb2.AgentMessage:
    fields: dict[str, object] = {
        "name": "raw",
        "capabilities": [types_pb2.Capability(name="x")],
        "max_concurrency": 1,
    }
    fields.update(kw)
    return agent_pb2.AgentMessage(hello=agent_pb2.Hello(**fields))  # type: ignore[arg-type]


async def test_wrong_first_message(coordinator: Coordinator, client: Client) -> None:
    err = await _stream(
        coordinator.address, agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat())
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "the first message on an agent stream must be hello, got heartbeat"
    err = await _stream(coordinator.address, agent_pb2.AgentMessage())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "got an empty message" in (err.details() or "")
    assert await client.list_agents() == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"max_concurrency": 0}, "max_concurrency must be between 1 and 10000, got 0"),
        ({"capabilities": []}, "agent 'raw' advertises no capabilities"),
        ({"name": " "}, "agent name must not be empty"),
        ({"protocol_version": 99}, "protocol version 99 is newer"),
    ],
)
async def test_bad_hello_is_refused(
    coordinator: Coordinator, kw: dict[str, object], message: str
) -> None:
    err = await _stream(coordinator.address, hello(**kw))
    assert err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
    assert message in (err.details() or "")


async def test_second_hello_and_empty_update_are_protocol_errors(coordinator: Coordinator) -> None:
    err = await _stream(coordinator.address, hello(), hello())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "hello may only be sent once per stream"
    empty_update = agent_pb2.AgentMessage(
        updates=agent_pb2.TaskUpdates(updates=[agent_pb2.TaskUpdate(task_id="t1", attempt=1)])
    )
    err = await _stream(coordinator.address, hello(), empty_update)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "has no ack, progress, output or result" in (err.details() or "")


async def test_sdk_raises_on_rejected_hello(coordinator: Coordinator) -> None:
    agent = Agent(" ", coordinator.address)
    agent.add_capability("x", lambda t: None)
    with pytest.raises(AgentRejectedError, match="agent name must not be empty"):
        await agent.serve()


async def test_unknown_capability_and_ids(client: Client, coordinator: Coordinator) -> None:
    agent = Agent("known", coordinator.address)
    agent.add_capability("known", lambda t: 1)
    async with running(agent):
        with pytest.raises(FailedPreconditionError) as info:
            await client.assign_task("scafold_project", {})
        assert "no live agent advertises capability 'scafold_project'" in str(info.value)
        assert "available: ['known']" in str(info.value)
        # nothing was recorded for the refused task
        assert await client.list_tasks() == []
        with pytest.raises(NotFoundError, match="task 'nope' not found"):
            await client.get_task_status("nope")
        with pytest.raises(NotFoundError, match="agent 'ghost' not found"):
            await client.get_agent("ghost")
        with pytest.raises(FailedPreconditionError, match="does not advertise capability 'other'"):
            await client.assign_task("other", {}, agent_id=agent.agent_id)
        with pytest.raises(InvalidArgumentError, match="capability is required"):
            await client.assign_task("", {})
        # a bad task rejects the whole batch, naming its index
        with pytest.raises(FailedPreconditionError, match=r"tasks\[1\]: no live agent"):
            await client.bulk_assign_tasks([TaskRequest("known", {}), TaskRequest("nope", {})])
        assert await client.list_tasks() == []
        ok = await client.wait_task((await client.assign_task("known", {})).id, 10)
        assert ok.status == "completed"


async def test_oversize_message_is_refused_and_server_keeps_serving(
    coordinator: Coordinator, client: Client
) -> None:
    limit = coordinator.settings.max_message_bytes
    big = task_pb2.AssignTaskRequest(task=types_pb2.Task(capability="x", name="n" * (limit + 10)))
    async with grpc.aio.insecure_channel(
        coordinator.address, options=[("grpc.max_send_message_length", limit * 2)]
    ) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await task_pb2_grpc.TaskServiceStub(ch).AssignTask(big)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await client.list_agents() == []


async def test_every_integration_method_is_implemented(coordinator: Coordinator) -> None:
    """Each IntegrationService method answers an empty request with a precise refusal
    or an answer: none is UNIMPLEMENTED (webhooks were, before the outbox), UNKNOWN or
    INTERNAL."""
    from google.protobuf import message_factory

    from agentmesh.v1 import integration_pb2

    service = integration_pb2.DESCRIPTOR.services_by_name["IntegrationService"]
    async with grpc.aio.insecure_channel(coordinator.address) as ch:
        for method in service.methods:
            request = integration_pb2.DESCRIPTOR.message_types_by_name[method.input_type.name]
            rpc = ch.unary_unary(
                f"/agentmesh.v1.IntegrationService/{method.name}",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=bytes,
            )
            empty = message_factory.GetMessageClass(request)()
            try:
                await rpc(empty, timeout=5)
            except grpc.aio.AioRpcError as e:
                assert e.code() in (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.NOT_FOUND,
                ), (method.name, e.code(), e.details())


async def test_undecodable_requests_are_invalid_argument(coordinator: Coordinator) -> None:
    """Garbage is refused as such (not UNKNOWN), on unary calls, on health, and after a
    Hello on the agent stream (which used to end with OK)."""
    garbage = b"\xff\xff\xff\xff not protobuf"
    async with grpc.aio.insecure_channel(coordinator.address) as ch:
        for method, message in [
            ("/agentmesh.v1.TaskService/AssignTask", "agentmesh.v1.AssignTaskRequest"),
            ("/grpc.health.v1.Health/Check", "grpc.health.v1.HealthCheckRequest"),
        ]:
            rpc = ch.unary_unary(method, request_serializer=bytes, response_deserializer=bytes)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await rpc(garbage, timeout=5)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (refused.value.details() or "").startswith(
                f"the request is not a valid {message} ("
            )
        connect = ch.stream_stream(
            "/agentmesh.v1.AgentService/Connect",
            request_serializer=bytes,
            response_deserializer=agent_pb2.CoordinatorMessage.FromString,
        )
        call = connect()
        await call.write(hello().SerializeToString())
        assert (await call.read()).WhichOneof("body") == "welcome"
        await call.write(garbage)
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while await call.read() is not grpc.aio.EOF:
                pass
            await call
        assert ended.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid agentmesh.v1.AgentMessage" in (ended.value.details() or "")
