"""The runtime around the engine core: persist, then act.

One loop owns every execution. Each turn it takes all inputs that arrived
(task results, timers, events, operator requests), applies them to their
executions, commits the inputs and the journal they caused in ONE store
transaction (group commit), and only then carries out the commands: history is
durable before any effect is visible. After a crash, ``recover()`` replays each
unfinished execution's inputs and re-establishes what was outstanding: tasks
are dispatched again with the same idempotency key, timers re-armed, event
waits re-registered, finished children reported.

One piece, though long: the loop owns the live maps that starting, controlling,
turns and recovery all change; effects, recovery, batches and Live are split out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agentmesh.payload import PayloadError
from agentmesh.payload import check as check_payload
from coordinator.config import Settings
from coordinator.domain import DEFAULT_NAMESPACE
from coordinator.engine import events as ev
from coordinator.engine.batches import split_batch
from coordinator.engine.catalog import Catalog
from coordinator.engine.core import EngineDefaults, Execution
from coordinator.engine.effects import Effects
from coordinator.engine.issues import issues_text
from coordinator.engine.live import ACTIVE, Live, record_of
from coordinator.engine.ports import Dispatcher, Journal, ServiceCaller
from coordinator.engine.recovery import finished_child, replay
from coordinator.engine.triggers import Triggers
from coordinator.engine.validate import validate_input
from coordinator.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from coordinator.quotas import Quotas
from coordinator.secrets import Redactor, Secrets
from coordinator.store import ExecutionRecord, ExecutionWhere, Store, StoredEvent

log = logging.getLogger(__name__)

FINISHED_KEPT = 10_000


def _now() -> datetime:
    return datetime.now(UTC)


Listener = Callable[[str, StoredEvent], None]


def capability_gates(settings: Settings) -> dict[str, tuple[ev.Gate, ...]]:
    """The gates of ``capability_limits``: one group per capability, one key."""
    out: dict[str, tuple[ev.Gate, ...]] = {}
    for capability, limits in settings.capability_limits.items():
        group = f"capability:{capability}"
        gates = []
        if limits.get("concurrency"):
            gates.append(ev.Gate(group, "", limit=int(limits["concurrency"])))
        if limits.get("perSecond"):
            burst = int(limits.get("burst", 1))
            gates.append(ev.Gate(group + "/rate", "", per_second=limits["perSecond"], burst=burst))
        out[capability] = tuple(gates)
    return out


def _visible(live: Live, exec_id: str, namespace: str | None) -> Live:
    """``live``, unless it belongs to another namespace than ``namespace``: then the
    same NotFound as for an id nobody knows."""
    if namespace is not None and live.record.namespace != namespace:
        raise NotFound(f"execution {exec_id!r} not found")
    return live


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What an event did: the waits it woke, the executions its triggers started (or had
    started for the same event id), and the triggers that could not start."""

    delivered: int
    started: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Turn:
    """What one engine turn applied: history to commit, then effects to carry out."""

    stored: list[StoredEvent] = field(default_factory=list)
    records: dict[str, ExecutionRecord] = field(default_factory=dict)
    effects: list[tuple[Live, list[ev.Command]]] = field(default_factory=list)


