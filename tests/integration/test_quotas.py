"""Per-namespace quotas on a real coordinator: a tenant past its quota of queued tasks,
unfinished executions or events per second is refused with RESOURCE_EXHAUSTED naming
the quota, and another tenant goes on as if nothing happened, even under a flood.
(The latency side of the flood is bench/fairness.py's: no timing is asserted here.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from agent_sdk import Agent, Client, ResourceExhaustedError, Task, TaskRequest
from coordinator.server import Coordinator
from tests.conftest import fast_settings, running

A, B = "team-a", "team-b"
HOLD = {"id": "hold", "steps": [{"id": "e", "type": "event", "event": {"name": "go"}}]}
QUOTAS: dict[str, dict[str, float]] = {
    A: {"queuedTasks": 5, "runningExecutions": 2, "eventsPerSecond": 3}
}


@asynccontextmanager
async def limited(
    quotas: dict[str, dict[str, float]] = QUOTAS, wait_ms: int = 0
) -> AsyncIterator[tuple[Coordinator, Client, Client]]:
    """A coordinator with ``quotas``; at the queued-tasks quota a submission waits up
    to ``wait_ms`` for room (0: it is refused at once, which these tests look at)."""
    c = Coordinator(fast_settings(namespace_quotas=quotas, quota_wait_ms=wait_ms))
    await c.start()
    try:
        async with (
            Client(c.address, timeout=10, namespace=A) as a,
            Client(c.address, timeout=10, namespace=B) as b,
        ):
            yield c, a, b
    finally:
        await c.stop(grace=1.0)


async def test_queued_tasks_stop_at_the_quota_and_only_there() -> None:
    async with limited() as (_, a, b):
        for _ in range(5):
            await a.assign_task("work", {}, wait_for_agent=True)
        with pytest.raises(ResourceExhaustedError, match="quota queued_tasks is 5"):
            await a.assign_task("work", {}, wait_for_agent=True)
        with pytest.raises(ResourceExhaustedError, match=r"tasks\[0\]: .*queued_tasks"):
            await a.bulk_assign_tasks([TaskRequest("work")], wait_for_agent=True)
        for _ in range(20):  # team-b has no quota
            await b.assign_task("work", {}, wait_for_agent=True)
        assert len(await a.list_tasks(status="pending")) == 5
        # Taken tasks free room: cancel one and one more fits.
        first = (await a.list_tasks(status="pending"))[-1]
        await a.cancel_task(first.id)
        await a.assign_task("work", {}, wait_for_agent=True)
        with pytest.raises(ResourceExhaustedError):
            await a.assign_task("work", {}, wait_for_agent=True)


async def test_unfinished_executions_stop_at_the_quota() -> None:
    async with limited() as (_, a, b):
        for client in (a, b):
            await client.define_workflow("hold", HOLD)
        held = [await a.start_workflow("hold") for _ in range(2)]
        with pytest.raises(ResourceExhaustedError, match="quota running_executions is 2"):
            await a.start_workflow("hold")
        for _ in range(5):
            await b.start_workflow("hold")
        # An idempotent repeat of a started one is no new execution: it is answered.
        keyed = await b.start_workflow("hold", idempotency_key="k")
        assert (await b.start_workflow("hold", idempotency_key="k")).id == keyed.id
        await a.stop_workflow(held[0].id)
        await a.wait_execution(held[0].id, timeout=10)
        await a.start_workflow("hold")  # room again
        with pytest.raises(ResourceExhaustedError):
            await a.start_workflow("hold")


async def test_events_per_second_refuse_with_when_to_retry() -> None:
    async with limited() as (_, a, b):
        for _ in range(3):
            await a.trigger_event("ping", {})
        with pytest.raises(ResourceExhaustedError, match=r"events_per_second 3; retry in"):
            await a.trigger_event("ping", {})
        for _ in range(20):
            await b.trigger_event("ping", {})


async def test_a_flood_from_one_tenant_leaves_the_others_dispatch_alone() -> None:
    """team-a floods (its agent is stuck, 200 concurrent submissions against a quota of
    5); team-b's tasks are all dispatched and completed meanwhile, and team-a's queue
    never holds more than its quota."""
    release = asyncio.Event()
    async with limited() as (c, a, b):

        async def stuck(task: Task) -> dict[str, Any]:
            await release.wait()
            return {}

        async def quick(task: Task) -> dict[str, Any]:
            return {"i": task.input["i"]}

        agent_a = Agent("a", c.address, namespace=A, max_concurrency=1)
        agent_a.add_capability("work", stuck)
        agent_b = Agent("b", c.address, namespace=B, max_concurrency=4)
        agent_b.add_capability("work", quick)
        async with running(agent_a), running(agent_b):
            refused = 0

            async def flood() -> None:
                nonlocal refused
                for _ in range(10):
                    try:
                        await a.assign_task("work", {}, wait_for_agent=True)
                    except ResourceExhaustedError:
                        refused += 1

            flooding = asyncio.gather(*(flood() for _ in range(20)))
            results = []
            for i in range(50):
                t = await b.assign_task("work", {"i": i})
                results.append((await b.wait_task(t.id, timeout=10)).result)
            await flooding
            assert results == [{"i": i} for i in range(50)]
            assert refused == 200 - 5 - 1  # 5 queued, 1 held by the stuck agent
            mesh = c.mesh
            assert mesh is not None
            assert mesh.counts(A) == (5, 1)
            release.set()


async def test_at_the_quota_a_submission_waits_for_room_instead_of_failing() -> None:
    """Backpressure: 40 concurrent submissions against a queue quota of 5 all get in,
    as the agent takes work; the queue never holds more than 5."""
    async with limited({A: {"queuedTasks": 5}}, wait_ms=10_000) as (c, a, _):

        async def slow(task: Task) -> dict[str, Any]:
            await asyncio.sleep(0.005)
            return {}

        agent = Agent("a", c.address, namespace=A, max_concurrency=2)
        agent.add_capability("work", slow)
        mesh = c.mesh
        assert mesh is not None
        most = 0
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal most
            while not done.is_set():
                most = max(most, mesh.counts(A)[0])
                await asyncio.sleep(0.001)

        async with running(agent):
            sampler = asyncio.create_task(sample())
            tasks = await asyncio.gather(
                *(a.assign_task("work", {}, wait_for_agent=True) for _ in range(40))
            )
            done.set()
            await sampler
            for t in tasks:
                assert (await a.wait_task(t.id, timeout=10)).status == "completed"
        assert 0 < most <= 5


async def test_tasks_per_second_refuse_past_the_rate() -> None:
    async with limited({A: {"tasksPerSecond": 4}}) as (_, a, b):
        for _ in range(4):
            await a.assign_task("work", {}, wait_for_agent=True)
        with pytest.raises(ResourceExhaustedError, match=r"tasks_per_second 4; retry in"):
            await a.assign_task("work", {}, wait_for_agent=True)
        for _ in range(10):
            await b.assign_task("work", {}, wait_for_agent=True)


async def test_at_the_rate_a_submission_waits_its_turn() -> None:
    async with limited({A: {"tasksPerSecond": 20}}, wait_ms=5_000) as (_, a, _b):
        accepted = await asyncio.gather(
            *(a.assign_task("work", {}, wait_for_agent=True) for _ in range(30))
        )
        assert len({t.id for t in accepted}) == 30  # the last ten waited, none refused
