"""Following an execution: one line per step change, as ``run --follow`` and the demo
show it (step, agent, duration, note), fed from the execution's history."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from agent_sdk import Client, Execution, ExecutionEvent, UnavailableError

# Event types that announce a step is stuck on something outside it, and that it is not.
WAITING = "task.waiting"
UNBLOCKED = "task.unblocked"


@dataclass
class StepRow:
    step_id: str
    started: datetime | None = None
    ended: datetime | None = None
    status: str = "running"
    attempts: int = 1
    note: str = ""

    @property
    def seconds(self) -> float:
        if self.started is None or self.ended is None:
            return 0.0
        return (self.ended - self.started).total_seconds()


class Progress:
    """Turns the history into one line per step change (a progress display, not a log)."""

    MARK = {
        "running": "..",
        "completed": "ok",
        "failed": "!!",
        "skipped": "--",
        "retrying": "~~",
        "waiting": "??",
    }

    def __init__(self) -> None:
        self.rows: dict[str, StepRow] = {}
        self.order: list[str] = []
        self.agents: dict[str, str] = {}

    def feed(self, e: ExecutionEvent) -> str | None:
        sid = e.step_id
        if e.type == "step.started":
            row = self.rows.get(sid)
            if row is None:
                row = self.rows[sid] = StepRow(sid, e.time)
                self.order.append(sid)
            else:
                row.attempts = max(row.attempts, int((e.data or {}).get("attempt", 1)))
                row.status = "running"
            return None
        row = self.rows.get(sid)
        if row is None:
            return None
        if e.type in ("task.completed", "task.failed"):
            agent = str((e.data or {}).get("agent", ""))
            self.agents[sid] = agent.rsplit("-", 1)[0] if agent else ""
            return None
        if e.type in ("step.completed", "step.failed", "step.skipped"):
            row.status = e.type.split(".")[1]
            row.ended = e.time
            row.note = e.message or row.note
        elif e.type == "step.retrying":
            row.status = "retrying"
            row.attempts += 1
            row.note = e.message
        elif e.type == WAITING:
            row.status = "waiting"
            return self._line(row, f"waiting: {e.message}")
        elif e.type == UNBLOCKED:
            row.status = "running"
            return self._line(row, f"resumed: {e.message}")
        elif e.type == "decision.taken":
            row.note = e.message
            return None
        else:
            return None
        return self._line(row, row.note)

    def _line(self, row: StepRow, note: str) -> str:
        who = self.agents.get(row.step_id, "")
        timing = f"{row.seconds:6.2f}s" if row.ended else "       "
        tail = f"  {note}" if note else ""
        return f"  [{self.MARK[row.status]}] {row.step_id:<24} {who:<9} {timing}{tail}"


async def follow(
    client: Client,
    execution_id: str,
    progress: Progress,
    say: Callable[[str], None],
    on_event: Callable[[ExecutionEvent], Awaitable[None]] | None = None,
) -> Execution:
    """Show ``progress`` lines until the execution finishes; returns it. Rides out a
    failover (UNAVAILABLE while a new leader takes over) by asking again."""
    after = 0

    async def drain() -> None:
        nonlocal after
        for e in await client.get_execution_history(execution_id, after):
            after = e.sequence
            line = progress.feed(e)
            if line:
                say(line)
            if on_event is not None:
                await on_event(e)

    while True:
        try:
            await drain()
            done = await client.wait_execution(execution_id, timeout=0.1)
            if done.finished:
                await drain()
                return done
        except UnavailableError:  # a failover in progress (cluster mode): ask again
            await asyncio.sleep(0.2)
