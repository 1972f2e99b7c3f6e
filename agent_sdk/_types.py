"""Values the SDK hands to its users (protobuf stays inside the SDK)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agentmesh import wire
from agentmesh.v1 import types_pb2

# What the protocol's fields hold (uint32, uint32, int32): checked before sending, so a
# value out of range is a ValueError naming the field, not protobuf's bare one.
_RANGES = (
    ("timeout_ms", 0, 2**32 - 1),
    ("max_retries", 0, 2**32 - 1),
    ("priority", -(2**31), 2**31 - 1),
)


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """A task to submit with ``Client.bulk_assign_tasks`` (``assign_task`` takes the
    same fields as arguments).  ``capability`` routes it; ``agent_id`` would pin it,
    but a bulk call cannot (ValueError there).  ValueError here when ``timeout_ms``,
    ``max_retries`` or ``priority`` is out of the protocol's range."""

    capability: str = ""
    input: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    agent_id: str = ""
    timeout_ms: int = 0
    idempotency_key: str = ""
    max_retries: int | None = None
    priority: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, low, high in _RANGES:
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}, got {value}")

    def to_proto(self) -> types_pb2.Task:
        """The task as the protocol's ``Task`` message."""
        return types_pb2.Task(
            name=self.name,
            capability=self.capability,
            input=wire.to_struct(dict(self.input)),
            timeout_ms=self.timeout_ms,
            idempotency_key=self.idempotency_key,
            max_retries=self.max_retries or 0,
            no_retry=self.max_retries == 0,
            priority=self.priority,
            labels=dict(self.labels),
        )


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """Why a task (or an execution) failed: the error ``type`` (e.g. the exception's
    class name), its ``message``, whether a retry may help, structured ``details``
    and the handler's ``stack`` (when it raised something other than TaskError)."""

    type: str
    message: str
    retryable: bool = False
    details: dict[str, Any] | None = None
    stack: str = ""

    @classmethod
    def from_proto(cls, e: types_pb2.TaskError) -> TaskFailure:
        """Read the protocol's ``TaskError``."""
        return cls(
            type=e.type,
            message=e.message,
            retryable=e.retryable,
            details=wire.from_struct(e.details) if e.HasField("details") else None,
            stack=e.stack,
        )


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """An agent as the coordinator sees it (``Client.list_agents`` and others)."""

    id: str
    name: str
    type: str
    status: str  # online | busy | offline | error | draining
    capabilities: list[str]
    load_factor: float
    task_count: int
    success_rate: float
    average_task_duration_ms: float
    last_seen_time: datetime | None
    max_concurrency: int
    labels: dict[str, str] = field(default_factory=dict)
    tasks_completed: int = 0
    tasks_failed: int = 0
    transport: str = ""
    namespace: str = ""

    @classmethod
    def from_proto(cls, a: types_pb2.AgentInfo) -> AgentInfo:
        """Read the protocol's ``AgentInfo``."""
        return cls(
            id=a.id,
            name=a.name,
            type=a.type,
            status=_enum_name(types_pb2.AgentStatus, a.status, "AGENT_STATUS_"),
            capabilities=list(a.capabilities),
            load_factor=a.load_factor,
            task_count=a.task_count,
            success_rate=a.success_rate,
            average_task_duration_ms=a.average_task_duration_ms,
            last_seen_time=wire.from_timestamp(a.last_seen_time),
            max_concurrency=a.max_concurrency,
            labels=dict(a.labels),
            tasks_completed=a.tasks_completed,
            tasks_failed=a.tasks_failed,
            transport=a.transport,
            namespace=a.namespace,
        )


@dataclass(frozen=True, slots=True)
class TaskAssignment:
    """The seed's TaskAssignment: a task and where it stands."""

    id: str
    agent_id: str
    task_name: str
    capability: str
    input: dict[str, Any]
    status: str  # pending | assigned | running | completed | failed | cancelled
    attempt: int
    retry_count: int
    result: Any = None
    error: TaskFailure | None = None
    created_time: datetime | None = None
    assigned_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    execution_id: str = ""
    step_id: str = ""
    idempotency_key: str = ""
    progress: float = 0.0
    progress_message: str = ""
    namespace: str = ""

    @property
    def finished(self) -> bool:
        """Whether the task reached its end: completed, failed or cancelled."""
        return self.status in ("completed", "failed", "cancelled")

    @classmethod
    def from_proto(cls, t: types_pb2.TaskAssignment) -> TaskAssignment:
        """Read the protocol's ``TaskAssignment``."""
        return cls(
            id=t.id,
            agent_id=t.agent_id,
            task_name=t.task_name,
            capability=t.capability,
            input=wire.from_struct(t.input),
            status=_enum_name(types_pb2.TaskStatus, t.status, "TASK_STATUS_"),
            attempt=t.attempt,
            retry_count=t.retry_count,
            result=wire.from_value(t.result) if t.HasField("result") else None,
            error=TaskFailure.from_proto(t.error) if t.HasField("error") else None,
            created_time=wire.from_timestamp(t.created_time),
            assigned_time=wire.from_timestamp(t.assigned_time),
            start_time=wire.from_timestamp(t.start_time),
            end_time=wire.from_timestamp(t.end_time),
            execution_id=t.execution_id,
            step_id=t.step_id,
            idempotency_key=t.idempotency_key,
            progress=t.progress,
            progress_message=t.progress_message,
            namespace=t.namespace,
        )


_EXEC_PREFIX = "EXECUTION_STATUS_"


@dataclass(frozen=True, slots=True)
class StepExecution:
    """A step of an execution that is under way (``Execution.current_steps``)."""

    step_id: str
    name: str
    type: str
    status: str
    attempt: int
    start_time: datetime | None
    # Why the step makes no progress, e.g. "no live agent advertises 'x'" ("" if not).
    waiting: str = ""


