"""Definitions built to hurt, sent to a real coordinator while an agent is connected:
each gets a precise INVALID_ARGUMENT (never INTERNAL, never a metadata overflow), and
none stalls the event loop long enough to cost the agent its session."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_sdk import Agent, Client, InvalidArgumentError, Task
from coordinator.engine.limits import MAX_STEPS
from coordinator.server import Coordinator
from tests.conftest import fast_settings, running


def task(id: str, **fields: Any) -> dict[str, Any]:
    return {"id": id, "type": "task", "capability": "work", **fields}


def flow(steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": "hostile", "steps": steps, **extra}


HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    (
        "2000 steps naming unknown steps",
        flow([task(f"s{i}", next=f"missing_{i}") for i in range(2 * MAX_STEPS)]),
        f"more than {MAX_STEPS} steps",
    ),
    (
        "a chain at the step limit whose every next is unknown",
        flow([task(f"s{i}", next=f"nope_{i}") for i in range(MAX_STEPS)]),
        "more issues",
    ),
    (
        "a loop without exit at the step limit",
        flow([task(f"s{i}", next=f"s{(i + 1) % MAX_STEPS}") for i in range(MAX_STEPS)]),
        "loop with no exit",
    ),
    (
        "200 steps with 4 KB expressions",
        flow(
            [task(f"s{i}", input={"x": "$.input.a || " + "1 + " * 1000 + "1"}) for i in range(200)]
        ),
        "expression",
    ),
    ("minLength given as text", flow([task("a")], input={"minLength": "3"}), "minLength"),
    ("maximum given as text", flow([task("a")], input={"maximum": "3"}), "maximum"),
    ("a recursive $ref", flow([task("a")], input={"$ref": "#"}), "$ref"),
    ("a type that is a number", flow([task("a")], input={"type": 5}), "type"),
    (
        "a wait of 1e308 seconds",
        flow([{"id": "w", "type": "wait", "wait": {"seconds": 1e308}}]),
        "wait",
    ),
    (
        "a backtracking pattern RE2 cannot run",
        flow([task("a")], input={"properties": {"x": {"pattern": "(a)\\1"}}}),
        "pattern",
    ),
]


@pytest.mark.timeout(120)
async def test_hostile_definitions_are_refused_precisely_and_cheaply() -> None:
    # A short heartbeat timeout: a loop stalled for ~1.5 s would drop the agent.
    c = Coordinator(fast_settings(heartbeat_interval_ms=100, heartbeat_timeout_ms=1500))
    await c.start()
    agent = Agent("worker", c.address)

    @agent.capability("work")
    async def work(task: Task) -> Any:
        return task.input

    try:
        async with running(agent), Client(c.address, timeout=60) as client:
            for what, definition, expected in HOSTILE:
                with pytest.raises(InvalidArgumentError) as refused:
                    await client.define_workflow("hostile", definition)
                message = refused.value.message
                assert expected in message, (what, message[:300])
                assert len(message.encode()) <= 4096 * 3, what  # fits in the status metadata
                result = await client.validate_workflow(definition)
                assert not result.valid and result.issue_count >= len(result.issues), what
                assert len(result.issues) <= 100, what
            # all of them at once, too
            await asyncio.gather(
                *(client.validate_workflow(d) for _, d, _ in HOSTILE), return_exceptions=True
            )
            assert agent.stats.sessions == 1  # never dropped: the loop kept answering
            t = await client.assign_task("work", {"still": "served"})
            assert (await client.wait_task(t.id, timeout=10)).result == {"still": "served"}
    finally:
        await c.stop(grace=1)


async def test_a_long_issue_list_reaches_the_caller() -> None:
    """Once, 1 000 issues overflowed the status metadata (RESOURCE_EXHAUSTED) and the
    caller saw none of them: now the message is bounded and counts the rest, and
    ValidateWorkflow returns the first issues with the total."""
    c = Coordinator(fast_settings())
    await c.start()
    try:
        async with Client(c.address, timeout=60) as client:
            bad = flow([task(f"s{i}", next=f"nowhere_{i}") for i in range(MAX_STEPS)])
            with pytest.raises(InvalidArgumentError, match=r"\.\.\. and \d+ more issues"):
                await client.define_workflow("hostile", bad)
            result = await client.validate_workflow(bad)
            assert result.issue_count >= MAX_STEPS and len(result.issues) == 100
            assert result.issues[0].location == "steps[0].next"
    finally:
        await c.stop(grace=1)
