"""Namespaces partition a real coordinator: agents, tasks, workflows, executions and
events of one namespace are invisible to another (ids answer NOT_FOUND, the same text
as an id nobody knows), and an agent is routed its own namespace's tasks only. The
SQLite case restarts the coordinator: what is stored keeps its namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from agent_sdk import (
    Agent,
    Client,
    FailedPreconditionError,
    NotFoundError,
    Task,
)
from agentmesh.protocol import NAMESPACE_METADATA
from agentmesh.v1 import workflow_pb2, workflow_pb2_grpc
from coordinator.server import Coordinator
from tests.conftest import fast_settings, running

A, B = "team-a", "team-b"
WORK = {"id": "work", "steps": [{"id": "do", "type": "task", "capability": "work"}]}
HOLD = {"id": "hold", "steps": [{"id": "e", "type": "event", "event": {"name": "go"}}]}


def worker(address: str, namespace: str, seen: list[tuple[str, str]]) -> Agent:
    """An agent of ``namespace`` serving ``work``; each task it gets lands in ``seen``
    as (its namespace, the task's ``input.ns``)."""
    agent = Agent(f"worker-{namespace}", address, namespace=namespace, max_concurrency=4)

    async def work(task: Task) -> dict[str, Any]:
        seen.append((namespace, str(task.input.get("ns", ""))))
        return {"by": namespace}

    agent.add_capability("work", work)
    return agent


@asynccontextmanager
async def clients(address: str) -> AsyncIterator[tuple[Client, Client]]:
    async with (
        Client(address, timeout=10, namespace=A) as a,
        Client(address, timeout=10, namespace=B) as b,
    ):
        yield a, b


async def test_an_agent_is_routed_its_own_namespace_tasks_only(coordinator: Coordinator) -> None:
    seen: list[tuple[str, str]] = []
    async with (
        clients(coordinator.address) as (a, b),
        running(worker(coordinator.address, A, seen)),
    ):
        # Namespace B has no agent: A's agent with the capability does not count.
        with pytest.raises(FailedPreconditionError, match="no live agent"):
            await b.assign_task("work", {"ns": B})
        queued = await b.assign_task("work", {"ns": B}, wait_for_agent=True)
        done = [await a.assign_task("work", {"ns": A}) for _ in range(20)]
        for t in done:
            assert (await a.wait_task(t.id, timeout=10)).result == {"by": A}
        assert (await b.get_task_status(queued.id)).status == "pending"
        assert all(ns == task_ns for ns, task_ns in seen)
        assert len(seen) == 20
        # B's agent arrives: B's queued task goes to it, and only there.
        async with running(worker(coordinator.address, B, seen)):
            result = await b.wait_task(queued.id, timeout=10)
            assert result.result == {"by": B}
            assert result.namespace == B
        assert seen.count((B, B)) == 1
        assert all(ns == task_ns for ns, task_ns in seen)


async def test_ids_of_another_namespace_are_not_found(coordinator: Coordinator) -> None:
    seen: list[tuple[str, str]] = []
    async with (
        clients(coordinator.address) as (a, b),
        running(worker(coordinator.address, A, seen)) as agent_a,
    ):
        task = await a.assign_task("work", {"ns": A})
        await a.wait_task(task.id, timeout=10)
        await a.define_workflow("hold", HOLD)
        ex = await a.start_workflow("hold")
        assert ex.namespace == A
        unknown = "0" * 32
        # The same refusal for A's ids as for ids nobody has.
        for ident in (task.id, unknown):
            with pytest.raises(NotFoundError, match=f"task {ident!r}|{ident}"):
                await b.get_task_status(ident)
            with pytest.raises(NotFoundError):
                await b.cancel_task(ident)
        texts = []
        for ident in (ex.id, unknown):
            with pytest.raises(NotFoundError) as caught:
                await b.get_execution_status(ident)
            texts.append(str(caught.value).replace(ident, "ID"))
            for call in (b.stop_workflow, b.pause_workflow, b.get_execution_history):
                with pytest.raises(NotFoundError):
                    await call(ident)
        assert texts[0] == texts[1]
        with pytest.raises(NotFoundError):
            await b.get_agent(agent_a.agent_id)
        with pytest.raises(NotFoundError):
            await b.get_workflow("hold")
        assert [x.id for x in await b.list_executions()] == []
        assert await b.list_active_executions() == []
        assert await b.list_agents() == []
        assert await b.list_tasks() == []
        assert await b.find_agents_by_capability("work") == []
        assert [w.name for w in await b.list_workflows()] == []
        # A sees its own.
        assert [x.id for x in await a.list_executions()] == [ex.id]
        assert [x.id for x in await a.list_agents()] == [agent_a.agent_id]
        assert (await a.get_agent(agent_a.agent_id)).namespace == A
        await a.stop_workflow(ex.id)


async def test_workflows_events_and_keys_are_per_namespace(coordinator: Coordinator) -> None:
    async with clients(coordinator.address) as (a, b):
        # The same name in two namespaces is two workflows.
        await a.define_workflow("hold", HOLD)
        other = {**HOLD, "description": "B's own"}
        await b.define_workflow("hold", other)
        assert (await a.get_workflow("hold")) == HOLD
        assert (await b.get_workflow("hold"))["description"] == "B's own"
        ex_a = await a.start_workflow("hold", idempotency_key="k")
        ex_b = await b.start_workflow("hold", idempotency_key="k")
        assert ex_a.id != ex_b.id  # one key, two namespaces, two executions
        assert (await a.start_workflow("hold", idempotency_key="k")).id == ex_a.id
        # An event of B reaches B's waiting execution only (each registered its wait
        # before start_workflow returned).
        assert (await b.trigger_event("go", {})).delivered == 1
        assert (await b.wait_execution(ex_b.id, timeout=10)).status == "completed"
        assert (await a.get_execution_status(ex_a.id)).status == "running"
        assert (await b.trigger_event("go", {})).delivered == 0
        assert (await a.trigger_event("go", {})).delivered == 1
        assert (await a.wait_execution(ex_a.id, timeout=10)).status == "completed"
        # Deleting in one namespace leaves the other's.
        await a.delete_workflow("hold")
        with pytest.raises(NotFoundError):
            await a.get_workflow("hold")
        assert (await b.get_workflow("hold"))["description"] == "B's own"


async def test_a_subworkflow_runs_in_its_parents_namespace(coordinator: Coordinator) -> None:
    seen: list[tuple[str, str]] = []
    parent = {
        "id": "parent",
        "steps": [{"id": "child", "type": "subworkflow", "workflow": "work"}],
    }
    async with (
        clients(coordinator.address) as (a, b),
        running(worker(coordinator.address, A, seen)),
        running(worker(coordinator.address, B, seen)),
    ):
        for client in (a, b):
            await client.define_workflow("work", {**WORK, "steps": [_step(client.namespace)]})
            await client.define_workflow("parent", parent)
        ex = await b.start_workflow("parent")
        assert (await b.wait_execution(ex.id, timeout=10)).status == "completed"
        children = [x for x in await b.list_executions() if x.workflow_name == "work"]
        assert len(children) == 1 and children[0].namespace == B
        assert seen == [(B, B)]
        assert [x.workflow_name for x in await a.list_executions()] == []


def _step(namespace: str) -> dict[str, Any]:
    return {"id": "do", "type": "task", "capability": "work", "input": {"ns": namespace}}


async def test_a_malformed_namespace_is_invalid_argument(coordinator: Coordinator) -> None:
    with pytest.raises(ValueError, match="not a namespace name"):
        Client(coordinator.address, namespace="Team A")
    # A client that skips the SDK's check hears INVALID_ARGUMENT from the coordinator.
    async with grpc.aio.insecure_channel(coordinator.address) as channel:
        stub = workflow_pb2_grpc.ExecutionServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListExecutions(
                workflow_pb2.ListExecutionsRequest(),
                metadata=((NAMESPACE_METADATA, "../etc"),),
            )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "not a namespace name" in (caught.value.details() or "")


async def test_the_namespace_survives_a_restart(tmp_path: Path) -> None:
    settings = fast_settings(state_persistence="sqlite", store_path=str(tmp_path / "s.db"))
    async with AsyncExitStack() as stack:
        c = Coordinator(settings)
        await c.start()
        stack.push_async_callback(c.stop, 1.0)
        async with clients(c.address) as (a, _):
            await a.define_workflow("hold", HOLD)
            ex = await a.start_workflow("hold", idempotency_key="once")
    again = Coordinator(settings)
    await again.start()
    try:
        async with clients(again.address) as (a, b):
            assert (await a.get_execution_status(ex.id)).namespace == A
            with pytest.raises(NotFoundError):
                await b.get_execution_status(ex.id)
            with pytest.raises(NotFoundError):
                await b.get_workflow("hold")
            assert (await a.start_workflow("hold", idempotency_key="once")).id == ex.id
            with pytest.raises(NotFoundError, match="not defined"):
                await b.start_workflow("hold")
    finally:
        await again.stop(grace=1.0)
