"""Protobuf <-> domain conversions (the only coordinator module that builds messages
from domain values)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agentmesh import wire
from agentmesh.v1 import agent_pb2, types_pb2
from coordinator import domain as d
from coordinator.monitor.tracing import attempt_traceparent
from coordinator.secrets import Redactor, Secrets

AGENT_STATUS = {
    d.AgentStatus.ONLINE: types_pb2.AGENT_STATUS_ONLINE,
    d.AgentStatus.BUSY: types_pb2.AGENT_STATUS_BUSY,
    d.AgentStatus.OFFLINE: types_pb2.AGENT_STATUS_OFFLINE,
    d.AgentStatus.ERROR: types_pb2.AGENT_STATUS_ERROR,
    d.AgentStatus.DRAINING: types_pb2.AGENT_STATUS_DRAINING,
}
TASK_STATUS = {
    d.TaskStatus.PENDING: types_pb2.TASK_STATUS_PENDING,
    d.TaskStatus.ASSIGNED: types_pb2.TASK_STATUS_ASSIGNED,
    d.TaskStatus.RUNNING: types_pb2.TASK_STATUS_RUNNING,
    d.TaskStatus.COMPLETED: types_pb2.TASK_STATUS_COMPLETED,
    d.TaskStatus.FAILED: types_pb2.TASK_STATUS_FAILED,
    d.TaskStatus.CANCELLED: types_pb2.TASK_STATUS_CANCELLED,
}
TASK_STATUS_FROM_PB = {v: k for k, v in TASK_STATUS.items()}


ts = wire.to_timestamp
struct = wire.to_struct
value = wire.to_value
from_struct = wire.from_struct
from_value = wire.from_value


def failure(e: d.TaskFailure | None) -> types_pb2.TaskError | None:
    if e is None:
        return None
    return types_pb2.TaskError(
        type=e.type,
        message=e.message,
        retryable=e.retryable,
        details=struct(e.details) if e.details else None,
        stack=e.stack,
    )


def from_failure(e: types_pb2.TaskError) -> d.TaskFailure:
    return d.TaskFailure(
        type=e.type or "Error",
        message=e.message,
        retryable=e.retryable,
        details=from_struct(e.details) if e.HasField("details") else None,
        stack=e.stack,
    )


def capabilities(caps: Any) -> tuple[d.CapabilitySpec, ...]:
    return tuple(d.CapabilitySpec(c.name, c.description, c.version) for c in caps)


def agent_spec(hello: agent_pb2.Hello, namespace: str) -> d.AgentSpec:
    return d.AgentSpec(
        name=hello.name,
        type=hello.type,
        capabilities=capabilities(hello.capabilities),
        max_concurrency=hello.max_concurrency,
        labels=dict(hello.labels),
        sdk_version=hello.sdk_version,
        agent_id=hello.agent_id,
        session_secret=hello.session_secret,
        namespace=namespace,
    )


def agent_info(a: d.Agent) -> types_pb2.AgentInfo:
    return types_pb2.AgentInfo(
        id=a.id,
        name=a.name,
        type=a.type,
        status=AGENT_STATUS[a.status],
        capabilities=[c.name for c in a.capabilities],
        load_factor=a.load_factor,
        task_count=len(a.in_flight),
        success_rate=a.success_rate,
        average_task_duration_ms=a.average_task_duration_ms,
        last_seen_time=ts(a.last_seen_wall),
        max_concurrency=a.credits,
        labels=dict(a.labels),
        sdk_version=a.sdk_version,
        tasks_completed=a.completed,
        tasks_failed=a.failed,
        session_id=a.session_id,
        connected_time=ts(a.connected_at),
        transport=a.transport,
        namespace=a.namespace,
    )


def task_spec(
    t: types_pb2.Task, agent_id: str = "", namespace: str = d.DEFAULT_NAMESPACE
) -> d.TaskSpec:
    return d.TaskSpec(
        capability=t.capability,
        input=from_struct(t.input),
        name=t.name,
        timeout_ms=t.timeout_ms,
        idempotency_key=t.idempotency_key,
        max_retries=0 if t.no_retry else (t.max_retries or None),
        priority=t.priority,
        labels=dict(t.labels),
        execution_id=t.execution_id,
        step_id=t.step_id,
        agent_id=agent_id,
        namespace=namespace,
    )


def assignment(t: d.Task, redactor: Redactor | None = None) -> types_pb2.TaskAssignment:
    """The task as an answer shows it: with ``redactor``, its secrets (its execution's,
    and what its own input holds under secret names) redacted; without, as it is (for
    the agent that runs it: a polling agent's PollTasks)."""
    task_input: Any = t.input
    result = t.result
    error = t.error
    if redactor is not None:
        known = Secrets(set(t.secret_names), set(t.secret_values))
        redactor.discover(t.input, known)
        task_input, result = redactor.redact(t.input, known), redactor.redact(t.result, known)
        if error is not None:
            error = replace(
                error,
                message=redactor.redact_text(error.message, known),
                details=redactor.redact(error.details, known),
                stack=redactor.redact_text(error.stack, known),
            )
    return types_pb2.TaskAssignment(
        id=t.id,
        agent_id=t.agent_id,
        task_name=t.name,
        input=struct(task_input),
        status=TASK_STATUS[t.status],
        assigned_time=ts(t.assigned_at),
        start_time=ts(t.started_at),
        end_time=ts(t.ended_at),
        result=value(result) if t.status is d.TaskStatus.COMPLETED else None,
        error=failure(error),
        retry_count=t.retry_count,
        execution_id=t.execution_id,
        step_id=t.step_id,
        capability=t.capability,
        attempt=t.attempt,
        idempotency_key=t.idempotency_key,
        created_time=ts(t.created_at),
        progress=t.progress,
        progress_message=t.progress_message,
        namespace=t.namespace,
    )


def dispatch(t: d.Task) -> agent_pb2.TaskDispatch:
    return agent_pb2.TaskDispatch(
        task_id=t.id,
        attempt=t.attempt,
        capability=t.capability,
        input=struct(t.input),
        deadline=ts(t.deadline),
        idempotency_key=t.idempotency_key,
        name=t.name,
        execution_id=t.execution_id,
        step_id=t.step_id,
        labels=dict(t.labels),
        traceparent=attempt_traceparent(t) if t.trace is not None else "",
    )
