"""``RunTask`` and ``WaitTasks`` on a real coordinator with a real SDK agent: the SDK's
``run_task`` and ``as_completed``, completions in the order they happen and in batches
sized by what finished together, timeouts, refusals, and a waiter that leaves early
leaving nothing behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest

from agent_sdk import Agent, Client, InvalidArgumentError, NotFoundError, Task
from agentmesh.v1 import task_pb2, task_pb2_grpc
from coordinator.server import Coordinator
from tests.conftest import eventually, fast_settings, running


@asynccontextmanager
async def mesh(
    concurrency: int = 64,
) -> AsyncIterator[tuple[Coordinator, Client, dict[str, asyncio.Event]]]:
    """A coordinator and an agent whose ``gated`` tasks finish when their ``gate``
    (``input["gate"]``) is set, ``echo`` at once and ``boom`` with an error."""
    c = Coordinator(fast_settings())
    await c.start()
    gates: dict[str, asyncio.Event] = {}
    agent = Agent("waiter", c.address, max_concurrency=concurrency)

    async def gated(task: Task) -> Any:
        await gates.setdefault(task.input["gate"], asyncio.Event()).wait()
        return {"gate": task.input["gate"]}

    async def echo(task: Task) -> Any:
        return task.input

    async def boom(task: Task) -> Any:
        raise ValueError("it went wrong")

    agent.add_capability("gated", gated)
    agent.add_capability("echo", echo)
    agent.add_capability("boom", boom)
    try:
        async with running(agent), Client(c.address, timeout=10) as client:
            yield c, client, gates
    finally:
        await c.stop(grace=1)


def gate(gates: dict[str, asyncio.Event], name: str) -> asyncio.Event:
    return gates.setdefault(name, asyncio.Event())


async def test_run_task_submits_and_waits_in_one_call() -> None:
    async with mesh() as (_, client, gates):
        done = await client.run_task("echo", {"x": 1})
        assert done.status == "completed" and done.result == {"x": 1}
        failed = await client.run_task("boom", {}, max_retries=0)
        assert failed.status == "failed" and failed.error is not None
        assert "it went wrong" in failed.error.message
        # With a timeout it comes back as it stands: still running.
        held = await client.run_task("gated", {"gate": "g"}, timeout=0.2)
        assert held.status in ("assigned", "running")
        gate(gates, "g").set()
        assert (await client.wait_task(held.id, timeout=10)).status == "completed"
        again = await client.run_task("echo", {"x": 2}, idempotency_key="k")
        same = await client.run_task("echo", {"x": 2}, idempotency_key="k")
        assert same.id == again.id  # a retry finds the task, it runs once
        with pytest.raises(InvalidArgumentError, match="timeout_ms must be at most"):
            await client.run_task("echo", {}, timeout=4000)


async def test_as_completed_yields_in_the_order_tasks_finish() -> None:
    async with mesh() as (_, client, gates):
        early = await client.run_task("echo", {"early": True})
        held = [await client.assign_task("gated", {"gate": f"g{i}"}) for i in range(4)]
        order = [3, 1, 0, 2]
        seen: list[str] = []

        async def release() -> None:
            for i in order:
                gate(gates, f"g{i}").set()
                await eventually(lambda i=i: held[i].id in seen)

        releasing = asyncio.create_task(release())
        async for t in client.as_completed([early.id, *(h.id for h in held)]):
            assert t.status == "completed"
            seen.append(t.id)
        await releasing
        assert seen == [early.id, *(held[i].id for i in order)]  # the finished one first


async def test_completions_that_happen_together_come_in_one_message() -> None:
    async with mesh() as (c, client, gates):
        tasks = await client.bulk_assign_tasks(
            [task_for("gated", {"gate": "all"}) for _ in range(40)]
        )
        ids = [t.id for t in tasks]
        async with grpc.aio.insecure_channel(c.address) as channel:
            stub = task_pb2_grpc.TaskServiceStub(channel)
            call = stub.WaitTasks(task_pb2.WaitTasksRequest(task_ids=ids))
            mesh_ = c.mesh
            assert mesh_ is not None
            await eventually(lambda: all(mesh_.get_task(i).waiters for i in ids))
            gate(gates, "all").set()
            messages = [list(m.finished) async for m in call]
        got = [a.id for m in messages for a in m]
        assert sorted(got) == sorted(ids) and len(got) == 40
        assert len(messages) < 40  # batched by what finished together
        # Already finished: one message with all of them.
        async with grpc.aio.insecure_channel(c.address) as channel:
            stub = task_pb2_grpc.TaskServiceStub(channel)
            again = [m async for m in stub.WaitTasks(task_pb2.WaitTasksRequest(task_ids=ids))]
        assert len(again) == 1 and len(again[0].finished) == 40


def task_for(capability: str, input: dict[str, Any]) -> Any:
    from agent_sdk import TaskRequest

    return TaskRequest(capability=capability, input=input)


async def test_a_timeout_ends_with_what_finished_and_leaving_early_leaves_no_waiter() -> None:
    async with mesh() as (c, client, gates):
        quick = await client.run_task("echo", {})
        stuck = await client.assign_task("gated", {"gate": "never"})
        got = [t.id async for t in client.as_completed([quick.id, stuck.id], timeout=0.3)]
        assert got == [quick.id]
        assert c.mesh is not None
        await eventually(lambda: c.mesh is not None and not c.mesh.get_task(stuck.id).waiters)
        # Leaving the loop early: the coordinator drops the waits too.
        other = await client.assign_task("gated", {"gate": "later"})
        async for t in client.as_completed([quick.id, other.id, stuck.id]):
            assert t.id == quick.id
            break
        await eventually(
            lambda: not c.mesh.get_task(other.id).waiters and not c.mesh.get_task(stuck.id).waiters
        )
        gate(gates, "later").set()
        assert (await client.wait_task(other.id, timeout=10)).status == "completed"


async def test_what_cannot_be_waited_for_is_refused_before_anything_is_sent() -> None:
    async with mesh() as (_, client, _gates):
        done = await client.run_task("echo", {})
        with pytest.raises(NotFoundError, match="nope"):
            async for _ in client.as_completed([done.id, "nope"]):
                pytest.fail("nothing is sent when an id is unknown")
        with pytest.raises(InvalidArgumentError, match="duplicates"):
            async for _ in client.as_completed([done.id, done.id]):
                pass
        with pytest.raises(InvalidArgumentError, match="at most 10000 task ids"):
            async for _ in client.as_completed([f"t{i}" for i in range(10_001)]):
                pass
        assert [t async for t in client.as_completed([])] == []
