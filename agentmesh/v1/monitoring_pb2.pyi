from agentmesh.v1 import workflow_pb2 as _workflow_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HealthStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_STATUS_UNSPECIFIED: _ClassVar[HealthStatus]
    HEALTH_STATUS_HEALTHY: _ClassVar[HealthStatus]
    HEALTH_STATUS_DEGRADED: _ClassVar[HealthStatus]
    HEALTH_STATUS_UNHEALTHY: _ClassVar[HealthStatus]
HEALTH_STATUS_UNSPECIFIED: HealthStatus
HEALTH_STATUS_HEALTHY: HealthStatus
HEALTH_STATUS_DEGRADED: HealthStatus
HEALTH_STATUS_UNHEALTHY: HealthStatus

class EventFilter(_message.Message):
    __slots__ = ("execution_id", "workflow_name", "types", "agent_id")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    workflow_name: str
    types: _containers.RepeatedScalarFieldContainer[str]
    agent_id: str
    def __init__(self, execution_id: _Optional[str] = ..., workflow_name: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ..., agent_id: _Optional[str] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("filter", "from_sequence", "from_start", "stop_at_head")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FROM_START_FIELD_NUMBER: _ClassVar[int]
    STOP_AT_HEAD_FIELD_NUMBER: _ClassVar[int]
    filter: EventFilter
    from_sequence: int
    from_start: bool
    stop_at_head: bool
    def __init__(self, filter: _Optional[_Union[EventFilter, _Mapping]] = ..., from_sequence: _Optional[int] = ..., from_start: _Optional[bool] = ..., stop_at_head: _Optional[bool] = ...) -> None: ...

class SubscribeBatchesRequest(_message.Message):
    __slots__ = ("subscription", "max_delay_ms", "max_events")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MAX_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    subscription: SubscribeRequest
    max_delay_ms: int
    max_events: int
    def __init__(self, subscription: _Optional[_Union[SubscribeRequest, _Mapping]] = ..., max_delay_ms: _Optional[int] = ..., max_events: _Optional[int] = ...) -> None: ...

class SubscribeBatchesResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_workflow_pb2.Event]
    def __init__(self, events: _Optional[_Iterable[_Union[_workflow_pb2.Event, _Mapping]]] = ...) -> None: ...

class GetWorkflowMetricsRequest(_message.Message):
    __slots__ = ("workflow_name",)
    WORKFLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    workflow_name: str
    def __init__(self, workflow_name: _Optional[str] = ...) -> None: ...

class StepMetrics(_message.Message):
    __slots__ = ("count", "average_duration_ms", "error_rate", "retry_rate")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    RETRY_RATE_FIELD_NUMBER: _ClassVar[int]
    count: int
    average_duration_ms: float
    error_rate: float
    retry_rate: float
    def __init__(self, count: _Optional[int] = ..., average_duration_ms: _Optional[float] = ..., error_rate: _Optional[float] = ..., retry_rate: _Optional[float] = ...) -> None: ...

class ResourceUsage(_message.Message):
    __slots__ = ("cpu", "memory", "network")
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    cpu: float
    memory: float
    network: float
    def __init__(self, cpu: _Optional[float] = ..., memory: _Optional[float] = ..., network: _Optional[float] = ...) -> None: ...

class WorkflowMetrics(_message.Message):
    __slots__ = ("workflow_name", "total_executions", "active_executions", "success_rate", "average_duration_ms", "error_rate", "step_metrics", "agent_utilization", "resource_usage")
    class StepMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: StepMetrics
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[StepMetrics, _Mapping]] = ...) -> None: ...
    class AgentUtilizationEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    WORKFLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    STEP_METRICS_FIELD_NUMBER: _ClassVar[int]
    AGENT_UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_USAGE_FIELD_NUMBER: _ClassVar[int]
    workflow_name: str
    total_executions: int
    active_executions: int
    success_rate: float
    average_duration_ms: float
    error_rate: float
    step_metrics: _containers.MessageMap[str, StepMetrics]
    agent_utilization: _containers.ScalarMap[str, float]
    resource_usage: ResourceUsage
    def __init__(self, workflow_name: _Optional[str] = ..., total_executions: _Optional[int] = ..., active_executions: _Optional[int] = ..., success_rate: _Optional[float] = ..., average_duration_ms: _Optional[float] = ..., error_rate: _Optional[float] = ..., step_metrics: _Optional[_Mapping[str, StepMetrics]] = ..., agent_utilization: _Optional[_Mapping[str, float]] = ..., resource_usage: _Optional[_Union[ResourceUsage, _Mapping]] = ...) -> None: ...

class GetSystemMetricsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NetworkUsage(_message.Message):
    __slots__ = ("bytes_in", "bytes_out")
    BYTES_IN_FIELD_NUMBER: _ClassVar[int]
    BYTES_OUT_FIELD_NUMBER: _ClassVar[int]
    bytes_in: int
    bytes_out: int
    def __init__(self, bytes_in: _Optional[int] = ..., bytes_out: _Optional[int] = ...) -> None: ...

class ResourceUtilization(_message.Message):
    __slots__ = ("cpu", "memory", "network", "storage")
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    cpu: float
    memory: float
    network: NetworkUsage
    storage: float
    def __init__(self, cpu: _Optional[float] = ..., memory: _Optional[float] = ..., network: _Optional[_Union[NetworkUsage, _Mapping]] = ..., storage: _Optional[float] = ...) -> None: ...

class SystemMetrics(_message.Message):
    __slots__ = ("active_workflows", "total_tasks_processed", "tasks_per_second", "active_agents", "error_rate", "avg_task_latency_ms", "resource_utilization", "queue_sizes", "health_status")
    class QueueSizesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ACTIVE_WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TASKS_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    TASKS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_AGENTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    AVG_TASK_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    QUEUE_SIZES_FIELD_NUMBER: _ClassVar[int]
    HEALTH_STATUS_FIELD_NUMBER: _ClassVar[int]
    active_workflows: int
    total_tasks_processed: int
    tasks_per_second: float
    active_agents: int
    error_rate: float
    avg_task_latency_ms: float
    resource_utilization: ResourceUtilization
    queue_sizes: _containers.ScalarMap[str, int]
    health_status: HealthStatus
    def __init__(self, active_workflows: _Optional[int] = ..., total_tasks_processed: _Optional[int] = ..., tasks_per_second: _Optional[float] = ..., active_agents: _Optional[int] = ..., error_rate: _Optional[float] = ..., avg_task_latency_ms: _Optional[float] = ..., resource_utilization: _Optional[_Union[ResourceUtilization, _Mapping]] = ..., queue_sizes: _Optional[_Mapping[str, int]] = ..., health_status: _Optional[_Union[HealthStatus, str]] = ...) -> None: ...
