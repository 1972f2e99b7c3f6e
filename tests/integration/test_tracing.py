"""OpenTelemetry traces end to end: a real coordinator, real SDK agents, the SDK's
in-memory exporter on both sides, a real OTLP/gRPC receiver, and a restart on SQLite.

The tree: ``workflow <name>`` at the root, a ``step <id>`` span per step run under it,
a subworkflow's execution under the step that started it, a ``task <capability>``
span per attempt under its step, and the agent's ``run <capability>`` span under its
attempt (the W3C ``traceparent`` in the dispatch), with the handler's own spans below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from agent_sdk import Agent, Client, Task, TaskError
from coordinator.server import Coordinator
from tests.conftest import eventually, fast_settings, free_port, running

pytestmark = pytest.mark.timeout(60)

CHILD = {
    "id": "child",
    "steps": [
        {
            "id": "t",
            "type": "task",
            "capability": "echo",
            "retry": {"maxAttempts": 2, "interval": 10},
        }
    ],
}
PARENT = {"id": "parent", "steps": [{"id": "sub", "type": "subworkflow", "workflow": "child"}]}


def traced_agent(address: str, provider: TracerProvider, fail_first: bool = False) -> Agent:
    agent = Agent("echo", address, max_concurrency=2, tracer_provider=provider)
    calls: list[str] = []

    async def echo(task: Task) -> Any:
        calls.append(task.traceparent)
        # The handler's own span: a child of the agent's span of this attempt.
        with provider.get_tracer("handler").start_as_current_span("model.call"):
            if fail_first and len(calls) == 1:
                raise TaskError("flaky", retryable=True)
        return {"traceparent": task.traceparent}

    agent.add_capability("echo", echo)
    return agent


@pytest.fixture
def agent_spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
async def traced() -> AsyncIterator[tuple[Coordinator, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    c = Coordinator(fast_settings(), span_exporter=exporter)
    await c.start()
    try:
        yield c, exporter
    finally:
        await c.stop(grace=1)


def named(spans: Any, name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def attr(span: ReadableSpan, key: str) -> Any:
    return (span.attributes or {})[key]


def parent_of(span: ReadableSpan) -> int:
    return span.parent.span_id if span.parent is not None else 0


def within(child: ReadableSpan, parent: ReadableSpan) -> bool:
    assert child.start_time and child.end_time and parent.start_time and parent.end_time
    return parent.start_time <= child.start_time <= child.end_time <= parent.end_time


async def test_an_execution_is_one_trace_down_to_the_agents_spans(
    traced: tuple[Coordinator, InMemorySpanExporter],
    agent_spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    coordinator, exported = traced
    provider, on_agent = agent_spans
    async with (
        running(traced_agent(coordinator.address, provider, fail_first=True)),
        Client(coordinator.address, timeout=10) as client,
    ):
        await client.define_workflow("child", CHILD)
        await client.define_workflow("parent", PARENT)
        ex = await client.start_workflow("parent", {})
        assert (await client.wait_execution(ex.id, timeout=20)).status == "completed"
        await eventually(lambda: named(exported.get_finished_spans(), "workflow parent"))
    spans = [s for s in exported.get_finished_spans() if s.name != "coordinator.recovery"]
    root = named(spans, "workflow parent")[0]
    trace_id = root.context.trace_id
    assert {s.context.trace_id for s in spans} == {trace_id}, "one trace per execution"
    assert root.parent is None and attr(root, "agentmesh.execution.id") == ex.id
    (sub,) = named(spans, "step sub")
    (child,) = named(spans, "workflow child")
    (step,) = named(spans, "step t")
    attempts = sorted(named(spans, "task echo"), key=lambda s: s.start_time or 0)
    assert parent_of(sub) == root.context.span_id
    assert parent_of(child) == sub.context.span_id, "a child execution hangs under its step"
    assert parent_of(step) == child.context.span_id
    assert [parent_of(a) for a in attempts] == [step.context.span_id] * 2, "an attempt each"
    assert [a.kind for a in attempts] == [SpanKind.PRODUCER] * 2
    assert [a.status.status_code for a in attempts] == [StatusCode.ERROR, StatusCode.UNSET]
    assert [attr(a, "agentmesh.status") for a in attempts] == ["failed", "completed"]
    assert [e.name for e in step.events] == ["step.retrying"]
    for inner, outer in [(sub, root), (child, sub), (step, child), *((a, step) for a in attempts)]:
        assert within(inner, outer), (inner.name, outer.name)

    # The agent's spans: each attempt's under the coordinator's, the handler's below.
    runs = sorted(named(on_agent.get_finished_spans(), "run echo"), key=lambda s: s.start_time or 0)
    assert [r.context.trace_id for r in runs] == [trace_id] * 2
    assert [parent_of(r) for r in runs] == [a.context.span_id for a in attempts]
    assert [r.kind for r in runs] == [SpanKind.CONSUMER] * 2
    assert [r.status.status_code for r in runs] == [StatusCode.ERROR, StatusCode.UNSET]
    assert attr(runs[1], "agentmesh.execution.id") == attr(child, "agentmesh.execution.id")
    calls = named(on_agent.get_finished_spans(), "model.call")
    assert sorted(parent_of(c) for c in calls) == sorted(r.context.span_id for r in runs)
    for r, a in zip(runs, attempts, strict=True):
        assert within(r, a)


async def test_a_task_outside_workflows_is_a_trace_of_its_own(
    traced: tuple[Coordinator, InMemorySpanExporter],
    agent_spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    coordinator, exported = traced
    provider, on_agent = agent_spans
    async with (
        running(traced_agent(coordinator.address, provider)),
        Client(coordinator.address, timeout=10) as client,
    ):
        first = await client.assign_task("echo", {})
        second = await client.assign_task("echo", {})
        for t in (first, second):
            assert (await client.wait_task(t.id, timeout=10)).status == "completed"
        await eventually(lambda: len(named(exported.get_finished_spans(), "task echo")) == 2)
    tasks = {
        attr(s, "agentmesh.task.id"): s for s in named(exported.get_finished_spans(), "task echo")
    }
    assert set(tasks) == {first.id, second.id}
    assert all(s.parent is None for s in tasks.values())
    assert tasks[first.id].context.trace_id != tasks[second.id].context.trace_id
    runs = named(on_agent.get_finished_spans(), "run echo")
    by_task = {attr(r, "agentmesh.task.id"): r for r in runs}
    for task_id, span in tasks.items():
        assert by_task[task_id].context.trace_id == span.context.trace_id
        assert parent_of(by_task[task_id]) == span.context.span_id


async def test_untraced_coordinator_sends_no_traceparent(
    coordinator: Coordinator,
    client: Client,
    agent_spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, on_agent = agent_spans
    async with running(traced_agent(coordinator.address, provider)):
        t = await client.assign_task("echo", {})
        done = await client.wait_task(t.id, timeout=10)
    assert done.result == {"traceparent": ""}
    assert named(on_agent.get_finished_spans(), "run echo") == []


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """A real OTLP/gRPC trace receiver: keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


