"""The event stream and the metrics over a real coordinator, real agents and the SDK."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent_sdk import (
    Agent,
    Client,
    Event,
    EventFilter,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    Task,
)
from agentmesh.v1 import monitoring_pb2, monitoring_pb2_grpc
from coordinator.server import Coordinator
from tests.conftest import fast_settings, running

pytestmark = pytest.mark.timeout(60)

FLOW = {
    "name": "flow",
    "version": "1",
    "steps": [
        {"id": "one", "type": "task", "capability": "echo", "next": "two"},
        {"id": "two", "type": "task", "capability": "echo"},
    ],
}
PARENT = {
    "name": "parent",
    "version": "1",
    "steps": [{"id": "child", "type": "subworkflow", "workflow": "flow"}],
}


# A receive window of 1 KiB that never grows: a subscriber that reads nothing holds
# the coordinator's writes after ~1 KiB, as a slow reader across a network does. With
# gRPC's default (64 KiB, grown by BDP probing) the transport could absorb all of a
# test's events, and the subscriber would never fall behind.
TINY_WINDOW = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]


def echo_agent(address: str, namespace: str | None = None) -> Agent:
    agent = Agent("echo", address, max_concurrency=4, namespace=namespace)

    async def echo(task: Task) -> Any:
        await task.progress(0.5, "halfway")
        return {"echo": task.input}

    agent.add_capability("echo", echo)
    return agent


async def collect(stream: Any, until: str, execution_id: str = "") -> list[Event]:
    """Events of ``stream`` up to the first of type ``until`` (of ``execution_id``)."""
    out: list[Event] = []
    async for e in stream:
        out.append(e)
        if e.type == until and (not execution_id or e.execution_id == execution_id):
            return out
    raise AssertionError("the stream ended")


async def test_an_execution_streams_its_events_in_order(
    coordinator: Coordinator, client: Client
) -> None:
    async with running(echo_agent(coordinator.address)) as agent:
        await client.define_workflow("flow", FLOW)
        async with (
            client.subscribe_to_events() as everything,
            client.subscribe_to_events(types=["step.*"]) as steps,
        ):
            ex = await client.start_workflow("flow", {"n": 1})
            got = await collect(everything, "execution.completed", ex.id)
            only_steps = await collect(steps, "step.completed")
            only_steps += await collect(steps, "step.completed")
    seqs = [e.sequence for e in got]
    assert seqs == sorted(set(seqs)), "strictly increasing, no duplicate"
    mine = [e for e in got if e.execution_id == ex.id]
    durable = [e.type for e in mine if e.type.startswith(("execution.", "step."))]
    assert durable == [
        "execution.started",
        "step.started",
        "step.completed",
        "step.started",
        "step.completed",
        "execution.completed",
    ]
    # The mesh's live events of the same tasks, with the agent that ran them.
    live = [e for e in mine if e.type in ("task.assigned", "task.progress", "task.finished")]
    assert {e.agent_id for e in live} == {agent.agent_id}
    assert [e.step_id for e in live if e.type == "task.finished"] == ["one", "two"]
    progress = next(e for e in live if e.type == "task.progress")
    assert progress.data["progress"] == 0.5 and progress.data["message"] == "halfway"
    assert all(e.workflow_name == "flow" for e in mine if e.type.startswith("step."))
    assert [e.type for e in only_steps] == [
        "step.started",
        "step.completed",
        "step.started",
        "step.completed",
    ]
    # The store's history is the oracle for the durable events.
    history = [h.type for h in await client.get_execution_history(ex.id) if "." in h.type]
    assert [e.type for e in mine if e.type in history] == history


async def test_a_filter_on_an_execution_includes_its_children(
    coordinator: Coordinator, client: Client
) -> None:
    async with running(echo_agent(coordinator.address)):
        await client.define_workflow("flow", FLOW)
        await client.define_workflow("parent", PARENT)
        other = await client.start_workflow("flow", {})
        parent = await client.start_workflow("parent", {})
        stream = client.subscribe_to_events(
            {"executionId": parent.id}, from_sequence=1
        )  # from the start: replayed from the store, then live
        got = await collect(stream, "execution.completed", parent.id)
        await stream.aclose()
    ids = {e.execution_id for e in got}
    assert parent.id in ids and other.id not in ids
    children = ids - {parent.id}
    assert len(children) == 1, "the child's events are included"
    child = children.pop()
    assert [e.type for e in got if e.execution_id == child][-1] == "execution.completed"
    assert [e.sequence for e in got] == sorted({e.sequence for e in got})


async def test_resuming_after_a_sequence_misses_nothing_and_repeats_nothing(
    coordinator: Coordinator, client: Client
) -> None:
    async with running(echo_agent(coordinator.address)):
        await client.define_workflow("flow", FLOW)
        async with client.subscribe_to_events(types=["execution.*", "step.*"]) as whole:
            ids = [(await client.start_workflow("flow", {"i": i})).id for i in range(5)]
            for i in ids:
                await client.wait_execution(i, timeout=20)
            reference: list[Event] = []
            while sum(e.type == "execution.completed" for e in reference) < 5:
                reference.append(await whole.__anext__())
        # Read a third, stop, resume after the last one read: the same list.
        part = client.subscribe_to_events(
            types=["execution.*", "step.*"], from_sequence=reference[0].sequence - 1
        )
        first = [await part.__anext__() for _ in range(len(reference) // 3)]
        await part.aclose()
        rest = client.subscribe_to_events(
            types=["execution.*", "step.*"], from_sequence=part.last_sequence
        )
        second = [await rest.__anext__() for _ in range(len(reference) - len(first))]
        await rest.aclose()
    assert [e.sequence for e in first + second] == [e.sequence for e in reference]
    assert [e.type for e in first + second] == [e.type for e in reference]


async def test_the_callback_form_returns_a_subscription(
    coordinator: Coordinator, client: Client
) -> None:
    seen: list[Event] = []
    done = asyncio.Event()

    async def on_event(e: Event) -> None:
        seen.append(e)
        if e.type == "execution.completed":
            done.set()

    async with running(echo_agent(coordinator.address)):
        await client.define_workflow("flow", FLOW)
        ex = await client.start_workflow("flow", {})
        sub = await client.subscribe_to_events(
            EventFilter(execution_id=ex.id), on_event, from_sequence=1
        )
        await asyncio.wait_for(done.wait(), 20)
        await sub.close()
        assert sub.closed
        assert sub.last_sequence == seen[-1].sequence
    assert {e.execution_id for e in seen} == {ex.id}
    with pytest.raises(TypeError, match="pass a callback"):
        await client.subscribe_to_events()


async def test_a_subscriber_sees_its_namespace_only(coordinator: Coordinator) -> None:
    async with (
        Client(coordinator.address, namespace="team-a") as a,
        Client(coordinator.address, namespace="team-b") as b,
        running(echo_agent(coordinator.address, "team-a")),
        running(echo_agent(coordinator.address, "team-b")),
    ):
        await a.define_workflow("flow", FLOW)
        await b.define_workflow("flow", FLOW)
        async with a.subscribe_to_events() as seen_by_a:
            ex_b = await b.start_workflow("flow", {})
            ex_a = await a.start_workflow("flow", {})
            await b.wait_execution(ex_b.id, timeout=20)
            got = await collect(seen_by_a, "execution.completed", ex_a.id)
        with pytest.raises(NotFoundError):  # the same NotFound as for an unknown id
            await a.subscribe_to_events({"executionId": ex_b.id}).__anext__()
    assert ex_b.id not in {e.execution_id for e in got}
    assert {e.namespace for e in got} <= {"team-a", ""}


async def test_bad_subscriptions_are_refused_precisely(
    coordinator: Coordinator, client: Client
) -> None:
    with pytest.raises(InvalidArgumentError, match="prefix ending in"):
        await client.subscribe_to_events(types=["st*ep"]).__anext__()
    with pytest.raises(NotFoundError, match="not found"):
        await client.subscribe_to_events({"executionId": "nope"}).__anext__()
    with pytest.raises(ValueError, match="unknown event filter"):
        client.subscribe_to_events({"execution": "x"})
    async with grpc.aio.insecure_channel(coordinator.address) as ch:
        stub = monitoring_pb2_grpc.EventServiceStub(ch)
        call = stub.Subscribe(monitoring_pb2.SubscribeRequest(from_sequence=10**15))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "ahead of the event log" in (info.value.details() or "")


async def test_a_subscriber_that_stops_reading_is_ended_and_never_slows_the_engine() -> None:
    c = Coordinator(fast_settings(subscriber_buffer=10))
    await c.start()
    try:
        async with (
            Client(c.address, timeout=10) as client,
            grpc.aio.insecure_channel(c.address, options=TINY_WINDOW) as ch,
            running(echo_agent(c.address)),
        ):
            await client.define_workflow("flow", FLOW)
            stub = monitoring_pb2_grpc.EventServiceStub(ch)
            stalled = stub.Subscribe(monitoring_pb2.SubscribeRequest())
            await stalled.initial_metadata()  # registered; from now on it reads nothing
            ids = [(await client.start_workflow("flow", {"i": i})).id for i in range(30)]
            for i in ids:  # the engine is not held back by the stalled subscriber
                assert (await client.wait_execution(i, timeout=20)).status == "completed"
            received = []
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for e in stalled:
                    received.append(e.sequence)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            details = info.value.details() or ""
            assert f"from_sequence={received[-1]}" in details, details
            # It resumes from the store: the SDK does so by itself.
            stream = client.subscribe_to_events(
                types=["execution.completed"], from_sequence=received[-1]
            )
            completed = {(await stream.__anext__()).execution_id for _ in ids}
            await stream.aclose()
            assert completed == set(ids)
    finally:
        await c.stop(grace=1.0)


async def test_metrics_follow_the_executions(coordinator: Coordinator, client: Client) -> None:
    async with running(echo_agent(coordinator.address)) as agent:
        await client.define_workflow("flow", FLOW)
        ids = [(await client.start_workflow("flow", {"i": i})).id for i in range(3)]
        for i in ids:
            await client.wait_execution(i, timeout=20)
        w = await client.get_workflow_metrics("flow")
        s = await client.get_system_metrics()
    assert (w.total_executions, w.active_executions) == (3, 0)
    assert (w.success_rate, w.error_rate) == (1.0, 0.0)
    assert set(w.step_metrics) == {"one", "two"}
    assert w.step_metrics["one"].count == 3 and w.step_metrics["one"].error_rate == 0.0
    assert w.agent_utilization == {agent.agent_id: 1.0}
    assert w.average_duration_ms > 0
    assert s.total_tasks_processed == 6 and s.active_agents == 1
    assert s.tasks_per_second > 0 and s.error_rate == 0.0
    assert s.health_status == "healthy"
    assert s.memory > 1_000_000 and s.network_in > 0 and s.network_out > 0
    with pytest.raises(NotFoundError):
        await client.get_workflow_metrics("nope")
    with pytest.raises(InvalidArgumentError):
        await client.get_workflow_metrics("")


async def test_prometheus_text_parses_and_counts(coordinator: Coordinator, client: Client) -> None:
    import aiohttp

    async with running(echo_agent(coordinator.address)):
        await client.define_workflow("flow", FLOW)
        ex = await client.start_workflow("flow", {})
        await client.wait_execution(ex.id, timeout=20)
    assert coordinator.http is not None
    async with aiohttp.ClientSession() as http, http.get(coordinator.http.url + "/metrics") as r:
        assert r.status == 200
        text = await r.text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    done = ("namespace", "default"), ("outcome", "completed"), ("workflow", "flow")
    assert samples[("agentmesh_executions_total", done)] == 1.0
    tasks = ("capability", "echo"), ("namespace", "default"), ("outcome", "completed")
    assert samples[("agentmesh_tasks_total", tasks)] == 2.0
    assert ex.id not in text, "no execution id in a label"


async def test_monitoring_disabled_refuses_metrics_but_events_flow() -> None:
    c = Coordinator(fast_settings(monitoring_enabled=False))
    await c.start()
    try:
        async with Client(c.address, timeout=10) as client:
            with pytest.raises(FailedPreconditionError, match="monitoring is disabled"):
                await client.get_system_metrics()
            async with (
                client.subscribe_to_events(from_sequence=0) as stream,
                running(echo_agent(c.address)) as agent,
            ):
                joined = await stream.__anext__()
            assert (joined.type, joined.agent_id) == ("agent.joined", agent.agent_id)
    finally:
        await c.stop(grace=1.0)


async def test_streamed_output_reaches_subscribers_in_order_and_resumes() -> None:
    c = Coordinator(fast_settings(output_retention_bytes=40))
    await c.start()
    try:
        agent = Agent("llm", c.address)
        tokens = [f"tok{i:02d} " for i in range(20)]  # 6 characters each

        async def generate(task: Task) -> Any:
            for t in tokens:
                await task.stream(t)
            return {"text": "".join(tokens)}

        agent.add_capability("generate", generate)
        async with Client(c.address, timeout=10) as client, running(agent):
            async with client.subscribe_to_events(types=["task.output"]) as stream:
                t = await client.assign_task("generate", {})
                chunks = [await stream.__anext__() for _ in tokens]
            done = await client.wait_task(t.id, timeout=10)
            assert done.status == "completed"
            assert [e.data["chunk"] for e in chunks] == tokens
            assert [e.data["offset"] for e in chunks] == [6 * i for i in range(20)]
            assert {e.task_id for e in chunks} == {t.id}
            # Resume after the 10th chunk: the ring keeps the last 40 characters only,
            # so what aged out is announced, then the retained chunks follow in order.
            resumed = client.subscribe_to_events(
                types=["task.output"], from_sequence=chunks[9].sequence, follow=False
            )
            again = [e async for e in resumed]
        assert again[0].type == "stream.truncated"
        assert again[0].data["lostUpTo"] >= chunks[9].sequence
        kept = [e.data["chunk"] for e in again[1:]]
        assert kept == tokens[-len(kept) :] and 0 < len(kept) <= 40 // 6
    finally:
        await c.stop(grace=1.0)


async def test_run_task_records_streamed_chunks() -> None:
    from agent_sdk.testing import run_task

    agent = Agent("llm", "127.0.0.1:1")

    async def generate(task: Task) -> Any:
        await task.stream("a")
        task.stream("b")  # without await: queued all the same
        return "ab"

    agent.add_capability("generate", generate)
    outcome = await run_task(agent, "generate")
    assert outcome.output == "ab" and outcome.streamed == ["a", "b"]


async def test_batches_carry_the_same_events_as_one_by_one(
    coordinator: Coordinator, client: Client
) -> None:
    async with running(echo_agent(coordinator.address)):
        await client.define_workflow("flow", FLOW)
        ids = [(await client.start_workflow("flow", {"i": i})).id for i in range(4)]
        for i in ids:
            await client.wait_execution(i, timeout=20)
    whole = monitoring_pb2.SubscribeRequest(from_start=True, stop_at_head=True)
    async with grpc.aio.insecure_channel(coordinator.address) as ch:
        stub = monitoring_pb2_grpc.EventServiceStub(ch)
        single = [e async for e in stub.Subscribe(whole)]
        batches = [
            b
            async for b in stub.SubscribeBatches(
                monitoring_pb2.SubscribeBatchesRequest(subscription=whole, max_events=7)
            )
        ]
        # Following: events that happen while the stream waits arrive batched too.
        follow = stub.SubscribeBatches(
            monitoring_pb2.SubscribeBatchesRequest(
                subscription=monitoring_pb2.SubscribeRequest(
                    filter=monitoring_pb2.EventFilter(types=["execution.completed"])
                ),
                max_delay_ms=50,
            )
        )
        await follow.initial_metadata()
        async with running(echo_agent(coordinator.address)):
            more = [(await client.start_workflow("flow", {"i": i})).id for i in range(3)]
            got: list[str] = []
            while len(got) < 3:
                got += [e.execution_id for e in (await follow.read()).events]
        follow.cancel()
        bad = stub.SubscribeBatches(monitoring_pb2.SubscribeBatchesRequest(max_events=10**6))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await bad.read()
    assert len(single) > 7 * 3  # several full batches
    assert all(0 < len(b.events) <= 7 for b in batches)
    assert [e.SerializeToString() for b in batches for e in b.events] == [
        e.SerializeToString() for e in single
    ]
    assert sorted(got) == sorted(more)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_events must be at most 5000" in (info.value.details() or "")
