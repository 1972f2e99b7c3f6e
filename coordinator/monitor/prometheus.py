"""The coordinator's numbers in the Prometheus exposition format (``/metrics``).

``PrometheusExporter`` owns its own ``CollectorRegistry`` (never the process-wide default
one), so several coordinators in one process, as in the tests, never share a series. It
is fed like ``monitor.metrics.Metrics``: ``observe(event)`` with every event of the log,
``task_finished(task)`` with every task the mesh finishes, plus ``observe_commit`` (each
store transaction) and ``set_loop_lag`` (the event loop's lateness). What is true now
(queues, agents, active executions, subscribers) is read at scrape time from the
``gauges`` callback given at construction; a callback that raises costs that scrape its
gauges (logged, and counted in ``agentmesh_metrics_callback_errors_total``), never the
scrape.

| metric | type | labels | meaning |
|---|---|---|---|
| `agentmesh_executions_started_total` | counter | namespace, workflow | executions started (`execution.started`) |
| `agentmesh_executions_total` | counter | namespace, workflow, outcome | finished executions; outcome `completed`, `failed`, `cancelled` |
| `agentmesh_steps_total` | counter | namespace, workflow, outcome | step outcomes; outcome `completed`, `failed` (final, after retries), `retrying`, `skipped` |
| `agentmesh_step_duration_seconds` | histogram | namespace, workflow | a step's first `step.started` to its final `step.completed` or `step.failed` (retries and their delays included) |
| `agentmesh_events_total` | counter | type | every event of the log, by type |
| `agentmesh_tasks_total` | counter | namespace, capability, outcome | finished tasks; outcome `completed`, `failed`, `cancelled` |
| `agentmesh_task_duration_seconds` | histogram | capability | a finished task's last attempt: started (else assigned) to ended |
| `agentmesh_dispatch_latency_seconds` | histogram | capability | a finished task's submission to its last assignment to an agent (observed when it finishes) |
| `agentmesh_store_commit_seconds` | histogram | | one store transaction (a turn's group commit) |
| `agentmesh_event_loop_lag_seconds` | gauge | | how late the event loop ran its latest lag probe |
| `agentmesh_queue_depth` | gauge | namespace, capability | tasks queued for a free agent (read at scrape time) |
| `agentmesh_agents` | gauge | namespace, status | registered agents by status: online, draining, error (unhealthy, or its breaker open), offline (scrape time) |
| `agentmesh_active_executions` | gauge | namespace | unfinished executions (scrape time) |
| `agentmesh_event_subscribers` | gauge | | open event-log subscriptions (scrape time) |
| `agentmesh_gated_tasks` | gauge | | workflow tasks and service calls waiting at a step's concurrency key or rate limit (scrape time) |
| `agentmesh_service_breaker` | gauge | namespace, service, state | 1 for an external service's breaker state (`closed`, `half-open`, `open`), 0 for the others (services called since this coordinator led) |
| `agentmesh_service_calls_total` | counter | namespace, service | calls that reached the service since this coordinator led |
| `agentmesh_service_cache_total` | counter | namespace, service, result | response-cache lookups, `hit` or `miss` |
| `agentmesh_webhook_pending`, `agentmesh_webhook_dead_letters` | gauge | namespace | deliveries in the outbox, dead letters |
| `agentmesh_webhook_delivered_total` | counter | namespace | deliveries taken (2xx) since this coordinator led |
| `agentmesh_metrics_callback_errors_total` | counter | | scrapes whose gauge callback raised (those gauges were left out) |
| `process_*`, `python_info` | various | | prometheus_client's process and platform collectors (CPU, memory, file descriptors, start time) |

Every histogram also has its ``_bucket``/``_sum``/``_count`` series and every counter its
``_created`` one, as prometheus_client writes them (but `agentmesh_events_total`, counted
without prometheus_client on the hot path).

Labels are low-cardinality only: never an execution, task, step or agent id. Execution
and step counters count durable events only (an execution's journal), like ``Metrics``,
so the two views agree. The free-form label values (namespace, workflow, capability,
event type) are bounded: after ``max_label_values`` distinct values of one label, new
ones are reported as ``OVERFLOW`` (``"_other"``), so a client inventing capability names
cannot grow the scrape without bound. A step's start is remembered per (execution, step)
until its end, for at most ``max_executions`` unfinished executions (the oldest is
forgotten first) and ``MAX_STARTS`` pending starts each, and dropped when its execution
ends; a step whose start was forgotten is counted but not timed.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from coordinator.domain import MeshEvent, Task

log = logging.getLogger(__name__)

#: The label value reported once a label has seen ``max_label_values`` distinct values.
OVERFLOW: Final = "_other"
#: Pending step starts remembered per execution (a map's parallel items share a step id).
MAX_STARTS: Final = 4096

# Seconds. Steps and tasks run from milliseconds (an echo) to many minutes (an LLM agent
# refactoring a repository); dispatch and commits are sub-millisecond when healthy, so
# their buckets start at 100 µs and stop where something is clearly wrong.
STEP_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
TASK_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800,
)  # fmt: skip
DISPATCH_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip
COMMIT_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
)  # fmt: skip

_EXECUTION_ENDS: Final = frozenset(
    {"execution.completed", "execution.failed", "execution.cancelled"}
)
_STEP_OUTCOMES: Final = frozenset(
    {"step.completed", "step.failed", "step.retrying", "step.skipped"}
)


@dataclass(frozen=True, slots=True)
class GaugeValues:
    """What is true at scrape time, as the coordinator's parts report it."""

    #: (namespace, capability) -> tasks queued for it.
    queue_depth: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: (namespace, status) -> registered agents in that status (``domain.AgentStatus``).
    agents: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: namespace -> unfinished executions.
    active_executions: Mapping[str, int] = field(default_factory=dict)
    #: Open event-log subscriptions.
    subscribers: int = 0
    #: Workflow tasks and service calls waiting at a step's concurrency key or rate limit.
    gated: int = 0
    #: (namespace, service) -> (breaker state, calls, cache hits, cache misses).
    services: Mapping[tuple[str, str], tuple[str, int, int, int]] = field(default_factory=dict)
    #: namespace -> (webhook deliveries pending, dead letters, delivered).
    webhooks: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)


