"""What each RPC needs, and what each built-in role grants.

Every ``agentmesh.v1`` method needs exactly one permission (``METHODS``); a method
without a row is refused to everyone once auth is on, and
``tests/integration/test_authorization.py`` fails when the protocol gains a method that
has no row here. Permissions are plain names, ``area.verb``; a role is a set of them
(``*`` grants every permission). The policy file may redefine a role or add new ones
(``coordinator.auth.policy``); the method table is fixed by the code.
"""

from __future__ import annotations

from collections.abc import Mapping

_V1 = "/agentmesh.v1."

#: method path -> the permission a caller needs for it.
METHODS: Mapping[str, str] = {
    # Agents: the stream, and the unary protocol polling agents use.
    _V1 + "AgentService/Connect": "agents.connect",
    _V1 + "RegistryService/RegisterAgent": "agents.connect",
    _V1 + "RegistryService/Heartbeat": "agents.connect",
    _V1 + "RegistryService/UnregisterAgent": "agents.connect",
    _V1 + "TaskService/PollTasks": "agents.connect",
    _V1 + "TaskService/CompleteTask": "agents.connect",
    _V1 + "TaskService/FailTask": "agents.connect",
    # Reading the mesh.
    _V1 + "RegistryService/ListAgents": "agents.read",
    _V1 + "RegistryService/GetAgent": "agents.read",
    _V1 + "RegistryService/GetAgentCapabilities": "agents.read",
    _V1 + "RegistryService/FindAgentsByCapability": "agents.read",
    _V1 + "RegistryService/GetCoordinatorInfo": "agents.read",
    # The caller itself: who it is, what it may do (every built-in role has it).
    _V1 + "RegistryService/GetCaller": "caller.read",
    # Tasks submitted directly.
    _V1 + "TaskService/AssignTask": "tasks.assign",
    _V1 + "TaskService/BulkAssignTasks": "tasks.assign",
    _V1 + "TaskService/RunTask": "tasks.assign",
    _V1 + "TaskService/CancelTask": "tasks.cancel",
    _V1 + "TaskService/GetTaskStatus": "tasks.read",
    _V1 + "TaskService/WaitTask": "tasks.read",
    _V1 + "TaskService/WaitTasks": "tasks.read",
    _V1 + "TaskService/ListTasks": "tasks.read",
    # Workflow definitions.
    _V1 + "WorkflowService/DefineWorkflow": "workflows.define",
    _V1 + "WorkflowService/LoadWorkflow": "workflows.define",
    _V1 + "WorkflowService/SaveWorkflow": "workflows.define",
    _V1 + "WorkflowService/DeleteWorkflow": "workflows.define",
    _V1 + "WorkflowService/GetWorkflow": "workflows.read",
    _V1 + "WorkflowService/ListWorkflows": "workflows.read",
    _V1 + "WorkflowService/ValidateWorkflow": "workflows.read",
    # Executions.
    _V1 + "ExecutionService/StartWorkflow": "executions.start",
    _V1 + "ExecutionService/ResumeWorkflow": "executions.resume",
    _V1 + "ExecutionService/PauseWorkflow": "executions.pause",
    _V1 + "ExecutionService/StopWorkflow": "executions.stop",
    _V1 + "ExecutionService/GetExecutionStatus": "executions.read",
    _V1 + "ExecutionService/ListActiveExecutions": "executions.read",
    _V1 + "ExecutionService/ListExecutions": "executions.read",
    _V1 + "ExecutionService/GetExecutionHistory": "executions.read",
    _V1 + "ExecutionService/WaitExecution": "executions.read",
    # Monitoring.
    _V1 + "EventService/Subscribe": "events.subscribe",
    _V1 + "EventService/SubscribeBatches": "events.subscribe",
    _V1 + "MetricsService/GetWorkflowMetrics": "metrics.read",
    _V1 + "MetricsService/GetSystemMetrics": "metrics.read",
    # Integration.
    _V1 + "IntegrationService/RegisterExternalService": "integrations.manage",
    _V1 + "IntegrationService/DeleteExternalService": "integrations.manage",
    _V1 + "IntegrationService/GetExternalService": "integrations.read",
    _V1 + "IntegrationService/ListExternalServices": "integrations.read",
    _V1 + "IntegrationService/RegisterWebhook": "integrations.manage",
    _V1 + "IntegrationService/DeleteWebhook": "integrations.manage",
    _V1 + "IntegrationService/RedeliverDeadLetters": "integrations.manage",
    _V1 + "IntegrationService/GetWebhook": "integrations.read",
    _V1 + "IntegrationService/ListWebhooks": "integrations.read",
    _V1 + "IntegrationService/ListDeadLetters": "integrations.read",
    _V1 + "IntegrationService/ListTriggers": "integrations.read",
    _V1 + "IntegrationService/CallExternalService": "integrations.call",
    _V1 + "IntegrationService/TriggerEvent": "events.trigger",
}

#: Served to anyone, credentials or not: the probes' health checks.
HEALTH = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})
#: gRPC reflection (grpcurl's discovery): open unless ``auth_open_reflection`` is off,
#: then any authenticated principal may use it.
REFLECTION_PREFIXES = ("/grpc.reflection.v1alpha.", "/grpc.reflection.v1.")

#: Every permission a method can need, plus the namespace administration a later
#: release serves: the names a policy file may grant.
PERMISSIONS = frozenset({*METHODS.values(), "namespaces.manage"})

_READ = frozenset(p for p in PERMISSIONS if p.endswith((".read", ".subscribe")))

#: Permissions that only read: calls needing them are not written to the audit log
#: (refusals of them are).
READ_ONLY = _READ

_VIEWER = _READ
_OPERATOR = _VIEWER | {
    "tasks.assign",
    "tasks.cancel",
    "executions.start",
    "executions.resume",
    "executions.pause",
    "executions.stop",
    "events.trigger",
    "integrations.call",
}
_ADMIN = _OPERATOR | {"workflows.define", "integrations.manage", "namespaces.manage"}

#: The built-in roles. ``agent`` may connect and serve the capabilities its grant
#: names (a principal's ``capabilities``), and ask who it is; nothing else, not even reads.
DEFAULT_ROLES: Mapping[str, frozenset[str]] = {
    "agent": frozenset({"agents.connect", "caller.read"}),
    "viewer": frozenset(_VIEWER),
    "operator": frozenset(_OPERATOR),
    "admin": frozenset(_ADMIN),
}


def is_reflection(method: str) -> bool:
    """Whether ``method`` is a gRPC reflection call."""
    return method.startswith(REFLECTION_PREFIXES)
