"""OpenTelemetry traces of what the mesh does, built from the event log.

One trace per top-level execution: its span (``workflow <name>``) is the root; each
step run is a child span (``step <id>``, retries included, as span events); a
subworkflow's execution hangs under the step that started it; each task attempt is a
span (``task <capability>``) under its step, and its W3C ``traceparent`` travels to the
agent in ``TaskDispatch.traceparent`` so the agent's span is a child of the attempt.
A task outside workflows gets a trace of its own.

Spans are made when they end, from the events that begin and end them: the durable
``execution.*`` and ``step.*`` events (the store's) and the mesh's live ``task.*``
ones. Their ids are derived from the mesh's own ids (sha256 of the execution id, the
step run's key, the task id and attempt), never drawn at random, which gives two
properties:

- An attempt's ``traceparent`` is known when it is dispatched, before its step ends.
- A coordinator that recovers an execution (a restart, a failover) ends the spans
  its predecessor began under their own ids, from the start times the store kept:
  the tree stays whole. Each such span carries a link to the new coordinator's
  ``coordinator.recovery`` span, so the hand-over is visible. Attempts in flight at a
  crash are lost with the process (their task is dispatched again: a new attempt).

Tracing costs nothing when off (no listener). On, every finished span goes to the
span processor: ``BatchSpanProcessor`` over OTLP (``otlp_endpoint``), or a
``SimpleSpanProcessor`` over an exporter the embedding code gives (tests use the SDK's
in-memory exporter).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from coordinator import domain as d
from coordinator.domain import MeshEvent
from coordinator.errors import ConfigError
from coordinator.store import Store

log = logging.getLogger(__name__)

#: The instrumentation scope of every span the coordinator makes.
SCOPE: Final = "agentmesh.coordinator"
_ENDS: Final = {"execution.completed", "execution.failed", "execution.cancelled"}
_STEP_ENDS: Final = {"step.completed", "step.failed", "step.skipped"}
#: Executions whose history was read back for spans begun before this coordinator.
_LOADED_KEPT: Final = 10_000
_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED)


def _id(bits: int, *parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[: bits // 8], "big") or 1  # 0 is the invalid id


def trace_of(root_execution_id: str) -> int:
    """The trace of a top-level execution (and of all its children)."""
    return _id(128, "trace", root_execution_id)


def execution_span(execution_id: str) -> int:
    return _id(64, "execution", execution_id)


def step_span(execution_id: str, run: str) -> int:
    """The span of step run ``run`` (the engine's run key, ``r3``) of an execution."""
    return _id(64, "step", execution_id, run)


def attempt_span(task_id: str, attempt: int) -> int:
    return _id(64, "attempt", task_id, str(attempt))


def traceparent(trace_id: int, span_id: int) -> str:
    """W3C Trace Context ``traceparent`` (version 00, sampled)."""
    return f"00-{trace_id:032x}-{span_id:016x}-01"


def attempt_traceparent(task: d.Task) -> str:
    """The ``traceparent`` an agent gets with attempt ``task.attempt`` ("" untraced)."""
    if task.trace is None:
        return ""
    return traceparent(task.trace.trace_id, attempt_span(task.id, task.attempt))


class _Ids(IdGenerator):
    """Hands the tracer the ids ``Tracing`` computed for the span it starts next."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


@dataclass(slots=True)
class _Open:
    """A span begun (its start event seen), waiting for its end."""

    start: datetime
    name: str
    attributes: dict[str, Any]
    events: list[tuple[str, datetime, dict[str, Any]]] = field(default_factory=list)
    recovered: bool = False  # begun under another coordinator (read back from the store)
    parent: int = 0  # an execution's: the span of its parent's step run (0: a root)


def build_provider(
    otlp_endpoint: str, coordinator_id: str, version: str, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """The coordinator's own provider (its ids, its resource), exporting to ``exporter``
    as each span ends, or else in batches over OTLP/gRPC to ``otlp_endpoint``; None when
    neither is set (tracing off)."""
    if exporter is None and not otlp_endpoint:
        return None
    resource = Resource.create(
        {
            "service.name": "agentmesh-coordinator",
            "service.version": version,
            "service.instance.id": coordinator_id,
        }
    )
    provider = TracerProvider(resource=resource, id_generator=_Ids())
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigError(
            "otlp_endpoint needs the OTLP exporter: pip install 'agentmesh[otlp]'"
        ) from None
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    return provider


class Tracing:
    """Spans of one coordinator process (see the module docstring); each term attaches
    its event log, mesh and store while it runs."""

    def __init__(self, provider: TracerProvider, coordinator_id: str) -> None:
        self.provider = provider
        ids = provider.id_generator
        if not isinstance(ids, _Ids):
            raise TypeError("Tracing needs the provider of build_provider (its ids)")
        self._ids = ids
        self._tracer = provider.get_tracer(SCOPE)
        self.coordinator_id = coordinator_id
        # execution -> its open spans: "" its own, a run key ("r3") a step run's
        self._open: dict[str, dict[str, _Open]] = {}
        self._attempts: dict[tuple[str, int], _Open] = {}
        self._attempt_trace: dict[tuple[str, int], d.TraceParent] = {}
        self._lineage: Any = None  # the term's EventLog.lineage
        self._tasks: Any = None  # the term's mesh.tasks
        self._store: Store | None = None
        self._recovery: Link | None = None
        self._loaded: dict[str, None] = {}
        self._waiting: dict[str, list[MeshEvent]] = {}  # execution -> ends held for its history
        self._loads: set[asyncio.Task[None]] = set()
        self._closed = False

    # ------------------------------------------------------------ terms

    def attach(self, lineage: Any, tasks: Any, store: Store) -> None:
        """Trace a term from now on: ``lineage(execution_id)`` is its event log's,
        ``tasks`` its mesh's task table. Marks the term's start with a
        ``coordinator.recovery`` span that spans begun before it link to."""
        self._lineage, self._tasks, self._store = lineage, tasks, store
        self._open.clear()
        self._attempts.clear()
        self._attempt_trace.clear()
        self._loaded.clear()
        now = d.utcnow()
        span_id = _id(64, "recovery", self.coordinator_id, now.isoformat())
        trace_id = _id(128, "recovery", self.coordinator_id, now.isoformat())
        self._span(
            "coordinator.recovery",
            trace_id,
            span_id,
            0,
            now,
            now,
            {"agentmesh.coordinator.id": self.coordinator_id},
        )
        self._recovery = Link(SpanContext(trace_id, span_id, False, _SAMPLED))

    def task_parent(self, execution_id: str, key: str) -> d.TraceParent:
        """Where the task ``key`` (``r3.t1``: run r3's attempt 1) of an execution hangs."""
        return d.TraceParent(
            self._trace(execution_id), step_span(execution_id, key.partition(".")[0])
        )

    def standalone(self, task_id: str) -> d.TraceParent:
        """A task outside workflows: a trace of its own, its attempts at the root."""
        return d.TraceParent(_id(128, "task", task_id), 0)

    async def shutdown(self) -> None:
        """Export what is pending and stop (safe twice)."""
        if self._closed:
            return
        self._closed = True
        for t in list(self._loads):
            t.cancel()
        # Off the loop: a collector may be slow to answer the last export.
        await asyncio.to_thread(self.provider.shutdown)

    # ------------------------------------------------------------ the log's side

    def on_event(self, e: MeshEvent) -> None:
        """Every published event: begins, annotates or ends a span."""
        kind = e.type
        if kind.startswith("task."):
            if not e.durable:
                self._on_task(e)
            return
        if kind == "execution.started":
            self._open.setdefault(e.execution_id, {})[""] = _Open(
                e.time,
                f"workflow {e.workflow_name}",
                {
                    "agentmesh.execution.id": e.execution_id,
                    "agentmesh.workflow.name": e.workflow_name,
                    "agentmesh.namespace": e.namespace,
                },
                parent=self._parent_span(e.lineage, e.data),
            )
        elif kind == "step.started":
            run = str(e.data.get("run", ""))
            self._open.setdefault(e.execution_id, {})[run] = _Open(
                e.time,
                f"step {e.step_id}",
                {
                    "agentmesh.execution.id": e.execution_id,
                    "agentmesh.step.id": e.step_id,
                    "agentmesh.step.type": str(e.data.get("type", "")),
                    "agentmesh.step.run": run,
                },
            )
        elif kind == "step.retrying":
            span = self._open.get(e.execution_id, {}).get(str(e.data.get("run", "")))
            if span is not None:
                span.events.append(
                    ("step.retrying", e.time, {"attempt": _int(e.data.get("attempt"))})
                )
        elif kind in _STEP_ENDS or kind in _ENDS:
            self._end(e)

    def _end(self, e: MeshEvent) -> None:
        if self._key(e) not in self._open.get(e.execution_id, {}) and (
            e.execution_id not in self._loaded
        ):
            # Begun before this coordinator: read the history back, then end it.
            held = self._waiting.setdefault(e.execution_id, [])
            held.append(e)
            if len(held) == 1:
                task = asyncio.get_running_loop().create_task(self._load(e.execution_id))
                self._loads.add(task)
                task.add_done_callback(self._loads.discard)
            return
        if e.execution_id in self._waiting:
            self._waiting[e.execution_id].append(e)  # keep the order of its ends
            return
        self._finish(e)

    @staticmethod
    def _key(e: MeshEvent) -> str:
        """The open span an end event ends: "" an execution's, else its step run's."""
        return "" if e.type in _ENDS else str(e.data.get("run", ""))

    def _finish(self, e: MeshEvent) -> None:
        exec_id = e.execution_id
        spans = self._open.get(exec_id, {})
        span = spans.pop(self._key(e), None)
        if span is None:  # never begun in a history this coordinator could read
            if e.type in _ENDS:
                self._open.pop(exec_id, None)
            return
        trace_id = self._trace(exec_id)
        failed = e.type.endswith(".failed")
        status = Status(StatusCode.ERROR, e.message) if failed else Status(StatusCode.UNSET)
        attributes = dict(span.attributes)
        if e.type in _ENDS:
            outcome = e.type.split(".")[1]
            # Runs the execution's end leaves open (cancelled, or it failed first).
            for run, left in self._open.pop(exec_id, {}).items():
                left.attributes["agentmesh.status"] = outcome
                self._emit(left, trace_id, step_span(exec_id, run), execution_span(exec_id), e.time)
            attributes["agentmesh.status"] = outcome
            span.attributes = attributes
            self._emit(span, trace_id, execution_span(exec_id), span.parent, e.time, status)
        else:
            attributes["agentmesh.status"] = e.type.split(".")[1]
            if e.message:
                attributes["agentmesh.message"] = e.message
            span.attributes = attributes
            run = str(e.data.get("run", ""))
            self._emit(
                span, trace_id, step_span(exec_id, run), execution_span(exec_id), e.time, status
            )

    @staticmethod
    def _parent_span(lineage: Sequence[str], started: d.JsonObject) -> int:
        """An execution's parent span (from its ``execution.started`` data): the step
        run of its parent that started it."""
        parent_id = str(started.get("parentId", "") or (lineage[1] if len(lineage) > 1 else ""))
        parent_key = str(started.get("parentKey", "") or "")
        return step_span(parent_id, parent_key.partition(".")[0]) if parent_id and parent_key else 0

    async def _load(self, exec_id: str) -> None:
        try:
            store = self._store
            history = await store.load_events(exec_id) if store is not None else []
        except Exception:  # the spans are lost, never the engine
            log.warning("tracing: could not read the history of %s", exec_id, exc_info=True)
            history = []
        self._loaded[exec_id] = None
        while len(self._loaded) > _LOADED_KEPT:
            del self._loaded[next(iter(self._loaded))]
        begun: dict[str, _Open] = {}  # what the history began and did not end
        held = {e.position for e in self._waiting.get(exec_id, ())}  # ended below
        for se in history:
            if se.position in held:
                continue
            if se.type == "execution.started":
                key = ""
                name = f"workflow {se.data.get('workflow', '')}"
                attrs = {"agentmesh.execution.id": exec_id}
            elif se.type in _STEP_ENDS or se.type in _ENDS:
                begun.pop("" if se.type in _ENDS else str(se.data.get("run", "")), None)
                continue
            elif se.type == "step.started":
                run = str(se.data.get("run", ""))
                key, name = run, f"step {se.data.get('stepId', '')}"
                attrs = {
                    "agentmesh.execution.id": exec_id,
                    "agentmesh.step.id": str(se.data.get("stepId", "")),
                    "agentmesh.step.type": str(se.data.get("type", "")),
                    "agentmesh.step.run": run,
                }
            else:
                continue
            parent = self._parent_span((), se.data) if key == "" else 0
            begun[key] = _Open(se.time, name, attrs, recovered=True, parent=parent)
        spans = self._open.setdefault(exec_id, {})
        for key, open_ in begun.items():
            spans.setdefault(key, open_)
        for e in self._waiting.pop(exec_id, []):
            own = spans.get("")
            if e.type in _ENDS and own is not None and own.recovered:
                own.name = f"workflow {e.workflow_name}"
                own.attributes["agentmesh.workflow.name"] = e.workflow_name
            self._finish(e)

    # ------------------------------------------------------------ task attempts

    def _on_task(self, e: MeshEvent) -> None:
        attempt = _int(e.data.get("attempt"))
        key = (e.task_id, attempt)
        if e.type == "task.assigned":
            task = self._tasks.get(e.task_id) if self._tasks is not None else None
            if task is None or task.trace is None:
                return
            self._attempt_trace[key] = task.trace
            self._attempts[key] = _Open(
                e.time,
                f"task {task.capability}",
                {
                    "agentmesh.task.id": e.task_id,
                    "agentmesh.task.attempt": attempt,
                    "agentmesh.capability": task.capability,
                    "agentmesh.agent.id": e.agent_id,
                    **(
                        {"agentmesh.execution.id": e.execution_id, "agentmesh.step.id": e.step_id}
                        if e.execution_id
                        else {}
                    ),
                },
            )
        elif e.type == "task.acked":
            span = self._attempts.get(key)
            if span is not None:
                span.events.append(("task.acked", e.time, {}))
        elif e.type in ("task.finished", "task.redelivered"):
            span = self._attempts.pop(key, None)
            parent = self._attempt_trace.pop(key, None)
            if span is None or parent is None:
                return
            if e.type == "task.redelivered":
                outcome, error = "redelivered", str(e.data.get("reason", ""))
            else:
                outcome, error = str(e.data.get("status", "")), str(e.data.get("error", ""))
            span.attributes["agentmesh.status"] = outcome
            failed = outcome in ("failed", "redelivered")
            status = (
                Status(StatusCode.ERROR, error or outcome) if failed else Status(StatusCode.UNSET)
            )
            self._emit(
                span,
                parent.trace_id,
                attempt_span(e.task_id, attempt),
                parent.span_id,
                e.time,
                status,
                kind=SpanKind.PRODUCER,
            )

    # ------------------------------------------------------------ emitting

    def _trace(self, execution_id: str) -> int:
        lineage: Sequence[str] = self._lineage(execution_id) if self._lineage else ()
        return trace_of(lineage[-1] if lineage else execution_id)

    def _emit(
        self,
        span: _Open,
        trace_id: int,
        span_id: int,
        parent: int,
        end: datetime,
        status: Status | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> None:
        links = [self._recovery] if span.recovered and self._recovery is not None else []
        self._span(
            span.name,
            trace_id,
            span_id,
            parent,
            span.start,
            end,
            span.attributes,
            status,
            span.events,
            links,
            kind,
        )

    def _span(
        self,
        name: str,
        trace_id: int,
        span_id: int,
        parent: int,
        start: datetime,
        end: datetime,
        attributes: dict[str, Any],
        status: Status | None = None,
        events: Sequence[tuple[str, datetime, dict[str, Any]]] = (),
        links: Sequence[Link] = (),
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> None:
        if parent:
            ctx = trace.set_span_in_context(
                trace.NonRecordingSpan(SpanContext(trace_id, parent, False, _SAMPLED))
            )
        else:
            ctx = otel_context.Context()  # a root: the trace id comes from the ids
        self._ids.trace_id, self._ids.span_id = trace_id, span_id
        s = self._tracer.start_span(
            name, ctx, kind, attributes, links, start_time=_ns(start), record_exception=False
        )
        for event, at, attrs in events:
            s.add_event(event, attrs, _ns(at))
        if status is not None:
            s.set_status(status)
        s.end(max(_ns(end), _ns(start)))


def _ns(t: datetime) -> int:
    return int(t.timestamp() * 1e9)


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
