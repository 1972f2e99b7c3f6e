"""Helpers for agent authors' own unit tests: run a handler without a coordinator.

    from agent_sdk.testing import run_task

    result = await run_task(agent, "task_planning", {"goal": "x"})
    assert result.output == {...}

``run_task`` goes through the same code path the agent uses for a real task
(handler lookup, sync handlers in the agent's thread pool, output
serialization, error mapping), and returns what the coordinator would record.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from agent_sdk._agent import Agent
from agent_sdk._types import TaskFailure
from agentmesh import wire
from agentmesh.v1 import agent_pb2

__all__ = ["TaskOutcome", "run_task"]


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What ``run_task`` saw: the handler's ``output``, or the ``error`` the
    coordinator would record, every ``progress`` report (fraction, message) and the
    chunks it streamed (``task.stream``), in order."""

    output: Any = None
    error: TaskFailure | None = None
    progress: list[tuple[float, str]] = field(default_factory=list)
    streamed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the task succeeded (no ``error``)."""
        return self.error is None


async def run_task(
    agent: Agent, capability: str, input: dict[str, Any] | None = None, *, attempt: int = 1
) -> TaskOutcome:
    """Run ``agent``'s handler for ``capability`` on ``input`` and report the outcome.

    A handler's failure is in the outcome, never raised (an unknown capability is an
    ``UnknownCapability`` error).  Cancelling it cancels the handler (a sync handler's
    thread runs on to its end) and raises CancelledError."""
    task_id = uuid.uuid4().hex
    dispatch = agent_pb2.TaskDispatch(
        task_id=task_id,
        attempt=attempt,
        capability=capability,
        input=wire.to_struct(input or {}),
        idempotency_key=task_id,
    )
    await agent._runner.run_detached(dispatch)  # records a cancellation as a result
    updates = agent._outbox.take_updates()
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        raise asyncio.CancelledError
    progress = [
        (u.progress.fraction, u.progress.message) for u in updates if u.HasField("progress")
    ]
    streamed = [u.output.chunk for u in updates if u.HasField("output")]
    results = [u.result for u in updates if u.HasField("result")]
    assert len(results) == 1, "a task produces exactly one result"
    r = results[0]
    if r.HasField("error"):
        return TaskOutcome(
            error=TaskFailure.from_proto(r.error), progress=progress, streamed=streamed
        )
    return TaskOutcome(output=wire.from_value(r.output), progress=progress, streamed=streamed)
