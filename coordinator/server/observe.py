"""What the process observes across its terms: metrics, Prometheus, traces, resources, lag.

One ``Observability`` per process (a replica keeps its counters across leaderships):
each term attaches its event log, mesh, runtime and store while it runs, and detaches
when it ends. Every event of the log goes to the seed's ``Metrics`` and to the
``PrometheusExporter`` (when ``monitoring_enabled``); every finished task likewise. A
sampler refreshes resource use and event-loop lag every ``metrics_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from opentelemetry.sdk.trace.export import SpanExporter

from agentmesh import __version__
from coordinator.api.decoding import Bytes
from coordinator.config import Settings
from coordinator.domain import AgentStatus, MeshEvent, Task
from coordinator.engine.runtime import WorkflowRuntime
from coordinator.integrations.outbox import Outbox
from coordinator.integrations.registry import ServiceRegistry
from coordinator.mesh import Mesh
from coordinator.monitor.log import EventLog
from coordinator.monitor.metrics import Metrics
from coordinator.monitor.prometheus import GaugeValues, PrometheusExporter
from coordinator.monitor.resources import LoopLag, Resources, Sample
from coordinator.monitor.tracing import Tracing, build_provider
from coordinator.store import Store

log = logging.getLogger(__name__)


#: What metrics read of a term's integrations: its services and its webhooks' outbox.
Integrations = tuple[ServiceRegistry, Outbox]


@dataclass(slots=True)
class _Attached:
    log: EventLog
    mesh: Mesh
    runtime: WorkflowRuntime
    store: Store
    integrations: Integrations | None = None


def tracing_for(
    settings: Settings, coordinator_id: str, exporter: SpanExporter | None = None
) -> Tracing | None:
    """The process's tracing: spans to ``exporter`` as each ends (embedding code,
    tests), or else over OTLP to ``otlp_endpoint``; neither: None (no tracing)."""
    provider = build_provider(settings.otlp_endpoint, coordinator_id, __version__, exporter)
    return Tracing(provider, coordinator_id) if provider is not None else None


class Observability:
    """Metrics and exports of one process (see the module docstring)."""

    def __init__(self, settings: Settings, tracing: Tracing | None = None) -> None:
        self.settings = settings
        #: Spans (None: tracing off): fed by each term like the metrics, whatever
        #: ``monitoring_enabled`` says.
        self.tracing = tracing
        self.enabled = settings.monitoring_enabled
        self.metrics = Metrics()
        self.prometheus = PrometheusExporter(gauges=self._gauges)
        self.resources = Resources()
        self.bytes = Bytes()  # every gRPC message's bytes (api.decoding counts them)
        self.lag = LoopLag(interval=min(0.25, settings.metrics_interval / 1000))
        self.sample = Sample()
        self._term: _Attached | None = None
        self._sampler: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ terms

    def attach(
        self,
        log_: EventLog,
        mesh: Mesh,
        runtime: WorkflowRuntime,
        store: Store,
        integrations: Integrations | None = None,
    ) -> None:
        """Observe a term from now on (its events and finished tasks)."""
        self._term = _Attached(log_, mesh, runtime, store, integrations)
        if self.enabled:
            log_.add_listener(self._on_event)
            mesh.add_listener(self._on_task)
        if self.tracing is not None:
            self.tracing.attach(log_.lineage, mesh.tasks, store)
            log_.add_listener(self.tracing.on_event)
            mesh.trace_tasks(self.tracing.standalone)
            runtime.effects.trace = self.tracing.task_parent

    def detach(self, log_: EventLog) -> None:
        """The term of ``log_`` ended: its gauges read empty."""
        if self._term is not None and self._term.log is log_:
            self._term = None

    def _on_event(self, e: MeshEvent) -> None:
        self.metrics.observe(e)
        self.prometheus.observe(e)

    def _on_task(self, task: Task) -> None:
        self.metrics.task_finished(task)
        self.prometheus.task_finished(task)

    # ------------------------------------------------------------ sampling

    async def start(self) -> None:
        """Start the sampler and the loop-lag probe."""
        self.lag.start()
        self._sampler = asyncio.get_running_loop().create_task(self._sample_forever())

    async def stop(self) -> None:
        """Stop them (safe twice)."""
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        await self.lag.stop()
        if self.tracing is not None:
            await self.tracing.shutdown()  # exports what is pending

    async def _sample_forever(self) -> None:
        interval = self.settings.metrics_interval / 1000
        while True:
            self.take_sample()
            await asyncio.sleep(interval)

    def take_sample(self) -> Sample:
        """Refresh ``sample`` now (the sampler does every ``metrics_interval``)."""
        term = self._term
        storage = 0
        if term is not None:
            with contextlib.suppress(Exception):  # a store that cannot tell: 0
                storage = term.store.size_bytes()
        lag_ms = self.lag.max_recent_ms
        self.prometheus.set_loop_lag(lag_ms / 1000)
        self.sample = Sample(
            cpu_percent=self.resources.cpu_percent(),
            memory_bytes=self.resources.memory_bytes(),
            bytes_in=self.bytes.received,
            bytes_out=self.bytes.sent,
            storage_bytes=storage,
            loop_lag_ms=lag_ms,
        )
        return self.sample

    def current(self) -> Sample:
        """The latest sample, with the byte counters and lag as of now."""
        s = self.sample
        return Sample(
            s.cpu_percent,
            s.memory_bytes,
            self.bytes.received,
            self.bytes.sent,
            s.storage_bytes,
            self.lag.max_recent_ms,
        )

    # ------------------------------------------------------------ Prometheus

    def _gauges(self) -> GaugeValues:
        term = self._term
        if term is None:
            return GaugeValues()
        agents: dict[tuple[str, str], int] = {}
        for a in term.mesh.list_agents(include_offline=True):
            status = "offline" if not a.connected else "draining" if a.draining else "online"
            if a.connected and not a.draining and a.status is AgentStatus.ERROR:
                status = "error"
            key = (a.namespace, status)
            agents[key] = agents.get(key, 0) + 1
        active: dict[str, int] = {}
        for live in term.runtime.active():
            ns = live.record.namespace
            active[ns] = active.get(ns, 0) + 1
        services: dict[tuple[str, str], tuple[str, int, int, int]] = {}
        webhooks: dict[str, tuple[int, int, int]] = {}
        if term.integrations is not None:
            registry, outbox = term.integrations
            for ns, info in registry.states():
                state = (info.breaker, info.calls, info.cache_hits, info.cache_misses)
                services[(ns, info.config.name)] = state
            webhooks = outbox.counts()
        return GaugeValues(
            queue_depth=term.mesh.queue_sizes(),
            agents=agents,
            active_executions=active,
            subscribers=term.log.subscribers,
            gated=term.runtime.effects.gates.queued,
            services=services,
            webhooks=webhooks,
        )
