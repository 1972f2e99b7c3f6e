"""``EventService`` and ``MetricsService``: the event stream and the seed's metrics.

``Subscribe`` registers with the term's event log first, replays what the caller
missed (``from_sequence``: durable events from the store, live ones from the log's
ring), then follows. It sees the caller's namespace only (cluster events, namespace
"", go to everyone). A subscriber that falls ``subscriber_buffer`` events behind is
ended with ``RESOURCE_EXHAUSTED`` naming the last sequence it was sent; the end of the
term (shutdown, lost leadership) ends it ``UNAVAILABLE``, and the SDK resumes at the
next leader from the last sequence it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from agentmesh import wire
from agentmesh.protocol import EVENT_HEAD_METADATA
from agentmesh.v1 import monitoring_pb2, monitoring_pb2_grpc, types_pb2, workflow_pb2
from coordinator.api.scope import namespace_of
from coordinator.api.status import abort, mapped
from coordinator.config import Settings
from coordinator.domain import MeshEvent
from coordinator.engine.runtime import WorkflowRuntime
from coordinator.errors import (
    FailedPrecondition,
    InvalidArgument,
    MeshError,
    OutOfRange,
    ResourceExhausted,
)
from coordinator.mesh import Mesh
from coordinator.monitor.log import EventLog, Filter, Subscription
from coordinator.monitor.metrics import Metrics
from coordinator.monitor.resources import HEALTHY, UNHEALTHY, Sample, health

log = logging.getLogger(__name__)

_HEALTH = {
    HEALTHY: monitoring_pb2.HEALTH_STATUS_HEALTHY,
    "degraded": monitoring_pb2.HEALTH_STATUS_DEGRADED,
    UNHEALTHY: monitoring_pb2.HEALTH_STATUS_UNHEALTHY,
}
_MAX_TYPES = 64


def event_msg(e: MeshEvent) -> workflow_pb2.Event:
    """A log event as the wire shows it (its data is already redacted)."""
    data = dict(e.data)
    raw = data.get("error")
    error = None
    if isinstance(raw, dict):
        rest = {k: v for k, v in raw.items() if k not in ("type", "message", "retryable")}
        error = types_pb2.TaskError(
            type=str(raw.get("type", "")),
            message=str(raw.get("message", "")),
            retryable=bool(raw.get("retryable", False)),
            details=wire.to_struct(rest) if rest else None,
        )
    return workflow_pb2.Event(
        sequence=e.position,
        type=e.type,
        time=wire.to_timestamp(e.time),
        execution_id=e.execution_id,
        workflow_name=e.workflow_name,
        step_id=e.step_id,
        task_id=e.task_id,
        agent_id=e.agent_id,
        message=e.message,
        data=wire.to_value(data),
        error=error,
        namespace=e.namespace,
    )


def filter_of(f: monitoring_pb2.EventFilter, namespace: str) -> Filter:
    """The domain filter of a request (InvalidArgument for a malformed type)."""
    types = tuple(f.types)
    if len(types) > _MAX_TYPES:
        raise InvalidArgument(f"filter.types: at most {_MAX_TYPES} types, got {len(types)}")
    for t in types:
        if not t or "*" in t[:-1] or len(t) > 200:
            raise InvalidArgument(
                f"filter.types: {t!r} is not an event type or a prefix ending in '*' "
                "(e.g. 'step.*')"
            )
    return Filter(namespace, f.execution_id, f.workflow_name, f.agent_id, types)


# SubscribeBatches: the defaults and bounds of a request's max_events and max_delay_ms,
# and the bytes a batch stops growing at (one event past it may still go in).
BATCH_EVENTS = 500
MAX_BATCH_EVENTS = 5000
MAX_BATCH_DELAY_MS = 1000
BATCH_BYTES = 2**20
# Serialized events kept for the next subscriber that sends the same one.
_ENCODED = 4096


def _field(data: bytes) -> bytes:
    """``data`` as one entry of ``SubscribeBatchesResponse.events`` (field 1, length
    delimited): a batch is the concatenation of its events' entries."""
    n = len(data)
    head = bytearray(b"\x0a")
    while n > 0x7F:
        head.append((n & 0x7F) | 0x80)
        n >>= 7
    head.append(n)
    return bytes(head) + data


