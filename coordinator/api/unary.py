"""Unary services: RegistryService and TaskService (with polling agents)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import grpc

from agentmesh import __version__, wire
from agentmesh.v1 import registry_pb2, registry_pb2_grpc, task_pb2, task_pb2_grpc, types_pb2
from coordinator import domain as d
from coordinator.api import convert
from coordinator.api.agent_service import PROTOCOL_VERSION
from coordinator.api.guard import check_capabilities
from coordinator.api.scope import namespace_of
from coordinator.api.status import abort, mapped
from coordinator.auth import PERMISSIONS, Policy
from coordinator.auth import current as current_principal
from coordinator.errors import FailedPrecondition, InvalidArgument, MeshError, QuotaExceeded
from coordinator.mesh import Mesh
from coordinator.secrets import Redactor

MAX_POLL_WAIT_MS = 60_000
MAX_WAIT_TASK_MS = 3_600_000
MAX_BULK = 10_000
T = TypeVar("T")


class MailboxSink:
    """Tasks routed to a polling agent wait here until it calls PollTasks."""

    __slots__ = ("closed", "mailbox", "ready")

    def __init__(self) -> None:
        self.mailbox: deque[tuple[d.Task, int]] = deque()
        self.ready = asyncio.Event()
        self.closed = False

    def send_tasks(self, tasks: Sequence[d.Task]) -> None:
        self.mailbox.extend((t, t.attempt) for t in tasks)
        self.ready.set()

    def send_cancel(self, task_id: str, attempt: int, reason: str) -> None:
        # A polling agent learns of cancellation from GetTaskStatus.
        pass

    def send_drain(self, reason: str) -> None:
        pass

    def close(self, reason: str) -> None:
        self.closed = True
        self.ready.set()


class RegistryService(registry_pb2_grpc.RegistryServiceServicer):
    """``RegistryService``: agents as the registry sees them (list, get, find by
    capability), the polling agents' registration (RegisterAgent, Heartbeat,
    UnregisterAgent) and the coordinator's own info. Methods are ``mapped``: domain
    errors become their status codes."""

    def __init__(
        self,
        mesh: Mesh,
        coordinator_id: str = "",
        store: str = "memory",
        policy: Callable[[], Policy] | None = None,
    ) -> None:
        self._mesh = mesh
        self._policy = policy  # None: auth is off
        self._info = registry_pb2.CoordinatorInfo(
            version=__version__,
            protocol_version=PROTOCOL_VERSION,
            coordinator_id=coordinator_id,
            store=store,
            start_time=wire.to_timestamp(datetime.now(UTC)),
        )

    @mapped
    async def GetCoordinatorInfo(
        self, request: registry_pb2.GetCoordinatorInfoRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.CoordinatorInfo:
        return self._info

    @mapped
    async def GetCaller(
        self, request: registry_pb2.GetCallerRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.GetCallerResponse:
        principal = current_principal()
        namespace = namespace_of(context)
        # With auth on, the guard let the call through: the principal acts in namespace.
        granted = PERMISSIONS if self._policy is None else self._policy().granted(principal)
        return registry_pb2.GetCallerResponse(
            name=principal.name,
            roles=sorted(principal.roles),
            namespaces=sorted(principal.namespaces),
            namespace=namespace,
            permissions=sorted(granted),
            auth_enabled=self._policy is not None,
            via=principal.via if self._policy is not None else "none",
        )

    @mapped
    async def RegisterAgent(
        self, request: registry_pb2.RegisterAgentRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.RegisterAgentResponse:
        spec = d.AgentSpec(
            name=request.name,
            type=request.type,
            capabilities=convert.capabilities(request.capabilities),
            max_concurrency=request.max_concurrency or 1,
            labels=dict(request.labels),
            namespace=namespace_of(context),
        )
        check_capabilities([c.name for c in spec.capabilities])
        agent = self._mesh.join(spec, MailboxSink(), "poll")
        s = self._mesh.settings
        return registry_pb2.RegisterAgentResponse(
            agent_id=agent.id,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            heartbeat_timeout_ms=s.heartbeat_timeout_ms,
            session_secret=agent.session_secret,
        )

    @mapped
    async def Heartbeat(
        self, request: registry_pb2.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.HeartbeatResponse:
        agent = self._mesh.act_as(request.agent_id, request.session_secret)
        if not agent.connected:
            raise FailedPrecondition(
                f"agent {agent.id!r} is offline (missed its heartbeats); register again"
            )
        self._mesh.heartbeat(agent)
        return registry_pb2.HeartbeatResponse(status=convert.AGENT_STATUS[agent.status])

    @mapped
    async def UnregisterAgent(
        self, request: registry_pb2.UnregisterAgentRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.UnregisterAgentResponse:
        moved = self._mesh.unregister(request.agent_id, namespace_of(context))
        return registry_pb2.UnregisterAgentResponse(tasks_redispatched=moved)

    @mapped
    async def ListAgents(
        self, request: registry_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListAgentsResponse:
        agents = self._mesh.list_agents(
            request.include_offline, request.type, namespace_of(context)
        )
        return registry_pb2.ListAgentsResponse(agents=[convert.agent_info(a) for a in agents])

    @mapped
    async def GetAgent(
        self, request: registry_pb2.GetAgentRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.AgentInfo:
        return convert.agent_info(self._mesh.get_agent(request.agent_id, namespace_of(context)))

    @mapped
    async def GetAgentCapabilities(
        self, request: registry_pb2.GetAgentCapabilitiesRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.GetAgentCapabilitiesResponse:
        agent = self._mesh.get_agent(request.agent_id, namespace_of(context))
        return registry_pb2.GetAgentCapabilitiesResponse(
            capabilities=[
                types_pb2.Capability(name=c.name, description=c.description, version=c.version)
                for c in agent.capabilities
            ]
        )

    @mapped
    async def FindAgentsByCapability(
        self, request: registry_pb2.FindAgentsByCapabilityRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.FindAgentsByCapabilityResponse:
        if not request.capability:
            raise InvalidArgument("capability is required")
        agents = self._mesh.find_agents(
            request.capability, request.include_offline, namespace_of(context)
        )
        return registry_pb2.FindAgentsByCapabilityResponse(
            agents=[convert.agent_info(a) for a in agents]
        )


class TaskService(task_pb2_grpc.TaskServiceServicer):
    """``TaskService``: tasks submitted straight to the mesh (AssignTask, WaitTask, ...),
    outside any workflow, and the polling agents' work (PollTasks, CompleteTask,
    FailTask). Methods are ``mapped``."""

    def __init__(self, mesh: Mesh, redactor: Redactor | None = None) -> None:
        self._mesh = mesh
        self._redactor = redactor or Redactor()

    @mapped
    async def AssignTask(
        self, request: task_pb2.AssignTaskRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.TaskAssignment:
        if not request.HasField("task"):
            raise InvalidArgument("task is required")
        spec = convert.task_spec(request.task, request.agent_id, namespace_of(context))
        task = await self._admitted(
            context, spec.namespace, lambda: self._mesh.submit(spec, request.wait_for_agent)
        )
        return convert.assignment(task, self._redactor)

    @mapped
    async def BulkAssignTasks(
        self, request: task_pb2.BulkAssignTasksRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.BulkAssignTasksResponse:
        if len(request.tasks) > MAX_BULK:
            raise InvalidArgument(f"at most {MAX_BULK} tasks per call, got {len(request.tasks)}")
        namespace = namespace_of(context)
        specs = [convert.task_spec(t, "", namespace) for t in request.tasks]
        tasks = await self._admitted(
            context, namespace, lambda: self._mesh.submit_many(specs, request.wait_for_agent)
        )
        return task_pb2.BulkAssignTasksResponse(
            assignments=[convert.assignment(t, self._redactor) for t in tasks]
        )

    async def _admitted(
        self, context: grpc.aio.ServicerContext, namespace: str, submit: Callable[[], T]
    ) -> T:
        """``submit()``, with backpressure at a namespace's quotas: at ``queued_tasks``
        it waits for one of its queued tasks to be taken, at ``tasks_per_second`` for
        the rate to allow it, and tries again, for up to ``quota_wait_ms`` (within the
        call's deadline); then the refusal stands. A flooding tenant is slowed to the
        pace its quota and agents allow, instead of spinning on refusals that cost the
        coordinator nearly as much as submissions."""
        loop = asyncio.get_running_loop()
        budget = self._mesh.settings.quota_wait_ms / 1000
        remaining = context.time_remaining()
        if remaining is not None:
            budget = min(budget, max(0.0, remaining - 0.05))
        end = loop.time() + budget
        while True:
            try:
                return submit()
            except QuotaExceeded as e:
                left = end - loop.time()
                if left <= 0:
                    raise
                if e.retry_after:  # a rate: wait until it lets one through
                    if e.retry_after > left:
                        raise
                    await asyncio.sleep(e.retry_after)
                elif not await self._mesh.wait_for_room(namespace, left):
                    raise

    @mapped
    async def GetTaskStatus(
        self, request: task_pb2.GetTaskStatusRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.TaskAssignment:
        task = self._mesh.get_task(request.task_id, namespace_of(context))
        return convert.assignment(task, self._redactor)

    @mapped
    async def WaitTask(
        self, request: task_pb2.WaitTaskRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.TaskAssignment:
        if request.timeout_ms > MAX_WAIT_TASK_MS:
            raise InvalidArgument(f"timeout_ms must be at most {MAX_WAIT_TASK_MS}")
        timeout = request.timeout_ms / 1000 if request.timeout_ms else None
        task = await self._mesh.wait(request.task_id, timeout, namespace_of(context))
        return convert.assignment(task, self._redactor)

    async def WaitTasks(
        self, request: task_pb2.WaitTasksRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[task_pb2.WaitTasksResponse]:
        try:
            if request.timeout_ms > MAX_WAIT_TASK_MS:
                raise InvalidArgument(f"timeout_ms must be at most {MAX_WAIT_TASK_MS}")
            ids = list(request.task_ids)
            if len(ids) > MAX_BULK:
                raise InvalidArgument(f"at most {MAX_BULK} task ids per call, got {len(ids)}")
            if len(set(ids)) != len(ids):
                raise InvalidArgument("task_ids has duplicates")
            timeout = request.timeout_ms / 1000 if request.timeout_ms else None
            batches = self._mesh.completions(ids, timeout, namespace_of(context))
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    yield task_pb2.WaitTasksResponse(
                        finished=[convert.assignment(t, self._redactor) for t in batch]
                    )
        except MeshError as e:
            await abort(context, e)

    @mapped
    async def RunTask(
        self, request: task_pb2.RunTaskRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.TaskAssignment:
        if not request.HasField("task"):
            raise InvalidArgument("task is required")
        if request.timeout_ms > MAX_WAIT_TASK_MS:
            raise InvalidArgument(f"timeout_ms must be at most {MAX_WAIT_TASK_MS}")
        spec = convert.task_spec(request.task, request.agent_id, namespace_of(context))
        task = await self._admitted(
            context, spec.namespace, lambda: self._mesh.submit(spec, request.wait_for_agent)
        )
        if not task.status.finished:
            timeout = request.timeout_ms / 1000 if request.timeout_ms else None
            task = await self._mesh.wait(task.id, timeout, spec.namespace)
        return convert.assignment(task, self._redactor)

    @mapped
    async def ListTasks(
        self, request: task_pb2.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.ListTasksResponse:
        status = convert.TASK_STATUS_FROM_PB.get(request.status)
        limit = min(request.limit or 100, 10_000)
        tasks = self._mesh.list_tasks(status, request.agent_id, limit, namespace_of(context))
        return task_pb2.ListTasksResponse(
            tasks=[convert.assignment(t, self._redactor) for t in tasks]
        )

    @mapped
    async def CompleteTask(
        self, request: task_pb2.CompleteTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.CompleteTaskResponse:
        task = self._mesh.get_task(request.task_id, namespace_of(context))
        recorded = self._mesh.on_result(
            None, task.id, request.attempt, output=convert.from_value(request.result)
        )
        return task_pb2.CompleteTaskResponse(
            recorded=recorded, status=convert.TASK_STATUS[task.status]
        )

    @mapped
    async def FailTask(
        self, request: task_pb2.FailTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.FailTaskResponse:
        task = self._mesh.get_task(request.task_id, namespace_of(context))
        failure = (
            convert.from_failure(request.error)
            if request.HasField("error")
            else d.TaskFailure("Error", "failed by request")
        )
        recorded = self._mesh.on_result(None, task.id, request.attempt, failure=failure)
        return task_pb2.FailTaskResponse(recorded=recorded, status=convert.TASK_STATUS[task.status])

    @mapped
    async def CancelTask(
        self, request: task_pb2.CancelTaskRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.TaskAssignment:
        task = self._mesh.cancel(
            request.task_id, request.reason or "cancelled by request", namespace_of(context)
        )
        return convert.assignment(task, self._redactor)

    @mapped
    async def PollTasks(
        self, request: task_pb2.PollTasksRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.PollTasksResponse:
        agent = self._mesh.act_as(request.agent_id, request.session_secret)
        if not isinstance(agent.sink, MailboxSink):
            raise FailedPrecondition(
                f"agent {agent.id!r} receives tasks on its stream; PollTasks is for "
                "agents registered with RegisterAgent"
            )
        if not agent.connected:
            raise FailedPrecondition(f"agent {agent.id!r} is offline; register again")
        self._mesh.heartbeat(agent)
        sink = agent.sink
        wait_ms = min(request.wait_ms, MAX_POLL_WAIT_MS)
        if not sink.mailbox and wait_ms and not sink.closed:
            sink.ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sink.ready.wait(), wait_ms / 1000)
        out: list[d.Task] = []
        limit = request.max_tasks or 1
        while sink.mailbox and len(out) < limit:
            task, attempt = sink.mailbox.popleft()
            if task.attempt == attempt and not task.status.finished:
                out.append(task)
        self._mesh.touch(agent)
        return task_pb2.PollTasksResponse(tasks=[convert.assignment(t) for t in out])
