"""ListExecutions, GetCoordinatorInfo and the warnings DefineWorkflow returns, on a real
coordinator (SQLite store, so a restart is a real one)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from agent_sdk import Agent, Client, InvalidArgumentError, Task
from agentmesh import __version__
from agentmesh.v1 import workflow_pb2, workflow_pb2_grpc
from coordinator.server import Coordinator
from tests.conftest import fast_settings

UNKNOWN_STATUS: Any = 99  # a number no ExecutionStatus has
ECHO = {"id": "echo", "steps": [{"id": "a", "type": "task", "capability": "echo"}]}
HOLD = {"id": "hold", "steps": [{"id": "e", "type": "event", "event": {"name": "never"}}]}
HANDLED = {
    "id": "handled",
    "errorHandlers": [{"error": "*", "handler": "echo"}],
    "steps": [{"id": "a", "type": "task", "capability": "echo"}],
}


@asynccontextmanager
async def coordinator(db: Path) -> AsyncIterator[tuple[Coordinator, Client]]:
    c = Coordinator(fast_settings(state_persistence="sqlite", store_path=str(db)))
    await c.start()
    client = Client(c.address, timeout=10)
    try:
        yield c, client
    finally:
        await client.close()
        await c.stop(grace=1)


@asynccontextmanager
async def echo_agent(address: str) -> AsyncIterator[Agent]:
    agent = Agent("echo", address)

    async def echo(task: Task) -> Any:
        return task.input

    agent.add_capability("echo", echo)
    serving = asyncio.create_task(agent.serve())
    await agent.wait_connected(10)
    try:
        yield agent
    finally:
        await agent.shutdown(grace=1)
        await asyncio.gather(serving, return_exceptions=True)


async def test_executions_are_listed_newest_first_by_workflow_and_status(tmp_path: Path) -> None:
    async with coordinator(tmp_path / "am.db") as (c, client), echo_agent(c.address):
        await client.define_workflow("echo", ECHO)
        await client.define_workflow("hold", HOLD)
        done = []
        for i in range(3):
            e = await client.start_workflow("echo", {"i": i})
            done.append((await client.wait_execution(e.id, timeout=10)).id)
        held = await client.start_workflow("hold", {})

        rows = await client.list_executions()
        assert [r.id for r in rows] == [held.id, *reversed(done)]
        assert rows[0].status == "running" and rows[0].end_time is None
        assert rows[0].current_step_ids == ["e"] and rows[0].workflow_version == "1"
        assert all(r.status == "completed" and r.end_time is not None for r in rows[1:])
        assert all(r.start_time is not None for r in rows)

        assert [r.id for r in await client.list_executions("hold")] == [held.id]
        completed = await client.list_executions(statuses=["completed"], limit=2)
        assert [r.id for r in completed] == list(reversed(done))[:2]
        assert [r.id for r in await client.list_executions(statuses=["running", "paused"])] == [
            held.id
        ]
        assert await client.list_executions("nope") == []
        with pytest.raises(ValueError, match="unknown execution status 'done'"):
            await client.list_executions(statuses=["done"])

    # After a restart the store answers (the finished ones are no longer in memory).
    async with coordinator(tmp_path / "am.db") as (_, client):
        again = await client.list_executions(statuses=["completed"])
        assert [r.id for r in again] == list(reversed(done))


async def test_executions_page_search_and_children(tmp_path: Path) -> None:
    """Pages follow next_page_token to the end with no gap or repeat; the query finds
    ids and inputs; a time range bounds start times; parent_id lists the children."""
    parent = {
        "id": "parent",
        "steps": [{"id": "c", "type": "subworkflow", "workflow": "echo", "input": {"k": "kid"}}],
    }
    async with coordinator(tmp_path / "am.db") as (_, client), echo_agent(client.address):
        await client.define_workflow("echo", ECHO)
        await client.define_workflow("parent", parent)
        ids = []
        for i in range(7):
            e = await client.start_workflow("echo", {"repo": f"Widget-{i}"})
            ids.append((await client.wait_execution(e.id, timeout=10)).id)
        top = await client.start_workflow("parent", {})
        await client.wait_execution(top.id, timeout=10)

        paged = [e.id async for e in client.iter_executions("echo", page_size=3)]
        children = [e.id for e in await client.list_executions(parent_id=top.id)]
        assert len(children) == 1 and children[0] not in ids
        assert paged == [children[0], *reversed(ids)]  # 8 rows over 3 pages
        found = await client.list_executions(query="widget-3")
        assert [e.id for e in found] == [ids[3]]
        assert [e.id for e in await client.list_executions(query=ids[5][-8:].upper())] == [ids[5]]
        assert [e.id for e in await client.list_executions(query='"kid"')] == children
        first = (await client.get_execution_status(ids[2])).start_time
        last = (await client.get_execution_status(ids[4])).start_time
        assert first is not None and last is not None
        window = await client.list_executions(started_after=first, started_before=last)
        assert [e.id for e in window] == [ids[3]]
        assert await client.list_executions(query="nothing like it") == []


async def test_list_executions_refuses_what_it_cannot_answer(tmp_path: Path) -> None:
    async with (
        coordinator(tmp_path / "am.db") as (c, _),
        grpc.aio.insecure_channel(c.address) as channel,
    ):
        stub = workflow_pb2_grpc.ExecutionServiceStub(channel)
        for request, message in [
            (workflow_pb2.ListExecutionsRequest(limit=1001), "limit must be at most 1000"),
            (
                workflow_pb2.ListExecutionsRequest(statuses=[UNKNOWN_STATUS]),
                "99 is not an execution status",
            ),
            (workflow_pb2.ListExecutionsRequest(page_token="garbage!"), "page_token is not one"),
            (workflow_pb2.ListExecutionsRequest(page_token="WzEsMl0"), "page_token is not one"),
            (workflow_pb2.ListExecutionsRequest(query="x" * 257), "at most 256 characters"),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ListExecutions(request)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert message in str(caught.value.details())


async def test_coordinator_info_names_version_and_store(tmp_path: Path) -> None:
    async with coordinator(tmp_path / "am.db") as (c, client):
        info = await client.get_coordinator_info()
    assert info.version == __version__ and info.protocol_version == 1
    assert info.store == "sqlite" and info.coordinator_id == c.coordinator_id
    assert info.start_time is not None


async def test_define_returns_validations_warnings_and_knows_stored_workflows(
    tmp_path: Path,
) -> None:
    async with coordinator(tmp_path / "am.db") as (_, client):
        info = await client.define_workflow("handled", HANDLED)
        messages = [(w.location, w.message) for w in info.warnings]
        assert ("errorHandlers[0].handler", "no workflow named 'echo' is defined") in messages
        assert ("steps[0].capability", "no connected agent advertises 'echo'") in messages
        assert all(w.severity == "warning" for w in info.warnings)
        await client.define_workflow("echo", ECHO)
    # A restarted coordinator knows the stored workflows: no false warning.
    async with coordinator(tmp_path / "am.db") as (_, client):
        changed = {**HANDLED, "description": "v2"}
        info = await client.define_workflow("handled", changed)
        assert info.version == "2"
        assert [w.message for w in info.warnings] == ["no connected agent advertises 'echo'"]
        with pytest.raises(InvalidArgumentError):
            await client.define_workflow("bad", {"id": "bad", "steps": []})
