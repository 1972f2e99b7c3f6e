"""Value types of the coordinator core. Protobuf never appears here.

JSON-like payloads are plain Python values (``Json``). Entities that change over
their life (``Agent``, ``Task``) are mutable dataclasses owned by ``mesh.Mesh``;
everything handed across a boundary is a frozen snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final, Protocol, TypeAlias

from agentmesh import protocol

Json: TypeAlias = bool | int | float | str | Sequence["Json"] | Mapping[str, "Json"] | None
JsonObject: TypeAlias = dict[str, Json]

#: The namespace of everything that names none (``agentmesh.protocol``'s).
DEFAULT_NAMESPACE: Final = protocol.DEFAULT_NAMESPACE


def utcnow() -> datetime:
    return datetime.now(UTC)


class AgentStatus(StrEnum):
    """An agent's state as the registry reports it (``Agent.status``)."""

    ONLINE = "online"
    BUSY = "busy"
    OFFLINE = "offline"
    ERROR = "error"
    DRAINING = "draining"


class TaskStatus(StrEnum):
    """A task's state; ``finished`` for the three final ones."""

    PENDING = "pending"
    ASSIGNED = "assigned"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Completed, failed or cancelled: nothing changes it any more."""
        return self in _FINISHED


_FINISHED = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """A structured task error: ``type`` is a short class name, e.g. ``TIMEOUT``."""

    type: str
    message: str
    retryable: bool = False
    details: JsonObject | None = None
    stack: str = ""


# Error types the coordinator itself produces.
TIMEOUT = "TIMEOUT"
AGENT_LOST = "AGENT_LOST"
CANCELLED = "CANCELLED"
SHUTDOWN = "COORDINATOR_SHUTDOWN"
TOO_MANY_REDELIVERIES = "TOO_MANY_REDELIVERIES"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"  # a result over the payload limits (agentmesh.payload)


@dataclass(frozen=True, slots=True)
class CapabilitySpec:
    """One capability an agent advertises: a name routing matches on, and what it is."""

    name: str
    description: str = ""
    version: str = ""


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """What an agent says about itself when it joins (Hello or RegisterAgent)."""

    name: str
    type: str
    capabilities: tuple[CapabilitySpec, ...]
    max_concurrency: int
    labels: Mapping[str, str] = field(default_factory=dict)
    sdk_version: str = ""
    agent_id: str = ""  # requested id when reconnecting
    session_secret: str = ""  # with agent_id: the proof from that agent's last Welcome
    # The one namespace it joins: it is routed that namespace's tasks only.
    namespace: str = DEFAULT_NAMESPACE


@dataclass(frozen=True, slots=True)
class TraceParent:
    """Where a task's attempts hang in a trace (``coordinator.monitor.tracing``): the
    trace and the span of the step run that dispatched it."""

    trace_id: int
    span_id: int


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task as submitted; defaults are filled in by the mesh."""

    capability: str
    input: JsonObject = field(default_factory=dict)
    name: str = ""
    timeout_ms: int = 0
    idempotency_key: str = ""
    max_retries: int | None = None
    priority: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    execution_id: str = ""
    step_id: str = ""
    agent_id: str = ""  # pin to this agent
    # Set by the engine only: the input is a value it computed and already checked
    # against agentmesh.payload's limits (never from a request).
    input_checked: bool = False
    # Only agents of this namespace are routed it; other namespaces never see it.
    namespace: str = DEFAULT_NAMESPACE
    # Set by the engine only: what its execution knows to be secret (field names,
    # normalised, and values), so answers about the task redact them.
    secret_names: frozenset[str] = frozenset()
    secret_values: frozenset[str] = frozenset()
    # Set by the engine only, with tracing on: its attempts' spans are children of this.
    trace: TraceParent | None = None


class AgentSink(Protocol):
    """How the mesh talks to a connected agent. Every method must not block."""

    def send_tasks(self, tasks: Sequence[Task]) -> None:
        """Hand ``tasks`` to the agent (its stream, or its mailbox for polling)."""
        ...

    def send_cancel(self, task_id: str, attempt: int, reason: str) -> None:
        """Tell the agent to stop attempt ``attempt`` of ``task_id``."""
        ...

    def send_drain(self, reason: str) -> None:
        """Ask the agent to finish what it holds and expect nothing new."""
        ...

    def close(self, reason: str) -> None:
        """End the agent's session (its stream closes; a poller's next call fails)."""
        ...


