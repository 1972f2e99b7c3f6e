"""The value types of the seed's metrics calls (``Client.get_workflow_metrics`` and
``get_system_metrics``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StepMetrics:
    """One step's numbers within a workflow."""

    count: int
    average_duration_ms: float
    error_rate: float
    retry_rate: float


@dataclass(frozen=True, slots=True)
class WorkflowMetrics:
    """The seed's ``WorkflowMetrics``: one workflow in the client's namespace."""

    workflow_name: str
    total_executions: int
    active_executions: int
    success_rate: float
    average_duration_ms: float
    error_rate: float
    step_metrics: dict[str, StepMetrics] = field(default_factory=dict)
    agent_utilization: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SystemMetrics:
    """The seed's ``SystemMetrics``: the client's namespace (resources: the process).
    ``memory``, ``storage``, ``network_in``/``network_out`` are bytes; ``cpu`` is percent
    of one core; ``health_status`` is ``healthy``, ``degraded`` or ``unhealthy``."""

    active_workflows: int
    total_tasks_processed: int
    tasks_per_second: float
    active_agents: int
    error_rate: float
    avg_task_latency_ms: float
    cpu: float
    memory: float
    network_in: int
    network_out: int
    storage: float
    queue_sizes: dict[str, int]
    health_status: str
