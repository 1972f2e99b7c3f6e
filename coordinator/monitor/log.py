"""The coordinator's event log: one global order for everything the mesh does.

Two kinds of events share one sequence (``MeshEvent.position``):

- **Durable** events are an execution's journal (``execution.*``, ``step.*``, the
  engine's ``task.*``): the engine asks ``assign()`` for each event's position before
  the turn is committed, the store keeps it (``StoredEvent.position``), and
  ``committed()`` publishes the events once the commit returned. After a reconnect, a
  restart or a failover they are read back from the store (``Store.read_log``), so a
  subscriber resumes with no gap and no duplicate.
- **Live** events (agents, the mesh's own task events, the cluster) are not stored:
  ``emit()`` publishes them at once and a bounded ring keeps the latest
  ``event_buffer`` of them for subscribers that resume.

Positions are handed out in order, and published in order: a live event that is
handed a position while an earlier durable one is still being committed waits for it
(a commit's latency), so every subscriber sees one strictly increasing order, and
"every position up to ``head`` is published" always holds. A subscriber registers
first, replays ``(from, head]`` from the store and the ring, then follows.

Positions must not be reused after a restart: the log reserves them ahead
(``Store.reserve_positions``, ``RESERVE_BLOCK`` at a time, renewed when half is
used) and a new log starts above the store's floor, so a live event handed a
position before a crash is never confused with one after it.

Slow subscribers never slow the engine: each has a bounded buffer; the one that
overflows is ended (``SubscriberBehind``, naming its last delivered position) and
resumes from the store.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from coordinator.domain import DEFAULT_NAMESPACE, JsonObject, MeshEvent, utcnow
from coordinator.errors import LogClosed, SubscriberBehind
from coordinator.store import ExecutionRecord, Store, StoredEvent

log = logging.getLogger(__name__)

#: Positions reserved in the store at a time (a restart skips at most this many).
RESERVE_BLOCK: Final = 1_000_000
#: Execution -> parent entries kept for lineage (the children filter).
PARENTS_KEPT: Final = 100_000
#: The live-only types (never in the store), for the docs and the resume marker.
LIVE_TYPES: Final = (
    "agent.joined",
    "agent.left",
    "agent.offline",
    "agent.draining",
    "agent.breaker",
    "capability.breaker",
    "task.submitted",
    "task.assigned",
    "task.acked",
    "task.progress",
    "task.output",
    "task.redelivered",
    "task.finished",
    "cluster.leader_changed",
    "coordinator.started",
    "service.breaker",
)
#: What a resumed stream starts with when live events it asked for are gone.
TRUNCATED: Final = "stream.truncated"

Redact = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Filter:
    """What a subscriber wants. Empty fields match everything; ``types`` holds exact
    types or prefixes ending in ``*`` (``step.*``; ``*`` alone is everything)."""

    namespace: str | None = DEFAULT_NAMESPACE  # None: every namespace (operators)
    execution_id: str = ""  # that execution and its children
    workflow_name: str = ""
    agent_id: str = ""
    types: tuple[str, ...] = ()
    _exact: frozenset[str] = field(init=False, repr=False, compare=False)
    _prefixes: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact = frozenset(t for t in self.types if not t.endswith("*"))
        prefixes = tuple(t[:-1] for t in self.types if t.endswith("*"))
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_prefixes", prefixes)

    def matches(self, e: MeshEvent) -> bool:
        """Whether the subscriber wants ``e``."""
        if self.namespace is not None and e.namespace not in (self.namespace, ""):
            return False
        if self.execution_id and self.execution_id not in e.lineage:
            return False
        if self.workflow_name and e.workflow_name != self.workflow_name:
            return False
        if self.agent_id and e.agent_id != self.agent_id:
            return False
        return self.type_matches(e.type)

    def type_matches(self, type_: str) -> bool:
        """Whether ``types`` admits ``type_`` (exactly, or by a ``*`` prefix)."""
        if not self.types or type_ in self._exact:
            return True
        return any(type_.startswith(p) for p in self._prefixes)

    def wants_live(self) -> bool:
        """Whether a live-only event could match (for the resume marker)."""
        return any(self.type_matches(t) for t in LIVE_TYPES)


class Subscription:
    """One subscriber's bounded buffer. ``next()`` hands events in position order;
    it raises ``SubscriberBehind`` once the buffer overflowed, ``LogClosed`` once the
    log did."""

    def __init__(self, log_: EventLog, filter_: Filter, buffer: int, start: int) -> None:
        self.filter = filter_
        self.buffer = buffer
        self.start = start  # the log's head when it registered: live from here on
        self.last = 0  # the last position handed out
        self._log = log_
        self._queue: deque[MeshEvent] = deque()
        self._wake = asyncio.Event()
        self._overflow = False
        self._closed: str | None = None

    def offer(self, e: MeshEvent) -> None:
        """Queue ``e`` if it matches; past ``buffer`` queued, the subscription overflows."""
        if self._overflow or self._closed is not None or not self.filter.matches(e):
            return
        if len(self._queue) >= self.buffer:
            self._overflow = True
            self._queue.clear()
        else:
            self._queue.append(e)
        self._wake.set()

    def close(self, reason: str) -> None:
        """End it: ``next()`` hands what is queued, then raises ``LogClosed``."""
        self._closed = reason
        self._wake.set()

    def pending(self) -> int:
        """Events queued, not yet handed out."""
        return len(self._queue)

    async def next(self) -> MeshEvent:
        """The next event after ``last`` (waits for one)."""
        while True:
            if self._overflow:
                raise SubscriberBehind(self.last, self.buffer)
            while self._queue:
                e = self._queue.popleft()
                if e.position > self.last:
                    self.last = e.position
                    return e
            if self._closed is not None:
                raise LogClosed(self._closed, self.last)
            self._wake.clear()
            await self._wake.wait()

    def poll(self) -> MeshEvent | None:
        """The next queued event after ``last``, or None when none is queued (then
        ``next()`` says whether one will come, or raises why not)."""
        queue = self._queue
        while queue and not self._overflow:
            e = queue.popleft()
            if e.position > self.last:
                self.last = e.position
                return e
        return None

    def cancel(self) -> None:
        """Stop receiving (the stream ended)."""
        self._log.unsubscribe(self)


class EventLog:
    """The log of one term (see the module docstring). ``open()`` before use;
    ``assign``/``committed``/``abandoned`` are the engine's side, ``emit`` everyone
    else's, ``subscribe``/``replay`` the readers'."""

    def __init__(
        self,
        store: Store,
        *,
        buffer: int = 10_000,
        output_bytes: int = 16 * 2**20,
        redact: Redact | None = None,
        parent_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.store = store
        self.ring_size = buffer
        self.ring_output_bytes = output_bytes  # task.output chunks the ring may hold
        self._ring_bytes = 0
        self._redact = redact or (lambda _id, data: data)
        self._parent_of = parent_of or (lambda _id: None)
        self._next = 1
        self._reserved = 0
        self._reserving: asyncio.Task[None] | None = None
        self.head = 0  # every position up to here is published
        self._pending: set[int] = set()  # assigned to durable events, not yet committed
        self._pending_heap: list[int] = []
        self._held: list[tuple[int, int, MeshEvent | None]] = []  # (position, tiebreak, event)
        self._ring: deque[MeshEvent] = deque()
        self._dropped = 0  # live events up to this position are no longer in the ring
        self._subscribers: set[Subscription] = set()
        self._parents: OrderedDict[str, str] = OrderedDict()
        self._listeners: list[Callable[[MeshEvent], None]] = []
        self.published = 0  # events published (for metrics and the bench)
        self._closed: str | None = None

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Start above everything the store may have handed out, and reserve ahead."""
        floor = await self.store.log_floor()
        self._next = floor + 1
        self.head = floor
        self._dropped = floor  # no live event of an earlier term is retained
        self._reserved = floor + RESERVE_BLOCK
        await self.store.reserve_positions(self._reserved)

    def close(self, reason: str) -> None:
        """End every subscription (``LogClosed``); later events go nowhere."""
        self._closed = reason
        for sub in list(self._subscribers):
            sub.close(reason)
        self._subscribers.clear()

    def add_listener(self, listener: Callable[[MeshEvent], None]) -> None:
        """Call ``listener`` with every event as it is published (metrics, exports)."""
        self._listeners.append(listener)

    @property
    def subscribers(self) -> int:
        """Open subscriptions."""
        return len(self._subscribers)

    # ------------------------------------------------------------ the engine's side

    def assign(self) -> int:
        """A position for a durable event about to be committed."""
        position = self._take()
        self._pending.add(position)
        heapq.heappush(self._pending_heap, position)
        return position

    def committed(self, record: ExecutionRecord, events: Sequence[StoredEvent]) -> None:
        """``events`` of ``record``'s execution are durable: publish them."""
        self._remember(record.id, record.parent_id)
        for se in events:
            self._pending.discard(se.position)
            mesh = self._durable(se, record) if "." in se.type else None
            heapq.heappush(self._held, (se.position, 0, mesh))  # None: releases only
        self._flush()

    def abandoned(self, positions: Iterable[int]) -> None:
        """Positions whose commit failed: they will never be published."""
        for position in positions:
            self._pending.discard(position)
        self._flush()

    # ------------------------------------------------------------ live events

    def emit(
        self,
        type_: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        execution_id: str = "",
        workflow_name: str = "",
        step_id: str = "",
        task_id: str = "",
        agent_id: str = "",
        message: str = "",
        data: JsonObject | None = None,
        time: datetime | None = None,
    ) -> None:
        """Publish a live event (``namespace`` "" : every namespace sees it)."""
        if self._closed is not None:
            return
        position = self._take()
        e = MeshEvent(
            position,
            type_,
            time or utcnow(),
            namespace,
            execution_id,
            workflow_name,
            step_id,
            task_id,
            agent_id,
            message,
            data or {},
            self._lineage(execution_id),
        )
        if not self._pending or position < self._lowest_pending():
            self._publish(e)
        else:
            heapq.heappush(self._held, (position, 1, e))

    # ------------------------------------------------------------ readers

    def subscribe(self, filter_: Filter, buffer: int) -> Subscription:
        """Register a subscriber for everything published after ``head`` now."""
        if self._closed is not None:
            raise LogClosed(self._closed)
        sub = Subscription(self, filter_, buffer, self.head)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Drop ``sub`` (safe twice)."""
        self._subscribers.discard(sub)

    def truncated(self, after: int, filter_: Filter) -> MeshEvent | None:
        """The marker a stream resumed after ``after`` starts with when live events
        it could match are no longer retained, else None."""
        if after >= self._dropped or not filter_.wants_live():
            return None
        oldest = self._ring[0].position if self._ring else self.head + 1
        return MeshEvent(
            after,
            TRUNCATED,
            utcnow(),
            filter_.namespace or "",
            message=(
                f"live events (agents, task progress and output, cluster) up to sequence "
                f"{self._dropped} are no longer retained; durable events follow in full"
            ),
            data={"retainedFrom": oldest, "lostUpTo": self._dropped},
        )

    async def replay(self, after: int, upto: int, filter_: Filter) -> AsyncIterator[MeshEvent]:
        """Published events in ``(after, upto]`` matching ``filter_``, in order: the
        durable ones from the store, the live ones from the ring."""
        live = [e for e in self._ring if after < e.position <= upto and filter_.matches(e)]
        li = 0
        cursor = after
        records: dict[str, ExecutionRecord | None] = {}
        while cursor < upto:
            page = await self.store.read_log(cursor, 500)
            if not page:
                break
            for se in page:
                if se.position > upto:
                    cursor = upto
                    break
                cursor = se.position
                if "." not in se.type:
                    continue
                while li < len(live) and live[li].position < se.position:
                    yield live[li]
                    li += 1
                record = await self._record(se.execution_id, records)
                if record is None:
                    continue
                e = self._durable(se, record, await self._lineage_stored(record, records))
                if filter_.matches(e):
                    yield e
        for e in live[li:]:
            yield e

    # ------------------------------------------------------------ inside

    def _take(self) -> int:
        position = self._next
        self._next += 1
        if self._next > self._reserved - RESERVE_BLOCK // 2 and self._reserving is None:
            self._reserving = asyncio.get_running_loop().create_task(self._reserve())
        return position

    async def _reserve(self) -> None:
        upto = self._reserved + RESERVE_BLOCK
        try:
            await self.store.reserve_positions(upto)
            self._reserved = upto
        except Exception as e:  # deposed or etcd down: the term ends anyway
            log.warning("reserving event positions up to %d failed: %s", upto, e)
        finally:
            self._reserving = None

    def _lowest_pending(self) -> int:
        heap = self._pending_heap
        while heap and heap[0] not in self._pending:
            heapq.heappop(heap)
        return heap[0] if heap else self._next

    def _flush(self) -> None:
        lowest = self._lowest_pending() if self._pending else self._next
        held = self._held
        while held and held[0][0] < lowest:
            position, _, e = heapq.heappop(held)
            if e is not None:
                self._publish(e)
            elif position > self.head:
                self.head = position

    def _publish(self, e: MeshEvent) -> None:
        self.head = max(self.head, e.position)
        self.published += 1
        if not e.durable:
            ring = self._ring
            ring.append(e)
            if e.type == "task.output":
                self._ring_bytes += _chunk_size(e)
            while len(ring) > self.ring_size or self._ring_bytes > self.ring_output_bytes:
                old = ring.popleft()
                self._dropped = old.position
                if old.type == "task.output":
                    self._ring_bytes -= _chunk_size(old)
        for sub in self._subscribers:
            sub.offer(e)
        for listener in self._listeners:
            try:
                listener(e)
            except Exception:
                log.exception("event listener failed on %s", e.type)

    def _durable(
        self, se: StoredEvent, record: ExecutionRecord, lineage: tuple[str, ...] | None = None
    ) -> MeshEvent:
        data = dict(self._redact(se.execution_id, se.data))
        step_id = str(data.pop("stepId", "") or "")
        message = str(data.pop("message", "") or "")
        return MeshEvent(
            se.position,
            se.type,
            se.time,
            record.namespace,
            se.execution_id,
            record.workflow_name,
            step_id,
            str(data.get("taskId", "") or ""),
            str(data.get("agent", "") or ""),
            message,
            data,
            lineage if lineage is not None else self._lineage(se.execution_id),
            durable=True,
        )

    def _remember(self, exec_id: str, parent_id: str) -> None:
        parents = self._parents
        parents[exec_id] = parent_id
        parents.move_to_end(exec_id)
        if len(parents) > PARENTS_KEPT:
            parents.popitem(last=False)

    def lineage(self, exec_id: str) -> tuple[str, ...]:
        """The execution's id, its parent's, ... up to its top-level execution's."""
        return self._lineage(exec_id)

    def _lineage(self, exec_id: str) -> tuple[str, ...]:
        chain: list[str] = []
        current = exec_id
        while current and current not in chain and len(chain) < 64:
            chain.append(current)
            parent = self._parents.get(current)
            if parent is None:
                parent = self._parent_of(current)
                if parent is None:
                    break
                self._remember(current, parent)
            current = parent
        return tuple(chain)

    async def _record(
        self, exec_id: str, records: dict[str, ExecutionRecord | None]
    ) -> ExecutionRecord | None:
        if exec_id not in records:
            records[exec_id] = await self.store.get_execution(exec_id)
        return records[exec_id]

    async def _lineage_stored(
        self, record: ExecutionRecord, records: dict[str, ExecutionRecord | None]
    ) -> tuple[str, ...]:
        chain = [record.id]
        parent = record.parent_id
        while parent and parent not in chain and len(chain) < 64:
            chain.append(parent)
            found = await self._record(parent, records)
            parent = found.parent_id if found is not None else ""
        return tuple(chain)


def _chunk_size(e: MeshEvent) -> int:
    chunk = e.data.get("chunk")
    return len(chunk) if isinstance(chunk, str) else 0