_Metric = TypeVar("_Metric", Counter, Histogram)


class _Children(Generic[_Metric]):
    """A labelled metric's children, cached by label values: prometheus_client's
    ``labels()`` validates its arguments and takes a lock on every call, a few
    microseconds on the hot path of every event; a dict lookup is a tenth of that. The
    values are already bounded (``_Bounded``), so the cache is too."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: _Metric) -> None:
        self._metric: _Metric = metric
        self._cache: dict[tuple[str, ...], _Metric] = {}

    def __call__(self, *values: str) -> _Metric:
        child = self._cache.get(values)
        if child is None:
            child = self._cache[values] = self._metric.labels(*values)
        return child


class _Bounded:
    """Label values, at most ``limit`` distinct ones per label name (then ``OVERFLOW``)."""

    __slots__ = ("_limit", "_seen")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: dict[str, set[str]] = {}

    def __call__(self, label: str, value: str) -> str:
        seen = self._seen.setdefault(label, set())
        if value in seen:
            return value
        if len(seen) >= self._limit:
            return OVERFLOW
        seen.add(value)
        return value


@dataclass(slots=True)
class _Run:
    """An unfinished execution: its workflow and its steps' pending starts."""

    workflow: str
    starts: dict[str, deque[datetime]] = field(default_factory=dict)
    pending: int = 0


class _EventCounts:
    """``agentmesh_events_total`` by type, counted in a plain dict and turned into a
    family at scrape time: it is fed on every event of the log, and a prometheus_client
    ``Counter`` child costs a lock and checks per ``inc()`` that a scrape every few
    seconds does not need. (It has no ``_created`` series, unlike the other counters.)"""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        return [self._family()]

    def _family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "agentmesh_events", "Events of the coordinator's log by type.", labels=("type",)
        )
        for type_, n in sorted(self.counts.items()):
            family.add_metric((type_,), float(n))
        return family


class _ScrapeGauges:
    """The gauges read from the caller's callback each time the registry is collected."""

    def __init__(self, read: Callable[[], GaugeValues], errors: Counter) -> None:
        self._read = read
        self._errors = errors

    def describe(self) -> Iterable[Metric]:
        return self._families(GaugeValues())

    def collect(self) -> Iterable[Metric]:
        try:
            return self._families(self._read())
        except Exception:  # a broken callback must not fail the whole scrape
            log.warning("metrics gauge callback failed; its gauges are left out", exc_info=True)
            self._errors.inc()
            return []

    @staticmethod
    def _families(values: GaugeValues) -> list[Metric]:
        queue = GaugeMetricFamily(
            "agentmesh_queue_depth",
            "Tasks queued, waiting for a free agent.",
            labels=("namespace", "capability"),
        )
        for (namespace, capability), n in sorted(values.queue_depth.items()):
            queue.add_metric((namespace, capability), float(n))
        agents = GaugeMetricFamily(
            "agentmesh_agents", "Registered agents by status.", labels=("namespace", "status")
        )
        for (namespace, status), n in sorted(values.agents.items()):
            agents.add_metric((namespace, status), float(n))
        active = GaugeMetricFamily(
            "agentmesh_active_executions", "Unfinished executions.", labels=("namespace",)
        )
        for namespace, n in sorted(values.active_executions.items()):
            active.add_metric((namespace,), float(n))
        subscribers = GaugeMetricFamily(
            "agentmesh_event_subscribers",
            "Open event-log subscriptions.",
            value=float(values.subscribers),
        )
        gated = GaugeMetricFamily(
            "agentmesh_gated_tasks",
            "Workflow tasks waiting at a step's concurrency key or rate limit.",
            value=float(values.gated),
        )
        return [queue, agents, active, subscribers, gated, *_integrations(values)]


