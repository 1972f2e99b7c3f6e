"""AgentMesh agent SDK: join a coordinator as an agent, or drive it as a client.

from agent_sdk import Agent
agent = Agent("planner", coordinator="localhost:50051", max_concurrency=4)

@agent.capability("task_planning")
async def plan(task):
    await task.progress(0.5, "halfway")
    return {"tasks": []}

agent.run()
"""

from agent_sdk._agent import SDK_VERSION, Agent
from agent_sdk._client import Client
from agent_sdk._errors import (
    AgentMeshError,
    AgentRejectedError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RetryableTaskError,
    RpcError,
    TaskError,
    UnauthenticatedError,
    UnavailableError,
)
from agent_sdk._integrations import ExternalService, ServiceCallResult
from agent_sdk._metrics import StepMetrics, SystemMetrics, WorkflowMetrics
from agent_sdk._monitoring import Event, EventFilter, EventStream, Subscription
from agent_sdk._task import AgentStats, Task
from agent_sdk._tls import TLS
from agent_sdk._types import (
    AgentInfo,
    CoordinatorInfo,
    EventResult,
    Execution,
    ExecutionEvent,
    ExecutionSummary,
    StepExecution,
    TaskAssignment,
    TaskFailure,
    TaskRequest,
    Trigger,
    ValidationIssue,
    ValidationResult,
    WorkflowInfo,
)
from agent_sdk._webhooks import DeadLetter, Webhook, sign_event, verify_webhook

__version__ = SDK_VERSION

__all__ = [  # noqa: RUF022 - grouped by use
    # agents
    "Agent",
    "AgentStats",
    "Task",
    # operator client
    "AgentInfo",
    "Client",
    "CoordinatorInfo",
    "TaskAssignment",
    "TaskFailure",
    "TaskRequest",
    # connecting
    "TLS",
    # workflows
    "EventResult",
    "Execution",
    "ExecutionEvent",
    "ExecutionSummary",
    "StepExecution",
    "Trigger",
    "ValidationIssue",
    "ValidationResult",
    "WorkflowInfo",
    # external services
    "ExternalService",
    "ServiceCallResult",
    # webhooks
    "DeadLetter",
    "Webhook",
    "sign_event",
    "verify_webhook",
    # monitoring
    "Event",
    "EventFilter",
    "EventStream",
    "StepMetrics",
    "Subscription",
    "SystemMetrics",
    "WorkflowMetrics",
    # errors
    "AgentMeshError",
    "AgentRejectedError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "UnauthenticatedError",
    "ResourceExhaustedError",
    "RetryableTaskError",
    "RpcError",
    "TaskError",
    "UnavailableError",
]
