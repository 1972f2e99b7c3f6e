"""The engine core: a deterministic state machine, one per execution.

``Execution.apply(event)`` takes one input (with its time), updates the state in
place and returns what the runtime must do (``Command``s) and what happened
(``Journal`` entries for the history). It does no I/O, reads no clock and uses
no randomness, so replaying an execution's inputs rebuilds its state exactly;
every step type, retry, timeout and error path is testable without a server.
Failures are states, not exceptions: a broken expression fails its step.

Shape of a run: a *frame* is a running sequence of steps (the workflow itself,
one parallel branch, one map iteration); a *run* is one step instance in a frame.
Tasks, timers, event waits and children are keyed by the run key plus a suffix,
so results find their run and stale ones are ignored.

One piece, though long: every input handler reads and changes the same runs, frames,
retry timers and compensation queue; split, it would be one class spread over files.
What each step type does when it starts lives in ``steps.py``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from agentmesh import payload
from coordinator.engine import events as ev
from coordinator.engine.events import Data, StepError
from coordinator.engine.expr import (
    compile_expression,
    compile_template,
    evaluate_mapping,
    has_interpolation,
    is_expression,
    truthy,
)
from coordinator.engine.model import RetrySpec, Step, WorkflowDefinition
from coordinator.engine.steps import STEPS, branch_label, next_item
from coordinator.errors import EvaluationError, ExpressionError
from coordinator.retry import RetryPolicy

# Error types the engine produces.
EXPRESSION_ERROR = "ExpressionError"
TIMEOUT = "TIMEOUT"
CHILD_FAILED = "ChildWorkflowFailed"
CANCELLED = "CANCELLED"
#: A task step's capability has every agent's breaker open (effects): its fallback runs.
CAPABILITY_OPEN = "CapabilityUnavailable"

FINAL = ("completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class EngineDefaults:
    """Coordinator-wide defaults: the retry policy for retryable errors (TIMEOUT,
    AGENT_LOST, errors marked retryable) of steps without a ``retry`` of their own."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    task_timeout_ms: int | None = None
    # Values the workflow computes (task and child inputs, variables) over this, or
    # nested deeper than agentmesh.payload allows, fail their step: they could not
    # travel in the messages that carry them. 0: depth only.
    max_payload_bytes: int = 0
    # error_handling_level aggressive: the default policy retries every error, not only
    # retryable ones (minimal's "no retries" is a policy of none).
    retry_every_error: bool = False
    # capability_limits: gates every task of the capability passes (per namespace).
    capability_gates: Mapping[str, tuple[ev.Gate, ...]] = field(default_factory=dict)


@dataclass(slots=True)
class Frame:
    """A sequence of steps being run: the workflow's own (``parent_run`` ""), a parallel
    branch or a map iteration (``extra`` holds its ``item`` and ``index``)."""

    key: str
    parent_run: str  # "" for the root frame
    extra: Data  # map iterations: {"item": ..., "index": ...}
    current: str = ""  # run key
    last_output: Any = None
    done: bool = False
    failed: StepError | None = None


@dataclass(slots=True)
class Run:
    """One run of a step in a frame: its attempt, what it waits on, its children frames."""

    key: str
    step_id: str
    frame: str
    attempt: int
    started: datetime
    waiting: str = ""  # key of the task/timer/event/child it waits on
    timeout_key: str = ""
    frames: list[str] = field(default_factory=list)  # parallel branches, map iterations
    pending_items: list[int] = field(default_factory=list)  # map: indexes not started yet
    results: dict[int, Any] = field(default_factory=dict)
    failures: dict[int, StepError] = field(default_factory=dict)
    items: list[Any] = field(default_factory=list)
    retry_timer: str = ""
    fallback: str = ""  # "capability" or "workflow": its fallback runs (steps.task)


@dataclass(slots=True)
class Metrics:
    """Counters of one execution, reported by GetExecutionStatus."""

    step_count: int = 0
    completed_steps: int = 0
    task_count: int = 0
    error_count: int = 0
    retry_count: int = 0


