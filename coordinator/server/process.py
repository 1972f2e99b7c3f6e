"""The coordinator process: build the gRPC server, serve, shut down in order.

Shutdown order (SIGTERM or ``Coordinator.stop``): health NOT_SERVING -> an
optional readiness wait -> refuse new tasks and ask agents to drain -> wait
(up to the grace period) for in-flight tasks -> fail what is left, retryable,
so waiting clients hear of it -> stop the gRPC server -> stop the probe listener ->
stop the HTTP listener.

The HTTP listener (``http_listen``: ``server.http``, ``server.web``, ``server.inbound``)
serves the API over Connect and SSE (through a private Unix socket on this gRPC server,
``ports.Loopback``), metrics, probes and signed inbound events, over TLS when the gRPC
listener has it.

With ``probe_listen`` set, a second, plaintext listener serves ``grpc.health.v1.Health``
only (the main server's own health servicer, so both report the same states), for
probes that cannot speak TLS (the kubelet's). It binds with the main one, stops after
it (so probes see NOT_SERVING for the whole drain) and serves nothing else: no AgentMesh
service, no reflection, no auth (health is open anyway).

With auth on, the guard's open streams are decided again while they last (a task
started with the server: ``coordinator.auth.streams``), so a revoked credential ends
its streams.

The process supervises its parts: when one dies (a standalone coordinator's workflow
engine on a failed store write, a replica's cluster loop), health goes NOT_SERVING at
once, ``failed`` is set, and ``serve`` shuts down in the same order and returns a
non-zero exit status, so a supervisor (Kubernetes, systemd) restarts the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.sdk.trace.export import SpanExporter

from agentmesh.protocol import (
    SERVER_KEEPALIVE_MS,
    SERVER_KEEPALIVE_TIMEOUT_MS,
    SERVER_MIN_PING_INTERVAL_MS,
)
from coordinator import errors
from coordinator.api.guard import Guard
from coordinator.api.router import SERVICE_NAMES, Handlers, Router, Static, capture
from coordinator.auth import ANY, AuditLog, Authenticator
from coordinator.auth.authenticator import Credentials
from coordinator.config import Settings
from coordinator.engine.runtime import WorkflowRuntime
from coordinator.mesh import Mesh
from coordinator.server.http import HttpListener, server_ssl_context
from coordinator.server.inbound import add_inbound
from coordinator.server.observe import Observability, tracing_for
from coordinator.server.ports import Loopback, bind, check_bind
from coordinator.server.term import Term
from coordinator.server.tls import ReloadingCredentials
from coordinator.server.web import add_web
from coordinator.store import SqliteStore, Store, open_store

if TYPE_CHECKING:
    from coordinator.server.replica import ClusterNode

log = logging.getLogger(__name__)


def server_options(settings: Settings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        # Detect vanished agents even when their stream is idle (and judge the stream
        # agents that send no heartbeats: Mesh.check_liveness).
        ("grpc.keepalive_time_ms", SERVER_KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", SERVER_KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        # Accept the SDK's client pings (the default would GOAWAY too_many_pings).
        ("grpc.http2.min_recv_ping_interval_without_data_ms", SERVER_MIN_PING_INTERVAL_MS),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.so_reuseport", 0),
    ]


class Coordinator:
    """One coordinator: its gRPC server, health, and (standalone) one term or
    (cluster mode, ``state_persistence: etcd``) a replica that holds a term only
    while it leads.

    ``await start()`` binds and serves; ``await stop()`` shuts down in order and
    is safe to call twice. ``port`` is the bound port (useful with port 0).
    """

    def __init__(self, settings: Settings, *, span_exporter: SpanExporter | None = None) -> None:
        self.settings = settings
        self.coordinator_id = settings.coordinator_id or f"{socket.gethostname()}:{os.getpid()}"
        self.term: Term | None = None
        self.replica: ClusterNode | None = None
        self.port = 0
        # The listener's TLS (None: plaintext): its certificate follows file changes.
        self.tls: ReloadingCredentials | None = None
        # Who may call (None: auth is off, every caller may do everything) and the
        # record of what they did.
        self.authenticator: Authenticator | None = None
        self.guard: Guard | None = None
        self.audit = AuditLog()
        self._server: grpc.aio.Server | None = None
        # The plaintext health-only listener (``probe_listen``; None: off) and its port.
        self._probe: grpc.aio.Server | None = None
        self.probe_port = 0
        self._revocations: asyncio.Task[None] | None = None
        #: Metrics, Prometheus, traces, resources: one per process, fed by each term.
        self.observe = Observability(
            settings, tracing_for(settings, self.coordinator_id, span_exporter)
        )
        self.http: HttpListener | None = None
        self._loopback: Loopback | None = None  # the HTTP gateway's way in (http_listen)
        self._ready = False
        self._health = health.aio.HealthServicer()
        self.router = Router(self._refusal, self._persist_refusal)
        self._monitor: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None
        # Set when a part died and the process should exit non-zero; ``failure`` says why.
        self.failed = asyncio.Event()
        self.failure = ""

    # The current term's parts (None on a follower).
    @property
    def mesh(self) -> Mesh | None:
        """The current term's mesh (None on a follower or between terms)."""
        return self.term.mesh if self.term else None

    @property
    def runtime(self) -> WorkflowRuntime | None:
        """The current term's workflow runtime (None without a term)."""
        return self.term.runtime if self.term else None

    @property
    def store(self) -> Store | None:
        """The current term's store (None without a term)."""
        return self.term.store if self.term else None

    async def start(self) -> None:
        """Bind, open the store and recover (standalone), serve. Raises ``ListenError``
        when the address cannot be bound (before the store is created or opened),
        ``StoreLocked`` when another coordinator has the store; a start that fails
        releases whatever it took (the store's lock too)."""
        s = self.settings
        server = self._server_for(s)
        probe = self._probe
        term: Term | None = None
        try:
            if not s.clustered:
                store = open_store(s.store_kind, s.store_path, holder=self._holder(s.listen))
                term = self.new_term(store)
                await term.start()
            await server.start()
            if probe is not None:
                await probe.start()
            if self._loopback is not None:
                http = add_inbound(self._http_for(s), s, lambda: self.runtime)
                self.http = add_web(http, self._loopback.target, s)
                await self.http.start()
            await self.observe.start()
        except BaseException:
            if term is not None:
                await term.abandon("the coordinator failed to start")
                await term.close()
            for bound in (probe, server):  # release the ports
                if bound is not None:
                    await bound.stop(None)
            if self.http is not None:
                await self.http.stop()
                self.http = None
            await self.observe.stop()
            self._probe = None
            if self._loopback is not None:
                self._loopback.remove()
            raise
        self._server = server
        if self.guard is not None:
            self._revocations = asyncio.create_task(
                self.guard.streams.watch(), name="stream-revocations"
            )
        # "liveness": the event loop answers. Unlike "", it stays SERVING while etcd is
        # unreachable, so a liveness probe does not restart every replica in an outage.
        await self._health.set("liveness", health_pb2.HealthCheckResponse.SERVING)
        if s.clustered:
            from coordinator.server.replica import ClusterNode  # imports aetcd: cluster only

            await self._set_health(overall=False, services=False)
            self.replica = ClusterNode(self, s)
            self.replica.on_fatal(lambda: self._fail("the cluster node stopped unexpectedly"))
            self.replica.start()
            log.info(
                "coordinator %s serving on %s (port %d), cluster mode on etcd %s%s%s",
                self.coordinator_id,
                s.listen,
                self.port,
                ",".join(s.endpoints),
                self._probe_mode(),
                self._http_mode(),
            )
        else:
            assert term is not None
            if isinstance(term.store, SqliteStore):
                term.store.describe(self._holder(self.address))
            await self.install(term)
            self._watch = asyncio.create_task(self._watch_engine(term), name="engine-watch")
            log.info(
                "coordinator %s serving on %s (port %d%s)%s%s",
                self.coordinator_id,
                s.listen,
                self.port,
                self._tls_mode(),
                self._probe_mode(),
                self._http_mode(),
            )

    def _server_for(self, s: Settings) -> grpc.aio.Server:
        """The gRPC server with every service registered, bound (``self.port``)."""
        if s.auth_enabled:  # ConfigError (exit 2) if a file is unusable
            self.authenticator = Authenticator(s)
            self.audit = AuditLog(s.audit_log)
        interceptors: list[grpc.aio.ServerInterceptor] = []
        if self.authenticator is not None:
            self.guard = Guard(
                self.authenticator,
                self.audit,
                open_reflection=s.auth_open_reflection,
                mutual=bool(s.tls_client_ca),
            )
            interceptors.append(self.guard)
        server = grpc.aio.server(
            options=server_options(s),
            maximum_concurrent_rpcs=s.max_concurrent_rpcs,
            interceptors=interceptors,
        )
        server.add_generic_rpc_handlers((self.router,))
        # Health through ``capture`` too, so garbage sent to it gets INVALID_ARGUMENT like
        # every other call (api/decoding.py). Reflection is registered directly: it picks
        # its asyncio servicer only for a real aio server.
        health_handlers = capture(
            lambda sink: health_pb2_grpc.add_HealthServicer_to_server(self._health, sink)
        )
        server.add_generic_rpc_handlers((Static(health_handlers),))
        reflection.enable_server_reflection(
            [*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        check_bind(s.listen, "")
        if s.probe_listen:
            check_bind(s.probe_listen, " (probe_listen)")
        if s.http_listen:
            check_bind(s.http_listen, " (http_listen)")
        if s.tls_cert:
            self.tls = ReloadingCredentials(s)  # ConfigError if the files are unusable
        credentials = self.tls.server_credentials() if self.tls is not None else None
        self.port = bind(server, s.listen, credentials, "")
        if s.http_listen:
            self._loopback = Loopback(server)
        if s.probe_listen:
            self._probe = self._probe_server_for(s, health_handlers)
        return server

    def _probe_server_for(self, s: Settings, health_handlers: Handlers) -> grpc.aio.Server:
        """The plaintext listener ``probe_listen``: the main server's health handlers
        (the same servicer, so the same states) and nothing else, bound
        (``self.probe_port``). No interceptors: health is never guarded."""
        server = grpc.aio.server(
            options=[("grpc.so_reuseport", 0)], maximum_concurrent_rpcs=s.max_concurrent_rpcs
        )
        server.add_generic_rpc_handlers((Static(health_handlers),))
        self.probe_port = bind(server, s.probe_listen, None, " (probe_listen)")
        return server

    def _http_for(self, s: Settings) -> HttpListener:
        """The HTTP listener ``http_listen`` (not started)."""
        return HttpListener(
            s.http_listen,
            metrics=self.observe.prometheus.render,
            health=lambda: self._ready,
            ssl_context=server_ssl_context(s.tls_cert, s.tls_key) if s.tls_cert else None,
            authorize=self._authorize_http if self.authenticator is not None else None,
            cors_origins=s.http_cors_origins,
        )

    async def _authorize_http(self, header: str | None) -> str | None:
        """None when ``header`` may read /metrics (every namespace), else why not."""
        authenticator = self.authenticator
        if authenticator is None:
            return None
        if header is None:
            return "/metrics needs 'Authorization: Bearer <token>'"
        try:
            principal = await authenticator.authenticate(Credentials(authorization=header))
        except errors.Unauthenticated as e:
            return str(e)
        decision = authenticator.policy.decide(
            principal, "/agentmesh.v1.MetricsService/GetSystemMetrics", ANY
        )
        if not decision.allowed:
            return f"/metrics: {decision.reason}"
        return None

    def _http_mode(self) -> str:
        return "" if self.http is None else f"; metrics and probes on {self.http.url}"

    def _probe_mode(self) -> str:
        if self._probe is None:
            return ""
        host = self.settings.probe_listen.rpartition(":")[0]
        return f", health probes in plaintext on {host}:{self.probe_port}"

    def _tls_mode(self) -> str:
        if self.tls is None:
            return ", plaintext"
        return ", mutual TLS" if self.tls.mutual else ", TLS"

    def _holder(self, address: str) -> str:
        return f"coordinator {self.coordinator_id} (pid {os.getpid()}, listening on {address})"

    async def _watch_engine(self, term: Term) -> None:
        """Standalone: a dead engine (a store write failed) makes the whole process
        unhealthy and ends it; a replica's node steps down instead (see ClusterNode)."""
        await term.runtime.failed.wait()
        await self._set_health(overall=False, services=False)
        self._fail(f"the workflow engine stopped: {term.runtime.failure}")

    def _fail(self, reason: str) -> None:
        if not self.failed.is_set():
            log.error("%s; shutting down (exit status 1)", reason)
            self.failure = reason
            self.failed.set()

    def new_term(self, store: Store) -> Term:
        """A new term over ``store`` (not started, not installed)."""
        authenticator = self.authenticator
        return Term(
            self.settings,
            store,
            self.coordinator_id,
            self.observe,
            cluster=self.settings.clustered,
            policy=None if authenticator is None else lambda: authenticator.policy,
        )

    async def install(self, term: Term) -> None:
        """Serve ``term``: calls reach its servicers, health says SERVING."""
        self.term = term
        self.router.handlers = term.handlers
        self._monitor = asyncio.create_task(self._liveness_loop(term), name="liveness")
        await self._set_health(overall=True, services=True)

    async def uninstall(self) -> Term | None:
        """Stop serving the current term (calls are refused or redirected)."""
        term, self.term = self.term, None
        self.router.handlers = None
        await self._set_health(overall=None, services=False)
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
        return term

    async def _set_health(self, *, overall: bool | None, services: bool) -> None:
        serving = health_pb2.HealthCheckResponse.SERVING
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        if overall is not None:
            self._ready = overall and self._stopping is None
            await self._health.set("", serving if overall else not_serving)
        for name in SERVICE_NAMES:
            await self._health.set(name, serving if services else not_serving)

    async def set_overall_health(self, ok: bool) -> None:
        """Report the process SERVING or NOT_SERVING (a no-op once stopping)."""
        if self._stopping is None:
            await self._set_health(overall=ok, services=ok and self.term is not None)

    def _refusal(self) -> errors.Unavailable:
        if self._stopping is not None:
            return errors.Unavailable("coordinator is shutting down")
        if self.replica is not None:
            return self.replica.refusal()
        return errors.Unavailable("coordinator is starting")

    def _persist_refusal(self) -> errors.Unavailable | None:
        return self.replica.persist_refusal() if self.replica is not None else None

    @property
    def address(self) -> str:
        """Where this coordinator is reached (a wildcard listen host as 127.0.0.1)."""
        host = self.settings.listen.rpartition(":")[0]
        if host in ("0.0.0.0", "[::]", "::"):
            host = "127.0.0.1"
        return f"{host}:{self.port}"

    async def _liveness_loop(self, term: Term) -> None:
        period = max(0.05, self.settings.heartbeat_interval_ms / 2000)
        while True:
            await asyncio.sleep(period)
            term.mesh.check_liveness()

    async def stop(self, grace: float | None = None) -> None:
        """Shut down in order; concurrent and repeated calls wait for the same stop."""
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop(grace))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float | None) -> None:
        s = self.settings
        grace = s.shutdown_grace_s if grace is None else grace
        if self._watch is not None:
            self._watch.cancel()
        await self._health.enter_graceful_shutdown()
        self._ready = False
        if s.readiness_drain_s:
            await asyncio.sleep(s.readiness_drain_s)
        if self.replica is not None:
            await self.replica.stop(grace)  # drains and closes the term if leading
        elif self.term is not None:
            term = self.term
            await term.drain(grace)  # still installed: queries and results are served
            await self.uninstall()
            await term.close()
        if self._server is not None:
            await self._server.stop(min(grace, 5.0))
        if self._probe is not None:  # after the main server: probes see NOT_SERVING till then
            await self._probe.stop(0)
        if self.http is not None:  # likewise: /readyz answers 503 for the whole drain
            await self.http.stop()
        if self._loopback is not None:
            self._loopback.remove()
        await self.observe.stop()
        if self._revocations is not None:
            self._revocations.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._revocations
        self.audit.close()


async def serve(settings: Settings) -> int:
    """Run a coordinator until SIGTERM or SIGINT, or until one of its parts dies; shut
    down gracefully either way. Returns the process exit status: 0 after a signal, 1
    after a failure."""
    coordinator = Coordinator(settings)
    await coordinator.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"agentmesh coordinator listening on {coordinator.address}", flush=True)
    if coordinator.http is not None:
        print(f"dashboard and HTTP API on {coordinator.http.url}/", flush=True)
    signalled = asyncio.create_task(stop.wait())
    failed = asyncio.create_task(coordinator.failed.wait())
    await asyncio.wait([signalled, failed], return_when=asyncio.FIRST_COMPLETED)
    signalled.cancel()
    failed.cancel()
    if stop.is_set():
        log.info("signal received: draining")
    await coordinator.stop()
    return 1 if coordinator.failed.is_set() else 0
