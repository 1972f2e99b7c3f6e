"""The operator client: the seed's OrchestratorAgent API over gRPC, in snake_case."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import grpc

from agent_sdk._agent import channel_options
from agent_sdk._discovery import (
    EtcdCredentials,
    election_pending,
    find_leader,
    leader_hint,
    parse_address,
    resolve_address,
)
from agent_sdk._errors import UnavailableError, rpc_error
from agent_sdk._reconnect import ELECTION_RETRY_S, ETCD_LOOKUP_TIMEOUT
from agent_sdk._types import AgentInfo, CoordinatorInfo, TaskAssignment
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

# What the protocol's fields hold (uint32, uint32, int32): checked before sending, so a
# value out of range is a ValueError naming the field, not protobuf's bare one.
_RANGES = (
    ("timeout_ms", 0, 2**32 - 1),
    ("max_retries", 0, 2**32 - 1),
    ("priority", -(2**31), 2**31 - 1),
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

    def __post_init__(self) -> None:
        for name, low, high in _RANGES:
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}, got {value}")

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


log = logging.getLogger("agent_sdk")

# Leader redirects one call follows before giving up.
MAX_REDIRECTS = 3
# While a replica answers "election pending", retry every ELECTION_RETRY_S (the agent's
# pace, from _reconnect), within the call's deadline and at most MAX_ELECTION_RETRIES
# times (~30 s) in all. ETCD_LOOKUP_TIMEOUT bounds one etcd endpoint's answer, as there.
MAX_ELECTION_RETRIES = 120
# The stub attributes the methods (and the WorkflowMethods mixin) call through.
_STUBS: dict[str, Callable[[Any], Any]] = {
    "_registry": registry_pb2_grpc.RegistryServiceStub,
    "_tasks": task_pb2_grpc.TaskServiceStub,
    "_workflows": workflow_pb2_grpc.WorkflowServiceStub,
    "_executions": workflow_pb2_grpc.ExecutionServiceStub,
    "_integration": integration_pb2_grpc.IntegrationServiceStub,
}


class _Unresolved:
    """Stands in for the channel until an ``etcd://`` address is resolved: stubs built
    on it only name the methods (``Client._call`` runs them on the real channel)."""

    def _method(self, path: str, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        async def unresolved(*a: Any, **k: Any) -> Any:
            raise UnavailableError(f"{path}: the coordinator address is not resolved yet")

        return unresolved

    unary_unary = unary_stream = stream_unary = stream_stream = _method


class Client(WorkflowMethods):
    """Talk to a coordinator: ``async with Client("localhost:50051") as c: ...``.

    Every method raises an ``agent_sdk.RpcError`` subclass on failure (e.g.
    ``FailedPreconditionError`` when no agent advertises a capability).

    ``address`` is one of ``host:port``; ``h1:p1,h2:p2,...`` (seed replicas of a
    cluster, the first used first); ``etcd://h1:2379,h2:2379[/prefix]`` (the leader is
    read from etcd on the first call; prefix default ``/agentmesh``; a secured etcd via
    the ``AGENTMESH_ETCD_CA_CERT/CERT/KEY/USER/PASSWORD`` environment variables).
    Without an ``address`` argument the client uses the environment variable
    ``AGENTMESH_COORDINATOR``, else ``localhost:50051`` (an argument always wins).  A
    malformed address raises ValueError.  The ``address`` attribute is the
    replica in use (for ``etcd://``, the configured string until the first call).

    Cluster redirects: a replica that is not the leader answers UNAVAILABLE with the
    leader's address in trailing metadata ``agentmesh-leader``; the client then points
    its channel at the leader and repeats the call (the follower did nothing with it),
    at most ``MAX_REDIRECTS`` (3) hops per call, after which it raises UnavailableError.
    With a seed list or ``etcd://``, an UNAVAILABLE without a leader (e.g. the replica
    died) moves to the next seed, or re-resolves the leader, and repeats the call, at
    most once per seed (etcd endpoint) plus one, within the call's timeout; a redirected
    address that fails falls back to the seeds/etcd the same way.  Such a repeat can
    run a call twice if the replica died after acting on it: give tasks an
    ``idempotency_key`` where that matters.
    """

    def __init__(self, address: str | None = None, *, timeout: float = 30.0) -> None:
        address, _ = resolve_address(address)
        self._target = parse_address(address)
        if self._target.uses_etcd:
            EtcdCredentials.from_env()  # half-given etcd credentials fail here, not later
        self.timeout = timeout
        self.address = address
        self._seed = 0  # the seed in use (or to use next)
        self._redirected = False  # whether ``address`` came from a redirect
        self._channel: grpc.aio.Channel | None = None
        self._retired: list[tuple[grpc.aio.Channel, asyncio.Task[None]]] = []
        self._methods: dict[Any, tuple[str, str]] = {}
        self._registry: Any = None
        self._tasks: Any = None
        self._workflows: Any = None
        self._executions: Any = None
        self._integration: Any = None
        # agent id -> session secret, for the polling agents this client registered
        self._secrets: dict[str, str] = {}
        if self._target.uses_etcd:
            self._bind(_Unresolved())
        else:
            self._connect(self._target.seeds[0])

    # --------------------------------------------------------------- channel

    def _bind(self, channel: Any) -> None:
        """Build the stubs on ``channel`` and map each of their methods to
        (stub attribute, method name), so a call can be repeated on new stubs."""
        methods: dict[Any, tuple[str, str]] = {}
        for attr, stub_class in _STUBS.items():
            stub = stub_class(channel)
            setattr(self, attr, stub)
            for name, method in vars(stub).items():
                methods[method] = (attr, name)
        self._methods = methods

    def _connect(self, address: str, *, redirected: bool = False) -> None:
        """Point the channel and stubs at ``address`` (the old channel is closed once
        the calls still on it finish, within ``timeout``)."""
        self._redirected = redirected
        if self._channel is not None and address == self.address:
            return
        old = self._channel
        self._channel = grpc.aio.insecure_channel(address, options=channel_options())
        self.address = address
        self._bind(self._channel)
        if old is not None:
            task = asyncio.get_running_loop().create_task(old.close(grace=self.timeout))
            self._retired = [(c, t) for c, t in self._retired if not t.done()]
            self._retired.append((old, task))

    async def _fail_over(self, remaining: float | None) -> None:
        """The replica in use failed without naming a leader: move to the next seed
        (also after a redirect: the seed that named a dead leader may still name it),
        or re-resolve the leader in etcd."""
        if self._target.uses_etcd:
            lookup = (
                ETCD_LOOKUP_TIMEOUT if remaining is None else min(ETCD_LOOKUP_TIMEOUT, remaining)
            )
            leader = await find_leader(self._target.etcd, self._target.prefix, lookup)
            self._connect(leader)
            return
        seeds = self._target.seeds
        self._seed = (self._seed + 1) % len(seeds)
        self._connect(seeds[self._seed])

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        """Run a unary stub method (taken from this client's stubs), following leader
        redirects and failing over (see the class docstring); errors are mapped to
        ``RpcError`` subclasses.  ``timeout`` defaults to ``self.timeout``."""
        return await self._invoke(method, request, self.timeout if timeout is None else timeout)

    async def _invoke(self, method: Any, request: Any, timeout: float | None) -> Any:
        """``_call`` where ``timeout=None`` means no deadline."""
        try:
            attr, name = self._methods[method]
        except (KeyError, TypeError):
            raise TypeError(f"{method!r} is not a method of this client's stubs") from None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        replicas = len(self._target.etcd) if self._target.uses_etcd else len(self._target.seeds)
        max_attempts = replicas + 1
        hops = attempts = elections = 0
        while True:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            if self._channel is None:  # etcd:// before the first resolution
                await self._fail_over(remaining)
                continue
            used = self.address
            try:
                return await getattr(getattr(self, attr), name)(request, timeout=remaining)
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE:
                    raise rpc_error(e) from None
                leader = leader_hint(e)
                if leader is not None:
                    hops += 1
                    if hops > MAX_REDIRECTS:
                        raise UnavailableError(
                            f"{name}: gave up after {MAX_REDIRECTS} leader redirects "
                            f"({used} names {leader} as the leader): {e.details()}"
                        ) from None
                    log.info("%s: %s is not the leader; redirected to %s", name, used, leader)
                    if self.address == used:
                        self._connect(leader, redirected=True)
                    continue
                out_of_time = deadline is not None and loop.time() >= deadline
                if election_pending(e) and not out_of_time and elections < MAX_ELECTION_RETRIES:
                    elections += 1
                    # A live replica says a leader is being elected: the call did
                    # nothing; ask again shortly, within the call's deadline.
                    pause = ELECTION_RETRY_S
                    if deadline is not None:
                        pause = min(pause, max(0.0, deadline - loop.time()))
                    await asyncio.sleep(pause)
                    continue
                attempts += 1
                can_fail_over = self._target.replicated or self._redirected
                out_of_time = deadline is not None and loop.time() >= deadline
                if not can_fail_over or attempts >= max_attempts or out_of_time:
                    raise rpc_error(e) from None
                log.info("%s: %s unavailable (%s); failing over", name, used, e.details())
                if self.address == used:  # else another call already moved on
                    await self._fail_over(remaining)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        retired, self._retired = self._retired, []
        for _, task in retired:
            task.cancel()
        await asyncio.gather(*(t for _, t in retired), return_exceptions=True)
        for channel, _ in retired:
            await channel.close()
        if self._channel is not None:
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
        """Register a polling agent (tasks via ``poll_tasks``); returns its id. This
        client remembers the agent's session secret for ``heartbeat`` and ``poll_tasks``;
        ``session_secret(agent_id)`` hands it to another client."""
        req = registry_pb2.RegisterAgentRequest(
            name=name,
            type=type,
            capabilities=[types_pb2.Capability(name=c) for c in capabilities],
            max_concurrency=max_concurrency,
            labels=dict(labels or {}),
        )
        resp = await self._call(self._registry.RegisterAgent, req)
        self._secrets[resp.agent_id] = resp.session_secret
        return str(resp.agent_id)

    def session_secret(self, agent_id: str) -> str:
        """The secret of a polling agent this client registered ("" if none)."""
        return self._secrets.get(agent_id, "")

    async def heartbeat(self, agent_id: str, *, session_secret: str | None = None) -> str:
        """A polling agent's heartbeat; ``session_secret`` defaults to the one this
        client got from ``register_agent`` (PermissionDeniedError without it)."""
        req = registry_pb2.HeartbeatRequest(
            agent_id=agent_id, session_secret=session_secret or self.session_secret(agent_id)
        )
        resp = await self._call(self._registry.Heartbeat, req)
        return types_pb2.AgentStatus.Name(resp.status).removeprefix("AGENT_STATUS_").lower()

    async def unregister_agent(self, agent_id: str) -> int:
        """Remove an agent; returns how many of its tasks were re-dispatched."""
        resp = await self._call(
            self._registry.UnregisterAgent, registry_pb2.UnregisterAgentRequest(agent_id=agent_id)
        )
        return int(resp.tasks_redispatched)

    async def list_agents(
        self, *, include_offline: bool = False, type: str = ""
    ) -> list[AgentInfo]:
        resp = await self._call(
            self._registry.ListAgents,
            registry_pb2.ListAgentsRequest(include_offline=include_offline, type=type),
        )
        return [AgentInfo.from_proto(a) for a in resp.agents]

    async def get_agent(self, agent_id: str) -> AgentInfo:
        resp = await self._call(
            self._registry.GetAgent, registry_pb2.GetAgentRequest(agent_id=agent_id)
        )
        return AgentInfo.from_proto(resp)

    async def get_coordinator_info(self) -> CoordinatorInfo:
        """The coordinator answering (in cluster mode, the leader): version, store."""
        resp = await self._call(
            self._registry.GetCoordinatorInfo, registry_pb2.GetCoordinatorInfoRequest()
        )
        return CoordinatorInfo.from_proto(resp)

    async def get_agent_capabilities(self, agent_id: str) -> list[str]:
        resp = await self._call(
            self._registry.GetAgentCapabilities,
            registry_pb2.GetAgentCapabilitiesRequest(agent_id=agent_id),
        )
        return [c.name for c in resp.capabilities]

    async def find_agents_by_capability(
        self, capability: str, *, include_offline: bool = False
    ) -> list[AgentInfo]:
        """Agents advertising ``capability``, best routing candidate first."""
        resp = await self._call(
            self._registry.FindAgentsByCapability,
            registry_pb2.FindAgentsByCapabilityRequest(
                capability=capability, include_offline=include_offline
            ),
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
        resp = await self._call(self._tasks.AssignTask, req)
        return TaskAssignment.from_proto(resp)

    async def bulk_assign_tasks(
        self, tasks: Iterable[TaskRequest], *, wait_for_agent: bool = False
    ) -> list[TaskAssignment]:
        """Submit several tasks at once; a bad one rejects the whole call."""
        req = task_pb2.BulkAssignTasksRequest(
            tasks=[t.to_proto() for t in tasks], wait_for_agent=wait_for_agent
        )
        resp = await self._call(self._tasks.BulkAssignTasks, req)
        return [TaskAssignment.from_proto(a) for a in resp.assignments]

    async def get_task_status(self, task_id: str) -> TaskAssignment:
        resp = await self._call(
            self._tasks.GetTaskStatus, task_pb2.GetTaskStatusRequest(task_id=task_id)
        )
        return TaskAssignment.from_proto(resp)

    async def wait_task(self, task_id: str, timeout: float | None = None) -> TaskAssignment:
        """Wait until the task finishes (or ``timeout`` seconds pass) and return it."""
        req = task_pb2.WaitTaskRequest(task_id=task_id, timeout_ms=int((timeout or 0) * 1000))
        rpc_timeout = None if timeout is None else timeout + self.timeout
        resp = await self._invoke(self._tasks.WaitTask, req, rpc_timeout)
        return TaskAssignment.from_proto(resp)

    async def list_tasks(
        self, *, status: str = "", agent_id: str = "", limit: int = 100
    ) -> list[TaskAssignment]:
        status_pb: Any = (
            types_pb2.TaskStatus.Value(f"TASK_STATUS_{status.upper()}") if status else 0
        )
        resp = await self._call(
            self._tasks.ListTasks,
            task_pb2.ListTasksRequest(status=status_pb, agent_id=agent_id, limit=limit),
        )
        return [TaskAssignment.from_proto(t) for t in resp.tasks]

    async def complete_task(self, task_id: str, result: Any = None, *, attempt: int = 0) -> bool:
        """Record a result. Returns False when the task had already finished."""
        req = task_pb2.CompleteTaskRequest(
            task_id=task_id, result=wire.to_value(result), attempt=attempt
        )
        resp = await self._call(self._tasks.CompleteTask, req)
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
        resp = await self._call(self._tasks.FailTask, req)
        return bool(resp.recorded)

    async def cancel_task(self, task_id: str, reason: str = "") -> TaskAssignment:
        resp = await self._call(
            self._tasks.CancelTask, task_pb2.CancelTaskRequest(task_id=task_id, reason=reason)
        )
        return TaskAssignment.from_proto(resp)

    async def poll_tasks(
        self,
        agent_id: str,
        *,
        max_tasks: int = 1,
        wait: float = 10.0,
        session_secret: str | None = None,
    ) -> list[TaskAssignment]:
        """For polling agents: take up to ``max_tasks`` tasks, waiting up to ``wait`` s
        (``session_secret`` as for ``heartbeat``)."""
        req = task_pb2.PollTasksRequest(
            agent_id=agent_id,
            max_tasks=max_tasks,
            wait_ms=int(wait * 1000),
            session_secret=session_secret or self.session_secret(agent_id),
        )
        resp = await self._call(self._tasks.PollTasks, req, timeout=wait + self.timeout)
        return [TaskAssignment.from_proto(t) for t in resp.tasks]
