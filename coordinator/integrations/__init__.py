"""Integrations: external services (``services``: their configuration; ``caller``: the
calls, through ``httpx``; ``policies``: circuit breaker, rate limit, cache). No gRPC
here: the API (``coordinator.api``) translates."""

from coordinator.integrations.caller import Result, ServiceClient
from coordinator.integrations.policies import CircuitBreaker, ResponseCache, TokenBucket
from coordinator.integrations.services import Auth, Operation, Policies, ServiceConfig

__all__ = [
    "Auth",
    "CircuitBreaker",
    "Operation",
    "Policies",
    "ResponseCache",
    "Result",
    "ServiceClient",
    "ServiceConfig",
    "TokenBucket",
]
