"""WorkflowService and ExecutionService."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from agentmesh import wire
from agentmesh.v1 import (
    types_pb2,
    workflow_pb2,
    workflow_pb2_grpc,
)
from coordinator.api.listing import encode_token, listing_of
from coordinator.api.scope import namespace_of
from coordinator.api.status import mapped
from coordinator.engine.catalog import Catalog
from coordinator.engine.definition import Issue
from coordinator.engine.events import StepError
from coordinator.engine.issues import cap_issues
from coordinator.engine.live import Live
from coordinator.engine.model import WorkflowDefinition
from coordinator.engine.runtime import WorkflowRuntime
from coordinator.errors import InvalidArgument
from coordinator.secrets import Redactor, Secrets
from coordinator.store import StoredEvent, WorkflowRecord

EXECUTION_STATUS = {
    "queued": workflow_pb2.EXECUTION_STATUS_QUEUED,
    "pending": workflow_pb2.EXECUTION_STATUS_QUEUED,
    "running": workflow_pb2.EXECUTION_STATUS_RUNNING,
    "paused": workflow_pb2.EXECUTION_STATUS_PAUSED,
    "completed": workflow_pb2.EXECUTION_STATUS_COMPLETED,
    "failed": workflow_pb2.EXECUTION_STATUS_FAILED,
    "cancelled": workflow_pb2.EXECUTION_STATUS_CANCELLED,
}
SEVERITY = {
    "error": workflow_pb2.ValidationIssue.SEVERITY_ERROR,
    "warning": workflow_pb2.ValidationIssue.SEVERITY_WARNING,
}
MAX_WAIT_MS = 3_600_000
STATUS_NAME = {code: name for name, code in EXECUTION_STATUS.items() if name != "pending"}
FINISHED = frozenset({"completed", "failed", "cancelled"})


def _error(
    error: StepError | None, redactor: Redactor, secrets: Secrets
) -> types_pb2.TaskError | None:
    if error is None:
        return None
    # The wire's details carry the rest of the error: its details and the step it
    # failed in ({"details": ..., "stepId": ...}), as $.error shows them.
    rest = {k: v for k, v in error.to_data().items() if k not in ("type", "message", "retryable")}
    rest = redactor.redact(rest, secrets)
    return types_pb2.TaskError(
        type=error.type,
        message=redactor.redact_text(error.message, secrets),
        retryable=error.retryable,
        details=wire.to_struct(rest) if rest else None,
    )


def issue_msg(issue: Issue) -> workflow_pb2.ValidationIssue:
    return workflow_pb2.ValidationIssue(
        location=issue.location, message=issue.message, severity=SEVERITY[issue.severity]
    )


def workflow_msg(
    defn: WorkflowDefinition, namespace: str, created: datetime | None = None
) -> workflow_pb2.Workflow:
    return workflow_pb2.Workflow(
        namespace=namespace,
        name=defn.name,
        version=defn.version,
        definition=wire.to_struct(dict(defn.source)),
        created_time=wire.to_timestamp(created),
        description=defn.description,
        tags=list(defn.tags),
    )


def execution_msg(live: Live, redactor: Redactor) -> workflow_pb2.ExecutionContext:
    """The execution as shown: its secrets redacted (coordinator.secrets)."""
    ex = live.ex
    secrets = live.secrets
    end = ex.end_time or datetime.now(UTC)
    duration = (end - ex.start_time).total_seconds() * 1000 if ex.start_time else 0.0
    steps = []
    for run in ex.current_runs():
        step = ex.defn.step(run.step_id)
        steps.append(
            workflow_pb2.StepExecution(
                step_id=step.id,
                name=step.name,
                type=step.type,
                status="retrying" if run.retry_timer else "running",
                start_time=wire.to_timestamp(run.started),
                attempt=run.attempt,
                waiting=ex.waiting_reason(run.waiting) if run.waiting else "",
            )
        )
    m = ex.metrics
    status = live.status
    return workflow_pb2.ExecutionContext(
        id=ex.id,
        workflow_name=ex.defn.name,
        workflow_version=ex.defn.version,
        status=EXECUTION_STATUS.get(status, workflow_pb2.EXECUTION_STATUS_UNSPECIFIED),
        start_time=wire.to_timestamp(ex.start_time or live.record.created),
        end_time=wire.to_timestamp(ex.end_time),
        input=wire.to_value(redactor.redact(ex.input, secrets)),
        output=(
            wire.to_value(redactor.redact(ex.output, secrets)) if ex.status == "completed" else None
        ),
        current_steps=steps,
        variables=wire.to_struct(redactor.redact(ex.variables, secrets)),
        error=_error(ex.error, redactor, secrets),
        metrics=workflow_pb2.ExecutionMetrics(
            duration_ms=duration,
            step_count=m.step_count,
            completed_steps=m.completed_steps,
            task_count=m.task_count,
            error_count=m.error_count,
            retry_count=m.retry_count,
        ),
        parent_execution_id=live.record.parent_id,
        namespace=live.record.namespace,
    )


def event_msg(
    e: StoredEvent, redactor: Redactor, workflow_name: str = "", known: Secrets | None = None
) -> workflow_pb2.Event:
    """A history entry as shown: what was sealed, secret fields and the ``known``
    secret values of its execution, as the marker."""
    data = redactor.redact(e.data, known)
    raw = data.get("error")
    err = StepError.from_data(raw) if isinstance(raw, dict) else None
    return workflow_pb2.Event(
        sequence=e.seq,
        type=e.type,
        time=wire.to_timestamp(e.time),
        execution_id=e.execution_id,
        workflow_name=workflow_name,
        step_id=str(data.pop("stepId", "") or ""),
        task_id=str(data.get("taskId", "") or ""),
        message=str(data.pop("message", "") or ""),
        data=wire.to_value(data),
        error=_error(err, redactor, known or Secrets()),
    )


class WorkflowService(workflow_pb2_grpc.WorkflowServiceServicer):
    """``WorkflowService``: definitions in the catalog (define, load a template, save,
    get, list, validate, delete). Methods are ``mapped``."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    @mapped
    async def DefineWorkflow(
        self, request: workflow_pb2.DefineWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.Workflow:
        if not request.HasField("definition"):
            raise InvalidArgument("definition is required")
        params = wire.from_struct(request.parameters) if request.HasField("parameters") else None
        namespace = namespace_of(context)
        defn, warnings = await self._catalog.define(
            request.name, wire.from_struct(request.definition), params, namespace
        )
        msg = workflow_msg(defn, namespace)
        msg.warnings.extend(issue_msg(i) for i in cap_issues(warnings)[0])
        return msg

    @mapped
    async def LoadWorkflow(
        self, request: workflow_pb2.LoadWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.Workflow:
        if not request.path:
            raise InvalidArgument("path is required")
        namespace = namespace_of(context)
        return workflow_msg(await self._catalog.load_workflow(request.path, namespace), namespace)

    @mapped
    async def SaveWorkflow(
        self, request: workflow_pb2.SaveWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.SaveWorkflowResponse:
        path = await self._catalog.save_workflow(
            request.name, request.version, request.path, namespace_of(context)
        )
        return workflow_pb2.SaveWorkflowResponse(path=path)

    @mapped
    async def GetWorkflow(
        self, request: workflow_pb2.GetWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.Workflow:
        namespace = namespace_of(context)
        defn = await self._catalog.get_workflow(request.name, request.version, namespace)
        return workflow_msg(defn, namespace)

    @mapped
    async def ListWorkflows(
        self, request: workflow_pb2.ListWorkflowsRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.ListWorkflowsResponse:
        namespace = namespace_of(context)
        by_name: dict[str, list[WorkflowRecord]] = {}
        for r in await self._catalog.list_workflows(namespace):
            by_name.setdefault(r.name, []).append(r)
        out = []
        for name, records in sorted(by_name.items()):
            latest = records[-1]
            defn = await self._catalog.get_workflow(name, latest.version, namespace)
            if request.tag and request.tag not in defn.tags:
                continue
            out.append(
                workflow_pb2.WorkflowInfo(
                    name=name,
                    version=latest.version,
                    description=defn.description,
                    tags=list(defn.tags),
                    step_count=len(defn.all_steps),
                    versions=[r.version for r in records],
                )
            )
        return workflow_pb2.ListWorkflowsResponse(workflows=out)

    @mapped
    async def ValidateWorkflow(
        self, request: workflow_pb2.ValidateWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.ValidationResult:
        namespace = namespace_of(context)
        if request.HasField("definition"):
            source = wire.from_struct(request.definition)
            issues = await self._catalog.check_definition(source, request.name, namespace)
        elif request.name:
            defn = await self._catalog.get_workflow(request.name, "", namespace)
            issues = await self._catalog.validate(defn, namespace)
        else:
            raise InvalidArgument("give a definition or the name of a defined workflow")
        shown, total = cap_issues(issues)
        return workflow_pb2.ValidationResult(
            valid=not any(i.severity == "error" for i in issues),
            issues=[issue_msg(i) for i in shown],
            issue_count=total,
        )

    @mapped
    async def DeleteWorkflow(
        self, request: workflow_pb2.DeleteWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.DeleteWorkflowResponse:
        await self._catalog.delete_workflow(request.name, request.version, namespace_of(context))
        return workflow_pb2.DeleteWorkflowResponse()


class ExecutionService(workflow_pb2_grpc.ExecutionServiceServicer):
    """``ExecutionService``: executions in the runtime (start, pause, resume, stop,
    status, history, wait, list). Methods are ``mapped``; a waiting call that is
    cancelled stops waiting and leaves the execution as it is."""

    def __init__(self, runtime: WorkflowRuntime) -> None:
        self._rt = runtime

    @mapped
    async def StartWorkflow(
        self, request: workflow_pb2.StartWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.ExecutionContext:
        if not request.workflow_name:
            raise InvalidArgument("workflow_name is required")
        value = wire.from_value(request.input) if request.HasField("input") else {}
        live = await self._rt.start_workflow(
            request.workflow_name,
            value,
            request.version,
            request.idempotency_key,
            namespace=namespace_of(context),
        )
        return execution_msg(live, self._rt.redactor)

    @mapped
    async def ResumeWorkflow(
        self, request: workflow_pb2.ResumeWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.ExecutionContext:
        value = wire.from_value(request.input) if request.HasField("input") else None
        return execution_msg(
            await self._rt.resume(request.execution_id, value, namespace_of(context)),
            self._rt.redactor,
        )

    @mapped
    async def PauseWorkflow(
        self, request: workflow_pb2.PauseWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.ExecutionContext:
        return execution_msg(
            await self._rt.pause(request.execution_id, namespace_of(context)), self._rt.redactor
        )

    @mapped
    async def StopWorkflow(
        self, request: workflow_pb2.StopWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.ExecutionContext:
        return execution_msg(
            await self._rt.stop_execution(
                request.execution_id, request.reason, namespace_of(context)
            ),
            self._rt.redactor,
        )

    @mapped
    async def GetExecutionStatus(
        self, request: workflow_pb2.GetExecutionStatusRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.ExecutionContext:
        return execution_msg(
            await self._rt.lookup(request.execution_id, namespace_of(context)), self._rt.redactor
        )

    @mapped
    async def WaitExecution(
        self, request: workflow_pb2.WaitExecutionRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.ExecutionContext:
        if request.timeout_ms > MAX_WAIT_MS:
            raise InvalidArgument(f"timeout_ms must be at most {MAX_WAIT_MS}")
        timeout = request.timeout_ms / 1000 if request.timeout_ms else None
        return execution_msg(
            await self._rt.wait(request.execution_id, timeout, namespace_of(context)),
            self._rt.redactor,
        )

    @mapped
    async def ListActiveExecutions(
        self, request: workflow_pb2.ListActiveExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.ListActiveExecutionsResponse:
        out = []
        for live in self._rt.active(namespace_of(context)):
            ex = live.ex
            if request.workflow_name and ex.defn.name != request.workflow_name:
                continue
            status = live.status
            out.append(
                workflow_pb2.ExecutionInfo(
                    id=ex.id,
                    workflow_name=ex.defn.name,
                    status=EXECUTION_STATUS.get(status, workflow_pb2.EXECUTION_STATUS_UNSPECIFIED),
                    start_time=wire.to_timestamp(ex.start_time or live.record.created),
                    current_step_ids=[r.step_id for r in ex.current_runs()],
                    namespace=live.record.namespace,
                )
            )
        return workflow_pb2.ListActiveExecutionsResponse(executions=out)

    @mapped
    async def ListExecutions(
        self, request: workflow_pb2.ListExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.ListExecutionsResponse:
        asked = listing_of(request, STATUS_NAME)
        # One row more than the page: whether there is a next page, without a second query.
        rows = await self._rt.listing(
            asked.workflow_name,
            asked.statuses,
            asked.limit + 1,
            namespace_of(context),
            asked.where,
        )
        more = len(rows) > asked.limit
        rows = rows[: asked.limit]
        out = []
        for record, live in rows:
            info = workflow_pb2.ExecutionInfo(
                id=record.id,
                workflow_name=record.workflow_name,
                workflow_version=record.workflow_version,
                status=EXECUTION_STATUS.get(
                    record.status, workflow_pb2.EXECUTION_STATUS_UNSPECIFIED
                ),
                start_time=wire.to_timestamp(record.created),
                namespace=record.namespace,
            )
            if live is not None and not live.ex.finished:
                info.current_step_ids.extend(r.step_id for r in live.ex.current_runs())
            if record.status in FINISHED:  # the index row's last update is the end
                info.end_time.FromDatetime(record.updated)
            out.append(info)
        token = encode_token(rows[-1][0]) if more else ""
        return workflow_pb2.ListExecutionsResponse(executions=out, next_page_token=token)

    @mapped
    async def GetExecutionHistory(
        self, request: workflow_pb2.GetExecutionHistoryRequest, context: grpc.aio.ServicerContext
    ) -> workflow_pb2.GetExecutionHistoryResponse:
        events = await self._rt.history(
            request.execution_id, request.after_sequence, namespace_of(context)
        )
        known = self._rt.secrets_of(request.execution_id)
        return workflow_pb2.GetExecutionHistoryResponse(
            events=[event_msg(e, self._rt.redactor, known=known) for e in events]
        )
