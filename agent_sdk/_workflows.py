"""The workflow, execution and event methods of ``Client`` (a mixin)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent_sdk._errors import InvalidArgumentError
from agent_sdk._types import (
    STATUSES,
    EventResult,
    Execution,
    ExecutionEvent,
    ExecutionSummary,
    Trigger,
    ValidationIssue,
    ValidationResult,
    WorkflowInfo,
)
from agentmesh import wire
from agentmesh.documents import DocumentError, read_document
from agentmesh.v1 import integration_pb2, workflow_pb2


def read_definition(path: str | Path) -> dict[str, Any]:
    """A definition file (JSON or YAML) as a dict, read as the coordinator reads one
    (``agentmesh.documents``: size and expansion limits, no duplicate keys).
    InvalidArgumentError if it cannot be read or is refused."""
    try:
        return read_document(path)
    except OSError as e:
        raise InvalidArgumentError(f"cannot read {path}: {e.strerror}") from None
    except DocumentError as e:
        raise InvalidArgumentError(str(e)) from None


class WorkflowMethods:
    """Mixed into Client: ``self._workflows``, ``self._executions``, ``self._integration``
    stubs, ``self.timeout``, ``self._call`` and ``self._invoke`` come from there.

    Errors are ``Client``'s (an ``RpcError`` subclass), e.g. NotFoundError for an unknown
    workflow or execution.  Cancelling a method cancels its call; a change the
    coordinator already made stays made."""

    _workflows: Any
    _executions: Any
    _integration: Any
    timeout: float
    namespace: str

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError

    async def _invoke(self, method: Any, request: Any, timeout: float | None) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------ workflows

    async def define_workflow(
        self, name: str, definition: dict[str, Any], parameters: dict[str, Any] | None = None
    ) -> WorkflowInfo:
        """Register a definition (the seed's schema). A changed definition without
        an explicit version becomes the next version. For a template (a definition
        with ``parameters``), ``parameters`` fills its ``{{ placeholders }}``.
        InvalidArgumentError for an invalid definition (the message lists the issues).
        Cancelled, it may be defined all the same."""
        req = workflow_pb2.DefineWorkflowRequest(name=name, definition=wire.to_struct(definition))
        if parameters is not None:
            req.parameters.CopyFrom(wire.to_struct(parameters))
        w = await self._call(self._workflows.DefineWorkflow, req)
        warnings = [ValidationIssue(i.location, i.message, "warning") for i in w.warnings]
        return WorkflowInfo(
            w.name,
            w.version,
            w.description,
            list(w.tags),
            warnings=warnings,
            namespace=w.namespace or self.namespace,
        )

    async def load_workflow(
        self, path: str | Path, name: str = "", parameters: dict[str, Any] | None = None
    ) -> WorkflowInfo:
        """Read a local JSON/YAML definition (or template) file and define it, under
        ``name`` or its ``id``.  InvalidArgumentError when the file cannot be read or is
        refused; otherwise as ``define_workflow`` (cancelling it too)."""
        data = read_definition(path)
        return await self.define_workflow(name or str(data.get("id") or ""), data, parameters)

    async def get_workflow(self, name: str, version: str = "") -> dict[str, Any]:
        """A definition (the latest version unless ``version``); NotFoundError if there
        is none.  Cancelling it cancels the call."""
        w = await self._call(
            self._workflows.GetWorkflow, workflow_pb2.GetWorkflowRequest(name=name, version=version)
        )
        return wire.from_struct(w.definition)

    async def save_workflow(self, name: str, version: str = "", path: str = "") -> str:
        """Write a defined workflow into the coordinator's workflowDir; returns the path.
        Cancelled, the file may be written all the same."""
        r = await self._call(
            self._workflows.SaveWorkflow,
            workflow_pb2.SaveWorkflowRequest(name=name, version=version, path=path),
        )
        return str(r.path)

    async def list_workflows(self) -> list[WorkflowInfo]:
        """Every defined workflow, with its versions.  Cancelling it cancels the call."""
        r = await self._call(self._workflows.ListWorkflows, workflow_pb2.ListWorkflowsRequest())
        return [
            WorkflowInfo(
                w.name,
                w.version,
                w.description,
                list(w.tags),
                w.step_count,
                list(w.versions),
                namespace=self.namespace,
            )
            for w in r.workflows
        ]

    async def validate_workflow(
        self, definition: dict[str, Any] | None = None, *, name: str = ""
    ) -> ValidationResult:
        """Validate ``definition``, or the defined workflow ``name``, without defining
        anything: an invalid one is a result, not an error (InvalidArgumentError when
        neither is given).  Cancelling it cancels the call."""
        req = workflow_pb2.ValidateWorkflowRequest(name=name)
        if definition is not None:
            req.definition.CopyFrom(wire.to_struct(definition))
        r = await self._call(self._workflows.ValidateWorkflow, req)
        issues = [
            ValidationIssue(i.location, i.message, "warning" if i.severity == 2 else "error")
            for i in r.issues
        ]
        return ValidationResult(bool(r.valid), issues, max(r.issue_count, len(issues)))

    async def delete_workflow(self, name: str, version: str = "") -> None:
        """Delete a workflow (one ``version``, or all); NotFoundError if there is none.
        Cancelled, it may be deleted all the same."""
        await self._call(
            self._workflows.DeleteWorkflow,
            workflow_pb2.DeleteWorkflowRequest(name=name, version=version),
        )

    # ----------------------------------------------------------- executions

    async def start_workflow(
        self,
        workflow_name: str,
        input: Any = None,
        *,
        version: str = "",
        idempotency_key: str = "",
    ) -> Execution:
        """Start an execution of a defined workflow (the latest version unless
        ``version``) on ``input``.  A second start with the same ``idempotency_key``
        returns the first execution.  NotFoundError for an unknown workflow,
        InvalidArgumentError for input its schema refuses.  Cancelled, it may be started
        all the same: an ``idempotency_key`` makes a retry safe."""
        req = workflow_pb2.StartWorkflowRequest(
            workflow_name=workflow_name,
            input=wire.to_value(input if input is not None else {}),
            version=version,
            idempotency_key=idempotency_key,
        )
        return Execution.from_proto(await self._call(self._executions.StartWorkflow, req))

    async def resume_workflow(self, execution_id: str, input: Any = None) -> Execution:
        """Resume a paused execution (with ``input``, if given); FailedPreconditionError
        in any other state.  Cancelled, it may be resumed all the same."""
        req = workflow_pb2.ResumeWorkflowRequest(execution_id=execution_id)
        if input is not None:
            req.input.CopyFrom(wire.to_value(input))
        return Execution.from_proto(await self._call(self._executions.ResumeWorkflow, req))

    async def pause_workflow(self, execution_id: str) -> Execution:
        """Pause a running execution; FailedPreconditionError in any other state.
        Cancelled, it may be paused all the same."""
        req = workflow_pb2.PauseWorkflowRequest(execution_id=execution_id)
        return Execution.from_proto(await self._call(self._executions.PauseWorkflow, req))

    async def stop_workflow(self, execution_id: str, reason: str = "") -> Execution:
        """Stop (cancel) an unfinished execution; FailedPreconditionError once it
        finished.  Cancelled, it may be stopped all the same."""
        req = workflow_pb2.StopWorkflowRequest(execution_id=execution_id, reason=reason)
        return Execution.from_proto(await self._call(self._executions.StopWorkflow, req))

    async def get_execution_status(self, execution_id: str) -> Execution:
        """Where an execution stands; NotFoundError for an unknown id.  Cancelling it
        cancels the call."""
        req = workflow_pb2.GetExecutionStatusRequest(execution_id=execution_id)
        return Execution.from_proto(await self._call(self._executions.GetExecutionStatus, req))

    async def wait_execution(self, execution_id: str, timeout: float | None = None) -> Execution:
        """Wait until the execution finishes (or ``timeout`` seconds pass; None: no
        limit) and return it, finished or not.  NotFoundError for an unknown id.
        Cancelling it stops waiting; the execution goes on."""
        req = workflow_pb2.WaitExecutionRequest(
            execution_id=execution_id, timeout_ms=int((timeout or 0) * 1000)
        )
        rpc_timeout = None if timeout is None else timeout + self.timeout
        r = await self._invoke(self._executions.WaitExecution, req, rpc_timeout)
        return Execution.from_proto(r)

    async def list_active_executions(self, workflow_name: str = "") -> list[dict[str, Any]]:
        """The executions not finished yet, as the seed's dicts (``id``,
        ``workflowName``, ``status``, ``startTime``, ``currentSteps``); see
        ``list_executions`` for typed rows.  Cancelling it cancels the call."""
        req = workflow_pb2.ListActiveExecutionsRequest(workflow_name=workflow_name)
        r = await self._call(self._executions.ListActiveExecutions, req)
        return [
            {
                "id": e.id,
                "workflowName": e.workflow_name,
                "status": workflow_pb2.ExecutionStatus.Name(e.status)
                .removeprefix("EXECUTION_STATUS_")
                .lower(),
                "startTime": wire.from_timestamp(e.start_time),
                "currentSteps": list(e.current_step_ids),
            }
            for e in r.executions
        ]

    async def list_executions(
        self,
        workflow_name: str = "",
        statuses: Sequence[str] = (),
        limit: int = 50,
        *,
        query: str = "",
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        parent_id: str = "",
    ) -> list[ExecutionSummary]:
        """Executions of any status, newest first: the first page of
        ``iter_executions`` (same filters), at most ``limit`` rows. ValueError names an
        unknown status; InvalidArgumentError for a ``limit`` over the coordinator's.
        Cancelling it cancels the call."""
        req = _listing(
            workflow_name, statuses, limit, query, started_after, started_before, parent_id
        )
        r = await self._call(self._executions.ListExecutions, req)
        return [ExecutionSummary.from_proto(e) for e in r.executions]

    async def iter_executions(
        self,
        workflow_name: str = "",
        statuses: Sequence[str] = (),
        *,
        page_size: int = 200,
        query: str = "",
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        parent_id: str = "",
    ) -> AsyncIterator[ExecutionSummary]:
        """Every execution that matches, newest first, a page of ``page_size`` per call:
        ``statuses`` such as ``"running"``, ``"failed"`` (empty: all); ``query`` a
        case-insensitive substring of the id or the input as JSON; ``started_after``
        and ``started_before`` bound the start time (open); ``parent_id`` keeps the
        children of one execution. Executions started while it pages come first on a
        later listing, never twice in this one. Cancelling it (or leaving the loop)
        cancels the call in flight."""
        req = _listing(
            workflow_name, statuses, page_size, query, started_after, started_before, parent_id
        )
        while True:
            r = await self._call(self._executions.ListExecutions, req)
            for e in r.executions:
                yield ExecutionSummary.from_proto(e)
            if not r.next_page_token:
                return
            req.page_token = r.next_page_token

    async def get_execution_history(
        self, execution_id: str, after_sequence: int = 0
    ) -> list[ExecutionEvent]:
        """An execution's history, oldest first, after ``after_sequence``; NotFoundError
        for an unknown id.  Cancelling it cancels the call."""
        req = workflow_pb2.GetExecutionHistoryRequest(
            execution_id=execution_id, after_sequence=after_sequence
        )
        r = await self._call(self._executions.GetExecutionHistory, req)
        return [ExecutionEvent.from_proto(e) for e in r.events]

    async def trigger_event(
        self,
        event: str,
        payload: dict[str, Any] | None = None,
        correlation_key: str = "",
        *,
        event_id: str = "",
    ) -> EventResult:
        """Deliver an event to the executions waiting on it (a wait that names a
        correlation key takes only an event with that ``correlation_key``) and start the
        workflows whose ``triggers`` it matches, once per ``event_id`` (a retry with the
        same id starts nothing more; "" is a fresh id).  Returns how many waits got it and
        what it started.  Cancelled, it may be delivered all the same."""
        req = integration_pb2.TriggerEventRequest(
            event=event,
            payload=wire.to_struct(payload or {}),
            correlation_key=correlation_key,
            event_id=event_id,
        )
        r = await self._call(self._integration.TriggerEvent, req)
        return EventResult(int(r.delivered), list(r.started), list(r.refused))

    async def list_triggers(self) -> list[Trigger]:
        """The triggers of the namespace's latest definitions (events, and schedules with
        their next fire time), by workflow.  Cancelling it cancels the call."""
        r = await self._call(self._integration.ListTriggers, integration_pb2.ListTriggersRequest())
        return [
            Trigger(
                t.workflow,
                t.index,
                t.event,
                t.filter,
                t.cron,
                t.missed,
                t.next_fire.ToDatetime(tzinfo=UTC) if t.HasField("next_fire") else None,
            )
            for t in r.triggers
        ]


def _listing(
    workflow_name: str,
    statuses: Sequence[str],
    limit: int,
    query: str,
    started_after: datetime | None,
    started_before: datetime | None,
    parent_id: str,
) -> workflow_pb2.ListExecutionsRequest:
    """A ListExecutionsRequest; ValueError names an unknown status."""
    codes: list[Any] = []  # enum numbers (the stubs type Value() as int)
    for s in statuses:
        try:
            codes.append(workflow_pb2.ExecutionStatus.Value(f"EXECUTION_STATUS_{s.upper()}"))
        except ValueError:
            known = ", ".join(STATUSES)
            raise ValueError(f"unknown execution status {s!r} (one of {known})") from None
    req = workflow_pb2.ListExecutionsRequest(
        workflow_name=workflow_name,
        statuses=codes,
        limit=limit,
        query=query,
        parent_execution_id=parent_id,
    )
    if started_after is not None:
        req.started_after.FromDatetime(started_after)
    if started_before is not None:
        req.started_before.FromDatetime(started_before)
    return req
