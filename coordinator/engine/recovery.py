"""Recovery: an unfinished execution rebuilt from its history after a restart or a
leader change. ``replay`` applies every stored input through the core again (the core
is pure, so the state comes out exactly as it was) and notes what was outstanding;
the runtime then re-establishes it (tasks dispatched again with the same idempotency
key, timers re-armed, event waits registered) and asks ``finished_child`` what became
of the children it started."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from coordinator.engine import events as ev
from coordinator.engine.catalog import Catalog
from coordinator.engine.core import EngineDefaults, Execution
from coordinator.engine.live import ACTIVE, Live
from coordinator.secrets import Redactor
from coordinator.store import ExecutionRecord, Store


def _now() -> datetime:
    return datetime.now(UTC)


async def replay(
    record: ExecutionRecord,
    catalog: Catalog,
    store: Store,
    defaults: EngineDefaults,
    redactor: Redactor,
) -> Live:
    """``record``'s execution rebuilt from its history: every input applied again
    through the core (its sealed secrets opened with the history key), and what it
    left outstanding noted."""
    defn = await catalog.get_workflow(
        record.workflow_name, record.workflow_version, record.namespace
    )
    live = Live(Execution(record.id, defn, defaults), record)
    if defn.input_schema is not None:
        live.secrets.names |= redactor.schema_names(defn.input_schema)
    for stored in await store.load_events(record.id):
        live.seq = stored.seq
        se = replace(stored, data=redactor.unseal(stored.data))
        cls = ev.INPUT_TYPES.get(se.type)
        if se.type == "execution.queued" or (
            cls is not None and issubclass(cls, ev.CARRIES_PAYLOAD)
        ):
            redactor.discover(se.data, live.secrets)
        if se.type == "execution.queued":
            live.queued_start = ev.Started(
                se.time,
                defn.name,
                defn.version,
                se.data.get("input"),
                se.data.get("context") or {},
                str(se.data.get("idempotencyKey") or ""),
            )
            live.idempotency_key = live.queued_start.idempotency_key
        elif se.type in ev.INPUT_TYPES:
            event = ev.input_from_data(se.type, se.time, se.data)
            if isinstance(event, ev.Started):
                live.queued_start = None
                live.idempotency_key = event.idempotency_key
                ctx = event.context
                if ctx.get("parentKey"):
                    live.parent = (str(ctx.get("parentId")), str(ctx["parentKey"]))
            out = live.ex.apply(event)
            live.outstanding.note(event, [c for c in out if isinstance(c, ev.Command)])
    return live


async def finished_child(
    store: Store, parent_id: str, key: str, redactor: Redactor
) -> ev.ChildFinished | None:
    """The outcome of the child ``parent_id`` started under ``key``, if it finished
    (found through the store's parent index, however many executions finished)."""
    record = await store.find_child(parent_id, key)
    if record is None or record.status in ACTIVE:
        return None
    events = await store.load_events(record.id)
    final = next((e for e in reversed(events) if e.type.startswith("execution.")), None)
    data = redactor.unseal(final.data) if final else {}
    error = data.get("error")
    return ev.ChildFinished(
        _now(),
        key,
        record.id,
        record.status,
        data.get("output"),
        ev.StepError.from_data(error) if isinstance(error, dict) else None,
    )
