"""The operator client: the seed's OrchestratorAgent API over gRPC, in snake_case."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import grpc

from agent_sdk._agent import channel_options
from agent_sdk._errors import rpc_error
from agent_sdk._types import AgentInfo, TaskAssignment
from agent_sdk._workflows import WorkflowMethods
from agentmesh import wire
from agentmesh.v1 import (
    integration_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
    types_pb2,
    workflow_pb2_grpc,
)


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """A task to submit. ``capability`` routes it; ``agent_id`` pins it."""

    capability: str = ""
    input: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    agent_id: str = ""
    timeout_ms: int = 0
    idempotency_key: str = ""
    max_retries: int | None = None
    priority: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_proto(self) -> types_pb2.Task:
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


@contextlib.asynccontextmanager
async def _mapped() -> AsyncIterator[None]:
    try:
        yield
    except grpc.aio.AioRpcError as e:
        raise rpc_error(e) from None


class Client(WorkflowMethods):
    """Talk to a coordinator: ``async with Client("localhost:50051") as c: ...``.

    Every method raises an ``agent_sdk.RpcError`` subclass on failure (e.g.
    ``FailedPreconditionError`` when no agent advertises a capability).
    """

    def __init__(self, address: str = "localhost:50051", *, timeout: float = 30.0) -> None:
        self.address = address
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(address, options=channel_options())
        self._registry = registry_pb2_grpc.RegistryServiceStub(self._channel)
        self._tasks = task_pb2_grpc.TaskServiceStub(self._channel)
        self._workflows = workflow_pb2_grpc.WorkflowServiceStub(self._channel)
        self._executions = workflow_pb2_grpc.ExecutionServiceStub(self._channel)
        self._integration = integration_pb2_grpc.IntegrationServiceStub(self._channel)

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        async with _mapped():
            return await method(request, timeout=self.timeout if timeout is None else timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    # -------------------------------------------------------- agent management

    async def register_agent(
        self,
        name: str,
        capabilities: Iterable[str],
        *,
        type: str = "",
        max_concurrency: int = 1,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """Register a polling agent (tasks via ``poll_tasks``); returns its id."""
        req = registry_pb2.RegisterAgentRequest(
            name=name,
            type=type,
            capabilities=[types_pb2.Capability(name=c) for c in capabilities],
            max_concurrency=max_concurrency,
            labels=dict(labels or {}),
        )
        async with _mapped():
            resp = await self._registry.RegisterAgent(req, timeout=self.timeout)
        return str(resp.agent_id)

    async def heartbeat(self, agent_id: str) -> str:
        async with _mapped():
            resp = await self._registry.Heartbeat(
                registry_pb2.AgentHeartbeatRequest(agent_id=agent_id), timeout=self.timeout
            )
        return types_pb2.AgentStatus.Name(resp.status).removeprefix("AGENT_STATUS_").lower()

    async def unregister_agent(self, agent_id: str) -> int:
        """Remove an agent; returns how many of its tasks were re-dispatched."""
        async with _mapped():
            resp = await self._registry.UnregisterAgent(
                registry_pb2.UnregisterAgentRequest(agent_id=agent_id), timeout=self.timeout
            )
        return int(resp.tasks_redispatched)

    async def list_agents(
        self, *, include_offline: bool = False, type: str = ""
    ) -> list[AgentInfo]:
        async with _mapped():
            resp = await self._registry.ListAgents(
                registry_pb2.ListAgentsRequest(include_offline=include_offline, type=type),
                timeout=self.timeout,
            )
        return [AgentInfo.from_proto(a) for a in resp.agents]

    async def get_agent(self, agent_id: str) -> AgentInfo:
        async with _mapped():
            resp = await self._registry.GetAgent(
                registry_pb2.GetAgentRequest(agent_id=agent_id), timeout=self.timeout
            )
        return AgentInfo.from_proto(resp)

    async def get_agent_capabilities(self, agent_id: str) -> list[str]:
        async with _mapped():
            resp = await self._registry.GetAgentCapabilities(
                registry_pb2.GetAgentCapabilitiesRequest(agent_id=agent_id), timeout=self.timeout
            )
        return [c.name for c in resp.capabilities]

    async def find_agents_by_capability(
        self, capability: str, *, include_offline: bool = False
    ) -> list[AgentInfo]:
        """Agents advertising ``capability``, best routing candidate first."""
        async with _mapped():
            resp = await self._registry.FindAgentsByCapability(
                registry_pb2.FindAgentsByCapabilityRequest(
                    capability=capability, include_offline=include_offline
                ),
                timeout=self.timeout,
            )
        return [AgentInfo.from_proto(a) for a in resp.agents]

    # --------------------------------------------------------- task management

    async def assign_task(
        self,
        capability: str = "",
        input: Mapping[str, Any] | None = None,
        *,
        agent_id: str = "",
        wait_for_agent: bool = False,
        **options: Any,
    ) -> TaskAssignment:
        """Submit a task to the best agent for ``capability`` (or to ``agent_id``).

        ``options`` are TaskRequest fields: name, timeout_ms, idempotency_key,
        max_retries, priority, labels.
        """
        task = TaskRequest(capability=capability, input=input or {}, **options)
        req = task_pb2.AssignTaskRequest(
            agent_id=agent_id, task=task.to_proto(), wait_for_agent=wait_for_agent
        )
        async with _mapped():
            resp = await self._tasks.AssignTask(req, timeout=self.timeout)
        return TaskAssignment.from_proto(resp)

    async def bulk_assign_tasks(
        self, tasks: Iterable[TaskRequest], *, wait_for_agent: bool = False
    ) -> list[TaskAssignment]:
        """Submit several tasks at once; a bad one rejects the whole call."""
        req = task_pb2.BulkAssignTasksRequest(
            tasks=[t.to_proto() for t in tasks], wait_for_agent=wait_for_agent
        )
        async with _mapped():
            resp = await self._tasks.BulkAssignTasks(req, timeout=self.timeout)
        return [TaskAssignment.from_proto(a) for a in resp.assignments]

    async def get_task_status(self, task_id: str) -> TaskAssignment:
        async with _mapped():
            resp = await self._tasks.GetTaskStatus(
                task_pb2.GetTaskStatusRequest(task_id=task_id), timeout=self.timeout
            )
        return TaskAssignment.from_proto(resp)

    async def wait_task(self, task_id: str, timeout: float | None = None) -> TaskAssignment:
        """Wait until the task finishes (or ``timeout`` seconds pass) and return it."""
        req = task_pb2.WaitTaskRequest(task_id=task_id, timeout_ms=int((timeout or 0) * 1000))
        rpc_timeout = None if timeout is None else timeout + self.timeout
        async with _mapped():
            resp = await self._tasks.WaitTask(req, timeout=rpc_timeout)
        return TaskAssignment.from_proto(resp)

    async def list_tasks(
        self, *, status: str = "", agent_id: str = "", limit: int = 100
    ) -> list[TaskAssignment]:
        status_pb: Any = (
            types_pb2.TaskStatus.Value(f"TASK_STATUS_{status.upper()}") if status else 0
        )
        async with _mapped():
            resp = await self._tasks.ListTasks(
                task_pb2.ListTasksRequest(status=status_pb, agent_id=agent_id, limit=limit),
                timeout=self.timeout,
            )
        return [TaskAssignment.from_proto(t) for t in resp.tasks]

    async def complete_task(self, task_id: str, result: Any = None, *, attempt: int = 0) -> bool:
        """Record a result. Returns False when the task had already finished."""
        req = task_pb2.CompleteTaskRequest(
            task_id=task_id, result=wire.to_value(result), attempt=attempt
        )
        async with _mapped():
            resp = await self._tasks.CompleteTask(req, timeout=self.timeout)
        return bool(resp.recorded)

    async def fail_task(
        self,
        task_id: str,
        error: BaseException | str,
        *,
        retryable: bool = False,
        attempt: int = 0,
    ) -> bool:
        """Record a failure. Returns False when the task had already finished."""
        if isinstance(error, BaseException):
            err = types_pb2.TaskError(
                type=type(error).__name__, message=str(error), retryable=retryable
            )
        else:
            err = types_pb2.TaskError(type="Error", message=error, retryable=retryable)
        req = task_pb2.FailTaskRequest(task_id=task_id, error=err, attempt=attempt)
        async with _mapped():
            resp = await self._tasks.FailTask(req, timeout=self.timeout)
        return bool(resp.recorded)

    async def cancel_task(self, task_id: str, reason: str = "") -> TaskAssignment:
        async with _mapped():
            resp = await self._tasks.CancelTask(
                task_pb2.CancelTaskRequest(task_id=task_id, reason=reason), timeout=self.timeout
            )
        return TaskAssignment.from_proto(resp)

    async def poll_tasks(
        self, agent_id: str, *, max_tasks: int = 1, wait: float = 10.0
    ) -> list[TaskAssignment]:
        """For polling agents: take up to ``max_tasks`` tasks, waiting up to ``wait`` s."""
        req = task_pb2.PollTasksRequest(
            agent_id=agent_id, max_tasks=max_tasks, wait_ms=int(wait * 1000)
        )
        async with _mapped():
            resp = await self._tasks.PollTasks(req, timeout=wait + self.timeout)
        return [TaskAssignment.from_proto(t) for t in resp.tasks]