async def test_spans_reach_an_otlp_collector(
    agent_spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    receiver, port = Receiver(), free_port()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    provider, on_agent = agent_spans
    c = Coordinator(fast_settings(otlp_endpoint=f"http://127.0.0.1:{port}"))
    await c.start()
    try:
        async with running(traced_agent(c.address, provider)), Client(c.address) as client:
            await client.define_workflow("child", CHILD)
            ex = await client.start_workflow("child", {})
            assert (await client.wait_execution(ex.id, timeout=20)).status == "completed"
    finally:
        await c.stop(grace=1)  # exports what the batch processor holds
        await server.stop(0)
    resources = [rs for r in receiver.requests for rs in r.resource_spans]
    service = {
        kv.value.string_value
        for rs in resources
        for kv in rs.resource.attributes
        if kv.key == "service.name"
    }
    assert service == {"agentmesh-coordinator"}
    spans = {s.name: s for rs in resources for ss in rs.scope_spans for s in ss.spans}
    assert {"workflow child", "step t", "task echo"} <= set(spans)
    trace_hex = spans["workflow child"].trace_id.hex()
    assert {spans[n].trace_id.hex() for n in ("step t", "task echo")} == {trace_hex}
    # The agent's span (from what it was handed) is in that trace, under the attempt.
    (run,) = named(on_agent.get_finished_spans(), "run echo")
    assert f"{run.context.trace_id:032x}" == trace_hex
    assert f"{parent_of(run):016x}" == spans["task echo"].span_id.hex()


HOLD = {
    "id": "hold",
    "steps": [
        {"id": "w", "type": "wait", "wait": {"durationMs": 10}, "next": "e"},
        {"id": "e", "type": "event", "event": {"name": "go"}},
    ],
}


async def test_spans_begun_before_a_restart_are_ended_whole_after_it(tmp_path: Path) -> None:
    settings = fast_settings(state_persistence="sqlite", store_path=str(tmp_path / "am.db"))
    before, after = InMemorySpanExporter(), InMemorySpanExporter()
    first = Coordinator(settings, span_exporter=before)
    await first.start()
    try:
        async with Client(first.address, timeout=10) as client:
            await client.define_workflow("hold", HOLD)
            ex = await client.start_workflow("hold", {})

            async def at_hold() -> bool:
                status = await client.get_execution_status(ex.id)
                return [s.step_id for s in status.current_steps] == ["e"]

            await eventually(at_hold)
    finally:
        await first.stop(grace=1)
    (w,) = named(before.get_finished_spans(), "step w")  # ended under the first
    assert not named(before.get_finished_spans(), "workflow hold")

    second = Coordinator(settings, span_exporter=after)
    await second.start()
    try:
        async with Client(second.address, timeout=10) as client:

            async def delivered() -> bool:  # once recovery re-armed the event wait
                return (await client.trigger_event("go")).delivered > 0

            await eventually(delivered, timeout=10)
            assert (await client.wait_execution(ex.id, timeout=20)).status == "completed"
            history = {
                (h.type, h.step_id): h.time for h in await client.get_execution_history(ex.id)
            }
            await eventually(lambda: named(after.get_finished_spans(), "workflow hold"))
    finally:
        await second.stop(grace=1)
    spans = after.get_finished_spans()
    (recovery,) = named(spans, "coordinator.recovery")
    assert not named(spans, "step w"), "a run that ended before the restart is not ended again"
    (root,) = named(spans, "workflow hold")
    (e,) = named(spans, "step e")
    # The same tree: the first coordinator's step hangs under the second's root.
    assert root.context.trace_id == w.context.trace_id == e.context.trace_id
    assert parent_of(w) == root.context.span_id == parent_of(e)
    # Begun under the first: the start times the store kept, and a link to the recovery.
    assert root.start_time == _ns(history[("execution.started", "")])
    assert e.start_time == _ns(history[("step.started", "e")])
    for s in (root, e):
        assert [link.context.span_id for link in s.links] == [recovery.context.span_id]
    assert attr(root, "agentmesh.workflow.name") == "hold"


def _ns(t: Any) -> int:
    return int(t.timestamp() * 1e9)
