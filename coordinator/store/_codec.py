"""Rows as both stores keep them: validation, JSON and time encoding, seq checks.

The memory store keeps exactly the rows SQLite would, so the two read back identical
values (times in UTC, JSON round-tripped) and reject exactly the same writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias
from urllib.parse import quote

from coordinator.domain import DEFAULT_NAMESPACE

from ._api import DocumentRecord, ExecutionRecord, StoredEvent, WorkflowRecord
from ._errors import ConflictError, StoreError

# SQLite would take up to 1 GB per value, but an event this large stalls the event loop
# while it is encoded and every replay after it; it is almost certainly a bug upstream.
MAX_DATA_BYTES = 16 * 1024 * 1024


def key_part(part: str) -> str:
    """``part`` percent-encoded so it is one segment of a ``/``-separated etcd key."""
    return quote(part, safe="")


# (execution_id, seq, type, time, data, position)
EventRow: TypeAlias = tuple[str, int, str, str, str, int]
# (id, workflow_name, workflow_version, status, created, updated, parent_id,
# idempotency_key, parent_key, namespace); last_seq is the store's own and is not part
# of what the engine writes.
ExecutionRow: TypeAlias = tuple[str, str, str, str, str, str, str, str, str, str]
# (name, version, definition, created, namespace)
WorkflowRow: TypeAlias = tuple[str, str, str, str, str]


def encode_time(t: datetime, what: str) -> str:
    if t.tzinfo is None or t.utcoffset() is None:
        raise StoreError(f"{what}: time {t.isoformat()} is not timezone-aware")
    # Fixed width (always microseconds, always +00:00) so text order is time order.
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def decode_time(s: str) -> datetime:
    return datetime.fromisoformat(s)


def encode_json(value: Any, what: str) -> str:
    # NaN and Infinity are written the way Python's json writes them rather than refused,
    # so an agent's odd float cannot wedge an execution's history.
    try:
        text = json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what}: data is not JSON-serializable: {exc}") from exc
    # ensure_ascii (the default) makes characters and UTF-8 bytes the same count.
    if len(text) > MAX_DATA_BYTES:
        raise StoreError(
            f"{what}: serialized data is {len(text)} bytes, over the {MAX_DATA_BYTES} byte limit"
        )
    return text


def encode_events(events: Sequence[StoredEvent]) -> list[EventRow]:
    rows: list[EventRow] = []
    for e in events:
        what = f"event {e.execution_id!r} seq {e.seq}"
        # One combined test on the hot path; the slow path finds which field is wrong.
        if not (
            isinstance(e.execution_id, str)
            and isinstance(e.seq, int)
            and not isinstance(e.seq, bool)
            and isinstance(e.type, str)
            and isinstance(e.data, dict)
            and type(e.position) is int
            and e.position >= 0
        ):
            _check_types(
                what,
                execution_id=(e.execution_id, str),
                seq=(e.seq, int),
                type=(e.type, str),
                data=(e.data, dict),
                position=(e.position, int),
            )
            if isinstance(e.seq, bool) or isinstance(e.position, bool):
                raise StoreError(f"{what}: seq and position must be ints, not bool")
            if e.position < 0:
                raise StoreError(f"{what}: position must not be negative")
            raise StoreError(
                f"{what}: position must be a plain int, not {type(e.position).__name__}"
            )
        rows.append(
            (
                e.execution_id,
                e.seq,
                e.type,
                encode_time(e.time, what),
                encode_json(e.data, what),
                e.position,
            )
        )
    return rows


# The types an execution's first event has, both with the input in their data: the
# engine's ``Started``, or ``execution.queued`` when admission held the start back.
STARTED_TYPE = "ExecutionStarted"
QUEUED_TYPE = "execution.queued"


def started_data(type_: str, data_json: str) -> dict[str, Any] | None:
    """The data of an event of ``type_`` as stored (``data_json``) if it is one an
    execution begins with (``STARTED_TYPE``, ``QUEUED_TYPE``), else None."""
    if type_ not in (STARTED_TYPE, QUEUED_TYPE):
        return None
    data = json.loads(data_json)
    return data if isinstance(data, dict) else None


def decode_event(row: Sequence[Any]) -> StoredEvent:
    execution_id, seq, type_, time, data, position = row
    return StoredEvent(execution_id, seq, type_, decode_time(time), json.loads(data), position)


def encode_executions(records: Sequence[ExecutionRecord]) -> list[ExecutionRow]:
    rows: list[ExecutionRow] = []
    for r in records:
        what = f"execution {r.id!r}"
        _check_types(
            what,
            id=(r.id, str),
            workflow_name=(r.workflow_name, str),
            workflow_version=(r.workflow_version, str),
            status=(r.status, str),
            parent_id=(r.parent_id, str),
            idempotency_key=(r.idempotency_key, str),
            parent_key=(r.parent_key, str),
            namespace=(r.namespace, str),
        )
        rows.append(
            (
                r.id,
                r.workflow_name,
                r.workflow_version,
                r.status,
                encode_time(r.created, what),
                encode_time(r.updated, what),
                r.parent_id,
                r.idempotency_key,
                r.parent_key,
                r.namespace,
            )
        )
    return rows


def decode_execution(row: Sequence[Any]) -> ExecutionRecord:
    """``row`` is an ExecutionRow followed by the store's last seq."""
    *fields, namespace, last_seq = row
    id_, name, version, status, created, updated, parent_id, key, parent_key = fields
    return ExecutionRecord(
        id_,
        name,
        version,
        status,
        decode_time(created),
        decode_time(updated),
        parent_id,
        last_seq,
        key,
        parent_key,
        namespace,
    )


