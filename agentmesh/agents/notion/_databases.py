"""Notion-like databases as SQLite tables in one file: typed columns (text, number,
integer, boolean, date, json), filters ``{column: value}`` or ``{column: {op: value}}``.
Identifiers are validated and quoted; values are always parameters."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from agent_sdk import TaskError
from agentmesh.agents._inputs import bad
from agentmesh.agents.notion._common import now

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
_TYPES = {
    "text": "TEXT",
    "number": "REAL",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "json": "JSON",
}
_NAMES = {v: k for k, v in _TYPES.items()}
_OPS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "contains": "LIKE"}


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, timeout=10)
    try:
        with conn:  # one transaction: commit, or roll back on error
            yield conn
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """Column -> declared SQL type; empty when the table does not exist."""
    return {row[1]: row[2].upper() for row in conn.execute(f'PRAGMA table_info("{table}")')}


def _to_sql(column: str, sql_type: str, value: Any) -> Any:
    if value is None:
        return None
    expected: Any = {"TEXT": str, "DATE": str, "REAL": int | float, "INTEGER": int, "BOOLEAN": bool}
    kind = expected.get(sql_type, object)
    if not isinstance(value, kind) or (isinstance(value, bool) and sql_type in ("REAL", "INTEGER")):
        raise bad(f"{column}: expected a {_NAMES.get(sql_type, 'text')} value, got {value!r:.40}")
    if sql_type == "DATE":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise bad(f"{column}: expected an ISO date, got {value!r:.40}") from None
    return (
        json.dumps(value) if sql_type == "JSON" else int(value) if sql_type == "BOOLEAN" else value
    )


def _from_sql(sql_type: str, value: Any) -> Any:
    if value is None:
        return None
    return (
        bool(value) if sql_type == "BOOLEAN" else json.loads(value) if sql_type == "JSON" else value
    )


def _where(filter: Any, columns: dict[str, str], required: bool) -> tuple[str, list[Any]]:
    if filter is None or filter == {}:
        if required:
            raise bad("filter: required (an empty filter would touch every row)")
        return "", []
    if not isinstance(filter, dict):
        raise bad("filter: expected an object {column: value} or {column: {op: value}}")
    clauses, params = [], []
    for column, cond in filter.items():
        if column not in columns:
            raise bad(f"filter: unknown column {column!r}")
        for op, value in (cond if isinstance(cond, dict) else {"eq": cond}).items():
            if op not in _OPS:
                raise bad(f"filter.{column}: unknown operator {op!r} (one of {', '.join(_OPS)})")
            if value is None and op in ("eq", "ne"):
                clauses.append(f'"{column}" IS {"NOT " if op == "ne" else ""}NULL')
            elif op == "contains":
                clauses.append(f"\"{column}\" LIKE ? ESCAPE '\\'")
                params.append("%" + re.sub(r"([\\%_])", r"\\\1", str(value)) + "%")
            else:
                clauses.append(f'"{column}" {_OPS[op]} ?')
                params.append(_to_sql(f"filter.{column}", columns[column], value))
    return " WHERE " + " AND ".join(clauses), params


def _row(value: Any, columns: dict[str, str], where: str) -> dict[str, Any]:
    """A {column: value} object with known, user-writable columns, as SQL values."""
    if not isinstance(value, dict) or not value:
        raise bad(f"{where}: expected an object {{column: value}}")
    if unknown := [c for c in value if c not in columns or c.startswith("_")]:
        raise bad(f"{where}: unknown column(s) {', '.join(map(str, unknown))}")
    return {c: _to_sql(f"{where}.{c}", columns[c], v) for c, v in value.items()}


class Databases:
    """Notion-like databases as SQLite tables ``<name>`` with ``_id`` and ``_created``
    columns beside the user's. Identifiers are validated and quoted; values are parameters."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, inp: dict[str, Any]) -> dict[str, Any]:
        """``database_operations``: create, insert, query, update or delete, in one transaction."""
        action, table = inp.get("action"), inp.get("database")
        if action not in ("create", "insert", "query", "update", "delete"):
            raise bad("action: expected create, insert, query, update or delete")
        if (
            not isinstance(table, str)
            or not _NAME.fullmatch(table)
            or table.lower().startswith("sqlite")
        ):
            raise bad("database: expected a name of letters, digits and _ (starting with a letter)")
        with _connect(self.path) as conn:
            columns = _columns(conn, table)
            if action == "create":
                return {"database": table} | self._create(conn, table, columns, inp)
            if not columns:
                raise TaskError(
                    f"database: no database {table!r} (create it first)", type="NotFound"
                )
            if action == "insert":
                return {"database": table} | self._insert(conn, table, columns, inp)
            where, params = _where(inp.get("filter"), columns, required=action != "query")
            if action == "query":
                return {"database": table} | self._query(conn, table, columns, inp, where, params)
            if action == "update":
                new = _row(inp.get("values") or inp.get("row"), columns, "values")
                sets = ", ".join(f'"{c}" = ?' for c in new)
                cur = conn.execute(f'UPDATE "{table}" SET {sets}{where}', [*new.values(), *params])
            else:
                cur = conn.execute(f'DELETE FROM "{table}"{where}', params)
            return {"database": table, "count": cur.rowcount}

    def _create(
        self, conn: sqlite3.Connection, table: str, columns: dict[str, str], inp: dict[str, Any]
    ) -> dict[str, Any]:
        schema = inp.get("schema") or inp.get("properties")
        if not isinstance(schema, dict) or not schema:
            raise bad("schema: expected an object {column: type}")
        for name, kind in schema.items():
            if not _NAME.fullmatch(name) or kind not in _TYPES:
                raise bad(f"schema.{name}: needs a plain name and a type in {', '.join(_TYPES)}")
        if not columns:
            conn.execute(
                f'CREATE TABLE "{table}" (_id INTEGER PRIMARY KEY AUTOINCREMENT, _created TEXT)'
            )
        added = [name for name in schema if name not in columns]
        for name in added:
            conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {_TYPES[schema[name]]}')
        types = {c: _NAMES.get(t, "text") for c, t in _columns(conn, table).items()}
        return {"created": not columns, "addedColumns": added, "columns": types}

    def _insert(
        self, conn: sqlite3.Connection, table: str, columns: dict[str, str], inp: dict[str, Any]
    ) -> dict[str, Any]:
        rows = inp.get("rows") if inp.get("rows") is not None else [inp.get("row")]
        if not isinstance(rows, list) or not rows:
            raise bad("rows: expected a non-empty list of {column: value} objects")
        ids = []
        for i, raw in enumerate(rows):
            row = _row(raw, columns, f"rows[{i}]" if "rows" in inp else "row")
            names = "".join(f', "{c}"' for c in row)
            sql = f'INSERT INTO "{table}" (_created{names}) VALUES (?{", ?" * len(row)})'
            ids.append(conn.execute(sql, [now(), *row.values()]).lastrowid)
        return {"ids": ids, "count": len(ids)}

    def _query(
        self,
        conn: sqlite3.Connection,
        table: str,
        columns: dict[str, str],
        inp: dict[str, Any],
        where: str,
        params: list[Any],
    ) -> dict[str, Any]:
        order = inp.get("sort") or "_id"
        if not isinstance(order, str) or order.lstrip("-") not in columns:
            raise bad("sort: expected a column name, with a leading - for descending")
        limit = inp.get("limit", 100)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise bad("limit: expected an integer in [1, 10000]")
        direction = "DESC" if order.startswith("-") else "ASC"
        sql = f'SELECT * FROM "{table}"{where} ORDER BY "{order.lstrip("-")}" {direction} LIMIT ?'
        cur = conn.execute(sql, [*params, limit])
        names = [d[0] for d in cur.description]
        rows = [{n: _from_sql(columns[n], v) for n, v in zip(names, r, strict=True)} for r in cur]
        return {"rows": rows, "count": len(rows)}
