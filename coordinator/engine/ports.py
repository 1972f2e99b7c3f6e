"""What the workflow engine needs from the rest of the coordinator, as protocols.

The engine hands tasks to a ``Dispatcher`` and hears back through its listeners, and
service steps to a ``ServiceCaller``; it never sees the concrete mesh or service
registry (``coordinator.mesh.Mesh`` and ``coordinator.integrations.ServiceRegistry``
satisfy the protocols, and the server assembly passes them in), so the engine sits
beside them, not above them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from coordinator import domain as d
from coordinator.store import ExecutionRecord, StoredEvent
from coordinator.waits import WaitChange


class Journal(Protocol):
    """The global event log, as the engine feeds it (``coordinator.monitor.log``):
    a position for each event before its turn commits, then the outcome."""

    def assign(self) -> int:
        """The next position (increasing)."""
        ...

    def committed(self, record: ExecutionRecord, events: Sequence[StoredEvent]) -> None:
        """``events`` of ``record``'s execution are durable: publish them."""
        ...

    def abandoned(self, positions: Iterable[int]) -> None:
        """The commit of these positions failed: they will never be published."""
        ...


class Dispatcher(Protocol):
    """Routes tasks to agents and reports how they end."""

    #: The largest task input or output, in bytes of JSON, the mesh accepts.
    payload_bytes: int

    def capabilities(self, namespace: str | None = None) -> set[str]:
        """Every capability a registered agent (connected or not) of ``namespace``
        (None: of any) advertises."""
        ...

    def capability_open(self, capability: str, namespace: str = d.DEFAULT_NAMESPACE) -> bool:
        """Whether every connected agent of ``namespace`` with ``capability`` has its
        circuit breaker open (and there is one)."""
        ...

    def pinned_agent(self, capability: str, ref: str, namespace: str = d.DEFAULT_NAMESPACE) -> str:
        """The id of a routable agent of ``namespace`` with ``capability`` whose name,
        type or id is ``ref``, or "" when there is none (the task then goes to any
        capable agent of the namespace)."""
        ...

    def find_agents(
        self, capability: str, include_offline: bool = False, namespace: str = d.DEFAULT_NAMESPACE
    ) -> list[d.Agent]:
        """Agents of ``namespace`` advertising ``capability``, best routing candidate first."""
        ...

    def submit(self, spec: d.TaskSpec, wait_for_agent: bool = False) -> d.Task:
        """Accept a task (MeshError when refused: shutting down, full, bad input)."""
        ...

    def cancel(
        self, task_id: str, reason: str = "cancelled by request", namespace: str | None = None
    ) -> d.Task:
        """Cancel a task (NotFound if unknown)."""
        ...

    def waiting_reason(self, task_id: str) -> str:
        """Why the task waits for an agent, or "" when it does not."""
        ...

    def add_listener(self, listener: Callable[[d.Task], None]) -> None:
        """Call ``listener`` with each task that finishes."""
        ...

    def add_wait_listener(self, listener: Callable[[WaitChange], None]) -> None:
        """Call ``listener`` when a task starts or stops waiting for an agent."""
        ...


class ServiceAnswer(Protocol):
    """What an external service answered (``coordinator.integrations.caller.Result``)."""

    @property
    def value(self) -> Any:
        """The decoded answer (JSON, or text): a service step's output."""
        ...


class ServiceCaller(Protocol):
    """Calls registered external services for ``service`` steps."""

    async def call(
        self,
        namespace: str,
        name: str,
        operation: str,
        params: Mapping[str, Any],
        timeout_ms: int = 0,
    ) -> ServiceAnswer:
        """Call ``operation`` of ``namespace``'s service ``name``. Raises ``NotFound``,
        ``InvalidArgument``, ``ServiceRefused`` (4xx) or ``ServiceUnavailable``."""
        ...
