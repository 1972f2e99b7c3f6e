"""Carrying out the core's commands that reach outside the runtime: tasks on the
``Dispatcher`` (the mesh), service calls (``calls.py``), timers on the event loop, event
waits; and turning what comes
back (a task's end, a wait change, a timer) into the core's inputs, posted to the
runtime's loop. Children and the end of an execution are the runtime's own.

Commands are carried out only after their turn's history is durable (the runtime's
persist-then-act rule); ``frozen`` (shutdown, lost leadership) stops new dispatches,
which then stay outstanding in the history for whichever coordinator recovers it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from coordinator import domain as d
from coordinator.engine import events as ev
from coordinator.engine.calls import ServiceCalls
from coordinator.engine.core import CAPABILITY_OPEN
from coordinator.engine.gates import Gates
from coordinator.engine.ports import Dispatcher
from coordinator.errors import InvalidArgument, NotFound
from coordinator.secrets import Secrets
from coordinator.waits import WaitChange

Post = Callable[[str, ev.Input], None]


def _now() -> datetime:
    return datetime.now(UTC)


class Effects:
    """Tasks, timers and event waits of every live execution.

    ``post(execution_id, input)`` hands an input to the runtime's loop;
    ``was_waiting(execution_id, key)`` says whether the history shows task ``key``
    waiting for an agent (a recovered wait that may have ended meanwhile).
    """

    def __init__(
        self, mesh: Dispatcher, post: Post, was_waiting: Callable[[str, str], bool]
    ) -> None:
        self.mesh = mesh
        self.frozen = False
        self._post = post
        self._was_waiting = was_waiting
        #: With tracing on: the trace parent of the task ``(execution, key)`` dispatches.
        self.trace: Callable[[str, str], d.TraceParent] | None = None
        self._task_of: dict[str, tuple[str, str]] = {}  # mesh task id -> (execution, key)
        self._mesh_task: dict[tuple[str, str], str] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        #: Concurrency keys and rate limits of task and service steps.
        self.gates = Gates()
        #: Service steps' calls; the server assembly sets ``calls.caller``.
        self.calls = ServiceCalls(post, on_end=self.gates.release)
        # (namespace, event name) -> {(execution, key): correlation key}
        self._event_waits: dict[tuple[str, str], dict[tuple[str, str], str]] = {}
        mesh.add_listener(self._on_task_finished)
        mesh.add_wait_listener(self._on_task_waiting)

    def carry_out(
        self, exec_id: str, c: ev.Command, namespace: str, secrets: Secrets | None = None
    ) -> None:
        """One command of ``exec_id``'s committed turn (a task, timer or event one);
        ``namespace`` is the execution's: its tasks go to that namespace's agents, its
        event waits hear that namespace's events only. Its tasks carry ``secrets``."""
        if isinstance(c, ev.DispatchTask):
            self._dispatch(exec_id, c, namespace, secrets)
        elif isinstance(c, ev.CancelTask):
            self.gates.release((exec_id, c.key))
            task_id = self._mesh_task.pop((exec_id, c.key), None)
            if task_id is not None:
                self._task_of.pop(task_id, None)
                with contextlib.suppress(NotFound):
                    self.mesh.cancel(task_id, c.reason or "cancelled by the workflow")
        elif isinstance(c, ev.CallService):
            if not self.frozen:
                self._gated(
                    exec_id,
                    c.key,
                    c.gates,
                    namespace,
                    "",
                    lambda: self._call(exec_id, c, namespace),
                )
        elif isinstance(c, ev.CancelServiceCall):
            self.gates.release((exec_id, c.key))
            self.calls.cancel(exec_id, c.key)
        elif isinstance(c, ev.StartTimer):
            delay = max(0.0, (c.fire_at - _now()).total_seconds())
            loop = asyncio.get_running_loop()
            self._timers[(exec_id, c.key)] = loop.call_later(delay, self._fire, exec_id, c.key)
        elif isinstance(c, ev.CancelTimer):
            handle = self._timers.pop((exec_id, c.key), None)
            if handle is not None:
                handle.cancel()
        elif isinstance(c, ev.AwaitEvent):
            waits = self._event_waits.setdefault((namespace, c.name), {})
            waits[(exec_id, c.key)] = c.correlation_key
        elif isinstance(c, ev.CancelEventWait):
            for waits in self._event_waits.values():
                waits.pop((exec_id, c.key), None)
        else:
            raise TypeError(f"not an effect command: {c!r}")

    def take_event_waits(
        self, name: str, correlation_key: str, namespace: str
    ) -> list[tuple[str, str]]:
        """The (execution, key) waits an event ``name`` with ``correlation_key`` of
        ``namespace`` ends, removed: each wait receives one event."""
        waiting = self._event_waits.get((namespace, name), {})
        matched = [k for k, corr in waiting.items() if not corr or corr == correlation_key]
        for k in matched:
            del waiting[k]
        return matched

    def close(self) -> None:
        """Disarm every timer and abandon every service call (the runtime stopped;
        recovery re-arms and calls them again)."""
        self.calls.close()
        self.gates.clear()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    def _gated(
        self,
        exec_id: str,
        key: str,
        gates: tuple[ev.Gate, ...],
        namespace: str,
        capability: str,
        go: Callable[[], None],
    ) -> None:
        """``go()`` now, or once the step's gates have room (the history says why not)."""
        if not gates:
            go()
            return
        why = self.gates.admit((exec_id, key), namespace, gates, go)
        if why:
            self._post(exec_id, ev.TaskWaiting(_now(), key, why, "", capability))

    def _call(self, exec_id: str, c: ev.CallService, namespace: str) -> None:
        if not self.frozen:
            self.calls.start(exec_id, c, namespace)
        else:
            self.gates.release((exec_id, c.key))

    def _dispatch(
        self, exec_id: str, c: ev.DispatchTask, namespace: str, secrets: Secrets | None
    ) -> None:
        if self.frozen:
            return
        self._gated(
            exec_id,
            c.key,
            c.gates,
            namespace,
            c.capability,
            lambda: self._submit(exec_id, c, namespace, secrets),
        )

    def _submit(
        self, exec_id: str, c: ev.DispatchTask, namespace: str, secrets: Secrets | None
    ) -> None:
        if self.frozen:
            self.gates.release((exec_id, c.key))
            return
        if c.fallback and self.mesh.capability_open(c.capability, namespace):
            self.gates.release((exec_id, c.key))
            message = (
                f"every agent with '{c.capability}' has its circuit breaker open: "
                "the step's fallback runs"
            )
            error = ev.StepError(CAPABILITY_OPEN, message, False)
            self._post(exec_id, ev.TaskFailed(_now(), c.key, error))
            return
        agent_id = self.mesh.pinned_agent(c.capability, c.agent, namespace) if c.agent else ""
        spec = d.TaskSpec(
            capability=c.capability,
            input=c.input,
            name=c.step_id,
            timeout_ms=c.timeout_ms or 0,
            idempotency_key=c.idempotency_key,
            max_retries=0,
            execution_id=exec_id,
            step_id=c.step_id,
            agent_id=agent_id,
            input_checked=True,  # by Execution._map, as it was computed
            namespace=namespace,
            secret_names=frozenset(secrets.names) if secrets else frozenset(),
            secret_values=frozenset(secrets.values) if secrets else frozenset(),
            trace=self.trace(exec_id, c.key) if self.trace is not None else None,
        )
        try:
            task = self.mesh.submit(spec, wait_for_agent=True)
        except Exception as e:  # refused (shutting down, queue full): a failed attempt
            retryable = not isinstance(e, InvalidArgument)  # the same input fails again
            err = ev.StepError(type(e).__name__, str(e), retryable)
            self.gates.release((exec_id, c.key))
            self._post(exec_id, ev.TaskFailed(_now(), c.key, err))
            return
        self._task_of[task.id] = (exec_id, c.key)
        self._mesh_task[(exec_id, c.key)] = task.id
        if task.status.finished:  # an idempotent resubmission of a finished task
            self._on_task_finished(task)
            return
        # The mesh told its listeners before the task was ours: tell the history now.
        reason = self.mesh.waiting_reason(task.id)
        if reason:
            self._post(exec_id, ev.TaskWaiting(_now(), c.key, reason, task.id, task.capability))
        elif self._was_waiting(exec_id, c.key):
            # Recovered waiting, and an agent was there this time (or came since).
            agent = task.agent_id or next(
                (a.id for a in self.mesh.find_agents(task.capability, False, namespace)), ""
            )
            self._post(exec_id, ev.TaskUnblocked(_now(), c.key, agent, task.id, task.capability))

    def _on_task_waiting(self, change: WaitChange) -> None:
        owner = self._task_of.get(change.task.id)
        if owner is None or self.frozen:
            return
        exec_id, key = owner
        task = change.task
        if change.reason:
            event: ev.Input = ev.TaskWaiting(_now(), key, change.reason, task.id, task.capability)
        else:
            event = ev.TaskUnblocked(_now(), key, change.agent_id, task.id, task.capability)
        self._post(exec_id, event)

    def _on_task_finished(self, task: d.Task) -> None:
        owner = self._task_of.pop(task.id, None)
        if owner is None:
            return
        exec_id, key = owner
        self._mesh_task.pop(owner, None)
        self.gates.release(owner)
        if task.status is d.TaskStatus.COMPLETED:
            self._post(exec_id, ev.TaskCompleted(_now(), key, task.result, task.agent_id))
        elif task.error is not None:  # failed, or cancelled by an operator (not by us)
            e = task.error
            err = ev.StepError(e.type, e.message, e.retryable, e.details or None)
            self._post(exec_id, ev.TaskFailed(_now(), key, err, task.agent_id))

    def _fire(self, exec_id: str, key: str) -> None:
        self._timers.pop((exec_id, key), None)
        self._post(exec_id, ev.TimerFired(_now(), key))
