"""The external services of every namespace: stored as documents of kind ``service``
(so they survive a restart and a failover), each served by a ``ServiceClient`` built on
first use and kept while this coordinator leads (its breaker, bucket and cache live
there). Registering a name again replaces the service (its client starts afresh);
deleting it closes its client."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coordinator.errors import NotFound
from coordinator.integrations.caller import Result, Secret, ServiceClient
from coordinator.integrations.policies import BreakerState
from coordinator.integrations.services import ServiceConfig
from coordinator.store import DocumentRecord, Store

KIND = "service"

OnBreaker = Callable[[str, str, BreakerState, BreakerState], None]


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """A service as ``list``/``get`` show it: its configuration and its state here."""

    config: ServiceConfig
    breaker: BreakerState = "closed"
    calls: int = 0
    cache_hits: int = 0
    cache_misses: int = 0


class ServiceRegistry:
    """Services by (namespace, name), read through from the store (module docstring).
    ``on_breaker(namespace, service, old, new)`` hears every breaker change."""

    def __init__(self, store: Store, secret: Secret, on_breaker: OnBreaker | None = None) -> None:
        self._store = store
        self._secret = secret
        self._on_breaker = on_breaker
        self._clients: dict[tuple[str, str], ServiceClient] = {}
        self._lock = asyncio.Lock()

    async def register(self, namespace: str, data: Mapping[str, Any]) -> ServiceConfig:
        """Check and store a service (``InvalidArgument`` names what is wrong)."""
        config = ServiceConfig.parse(data)
        record = DocumentRecord(KIND, config.name, config.to_data(), datetime.now(UTC), namespace)
        async with self._lock:
            await self._store.put_document(record)
            old = self._clients.pop((namespace, config.name), None)
        if old is not None:
            await old.close()
        return config

    async def delete(self, namespace: str, name: str) -> None:
        """Forget a service (``NotFound`` if there is none)."""
        async with self._lock:
            if not await self._store.delete_document(KIND, name, namespace):
                raise NotFound(_missing(name, namespace))
            old = self._clients.pop((namespace, name), None)
        if old is not None:
            await old.close()

    async def get(self, namespace: str, name: str) -> ServiceInfo:
        """One service and its state (``NotFound`` if there is none)."""
        return self._info(await self._client(namespace, name))

    async def list(self, namespace: str) -> list[ServiceInfo]:
        """The services of ``namespace``, by name."""
        infos = []
        for record in await self._store.list_documents(KIND, namespace):
            client = self._clients.get((namespace, record.name))
            infos.append(
                self._info(client) if client else ServiceInfo(ServiceConfig.parse(record.data))
            )
        return infos

    async def call(
        self,
        namespace: str,
        name: str,
        operation: str,
        params: Mapping[str, Any],
        timeout_ms: int = 0,
    ) -> Result:
        """Call ``operation`` of service ``name`` (``ServiceClient.call``)."""
        client = await self._client(namespace, name)
        return await client.call(operation, params, timeout_ms)

    def states(self) -> builtins.list[tuple[str, ServiceInfo]]:
        """(namespace, state) of every service called since this coordinator led (the
        others have a closed breaker and no calls): what metrics report."""
        return [(ns, self._info(c)) for (ns, _), c in sorted(self._clients.items())]

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    async def _client(self, namespace: str, name: str) -> ServiceClient:
        client = self._clients.get((namespace, name))
        if client is not None:
            return client
        async with self._lock:
            client = self._clients.get((namespace, name))
            if client is None:
                record = await self._store.get_document(KIND, name, namespace)
                if record is None:
                    raise NotFound(_missing(name, namespace))
                on_breaker = self._on_breaker
                client = ServiceClient(
                    ServiceConfig.parse(record.data),
                    self._secret,
                    on_breaker=(
                        (lambda s, o, n: on_breaker(namespace, s, o, n)) if on_breaker else None
                    ),
                )
                self._clients[(namespace, name)] = client
        return client

    @staticmethod
    def _info(client: ServiceClient) -> ServiceInfo:
        cache = client.cache
        return ServiceInfo(
            client.config,
            client.breaker.state,
            client.calls,
            cache.hits if cache else 0,
            cache.misses if cache else 0,
        )


def _missing(name: str, namespace: str) -> str:
    return (
        f"no external service {name[:80]!r} in namespace {namespace!r} (register it with "
        "RegisterExternalService, or `agentmesh service register`)"
    )