class Execution:
    """One workflow execution's state and transition function."""

    def __init__(
        self, execution_id: str, definition: WorkflowDefinition, defaults: EngineDefaults
    ) -> None:
        self.id = execution_id
        self.defn = definition
        self.defaults = defaults
        self.status = "pending"
        self.input: Any = None
        self.variables: Data = {}
        self.output: Any = None
        self.error: StepError | None = None
        self.context: Data = {}
        self.start_time: datetime | None = None
        self.end_time: datetime | None = None
        self.frames: dict[str, Frame] = {}
        self.runs: dict[str, Run] = {}
        self.metrics = Metrics()
        self.paused = False
        self._deferred: list[tuple[str, str, int]] = []  # (frame, step, attempt) held by a pause
        self._waits: dict[str, str] = {}  # task/timer/event/child key -> run key
        self._blocked: dict[str, str] = {}  # waited-on task key -> why no agent takes it
        self._counter = 0
        self._last_error: StepError | None = None
        self._compensable: list[tuple[str, Any]] = []  # (step id, output) in completion order
        self._phase = "running"  # running | compensating | handling | final
        self._queue: list[tuple[str, Data]] = []  # compensation / handler work left
        self._final_error: StepError | None = None
        self._cmds: list[ev.Command | ev.Journal] = []
        self._now: datetime | None = None

    # ------------------------------------------------------------ public

    @property
    def finished(self) -> bool:
        """Whether the execution reached a final status."""
        return self.status in FINAL

    def current_runs(self) -> list[Run]:
        """Step runs in progress (parallel and map steps included)."""
        return list(self.runs.values())

    def waiting_reason(self, key: str) -> str:
        """Why the task ``key`` (a run's ``waiting``) makes no progress: no live
        agent can take it (e.g. "no live agent advertises 'x'"); "" otherwise."""
        return self._blocked.get(key, "") if key in self._waits else ""

    def apply(self, event: ev.Input) -> list[ev.Command | ev.Journal]:
        """Apply one input; return the commands and journal entries it caused."""
        self._cmds = []
        self._now = event.time
        if self.finished and not isinstance(event, ev.Started):
            return []
        handler = getattr(self, f"_on_{type(event).__name__}")
        handler(event)
        out, self._cmds = self._cmds, []
        return out

    # ------------------------------------------------------------ inputs

    def _on_Started(self, e: ev.Started) -> None:
        if self.status != "pending":
            return
        self.status = "running"
        self.input = e.input
        self.context = dict(e.context)
        self.start_time = e.time
        data: dict[str, Any] = {"workflow": self.defn.name, "version": self.defn.version}
        parent_key = self.context.get("parentKey")
        if parent_key:  # a child: the step attempt of its parent that started it
            data["parentId"] = self.context.get("parentId", "")
            data["parentKey"] = parent_key
        self.journal("execution.started", data=data)
        if self.defn.timeout_ms:
            self.emit(ev.StartTimer("workflow.timeout", e.time + _ms(self.defn.timeout_ms)))
            self._waits["workflow.timeout"] = ""
        root = self.new_frame("", {})
        self.start_step(root.key, self.defn.steps[0].id, 1)

    def _on_TaskCompleted(self, e: ev.TaskCompleted) -> None:
        run = self._claim(e.key)
        if run is None:
            self._compensation_result(e.key, None)
            return
        self.journal("task.completed", run.step_id, data={"key": e.key, "agent": e.agent_id})
        self._succeed(run, e.output)

    def _on_TaskFailed(self, e: ev.TaskFailed) -> None:
        run = self._claim(e.key)
        if run is None:
            self._compensation_result(e.key, e.error)
            return
        self.journal(
            "task.failed",
            run.step_id,
            message=e.error.message,
            data={"key": e.key, "error": e.error.to_data(), "agent": e.agent_id},
        )
        self.fail(run, e.error)

    def _on_TaskWaiting(self, e: ev.TaskWaiting) -> None:
        if e.key not in self._waits or self._blocked.get(e.key) == e.reason:
            return  # stale, or nothing new: one entry per change
        self._blocked[e.key] = e.reason
        self.journal(
            "task.waiting",
            self._step_of(e.key),
            message=e.reason,
            data={"key": e.key, "taskId": e.task_id, "capability": e.capability},
        )

    def _on_TaskUnblocked(self, e: ev.TaskUnblocked) -> None:
        if e.key not in self._waits or self._blocked.pop(e.key, None) is None:
            return
        who = f"agent {e.agent_id}" if e.agent_id else "an agent"
        self.journal(
            "task.unblocked",
            self._step_of(e.key),
            message=f"{who} advertises '{e.capability}'",
            data={
                "key": e.key,
                "taskId": e.task_id,
                "capability": e.capability,
                "agent": e.agent_id,
            },
        )

    def _on_TimerFired(self, e: ev.TimerFired) -> None:
        if e.key == "workflow.timeout":
            if self._waits.pop(e.key, None) is not None and self._phase == "running":
                self._fail_execution(
                    _error(TIMEOUT, f"workflow timed out after {self.defn.timeout_ms} ms"), ""
                )
            return
        run_key = self._waits.pop(e.key, None)
        if run_key is None:
            return
        run = self.runs.get(run_key)
        if run is None:
            return
        if e.key == run.retry_timer:
            run.retry_timer = ""
            self._start_attempt(run)
        elif e.key == run.timeout_key:
            self._release(run)
            step = self.defn.step(run.step_id)
            self.fail(run, _error(TIMEOUT, f"step '{step.id}' timed out", retryable=True))
        elif e.key == run.waiting:  # a wait step
            run.waiting = ""
            self._succeed(run, {"waitedUntil": e.time.isoformat()})

    def _on_EventReceived(self, e: ev.EventReceived) -> None:
        run = self._claim(e.key)
        if run is None:
            return
        self.journal("event.received", run.step_id, data={"name": e.name})
        self._succeed(run, e.payload)

    def _on_ChildFinished(self, e: ev.ChildFinished) -> None:
        if e.key.startswith("handler."):
            self._handler_finished(e)
            return
        run = self._claim(e.key)
        if run is None:
            return
        if e.status == "completed":
            self._succeed(run, e.output)
        else:
            err = e.error or StepError("")
            self.fail(
                run,
                _error(
                    CHILD_FAILED,
                    f"subworkflow execution {e.child_id} {e.status}: {err.message}",
                    details={"childId": e.child_id, "error": err.to_data()},
                ),
            )

    def _on_PauseRequested(self, e: ev.PauseRequested) -> None:
        if self.status == "running" and not self.paused:
            self.paused = True
            self.status = "paused"
            self.journal("execution.paused")

    def _on_ResumeRequested(self, e: ev.ResumeRequested) -> None:
        if not self.paused:
            return
        self.paused = False
        self.status = "running"
        if isinstance(e.input, dict):
            self.variables.update(e.input)
        self.journal("execution.resumed")
        deferred, self._deferred = self._deferred, []
        for frame, step_id, attempt in deferred:
            if step_id.startswith("\0retry:"):
                run = self.runs.get(step_id[len("\0retry:") :])
                if run is not None:
                    self._start_attempt(run)
            else:
                self.start_step(frame, step_id, attempt)

    def _on_StopRequested(self, e: ev.StopRequested) -> None:
        self._cancel_everything(e.reason or "stopped by request")
        self._finish("cancelled", error=_error(CANCELLED, e.reason or "stopped by request"))

    # ------------------------------------------------------------- steps

    def start_step(self, frame_key: str, step_id: str, attempt: int) -> None:
        """Start step ``step_id`` in ``frame_key`` (held while paused; skipped if its
        condition is false)."""
        if self._phase != "running":
            return
        if self.paused:
            self._deferred.append((frame_key, step_id, attempt))
            return
        frame = self.frames[frame_key]
        step = self.defn.step(step_id)
        self._counter += 1
        run = Run(f"r{self._counter}", step_id, frame_key, attempt, self.now())
        self.runs[run.key] = run
        frame.current = run.key
        self.metrics.step_count += 1
        self.journal(
            "step.started", step_id, data={"type": step.type, "attempt": attempt, "run": run.key}
        )
        if step.condition:
            try:
                ok = truthy(compile_expression(step.condition).evaluate(self._scope(run)))
            except (ExpressionError, EvaluationError) as e:
                self.fail(run, _expr_error(step, "condition", e))
                return
            if not ok:
                self.journal(
                    "step.skipped",
                    step_id,
                    message=f"condition {step.condition} is false",
                    data={"run": run.key},
                )
                del self.runs[run.key]
                self._advance(frame, step, None)
                return
        self._start_attempt(run)

    def _start_attempt(self, run: Run) -> None:
        if self.paused:
            self._deferred.append((run.frame, "\0retry:" + run.key, run.attempt))
            return
        run.fallback = ""  # each attempt tries the step's own capability first
        step = self.defn.step(run.step_id)
        scope = self._scope(run)
        try:
            STEPS[step.type](self, run, step, scope)
        except (ExpressionError, EvaluationError) as e:
            self.fail(run, _expr_error(step, step.type, e))

    # ---------------------------------------------------- outcomes of runs

    def _succeed(self, run: Run, output: Any) -> None:
        step = self.defn.step(run.step_id)
        self._release(run)
        self.complete(run, step, output)

    def complete(self, run: Run, step: Step, output: Any, goto: str = "") -> None:
        """``run`` succeeded with ``output``: record it, then go on (to ``goto`` if given)."""
        scope = self._scope(run, output=output)
        if step.output is not None:
            try:
                for var, expr in step.output.items():
                    self.variables[var] = self.evaluate(expr, scope, f"variable {var!r}")
            except (ExpressionError, EvaluationError) as e:
                self.fail(run, _expr_error(step, "output", e))
                return
        if step.compensate is not None:
            self._compensable.append((step.id, output))
        self.metrics.completed_steps += 1
        self.journal("step.completed", step.id, data={"attempt": run.attempt, "run": run.key})
        self.runs.pop(run.key, None)
        frame = self.frames[run.frame]
        if goto:
            self.start_step(frame.key, goto, 1)
        else:
            self._advance(frame, step, output)

    def _advance(self, frame: Frame, step: Step, output: Any) -> None:
        """Go to the step's next, or end the frame."""
        target = step.next
        if step.next_decision is not None:
            scope = self._scope_for(frame, output)
            try:
                label = branch_label(
                    compile_expression(step.next_decision.expression).evaluate(scope)
                )
            except (ExpressionError, EvaluationError) as e:
                self._fail_frame(frame, _expr_error(step, "next", e), step.id)
                return
            target = step.next_decision.branches.get(label) or step.next_decision.default
        if target:
            self.start_step(frame.key, target, 1)
            return
        frame.current = ""
        frame.last_output = output
        frame.done = True
        self._frame_finished(frame)

    def fail(self, run: Run, error: StepError) -> None:
        """A run failed: run its fallback, retry it, follow its onError, or fail its
        frame."""
        step = self.defn.step(run.step_id)
        if error.type == CAPABILITY_OPEN and step.fallback is not None and not run.fallback:
            self._release(run)
            self._fall_back(run, step)
            return
        self._release(run)
        self.metrics.error_count += 1
        error = error.at(step.id)
        self._last_error = error
        policy, explicit = self._policy(step)
        allowed = explicit or error.retryable or error.type == TIMEOUT
        allowed = allowed or self.defaults.retry_every_error
        if (
            allowed
            and error.type != CANCELLED
            and run.attempt < policy.max_retries + 1
            and self._phase == "running"
        ):
            delay = policy.delay_ms(run.attempt, _spread(self.id, run.key, run.attempt))
            run.attempt += 1
            self.metrics.retry_count += 1
            run.retry_timer = f"{run.key}.r{run.attempt}"
            self._waits[run.retry_timer] = run.key
            self.emit(ev.StartTimer(run.retry_timer, self.now() + _ms(delay)))
            self.journal(
                "step.retrying",
                step.id,
                message=error.message,
                data={"attempt": run.attempt, "delayMs": round(delay), "run": run.key},
            )
            return
        self.journal(
            "step.failed",
            step.id,
            message=error.message,
            data={"error": error.to_data(), "attempt": run.attempt, "run": run.key},
        )
        self.runs.pop(run.key, None)
        frame = self.frames[run.frame]
        action = step.on_error
        if action is None or self._phase != "running":
            self._fail_frame(frame, error, step.id)
        elif action.action == "goto":
            self.start_step(frame.key, action.next, 1)
        elif action.action == "continue":
            self._advance(frame, step, None)
        elif action.action == "retry":  # retries are used up
            self._fail_frame(frame, error, step.id)
        else:  # fail | compensate: the workflow fails; compensation always runs
            self._fail_execution(error, step.id)

    def _fail_frame(self, frame: Frame, error: StepError, step_id: str) -> None:
        frame.done = True
        frame.failed = error
        frame.current = ""
        if not frame.parent_run:
            self._fail_execution(error, step_id)
            return
        self._frame_finished(frame)

    def _frame_finished(self, frame: Frame) -> None:
        if not frame.parent_run:
            if frame.failed is None:
                self._succeed_execution()
            return
        run = self.runs.get(frame.parent_run)
        if run is None:
            return
        step = self.defn.step(run.step_id)
        index = run.frames.index(frame.key)
        if step.type == "map":
            index = int(frame.extra["index"])
        if frame.failed is not None:
            run.failures[index] = frame.failed
            if step.type == "map" or (step.parallel and step.parallel.policy == "all"):
                self._abort_frames(run, except_key=frame.key)
                branch = _branch_name(step, index)
                self.fail(
                    run, replace(frame.failed, message=f"{branch} failed: {frame.failed.message}")
                )
                return
        else:
            run.results[index] = frame.last_output
        if step.type == "map" and run.pending_items:
            next_item(self, run, step)
            return
        if all(self.frames[k].done for k in run.frames) and not run.pending_items:
            for k in run.frames:
                self.frames.pop(k, None)
            if step.type == "map":
                output: Any = [run.results.get(i) for i in range(len(run.items))]
            else:
                assert step.parallel is not None
                output = {
                    "branches": [run.results.get(i) for i in range(len(run.frames))],
                    "failed": [
                        {"branch": step.parallel.branches[i].name, "error": err.to_data()}
                        for i, err in sorted(run.failures.items())
                    ],
                }
            run.frames = []
            self.complete(run, step, output)

    def _abort_frames(self, run: Run, except_key: str) -> None:
        for key in run.frames:
            frame = self.frames.get(key)
            if frame is None or key == except_key:
                continue
            self._abort_frame(frame)
        run.pending_items = []

    def _abort_frame(self, frame: Frame) -> None:
        frame.done = True
        inner = self.runs.pop(frame.current, None) if frame.current else None
        if inner is not None:
            self._release(inner, cancel=True)
            if inner.frames:
                self._abort_frames(inner, except_key="")

    # ----------------------------------------------------- the execution

    def _succeed_execution(self) -> None:
        self._finish("completed", output=dict(self.variables))

    def _fail_execution(self, error: StepError, step_id: str) -> None:
        if self._phase != "running":
            return
        self._final_error = error if error.step_id else error.at(step_id)
        self._cancel_everything("workflow failed")
        self._phase = "compensating"
        self._queue = [
            ("compensate", {"stepId": sid, "output": out})
            for sid, out in reversed(self._compensable)
        ]
        etype = error.type
        for handler in self.defn.error_handlers:
            if handler.error in ("*", etype):
                self._queue.append(("handler", {"workflow": handler.handler, "attempt": 1}))
        if self._compensable:
            self.journal(
                "compensation.started", data={"steps": [s for s, _ in reversed(self._compensable)]}
            )
        self._drain_queue()

    def _drain_queue(self) -> None:
        while self._queue:
            kind, item = self._queue[0]
            if kind == "compensate":
                step = self.defn.step(str(item["stepId"]))
                assert step.compensate is not None
                scope = {**self._scope_for(None, item["output"]), "stepId": step.id}
                try:
                    task_input = self.evaluate(step.compensate.input, scope, "compensation input")
                except (ExpressionError, EvaluationError) as e:
                    self.journal("compensation.failed", step.id, message=str(e))
                    self._queue.pop(0)
                    continue
                self._counter += 1
                key = f"comp{self._counter}"
                self._waits[key] = ""
                self.metrics.task_count += 1
                self.emit(
                    ev.DispatchTask(
                        key,
                        step.id,
                        step.compensate.capability,
                        task_input,
                        step.compensate.agent,
                        step.compensate.timeout_ms,
                        f"{self.id}/{key}",
                    )
                )
                self.journal("compensation.step", step.id, data={"key": key})
                return
            self._phase = "handling"
            self._counter += 1
            key = f"handler.{self._counter}"
            self._waits[key] = ""
            err = self._final_error or StepError("")
            context = {
                "error": err.to_data(),
                "workflowName": str(self.context.get("workflowName") or self.defn.name),
                "executionId": self.id,
                "stepId": err.step_id,
                "parentId": self.id,
                "errorHandler": True,
            }
            self.emit(ev.StartChild(key, str(item["workflow"]), "", dict(context), context))
            self.journal(
                "errorhandler.started",
                data={"workflow": item["workflow"], "attempt": item["attempt"]},
            )
            return
        self._finish("failed", error=self._final_error)

    def _compensation_result(self, key: str, error: StepError | None) -> None:
        self._blocked.pop(key, None)
        if self._waits.pop(key, None) is None or not self._queue:
            return
        _, item = self._queue.pop(0)
        self.journal(
            "compensation.completed" if error is None else "compensation.failed",
            str(item.get("stepId", "")),
            message=error.message if error else "",
        )
        self._drain_queue()

    def _handler_finished(self, e: ev.ChildFinished) -> None:
        if self._waits.pop(e.key, None) is None or not self._queue:
            return
        kind, item = self._queue[0]
        workflow = str(item["workflow"])
        spec = next((h for h in self.defn.error_handlers if h.handler == workflow), None)
        attempt = int(item["attempt"])
        if (
            e.status != "completed"
            and spec is not None
            and spec.retry is not None
            and (attempt < spec.retry.max_attempts)
        ):
            self._queue[0] = (kind, {"workflow": workflow, "attempt": attempt + 1})
            self.journal("errorhandler.retrying", message=e.error.message if e.error else "")
        else:
            self._queue.pop(0)
            self.journal(
                "errorhandler.finished",
                message=e.status,
                data={"workflow": workflow, "childId": e.child_id},
            )
        self._drain_queue()

    def evaluate(self, value: Any, scope: Data, what: str) -> Any:
        """``value`` evaluated on ``scope``; EvaluationError when the result is over
        the payload limits (its step fails, as for any expression that fails)."""
        out = _mapping(value, scope)
        try:
            payload.check(out, what, self.defaults.max_payload_bytes)
        except payload.PayloadError as e:
            raise EvaluationError(str(e), what) from None
        return out

    def _finish(self, status: str, output: Any = None, error: StepError | None = None) -> None:
        self.status = status
        self._phase = "final"
        self.output = output
        self.error = error
        self.end_time = self.now()
        for key in [k for k in self._waits if k == "workflow.timeout"]:
            self.emit(ev.CancelTimer(key))
        self._waits.clear()
        self._blocked.clear()
        self.journal(
            f"execution.{status}",
            message=error.message if error else "",
            data={"error": error.to_data()} if error else {"output": output},
        )
        self.emit(ev.Finished(status, output, error))

    def _cancel_everything(self, reason: str) -> None:
        for run in list(self.runs.values()):
            self._release(run, cancel=True, reason=reason)
        self.runs.clear()
        if "workflow.timeout" in self._waits:
            self.emit(ev.CancelTimer("workflow.timeout"))
            del self._waits["workflow.timeout"]
        for frame in self.frames.values():
            frame.done = True
        self._deferred.clear()

    # ----------------------------------------------------------- helpers

    def _policy(self, step: Step) -> tuple[RetryPolicy, bool]:
        """The step's retry policy, and whether it applies to every error (an
        explicit ``retry`` or ``onError: retry``) or only to retryable ones."""
        if step.retry is not None:
            return _policy(step.retry), True
        explicit = step.on_error is not None and step.on_error.action == "retry"
        return self.defaults.retry, explicit

    def wait_on(self, run: Run, key: str) -> None:
        """``run`` now waits on ``key`` (a task, timer, event or child)."""
        run.waiting = key
        self._waits[key] = run.key

    def set_timeout(self, run: Run, timeout_ms: int) -> None:
        """Fail ``run`` with TIMEOUT unless it finishes within ``timeout_ms``."""
        run.timeout_key = f"{run.waiting}.timeout"
        self._waits[run.timeout_key] = run.key
        self.emit(ev.StartTimer(run.timeout_key, self.now() + _ms(timeout_ms)))

    def _claim(self, key: str) -> Run | None:
        """The run waiting on ``key``, which stops waiting; None if stale."""
        run_key = self._waits.get(key)
        if not run_key:
            return None
        run = self.runs.get(run_key)
        if run is None or run.waiting != key:
            return None
        del self._waits[key]
        self._blocked.pop(key, None)
        run.waiting = ""
        return run

    def _fall_back(self, run: Run, step: Step) -> None:
        """Run ``step``'s fallback in place of its task: another capability, or a child
        workflow, on the same input; its result is the step's."""
        fb = step.fallback
        assert fb is not None
        try:
            value = self.evaluate(step.input, self._scope(run), "fallback input")
        except (EvaluationError, ExpressionError) as e:
            self.fail(run, _expr_error(step, "fallback", e))
            return
        run.fallback = "workflow" if fb.workflow else "capability"
        target = fb.workflow or fb.capability
        self.journal(
            "step.fallback",
            step.id,
            message=f"capability '{step.capability}' is unavailable: {run.fallback} {target}",
            data={"capability": step.capability, run.fallback: target},
        )
        if fb.workflow:
            key = f"{run.key}.c{run.attempt}"
            self.wait_on(run, key)
            context = {"parentId": self.id, "parentStep": step.id}
            self.emit(ev.StartChild(key, fb.workflow, "", value, context))
        else:
            key = f"{run.key}.t{run.attempt}f"
            self.wait_on(run, key)
            timeout = step.timeout_ms or self.defaults.task_timeout_ms
            self.emit(
                ev.DispatchTask(key, step.id, fb.capability, value, "", timeout, f"{self.id}/{key}")
            )

    def _release(self, run: Run, cancel: bool = False, reason: str = "") -> None:
        """Stop everything a run waits on (cancelling it on the outside if asked)."""
        if run.waiting:
            key, run.waiting = run.waiting, ""
            self._waits.pop(key, None)
            self._blocked.pop(key, None)
            if cancel:
                step = self.defn.step(run.step_id)
                if run.fallback == "workflow":
                    self.emit(ev.CancelChild(key))
                elif step.type == "task":
                    self.emit(ev.CancelTask(key, reason))
                elif step.type == "service":
                    self.emit(ev.CancelServiceCall(key))
                elif step.type == "wait":
                    self.emit(ev.CancelTimer(key))
                elif step.type == "event":
                    self.emit(ev.CancelEventWait(key))
                elif step.type == "subworkflow":
                    self.emit(ev.CancelChild(key))
        for attr in ("timeout_key", "retry_timer"):
            key = getattr(run, attr)
            if key:
                setattr(run, attr, "")
                if self._waits.pop(key, None) is not None:
                    self.emit(ev.CancelTimer(key))
        if cancel and run.frames:
            self._abort_frames(run, except_key="")

    def _step_of(self, key: str) -> str:
        """The step whose task ``key`` is: a run's, or the compensation under way's."""
        run = self.runs.get(self._waits.get(key, ""))
        if run is not None:
            return run.step_id
        if self._queue and self._queue[0][0] == "compensate":
            return str(self._queue[0][1].get("stepId", ""))
        return ""

    def new_frame(self, parent_run: str, extra: Data) -> Frame:
        """A new frame under run ``parent_run`` with ``extra`` in its scope."""
        self._counter += 1
        frame = Frame(f"f{self._counter}", parent_run, dict(extra))
        self.frames[frame.key] = frame
        return frame

    def _scope(self, run: Run, output: Any = None) -> Data:
        scope = self._scope_for(self.frames.get(run.frame), output)
        if not self.context.get("errorHandler"):
            # An error handler's $.stepId is the step that failed, not its own.
            scope["stepId"] = run.step_id
        return scope

    def _scope_for(self, frame: Frame | None, output: Any) -> Data:
        ctx = self.context
        scope: Data = {
            "input": self.input,
            "variables": self.variables,
            "output": output,
            "error": self._last_error.to_data() if self._last_error else ctx.get("error"),
            "workflowName": ctx.get("workflowName") or self.defn.name,
            "executionId": ctx.get("executionId") or self.id,
            "stepId": ctx.get("stepId", ""),
        }
        if frame is not None:
            scope.update(frame.extra)
        return scope

    def now(self) -> datetime:
        """The time of the input being applied (the core reads no clock)."""
        assert self._now is not None
        return self._now

    def emit(self, cmd: ev.Command) -> None:
        """Queue a command for the runtime to carry out after this turn commits."""
        self._cmds.append(cmd)

    def journal(
        self, type_: str, step_id: str = "", message: str = "", data: dict[str, Any] | None = None
    ) -> None:
        """Add a history entry for people (``step.started``, ``task.failed``, ...)."""
        self._cmds.append(ev.Journal(type_, step_id, message, data or {}))


