"""Workflow and system metrics, kept incrementally from the event log and finished tasks.

``Metrics`` is fed two ways and never scans history to answer a query:

* ``observe(event)`` with every ``MeshEvent`` of the log. Only durable events (an
  execution's journal) count; live ones and other types are dropped after one lookup.
* ``task_finished(task)`` with every task the mesh finishes, workflow ones included.

Everything is kept per namespace: a namespace's snapshot never includes another's numbers;
``system(None)`` adds them all up (for administrators and Prometheus).

Per workflow (``workflow(namespace, name)``):

* ``total_executions``: executions seen queued or started (each once).
* ``active_executions``: of those, the ones not finished yet (paused ones included) and
  still tracked (see eviction below).
* ``success_rate`` / ``error_rate``: completed / finished and failed / finished, where
  finished is completed + failed + cancelled. A cancelled execution is finished but is
  neither a success nor an error, so the two rates need not sum to 1. Both are 0.0 before
  any execution finished. A finish counts even for an execution this coordinator never saw
  start (after a recovery), so finished may exceed ``total_executions``.
* ``average_duration_ms``: mean of ``execution.started`` -> its final event over the
  finished executions whose start was seen (one cancelled while queued has none).
* ``step_metrics[step_id]``: ``count`` is the attempts started: each ``step.started``
  (the first attempt) plus each ``step.retrying`` (which starts the next attempt when its
  delay is over; a ``step.started`` with attempt > 1 is that same attempt and is not
  counted again). A ``step.skipped`` takes its ``step.started`` back. ``error_rate`` is
  ``step.failed`` (the final failure, after retries) / count; ``retry_rate`` is
  ``step.retrying`` / count. ``average_duration_ms`` is the mean of ``step.started`` -> the
  step's final ``step.completed`` or ``step.failed`` (retries and their delays included),
  over the ends matched with a start; an unmatched end counts but adds no duration. Steps
  running in parallel under one id (a map's items) are matched first in, first out, which
  leaves the sum of durations, hence the mean, exact.
* ``agent_utilization[agent_id]``: the share of the workflow's finished tasks
  (``task.completed`` / ``task.failed`` journal events naming an agent) each agent handled;
  the values sum to 1.0 once there is any.

System (``system(namespace, now)``), over a sliding window of ``window_s`` seconds kept in
one-second buckets (O(window) memory, O(1) per task; a bucket ages out whole):

* ``active_workflows``: unfinished tracked executions, all workflows.
* ``total_tasks_processed``: tasks finished since start (completed, failed or cancelled).
* ``tasks_per_second``: tasks finished in the window / min(window_s, uptime), with uptime
  at least one second.
* ``error_rate``: failed / finished tasks in the window (0.0 when none).
* ``avg_task_latency_ms``: mean ``ended_at - created_at`` of the window's tasks, i.e. what
  a submitter waits, queueing included.

Memory stays bounded: an execution's state (its start, its steps' pending starts) is
dropped when it finishes, and at most ``max_executions`` unfinished ones are tracked; past
that the oldest is evicted (``evictions`` counts them), leaves ``active_executions``, and
its finish later counts as one never seen start. Steps and agents are kept per
(namespace, workflow), bounded by the definitions and the agents that served them.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from coordinator.domain import MeshEvent, Task, TaskStatus


@dataclass(frozen=True, slots=True)
class StepSnapshot:
    """One step's numbers within a workflow (see the module docstring)."""

    count: int = 0
    average_duration_ms: float = 0.0
    error_rate: float = 0.0
    retry_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class WorkflowSnapshot:
    """One workflow's numbers within a namespace (see the module docstring)."""

    namespace: str
    workflow_name: str
    total_executions: int = 0
    active_executions: int = 0
    completed_executions: int = 0
    failed_executions: int = 0
    cancelled_executions: int = 0
    success_rate: float = 0.0
    error_rate: float = 0.0
    average_duration_ms: float = 0.0
    step_metrics: Mapping[str, StepSnapshot] = field(default_factory=dict)
    agent_utilization: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SystemSnapshot:
    """What ``Metrics`` knows of SystemMetrics; agents, queues, health and resources come
    from elsewhere and the caller merges them."""

    active_workflows: int = 0
    total_tasks_processed: int = 0
    tasks_per_second: float = 0.0
    error_rate: float = 0.0
    avg_task_latency_ms: float = 0.0


@dataclass(slots=True)
class _Step:
    count: int = 0
    failed: int = 0
    retries: int = 0
    timed: int = 0  # ends matched with a start
    duration_ms: float = 0.0


@dataclass(slots=True)
class _Workflow:
    total: int = 0
    active: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    timed: int = 0  # finishes whose start was seen
    duration_ms: float = 0.0
    tasks: int = 0  # task events naming an agent
    agents: dict[str, int] = field(default_factory=dict)
    steps: dict[str, _Step] = field(default_factory=dict)


