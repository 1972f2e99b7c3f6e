"""The event stream and the metrics of ``Client`` (a mixin), and their value types.

``subscribe_to_events`` follows the coordinator's event log. Every event carries its
``sequence`` (the log's order); the stream remembers the last one and, when the
connection drops, the coordinator restarts or a new leader takes over, subscribes
again after it (following redirects and failing over like every call), so the caller
sees each durable event once, in order, with no gap. A subscriber that falls too far
behind is ended by the coordinator (RESOURCE_EXHAUSTED); the stream resumes at once.
Live events (agents, task progress and output) that aged out of the coordinator's
buffer meanwhile are announced by one ``stream.truncated`` event (``data`` says
which sequences), never silently skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc

from agent_sdk._discovery import election_pending, find_leader, leader_hint
from agent_sdk._errors import UnavailableError, rpc_error
from agent_sdk._failover import Failover, GiveUp, Outcome, Result, Retry, Route
from agent_sdk._metrics import StepMetrics, SystemMetrics, WorkflowMetrics
from agent_sdk._types import TaskFailure
from agentmesh import wire
from agentmesh.protocol import EVENT_HEAD_METADATA
from agentmesh.v1 import monitoring_pb2

log = logging.getLogger("agent_sdk")

#: The type of the marker that announces live events that aged out (see the module doc).
TRUNCATED = "stream.truncated"
#: How long the coordinator may hold an event for more to send with it (the stream is
#: read in batches, ``SubscribeBatches``): a little latency for far less work per event
#: on both sides when events are many.
BATCH_DELAY_MS = 5


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What to subscribe to; empty fields match everything. ``execution_id`` matches
    that execution and its children; ``types`` holds exact types or prefixes ending in
    ``*`` (``"step.*"``)."""

    execution_id: str = ""
    workflow_name: str = ""
    agent_id: str = ""
    types: tuple[str, ...] = ()

    @classmethod
    def of(cls, value: EventFilter | Mapping[str, Any] | None) -> EventFilter:
        """A filter from itself, a mapping in snake_case or the seed's camelCase
        (``{"executionId": ...}``), or None."""
        if value is None:
            return cls()
        if isinstance(value, EventFilter):
            return value
        aliases = {"executionId": "execution_id", "workflowName": "workflow_name"}
        aliases["agentId"] = "agent_id"
        fields = {aliases.get(k, k): v for k, v in value.items()}
        unknown = set(fields) - {"execution_id", "workflow_name", "agent_id", "types"}
        if unknown:
            raise ValueError(f"unknown event filter field(s): {', '.join(sorted(unknown))}")
        types = fields.get("types", ())
        return cls(
            str(fields.get("execution_id", "")),
            str(fields.get("workflow_name", "")),
            str(fields.get("agent_id", "")),
            (types,) if isinstance(types, str) else tuple(types),
        )

    def to_proto(self) -> monitoring_pb2.EventFilter:
        """The protocol's ``EventFilter``."""
        return monitoring_pb2.EventFilter(
            execution_id=self.execution_id,
            workflow_name=self.workflow_name,
            agent_id=self.agent_id,
            types=list(self.types),
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One event of the coordinator's log (``Event`` in the protocol)."""

    sequence: int
    type: str
    time: datetime | None
    namespace: str = ""
    execution_id: str = ""
    workflow_name: str = ""
    step_id: str = ""
    task_id: str = ""
    agent_id: str = ""
    message: str = ""
    data: Any = None
    error: TaskFailure | None = None

    @classmethod
    def from_proto(cls, e: Any) -> Event:
        """Read the protocol's ``Event``."""
        return cls(
            e.sequence,
            e.type,
            wire.from_timestamp(e.time),
            e.namespace,
            e.execution_id,
            e.workflow_name,
            e.step_id,
            e.task_id,
            e.agent_id,
            e.message,
            wire.from_value(e.data),
            TaskFailure.from_proto(e.error) if e.HasField("error") else None,
        )


_HEALTH = {
    monitoring_pb2.HEALTH_STATUS_HEALTHY: "healthy",
    monitoring_pb2.HEALTH_STATUS_DEGRADED: "degraded",
    monitoring_pb2.HEALTH_STATUS_UNHEALTHY: "unhealthy",
}

Callback = Callable[[Event], Awaitable[None] | None]


class Subscription:
    """A running callback subscription: ``close()`` ends it; ``last_sequence`` is the
    last event handed to the callback; ``await wait()`` returns when it ends and
    raises what ended it (an error of the coordinator's, or the callback's own)."""

    def __init__(self, stream: EventStream, task: asyncio.Task[None]) -> None:
        self._stream = stream
        self._task = task

    @property
    def last_sequence(self) -> int:
        """The last sequence handed to the callback (resume after it)."""
        return self._stream.last_sequence

    @property
    def closed(self) -> bool:
        """Whether it ended (closed, or an error)."""
        return self._task.done()

    async def close(self) -> None:
        """End the subscription (safe twice). Cancelling it leaves it ending."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        await self._stream.aclose()

    async def wait(self) -> None:
        """Until the subscription ends; raises what ended it (not ``close()``).
        Cancelling it only stops the wait."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)


class EventStream:
    """Events as they happen, resumed across reconnects (see the module docstring).

    ``async for event in stream`` reads them (the subscription begins with the first
    read); ``async with stream:`` begins it at once, returning once the coordinator has
    registered it, and ends it on exit; ``await stream`` (given a callback) starts a
    ``Subscription`` instead. ``aclose()`` ends it."""

    def __init__(
        self,
        client: MonitoringMethods,
        filter_: EventFilter,
        from_sequence: int,
        callback: Callback | None,
        *,
        from_start: bool = False,
        follow: bool = True,
    ) -> None:
        if from_sequence < 0:
            raise ValueError("from_sequence must not be negative")
        self.filter = filter_
        self._from_start = from_start
        self._follow = follow
        #: The last sequence handed out (or the resume point given).
        self.last_sequence = from_sequence
        self._client = client
        self._callback = callback
        self._gen: AsyncGenerator[Event, None] | None = None
        self._first: asyncio.Future[Event] | None = None  # read ahead by __aenter__
        self._established = asyncio.Event()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        first, self._first = self._first, None
        if first is not None:
            return await first
        if self._gen is None:
            self._gen = self._events()
        return await self._gen.__anext__()

    async def __aenter__(self) -> EventStream:
        """Begin the subscription; returns once the coordinator registered it (raises
        why it could not). Cancelling it ends the stream."""
        if self._gen is None:
            self._gen = self._events()
            self._first = asyncio.ensure_future(self._gen.__anext__())
        first = self._first
        if first is not None:
            registered: asyncio.Future[Any] = asyncio.ensure_future(self._established.wait())
            try:
                await asyncio.wait([first, registered], return_when=asyncio.FIRST_COMPLETED)
            except BaseException:
                await self.aclose()
                raise
            finally:
                registered.cancel()
            if first.done() and first.exception() is not None:
                self._first = None
                await self.aclose()
                first.result()  # raises it
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reading (safe twice); cancelling it still ends the stream."""
        first, self._first = self._first, None
        if first is not None and not first.done():
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await first
        gen, self._gen = self._gen, None
        if gen is not None:
            await gen.aclose()

    def __await__(self) -> Generator[Any, None, Subscription]:
        return self._start().__await__()

    async def _start(self) -> Subscription:
        callback = self._callback
        if callback is None:
            raise TypeError(
                "pass a callback to await subscribe_to_events(filter, callback), or "
                "iterate it: async for event in client.subscribe_to_events(filter)"
            )
        task = asyncio.get_running_loop().create_task(self._deliver(callback))
        established = asyncio.ensure_future(self._established.wait())
        await asyncio.wait([task, established], return_when=asyncio.FIRST_COMPLETED)
        established.cancel()
        if task.done():
            task.result()  # raises why it could not start
        return Subscription(self, task)

    async def _deliver(self, callback: Callback) -> None:
        async for event in self:
            result = callback(event)
            if inspect.isawaitable(result):
                await result

    async def _events(self) -> AsyncGenerator[Event, None]:
        client = self._client
        loop = asyncio.get_running_loop()
        route: Route = client._route
        run = Failover.reconnect(route, 0.05, 2.0)
        batches = True
        while True:
            target = route.target()
            try:
                if target is None:  # etcd:// and no replica to try: ask etcd
                    address = route.address
                    target = await find_leader(address.etcd, address.prefix, 5.0)
                    route.resolved(target)
                client._connect(target)
                request = monitoring_pb2.SubscribeRequest(
                    filter=self.filter.to_proto(),
                    from_sequence=self.last_sequence,
                    from_start=self._from_start and not self.last_sequence,
                    stop_at_head=not self._follow,
                )
                if batches:
                    call = client._events.SubscribeBatches(
                        monitoring_pb2.SubscribeBatchesRequest(
                            subscription=request, max_delay_ms=BATCH_DELAY_MS
                        ),
                        metadata=client._metadata,
                    )
                else:  # a coordinator from before SubscribeBatches
                    call = client._events.Subscribe(request, metadata=client._metadata)
                live = False  # registered by the coordinator on this connection
                try:
                    head = _head(await call.initial_metadata())
                    if not (self.last_sequence or self._from_start) and head is not None:
                        self.last_sequence = head  # a resume from here misses nothing
                    self._established.set()
                    live = True
                    run.next(Outcome(Result.CLOSED, target, welcomed=True), loop.time())
                    async for message in call:
                        for e in message.events if batches else (message,):
                            if e.type == TRUNCATED:
                                yield Event.from_proto(e)
                            elif e.sequence > self.last_sequence:
                                self.last_sequence = e.sequence
                                yield Event.from_proto(e)
                finally:
                    call.cancel()
                if not self._follow:
                    return  # everything up to the head was sent
                outcome = Outcome(Result.CLOSED, target, "the event stream ended")
            except UnavailableError as e:  # from find_leader
                outcome = Outcome(Result.NO_LEADER, "", e.message, error=e)
            except grpc.aio.AioRpcError as e:
                if e.code() == grpc.StatusCode.UNIMPLEMENTED and batches and not live:
                    batches = False  # an older coordinator: one event per message
                    continue
                if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and live:
                    log.info("event stream fell behind; resuming after %d", self.last_sequence)
                    continue  # the coordinator ended a slow subscriber: resume at once
                # CANCELLED: the coordinator went away mid-stream (a stream only)
                outcome = call_outcome(e, target or "", (grpc.StatusCode.CANCELLED,))
            decision = run.next(outcome, loop.time())
            if isinstance(decision, GiveUp):
                raise decision.error from None
            if isinstance(decision, Retry):
                log.info(
                    "event stream: %s (%s); resubscribing after %d",
                    outcome.target or "etcd",
                    outcome.reason,
                    self.last_sequence,
                )
                if decision.delay > 0:
                    await asyncio.sleep(decision.delay)


def _head(metadata: Any) -> int | None:
    for key, value in metadata or ():
        if key == EVENT_HEAD_METADATA:
            with contextlib.suppress(ValueError):
                return int(value)
    return None


def call_outcome(
    e: grpc.aio.AioRpcError, target: str, retry: Iterable[grpc.StatusCode] = ()
) -> Outcome:
    """A call's error as an attempt's outcome (``Client`` and the event stream):
    UNAVAILABLE (and the ``retry`` codes) may be retried, any other code is the
    coordinator's answer to the call itself."""
    error = rpc_error(e)
    if e.code() != grpc.StatusCode.UNAVAILABLE and e.code() not in retry:
        return Outcome(Result.FATAL, target, error.message, error=error)
    return Outcome.refusal(
        target, leader_hint(e), election_pending(e), reason=error.message, error=error
    )


class MonitoringMethods:
    """Mixed into Client: events and metrics. ``self._events`` and ``self._metrics``
    stubs, ``self._route``, ``self._connect``, ``self._metadata`` and ``self._call``
    come from there."""

    _events: Any
    _metrics: Any
    _route: Route
    _metadata: tuple[tuple[str, str], ...]

    def _connect(self, address: str) -> None:
        raise NotImplementedError

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError

    def subscribe_to_events(
        self,
        filter: EventFilter | Mapping[str, Any] | None = None,
        callback: Callback | None = None,
        *,
        from_sequence: int = 0,
        from_start: bool = False,
        follow: bool = True,
        types: Iterable[str] | None = None,
    ) -> EventStream:
        """The events matching ``filter`` (an ``EventFilter``, or a mapping such as the
        seed's ``{"executionId": ...}``), after ``from_sequence`` (0: from now).

        ``async for event in client.subscribe_to_events(...)`` reads them, resuming by
        itself across reconnects and failovers; ``sub = await
        client.subscribe_to_events(filter, callback)`` calls ``callback(event)`` (sync
        or async) for each and returns a ``Subscription`` once the coordinator has
        registered it (``await sub.close()`` ends it). ``from_start``: from the
        beginning of the log instead (every stored event, and the live ones still
        buffered); ``follow=False``: end once the log up to now is read. ``types`` adds
        to the filter's types. Errors the stream cannot resume from (a malformed filter, an unknown
        execution: InvalidArgumentError, NotFoundError ...) are raised."""
        f = EventFilter.of(filter)
        if types is not None:
            f = EventFilter(f.execution_id, f.workflow_name, f.agent_id, (*f.types, *types))
        return EventStream(self, f, from_sequence, callback, from_start=from_start, follow=follow)

    async def get_workflow_metrics(self, workflow_name: str) -> WorkflowMetrics:
        """The seed's getWorkflowMetrics (NotFoundError for a workflow that is neither
        defined nor has run in this namespace). Cancelling it cancels the call."""
        m = await self._call(
            self._metrics.GetWorkflowMetrics,
            monitoring_pb2.GetWorkflowMetricsRequest(workflow_name=workflow_name),
        )
        return WorkflowMetrics(
            m.workflow_name,
            m.total_executions,
            m.active_executions,
            m.success_rate,
            m.average_duration_ms,
            m.error_rate,
            {
                k: StepMetrics(s.count, s.average_duration_ms, s.error_rate, s.retry_rate)
                for k, s in m.step_metrics.items()
            },
            dict(m.agent_utilization),
        )

    async def get_system_metrics(self) -> SystemMetrics:
        """The seed's getSystemMetrics, for the client's namespace. Cancelling it
        cancels the call."""
        m = await self._call(
            self._metrics.GetSystemMetrics, monitoring_pb2.GetSystemMetricsRequest()
        )
        r = m.resource_utilization
        return SystemMetrics(
            m.active_workflows,
            m.total_tasks_processed,
            m.tasks_per_second,
            m.active_agents,
            m.error_rate,
            m.avg_task_latency_ms,
            r.cpu,
            r.memory,
            r.network.bytes_in,
            r.network.bytes_out,
            r.storage,
            dict(m.queue_sizes),
            _HEALTH.get(m.health_status, "unknown"),
        )


__all__ = [
    "Event",
    "EventFilter",
    "EventStream",
    "StepMetrics",
    "Subscription",
    "SystemMetrics",
    "WorkflowMetrics",
]