# --------------------------------------------------------------- helpers


def _ms(ms: float) -> timedelta:
    return timedelta(milliseconds=ms)


def _error(
    type_: str, message: str, retryable: bool = False, details: Data | None = None
) -> StepError:
    return StepError(type_, message, retryable, details or None)


def _expr_error(step: Step, where: str, e: Exception) -> StepError:
    return _error(EXPRESSION_ERROR, f"step '{step.id}' {where}: {e}")


def _mapping(value: Any, scope: Data) -> Any:
    """A step's mapping evaluated on ``scope`` (no limits: see ``Execution._map``)."""
    if isinstance(value, str) and not is_expression(value) and has_interpolation(value):
        return compile_template(value).render(scope)
    return evaluate_mapping(value, scope)


def _branch_name(step: Step, index: int) -> str:
    if step.parallel is not None:
        return f"branch '{step.parallel.branches[index].name}'"
    return f"item {index}"


def _policy(spec: RetrySpec) -> RetryPolicy:
    return RetryPolicy(
        strategy=spec.strategy,
        max_retries=max(0, spec.max_attempts - 1),
        interval_ms=spec.interval_ms,
        backoff_rate=spec.backoff_rate,
        max_interval_ms=spec.max_interval_ms,
        jitter=spec.jitter,
    )


def _spread(*parts: object) -> float:
    """Deterministic jitter in [0, 1): the same execution replays the same delays."""
    return zlib.crc32("/".join(map(str, parts)).encode()) / 2**32


__all__ = ["EngineDefaults", "Execution"]
