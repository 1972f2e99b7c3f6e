"""A term: what one coordinator runs while it may act (mesh, store, engine, servicers)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from agentmesh.v1 import (
    agent_pb2_grpc,
    integration_pb2_grpc,
    monitoring_pb2_grpc,
    registry_pb2_grpc,
    task_pb2_grpc,
    workflow_pb2_grpc,
)
from coordinator.api.agent_service import AgentService
from coordinator.api.integrations import IntegrationService
from coordinator.api.monitoring import EventService, MetricsService
from coordinator.api.monitoring import register as register_events
from coordinator.api.router import capture
from coordinator.api.unary import RegistryService, TaskService
from coordinator.api.workflows import ExecutionService, WorkflowService
from coordinator.auth import Policy as AuthPolicy
from coordinator.config import Settings
from coordinator.domain import MeshEvent
from coordinator.engine.runtime import WorkflowRuntime
from coordinator.integrations.outbox import Outbox, Policy
from coordinator.integrations.registry import ServiceRegistry
from coordinator.mesh import Mesh
from coordinator.monitor.log import EventLog, Filter
from coordinator.secrets import provider_for, redactor_for
from coordinator.server.observe import Observability
from coordinator.store import Store

log = logging.getLogger(__name__)


class Term:
    """What one coordinator runs while it may act: mesh, store, engine and the
    servicers over them. A standalone coordinator has one term for its life; a
    cluster replica builds one each time it wins an election and discards it
    when it steps down (nothing of a term survives into the next)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        coordinator_id: str,
        observe: Observability | None = None,
        *,
        cluster: bool = False,
        policy: Callable[[], AuthPolicy] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.coordinator_id = coordinator_id
        self.cluster = cluster
        self.observe = observe = observe or Observability(settings)
        self.mesh = mesh = Mesh(settings)
        redactor = redactor_for(settings)
        self.log = events = EventLog(
            store,
            buffer=settings.event_buffer,
            output_bytes=settings.output_retention_bytes,
            redact=lambda exec_id, data: redactor.redact(data, self.runtime.secrets_of(exec_id)),
            parent_of=lambda exec_id: self.runtime.parent_of(exec_id),  # noqa: PLW0108 (not built yet)
        )
        secret_provider = provider_for(settings)
        self.services = services = ServiceRegistry(
            store,
            secret_provider.get,
            on_breaker=lambda namespace, service, old, new: events.emit(
                "service.breaker",
                namespace=namespace,
                message=f"service {service}: circuit breaker {old} -> {new}",
                data={"service": service, "from": old, "to": new},
            ),
        )
        self.outbox = outbox = Outbox(
            store,
            secret_provider.get,
            redactor,
            Policy(
                timeout_s=settings.webhook_timeout_ms / 1000,
                backoff_s=settings.webhook_backoff_ms / 1000,
                max_backoff_s=settings.webhook_max_backoff_ms / 1000,
                concurrency=settings.webhook_concurrency,
            ),
        )
        self.runtime = runtime = WorkflowRuntime(
            settings, mesh, store, redactor, events, services=services
        )
        runtime.on_commit = observe.prometheus.observe_commit
        mesh.observe(events)
        self.handlers = capture(
            lambda s: agent_pb2_grpc.add_AgentServiceServicer_to_server(
                AgentService(mesh, coordinator_id), s
            ),
            lambda s: registry_pb2_grpc.add_RegistryServiceServicer_to_server(
                RegistryService(mesh, coordinator_id, settings.store_kind, policy), s
            ),
            lambda s: task_pb2_grpc.add_TaskServiceServicer_to_server(
                TaskService(mesh, redactor), s
            ),
            lambda s: workflow_pb2_grpc.add_WorkflowServiceServicer_to_server(
                WorkflowService(runtime.catalog), s
            ),
            lambda s: workflow_pb2_grpc.add_ExecutionServiceServicer_to_server(
                ExecutionService(runtime), s
            ),
            lambda s: integration_pb2_grpc.add_IntegrationServiceServicer_to_server(
                IntegrationService(runtime, services, outbox), s
            ),
            lambda s: register_events(EventService(events, runtime, settings), s),
            lambda s: monitoring_pb2_grpc.add_MetricsServiceServicer_to_server(
                MetricsService(
                    settings,
                    observe.metrics,
                    mesh,
                    runtime,
                    observe.current,
                    lambda: bool(getattr(store, "available", True)),  # etcd's can say
                ),
                s,
            ),
            counted=observe.bytes,
        )

    async def start(self) -> None:
        """Open the store and the event log, load definitions, recover unfinished
        executions."""
        await self.store.open()
        await self.log.open()
        integrations = (self.services, self.outbox)
        self.observe.attach(self.log, self.mesh, self.runtime, self.store, integrations)
        self.log.emit(
            "cluster.leader_changed" if self.cluster else "coordinator.started",
            namespace="",
            data={"coordinator": self.coordinator_id},
        )
        await self.outbox.start()
        await self.outbox.catch_up(self._durable_after)
        self.log.add_listener(self.outbox.offer)  # at once: no event between the two
        await self.runtime.start()

    async def _durable_after(self, position: int) -> AsyncIterator[MeshEvent]:
        """Every published event after ``position``, of every namespace, up to the head
        (followed as it moves)."""
        every = Filter(namespace=None)
        while position < self.log.head:
            upto = self.log.head
            async for event in self.log.replay(position, upto, every):
                yield event
            position = upto

    async def drain(self, grace: float) -> None:
        """Graceful end: new steps stay outstanding in the history (the next
        coordinator on this store dispatches them), in-flight tasks finish, then
        what is left fails as retryable so waiting clients hear of it."""
        mesh = self.mesh
        self.runtime.freeze()
        mesh.begin_shutdown()
        idle = await mesh.wait_idle(grace)
        await self.runtime.stop()
        left = mesh.abandon_all("coordinator shut down before the task finished")
        mesh.disconnect_all("coordinator shutting down")
        await self.services.close()
        await self.outbox.close()
        self._end_log("coordinator shutting down")
        log.info(
            "drain %s; %d unfinished task(s) failed as retryable",
            "complete" if idle else "timed out",
            left,
        )

    async def abandon(self, reason: str) -> None:
        """Leadership lost: stop at once and write nothing more. Agents are
        disconnected (they find the new leader); their in-flight tasks are the
        new leader's to re-dispatch from the history."""
        self.runtime.freeze()
        self.mesh.stop_accepting()
        await self.runtime.stop(timeout=0)
        self.mesh.abandon_all(reason)
        self.mesh.disconnect_all(reason)
        await self.services.close()
        await self.outbox.close()
        self._end_log(reason)

    def _end_log(self, reason: str) -> None:
        self.log.close(reason)
        self.observe.detach(self.log)

    async def close(self) -> None:
        await self.store.close()
