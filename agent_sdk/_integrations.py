"""The external-service methods of ``Client`` (a mixin), and their value types.

A service is registered once (its base URL, its operations, the *name* of the secret
holding its credentials: the coordinator resolves it at each call, so the secret never
travels through a client), then called by name from clients and workflow steps. The
coordinator applies the service's policies: timeout, retries, circuit breaker, rate
limit, cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format

from agent_sdk._errors import InvalidArgumentError
from agentmesh import wire
from agentmesh.v1 import integration_pb2

#: The service's policy fields (ExternalServiceConfig), as ``policies`` keys.
POLICY_FIELDS = (
    "timeout_ms",
    "rate_limit_per_second",
    "rate_limit_burst",
    "max_attempts",
    "backoff_ms",
    "max_backoff_ms",
    "breaker_failures",
    "breaker_open_ms",
    "cache_ttl_ms",
    "cache_entries",
)


@dataclass(frozen=True, slots=True)
class ExternalService:
    """A registered service: its configuration (``operations``: name -> (method,
    path); ``policies``: the ``POLICY_FIELDS`` in effect) and its state on the
    coordinator (``breaker``: closed, open or half-open; calls that reached it; cache
    hits and misses)."""

    name: str
    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    operations: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    auth_secret_ref: str = ""
    auth_scheme: str = ""
    policies: Mapping[str, float] = field(default_factory=dict)
    breaker: str = "closed"
    calls: int = 0
    cache_hits: int = 0
    cache_misses: int = 0


@dataclass(frozen=True, slots=True)
class ServiceCallResult:
    """A call's answer: ``value`` (decoded JSON, or text), the HTTP status, whether the
    cache answered, and the requests it took (0 from the cache)."""

    value: Any
    http_status: int
    cached: bool = False
    attempts: int = 1


def _service(info: integration_pb2.ExternalServiceInfo) -> ExternalService:
    c = info.config
    return ExternalService(
        name=c.name,
        base_url=c.base_url,
        headers=dict(c.headers),
        operations={n: (o.method or "GET", o.path) for n, o in c.operations.items()},
        auth_secret_ref=c.auth_secret_ref,
        auth_scheme=c.auth_scheme,
        policies={f: getattr(c, f) for f in POLICY_FIELDS},
        breaker=info.breaker_state or "closed",
        calls=info.calls,
        cache_hits=info.cache_hits,
        cache_misses=info.cache_misses,
    )


class IntegrationMethods:
    """Mixed into Client: ``self._integration`` and ``self._call`` come from there."""

    _integration: Any

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError

    async def register_external_service(
        self,
        name: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        operations: Mapping[str, tuple[str, str] | str] | None = None,
        auth_secret_ref: str = "",
        auth_scheme: str = "",
        **policies: float,
    ) -> str:
        """Register (or replace) service ``name`` in the client's namespace; returns
        its id (the name). ``operations`` maps a name to ``(method, path)`` or to
        ``"METHOD /path"``; ``auth_secret_ref`` names the secret with the credentials
        (``auth_scheme``: bearer, basic or header:<Name>); ``policies`` are
        ``POLICY_FIELDS`` (e.g. ``timeout_ms=2000, cache_ttl_ms=60000``).  Cancelled, it
        may be registered all the same."""
        unknown = sorted(set(policies) - set(POLICY_FIELDS))
        if unknown:
            raise InvalidArgumentError(
                f"unknown service policies {unknown}; known: {', '.join(POLICY_FIELDS)}"
            )
        ops = {}
        for op_name, spec in (operations or {}).items():
            method, path = spec.split(" ", 1) if isinstance(spec, str) else spec
            ops[op_name] = integration_pb2.ExternalOperation(method=method, path=path.strip())
        config = json_format.ParseDict(
            {k: v for k, v in policies.items() if v},
            integration_pb2.ExternalServiceConfig(
                name=name,
                base_url=base_url,
                headers=dict(headers or {}),
                auth_secret_ref=auth_secret_ref,
                auth_scheme=auth_scheme,
                operations=ops,
            ),
        )
        req = integration_pb2.RegisterExternalServiceRequest(service=config)
        r = await self._call(self._integration.RegisterExternalService, req)
        return str(r.service_id)

    async def get_external_service(self, name: str) -> ExternalService:
        """One service and its state (NotFoundError if there is none).  Cancelling it
        cancels the call."""
        req = integration_pb2.GetExternalServiceRequest(service_id=name)
        r = await self._call(self._integration.GetExternalService, req)
        return _service(r.service)

    async def list_external_services(self) -> list[ExternalService]:
        """The client's namespace's services, by name.  Cancelling it cancels the call."""
        req = integration_pb2.ListExternalServicesRequest()
        r = await self._call(self._integration.ListExternalServices, req)
        return [_service(s) for s in r.services]

    async def delete_external_service(self, name: str) -> None:
        """Forget a service (NotFoundError if there is none).  Cancelled, it may be
        deleted all the same."""
        req = integration_pb2.DeleteExternalServiceRequest(service_id=name)
        await self._call(self._integration.DeleteExternalService, req)

    async def call_external_service(
        self,
        service: str,
        operation: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout_ms: int = 0,
    ) -> ServiceCallResult:
        """Call ``operation`` (a declared one's name, or ``"METHOD /path"``) of
        ``service`` with ``params``. The service refusing (4xx) raises
        FailedPreconditionError; unreachable, failing after its retries or behind its
        open breaker, UnavailableError.  Cancelled, the request may have reached the
        service all the same."""
        req = integration_pb2.CallExternalServiceRequest(
            service_id=service,
            operation=operation,
            params=wire.to_struct(dict(params or {})),
            timeout_ms=timeout_ms,
        )
        timeout = (
            None if not timeout_ms else max(getattr(self, "timeout", 0), timeout_ms / 1000 + 5)
        )
        r = await self._call(self._integration.CallExternalService, req, timeout)
        return ServiceCallResult(wire.from_value(r.result), r.http_status, r.cached, r.attempts)