def _integrations(values: GaugeValues) -> list[Metric]:
    breaker = GaugeMetricFamily(
        "agentmesh_service_breaker",
        "An external service's circuit breaker: 1 for its current state.",
        labels=("namespace", "service", "state"),
    )
    calls = CounterMetricFamily(
        "agentmesh_service_calls",
        "Calls that reached an external service since this coordinator led.",
        labels=("namespace", "service"),
    )
    cache = CounterMetricFamily(
        "agentmesh_service_cache",
        "An external service's response cache lookups since this coordinator led.",
        labels=("namespace", "service", "result"),
    )
    for (namespace, service), (state, n, hits, misses) in sorted(values.services.items()):
        for each in ("closed", "half-open", "open"):
            breaker.add_metric((namespace, service, each), 1.0 if each == state else 0.0)
        calls.add_metric((namespace, service), float(n))
        cache.add_metric((namespace, service, "hit"), float(hits))
        cache.add_metric((namespace, service, "miss"), float(misses))
    pending = GaugeMetricFamily(
        "agentmesh_webhook_pending", "Webhook deliveries in the outbox.", labels=("namespace",)
    )
    dead = GaugeMetricFamily(
        "agentmesh_webhook_dead_letters", "Webhook dead letters.", labels=("namespace",)
    )
    delivered = CounterMetricFamily(
        "agentmesh_webhook_delivered",
        "Webhook deliveries taken (2xx) since this coordinator led.",
        labels=("namespace",),
    )
    for namespace, (p, d, done) in sorted(values.webhooks.items()):
        pending.add_metric((namespace,), float(p))
        dead.add_metric((namespace,), float(d))
        delivered.add_metric((namespace,), float(done))
    return [breaker, calls, cache, pending, dead, delivered]


