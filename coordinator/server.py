"""The coordinator process: build the gRPC server, serve, shut down in order.

Shutdown order (SIGTERM or ``Coordinator.stop``): health NOT_SERVING -> an
optional readiness wait -> refuse new tasks and ask agents to drain -> wait
(up to the grace period) for in-flight tasks -> fail what is left, retryable,
so waiting clients hear of it -> stop the gRPC server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from agentmesh.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    integration_pb2,
    integration_pb2_grpc,
    monitoring_pb2,
    registry_pb2,
    registry_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
    workflow_pb2,
    workflow_pb2_grpc,
)
from coordinator.api.agent_service import AgentService
from coordinator.api.declared import add_declared_services
from coordinator.api.unary import RegistryService, TaskService
from coordinator.api.workflows import ExecutionService, IntegrationService, WorkflowService
from coordinator.config import Settings
from coordinator.engine.runtime import WorkflowRuntime
from coordinator.mesh import Mesh
from coordinator.store import Store, open_store

log = logging.getLogger(__name__)

SERVICE_NAMES = [
    agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
    registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name,
    task_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name,
    workflow_pb2.DESCRIPTOR.services_by_name["WorkflowService"].full_name,
    workflow_pb2.DESCRIPTOR.services_by_name["ExecutionService"].full_name,
    monitoring_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
    monitoring_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name,
    integration_pb2.DESCRIPTOR.services_by_name["IntegrationService"].full_name,
]


def server_options(settings: Settings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        # Detect vanished agents even when their stream is idle.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # Accept the SDK's 20 s client pings (the default would GOAWAY too_many_pings).
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.so_reuseport", 0),
    ]


class Coordinator:
    """One coordinator: the mesh plus its gRPC server.

    ``await start()`` binds and serves; ``await stop()`` shuts down in order and
    is safe to call twice. ``port`` is the bound port (useful with port 0).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.coordinator_id = settings.coordinator_id or f"{socket.gethostname()}:{os.getpid()}"
        self.mesh: Mesh | None = None
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self._monitor: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self.store: Store | None = None
        self.runtime: WorkflowRuntime | None = None

    async def start(self) -> None:
        s = self.settings
        self.mesh = mesh = Mesh(s)
        self.store = store = open_store(s.store_kind, s.store_path)
        await store.open()
        self.runtime = runtime = WorkflowRuntime(s, mesh, store)
        await runtime.start()
        server = grpc.aio.server(
            options=server_options(s), maximum_concurrent_rpcs=s.max_concurrent_rpcs
        )
        agent_pb2_grpc.add_AgentServiceServicer_to_server(
            AgentService(mesh, self.coordinator_id), server
        )
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(RegistryService(mesh), server)
        task_pb2_grpc.add_TaskServiceServicer_to_server(TaskService(mesh), server)
        workflow_pb2_grpc.add_WorkflowServiceServicer_to_server(WorkflowService(runtime), server)
        workflow_pb2_grpc.add_ExecutionServiceServicer_to_server(ExecutionService(runtime), server)
        integration_pb2_grpc.add_IntegrationServiceServicer_to_server(
            IntegrationService(runtime), server
        )
        add_declared_services(server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        self.port = server.add_insecure_port(s.listen)
        if self.port == 0:
            raise OSError(f"cannot bind {s.listen}")
        await server.start()
        self._server = server
        for name in ["", *SERVICE_NAMES]:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._monitor = asyncio.create_task(self._liveness_loop(), name="liveness")
        log.info("coordinator %s serving on %s (port %d)", self.coordinator_id, s.listen, self.port)

    @property
    def address(self) -> str:
        host = self.settings.listen.rpartition(":")[0]
        if host in ("0.0.0.0", "[::]", "::"):
            host = "127.0.0.1"
        return f"{host}:{self.port}"

    async def _liveness_loop(self) -> None:
        assert self.mesh is not None
        period = max(0.05, self.settings.heartbeat_interval_ms / 2000)
        while True:
            await asyncio.sleep(period)
            self.mesh.check_liveness()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def stop(self, grace: float | None = None) -> None:
        """Shut down in order; concurrent and repeated calls wait for the same stop."""
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop(grace))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float | None) -> None:
        s = self.settings
        grace = s.shutdown_grace_s if grace is None else grace
        await self._health.enter_graceful_shutdown()
        if s.readiness_drain_s:
            await asyncio.sleep(s.readiness_drain_s)
        mesh = self.mesh
        if mesh is not None:
            if self.runtime is not None:
                # New steps' tasks stay outstanding in the history: the next
                # coordinator on this store dispatches them.
                self.runtime.freeze()
            mesh.begin_shutdown()
            idle = await mesh.wait_idle(grace)
            if self.runtime is not None:
                await self.runtime.stop()
            left = mesh.abandon_all("coordinator shut down before the task finished")
            mesh.disconnect_all("coordinator shutting down")
            log.info(
                "drain %s; %d unfinished task(s) failed as retryable",
                "complete" if idle else "timed out",
                left,
            )
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self._server is not None:
            await self._server.stop(min(grace, 5.0))
        if self.store is not None:
            await self.store.close()
        self._stopped.set()


async def serve(settings: Settings) -> None:
    """Run a coordinator until SIGTERM or SIGINT, then shut down gracefully."""
    coordinator = Coordinator(settings)
    await coordinator.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"agentmesh coordinator listening on {coordinator.address}", flush=True)
    await stop.wait()
    log.info("signal received: draining")
    await coordinator.stop()
