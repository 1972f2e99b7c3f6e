"""How the CLI shows things: tables, tasks, executions, events, issues, JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from agent_sdk import (
    AgentInfo,
    Execution,
    ExecutionEvent,
    ExecutionSummary,
    TaskAssignment,
    WorkflowInfo,
)

# An output longer than this (as indented JSON) is summarised unless --output is given.
OUTPUT_LINES = 20


def to_jsonable(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    print(json.dumps(to_jsonable(obj), indent=2))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    every = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in every) for i in range(len(header) - 1)]
    return "\n".join(
        ("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]).rstrip()
        for r in every
    )


def ago(t: datetime | None) -> str:
    if t is None:
        return "-"
    s = (datetime.now(UTC) - t).total_seconds()
    if s < 120:
        return f"{s:.0f}s ago"
    return f"{s / 60:.0f}m ago" if s < 7200 else f"{s / 3600:.0f}h ago"


def agents_table(agents: Sequence[AgentInfo]) -> str:
    header = ("ID", "TYPE", "STATUS", "LOAD", "TASKS", "OK%", "AVG MS", "SEEN", "CAPABILITIES")
    rows = [
        (
            a.id,
            a.type,
            a.status,
            f"{a.task_count}/{a.max_concurrency}",
            str(a.tasks_completed + a.tasks_failed),
            f"{a.success_rate * 100:.0f}",
            f"{a.average_task_duration_ms:.0f}",
            ago(a.last_seen_time),
            ",".join(a.capabilities),
        )
        for a in agents
    ]
    return table(header, rows)


def workflows_table(infos: Sequence[WorkflowInfo]) -> str:
    rows = [
        (i.name, i.version, str(i.step_count), ",".join(i.versions), i.description) for i in infos
    ]
    return table(("NAME", "LATEST", "STEPS", "VERSIONS", "DESCRIPTION"), rows)


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "-"
    seconds = ((end or datetime.now(UTC)) - start).total_seconds()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def executions_table(rows: Sequence[ExecutionSummary]) -> str:
    return table(
        ("ID", "WORKFLOW", "STATUS", "STARTED", "DURATION", "CURRENT STEPS"),
        [
            (
                e.id,
                f"{e.workflow_name} v{e.workflow_version}",
                e.status,
                ago(e.start_time),
                _duration(e.start_time, e.end_time),
                ",".join(e.current_step_ids) or "-",
            )
            for e in rows
        ],
    )


def tasks_table(tasks: Sequence[TaskAssignment]) -> str:
    return table(
        ("ID", "CAPABILITY", "STATUS", "AGENT", "ATTEMPT", "CREATED", "PROGRESS"),
        [
            (
                t.id,
                t.capability,
                t.status,
                t.agent_id or "-",
                str(t.attempt),
                ago(t.created_time),
                progress_text(t) or "-",
            )
            for t in tasks
        ],
    )


def progress_text(t: TaskAssignment) -> str:
    if not (t.progress or t.progress_message):
        return ""
    return f"{t.progress * 100:.0f}% {t.progress_message}".rstrip()


def value_text(value: Any, whole: bool, label: str = "output") -> str:
    """Indented JSON, or its first lines and a note when it is long and not ``whole``."""
    text = json.dumps(value, indent=2)
    lines = text.splitlines()
    if whole or len(lines) <= OUTPUT_LINES:
        return text.replace("\n", "\n          ")
    head = "\n          ".join(lines[:OUTPUT_LINES])
    return (
        f"{head}\n          ... {len(lines) - OUTPUT_LINES} more lines "
        f"({len(text)} bytes): --output prints the whole {label}"
    )


def show_task(t: TaskAssignment, as_json: bool, whole: bool = True) -> None:
    if as_json:
        print_json(t)
        return
    print(f"task       {t.id}")
    print(f"status     {t.status} (attempt {t.attempt}, retries {t.retry_count})")
    print(f"agent      {t.agent_id or '-'}")
    print(f"capability {t.capability}")
    progress = progress_text(t)
    if progress and not t.finished:
        print(f"progress   {progress}")
    if t.result is not None:
        print("result     " + value_text(t.result, whole, "result"))
    if t.error is not None:
        print(f"error      {t.error.type}: {t.error.message}")


def show_execution(e: Execution, as_json: bool, whole: bool = False) -> None:
    if as_json:
        print_json(e)
        return
    print(f"execution {e.id}")
    print(f"workflow  {e.workflow_name} v{e.workflow_version}")
    print(f"status    {e.status}")
    m = e.metrics
    print(
        f"steps     {m['completedSteps']:.0f} completed of {m['stepCount']:.0f} started, "
        f"{m['taskCount']:.0f} tasks, {m['retryCount']:.0f} retries, "
        f"{m['errorCount']:.0f} errors, {m['duration'] / 1000:.2f}s"
    )
    for s in e.current_steps:
        print(f"  running {s.step_id} ({s.type}, attempt {s.attempt})")
        if s.waiting:
            print(f"          waiting: {s.waiting}")
    if e.error is not None:
        print(f"error     {e.error.type}: {e.error.message}")
    if e.status == "completed":
        print("output    " + value_text(e.output, whole))


def event_line(ev: ExecutionEvent) -> str:
    when = ev.time.strftime("%H:%M:%S.%f")[:-3] if ev.time else ""
    step = f" {ev.step_id}" if ev.step_id else ""
    msg = f"  {ev.message}" if ev.message else ""
    if ev.type == "task.waiting" and ev.message:
        msg = f"  waiting: {ev.message}"
    return f"{ev.sequence:>5} {when} {ev.type:<24}{step}{msg}"


def is_journal_input(ev: ExecutionEvent) -> bool:
    """The engine's own inputs (``ExecutionStarted``, ``TaskCompleted`` ...), which the
    history also holds; what people read are the dotted events (``step.completed``)."""
    return ev.type[:1].isupper()


class _Issue(Protocol):
    """A validation issue: the SDK's, or the engine's own when validating locally."""

    @property
    def severity(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def message(self) -> str: ...


def issue_lines(issues: Sequence[_Issue], total: int) -> list[str]:
    lines = [f"{i.severity}: {i.location}: {i.message}" for i in issues]
    if total > len(issues):
        lines.append(f"... and {total - len(issues)} more issues")
    return lines