class PrometheusExporter:
    """The metrics of one coordinator in its own registry (see the module docstring).

    ``gauges`` is called once per scrape (None: no scrape-time gauges). With
    ``process_metrics`` the registry also carries prometheus_client's ``process_*`` and
    ``python_info`` series. Not thread-safe beyond what prometheus_client guarantees:
    feed it from the coordinator's loop.
    """

    def __init__(
        self,
        *,
        gauges: Callable[[], GaugeValues] | None = None,
        process_metrics: bool = True,
        max_label_values: int = 1000,
        max_executions: int = 10_000,
    ) -> None:
        if max_label_values < 1 or max_executions < 1:
            raise ValueError("max_label_values and max_executions must be >= 1")
        self.registry = CollectorRegistry()
        self._label = _Bounded(max_label_values)
        self._max_executions = max_executions
        self._runs: dict[tuple[str, str], _Run] = {}  # (namespace, execution id), oldest first
        r = self.registry
        self._started = _Children(
            Counter(
                "agentmesh_executions_started",
                "Executions started.",
                ("namespace", "workflow"),
                registry=r,
            )
        )
        self._executions = _Children(
            Counter(
                "agentmesh_executions",
                "Finished executions by outcome (completed, failed, cancelled).",
                ("namespace", "workflow", "outcome"),
                registry=r,
            )
        )
        self._steps = _Children(
            Counter(
                "agentmesh_steps",
                "Step outcomes (completed, failed, retrying, skipped).",
                ("namespace", "workflow", "outcome"),
                registry=r,
            )
        )
        self._step_seconds = _Children(
            Histogram(
                "agentmesh_step_duration_seconds",
                "A step's first start to its final completion or failure, retries included.",
                ("namespace", "workflow"),
                buckets=STEP_BUCKETS,
                registry=r,
            )
        )
        self._events = _EventCounts()
        r.register(self._events)
        self._tasks = _Children(
            Counter(
                "agentmesh_tasks",
                "Finished tasks by outcome (completed, failed, cancelled).",
                ("namespace", "capability", "outcome"),
                registry=r,
            )
        )
        self._task_seconds = _Children(
            Histogram(
                "agentmesh_task_duration_seconds",
                "A finished task's last attempt: started (or assigned) to ended.",
                ("capability",),
                buckets=TASK_BUCKETS,
                registry=r,
            )
        )
        self._dispatch_seconds = _Children(
            Histogram(
                "agentmesh_dispatch_latency_seconds",
                "A finished task's submission to its last assignment to an agent.",
                ("capability",),
                buckets=DISPATCH_BUCKETS,
                registry=r,
            )
        )
        self._commit_seconds = Histogram(
            "agentmesh_store_commit_seconds",
            "One store transaction (a turn's group commit).",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self._loop_lag = Gauge(
            "agentmesh_event_loop_lag_seconds",
            "How late the event loop ran its last lag probe.",
            registry=r,
        )
        callback_errors = Counter(
            "agentmesh_metrics_callback_errors",
            "Scrapes whose gauge callback raised (their gauges were left out).",
            registry=None,
        )
        if gauges is not None:  # collected before its error count, so a scrape shows its own
            r.register(_ScrapeGauges(gauges, callback_errors))
        r.register(callback_errors)
        if process_metrics:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)

    # ------------------------------------------------------------------ feeding

    def observe(self, event: MeshEvent) -> None:
        """Count one event of the log (execution and step series: durable events only)."""
        counts = self._events.counts
        type_ = self._label("type", event.type)
        counts[type_] = counts.get(type_, 0) + 1
        if not event.durable or not event.execution_id:
            return
        kind = event.type
        if kind == "execution.started":
            self._started(*self._where(event, self._run(event))).inc()
        elif kind in _EXECUTION_ENDS:
            ended = self._runs.pop((event.namespace, event.execution_id), None)
            outcome = kind.removeprefix("execution.")
            self._executions(*self._where(event, ended), outcome).inc()
        elif kind == "step.started":
            self._step_started(event)
        elif kind in _STEP_OUTCOMES:
            self._step_outcome(event)

    def task_finished(self, task: Task) -> None:
        """Count one finished task (one not in a final status is ignored)."""
        if not task.status.finished:
            return
        capability = self._label("capability", task.capability)
        namespace = self._label("namespace", task.namespace)
        self._tasks(namespace, capability, task.status.value).inc()
        began = task.started_at or task.assigned_at
        if began is not None and task.ended_at is not None:
            self._task_seconds(capability).observe(_seconds(began, task.ended_at))
        if task.assigned_at is not None:
            latency = _seconds(task.created_at, task.assigned_at)
            self._dispatch_seconds(capability).observe(latency)

    def observe_commit(self, seconds: float) -> None:
        """Time one store transaction."""
        self._commit_seconds.observe(max(0.0, seconds))

    def set_loop_lag(self, seconds: float) -> None:
        """Report the event loop's latest measured lateness."""
        self._loop_lag.set(max(0.0, seconds))

    # ------------------------------------------------------------------ reading

    def render(self) -> tuple[bytes, str]:
        """The exposition text of every series and its content type (the callback's gauges
        are read now)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # ------------------------------------------------------------------ steps

    def _run(self, event: MeshEvent) -> _Run:
        key = (event.namespace, event.execution_id)
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = _Run(event.workflow_name)
            if len(self._runs) > self._max_executions:
                del self._runs[next(iter(self._runs))]
        elif not run.workflow:
            run.workflow = event.workflow_name
        return run

    def _where(self, event: MeshEvent, run: _Run | None) -> tuple[str, str]:
        """(namespace, workflow) label values; the workflow from the event, else from an
        earlier event of its execution ("" when neither names it)."""
        workflow = event.workflow_name or (run.workflow if run is not None else "")
        return self._label("namespace", event.namespace), self._label("workflow", workflow)

    def _step_started(self, event: MeshEvent) -> None:
        if not event.step_id:
            return
        attempt = event.data.get("attempt", 1)
        if isinstance(attempt, int) and not isinstance(attempt, bool) and attempt > 1:
            return  # a retry's attempt: the step stays timed from its first start
        run = self._run(event)
        if run.pending >= MAX_STARTS:
            return
        run.starts.setdefault(event.step_id, deque()).append(event.time)
        run.pending += 1

    def _step_outcome(self, event: MeshEvent) -> None:
        run = self._runs.get((event.namespace, event.execution_id))
        where = self._where(event, run)
        outcome = event.type.removeprefix("step.")
        self._steps(*where, outcome).inc()
        if outcome == "retrying" or run is None:
            return
        starts = run.starts.get(event.step_id)
        if not starts:
            return
        # A skip is journaled right after its own start; parallel items end first in,
        # first out, which keeps the sum of the durations exact.
        began = starts.pop() if outcome == "skipped" else starts.popleft()
        run.pending -= 1
        if not starts:
            del run.starts[event.step_id]
        if outcome != "skipped":
            self._step_seconds(*where).observe(_seconds(began, event.time))


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())
