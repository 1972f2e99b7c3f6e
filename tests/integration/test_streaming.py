"""Handshake, routing, flow control and results over real streams."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_sdk import Agent, Client, RetryableTaskError, Task, TaskError, TaskRequest
from coordinator.server import Coordinator
from tests.conftest import eventually, running


def make_agent(coordinator: Coordinator, name: str, **kw: Any) -> Agent:
    return Agent(name, coordinator.address, reconnect_max=0.5, **kw)


async def test_handshake_registers_agent_with_capabilities(
    coordinator: Coordinator, client: Client
) -> None:
    agent = make_agent(coordinator, "planner", max_concurrency=3, labels={"zone": "a"})
    agent.add_capability("task_planning", lambda t: {}, description="plans")
    agent.add_capability("project_analysis", lambda t: {})
    async with running(agent):
        assert agent.agent_id.startswith("planner-")
        agents = await client.list_agents()
        assert [a.id for a in agents] == [agent.agent_id]
        info = agents[0]
        assert info.status == "online"
        assert sorted(info.capabilities) == ["project_analysis", "task_planning"]
        assert info.max_concurrency == 3
        assert info.labels == {"zone": "a"}
        assert info.transport == "stream"
        caps = await client.get_agent_capabilities(agent.agent_id)
        assert sorted(caps) == ["project_analysis", "task_planning"]
        found = await client.find_agents_by_capability("task_planning")
        assert [a.id for a in found] == [agent.agent_id]
        assert await client.find_agents_by_capability("nothing") == []


async def test_task_round_trip_with_progress_and_output(
    client: Client, coordinator: Coordinator
) -> None:
    agent = make_agent(coordinator, "worker")
    seen: list[Task] = []

    @agent.capability("double")
    async def double(task: Task) -> dict[str, Any]:
        seen.append(task)
        await task.progress(0.5, "halfway")
        return {"value": task.input["value"] * 2, "nested": {"ok": True, "list": [1, "a", None]}}

    async with running(agent):
        t = await client.assign_task("double", {"value": 21}, idempotency_key="k-1")
        assert t.agent_id == agent.agent_id
        done = await client.wait_task(t.id, timeout=10)
        assert done.status == "completed"
        assert done.result == {"value": 42, "nested": {"ok": True, "list": [1, "a", None]}}
        assert done.attempt == 1 and done.retry_count == 0
        assert done.progress == 0.5 and done.progress_message == "halfway"
        assert done.start_time is not None and done.end_time is not None
        assert seen[0].idempotency_key == "k-1" and seen[0].deadline is not None
        again = await client.assign_task("double", {"value": 1}, idempotency_key="k-1")
        assert again.id == t.id, "same idempotency key must return the first task"
        info = await client.get_agent(agent.agent_id)
        assert info.tasks_completed == 1 and info.success_rate == 1.0


async def test_sync_handler_and_structured_failures(
    client: Client, coordinator: Coordinator
) -> None:
    agent = make_agent(coordinator, "w", max_concurrency=2)

    @agent.capability("sync")
    def sync(task: Task) -> list[int]:
        return [task.input["n"], task.attempt]

    @agent.capability("bad")
    def bad(task: Task) -> None:
        raise TaskError("input rejected", type="BadInput", details={"field": "x"})

    @agent.capability("crash")
    async def crash(task: Task) -> None:
        raise KeyError("missing")

    @agent.capability("unserializable")
    async def unserializable(task: Task) -> object:
        return {"s": {1, 2}}

    async with running(agent):
        ok = await client.wait_task((await client.assign_task("sync", {"n": 7})).id, 10)
        assert ok.result == [7, 1]
        b = await client.wait_task((await client.assign_task("bad", {})).id, 10)
        assert b.status == "failed" and b.error is not None
        assert (b.error.type, b.error.message, b.error.details) == (
            "BadInput",
            "input rejected",
            {"field": "x"},
        )
        assert b.retry_count == 0, "non-retryable errors are not retried"
        c = await client.wait_task((await client.assign_task("crash", {})).id, 10)
        assert c.error is not None and c.error.type == "KeyError" and "missing" in c.error.stack
        u = await client.wait_task((await client.assign_task("unserializable", {})).id, 10)
        assert u.error is not None and u.error.type == "OutputNotSerializable"
        # the agent survived all of that
        assert (await client.get_agent(agent.agent_id)).status == "online"


async def test_retryable_failure_is_retried_with_new_attempts(
    client: Client, coordinator: Coordinator
) -> None:
    agent = make_agent(coordinator, "w")
    attempts: list[int] = []

    @agent.capability("flaky")
    async def flaky(task: Task) -> int:
        attempts.append(task.attempt)
        if task.attempt < 3:
            raise RetryableTaskError("not yet")
        return task.attempt

    async with running(agent):
        t = await client.wait_task((await client.assign_task("flaky", {}, max_retries=5)).id, 10)
        assert t.status == "completed" and t.result == 3
        assert attempts == [1, 2, 3] and t.retry_count == 2
        # exhausting retries fails with the last error
        attempts.clear()
        t = await client.wait_task((await client.assign_task("flaky", {}, max_retries=1)).id, 10)
        assert t.status == "failed" and t.error is not None and t.error.type == "RetryableTaskError"
        assert attempts == [1, 2]


async def test_routing_prefers_least_loaded_agent(client: Client, coordinator: Coordinator) -> None:
    release = asyncio.Event()
    agents = [make_agent(coordinator, f"a{i}", max_concurrency=2) for i in range(3)]
    for a in agents:

        @a.capability("hold")
        async def hold(task: Task) -> None:
            await release.wait()

    async with running(agents[0]), running(agents[1]), running(agents[2]):
        tasks = [await client.assign_task("hold", {}) for _ in range(6)]
        by_agent: dict[str, int] = {}
        for t in tasks:
            by_agent[t.agent_id] = by_agent.get(t.agent_id, 0) + 1
        # least-loaded routing spreads 6 tasks as 2/2/2 over three agents of 2 credits
        assert sorted(by_agent.values()) == [2, 2, 2]
        # all busy: the next task queues instead of overloading anyone
        queued = await client.assign_task("hold", {})
        assert queued.status == "pending" and queued.agent_id == ""
        infos = await client.list_agents()
        assert {i.status for i in infos} == {"busy"}
        assert all(i.load_factor == 1.0 for i in infos)
        release.set()
        done = await client.wait_task(queued.id, 10)
        assert done.status == "completed"


async def test_flow_control_never_exceeds_max_concurrency(
    client: Client, coordinator: Coordinator
) -> None:
    agent = make_agent(coordinator, "narrow", max_concurrency=2)
    running_now = 0
    peak = 0

    @agent.capability("work")
    async def work(task: Task) -> int:
        nonlocal running_now, peak
        running_now += 1
        peak = max(peak, running_now)
        await asyncio.sleep(0.02)
        running_now -= 1
        return int(task.input["i"])

    async with running(agent):
        subs = await client.bulk_assign_tasks([TaskRequest("work", {"i": i}) for i in range(30)])
        assert len(subs) == 30
        assert sum(1 for s in subs if s.status == "assigned") == 2
        results = [await client.wait_task(s.id, 20) for s in subs]
        assert [r.result for r in results] == list(range(30))
        assert peak == 2
        assert agent.stats.peak_in_flight == 2, "the agent was handed more than its credits"


async def test_priority_orders_the_queue(client: Client, coordinator: Coordinator) -> None:
    agent = make_agent(coordinator, "serial", max_concurrency=1)
    order: list[str] = []
    gate = asyncio.Event()

    @agent.capability("job")
    async def job(task: Task) -> None:
        if task.input["name"] == "first":
            await gate.wait()
        order.append(task.input["name"])

    async with running(agent):
        first = await client.assign_task("job", {"name": "first"})
        low = await client.assign_task("job", {"name": "low"}, priority=0)
        high = await client.assign_task("job", {"name": "high"}, priority=5)
        gate.set()
        for t in (first, low, high):
            await client.wait_task(t.id, 10)
        assert order == ["first", "high", "low"]


async def test_task_timeout_cancels_on_agent_and_retries(
    coordinator: Coordinator, client: Client
) -> None:
    agent = make_agent(coordinator, "slow")
    cancelled: list[int] = []

    @agent.capability("slow")
    async def slow(task: Task) -> str:
        if task.attempt == 1:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(task.attempt)
                raise
        return "second attempt"

    async with running(agent):
        t = await client.assign_task("slow", {}, timeout_ms=300, max_retries=2)
        done = await client.wait_task(t.id, 10)
        assert done.status == "completed" and done.result == "second attempt"
        assert done.attempt == 2
        await eventually(lambda: cancelled == [1])


async def test_cancel_task_reaches_handler(client: Client, coordinator: Coordinator) -> None:
    agent = make_agent(coordinator, "c")
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @agent.capability("forever")
    async def forever(task: Task) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with running(agent):
        t = await client.assign_task("forever", {})
        await asyncio.wait_for(started.wait(), 5)
        c = await client.cancel_task(t.id, "operator said so")
        assert c.status == "cancelled" and c.error is not None
        assert c.error.message == "operator said so"
        await asyncio.wait_for(cancelled.wait(), 5)
        # the slot comes back: a new task runs on the single-credit agent
        await eventually(lambda: agent.stats.in_flight == 0)


async def test_duplicate_results_are_recorded_once(
    client: Client, coordinator: Coordinator
) -> None:
    agent = make_agent(coordinator, "d")

    @agent.capability("quick")
    async def quick(task: Task) -> str:
        return "from agent"

    async with running(agent):
        t = await client.wait_task((await client.assign_task("quick", {})).id, 10)
        assert t.result == "from agent"
        assert await client.complete_task(t.id, "late duplicate") is False
        assert await client.fail_task(t.id, "late failure") is False
        again = await client.get_task_status(t.id)
        assert again.status == "completed" and again.result == "from agent"
        assert coordinator.mesh is not None
        assert coordinator.mesh.counters.duplicate_results == 2
        assert coordinator.mesh.counters.completed == 1


async def test_polling_agent_over_unary_api(client: Client, coordinator: Coordinator) -> None:
    agent_id = await client.register_agent("poller", ["lookup"], max_concurrency=2)
    assert (await client.get_agent(agent_id)).transport == "poll"
    t = await client.assign_task("lookup", {"q": "x"})
    assert t.agent_id == agent_id
    polled = await client.poll_tasks(agent_id, max_tasks=5, wait=2)
    assert [p.id for p in polled] == [t.id]
    assert await client.complete_task(t.id, {"answer": 42}) is True
    done = await client.get_task_status(t.id)
    assert done.status == "completed" and done.result == {"answer": 42}
    assert await client.heartbeat(agent_id) == "online"
    # unregistering re-dispatches what it held
    t2 = await client.assign_task("lookup", {}, wait_for_agent=True)
    assert await client.unregister_agent(agent_id) == 1
    assert (await client.get_task_status(t2.id)).status == "pending"


@pytest.mark.parametrize("count", [200])
async def test_many_tasks_many_agents_all_complete_once(
    client: Client, coordinator: Coordinator, count: int
) -> None:
    agents = [make_agent(coordinator, f"m{i}", max_concurrency=4) for i in range(4)]
    executed: list[str] = []
    for a in agents:

        @a.capability("count")
        async def count_it(task: Task) -> int:
            executed.append(task.id)
            return int(task.input["i"])

    async with running(agents[0]), running(agents[1]), running(agents[2]), running(agents[3]):
        subs = await client.bulk_assign_tasks(
            [TaskRequest("count", {"i": i}) for i in range(count)]
        )
        done = [await client.wait_task(s.id, 30) for s in subs]
        assert [d.result for d in done] == list(range(count))
        assert len(executed) == count == len(set(executed))
        per_agent = [a.stats.completed for a in agents]
        assert sum(per_agent) == count and min(per_agent) > 0
