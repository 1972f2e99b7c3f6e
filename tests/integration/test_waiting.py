"""A step whose task no live agent can take says so, in its history (``task.waiting``,
then ``task.unblocked`` when an agent that can take it arrives) and in the execution's
status (``StepExecution.waiting``), across a coordinator restart too; an agent that
leaves after saying goodbye is a departure in the coordinator's log, not a fault."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from agent_sdk import Agent, Client, ExecutionEvent, Task
from coordinator.server import Coordinator
from tests.conftest import eventually, fast_settings, running

ONE_STEP = {
    "id": "needs_x",
    "steps": [{"id": "s", "name": "s", "type": "task", "capability": "x", "input": {"n": 1}}],
}
TWO_AT_ONCE = {
    "id": "two_x",
    "steps": [
        {
            "id": "both",
            "name": "both",
            "type": "parallel",
            "parallel": {
                "branches": [
                    {
                        "name": f"b{i}",
                        "steps": [
                            {"id": f"t{i}", "name": f"t{i}", "type": "task", "capability": "x"}
                        ],
                    }
                    for i in (1, 2)
                ]
            },
        }
    ],
}
WAITING = "no live agent advertises 'x'"


def x_agent(address: str, gate: asyncio.Event, concurrency: int = 4) -> tuple[Agent, list[Any]]:
    """An agent for capability ``x`` whose tasks finish once ``gate`` is set."""
    agent = Agent("xer", address, max_concurrency=concurrency, reconnect_max=0.5)
    seen: list[Any] = []

    async def run(task: Task) -> Any:
        seen.append(task.input)
        await gate.wait()
        return {"ok": True}

    agent.add_capability("x", run)
    return agent, seen


async def until_event(
    client: Client, execution_id: str, type_: str, timeout: float = 10.0
) -> ExecutionEvent:
    """The first ``type_`` entry of the execution's history, once it is there."""
    found: list[ExecutionEvent] = []

    async def there() -> bool:
        history = await client.get_execution_history(execution_id)
        found[:] = [e for e in history if e.type == type_]
        return bool(found)

    await eventually(there, timeout=timeout)
    return found[0]


async def waiting_of(client: Client, execution_id: str) -> list[tuple[str, str]]:
    status = await client.get_execution_status(execution_id)
    return [(s.step_id, s.waiting) for s in status.current_steps]


def types_of(history: list[ExecutionEvent]) -> list[str]:
    return [e.type for e in history]


async def test_a_step_no_agent_can_take_says_it_waits_and_when_it_resumes(
    coordinator: Coordinator, client: Client
) -> None:
    await client.define_workflow("needs_x", ONE_STEP)
    e = await client.start_workflow("needs_x", {})
    waiting = await until_event(client, e.id, "task.waiting")
    assert waiting.message == WAITING and waiting.step_id == "s"
    assert waiting.data["capability"] == "x" and waiting.data["taskId"]
    assert await waiting_of(client, e.id) == [("s", WAITING)]

    gate = asyncio.Event()
    agent, seen = x_agent(coordinator.address, gate)
    async with running(agent):
        unblocked = await until_event(client, e.id, "task.unblocked")
        assert unblocked.message == f"agent {agent.agent_id} advertises 'x'"
        assert unblocked.step_id == "s" and unblocked.data["taskId"] == waiting.data["taskId"]
        await eventually(lambda: seen)
        assert await waiting_of(client, e.id) == [("s", "")]  # running, no longer waiting
        gate.set()
        done = await client.wait_execution(e.id, timeout=20)
    assert done.status == "completed" and done.current_steps == []
    types = types_of(await client.get_execution_history(e.id))
    assert types.count("task.waiting") == 1 and types.count("task.unblocked") == 1
    assert (
        types.index("task.dispatched")
        < types.index("task.waiting")
        < types.index("task.unblocked")
        < types.index("task.completed")
    )


async def test_a_task_queued_behind_a_busy_agent_is_not_waiting_for_an_agent(
    coordinator: Coordinator, client: Client
) -> None:
    mesh = coordinator.mesh
    assert mesh is not None
    gate = asyncio.Event()
    agent, seen = x_agent(coordinator.address, gate, concurrency=1)
    async with running(agent):
        await client.define_workflow("two_x", TWO_AT_ONCE)
        e = await client.start_workflow("two_x", {})
        await eventually(lambda: seen and mesh.pending_count == 1)
        steps = await waiting_of(client, e.id)
        assert sorted(steps) == [("both", ""), ("t1", ""), ("t2", "")]
        gate.set()
        done = await client.wait_execution(e.id, timeout=20)
    assert done.status == "completed" and len(seen) == 2
    types = types_of(await client.get_execution_history(e.id))
    assert "task.waiting" not in types and "task.unblocked" not in types


@asynccontextmanager
async def on_store(db: Path) -> AsyncIterator[tuple[Coordinator, Client]]:
    c = Coordinator(fast_settings(state_persistence="sqlite", store_path=str(db)))
    await c.start()
    try:
        async with Client(c.address, timeout=10) as client:
            yield c, client
    finally:
        await c.stop(grace=1)


async def test_a_waiting_step_still_says_so_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "am.db"
    async with on_store(db) as (_, client):
        await client.define_workflow("needs_x", ONE_STEP)
        e = await client.start_workflow("needs_x", {})
        await until_event(client, e.id, "task.waiting")

    async with on_store(db) as (c, client):
        assert await waiting_of(client, e.id) == [("s", WAITING)]
        gate = asyncio.Event()
        gate.set()
        agent, _ = x_agent(c.address, gate)
        async with running(agent):
            done = await client.wait_execution(e.id, timeout=20)
        assert done.status == "completed"
        history = await client.get_execution_history(e.id)
    types = types_of(history)
    # The recovered execution knew it was waiting: the same wait is not written twice.
    assert types.count("task.waiting") == 1 and types.count("task.unblocked") == 1
    assert types.index("task.waiting") < types.index("task.unblocked")
    unblocked = next(h for h in history if h.type == "task.unblocked")
    assert unblocked.message == f"agent {agent.agent_id} advertises 'x'"


def departures(caplog: pytest.LogCaptureFixture, agent_id: str) -> list[tuple[int, str]]:
    return [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.name == "coordinator.mesh"
        and r.getMessage().startswith(f"agent {agent_id} ")
        and "joined" not in r.getMessage()
    ]


async def test_a_goodbye_is_a_departure_and_a_vanished_agent_a_warning(
    coordinator: Coordinator, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="coordinator.mesh")
    gate = asyncio.Event()
    polite, _ = x_agent(coordinator.address, gate)
    async with running(polite):
        pass  # shutdown(): Goodbye, drain, close the stream
    await eventually(lambda: departures(caplog, polite.agent_id))
    assert departures(caplog, polite.agent_id) == [
        (logging.INFO, f"agent {polite.agent_id} (xer) left: draining")
    ]

    polled = await client.register_agent("poller", ["x"])
    await client.unregister_agent(polled)
    assert departures(caplog, polled) == [
        (logging.INFO, f"agent {polled} (poller) left: unregistered")
    ]

    rude, _ = x_agent(coordinator.address, gate)
    serving = asyncio.create_task(rude.serve())
    await rude.wait_connected(10)
    serving.cancel()  # gone without a goodbye
    with pytest.raises(asyncio.CancelledError):
        await serving
    await eventually(lambda: departures(caplog, rude.agent_id))
    [(level, message)] = departures(caplog, rude.agent_id)
    assert level == logging.WARNING and "offline" in message
