from __future__ import annotations

from agent_sdk import Agent, Task, TaskError
from agent_sdk.testing import run_task
from agentmesh.agents.examples import math_agent, text_agent


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
