"""Circuit breakers per agent, on a real coordinator with real SDK agents: an agent whose
results mostly fail goes to status ``error`` and out of routing (the healthy one takes the
work), then after its cool-down a probe closes the breaker again; each change is an
``agent.breaker`` event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent_sdk import Agent, Client, Event, Task, TaskError
from coordinator.mesh import breakers
from coordinator.server import Coordinator
from tests.conftest import (
    eventually,
    running,
    serving_coordinator,
)


@pytest.fixture
async def coordinator() -> AsyncIterator[Coordinator]:
    async with serving_coordinator(agent_breaker_window=4, agent_breaker_cooldown_ms=300) as c:
        yield c


async def test_a_failing_agent_is_taken_out_of_routing_then_probed_back(
    coordinator: Coordinator,
) -> None:
    broken = {"yes": True}
    bad = Agent("flaky", coordinator.address, max_concurrency=1)
    good = Agent("steady", coordinator.address, max_concurrency=1)

    async def flaky(task: Task) -> dict[str, Any]:
        if broken["yes"]:
            raise TaskError("disk full", type="DiskFull", retryable=True)
        return {"by": "flaky"}

    async def steady(task: Task) -> dict[str, Any]:
        return {"by": "steady"}

    bad.add_capability("work", flaky)
    good.add_capability("work", steady)
    changes: list[Event] = []

    def states() -> list[tuple[str, str]]:
        return [(e.data["from"], e.data["to"]) for e in changes]

    async with Client(coordinator.address, timeout=10) as client:
        refusing = Agent("picky", coordinator.address, max_concurrency=1)

        async def picky(task: Task) -> dict[str, Any]:
            raise TaskError("bad input")  # the task's fault: not the agent's health

        refusing.add_capability("picky", picky)
        async with running(refusing):
            for _ in range(4):
                t = await client.assign_task("picky", {}, max_retries=0)
                assert (await client.wait_task(t.id, 10)).status == "failed"
            [still] = await client.list_agents()
            assert still.status == "online"
        sub = await client.subscribe_to_events(types=["agent.breaker"], callback=changes.append)
        async with running(bad):
            # alone, it fails its tasks until its breaker opens (2 of a window of 4)
            for _ in range(2):
                t = await client.assign_task("work", {}, max_retries=0)
                assert (await client.wait_task(t.id, 10)).status == "failed"
            statuses = {a.name: a.status for a in await client.list_agents()}
            assert statuses["flaky"] == "error"
            await eventually(lambda: states() == [("closed", "open")])
            assert changes[0].agent_id == bad.agent_id
            broken["yes"] = False  # repaired: the probe after the cool-down will pass
            async with running(good):
                # while it is open, the healthy agent takes the work
                t = await client.assign_task("work", {}, max_retries=0)
                if states() == [("closed", "open")]:
                    assert (await client.wait_task(t.id, 10)).result == {"by": "steady"}
                await eventually(lambda: ("open", "half-open") in states())

                async def probed() -> bool:
                    t = await client.assign_task("work", {}, agent_id=bad.agent_id)
                    return bool((await client.wait_task(t.id, 10)).result == {"by": "flaky"})

                await eventually(probed)
                await eventually(lambda: states()[-1] == ("half-open", "closed"))
                statuses = {a.name: a.status for a in await client.list_agents()}
                assert statuses["flaky"] in ("online", "busy")
        await sub.close()


def test_breaker_states() -> None:
    policy = breakers.BreakerPolicy(window=4, failure_rate=0.5, cooldown_s=10)

    class A:
        breaker = "closed"
        breaker_until = 0.0
        outcomes: list[bool] = []

    a: Any = A()
    a.outcomes = []
    assert breakers.record(a, False, 0.0, policy) == ""  # one result: not enough to judge
    assert breakers.record(a, True, 1.0, policy) == "open"  # 1 of 2 failed: half
    assert a.breaker_until == 11.0 and not breakers.cooled(a, 10.0)
    assert breakers.cooled(a, 11.0) and a.breaker == "half-open"
    assert breakers.record(a, False, 12.0, policy) == "open"  # the probe failed
    assert breakers.cooled(a, 22.0)
    assert breakers.record(a, True, 23.0, policy) == "closed" and a.outcomes == []
    for ok in (True, True, True, False):
        assert breakers.record(a, ok, 24.0, policy) == ""  # 1 of 4: stays closed
    off = breakers.BreakerPolicy(window=0)
    assert breakers.record(a, False, 25.0, off) == "" and a.breaker == "closed"


async def test_while_a_capability_is_open_a_steps_fallback_runs(
    coordinator: Coordinator,
) -> None:
    bad = Agent("flaky", coordinator.address, max_concurrency=1)
    backup = Agent("backup", coordinator.address, max_concurrency=1)

    async def flaky(task: Task) -> dict[str, Any]:
        raise TaskError("disk full", type="DiskFull", retryable=True)

    async def spare(task: Task) -> dict[str, Any]:
        return {"by": "backup", "got": task.input}

    bad.add_capability("work", flaky)
    backup.add_capability("spare", spare)
    step = {
        "id": "do",
        "type": "task",
        "capability": "work",
        "input": {"n": "$.input.n"},
        "output": {"by": "$.output.by", "got": "$.output.got"},
    }
    by_capability = {"name": "job", "steps": [{**step, "fallback": {"capability": "spare"}}]}
    by_workflow = {"name": "job2", "steps": [{**step, "fallback": {"workflow": "manual"}}]}
    manual = {"name": "manual", "steps": [{"id": "w", "type": "wait", "wait": {"durationMs": 1}}]}
    changes: list[Event] = []
    async with Client(coordinator.address, timeout=10) as client, running(bad), running(backup):
        sub = await client.subscribe_to_events(
            types=["capability.breaker"], callback=changes.append
        )
        for name, flow in (("job", by_capability), ("job2", by_workflow), ("manual", manual)):
            await client.define_workflow(name, flow)
        for _ in range(2):  # trip the only 'work' agent's breaker
            t = await client.assign_task("work", {}, max_retries=0)
            await client.wait_task(t.id, 10)
        await eventually(
            lambda: (
                [e.data for e in changes][-1:]
                == [{"capability": "work", "from": "closed", "to": "open"}]
            )
        )
        done = await client.wait_execution((await client.start_workflow("job", {"n": 7})).id, 10)
        assert done.status == "completed" and done.variables == {"by": "backup", "got": {"n": 7}}
        history = await client.get_execution_history(done.id)
        [fell] = [e for e in history if e.type == "step.fallback"]
        assert "capability 'work' is unavailable: capability spare" in fell.message
        done = await client.wait_execution((await client.start_workflow("job2", {"n": 1})).id, 10)
        assert done.status == "completed", done.error
        children = [e for e in await client.list_executions() if e.workflow_name == "manual"]
        assert len(children) == 1
        await sub.close()