@dataclass(eq=False, slots=True)
class Agent:
    """One registered agent, owned and changed by the mesh (others read snapshots of it:
    ``api.convert.agent_info``). ``in_flight`` holds the attempts it has slots for."""

    id: str
    name: str
    type: str
    capabilities: tuple[CapabilitySpec, ...]
    max_concurrency: int
    labels: Mapping[str, str]
    sdk_version: str
    transport: str  # "stream" | "poll"
    session_id: str
    sink: AgentSink | None
    # Known only to the agent (Welcome / RegisterAgentResponse): resuming this id, or
    # acting as this polling agent, takes it. Never part of AgentInfo.
    session_secret: str
    credits: int
    connected_at: datetime
    last_seen: float  # monotonic
    last_seen_wall: datetime
    connected: bool = True
    draining: bool = False
    healthy: bool = True
    # Set by the first Heartbeat. A stream agent that never sends one is judged by its
    # transport (HTTP/2 keepalive closes a dead peer's stream); one that has, and every
    # polling agent, goes offline after heartbeat_timeout_ms of silence.
    heartbeats: bool = False
    # Slots held on this agent: (task id, attempt) -> task. Freed only when the
    # agent reports on that attempt or goes away, so flow control stays honest.
    in_flight: dict[tuple[str, int], Task] = field(default_factory=dict)
    completed: int = 0
    failed: int = 0
    total_duration_ms: float = 0.0
    capability_names: frozenset[str] = frozenset()
    namespace: str = DEFAULT_NAMESPACE
    # Its circuit breaker (coordinator.mesh.breakers): closed, open (out of routing until
    # ``breaker_until``, monotonic) or half-open (routable: the next result decides).
    breaker: str = "closed"
    breaker_until: float = 0.0
    outcomes: list[bool] = field(default_factory=list)  # its latest results, True: ok

    @property
    def status(self) -> AgentStatus:
        """Offline, draining, error (unhealthy, or its breaker open), busy (no free
        credit) or online."""
        if not self.connected:
            return AgentStatus.OFFLINE
        if self.draining:
            return AgentStatus.DRAINING
        if not self.healthy or self.breaker == "open":
            return AgentStatus.ERROR
        if len(self.in_flight) >= self.credits:
            return AgentStatus.BUSY
        return AgentStatus.ONLINE

    @property
    def routable(self) -> bool:
        """Whether new tasks may go to it: connected, not draining, healthy, its
        breaker not open."""
        return self.connected and not self.draining and self.healthy and self.breaker != "open"

    @property
    def free_credits(self) -> int:
        """Slots left in its window."""
        return self.credits - len(self.in_flight)

    @property
    def load_factor(self) -> float:
        """Held attempts over its window, 0..1 (1 with no window)."""
        if self.credits <= 0:
            return 1.0
        return min(1.0, len(self.in_flight) / self.credits)

    @property
    def success_rate(self) -> float:
        """Completed over finished tasks (1.0 before any finished)."""
        finished = self.completed + self.failed
        return 1.0 if finished == 0 else self.completed / finished

    @property
    def average_task_duration_ms(self) -> float:
        """Mean duration of its finished tasks, in milliseconds."""
        finished = self.completed + self.failed
        return 0.0 if finished == 0 else self.total_duration_ms / finished


@dataclass(eq=False, slots=True)
class Task:
    """One task, owned and changed by the mesh from submission to its final status;
    ``attempt`` counts deliveries, ``retry_count`` the retries after failures."""

    id: str
    name: str
    capability: str
    input: JsonObject
    timeout_ms: int
    idempotency_key: str
    max_retries: int
    priority: int
    labels: Mapping[str, str]
    execution_id: str
    step_id: str
    pinned_agent: str
    created_at: datetime
    seq: int  # submission order, FIFO within a priority
    status: TaskStatus = TaskStatus.PENDING
    attempt: int = 0
    retry_count: int = 0
    redeliveries: int = 0
    agent_id: str = ""
    assigned_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    dispatched_mono: float = 0.0
    deadline: datetime | None = None
    result: Json = None
    error: TaskFailure | None = None
    progress: float = 0.0
    progress_message: str = ""
    queued: bool = False
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    namespace: str = DEFAULT_NAMESPACE
    secret_names: frozenset[str] = frozenset()  # from its TaskSpec
    secret_values: frozenset[str] = frozenset()
    trace: TraceParent | None = None  # from its TaskSpec

    def queue_key(self) -> tuple[int, int]:
        """Its place in a queue: higher priority first, then submission order."""
        return (-self.priority, self.seq)


@dataclass(frozen=True, slots=True)
class MeshEvent:
    """One entry of the coordinator's event log, as subscribers and metrics see it.

    ``position`` is the log's global order (``coordinator.monitor``): strictly
    increasing, not contiguous, shared by durable events (an execution's journal, read
    back from the store) and live ones (agents, tasks outside workflows, the cluster).
    ``lineage`` is the execution's id, then its parent's, up to the top-level execution
    ("" ids dropped), so a filter on an execution also matches its children. ``data``
    is JSON-like and already redacted for what it may show.
    """

    position: int
    type: str
    time: datetime
    namespace: str = DEFAULT_NAMESPACE
    execution_id: str = ""
    workflow_name: str = ""
    step_id: str = ""
    task_id: str = ""
    agent_id: str = ""
    message: str = ""
    data: JsonObject = field(default_factory=dict)
    lineage: tuple[str, ...] = ()
    durable: bool = False


class EventSink(Protocol):
    """Where live events go (``coordinator.monitor.log.EventLog.emit``): the mesh
    reports agents and tasks through it without knowing the log."""

    def emit(
        self,
        type_: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        execution_id: str = "",
        workflow_name: str = "",
        step_id: str = "",
        task_id: str = "",
        agent_id: str = "",
        message: str = "",
        data: JsonObject | None = None,
        time: datetime | None = None,
    ) -> None:
        """Publish one live event of ``type_`` (``namespace`` "": every namespace)."""
        ...