class EventService(monitoring_pb2_grpc.EventServiceServicer):
    """``Subscribe`` and ``SubscribeBatches`` over the term's event log (see the module
    docstring).

    Every subscriber that sees an event is sent the same bytes, so each event is
    serialized once, for the first of them, and the bytes kept for the others
    (``_ENCODED`` recent events): the handlers yield bytes, and ``register`` gives them
    a serializer that passes bytes through.
    """

    def __init__(self, log_: EventLog, runtime: WorkflowRuntime, settings: Settings) -> None:
        self._log = log_
        self._rt = runtime
        self._settings = settings
        self._encoded: dict[int, bytes] = {}  # position -> Event bytes, oldest first

    async def Subscribe(  # yields Event bytes (see register)
        self, request: monitoring_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        try:
            async with self._subscription(request, context) as (backlog, sub):
                async for old in backlog:
                    yield self._encode(old)
                if sub is not None:
                    while True:  # SubscriberBehind, LogClosed end it
                        yield self._encode(await sub.next())
        except MeshError as e:
            await abort(context, e)

    async def SubscribeBatches(  # yields response bytes
        self, request: monitoring_pb2.SubscribeBatchesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        try:
            limit = request.max_events or BATCH_EVENTS
            if limit > MAX_BATCH_EVENTS or request.max_delay_ms > MAX_BATCH_DELAY_MS:
                raise InvalidArgument(
                    f"max_events must be at most {MAX_BATCH_EVENTS} and max_delay_ms at most "
                    f"{MAX_BATCH_DELAY_MS} (got {request.max_events}, {request.max_delay_ms})"
                )
            delay = request.max_delay_ms / 1000
            async with self._subscription(request.subscription, context) as (backlog, sub):
                parts: list[bytes] = []
                size = 0
                async for old in backlog:
                    part = _field(self._encode(old))
                    parts.append(part)
                    size += len(part)
                    if len(parts) >= limit or size >= BATCH_BYTES:
                        yield b"".join(parts)
                        parts, size = [], 0
                if parts:
                    yield b"".join(parts)
                if sub is None:
                    return
                while True:  # SubscriberBehind, LogClosed end it
                    parts = [_field(self._encode(await sub.next()))]
                    if delay and sub.pending() < limit - 1:
                        await asyncio.sleep(delay)
                    size = len(parts[0])
                    while len(parts) < limit and size < BATCH_BYTES:
                        e = sub.poll()
                        if e is None:
                            break
                        parts.append(_field(self._encode(e)))
                        size += len(parts[-1])
                    yield b"".join(parts)
        except MeshError as e:
            await abort(context, e)

    def _encode(self, e: MeshEvent) -> bytes:
        if e.type.startswith("stream."):  # a marker: per subscriber, and its position
            return event_msg(e).SerializeToString()  # is that of an event it stands for
        encoded = self._encoded
        data = encoded.get(e.position)
        if data is None:
            data = encoded[e.position] = event_msg(e).SerializeToString()
            if len(encoded) > _ENCODED:
                del encoded[next(iter(encoded))]
        return data

    @contextlib.asynccontextmanager
    async def _subscription(
        self, request: monitoring_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tuple[AsyncIterator[MeshEvent], Subscription | None]]:
        """Register the caller (validating its request), say so in the initial metadata
        and give (what it missed, the live subscription; None with ``stop_at_head``)."""
        namespace = namespace_of(context)
        filter_ = filter_of(request.filter, namespace)
        if filter_.execution_id:  # NotFound (the same in every other namespace)
            await self._rt.lookup(filter_.execution_id, namespace)
        log_ = self._log
        after = 0 if request.from_start else request.from_sequence
        if after > log_.head:
            raise OutOfRange(
                f"from_sequence {after} is ahead of the event log (its last sequence is "
                f"{log_.head}); resume from a sequence this coordinator sent, or 0 for now"
            )
        if log_.subscribers >= self._settings.max_subscribers:
            raise ResourceExhausted(
                f"{log_.subscribers} event subscriptions are open (max_subscribers "
                f"{self._settings.max_subscribers}); retry later"
            )
        sub = log_.subscribe(filter_, self._settings.subscriber_buffer)
        last = after

        async def backlog() -> AsyncIterator[MeshEvent]:
            nonlocal last
            if after or request.from_start:
                marker = log_.truncated(after, filter_)
                if marker is not None:
                    yield marker
                async for old in log_.replay(after, sub.start, filter_):
                    last = old.position
                    yield old
            sub.last = max(last, sub.start)

        try:
            # Registered: say so (the SDK's callback form returns now), with the head.
            await context.send_initial_metadata(((EVENT_HEAD_METADATA, str(sub.start)),))
            yield backlog(), (None if request.stop_at_head else sub)
        finally:
            sub.cancel()


def _raw(message: bytes) -> bytes:
    return message


def register(service: EventService, server: Any) -> None:
    """``add_EventServiceServicer_to_server`` with serializers that pass the handlers'
    bytes through (see ``EventService``)."""
    handlers = {
        "Subscribe": grpc.unary_stream_rpc_method_handler(
            service.Subscribe,
            request_deserializer=monitoring_pb2.SubscribeRequest.FromString,
            response_serializer=_raw,
        ),
        "SubscribeBatches": grpc.unary_stream_rpc_method_handler(
            service.SubscribeBatches,
            request_deserializer=monitoring_pb2.SubscribeBatchesRequest.FromString,
            response_serializer=_raw,
        ),
    }
    server.add_registered_method_handlers("agentmesh.v1.EventService", handlers)


class MetricsService(monitoring_pb2_grpc.MetricsServiceServicer):
    """The seed's ``getWorkflowMetrics`` and ``getSystemMetrics``, per namespace."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        mesh: Mesh,
        runtime: WorkflowRuntime,
        sample: Callable[[], Sample],
        store_ok: Callable[[], bool],
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._mesh = mesh
        self._rt = runtime
        self._sample = sample
        self._store_ok = store_ok

    def _enabled(self) -> None:
        if not self._settings.monitoring_enabled:
            raise FailedPrecondition(
                "monitoring is disabled on this coordinator (monitoring_enabled: false)"
            )

    @mapped
    async def GetWorkflowMetrics(
        self, request: monitoring_pb2.GetWorkflowMetricsRequest, context: grpc.aio.ServicerContext
    ) -> monitoring_pb2.WorkflowMetrics:
        self._enabled()
        name = request.workflow_name
        if not name:
            raise InvalidArgument("workflow_name is required")
        namespace = namespace_of(context)
        if name not in self._metrics.workflows(namespace):
            await self._rt.catalog.get_workflow(name, "", namespace)  # NotFound
        w = self._metrics.workflow(namespace, name)
        return monitoring_pb2.WorkflowMetrics(
            workflow_name=name,
            total_executions=w.total_executions,
            active_executions=w.active_executions,
            success_rate=w.success_rate,
            average_duration_ms=w.average_duration_ms,
            error_rate=w.error_rate,
            step_metrics={
                step: monitoring_pb2.StepMetrics(
                    count=s.count,
                    average_duration_ms=s.average_duration_ms,
                    error_rate=s.error_rate,
                    retry_rate=s.retry_rate,
                )
                for step, s in w.step_metrics.items()
            },
            agent_utilization=dict(w.agent_utilization),
        )

    @mapped
    async def GetSystemMetrics(
        self, request: monitoring_pb2.GetSystemMetricsRequest, context: grpc.aio.ServicerContext
    ) -> monitoring_pb2.SystemMetrics:
        self._enabled()
        namespace = namespace_of(context)
        s = self._metrics.system(namespace)
        sample = self._sample()
        queues = self._mesh.queue_sizes(namespace)
        status, reasons = health(
            store_ok=self._store_ok(),
            engine_ok=not self._rt.failed.is_set(),
            loop_lag_ms=sample.loop_lag_ms,
            starved=[c for _, c in self._mesh.starved(namespace)],
            error_rate=s.error_rate,
        )
        if reasons:
            log.debug("health of namespace %s: %s (%s)", namespace, status, "; ".join(reasons))
        return monitoring_pb2.SystemMetrics(
            active_workflows=s.active_workflows,
            total_tasks_processed=s.total_tasks_processed,
            tasks_per_second=s.tasks_per_second,
            active_agents=len(self._mesh.list_agents(namespace=namespace)),
            error_rate=s.error_rate,
            avg_task_latency_ms=s.avg_task_latency_ms,
            resource_utilization=monitoring_pb2.ResourceUtilization(
                cpu=sample.cpu_percent,
                memory=float(sample.memory_bytes),
                network=monitoring_pb2.NetworkUsage(
                    bytes_in=sample.bytes_in, bytes_out=sample.bytes_out
                ),
                storage=float(sample.storage_bytes),
            ),
            queue_sizes={c: n for (_, c), n in queues.items()},
            health_status=_HEALTH[status],
        )