class _Window:
    """Finished tasks per one-second bucket, in a ring of ``size`` buckets."""

    __slots__ = ("done", "failed", "latency_ms", "size", "stamps", "timed")

    def __init__(self, size: int) -> None:
        self.size = size
        self.stamps = [-math.inf] * size
        self.done = [0] * size
        self.failed = [0] * size
        self.timed = [0] * size
        self.latency_ms = [0.0] * size

    def add(self, second: int, failed: bool, latency_ms: float | None) -> None:
        i = second % self.size
        if self.stamps[i] != second:  # a bucket last used a full window ago, or never
            self.stamps[i] = second
            self.done[i] = self.failed[i] = self.timed[i] = 0
            self.latency_ms[i] = 0.0
        self.done[i] += 1
        self.failed[i] += failed
        if latency_ms is not None:
            self.timed[i] += 1
            self.latency_ms[i] += latency_ms

    def totals(self, second: int) -> tuple[int, int, int, float]:
        """(finished, failed, timed, latency sum) over the buckets of the last window."""
        done = failed = timed = 0
        latency = 0.0
        for i, stamp in enumerate(self.stamps):
            if second - self.size < stamp <= second:
                done += self.done[i]
                failed += self.failed[i]
                timed += self.timed[i]
                latency += self.latency_ms[i]
        return done, failed, timed, latency


@dataclass(slots=True)
class _Namespace:
    window: _Window
    active: int = 0
    tasks: int = 0
    workflows: dict[str, _Workflow] = field(default_factory=dict)

    def workflow(self, name: str) -> _Workflow:
        w = self.workflows.get(name)
        if w is None:
            w = self.workflows[name] = _Workflow()
        return w


@dataclass(slots=True)
class _Execution:
    namespace: str
    workflow: str
    started: datetime | None = None
    steps: dict[str, deque[datetime]] = field(default_factory=dict)  # pending starts


def _ms(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds() * 1000.0)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