def describe_workflow(name: str, version: str, namespace: str) -> str:
    """How errors name a workflow version (the namespace only when not the default)."""
    what = f"workflow {name!r} version {version!r}"
    return what if namespace == DEFAULT_NAMESPACE else f"{what} in namespace {namespace!r}"


def encode_workflow(r: WorkflowRecord) -> WorkflowRow:
    what = f"workflow {r.name!r} version {r.version!r}"
    _check_types(
        what,
        name=(r.name, str),
        version=(r.version, str),
        definition=(r.definition, dict),
        namespace=(r.namespace, str),
    )
    what = describe_workflow(r.name, r.version, r.namespace)
    return (
        r.name,
        r.version,
        encode_json(r.definition, what),
        encode_time(r.created, what),
        r.namespace,
    )


def decode_workflow(row: Sequence[Any]) -> WorkflowRecord:
    name, version, definition, created, namespace = row
    return WorkflowRecord(name, version, json.loads(definition), decode_time(created), namespace)


DocumentRow: TypeAlias = tuple[str, str, str, str, str]  # kind, namespace, name, data, updated


def describe_document(kind: str, name: str, namespace: str) -> str:
    return f"{kind} {name!r} of namespace {namespace!r}"


def encode_document(r: DocumentRecord) -> DocumentRow:
    what = f"{r.kind} {r.name!r}"
    _check_types(
        what,
        kind=(r.kind, str),
        name=(r.name, str),
        data=(r.data, dict),
        namespace=(r.namespace, str),
    )
    if not r.kind or not r.name:
        raise StoreError(f"{what}: a document needs a kind and a name")
    what = describe_document(r.kind, r.name, r.namespace)
    return (
        r.kind,
        r.namespace,
        r.name,
        encode_json(r.data, what),
        encode_time(r.updated, what),
    )


def decode_document(row: Sequence[Any]) -> DocumentRecord:
    kind, namespace, name, data, updated = row
    return DocumentRecord(kind, name, json.loads(data), decode_time(updated), namespace)


def _check_types(what: str, **fields: tuple[object, type]) -> None:
    # The dataclasses are not checked at runtime, and SQLite would store an int id
    # (and read it back as an int) where the memory store would not care.
    for name, (value, expected) in fields.items():
        if not isinstance(value, expected):
            raise StoreError(
                f"{what}: {name} must be a {expected.__name__}, not {type(value).__name__}"
            )


def check_seqs(rows: Iterable[EventRow], last_seq: Callable[[str], int]) -> dict[str, int]:
    """The new last seq of every execution in ``rows``, or ``ConflictError``.

    ``last_seq(execution_id)`` reads what is stored; events earlier in the same batch
    count, so a batch may carry several events of one execution, in order.
    """
    last: dict[str, int] = {}
    for execution_id, seq, *_ in rows:
        prev = last.get(execution_id)
        if prev is None:
            prev = last_seq(execution_id)
        if seq != prev + 1:
            kind = "duplicate" if 1 <= seq <= prev else "gap"
            raise ConflictError(
                f"execution {execution_id!r}: event seq {seq} does not follow last seq "
                f"{prev} ({kind}); nothing of the batch was written"
            )
        last[execution_id] = seq
    return last


def check_workflow(existing: WorkflowRow | None, new: WorkflowRow) -> bool:
    """True when ``new`` must be written; False when it is already stored as is.

    Raises ``ConflictError`` when the version exists with a different definition.
    Definitions are compared as JSON values, so key order does not matter.
    """
    if existing is None:
        return True
    if existing[2] == new[2] or _canonical(existing[2]) == _canonical(new[2]):
        return False
    raise ConflictError(
        f"{describe_workflow(new[0], new[1], new[4])} already exists with a different definition"
    )


def _canonical(text: str) -> str:
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
