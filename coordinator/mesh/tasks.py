"""The life of a task: admission, attempts, results, retries, timeouts, redelivery.

``Tasks`` owns the tasks (by id and by ``(namespace, idempotency key)``: one key names
a task per namespace; finished ones are kept for queries up to ``task_retention``,
oldest evicted first), the timer of each unfinished
task (its attempt's timeout, or its retry backoff), the counters, the count of
attempts agents hold (``wait_idle``) and the listeners told when a task finishes.
``Admission`` checks a submission, ``Dispatch`` routes and queues what is admitted,
the ``Registry`` says who holds what.

Queries that take ``namespace: str | None`` see only that namespace's tasks (None:
every namespace, for internal callers); a task of another namespace is reported
exactly as an unknown one.

A timed-out attempt is cancelled and retried (or failed), but its slot on the agent
stays taken until the agent reports on it. A task finishes once; see ``Mesh``.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from agentmesh import payload
from coordinator import domain as d
from coordinator.config import Settings
from coordinator.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    QuotaExceeded,
    ResourceExhausted,
)
from coordinator.mesh.admission import Admission
from coordinator.mesh.clock import Clock, Handle
from coordinator.mesh.dispatch import Dispatch
from coordinator.mesh.registry import Held, Registry
from coordinator.mesh.reporting import TaskReports
from coordinator.quotas import Quotas

TaskListener = Callable[[d.Task], None]

_HELD = frozenset({d.TaskStatus.ASSIGNED, d.TaskStatus.RUNNING})


@dataclass(slots=True)
class MeshCounters:
    """What happened to tasks since the mesh started."""

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    retried: int = 0
    redelivered: int = 0
    duplicate_results: int = 0
    total_latency_ms: float = 0.0


class Tasks:
    """Every task the mesh knows, from submission to eviction (see the module docstring).

    ``accepting()`` false refuses new submissions (Unavailable)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        registry: Registry,
        dispatch: Dispatch,
        accepting: Callable[[], bool],
    ) -> None:
        self._settings = settings
        self._policy = settings.retry_policy  # the backoff between attempts
        self.payload_bytes = payload.max_bytes(settings.max_message_bytes)
        self.admission = Admission(settings, registry, self.payload_bytes, accepting)
        self._quotas = Quotas(settings)
        self._clock = clock
        self._registry = registry
        self._dispatch = dispatch
        self._tasks: dict[str, d.Task] = {}
        self._by_idempotency: dict[tuple[str, str], str] = {}  # (namespace, key) -> task id
        self._finished: deque[str] = deque()
        self._timers: dict[str, Handle] = {}  # task id -> its timeout or retry timer
        self.counters = MeshCounters()
        self._listeners: list[TaskListener] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._active = 0  # tasks assigned or running
        #: The task events for the event log (nothing until the mesh has a sink).
        self.reports = TaskReports()

    @property
    def tasks(self) -> Mapping[str, d.Task]:
        """The tasks by id, oldest first (a read-only view)."""
        return MappingProxyType(self._tasks)

    @property
    def active(self) -> int:
        """How many tasks an agent holds (assigned or running)."""
        return self._active

    # ------------------------------------------------------------- admission

    def submit(self, spec: d.TaskSpec, wait_for_agent: bool) -> d.Task:
        """See ``Mesh.submit``."""
        if spec.idempotency_key:
            existing = self._by_idempotency.get((spec.namespace, spec.idempotency_key))
            if existing is not None and existing in self._tasks:
                return self._tasks[existing]
        task = self._prepare(spec, wait_for_agent)
        if self._quotas.enabled and not spec.input_checked:  # API submissions, not a step's
            self._quotas.take_tasks(task.namespace)
        self._admit(task)
        self._dispatch.route(task)
        return task

    def submit_many(self, specs: Sequence[d.TaskSpec], wait_for_agent: bool) -> list[d.Task]:
        """See ``Mesh.submit_many``."""
        fresh: list[d.Task | None] = []
        for i, spec in enumerate(specs):
            key = (spec.namespace, spec.idempotency_key)
            if spec.idempotency_key and self._by_idempotency.get(key) in self._tasks:
                fresh.append(None)
                continue
            try:
                fresh.append(self._prepare(spec, wait_for_agent, extra=len(fresh)))
            except (InvalidArgument, NotFound, FailedPrecondition, ResourceExhausted) as e:
                if isinstance(e, QuotaExceeded):
                    raise QuotaExceeded(f"tasks[{i}]: {e}", e.namespace) from None
                raise type(e)(f"tasks[{i}]: {e}") from None
        if self._quotas.enabled:
            by_namespace: dict[str, int] = {}
            for spec, task in zip(specs, fresh, strict=True):
                if task is not None and not spec.input_checked:
                    by_namespace[task.namespace] = by_namespace.get(task.namespace, 0) + 1
            for namespace, n in by_namespace.items():
                self._quotas.take_tasks(namespace, n)
        out = []
        for spec, task in zip(specs, fresh, strict=True):
            key = (spec.namespace, spec.idempotency_key)
            if task is None:
                out.append(self._tasks[self._by_idempotency[key]])
                continue
            if key in self._by_idempotency:  # duplicate within the batch
                out.append(self._tasks[self._by_idempotency[key]])
                continue
            self._admit(task)
            self._dispatch.route(task)
            out.append(task)
        return out

    def _prepare(self, spec: d.TaskSpec, wait_for_agent: bool, extra: int = 0) -> d.Task:
        task = self.admission.prepare(spec, wait_for_agent, self._dispatch.pending, extra)
        if self._quotas.enabled:
            queued = self._dispatch.queued_in(task.namespace)
            self._quotas.check_queued_tasks(task.namespace, queued, extra + 1)
        return task

    def _admit(self, task: d.Task) -> None:
        self._tasks[task.id] = task
        self._by_idempotency[(task.namespace, task.idempotency_key)] = task.id
        self.counters.submitted += 1
        self.reports.submitted(task)

    # --------------------------------------------------------------- queries

    def get(self, task_id: str, namespace: str | None = None) -> d.Task:
        """The task ``task_id``; NotFound when unknown, evicted or (the same NotFound)
        of another namespace than ``namespace`` (None: any)."""
        task = self._tasks.get(task_id)
        if task is None or (namespace is not None and task.namespace != namespace):
            raise NotFound(f"task {task_id!r} not found (unknown, or finished long ago)")
        return task

    def listed(
        self, status: d.TaskStatus | None, agent_id: str, limit: int, namespace: str | None
    ) -> list[d.Task]:
        """Newest first, at most ``limit``, filtered by status, agent and namespace
        (None: every namespace) when given."""
        out = []
        for task in reversed(self._tasks.values()):
            if (
                (status is None or task.status is status)
                and (not agent_id or task.agent_id == agent_id)
                and (namespace is None or task.namespace == namespace)
            ):
                out.append(task)
                if len(out) >= limit:
                    break
        return out

    def counts(self, namespace: str) -> tuple[int, int]:
        """(tasks queued for an agent, tasks an agent holds: assigned or running) of
        ``namespace``: ``Mesh.pending_count`` and ``Mesh.active_count`` for one
        namespace. One pass over the retained tasks."""
        queued = held = 0
        for task in self._tasks.values():
            if task.namespace == namespace:
                if task.queued and task.status is d.TaskStatus.PENDING:
                    queued += 1
                elif task.status in _HELD:
                    held += 1
        return queued, held

    async def wait(self, task_id: str, timeout: float | None, namespace: str | None) -> d.Task:
        """See ``Mesh.wait``."""
        task = self.get(task_id, namespace)
        if task.status.finished:
            return task
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task.waiters.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            pass
        finally:
            if fut in task.waiters:
                task.waiters.remove(fut)
        return task

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no task is held by an agent. True when idle in time."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def add_listener(self, listener: TaskListener) -> None:
        """Call ``listener(task)`` whenever a task finishes (from the loop)."""
        self._listeners.append(listener)

    # ---------------------------------------------------------- what happens

    def started(self, task: d.Task) -> None:
        """``Dispatch`` assigned a new attempt of ``task``: time it."""
        self._timers[task.id] = self._clock.call_later(
            task.timeout_ms / 1000, functools.partial(self._on_timeout, task, task.attempt)
        )
        self._active += 1
        self._idle.clear()
        self.reports.assigned(task)

    def cancel(self, task_id: str, reason: str, namespace: str | None) -> d.Task:
        """See ``Mesh.cancel``."""
        task = self.get(task_id, namespace)
        if task.status.finished:
            return task
        if task.status is d.TaskStatus.PENDING:
            self._dispatch.withdraw(task)
        else:
            self._dispatch.send_cancel(task, reason)
        self._finish(task, d.TaskStatus.CANCELLED, error=d.TaskFailure(d.CANCELLED, reason))
        return task

    def on_ack(self, task_id: str, attempt: int) -> None:
        """The agent started attempt ``attempt`` of ``task_id``: it is running now."""
        task = self._tasks.get(task_id)
        if task is not None and task.attempt == attempt and task.status is d.TaskStatus.ASSIGNED:
            task.status = d.TaskStatus.RUNNING
            task.started_at = d.utcnow()
            self.reports.acked(task)

    def on_progress(self, task_id: str, attempt: int, fraction: float, message: str) -> None:
        """Progress of the current attempt (``fraction`` clamped to 0..1)."""
        task = self._tasks.get(task_id)
        if task is not None and task.attempt == attempt and not task.status.finished:
            task.progress = min(1.0, max(0.0, fraction))
            task.progress_message = message
            if task.status is d.TaskStatus.ASSIGNED:
                task.status = d.TaskStatus.RUNNING
                task.started_at = d.utcnow()
            self.reports.progressed(task, message)

    def on_output(self, task_id: str, attempt: int, chunk: str) -> None:
        """Partial output of the current attempt: a ``task.output`` event with the
        chunk's offset in the attempt's output (a stale attempt's is dropped)."""
        task = self._tasks.get(task_id)
        if task is None or task.attempt != attempt or task.status.finished:
            return
        self.reports.output(task, chunk)

    def on_result(
        self,
        agent: d.Agent | None,
        task_id: str,
        attempt: int,
        output: d.Json,
        failure: d.TaskFailure | None,
        duration_ms: float,
    ) -> bool:
        """See ``Mesh.on_result``."""
        try:
            payload.check(output, "the task's output", self.payload_bytes)
            if failure is not None and failure.details:
                payload.check(failure.details, "the task's error details", self.payload_bytes)
        except payload.PayloadError as e:
            output, failure = None, d.TaskFailure(d.PAYLOAD_TOO_LARGE, str(e))
        task = self._tasks.get(task_id)
        if agent is None and task is not None:
            agent = self._registry.get(task.agent_id)
            if attempt == 0:
                attempt = task.attempt
        if agent is not None:
            # The agent's health: successes, and failures it says may pass (retryable);
            # a task that is wrong in itself says nothing about the agent.
            health = True if failure is None else (False if failure.retryable else None)
            self._registry.release(agent, task_id, attempt, failure is None, duration_ms, health)
        recorded = self._record(task, attempt, output, failure)
        if agent is not None and agent.connected:
            self._dispatch.fill(agent)
        return recorded

    def _record(
        self, task: d.Task | None, attempt: int, output: d.Json, failure: d.TaskFailure | None
    ) -> bool:
        if task is None or task.status.finished:
            self.counters.duplicate_results += 1
            return False
        current = attempt == task.attempt and task.status in (
            d.TaskStatus.ASSIGNED,
            d.TaskStatus.RUNNING,
        )
        if not current:
            if failure is not None or attempt > task.attempt or attempt <= 0:
                return False
            # A success from a superseded attempt is as good as any: keep it.
            if task.status is d.TaskStatus.PENDING:
                self._dispatch.withdraw(task)
            else:
                self._dispatch.send_cancel(task, "completed by an earlier attempt")
        if current:
            self._active_dec()
        if failure is None:
            self._finish(task, d.TaskStatus.COMPLETED, result=output)
        else:
            self._fail_attempt(task, failure)
        return True

    def redeliver(self, held: Held, reason: str, check_waits: bool) -> int:
        """An agent went (``reason``) holding these slots: queue each attempt that was
        still current again, or fail its task past ``max_redeliveries``. Returns how
        many were current. ``check_waits``: note tasks nobody live can take."""
        moved = 0
        for (_, attempt), task in held:
            if task.attempt != attempt or task.status.finished:
                continue
            self._active_dec()
            moved += 1
            task.redeliveries += 1
            self.counters.redelivered += 1
            self.reports.redelivered(task, attempt, reason)
            if task.redeliveries > self._settings.max_redeliveries:
                self._finish(
                    task,
                    d.TaskStatus.FAILED,
                    error=d.TaskFailure(
                        d.TOO_MANY_REDELIVERIES,
                        f"agent lost {task.redeliveries} times; last: {reason}",
                    ),
                )
            else:
                self._cancel_timer(task)
                self._dispatch.enqueue(task, check_wait=check_waits)
        return moved

    def fail(self, task: d.Task, failure: d.TaskFailure) -> None:
        """Fail ``task`` for good (no retry)."""
        self._finish(task, d.TaskStatus.FAILED, error=failure)

    def abandon_all(self, reason: str) -> int:
        """See ``Mesh.abandon_all``."""
        n = 0
        for task in list(self._tasks.values()):
            if not task.status.finished:
                if task.status is d.TaskStatus.PENDING:
                    self._dispatch.withdraw(task)
                self._finish(
                    task, d.TaskStatus.FAILED, error=d.TaskFailure(d.SHUTDOWN, reason, True)
                )
                n += 1
        return n

    # ------------------------------------------------------ failure & finish

    def _on_timeout(self, task: d.Task, attempt: int) -> None:
        if task.attempt != attempt or task.status.finished or task.status is d.TaskStatus.PENDING:
            return
        self._timers.pop(task.id, None)
        self._dispatch.send_cancel(task, f"timed out after {task.timeout_ms} ms")
        self._active_dec()
        self._fail_attempt(
            task,
            d.TaskFailure(
                d.TIMEOUT, f"attempt {attempt} timed out after {task.timeout_ms} ms", retryable=True
            ),
        )

    def _fail_attempt(self, task: d.Task, failure: d.TaskFailure) -> None:
        if failure.retryable and task.retry_count < task.max_retries:
            task.retry_count += 1
            self.counters.retried += 1
            task.error = failure
            self._cancel_timer(task)
            task.status = d.TaskStatus.PENDING
            task.agent_id = ""
            delay = self._policy.delay_ms(task.retry_count) / 1000
            if delay <= 0:
                self._dispatch.enqueue(task)
            else:
                self._timers[task.id] = self._clock.call_later(
                    delay, functools.partial(self._retry_now, task)
                )
            return
        self._finish(task, d.TaskStatus.FAILED, error=failure)

    def _retry_now(self, task: d.Task) -> None:
        self._timers.pop(task.id, None)
        if task.status is d.TaskStatus.PENDING and not task.queued:
            self._dispatch.enqueue(task)

    def _cancel_timer(self, task: d.Task) -> None:
        timer = self._timers.pop(task.id, None)
        if timer is not None:
            timer.cancel()

    def _active_dec(self) -> None:
        self._active -= 1
        if self._active <= 0:
            self._active = 0
            self._idle.set()

    def _finish(
        self,
        task: d.Task,
        status: d.TaskStatus,
        result: d.Json = None,
        error: d.TaskFailure | None = None,
    ) -> None:
        if task.status in (d.TaskStatus.ASSIGNED, d.TaskStatus.RUNNING) and status in (
            d.TaskStatus.CANCELLED,
            d.TaskStatus.FAILED,
        ):
            # Cancelled or abandoned while an agent held it: no longer active.
            self._active_dec()
        self._cancel_timer(task)
        self._dispatch.forget(task)
        task.status = status
        task.result = result
        task.error = error if status is not d.TaskStatus.COMPLETED else None
        task.ended_at = d.utcnow()
        c = self.counters
        if status is d.TaskStatus.COMPLETED:
            c.completed += 1
            if task.dispatched_mono:
                c.total_latency_ms += (self._clock.now() - task.dispatched_mono) * 1000
        elif status is d.TaskStatus.FAILED:
            c.failed += 1
        else:
            c.cancelled += 1
        for fut in task.waiters:
            if not fut.done():
                fut.set_result(None)
        task.waiters.clear()
        self.reports.finished(task)
        for listener in self._listeners:
            listener(task)
        self._finished.append(task.id)
        while len(self._finished) > self._settings.task_retention:
            old = self._tasks.pop(self._finished.popleft(), None)
            if old is not None:
                self._by_idempotency.pop((old.namespace, old.idempotency_key), None)
