"""The SQLite store's execution listing: the query ``list_executions`` runs for a set
of filters (index searches, tested with EXPLAIN QUERY PLAN), and the text search that
reads the rows it selects."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from typing import Final

from . import _codec as codec
from ._api import EVERY, ExecutionRecord, ExecutionWhere

EXECUTION_COLUMNS: Final = (
    "id, workflow_name, workflow_version, status, created, updated, parent_id, "
    "idempotency_key, parent_key, namespace, last_seq"
)


def list_executions(
    statuses: Collection[str] | None,
    workflow_name: str,
    limit: int,
    namespace: str | None,
    where: ExecutionWhere = EVERY,
) -> tuple[str, list[str | int]]:
    """The query of ``list_executions`` and its parameters (``statuses`` not empty).

    With ``where.text`` it has no LIMIT and also selects each execution's first event
    (type and data), for ``search`` to match the input against.
    """
    clauses: list[str] = []
    params: list[str | int] = []
    if namespace is not None:
        clauses.append("namespace = ?")
        params.append(namespace)
    if statuses is not None:
        wanted = sorted(set(statuses))
        clauses.append(f"status IN ({', '.join('?' * len(wanted))})")
        params.extend(wanted)
    if workflow_name:
        clauses.append("workflow_name = ?")
        params.append(workflow_name)
    if where.parent_id is not None:
        clauses.append("parent_id = ?")
        params.append(where.parent_id)
    if where.created_after is not None:
        clauses.append("created > ?")
        params.append(codec.encode_time(where.created_after, "created_after"))
    if where.created_before is not None:
        clauses.append("created < ?")
        params.append(codec.encode_time(where.created_before, "created_before"))
    if where.after is not None:
        clauses.append("(created, id) < (?, ?)")
        params.extend((codec.encode_time(where.after[0], "page cursor"), where.after[1]))
    if where.text and where.text.isascii():
        # A first cut in SQL (the stored data holds the input's JSON, ASCII-escaped, as
        # text): what passes is checked against the input itself in ``search``.
        needle = where.text.lower()
        clauses.append("(instr(lower(id), ?) > 0 OR instr(lower(events.data), ?) > 0)")
        params.extend((needle, needle))
    condition = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    order = "ORDER BY created DESC, id DESC"
    if where.text:
        sql = (
            f"SELECT {EXECUTION_COLUMNS}, events.type, events.data FROM executions "
            "LEFT JOIN events ON events.execution_id = executions.id AND events.seq = 1 "
            f"{condition} {order}"
        )
        return sql, params
    return f"SELECT {EXECUTION_COLUMNS} FROM executions {condition} {order} LIMIT ?", [
        *params,
        limit,
    ]


def search(
    sql: str, params: list[str | int], where: ExecutionWhere, limit: int, conn: sqlite3.Connection
) -> list[ExecutionRecord]:
    """The first ``limit`` rows of ``sql`` (a ``list_executions`` query with a text
    search) whose id or input holds ``where.text``, read lazily in the listing's order."""
    found: list[ExecutionRecord] = []
    for row in conn.execute(sql, params):
        record = codec.decode_execution(row[:-2])
        started = None if row[-2] is None else codec.started_data(row[-2], row[-1])
        if where.finds(record, started):
            found.append(record)
            if len(found) == limit:
                break
    return found