class WorkflowRuntime:
    """Definitions and executions of one coordinator."""

    def __init__(
        self,
        settings: Settings,
        mesh: Dispatcher,
        store: Store,
        redactor: Redactor | None = None,
        journal: Journal | None = None,
        services: ServiceCaller | None = None,
    ) -> None:
        self.settings = settings
        #: The global event log (positions, then publication); None: events stay out.
        self.journal = journal
        #: Called with each turn's commit time in seconds (metrics), when set.
        self.on_commit: Callable[[float], None] | None = None
        #: Secret values: sealed in the history, redacted in answers (coordinator.secrets).
        self.redactor = redactor or Redactor(settings.redact_fields)
        self._said_unsealed = False
        self.mesh = mesh
        self.store = store
        self.defaults = EngineDefaults(
            retry=settings.retry_policy,
            max_payload_bytes=mesh.payload_bytes,
            retry_every_error=settings.error_handling_level == "aggressive",
            capability_gates=capability_gates(settings),
        )
        self._live: dict[str, Live] = {}
        self._done: OrderedDict[str, Live] = OrderedDict()
        self._inbox: asyncio.Queue[tuple[str, ev.Input, asyncio.Future[None] | None]] = (
            asyncio.Queue()
        )
        self.catalog = Catalog(settings, store, mesh.capabilities)
        # (parent execution id, its key for the child) -> the unfinished child's id
        self._children: dict[tuple[str, str], str] = {}
        self._queued: list[str] = []
        self._running = 0
        self._idempotency: dict[tuple[str, str], str] = {}  # (namespace, key) -> execution
        self.quotas = Quotas(settings)
        # namespace -> its unfinished top-level executions (its running_executions quota)
        self._unfinished: dict[str, int] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._settling: asyncio.Task[None] | None = None
        self._listeners: list[Listener] = []
        self.transitions = 0
        self._background: set[asyncio.Task[None]] = set()
        self._commit_lock = asyncio.Lock()
        # Set when the engine loop stops on an error (e.g. the store refused a
        # write because this coordinator was deposed); ``failure`` says why.
        self.failed = asyncio.Event()
        self.failure: BaseException | None = None
        self.effects = Effects(mesh, self._post, self._waiting_for_agent)
        self.effects.calls.caller = services
        #: Event triggers and schedules of the latest definitions (``triggers.py``).
        self.triggers = Triggers(self.catalog, store, self._start_triggered)
        self.catalog.add_listener(self.triggers.changed)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load the workflow directory, recover unfinished executions, start the loop.
        Raises what the store raises; cancelling it leaves the runtime not started."""
        if self.settings.workflow_dir:
            await self.catalog.load_directory(self.settings.workflow_dir)
        await self.recover()
        self._loop_task = asyncio.create_task(self._run(), name="engine")
        await self.triggers.start()

    def freeze(self) -> None:
        """Stop dispatching new tasks (shutdown): they stay outstanding in the
        history and are dispatched by whichever coordinator recovers it."""
        self.effects.frozen = True

    async def stop(self, timeout: float = 5.0) -> None:
        """Apply what is queued (up to ``timeout``), then stop the loop."""
        self.effects.frozen = True
        await self.triggers.close()
        if self._loop_task is not None and not self._loop_task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._inbox.join(), timeout)
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._settling is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._settling
        self.effects.close()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(execution_id, event)`` for every history entry committed."""
        self._listeners.append(listener)

    # ----------------------------------------------------------- executions

    async def start_workflow(
        self,
        name: str,
        input: Any = None,
        version: str = "",
        idempotency_key: str = "",
        *,
        parent: tuple[str, str] | None = None,
        context: dict[str, Any] | None = None,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> Live:
        """Start (or, with a known ``idempotency_key``, return) an execution of ``name``
        in ``namespace`` (a child runs in its parent's). Raises ``NotFound`` (no such
        workflow in the namespace), ``InvalidArgument`` (input against the schema or
        limits), ``ResourceExhausted`` (too many queued), ``Unavailable``. The execution
        is durable when this returns; cancelling the call does not undo it."""
        secrets = Secrets()
        if parent is not None:
            parent_live = self._live.get(parent[0])
            if parent_live is not None:
                namespace = parent_live.record.namespace
                secrets.merge(parent_live.secrets)
        key = (namespace, idempotency_key)
        if idempotency_key:
            if key in self._idempotency:
                return await self.lookup(self._idempotency[key])
            # Started by an earlier coordinator on this store (before a restart or a
            # failover), perhaps long finished: the store's index remembers it.
            earlier = await self.store.find_execution(idempotency_key, namespace)
            if earlier is not None:
                self._idempotency[key] = earlier.id
                return await self.lookup(earlier.id)
        self._check_payload(input, "workflow input")
        if parent is None:
            self.quotas.check_running_executions(namespace, self._unfinished.get(namespace, 0))
        defn = await self.catalog.get_workflow(name, version, namespace)
        if defn.input_schema is not None:
            secrets.names |= self.redactor.schema_names(defn.input_schema)
        self.redactor.discover(input, secrets)
        if secrets and not self.redactor.sealing and not self._said_unsealed:
            self._said_unsealed = True
            log.warning(
                "%s: secret values are stored as [redacted], and an execution recovered "
                "after a restart sees that marker in their place",
                self.redactor.no_key_note or "no history key",
            )
        problems = []
        if defn.input_schema is not None:  # bounded (MAX_SCHEMA_WORK), not free: off the loop
            problems = await asyncio.to_thread(validate_input, defn, input)
        if problems:  # an issue may quote the value it is about
            raise InvalidArgument(self.redactor.redact_text(issues_text(problems), secrets))
        exec_id = uuid.uuid4().hex
        now = _now()
        record = ExecutionRecord(
            exec_id,
            defn.name,
            defn.version,
            "queued",
            now,
            now,
            parent[0] if parent else "",
            idempotency_key=idempotency_key,
            parent_key=parent[1] if parent else "",
            namespace=namespace,
        )
        live = Live(Execution(exec_id, defn, self.defaults), record, parent=parent, secrets=secrets)
        ctx = dict(context or {})
        if parent is not None:
            ctx.setdefault("parentId", parent[0])
            ctx["parentKey"] = parent[1]
        started = ev.Started(now, defn.name, defn.version, input, ctx, idempotency_key)
        # Decided with no await since: concurrent starts cannot all slip past the limit.
        must_queue = parent is None and self._running >= self.settings.concurrency_limit
        limit = self.settings.max_queued_executions
        if must_queue and len(self._queued) >= limit:
            raise ResourceExhausted(
                f"{len(self._queued)} executions are queued behind concurrencyLimit "
                f"{self.settings.concurrency_limit} (maxQueuedExecutions {limit}); "
                "retry later"
            )
        if parent is None:  # checked again: the awaits above let other starts in
            unfinished = self._unfinished.get(namespace, 0)
            self.quotas.check_running_executions(namespace, unfinished)
            self._unfinished[namespace] = unfinished + 1
        self._live[exec_id] = live
        if parent is not None:
            self._children[parent] = exec_id
        if idempotency_key:
            self._idempotency[key] = exec_id
        if must_queue:
            live.queued_start = started
            self._queued.append(exec_id)
            data = {"input": input, "context": ctx, "idempotencyKey": idempotency_key}
            if secrets:
                data = self.redactor.seal(data, secrets)
            queued = StoredEvent(exec_id, 1, "execution.queued", now, data, self._position())
            live.seq = 1
            try:
                await self.store.commit([queued], [record])
            except BaseException:
                if self.journal is not None:
                    self.journal.abandoned([queued.position])
                raise
            self._publish(exec_id, queued)
            if self.journal is not None:
                self.journal.committed(record, [queued])
            return live
        live.counted = parent is None
        self._running += live.counted
        await self._submit(exec_id, started)
        return live

    async def pause(self, exec_id: str, namespace: str | None = None) -> Live:
        """Pause a running execution; FailedPrecondition in any other state. With
        ``namespace``, one of another namespace is NotFound (as every call below)."""
        live = await self._controllable(exec_id, "paused", ("running",), namespace)
        await self._submit(exec_id, ev.PauseRequested(_now()))
        return live

    async def resume(self, exec_id: str, input: Any = None, namespace: str | None = None) -> Live:
        """Resume a paused execution; FailedPrecondition in any other state."""
        self._check_payload(input, "resume input")
        live = await self._controllable(exec_id, "resumed", ("paused",), namespace)
        await self._submit(exec_id, ev.ResumeRequested(_now(), input))
        return live

    async def stop_execution(
        self, exec_id: str, reason: str = "", namespace: str | None = None
    ) -> Live:
        """Stop (cancel) an unfinished execution; FailedPrecondition once it finished."""
        live = await self._controllable(exec_id, "stopped", ACTIVE, namespace)
        if exec_id in self._queued:
            self._queued.remove(exec_id)
            await self._submit(exec_id, live.queued_start or ev.Started(_now()))
        await self._submit(exec_id, ev.StopRequested(_now(), reason or "stopped"))
        return live

    async def _controllable(
        self, exec_id: str, verb: str, states: tuple[str, ...], namespace: str | None
    ) -> Live:
        live = await self.lookup(exec_id, namespace)
        status = live.status
        if status not in states:
            why = {
                "paused": "it is not running",
                "resumed": "it is not paused",
                "stopped": "it has finished",
            }[verb]
            raise FailedPrecondition(
                f"execution {exec_id} is {status}: it cannot be {verb} ({why})"
            )
        if self._live.get(exec_id) is not live:
            # Unfinished in the store, but this coordinator could not recover it.
            raise FailedPrecondition(
                f"execution {exec_id} is {status} in the store but was not recovered by "
                "this coordinator; see its log"
            )
        return live

    async def lookup(self, exec_id: str, namespace: str | None = None) -> Live:
        """The execution, from memory or, when this coordinator never ran it or has
        forgotten it (a restart, a failover, an old one), rebuilt from the store. The
        one lookup every execution call goes through. Raises NotFound, also for one of
        another namespace than ``namespace`` (None: any), with the same text: an id
        never tells another namespace that it exists."""
        live = self._live.get(exec_id) or self._done.get(exec_id)
        if live is not None:
            return _visible(live, exec_id, namespace)
        record = await self.store.get_execution(exec_id)
        if record is None or (namespace is not None and record.namespace != namespace):
            raise NotFound(f"execution {exec_id!r} not found")
        live = self._live.get(exec_id) or self._done.get(exec_id)
        if live is not None:  # it arrived while we read
            return _visible(live, exec_id, namespace)
        live = await replay(record, self.catalog, self.store, self.defaults, self.redactor)
        if live.ex.finished:
            self._remember_finished(live)
        return live

    def active(self, namespace: str | None = None) -> list[Live]:
        """The executions not finished yet (queued, running, paused), of ``namespace``
        (None: of every namespace)."""
        return [
            x
            for x in self._live.values()
            if not x.ex.finished and (namespace is None or x.record.namespace == namespace)
        ]

    async def listing(
        self,
        workflow_name: str,
        statuses: Collection[str] | None,
        limit: int,
        namespace: str | None = None,
        where: ExecutionWhere | None = None,
    ) -> list[tuple[ExecutionRecord, Live | None]]:
        """Executions of any status from the store's index, newest first, each with
        its live state when this coordinator holds it in memory (current steps)."""
        records = await self.store.list_executions(
            statuses, workflow_name, limit, namespace, where or ExecutionWhere()
        )
        return [(r, self._live.get(r.id) or self._done.get(r.id)) for r in records]

    async def history(
        self, exec_id: str, after_seq: int = 0, namespace: str | None = None
    ) -> list[StoredEvent]:
        """The stored history of ``exec_id`` after ``after_seq``. Raises ``NotFound``."""
        live = self._live.get(exec_id) or self._done.get(exec_id)
        if live is not None:
            _visible(live, exec_id, namespace)
        else:
            record = await self.store.get_execution(exec_id)
            if record is None or (namespace is not None and record.namespace != namespace):
                raise NotFound(f"execution {exec_id!r} not found")
        return await self.store.load_events(exec_id, after_seq)

    def secrets_of(self, exec_id: str) -> Secrets:
        """What ``exec_id`` is known to hold as secrets (empty when not in memory: its
        stored history is sealed anyway)."""
        live = self._live.get(exec_id) or self._done.get(exec_id)
        return live.secrets if live is not None else Secrets()

    async def wait(
        self, exec_id: str, timeout: float | None = None, namespace: str | None = None
    ) -> Live:
        """The execution once it finished, or as it is after ``timeout`` seconds; a
        finished one answers at once."""
        live = await self.lookup(exec_id, namespace)
        if not live.ex.finished:
            if self._live.get(exec_id) is not live:
                raise FailedPrecondition(
                    f"execution {exec_id} is {live.status} in the store but was not "
                    "recovered by this coordinator; see its log"
                )
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            live.waiters.append(fut)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(fut), timeout)
        return live

    async def trigger_event(
        self,
        name: str,
        payload: Any,
        correlation_key: str = "",
        namespace: str = DEFAULT_NAMESPACE,
        event_id: str = "",
    ) -> EventOutcome:
        """Deliver an event to every execution of ``namespace`` waiting for it, and start
        what its triggers say (idempotently per ``event_id``)."""
        if not name:
            raise InvalidArgument("event name is required")
        self._check_payload(payload, "event payload")
        # A step that status already shows waiting for the event registers its wait
        # when its turn settles: let applied turns settle first, or the event is lost.
        settling = self._settling
        if settling is not None and not settling.done():
            await asyncio.wait([settling])
        self.quotas.take_event(namespace)
        matched = self.effects.take_event_waits(name, correlation_key, namespace)
        now = _now()
        for exec_id, key in matched:
            await self._submit(exec_id, ev.EventReceived(now, key, name, payload))
        started = await self.triggers.on_event(name, payload, correlation_key, namespace, event_id)
        return EventOutcome(len(matched), started.executions, started.refused)

    async def _start_triggered(
        self, workflow: str, input: Any, key: str, namespace: str, context: dict[str, Any]
    ) -> str:
        live = await self.start_workflow(
            workflow, input, "", key, context=context, namespace=namespace
        )
        return live.ex.id

    def _check_payload(self, value: Any, what: str) -> None:
        try:
            check_payload(value, what, self.mesh.payload_bytes)
        except PayloadError as e:
            raise InvalidArgument(str(e)) from None

    # ------------------------------------------------------------ the loop

    async def _submit(self, exec_id: str, event: ev.Input) -> None:
        """Queue an input and wait until it is applied and committed."""
        if self._loop_task is not None and self._loop_task.done():
            raise Unavailable("the workflow engine stopped; see the coordinator log")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait((exec_id, event, fut))
        await fut

    def _post(self, exec_id: str, event: ev.Input) -> None:
        self._inbox.put_nowait((exec_id, event, None))

    async def _run(self) -> None:
        """Apply turn N+1 while turn N commits (the store's writer keeps their
        order and may group them); effects still wait for their own commit."""
        settling: asyncio.Task[None] | None = None
        self._settling = None
        while True:
            batch = [await self._inbox.get()]
            while not self._inbox.empty():
                batch.append(self._inbox.get_nowait())
            turn = self._apply(batch)
            commit = asyncio.create_task(self._commit(turn))
            # ``_settling`` always covers every applied turn (what status shows): the
            # new settle waits for the previous one, so settles keep their order.
            previous = settling
            settling = asyncio.create_task(self._settle(commit, turn, batch, previous))
            settling.add_done_callback(self._settled)
            self._settling = settling
            if previous is not None:  # at most two turns in flight
                await asyncio.wait([previous])

    def _settled(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error("workflow engine stopped: %s", task.exception())
        self.failure = task.exception()
        self.failed.set()
        if self._loop_task is not None:
            self._loop_task.cancel()

    def _apply(self, batch: list[tuple[str, ev.Input, asyncio.Future[None] | None]]) -> _Turn:
        turn = _Turn()
        for exec_id, event, _ in batch:
            live = self._live.get(exec_id)
            if live is None or live.ex.finished:
                continue
            before = live.ex.status
            out = live.ex.apply(event)
            self.transitions += 1
            live.seq += 1
            data = ev.input_to_data(event)
            if isinstance(event, ev.CARRIES_PAYLOAD):  # what arrives may name new secrets
                self.redactor.discover(data, live.secrets)
            secrets = live.secrets
            if secrets:
                data = self.redactor.seal(data, secrets)
            turn.stored.append(
                StoredEvent(exec_id, live.seq, event.TYPE, event.time, data, self._position())
            )
            commands: list[ev.Command] = []
            for item in out:
                if isinstance(item, ev.Journal):
                    live.seq += 1
                    data = {"stepId": item.step_id, "message": item.message, **item.data}
                    if secrets:
                        data = self.redactor.seal(data, secrets)
                    turn.stored.append(
                        StoredEvent(
                            exec_id, live.seq, item.type, event.time, data, self._position()
                        )
                    )
                else:
                    commands.append(item)
            live.outstanding.note(event, commands)
            if live.ex.status != before or isinstance(event, ev.Started):
                live.record = record_of(live, event.time)
                turn.records[exec_id] = live.record
            turn.effects.append((live, commands))
        return turn

    async def _commit(self, turn: _Turn) -> None:
        if not (turn.stored or turn.records):
            return
        started = time.perf_counter()
        try:
            await self._commit_parts(turn)
        finally:
            if self.on_commit is not None:
                self.on_commit(time.perf_counter() - started)

    async def _commit_parts(self, turn: _Turn) -> None:
        limit = self.store.max_batch_ops
        if not limit:
            await self.store.commit(turn.stored, list(turn.records.values()))
            return
        # The store's transactions are bounded (etcd: 128 operations): commit the
        # turn in order, in parts that each fit. The lock (FIFO) keeps the next
        # turn's batches behind all of this turn's: the store applies batches in
        # call order, and a later turn may append to the same executions.
        async with self._commit_lock:
            for events, records in split_batch(turn.stored, turn.records, limit):
                await self.store.commit(events, records)

    async def _settle(
        self,
        commit: asyncio.Task[None],
        turn: _Turn,
        batch: list[tuple[str, ev.Input, asyncio.Future[None] | None]],
        previous: asyncio.Task[None] | None = None,
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # its failure is reported by _settled
        try:
            await commit
        except Exception as e:
            log.exception("committing a workflow engine turn failed")
            if self.journal is not None:
                self.journal.abandoned(se.position for se in turn.stored)
            for _, _, fut in batch:
                if fut is not None and not fut.done():
                    fut.set_exception(Unavailable(f"workflow engine failed: {e}"))
            raise
        for se in turn.stored:
            self._publish(se.execution_id, se)
        if self.journal is not None:
            self._journal_turn(self.journal, turn)
        for live, commands in turn.effects:
            self._execute(live, commands)
        for _, _, fut in batch:
            if fut is not None and not fut.done():
                fut.set_result(None)
            self._inbox.task_done()

    def _position(self) -> int:
        return 0 if self.journal is None else self.journal.assign()

    def _journal_turn(self, journal: Journal, turn: _Turn) -> None:
        """Hand the committed turn to the log, execution by execution, in order."""
        stored = turn.stored
        i = 0
        while i < len(stored):
            exec_id = stored[i].execution_id
            j = i + 1
            while j < len(stored) and stored[j].execution_id == exec_id:
                j += 1
            live = self._live.get(exec_id) or self._done.get(exec_id)
            record = turn.records.get(exec_id) or (live.record if live is not None else None)
            if record is None:
                journal.abandoned(se.position for se in stored[i:j])
            else:
                journal.committed(record, stored[i:j])
            i = j

    def parent_of(self, exec_id: str) -> str | None:
        """The parent of an execution this coordinator holds ("" for a top-level
        one), or None when it does not hold it."""
        live = self._live.get(exec_id) or self._done.get(exec_id)
        return None if live is None else live.record.parent_id

    def _publish(self, exec_id: str, event: StoredEvent) -> None:
        for listener in self._listeners:
            listener(exec_id, event)

    # ------------------------------------------------------------- effects

    def _execute(self, live: Live, commands: list[ev.Command]) -> None:
        exec_id = live.ex.id
        loop = asyncio.get_running_loop()
        for c in commands:
            if isinstance(c, ev.StartChild):
                starting = loop.create_task(self._start_child(exec_id, c))
                self._background.add(starting)
                starting.add_done_callback(self._background.discard)
            elif isinstance(c, ev.CancelChild):
                child_id = self._children.get((exec_id, c.key))
                if child_id is not None:
                    self._post(child_id, ev.StopRequested(_now(), "parent step cancelled"))
            elif isinstance(c, ev.Finished):
                self._finished(live, c)
            else:
                self.effects.carry_out(exec_id, c, live.record.namespace, live.secrets)

    def _waiting_for_agent(self, exec_id: str, key: str) -> bool:
        live = self._live.get(exec_id)
        return live is not None and bool(live.ex.waiting_reason(key))

    async def _start_child(self, exec_id: str, c: ev.StartChild) -> None:
        try:
            await self.start_workflow(
                c.workflow, c.input, c.version, parent=(exec_id, c.key), context=c.context
            )
        except Exception as e:
            self._post(
                exec_id,
                ev.ChildFinished(
                    _now(), c.key, "", "failed", None, ev.StepError(type(e).__name__, str(e))
                ),
            )

    def _finished(self, live: Live, c: ev.Finished) -> None:
        exec_id = live.ex.id
        for fut in live.waiters:
            if not fut.done():
                fut.set_result(None)
        live.waiters.clear()
        if live.parent is not None:
            parent_id, key = live.parent
            if self._children.get(live.parent) == exec_id:
                del self._children[live.parent]
            self._post(
                parent_id, ev.ChildFinished(_now(), key, exec_id, c.status, c.output, c.error)
            )
        if self._live.pop(exec_id, None) is not None and live.parent is None:
            namespace = live.record.namespace
            left = self._unfinished.get(namespace, 0) - 1
            if left > 0:
                self._unfinished[namespace] = left
            else:
                self._unfinished.pop(namespace, None)
        self._remember_finished(live)
        if live.counted:
            live.counted = False
            self._running -= 1
            self._start_queued()

    def _remember_finished(self, live: Live) -> None:
        self._done[live.ex.id] = live
        self._done.move_to_end(live.ex.id)
        while len(self._done) > FINISHED_KEPT:
            self._done.popitem(last=False)

    def _start_queued(self) -> None:
        while self._queued and self._running < self.settings.concurrency_limit:
            exec_id = self._queued.pop(0)
            live = self._live.get(exec_id)
            if live is None or live.queued_start is None:
                continue
            started, live.queued_start = live.queued_start, None
            live.counted = True
            self._running += 1
            self._post(
                exec_id,
                ev.Started(
                    _now(),
                    started.workflow,
                    started.version,
                    started.input,
                    started.context,
                    started.idempotency_key,
                ),
            )

    # ------------------------------------------------------------- recovery

    async def recover(self) -> int:
        """Rebuild every unfinished execution from the store and resume it."""
        records = await self.store.list_executions(ACTIVE, limit=1_000_000)
        revived: list[Live] = []
        for record in sorted(records, key=lambda r: r.created):
            try:
                live = await replay(record, self.catalog, self.store, self.defaults, self.redactor)
            except Exception:
                log.exception(
                    "cannot recover execution %s",
                    record.id,
                    extra={"execution_id": record.id, "namespace": record.namespace},
                )
                continue
            self._live[record.id] = live
            if live.idempotency_key:
                self._idempotency[(record.namespace, live.idempotency_key)] = record.id
            if live.parent is not None:
                self._children[live.parent] = record.id
            revived.append(live)
            if live.parent is None:
                ns = record.namespace
                self._unfinished[ns] = self._unfinished.get(ns, 0) + 1
        for live in revived:
            await self._reestablish(live)
        self._start_queued()
        if revived:
            log.info("recovered %d unfinished execution(s)", len(revived))
        return len(revived)

    async def _reestablish(self, live: Live) -> None:
        exec_id = live.ex.id
        if live.queued_start is not None:
            self._queued.append(exec_id)
            return
        if live.parent is None:
            live.counted = True
            self._running += 1
        o = live.outstanding
        commands: list[ev.Command] = [*o.tasks.values(), *o.calls.values()]
        commands += [*o.timers.values(), *o.waits.values()]
        self._execute(live, commands)
        for c in list(o.children.values()):
            if (exec_id, c.key) in self._children:
                continue  # it recovers itself and reports when it finishes
            finished = await finished_child(self.store, exec_id, c.key, self.redactor)
            if finished is not None:
                self._post(exec_id, finished)
            else:
                self._execute(live, [c])  # never started: start it now