@dataclass(frozen=True, slots=True)
class Execution:
    """The seed's ExecutionContext: where a workflow execution stands."""

    id: str
    workflow_name: str
    workflow_version: str
    status: str  # queued | running | paused | completed | failed | cancelled
    start_time: datetime | None
    end_time: datetime | None
    input: Any
    output: Any
    variables: dict[str, Any]
    current_steps: list[StepExecution]
    error: TaskFailure | None
    metrics: dict[str, float]
    parent_execution_id: str = ""
    namespace: str = ""

    @property
    def finished(self) -> bool:
        """Whether the execution reached its end: completed, failed or cancelled."""
        return self.status in ("completed", "failed", "cancelled")

    @classmethod
    def from_proto(cls, e: Any) -> Execution:
        """Read the protocol's ``ExecutionContext``."""
        from agentmesh.v1 import workflow_pb2

        m = e.metrics
        return cls(
            id=e.id,
            workflow_name=e.workflow_name,
            workflow_version=e.workflow_version,
            status=_enum_name(workflow_pb2.ExecutionStatus, e.status, _EXEC_PREFIX),
            start_time=wire.from_timestamp(e.start_time),
            end_time=wire.from_timestamp(e.end_time),
            input=wire.from_value(e.input),
            output=wire.from_value(e.output) if e.HasField("output") else None,
            variables=wire.from_struct(e.variables),
            current_steps=[
                StepExecution(
                    s.step_id,
                    s.name,
                    s.type,
                    s.status,
                    s.attempt,
                    wire.from_timestamp(s.start_time),
                    s.waiting,
                )
                for s in e.current_steps
            ],
            error=TaskFailure.from_proto(e.error) if e.HasField("error") else None,
            metrics={
                "duration": m.duration_ms,
                "stepCount": m.step_count,
                "completedSteps": m.completed_steps,
                "taskCount": m.task_count,
                "errorCount": m.error_count,
                "retryCount": m.retry_count,
            },
            parent_execution_id=e.parent_execution_id,
            namespace=e.namespace,
        )


@dataclass(frozen=True, slots=True)
class CoordinatorInfo:
    """What ``Client.get_coordinator_info`` says of the coordinator answering."""

    version: str
    protocol_version: int
    coordinator_id: str
    store: str  # memory | sqlite | etcd
    start_time: datetime | None

    @classmethod
    def from_proto(cls, m: Any) -> CoordinatorInfo:
        """Read the protocol's ``CoordinatorInfo``."""
        return cls(
            version=m.version,
            protocol_version=m.protocol_version,
            coordinator_id=m.coordinator_id,
            store=m.store,
            start_time=wire.from_timestamp(m.start_time),
        )


#: Every execution status, in the order an execution can reach them.
STATUSES = ("queued", "running", "paused", "completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class ExecutionSummary:
    """One row of ``Client.list_executions``: an execution without its data."""

    id: str
    workflow_name: str
    workflow_version: str
    status: str  # one of STATUSES
    start_time: datetime | None
    end_time: datetime | None  # None while it runs
    current_step_ids: list[str]
    namespace: str = ""

    @property
    def finished(self) -> bool:
        """Whether the execution reached its end: completed, failed or cancelled."""
        return self.status in ("completed", "failed", "cancelled")

    @classmethod
    def from_proto(cls, e: Any) -> ExecutionSummary:
        """Read the protocol's ``ExecutionInfo``."""
        from agentmesh.v1 import workflow_pb2

        return cls(
            id=e.id,
            workflow_name=e.workflow_name,
            workflow_version=e.workflow_version,
            status=_enum_name(workflow_pb2.ExecutionStatus, e.status, _EXEC_PREFIX),
            start_time=wire.from_timestamp(e.start_time),
            end_time=wire.from_timestamp(e.end_time),
            current_step_ids=list(e.current_step_ids),
            namespace=e.namespace,
        )


@dataclass(frozen=True, slots=True)
class Trigger:
    """A trigger of a definition's latest version: an event one (``event``, ``filter``)
    or a schedule (``cron``, ``missed``, ``next_fire``)."""

    workflow: str
    index: int
    event: str = ""
    filter: str = ""
    cron: str = ""
    missed: str = ""
    next_fire: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventResult:
    """What ``trigger_event`` did: the waits it woke (``delivered``), the executions the
    definitions' triggers started for it (or had started for the same event id), and the
    triggers that matched but could not start (``"workflow: why"``)."""

    delivered: int
    started: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    """One entry of an execution's history."""

    sequence: int
    type: str
    time: datetime | None
    execution_id: str
    step_id: str
    message: str
    data: Any

    @classmethod
    def from_proto(cls, e: Any) -> ExecutionEvent:
        """Read the protocol's ``Event``."""
        return cls(
            e.sequence,
            e.type,
            wire.from_timestamp(e.time),
            e.execution_id,
            e.step_id,
            e.message,
            wire.from_value(e.data),
        )


@dataclass(frozen=True, slots=True)
class WorkflowInfo:
    """A workflow definition the coordinator holds (one version, and the others in
    ``versions`` where the call lists them)."""

    name: str
    version: str
    description: str = ""
    tags: list[str] = field(default_factory=list)
    step_count: int = 0
    versions: list[str] = field(default_factory=list)
    # From define_workflow / load_workflow: what validation warned of.
    warnings: list[ValidationIssue] = field(default_factory=list)
    namespace: str = ""


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One finding of validation: where (``location``), what, and how bad."""

    location: str
    message: str
    severity: str  # error | warning


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """``issues`` are the first ones (bounded); ``issue_count`` counts them all."""

    valid: bool
    issues: list[ValidationIssue]
    issue_count: int = 0
