from __future__ import annotations

import asyncio

import pytest

from agent_sdk import Agent, Task, TaskError
from agent_sdk.testing import run_task
from agentmesh.agents.examples import math_agent, text_agent
from agentmesh.v1 import agent_pb2


async def test_run_task_reports_output_progress_and_errors() -> None:
    agent = Agent("unit", "unused:1")

    @agent.capability("ok")
    async def ok(task: Task) -> dict[str, object]:
        await task.progress(0.5, "half")
        return {"n": task.input["n"] + 1}

    @agent.capability("bad")
    def bad(task: Task) -> None:
        raise TaskError("nope", type="BadInput", details={"field": "n"})

    out = await run_task(agent, "ok", {"n": 1})
    assert out.ok and out.output == {"n": 2} and out.progress == [(0.5, "half")]
    err = await run_task(agent, "bad", {})
    assert err.error is not None and (err.error.type, err.error.details) == (
        "BadInput",
        {"field": "n"},
    )
    missing = await run_task(agent, "absent", {})
    assert missing.error is not None and missing.error.type == "UnknownCapability"


async def test_example_agents_do_real_work_and_reject_bad_input() -> None:
    primes = await run_task(math_agent("unused:1"), "primes", {"limit": 100})
    assert primes.output == {"limit": 100, "primes": 25}
    bad = await run_task(math_agent("unused:1"), "primes", {"limit": "many"})
    assert bad.error is not None and bad.error.type == "BadInput"
    words = await run_task(text_agent("unused:1"), "word_count", {"text": "a b a\nc"})
    assert words.output == {"words": 4, "lines": 2, "top": [["a", 2], ["b", 1], ["c", 1]]}


async def test_cancelling_run_task_cancels_the_handler_and_raises() -> None:
    agent = Agent("unit", "unused:1")
    started, stopped = asyncio.Event(), asyncio.Event()

    @agent.capability("slow")
    async def slow(task: Task) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            stopped.set()

    running = asyncio.create_task(run_task(agent, "slow"))
    await asyncio.wait_for(started.wait(), 5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert stopped.is_set() and agent.stats.cancelled == 1


async def test_progress_from_a_thread_that_outlived_its_loop_is_dropped() -> None:
    agent = Agent("unit", "unused:1")
    outbox = agent._outbox
    loop = asyncio.new_event_loop()
    outbox.open(loop)
    loop.close()
    dispatch = agent_pb2.TaskDispatch(task_id="t", attempt=1, capability="x")
    Task(outbox, dispatch).progress(0.5, "late")  # no RuntimeError: nobody would send it
    assert outbox.take_updates() == []
