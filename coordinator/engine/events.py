"""What goes into the engine core (inputs) and what comes out (commands, journal).

An execution's durable history is the sequence of its *inputs* (facts from the
outside world, each carrying its time) interleaved with the *journal* the core
wrote while applying them. Replaying the inputs through the core rebuilds the
state exactly: the core reads no clock and no randomness of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, ClassVar

Data = dict[str, Any]  # JSON-like values; the engine never sees protobuf


@dataclass(frozen=True, slots=True)
class StepError:
    """Why a task, a step, a branch or an execution failed: the engine's one error shape.

    ``type`` is a short name (``TIMEOUT``, ``AGENT_LOST``, ``ExpressionError``, or an
    agent's own), ``retryable`` says whether trying again may help, ``details`` is any
    JSON, and ``step_id`` is the step it failed in ("" until the engine knows).
    ``to_data()`` is how it is persisted and what expressions see as ``$.error``:
    ``{"type", "message", "retryable"[, "details"][, "stepId"]}``.
    """

    type: str
    message: str = ""
    retryable: bool = False
    details: Any = None
    step_id: str = ""

    def at(self, step_id: str) -> StepError:
        """This error, as failed in ``step_id``."""
        return replace(self, step_id=step_id)

    def to_data(self) -> Data:
        """The persisted form, and what expressions see as ``$.error``."""
        out: Data = {"type": self.type, "message": self.message, "retryable": self.retryable}
        if self.details:
            out["details"] = self.details
        if self.step_id:
            out["stepId"] = self.step_id
        return out

    @staticmethod
    def from_data(data: Mapping[str, Any] | None) -> StepError:
        """An error from its persisted (or an agent's) form; tolerant of odd types."""
        data = data or {}
        return StepError(
            type=str(data.get("type", "")),
            message=str(data.get("message", "")),
            retryable=bool(data.get("retryable", False)),
            details=data.get("details"),
            step_id=str(data.get("stepId", "")),
        )


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Input:
    """A fact from outside the core, with the time it happened: the history is made of these."""

    TYPE: ClassVar[str] = ""
    time: datetime


@dataclass(frozen=True, slots=True)
class Started(Input):
    """The execution starts with ``input`` (its ``context`` says who started it)."""

    TYPE: ClassVar[str] = "ExecutionStarted"
    workflow: str = ""
    version: str = ""
    input: Any = None
    # parent_id, parent_key, and for error-handler runs the failed run's
    # error / workflowName / executionId / stepId.
    context: Data = field(default_factory=dict)
    # The caller's key for this start: persisted so that a coordinator that
    # recovers the execution (after a restart or a failover) still knows it.
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class TaskCompleted(Input):
    """The task the engine dispatched under ``key`` completed with ``output``."""

    TYPE: ClassVar[str] = "TaskCompleted"
    key: str = ""
    output: Any = None
    agent_id: str = ""


@dataclass(frozen=True, slots=True)
class TaskFailed(Input):
    """The task under ``key`` failed with ``error`` (its last attempt, as the mesh saw it)."""

    TYPE: ClassVar[str] = "TaskFailed"
    key: str = ""
    error: StepError = field(default_factory=lambda: StepError(""))
    agent_id: str = ""


@dataclass(frozen=True, slots=True)
class TaskWaiting(Input):
    """The task ``key`` is queued and no live agent can take it: ``reason`` says why
    (no live agent advertises ``capability``, or its pinned agent is not connected)."""

    TYPE: ClassVar[str] = "TaskWaiting"
    key: str = ""
    reason: str = ""
    task_id: str = ""
    capability: str = ""


@dataclass(frozen=True, slots=True)
class TaskUnblocked(Input):
    """The task ``key`` no longer waits for an agent: ``agent_id`` (which advertises
    ``capability``) joined or came back."""

    TYPE: ClassVar[str] = "TaskUnblocked"
    key: str = ""
    agent_id: str = ""
    task_id: str = ""
    capability: str = ""


@dataclass(frozen=True, slots=True)
class TimerFired(Input):
    """The timer started under ``key`` fired (a retry delay, a timeout, a wait step)."""

    TYPE: ClassVar[str] = "TimerFired"
    key: str = ""


@dataclass(frozen=True, slots=True)
class EventReceived(Input):
    """An event ``name`` with ``payload`` ended the wait under ``key``."""

    TYPE: ClassVar[str] = "EventReceived"
    key: str = ""
    name: str = ""
    payload: Any = None


@dataclass(frozen=True, slots=True)
class ChildFinished(Input):
    """The child execution started under ``key`` ended with ``status``."""

    TYPE: ClassVar[str] = "ChildFinished"
    key: str = ""
    child_id: str = ""
    status: str = ""  # completed | failed | cancelled
    output: Any = None
    error: StepError | None = None


@dataclass(frozen=True, slots=True)
class PauseRequested(Input):
    """An operator paused the execution: steps in flight finish, no new ones start."""

    TYPE: ClassVar[str] = "PauseRequested"


@dataclass(frozen=True, slots=True)
class ResumeRequested(Input):
    """An operator resumed it; ``input`` (an object) is merged into its variables."""

    TYPE: ClassVar[str] = "ResumeRequested"
    input: Any = None


@dataclass(frozen=True, slots=True)
class StopRequested(Input):
    """An operator stopped it: everything in flight is cancelled, the status is cancelled."""

    TYPE: ClassVar[str] = "StopRequested"
    reason: str = ""


#: The inputs that bring values from outside (a request, an agent, an event): what may
#: name new secrets (coordinator.secrets.Redactor.discover).
CARRIES_PAYLOAD = (
    Started,
    TaskCompleted,
    TaskFailed,
    EventReceived,
    ChildFinished,
    ResumeRequested,
)

INPUT_TYPES: dict[str, type[Input]] = {
    cls.TYPE: cls
    for cls in (
        Started,
        TaskCompleted,
        TaskFailed,
        TaskWaiting,
        TaskUnblocked,
        TimerFired,
        EventReceived,
        ChildFinished,
        PauseRequested,
        ResumeRequested,
        StopRequested,
    )
}


def input_to_data(event: Input) -> Data:
    """The persisted form of an input (its time travels separately). Shallow:
    the store serializes it at once, and inputs are never mutated."""
    out = {name: getattr(event, name) for name in _FIELDS[type(event)]}
    if isinstance(out.get("error"), StepError):
        out["error"] = out["error"].to_data()
    return out


_FIELDS: dict[type[Input], tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls) if f.name != "time") for cls in INPUT_TYPES.values()
}


