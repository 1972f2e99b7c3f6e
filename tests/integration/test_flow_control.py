"""Flow control of workflow steps on a real coordinator and a real SDK agent: a
concurrency key is never exceeded under 200 concurrent executions (and every execution
finishes: queued, never dropped), and a step's rate limit holds within 10 % over 5 s; the
history says why a task waits."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agent_sdk import Agent, Client, Task
from coordinator.server import Coordinator
from tests.conftest import (
    eventually,
    fast_settings,
    running,
    serving_coordinator,
)

REPOS = ("api", "web", "cli", "docs")


def deploy_flow(**gate: Any) -> dict[str, Any]:
    step = {
        "id": "deploy",
        "type": "task",
        "capability": "deploy",
        "input": {"repo": "$.input.repo"},
    }
    return {"name": "deploy", "steps": [{**step, **gate}]}


@pytest.fixture
async def coordinator() -> AsyncIterator[Coordinator]:
    """200 executions may run at once: the step's gate, not the engine, holds them."""
    async with serving_coordinator(concurrency_limit=256) as c:
        yield c


async def test_a_concurrency_key_holds_under_200_concurrent_executions(
    coordinator: Coordinator,
) -> None:
    running_now: dict[str, int] = defaultdict(int)
    highest: dict[str, int] = defaultdict(int)
    done: list[str] = []
    release = asyncio.Event()  # held until the gates are seen full
    agent = Agent("deployer", coordinator.address, max_concurrency=64)

    async def deploy(task: Task) -> dict[str, Any]:
        repo = task.input["repo"]
        running_now[repo] += 1
        highest[repo] = max(highest[repo], running_now[repo])
        await release.wait()
        await asyncio.sleep(0.001)
        running_now[repo] -= 1
        done.append(repo)
        return {"repo": repo}

    agent.add_capability("deploy", deploy)
    flow = deploy_flow(concurrency={"key": "$.input.repo", "limit": 2})
    runtime = coordinator.runtime
    assert runtime is not None
    async with running(agent), Client(coordinator.address, timeout=30) as client:
        await client.define_workflow("deploy", flow)
        started = await asyncio.gather(
            *(client.start_workflow("deploy", {"repo": REPOS[i % 4]}) for i in range(200))
        )
        # every repo at its limit, everything else queued (not refused, not dispatched)
        await eventually(lambda: runtime.effects.gates.queued == 192 and len(running_now) == 4)
        await eventually(lambda: all(n == 2 for n in running_now.values()))

        async def says_why() -> bool:
            status = await client.get_execution_status(started[-1].id)
            return any("concurrency limit 2" in s.waiting for s in status.current_steps)

        await eventually(says_why)
        assert coordinator.http is not None
        async with httpx.AsyncClient() as http:
            scraped = (await http.get(f"{coordinator.http.url}/metrics")).text
        assert "agentmesh_gated_tasks 192.0" in scraped  # visible in the queue metrics
        release.set()
        finished = await asyncio.gather(*(client.wait_execution(e.id, 60) for e in started))
    assert {e.status for e in finished} == {"completed"} and len(done) == 200
    assert dict(highest) == dict.fromkeys(REPOS, 2)  # reached, and never exceeded


async def test_a_rate_limit_holds_within_ten_percent_over_five_seconds(
    coordinator: Coordinator,
) -> None:
    starts: list[float] = []
    agent = Agent("deployer", coordinator.address, max_concurrency=64)

    async def deploy(task: Task) -> dict[str, Any]:
        starts.append(time.monotonic())
        return {}

    agent.add_capability("deploy", deploy)
    flow = deploy_flow(rateLimit={"key": "all", "perSecond": 20, "burst": 1})
    async with running(agent), Client(coordinator.address, timeout=30) as client:
        await client.define_workflow("deploy", flow)
        started = await asyncio.gather(
            *(client.start_workflow("deploy", {"repo": "api"}) for _ in range(101))
        )
        finished = await asyncio.gather(*(client.wait_execution(e.id, 60) for e in started))
    assert {e.status for e in finished} == {"completed"}
    span = max(starts) - min(starts)
    rate = (len(starts) - 1) / span  # 100 intervals after the first start
    # Held: never more than 10 % over (a loaded machine may run it slower, not faster).
    assert 14 <= rate <= 22, f"{rate:.2f}/s over {span:.2f} s"
    busiest = max(sum(1 for t in starts if s <= t < s + 1.0) for s in starts)
    assert busiest <= 21, f"{busiest} starts within one second"  # 20/s and the burst of 1


async def test_a_capability_limit_from_the_settings_holds_every_step() -> None:
    c = Coordinator(
        fast_settings(concurrency_limit=64, capability_limits={"deploy": {"concurrency": 1}})
    )
    await c.start()
    running_now, highest = [0], [0]
    release = asyncio.Event()
    agent = Agent("deployer", c.address, max_concurrency=16)

    async def deploy(task: Task) -> dict[str, Any]:
        running_now[0] += 1
        highest[0] = max(highest[0], running_now[0])
        await release.wait()
        running_now[0] -= 1
        return {}

    agent.add_capability("deploy", deploy)
    runtime = c.runtime
    assert runtime is not None
    try:
        async with running(agent), Client(c.address, timeout=30) as client:
            await client.define_workflow("deploy", deploy_flow())  # no limit of its own
            started = [await client.start_workflow("deploy", {"repo": r}) for r in REPOS * 5]
            await eventually(lambda: runtime.effects.gates.queued == 19 and running_now[0] == 1)
            release.set()
            finished = await asyncio.gather(*(client.wait_execution(e.id, 60) for e in started))
        assert {e.status for e in finished} == {"completed"} and highest == [1]
    finally:
        await c.stop(grace=1.0)
