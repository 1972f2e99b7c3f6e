"""Executions started by themselves: the ``triggers`` of every namespace's latest
definitions.

- **Event triggers** (``event: deployed``): ``on_event`` (called by ``trigger_event``, so
  by ``TriggerEvent`` and the inbound ``POST /v1/events/{event}``) starts one execution per
  matching trigger whose ``filter`` passes, with ``input`` mapped from ``$.payload`` and
  ``$.event`` (``{name, id, correlationKey}``). The start is idempotent per event id: the
  same event delivered twice (a sender's retry) starts nothing the second time.
- **Schedules** (``cron: '0 9 * * 1-5'``): one task sleeps until the next fire time of any
  schedule and starts those executions, with ``$.event`` = ``{name: "cron", id, cron,
  scheduledTime}``. Each schedule's last fire time is a document (kind ``schedule``), so a
  restart or a failover knows what it missed and applies the trigger's ``missed`` policy
  (``skip``, ``once``: the latest, ``all``: at most ``MAX_MISSED``). Starts are idempotent per
  scheduled time, so two coordinators that both think a time is due start it once.

Only the latest version of a workflow triggers; defining or deleting one updates the index
(``Catalog.add_listener``). A trigger's failure to start (the input fails the schema, a
quota) is logged and reported, never raised into the caller's event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from coordinator.engine.catalog import Catalog
from coordinator.engine.cron import Cron, parse_cron
from coordinator.engine.expr import compile_expression, evaluate_mapping, truthy
from coordinator.engine.model import TriggerSpec
from coordinator.errors import CoordinatorError, NotFound
from coordinator.store import DocumentRecord, Store, StoreError

log = logging.getLogger(__name__)

SCHEDULE: Final = "schedule"
#: Missed runs a ``missed: all`` schedule starts after downtime, the latest ones.
MAX_MISSED: Final = 100

#: ``start(workflow, input, idempotency_key, namespace, context)``: the new execution's id.
Start = Callable[[str, Any, str, str, dict[str, Any]], Awaitable[str]]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Started:
    """What an event started: execution ids, and the triggers that could not start."""

    executions: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TriggerInfo:
    """A trigger as listed: its workflow, its place in the definition, the spec, and for a
    schedule the next fire time."""

    workflow: str
    index: int
    spec: TriggerSpec
    next_fire: datetime | None = None


@dataclass(slots=True)
class _Schedule:
    namespace: str
    workflow: str
    index: int
    spec: TriggerSpec
    cron: Cron
    next_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.workflow}.{self.index}"


class Triggers:
    """The index of triggers and the schedule loop (module docstring)."""

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        start: Start,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._start = start
        self._clock = clock
        # (namespace, event name) -> [(workflow, trigger index, spec)]
        self._events: dict[tuple[str, str], list[tuple[str, int, TriggerSpec]]] = {}
        self._schedules: dict[tuple[str, str], _Schedule] = {}  # (namespace, key)
        self._changed = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Index every namespace's latest definitions, catch up on missed schedule runs,
        and start the schedule loop."""
        async with self._lock:
            await self.reload()
        self._loop = asyncio.create_task(self._run(), name="schedules")

    async def close(self) -> None:
        """Stop the schedule loop."""
        task, self._loop = self._loop, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def changed(self, namespace: str, name: str) -> None:
        """A definition changed (a catalog listener): index its latest version again."""
        if self._loop is None:
            return  # not started: start() indexes everything
        async with self._lock:
            await self._index(namespace, name)
        self._changed.set()

    async def reload(self) -> None:
        """Index every namespace's latest definitions again."""
        names = {(r.namespace, r.name) for r in await self._store.list_workflows(None)}
        for namespace, name in sorted(names):
            await self._index(namespace, name)

    async def _index(self, namespace: str, name: str) -> None:
        for (ns, _), targets in self._events.items():
            if ns == namespace:
                targets[:] = [t for t in targets if t[0] != name]
        mine = [
            k for k, s in self._schedules.items() if (s.namespace, s.workflow) == (namespace, name)
        ]
        for key in mine:
            del self._schedules[key]
        try:
            defn = await self._catalog.get_workflow(name, "", namespace)
        except NotFound:
            return  # deleted
        except CoordinatorError as e:
            log.warning(
                "triggers of workflow %r (namespace %s) not indexed: %s", name, namespace, e
            )
            return
        for i, spec in enumerate(defn.triggers):
            if spec.event:
                self._events.setdefault((namespace, spec.event), []).append((name, i, spec))
            else:
                schedule = _Schedule(namespace, name, i, spec, parse_cron(spec.cron))
                await self._catch_up(schedule)
                self._schedules[(namespace, schedule.key)] = schedule

    # ------------------------------------------------------------ events

    async def on_event(
        self, name: str, payload: Any, correlation_key: str, namespace: str, event_id: str = ""
    ) -> Started:
        """Start what event ``name`` of ``namespace`` triggers (module docstring)."""
        out = Started()
        targets = list(self._events.get((namespace, name), ()))
        if not targets:
            return out
        event_id = event_id or uuid.uuid4().hex
        event = {"name": name, "id": event_id, "correlationKey": correlation_key}
        scope = {"payload": payload, "event": event}
        for workflow, index, spec in targets:
            try:
                if spec.filter and not truthy(compile_expression(spec.filter).evaluate(scope)):
                    continue
                value = payload if spec.input is None else evaluate_mapping(spec.input, scope)
                context = {"trigger": {"event": name, "eventId": event_id, "index": index}}
                key = f"event:{workflow}:{index}:{event_id}"
                out.executions.append(await self._start(workflow, value, key, namespace, context))
            except CoordinatorError as e:
                log.warning("event %r did not start workflow %r: %s", name, workflow, e)
                out.refused.append(f"{workflow}: {e}")
        return out

    # ------------------------------------------------------------ schedules

    async def _catch_up(self, s: _Schedule) -> None:
        """Set ``s.next_at``, first starting the runs it missed per its policy."""
        now = self._clock()
        doc = await self._store.get_document(SCHEDULE, s.key, s.namespace)
        if doc is None or doc.data.get("cron") != s.spec.cron:
            await self._remember(s, now)  # new (or changed): from now on
        else:
            last = datetime.fromisoformat(str(doc.data["last"]))
            missed = s.cron.between(last, now, MAX_MISSED)
            chosen = {"skip": [], "once": missed[-1:], "all": missed}[s.spec.missed]
            for when in chosen:
                await self._fire(s, when)
            if missed:
                await self._remember(s, missed[-1])
        s.next_at = s.cron.next_after(now)

    async def _run(self) -> None:
        while True:
            try:
                await self._turn()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the schedule loop failed a turn; it goes on in a second")
                await asyncio.sleep(1.0)

    async def _turn(self) -> None:
        """Sleep until the next fire time (or a change), then start what is due."""
        self._changed.clear()
        due = [s.next_at for s in self._schedules.values() if s.next_at is not None]
        delay = None if not due else max(0.0, (min(due) - self._clock()).total_seconds())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), delay)
        now = self._clock()
        for s in list(self._schedules.values()):
            while s.next_at is not None and s.next_at <= now:
                when = s.next_at
                try:
                    await self._fire(s, when)
                    await self._remember(s, when)
                except StoreError as e:
                    log.warning("schedule %s: the store refused (%s); retrying in 1 s", s.key, e)
                    await asyncio.sleep(1.0)
                    return
                s.next_at = s.cron.next_after(when)

    async def _fire(self, s: _Schedule, when: datetime) -> None:
        stamp = when.isoformat()
        event = {"name": "cron", "id": stamp, "cron": s.spec.cron, "scheduledTime": stamp}
        scope: dict[str, Any] = {"payload": {}, "event": event}
        try:
            value = {} if s.spec.input is None else evaluate_mapping(s.spec.input, scope)
            context = {"trigger": {"cron": s.spec.cron, "scheduledTime": stamp, "index": s.index}}
            key = f"cron:{s.workflow}:{s.index}:{stamp}"
            await self._start(s.workflow, value, key, s.namespace, context)
        except CoordinatorError as e:
            log.warning(
                "schedule %s (namespace %s) at %s did not start: %s", s.key, s.namespace, stamp, e
            )

    async def _remember(self, s: _Schedule, when: datetime) -> None:
        data = {"cron": s.spec.cron, "last": when.isoformat(), "workflow": s.workflow}
        await self._store.put_document(
            DocumentRecord(SCHEDULE, s.key, data, self._clock(), s.namespace)
        )

    def listed(self, namespace: str) -> list[TriggerInfo]:
        """The namespace's triggers, by workflow and place."""
        out = [
            TriggerInfo(workflow, index, spec)
            for (ns, _), targets in self._events.items()
            if ns == namespace
            for workflow, index, spec in targets
        ]
        out += [
            TriggerInfo(s.workflow, s.index, s.spec, s.next_at)
            for s in self._schedules.values()
            if s.namespace == namespace
        ]
        return sorted(out, key=lambda t: (t.workflow, t.index))
