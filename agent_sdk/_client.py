"""The operator client: the seed's OrchestratorAgent API over gRPC, in snake_case."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self

import grpc

from agent_sdk._agent_session import channel_options
from agent_sdk._auth import auth_metadata, resolve_token
from agent_sdk._discovery import (
    EtcdCredentials,
    find_leader,
    parse_address,
    resolve_address,
)
from agent_sdk._errors import UnavailableError
from agent_sdk._failover import Failover, GiveUp, Outcome, Result, Retry, Route
from agent_sdk._integrations import IntegrationMethods
from agent_sdk._monitoring import MonitoringMethods, call_outcome
from agent_sdk._namespace import namespace_metadata, resolve_namespace
from agent_sdk._task_waits import TaskWaitMethods
from agent_sdk._tls import TLS, open_channel
from agent_sdk._types import AgentInfo, CoordinatorInfo, TaskAssignment, TaskRequest
from agent_sdk._webhooks import WebhookMethods
from agent_sdk._workflows import WorkflowMethods
from agentmesh import wire
from agentmesh.v1 import (
    integration_pb2_grpc,
    monitoring_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
    types_pb2,
    workflow_pb2_grpc,
)

log = logging.getLogger("agent_sdk")

# The stub attributes the methods (and the WorkflowMethods mixin) call through.
_STUBS: dict[str, Callable[[Any], Any]] = {
    "_registry": registry_pb2_grpc.RegistryServiceStub,
    "_tasks": task_pb2_grpc.TaskServiceStub,
    "_workflows": workflow_pb2_grpc.WorkflowServiceStub,
    "_executions": workflow_pb2_grpc.ExecutionServiceStub,
    "_integration": integration_pb2_grpc.IntegrationServiceStub,
    "_events": monitoring_pb2_grpc.EventServiceStub,
    "_metrics": monitoring_pb2_grpc.MetricsServiceStub,
}


class _Unresolved:
    """Stands in for the channel until an ``etcd://`` address is resolved: stubs built
    on it only name the methods (``Client._call`` runs them on the real channel)."""

    def _method(self, path: str, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        async def unresolved(*a: Any, **k: Any) -> Any:
            raise UnavailableError(f"{path}: the coordinator address is not resolved yet")

        return unresolved

    unary_unary = unary_stream = stream_unary = stream_stream = _method


class Client(
    TaskWaitMethods, WorkflowMethods, IntegrationMethods, WebhookMethods, MonitoringMethods
):
    """Talk to a coordinator: ``async with Client("localhost:50051") as c: ...``.

    Every method raises an ``agent_sdk.RpcError`` subclass on failure (e.g.
    ``FailedPreconditionError`` when no agent advertises a capability), and
    ``DeadlineExceededError`` when the coordinator does not answer within ``timeout``
    seconds (per call).  Cancelling a method cancels its call: the coordinator stops
    what it has not done yet, but what it did already stays done.

    ``address`` is one of ``host:port``; ``h1:p1,h2:p2,...`` (seed replicas of a
    cluster, the first used first); ``etcd://h1:2379,h2:2379[/prefix]`` (the leader is
    read from etcd on the first call; prefix default ``/agentmesh``; a secured etcd via
    the ``AGENTMESH_ETCD_CA_CERT/CERT/KEY/USER/PASSWORD`` environment variables).
    Without an ``address`` argument the client uses the environment variable
    ``AGENTMESH_COORDINATOR``, else ``localhost:50051`` (an argument always wins).  A
    malformed address (or half-given etcd credentials) raises ValueError.  The
    ``address`` attribute is the replica in use (for ``etcd://``, the configured string
    until the first call).

    Cluster redirects: a replica that is not the leader answers UNAVAILABLE with the
    leader's address in trailing metadata ``agentmesh-leader``; the client then points
    its channel at the leader and repeats the call (the follower did nothing with it),
    at most ``MAX_REDIRECTS`` (3) hops per call, after which it raises UnavailableError.
    A replica that answers ``agentmesh-election: pending`` is asked again every 0.25 s.
    With a seed list or ``etcd://``, an UNAVAILABLE without a leader (e.g. the replica
    died) moves to the next seed, or re-resolves the leader, and repeats the call, at
    most once per seed (etcd endpoint) plus one; a redirected address that fails falls
    back to the seeds/etcd the same way.  All of it within the call's timeout: a retry
    that could not start before it raises UnavailableError saying so.  Such a repeat
    can run a call twice if the replica died after acting on it: give tasks an
    ``idempotency_key`` where that matters.  (``agent_sdk._failover`` holds these
    rules, shared with ``Agent``.)

    TLS: ``tls`` (an ``agent_sdk.TLS``: the CA, a client certificate for mutual TLS, a
    server name override), else ``TLS.from_env()`` (``AGENTMESH_TLS_*``; none set:
    plain text).  Every replica the client dials, redirected or failed over to, is
    dialled with it.  Unreadable or half-given TLS files raise ValueError here (and
    UnavailableError from a call that must connect anew after they became unreadable);
    a failed handshake is an UnavailableError that says what to check.  The ``tls``
    attribute holds the settings in use (None: plain text).

    Authentication: ``token``, a bearer token sent as ``authorization: Bearer <token>``
    metadata on every call (polling agents' calls included), else the environment
    variable ``AGENTMESH_TOKEN`` (unset or empty: no token); ``token=""`` sends none
    whatever the environment says.  A token with whitespace, line breaks or characters
    outside printable ASCII raises ValueError here.  The token is kept out of every
    message and repr; it is fixed when the client is made.

    Namespace: ``namespace``, else ``AGENTMESH_NAMESPACE``, else ``default``, sent as
    ``agentmesh-namespace`` metadata on every call: the client defines, starts and sees
    that namespace's workflows, executions, tasks and agents only (an id of another
    namespace is a NotFoundError).  A malformed name raises ValueError here.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout: float = 30.0,
        tls: TLS | None = None,
        token: str | None = None,
        namespace: str | None = None,
    ) -> None:
        address, _ = resolve_address(address)
        self._route = Route(parse_address(address))  # shared by every call
        if self._route.address.uses_etcd:
            EtcdCredentials.from_env()  # half-given etcd credentials fail here, not later
        self.tls = TLS.from_env() if tls is None else tls
        if self.tls is not None:
            self.tls.credentials()  # unreadable files fail here, not on the first call
        # The call metadata, once (a bad token fails here); never logged or shown.
        #: The namespace it acts in (``namespace``, else $AGENTMESH_NAMESPACE, else default).
        self.namespace = resolve_namespace(namespace)
        self._metadata = auth_metadata(resolve_token(token)) + namespace_metadata(self.namespace)
        self.timeout = timeout
        self.address = address
        self._channel: grpc.aio.Channel | None = None
        self._retired: list[tuple[grpc.aio.Channel, asyncio.Task[None]]] = []
        self._methods: dict[Any, tuple[str, str]] = {}
        self._registry: Any = None
        self._tasks: Any = None
        # agent id -> session secret, for the polling agents this client registered
        self._secrets: dict[str, str] = {}
        target = self._route.target()
        if target is None:
            self._bind(_Unresolved())
        else:
            self._connect(target)

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

    def _connect(self, address: str) -> None:
        """Point the channel and stubs at ``address`` (the old channel is closed once
        the calls still on it finish, within ``timeout``).  UnavailableError when a TLS
        file cannot be read."""
        if self._channel is not None and address == self.address:
            return
        old = self._channel
        try:
            self._channel = open_channel(address, self.tls, channel_options())
        except ValueError as e:
            raise UnavailableError(f"cannot connect to {address}: {e}") from None
        self.address = address
        self._bind(self._channel)
        if old is not None:
            task = asyncio.get_running_loop().create_task(old.close(grace=self.timeout))
            self._retired = [(c, t) for c, t in self._retired if not t.done()]
            self._retired.append((old, task))

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
        run = Failover.call(self._route, name, loop.time(), timeout)
        while True:
            target = self._route.target()
            try:
                if target is None:  # etcd:// and no replica to try: ask etcd
                    address = self._route.address
                    lookup = run.lookup_timeout(loop.time())
                    target = await find_leader(address.etcd, address.prefix, lookup)
                    self._route.resolved(target)
                self._connect(target)
                stub = getattr(getattr(self, attr), name)
                return await stub(
                    request, timeout=run.remaining(loop.time()), metadata=self._metadata
                )
            except UnavailableError as e:  # from find_leader: etcd named no leader
                outcome = Outcome(Result.NO_LEADER, "", e.message, error=e)
            except grpc.aio.AioRpcError as e:
                outcome = call_outcome(e, target or "")
            decision = run.next(outcome, loop.time())
            if isinstance(decision, GiveUp):
                raise decision.error from None
            if isinstance(decision, Retry):
                if decision.step == "redirect":
                    log.info(
                        "%s: %s is not the leader; redirected to %s",
                        name,
                        outcome.target,
                        outcome.leader,
                    )
                elif decision.step == "failover":
                    log.info(
                        "%s: %s unavailable (%s); failing over",
                        name,
                        outcome.target,
                        outcome.reason,
                    )
                if decision.delay > 0:
                    await asyncio.sleep(decision.delay)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the client's channels; calls still running on them are cancelled.
        Safe to call twice; the client is not usable afterwards.  Cancelling it may
        leave a channel open."""
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
        ``session_secret(agent_id)`` hands it to another client.  InvalidArgumentError
        for a bad name, capability or label.  Cancelled, the agent may be registered
        all the same (it then goes offline for want of heartbeats)."""
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
        """A polling agent's heartbeat; returns its status (``"online"``, ``"busy"``,
        ...).  ``session_secret`` defaults to the one this client got from
        ``register_agent`` (PermissionDeniedError without the right one);
        FailedPreconditionError once the agent went offline (register again).
        Cancelling it cancels the call."""
        req = registry_pb2.HeartbeatRequest(
            agent_id=agent_id, session_secret=session_secret or self.session_secret(agent_id)
        )
        resp = await self._call(self._registry.Heartbeat, req)
        return types_pb2.AgentStatus.Name(resp.status).removeprefix("AGENT_STATUS_").lower()

    async def unregister_agent(self, agent_id: str) -> int:
        """Remove an agent; returns how many of its tasks were re-dispatched.
        NotFoundError for an unknown id.  Cancelled, it may have happened all the same."""
        resp = await self._call(
            self._registry.UnregisterAgent, registry_pb2.UnregisterAgentRequest(agent_id=agent_id)
        )
        return int(resp.tasks_redispatched)

    async def list_agents(
        self, *, include_offline: bool = False, type: str = ""
    ) -> list[AgentInfo]:
        """The agents the coordinator knows, of ``type`` if given (offline ones only with
        ``include_offline``).  Cancelling it cancels the call."""
        resp = await self._call(
            self._registry.ListAgents,
            registry_pb2.ListAgentsRequest(include_offline=include_offline, type=type),
        )
        return [AgentInfo.from_proto(a) for a in resp.agents]

    async def get_agent(self, agent_id: str) -> AgentInfo:
        """One agent; NotFoundError for an unknown id.  Cancelling it cancels the call."""
        resp = await self._call(
            self._registry.GetAgent, registry_pb2.GetAgentRequest(agent_id=agent_id)
        )
        return AgentInfo.from_proto(resp)

    async def get_coordinator_info(self) -> CoordinatorInfo:
        """The coordinator answering (in cluster mode, the leader): version, store.
        Cancelling it cancels the call."""
        resp = await self._call(
            self._registry.GetCoordinatorInfo, registry_pb2.GetCoordinatorInfoRequest()
        )
        return CoordinatorInfo.from_proto(resp)

    async def get_agent_capabilities(self, agent_id: str) -> list[str]:
        """The capability names an agent advertises; NotFoundError for an unknown id.
        Cancelling it cancels the call."""
        resp = await self._call(
            self._registry.GetAgentCapabilities,
            registry_pb2.GetAgentCapabilitiesRequest(agent_id=agent_id),
        )
        return [c.name for c in resp.capabilities]

    async def find_agents_by_capability(
        self, capability: str, *, include_offline: bool = False
    ) -> list[AgentInfo]:
        """Agents advertising ``capability``, best routing candidate first
        (InvalidArgumentError when it is empty).  Cancelling it cancels the call."""
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
        max_retries, priority, labels (ValueError for one out of range, TypeError for
        an unknown one).  FailedPreconditionError when no live agent can take it
        (unless ``wait_for_agent``: then it waits, pending), ResourceExhaustedError when
        the coordinator takes no new work for now, InvalidArgumentError for a bad task.
        Cancelled, the task may be submitted all the same: an ``idempotency_key`` makes
        a retry safe.
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
        """Submit several tasks at once; a bad one rejects the whole call (errors as
        ``assign_task``; ValueError for a task with an ``agent_id``: the protocol cannot
        pin tasks of a bulk call).  Cancelled, the tasks may be submitted all the same."""
        protos = []
        for t in tasks:
            if t.agent_id:
                raise ValueError("bulk_assign_tasks cannot pin a task: use assign_task(agent_id=)")
            protos.append(t.to_proto())
        req = task_pb2.BulkAssignTasksRequest(tasks=protos, wait_for_agent=wait_for_agent)
        resp = await self._call(self._tasks.BulkAssignTasks, req)
        return [TaskAssignment.from_proto(a) for a in resp.assignments]

    async def get_task_status(self, task_id: str) -> TaskAssignment:
        """Where a task stands; NotFoundError for an unknown id.  Cancelling it cancels
        the call."""
        resp = await self._call(
            self._tasks.GetTaskStatus, task_pb2.GetTaskStatusRequest(task_id=task_id)
        )
        return TaskAssignment.from_proto(resp)

    async def wait_task(self, task_id: str, timeout: float | None = None) -> TaskAssignment:
        """Wait until the task finishes (or ``timeout`` seconds pass; None: no limit) and
        return it, finished or not.  NotFoundError for an unknown id.  Cancelling it
        stops waiting; the task goes on."""
        req = task_pb2.WaitTaskRequest(task_id=task_id, timeout_ms=int((timeout or 0) * 1000))
        rpc_timeout = None if timeout is None else timeout + self.timeout
        resp = await self._invoke(self._tasks.WaitTask, req, rpc_timeout)
        return TaskAssignment.from_proto(resp)

    async def list_tasks(
        self, *, status: str = "", agent_id: str = "", limit: int = 100
    ) -> list[TaskAssignment]:
        """Tasks, of ``status`` (``"running"``, ...: ValueError for an unknown one) and
        ``agent_id`` if given, at most ``limit``.  Cancelling it cancels the call."""
        status_pb: Any = (
            types_pb2.TaskStatus.Value(f"TASK_STATUS_{status.upper()}") if status else 0
        )
        resp = await self._call(
            self._tasks.ListTasks,
            task_pb2.ListTasksRequest(status=status_pb, agent_id=agent_id, limit=limit),
        )
        return [TaskAssignment.from_proto(t) for t in resp.tasks]

    async def complete_task(self, task_id: str, result: Any = None, *, attempt: int = 0) -> bool:
        """Record a result. Returns False when the task had already finished.
        NotFoundError for an unknown id.  Cancelled, it may be recorded all the same."""
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
        """Record a failure. Returns False when the task had already finished.
        NotFoundError for an unknown id.  Cancelled, it may be recorded all the same."""
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
        """Cancel a task unless it finished (its agent is told to stop it) and return
        it.  NotFoundError for an unknown id.  Cancelled, the task may be cancelled all
        the same."""
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
        (``session_secret`` and its PermissionDeniedError as for ``heartbeat``;
        FailedPreconditionError for an agent that is offline or not a polling one).
        Cancelling it stops the poll; a task in a reply that never arrived stays this
        agent's until it times out or the agent is lost."""
        req = task_pb2.PollTasksRequest(
            agent_id=agent_id,
            max_tasks=max_tasks,
            wait_ms=int(wait * 1000),
            session_secret=session_secret or self.session_secret(agent_id),
        )
        resp = await self._call(self._tasks.PollTasks, req, timeout=wait + self.timeout)
        return [TaskAssignment.from_proto(t) for t in resp.tasks]