class Metrics:
    """Workflow and system metrics of one coordinator (see the module docstring).

    ``clock`` is monotonic seconds (windows and uptime only; durations come from the
    events' and tasks' own times). Not thread-safe: call it from the coordinator's loop.
    """

    def __init__(
        self,
        *,
        window_s: float = 60.0,
        max_executions: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window_s < 1 or max_executions < 1:
            raise ValueError("window_s must be >= 1 and max_executions >= 1")
        self.window_s = float(window_s)
        self._buckets = math.ceil(window_s)
        self._max = max_executions
        self._clock = clock
        self._born = clock()
        self._ns: dict[str, _Namespace] = {}
        self._live: dict[tuple[str, str], _Execution] = {}  # (namespace, id), oldest first
        self.evictions = 0
        self._handlers: dict[str, Callable[[MeshEvent], None]] = {
            "execution.queued": self._begin,
            "execution.started": self._begin,
            "execution.completed": self._end,
            "execution.failed": self._end,
            "execution.cancelled": self._end,
            "step.started": self._step_started,
            "step.completed": self._step_ended,
            "step.failed": self._step_ended,
            "step.retrying": self._step_retrying,
            "step.skipped": self._step_skipped,
            "task.completed": self._task_event,
            "task.failed": self._task_event,
        }

    # ------------------------------------------------------------------ feeding

    def observe(self, event: MeshEvent) -> None:
        """Count one event of the log; non-durable events and other types are ignored."""
        handler = self._handlers.get(event.type)
        if handler is not None and event.durable and event.execution_id:
            handler(event)

    def task_finished(self, task: Task) -> None:
        """Count one finished task (a task not in a final status is ignored)."""
        if not task.status.finished:
            return
        ns = self._namespace(task.namespace)
        ns.tasks += 1
        latency = None
        if task.ended_at is not None:
            latency = _ms(task.created_at, task.ended_at)
        failed = task.status is TaskStatus.FAILED
        ns.window.add(math.floor(self._clock()), failed, latency)

    # ------------------------------------------------------------------ queries

    def workflows(self, namespace: str) -> list[str]:
        """The names of the workflows seen in ``namespace``, sorted."""
        ns = self._ns.get(namespace)
        return sorted(ns.workflows) if ns else []

    def workflow(self, namespace: str, name: str) -> WorkflowSnapshot:
        """``name``'s numbers in ``namespace`` (all zero if never seen)."""
        ns = self._ns.get(namespace)
        w = ns.workflows.get(name) if ns else None
        if w is None:
            return WorkflowSnapshot(namespace, name)
        finished = w.completed + w.failed + w.cancelled
        steps = {
            step_id: StepSnapshot(
                count=s.count,
                average_duration_ms=s.duration_ms / s.timed if s.timed else 0.0,
                error_rate=_rate(s.failed, s.count),
                retry_rate=_rate(s.retries, s.count),
            )
            for step_id, s in w.steps.items()
        }
        return WorkflowSnapshot(
            namespace=namespace,
            workflow_name=name,
            total_executions=w.total,
            active_executions=w.active,
            completed_executions=w.completed,
            failed_executions=w.failed,
            cancelled_executions=w.cancelled,
            success_rate=_rate(w.completed, finished),
            error_rate=_rate(w.failed, finished),
            average_duration_ms=w.duration_ms / w.timed if w.timed else 0.0,
            step_metrics=steps,
            agent_utilization={a: n / w.tasks for a, n in w.agents.items()},
        )

    def system(self, namespace: str | None = None, now: float | None = None) -> SystemSnapshot:
        """The numbers of ``namespace`` (None: all namespaces added up) at monotonic ``now``
        (default: the clock's)."""
        now = self._clock() if now is None else now
        if namespace is None:
            spaces = list(self._ns.values())
        else:
            spaces = [self._ns[namespace]] if namespace in self._ns else []
        second = math.floor(now)
        active = total = done = failed = timed = 0
        latency = 0.0
        for ns in spaces:
            active += ns.active
            total += ns.tasks
            d, f, t, lat = ns.window.totals(second)
            done, failed, timed, latency = done + d, failed + f, timed + t, latency + lat
        span = max(1.0, min(self.window_s, now - self._born))
        return SystemSnapshot(
            active_workflows=active,
            total_tasks_processed=total,
            tasks_per_second=done / span,
            error_rate=_rate(failed, done),
            avg_task_latency_ms=latency / timed if timed else 0.0,
        )

    # ------------------------------------------------------------------ handlers

    def _namespace(self, name: str) -> _Namespace:
        ns = self._ns.get(name)
        if ns is None:
            ns = self._ns[name] = _Namespace(_Window(self._buckets))
        return ns

    def _workflow_of(self, event: MeshEvent) -> tuple[_Execution | None, _Workflow | None]:
        ex = self._live.get((event.namespace, event.execution_id))
        name = ex.workflow if ex is not None else event.workflow_name
        if not name:
            return ex, None
        return ex, self._namespace(event.namespace).workflow(name)

    def _begin(self, event: MeshEvent) -> None:
        key = (event.namespace, event.execution_id)
        ex = self._live.get(key)
        if ex is None:
            if not event.workflow_name:
                return
            ex = self._live[key] = _Execution(event.namespace, event.workflow_name)
            ns = self._namespace(event.namespace)
            w = ns.workflow(event.workflow_name)
            w.total += 1
            w.active += 1
            ns.active += 1
            if len(self._live) > self._max:
                self._evict()
        if event.type == "execution.started" and ex.started is None:
            ex.started = event.time

    def _evict(self) -> None:
        key = next(iter(self._live))
        ex = self._live.pop(key)
        self._leave(ex)
        self.evictions += 1

    def _leave(self, ex: _Execution) -> None:
        ns = self._namespace(ex.namespace)
        ns.active -= 1
        ns.workflow(ex.workflow).active -= 1

    def _end(self, event: MeshEvent) -> None:
        ex = self._live.pop((event.namespace, event.execution_id), None)
        name = ex.workflow if ex is not None else event.workflow_name
        if not name:
            return
        w = self._namespace(event.namespace).workflow(name)
        if ex is not None:
            self._leave(ex)
            if ex.started is not None:
                w.timed += 1
                w.duration_ms += _ms(ex.started, event.time)
        if event.type == "execution.completed":
            w.completed += 1
        elif event.type == "execution.failed":
            w.failed += 1
        else:
            w.cancelled += 1

    def _step_started(self, event: MeshEvent) -> None:
        ex, w = self._workflow_of(event)
        if w is None or not event.step_id:
            return
        if _int(event.data.get("attempt"), 1) > 1:
            return  # the attempt its step.retrying counted, already timed from the first
        w.steps.setdefault(event.step_id, _Step()).count += 1
        if ex is not None:
            ex.steps.setdefault(event.step_id, deque()).append(event.time)

    def _step_retrying(self, event: MeshEvent) -> None:
        _, w = self._workflow_of(event)
        if w is not None and event.step_id:
            s = w.steps.setdefault(event.step_id, _Step())
            s.count += 1
            s.retries += 1

    def _step_ended(self, event: MeshEvent) -> None:
        ex, w = self._workflow_of(event)
        if w is None or not event.step_id:
            return
        s = w.steps.setdefault(event.step_id, _Step())
        if event.type == "step.failed":
            s.failed += 1
        starts = ex.steps.get(event.step_id) if ex is not None else None
        if starts:
            s.timed += 1
            s.duration_ms += _ms(starts.popleft(), event.time)

    def _step_skipped(self, event: MeshEvent) -> None:
        ex, w = self._workflow_of(event)
        starts = ex.steps.get(event.step_id) if ex is not None else None
        if w is not None and starts:  # only a start counted here is taken back
            starts.pop()  # journaled right after its own step.started
            w.steps.setdefault(event.step_id, _Step()).count -= 1

    def _task_event(self, event: MeshEvent) -> None:
        _, w = self._workflow_of(event)
        agent = event.data.get("agent") or event.agent_id
        if w is not None and isinstance(agent, str) and agent:
            w.tasks += 1
            w.agents[agent] = w.agents.get(agent, 0) + 1
