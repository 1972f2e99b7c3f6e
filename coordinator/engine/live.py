"""An execution as the runtime holds it while it is not finished: ``Live`` (the core's
``Execution``, its index record, where its history stands, who waits on it) and its
``Outstanding`` effects, which recovery re-establishes after a restart."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime

from coordinator.engine import events as ev
from coordinator.engine.core import Execution
from coordinator.secrets import Secrets
from coordinator.store import ExecutionRecord

ACTIVE = ("queued", "running", "paused")


@dataclass(slots=True)
class Outstanding:
    """Effects an execution started and has not seen the end of."""

    tasks: dict[str, ev.DispatchTask] = field(default_factory=dict)
    calls: dict[str, ev.CallService] = field(default_factory=dict)
    timers: dict[str, ev.StartTimer] = field(default_factory=dict)
    waits: dict[str, ev.AwaitEvent] = field(default_factory=dict)
    children: dict[str, ev.StartChild] = field(default_factory=dict)

    def note(self, event: ev.Input | None, commands: list[ev.Command]) -> None:
        """Update what is outstanding after ``event`` was applied and produced ``commands``."""
        if isinstance(event, ev.TaskCompleted | ev.TaskFailed):
            self.tasks.pop(event.key, None)
            self.calls.pop(event.key, None)
        elif isinstance(event, ev.TimerFired):
            self.timers.pop(event.key, None)
        elif isinstance(event, ev.EventReceived):
            self.waits.pop(event.key, None)
        elif isinstance(event, ev.ChildFinished):
            self.children.pop(event.key, None)
        for c in commands:
            if isinstance(c, ev.DispatchTask):
                self.tasks[c.key] = c
            elif isinstance(c, ev.CancelTask):
                self.tasks.pop(c.key, None)
            elif isinstance(c, ev.CallService):
                self.calls[c.key] = c
            elif isinstance(c, ev.CancelServiceCall):
                self.calls.pop(c.key, None)
            elif isinstance(c, ev.StartTimer):
                self.timers[c.key] = c
            elif isinstance(c, ev.CancelTimer):
                self.timers.pop(c.key, None)
            elif isinstance(c, ev.AwaitEvent):
                self.waits[c.key] = c
            elif isinstance(c, ev.CancelEventWait):
                self.waits.pop(c.key, None)
            elif isinstance(c, ev.StartChild):
                self.children[c.key] = c
            elif isinstance(c, ev.CancelChild):
                self.children.pop(c.key, None)
            elif isinstance(c, ev.Finished):
                self.tasks.clear()
                self.calls.clear()
                self.timers.clear()
                self.waits.clear()
                self.children.clear()


@dataclass(slots=True)
class Live:
    """An unfinished execution as the runtime holds it: the core's ``Execution``, its index
    record, the last seq of its history, its outstanding effects, its parent and waiters."""

    ex: Execution
    record: ExecutionRecord
    seq: int = 0
    outstanding: Outstanding = field(default_factory=Outstanding)
    parent: tuple[str, str] | None = None  # (parent execution id, its key for us)
    counted: bool = False  # holds a concurrencyLimit slot
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    queued_start: ev.Started | None = None
    idempotency_key: str = ""
    # What it knows to be secret (coordinator.secrets): sealed when stored, redacted
    # when shown; its tasks carry the values so their answers are redacted too.
    secrets: Secrets = field(default_factory=Secrets)

    @property
    def status(self) -> str:
        """``queued``, ``running``, ``paused``, ``completed``, ``failed`` or ``cancelled``."""
        return self.record.status if self.ex.status == "pending" else self.ex.status


def record_of(live: Live, now: datetime) -> ExecutionRecord:
    """The index record of ``live`` as of ``now``."""
    status = live.ex.status if live.ex.status != "pending" else "running"
    return replace(live.record, status=status, updated=now)