def input_from_data(type_: str, time: datetime, data: Data) -> Input:
    cls = INPUT_TYPES[type_]
    names = {f.name for f in fields(cls)} - {"time"}
    kwargs = {k: v for k, v in data.items() if k in names}
    if "error" in kwargs and (kwargs["error"] is not None or cls is TaskFailed):
        kwargs["error"] = StepError.from_data(kwargs["error"])
    return cls(time=time, **kwargs)


# -------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Command:
    """An effect the core asks for; the runtime carries it out after the turn commits."""

    pass


@dataclass(frozen=True, slots=True)
class Gate:
    """A flow-control gate a dispatch passes (``engine.gates``): a concurrency ``limit``
    or a rate (``per_second``, ``burst``) on the slot (``group``, ``key``)."""

    group: str
    key: str
    limit: int = 0
    per_second: float = 0.0
    burst: int = 1


@dataclass(frozen=True, slots=True)
class DispatchTask(Command):
    """Submit a task for ``capability`` (pinned to ``agent`` if set) under ``key``."""

    key: str
    step_id: str
    capability: str
    input: Data
    agent: str = ""
    timeout_ms: int | None = None
    idempotency_key: str = ""
    gates: tuple[Gate, ...] = ()
    # The step has a fallback: while the capability's breaker is open, fail the task
    # with CapabilityUnavailable at once (the core then runs the fallback).
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class CancelTask(Command):
    """Cancel the task under ``key``."""

    key: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CallService(Command):
    """Call ``operation`` of the external ``service`` with ``params`` under ``key``;
    its answer comes back as ``TaskCompleted`` (the decoded body) or ``TaskFailed``.
    ``timeout_ms`` (0: the service's own) bounds the call, its retries included."""

    key: str
    step_id: str
    service: str
    operation: str
    params: Data
    timeout_ms: int = 0
    gates: tuple[Gate, ...] = ()


@dataclass(frozen=True, slots=True)
class CancelServiceCall(Command):
    """Abandon the service call under ``key``."""

    key: str


@dataclass(frozen=True, slots=True)
class StartTimer(Command):
    """Fire ``TimerFired(key)`` at ``fire_at``."""

    key: str
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class CancelTimer(Command):
    """Disarm the timer under ``key``."""

    key: str


@dataclass(frozen=True, slots=True)
class AwaitEvent(Command):
    """Deliver the next event ``name`` (matching ``correlation_key``, if set) to ``key``."""

    key: str
    name: str
    correlation_key: str = ""


@dataclass(frozen=True, slots=True)
class CancelEventWait(Command):
    """Stop waiting for the event under ``key``."""

    key: str


@dataclass(frozen=True, slots=True)
class StartChild(Command):
    """Start an execution of ``workflow`` with ``input`` as a child under ``key``."""

    key: str
    workflow: str
    version: str
    input: Any
    context: Data = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CancelChild(Command):
    """Stop the child execution under ``key``."""

    key: str


@dataclass(frozen=True, slots=True)
class Finished(Command):
    """The execution reached a final status; the runtime updates its index and
    tells a parent (ChildFinished) if it has one."""

    status: str
    output: Any = None
    error: StepError | None = None


@dataclass(frozen=True, slots=True)
class Journal:
    """A history entry for people: ``type`` like ``step.completed``."""

    type: str
    step_id: str = ""
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
