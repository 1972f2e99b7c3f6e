"""Notion agent: pages, small databases and templates, in a local workspace by default.

Offline (the default, and what the tests use) it keeps a Notion-like workspace under
``<workspace>/notion``: pages are Markdown files ``pages/<slug>-<id>.md`` with a YAML front
matter (id, title, created, template[, parent, updated]); databases are SQLite tables in
``databases.db``; templates are ``templates/<id>.md`` beside three built-ins
(project_plan_template, feature_spec_template, error_report_template). A page's ``url`` is the
``file://`` URL of its file. With a Notion API key (``NOTION_API_KEY`` or
``create(..., notion_api_key=...)``) page operations go to Notion instead, through the optional
``notion-client`` package (``NotionApiPages``; fails with NotionUnavailable when it is missing);
databases and templates stay local.

- ``page_operations`` {action?: create|update|get|append (default create), title?, content?,
  templateId?, parentId?, pageId? (update/get/append), ...any other fields}
  -> {id, url, title, path, action, template, warnings[]} (+ content for get). Without
  ``content`` the other fields are rendered into Markdown by the template ``templateId``, or
  by one the fields suggest: error -> error_report_template, plan -> project_plan_template,
  specifications -> feature_spec_template; else one section per field. Retries of a task
  rewrite the same page (its id comes from the task's idempotency key).
- ``database_operations`` {action: create|insert|query|update|delete, database,
  schema | properties ({column: text|number|integer|boolean|date|json}) for create,
  row | rows for insert, values for update, filter ({column: value} or {column: {op: value}},
  op in eq ne gt gte lt lte contains) for query/update/delete (required for update/delete),
  sort? ("col" or "-col"), limit? (100)}
  -> {database, columns, created} | {database, ids, count} | {database, rows, count} | {database, count}
- ``content_extraction`` {pageId | url (file://) | path (inside the workspace)}
  -> {title, headings[{level, text}], text, links[{text, url}], tasks[{text, done}], wordCount}
- ``template_management`` {action: list|get|create, templateId?, content?}
  -> {templates[{id, builtin, placeholders}]} | {id, content, builtin, placeholders}
  | {id, path, placeholders, replaced}; workspace templates shadow built-ins of the same id.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse
from urllib.request import url2pathname

import yaml

from agent_sdk import Agent, RetryableTaskError, Task, TaskError
from agentmesh.agents import _sandbox

BUILTIN_TEMPLATES = {
    "project_plan_template": """# {{title}}

> {{plan.summary}}

- **Project type:** {{plan.projectType}}
- **Priority:** {{plan.priority}}
- **Requires scaffolding:** {{plan.requiresScaffolding}}
- **Estimated effort (hours):** {{plan.totalHours}}

## Tasks

{{plan.tasks}}

## Core components

{{plan.coreComponents}}

## Utilities

{{plan.utilityComponents}}

## Data services

{{plan.specifications.dataServices}}

## Acceptance criteria

{{plan.specifications.acceptanceCriteria}}

## Scaffolding options

{{plan.scaffoldingOptions}}

_Created {{created}}_
""",
    "feature_spec_template": """# {{title}}

## UI components

{{specifications.uiComponents}}

## Data services

{{specifications.dataServices}}

## Acceptance criteria

{{specifications.acceptanceCriteria}}

_Created {{created}}_
""",
    "error_report_template": """# {{title}}

- **Severity:** {{severity}}
- **Workflow:** {{workflow}}
- **Execution:** {{execution}}
- **Step:** {{step}}
- **Error type:** {{error.type}}

## Message

{{error.message}}

## Error details

{{error}}

## Data at the time

{{data}}

## Follow-up

- [ ] Find the root cause
- [ ] Decide whether to re-run the workflow

_Reported {{created}}_
""",
}
SEVERITIES = ("low", "medium", "high", "critical")
_CONTROL = ("action", "title", "content", "templateId", "parentId", "pageId")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
_TEMPLATE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_PAGE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
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
MAX_PAGE_BYTES = 5 * 1024 * 1024
MAX_ITEMS = 200  # list entries rendered per field


def _bad(message: str) -> TaskError:
    return TaskError(message, type="BadInput")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _opt_str(inp: dict[str, Any], key: str) -> str | None:
    value = inp.get(key)
    if value is not None and not isinstance(value, str):
        raise _bad(f"{key}: expected a string")
    return value or None


# ------------------------------------------------------------------ Markdown rendering


def _inline(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "_not provided_"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 500 else text[:497] + "..."


def _item(value: Any) -> str:
    """One list entry: a task as a checkbox, a component with its interface, else inline."""
    if not isinstance(value, dict):
        return f"- {_inline(value)}"
    if "estimateHours" in value or ("id" in value and "title" in value):
        after = (
            f", after {', '.join(map(str, value['dependsOn']))}" if value.get("dependsOn") else ""
        )
        hours = f", {value['estimateHours']} h" if "estimateHours" in value else ""
        return f"- [ ] {value.get('title', '')} (`{value.get('id', '')}`{hours}{after})"
    if "name" in value:
        line = f"- **{value['name']}**"
        line += f" ({value['kind']})" if value.get("kind") else ""
        line += f": {value['description']}" if value.get("description") else ""
        for key in ("props", "methods"):
            if isinstance(value.get(key), dict) and value[key]:
                line += f"; {key}: " + ", ".join(f"`{k}: {v}`" for k, v in value[key].items())
        return line + (f"; `{value['signature']}`" if value.get("signature") else "")
    return "- " + "; ".join(f"{k}: {_inline(v)}" for k, v in sorted(value.items()))


def to_markdown(value: Any) -> str:
    """A JSON value as Markdown: lists as bullets (tasks as checkboxes), objects as fields."""
    if isinstance(value, list):
        more = [f"- _... and {len(value) - MAX_ITEMS} more_"] if len(value) > MAX_ITEMS else []
        return "\n".join([*(_item(v) for v in value[:MAX_ITEMS]), *more]) or "_none_"
    if isinstance(value, dict):
        return "\n".join(f"- **{k}:** {_inline(v)}" for k, v in sorted(value.items())) or "_none_"
    return _inline(value)


def _lookup(ctx: dict[str, Any], path: str) -> Any:
    value: Any = ctx
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def render(template: str, ctx: dict[str, Any]) -> str:
    """Replace each ``{{a.b}}`` with the Markdown of ``ctx["a"]["b"]`` (in one pass, so
    rendered values are never scanned for placeholders)."""
    return _PLACEHOLDER.sub(lambda m: to_markdown(_lookup(ctx, m.group(1))), template)


def placeholders(template: str) -> list[str]:
    return sorted(set(_PLACEHOLDER.findall(template)))


# ------------------------------------------------------------------------- templates


class Templates:
    """Built-in templates plus ``<root>/<id>.md`` files, which shadow built-ins."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, template_id: str) -> Path:
        if not _TEMPLATE_ID.fullmatch(template_id):
            raise _bad(f"templateId: {template_id!r} is not a valid id ([a-z0-9_-], 1-64 chars)")
        return self.root / f"{template_id}.md"

    def get(self, template_id: str) -> str | None:
        path = self._file(template_id)
        return path.read_text("utf-8") if path.is_file() else BUILTIN_TEMPLATES.get(template_id)

    def list(self) -> list[dict[str, Any]]:
        local = {p.stem for p in self.root.glob("*.md") if _TEMPLATE_ID.fullmatch(p.stem)}
        ids = sorted(local | set(BUILTIN_TEMPLATES))
        return [
            {"id": t, "builtin": t not in local, "placeholders": placeholders(self.get(t) or "")}
            for t in ids
        ]

    def create(self, template_id: str, content: str) -> tuple[Path, bool]:
        path = self._file(template_id)
        replaced = path.exists()
        _write(path, content)
        return path, replaced


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    try:
        tmp.write_text(text, "utf-8")
        os.replace(tmp, path)  # readers see the old page or the new one, never half
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- pages


class PageStore(Protocol):
    """Where pages live. Every method returns {id, url, title, path} (+ content for get)
    and raises TaskError: NotFound, BadInput, NotionUnavailable."""

    def create(
        self, page_id: str, title: str, body: str, meta: dict[str, Any]
    ) -> dict[str, Any]: ...
    def update(self, page_id: str, title: str | None, body: str | None) -> dict[str, Any]: ...
    def append(self, page_id: str, body: str) -> dict[str, Any]: ...
    def get(self, page_id: str) -> dict[str, Any]: ...


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    if text.startswith("---\n") and (end := text.find("\n---\n", 4)) != -1:
        with contextlib.suppress(yaml.YAMLError):
            meta = yaml.safe_load(text[4:end])
            if isinstance(meta, dict):
                return {str(k): v for k, v in meta.items()}, text[end + 5 :]
    return {}, text


class LocalPages:
    """Pages as Markdown files with YAML front matter under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _find(self, page_id: str) -> Path | None:
        if not _PAGE_ID.fullmatch(page_id):
            raise _bad(f"pageId: {page_id!r} is not a page id")
        return next(iter(sorted(self.root.glob(f"*-{page_id}.md"))), None)

    def _load(self, page_id: str) -> tuple[Path, dict[str, Any], str]:
        path = self._find(page_id)
        if path is None:
            raise TaskError(f"pageId: no page {page_id!r}", type="NotFound")
        meta, body = split_front_matter(path.read_text("utf-8"))
        return path, meta, body

    def _save(self, path: Path, meta: dict[str, Any], body: str) -> dict[str, Any]:
        front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
        _write(path, f"---\n{front}---\n{body.rstrip()}\n")
        return {"id": meta["id"], "url": path.as_uri(), "title": meta["title"], "path": str(path)}

    def create(self, page_id: str, title: str, body: str, meta: dict[str, Any]) -> dict[str, Any]:
        if (parent := meta.get("parent")) is not None:
            self._load(parent)  # must exist
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:48].strip("-") or "page"
        path = self._find(page_id) or self.root / f"{slug}-{page_id}.md"  # a retry rewrites
        return self._save(path, {"id": page_id, "title": title, "created": _now(), **meta}, body)

    def update(self, page_id: str, title: str | None, body: str | None) -> dict[str, Any]:
        path, meta, old = self._load(page_id)  # the file keeps its name, so the url stays
        meta |= {"title": title or meta.get("title", ""), "updated": _now()}
        return self._save(path, meta, old if body is None else body)

    def append(self, page_id: str, body: str) -> dict[str, Any]:
        path, meta, old = self._load(page_id)
        meta["updated"] = _now()
        return self._save(path, meta, f"{old.rstrip()}\n\n{body}")

    def get(self, page_id: str) -> dict[str, Any]:
        path, meta, body = self._load(page_id)
        out = {"id": page_id, "url": path.as_uri(), "title": str(meta.get("title", ""))}
        return out | {
            "path": str(path),
            "content": body,
            "meta": json.loads(json.dumps(meta, default=str)),
        }


_BLOCK_PREFIXES = [
    ("### ", "heading_3"),
    ("## ", "heading_2"),
    ("# ", "heading_1"),
    ("- [ ] ", "to_do"),
    ("- [x] ", "to_do"),
    ("- ", "bulleted_list_item"),
    ("> ", "quote"),
]
_BLOCK_MARKDOWN = {
    "heading_1": "# ",
    "heading_2": "## ",
    "heading_3": "### ",
    "bulleted_list_item": "- ",
    "quote": "> ",
    "paragraph": "",
}


def to_blocks(markdown: str) -> list[dict[str, Any]]:
    """Markdown lines as Notion blocks (headings, to-dos, bullets, quotes, paragraphs)."""
    blocks = []
    for line in markdown.splitlines():
        if not line.strip():
            continue
        kind, text = next(
            ((k, line[len(p) :]) for p, k in _BLOCK_PREFIXES if line.startswith(p)),
            ("paragraph", line),
        )
        rich = [
            {"type": "text", "text": {"content": text[i : i + 2000]}}
            for i in range(0, len(text), 2000)
        ]
        body: dict[str, Any] = {"rich_text": rich}
        if kind == "to_do":
            body["checked"] = line.startswith("- [x] ")
        blocks.append({"object": "block", "type": kind, kind: body})
    return blocks


def from_blocks(blocks: list[dict[str, Any]]) -> str:
    lines = []
    for b in blocks:
        kind = b.get("type", "")
        text = "".join(
            r.get("plain_text") or r.get("text", {}).get("content", "")
            for r in b.get(kind, {}).get("rich_text", [])
        )
        if kind == "to_do":
            lines.append(f"- [{'x' if b[kind].get('checked') else ' '}] {text}")
        else:
            lines.append(_BLOCK_MARKDOWN.get(kind, "") + text)
    return "\n".join(lines)


class NotionApiPages:
    """Pages in Notion through ``notion-client`` (imported when first needed: it is an
    optional dependency). New pages go under ``parentId`` or the configured parent page.
    Notion assigns page ids, so unlike local pages a retried create may make a second page."""

    def __init__(self, api_key: str, parent_page_id: str | None) -> None:
        try:
            import notion_client  # type: ignore[import-not-found]
        except ImportError:
            raise TaskError(
                "a Notion API key is configured but the notion-client package is not "
                "installed: pip install notion-client, or unset NOTION_API_KEY to use the "
                "local workspace",
                type="NotionUnavailable",
            ) from None
        self._client: Any = notion_client.Client(auth=api_key)
        self._parent = parent_page_id

    @contextlib.contextmanager
    def _call(self) -> Iterator[None]:
        try:
            yield
        except TaskError:
            raise
        except Exception as e:  # the client's errors carry an HTTP status when there is one
            status = getattr(e, "status", None)
            if status is None or status == 429 or status >= 500:
                raise RetryableTaskError(f"Notion: {e}", type="NotionUnavailable") from None
            kind = "NotFound" if status == 404 else "NotionError"
            raise TaskError(f"Notion: {e}", type=kind) from None

    def _ref(self, page: dict[str, Any], title: str) -> dict[str, Any]:
        return {"id": page["id"], "url": page.get("url", ""), "title": title, "path": None}

    def _append(self, page_id: str, body: str) -> None:
        blocks = to_blocks(body)
        for i in range(0, len(blocks), 100):  # the API takes 100 blocks per request
            self._client.blocks.children.append(block_id=page_id, children=blocks[i : i + 100])

    def create(self, page_id: str, title: str, body: str, meta: dict[str, Any]) -> dict[str, Any]:
        parent = meta.get("parent") or self._parent
        if not parent:
            raise _bad(
                "parentId: Notion pages need a parent page (parentId or NOTION_PARENT_PAGE_ID)"
            )
        with self._call():
            props = {"title": {"title": [{"type": "text", "text": {"content": title[:2000]}}]}}
            page = self._client.pages.create(parent={"page_id": parent}, properties=props)
            self._append(page["id"], body)
        return self._ref(page, title)

    def update(self, page_id: str, title: str | None, body: str | None) -> dict[str, Any]:
        with self._call():
            if title:
                props = {"title": {"title": [{"type": "text", "text": {"content": title[:2000]}}]}}
                self._client.pages.update(page_id=page_id, properties=props)
            if body is not None:
                for block in self._children(page_id):
                    self._client.blocks.delete(block_id=block["id"])
                self._append(page_id, body)
            return self.get(page_id)

    def append(self, page_id: str, body: str) -> dict[str, Any]:
        with self._call():
            self._append(page_id, body)
            return self.get(page_id)

    def _children(self, page_id: str) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        cursor = None
        while True:
            kwargs = {"block_id": page_id} | ({"start_cursor": cursor} if cursor else {})
            res = self._client.blocks.children.list(**kwargs)
            blocks += res.get("results", [])
            if not (cursor := res.get("next_cursor")) or not res.get("has_more"):
                return blocks

    def get(self, page_id: str) -> dict[str, Any]:
        with self._call():
            page = self._client.pages.retrieve(page_id=page_id)
            title_prop: dict[str, Any] = next(
                (p for p in page.get("properties", {}).values() if p.get("type") == "title"), {}
            )
            title = "".join(t.get("plain_text", "") for t in title_prop.get("title", []))
            return self._ref(page, title) | {"content": from_blocks(self._children(page_id))}


# -------------------------------------------------------------------------- databases


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
        raise _bad(f"{column}: expected a {_NAMES.get(sql_type, 'text')} value, got {value!r:.40}")
    if sql_type == "DATE":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise _bad(f"{column}: expected an ISO date, got {value!r:.40}") from None
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
            raise _bad("filter: required (an empty filter would touch every row)")
        return "", []
    if not isinstance(filter, dict):
        raise _bad("filter: expected an object {column: value} or {column: {op: value}}")
    clauses, params = [], []
    for column, cond in filter.items():
        if column not in columns:
            raise _bad(f"filter: unknown column {column!r}")
        for op, value in (cond if isinstance(cond, dict) else {"eq": cond}).items():
            if op not in _OPS:
                raise _bad(f"filter.{column}: unknown operator {op!r} (one of {', '.join(_OPS)})")
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
        raise _bad(f"{where}: expected an object {{column: value}}")
    if unknown := [c for c in value if c not in columns or c.startswith("_")]:
        raise _bad(f"{where}: unknown column(s) {', '.join(map(str, unknown))}")
    return {c: _to_sql(f"{where}.{c}", columns[c], v) for c, v in value.items()}


class Databases:
    """Notion-like databases as SQLite tables ``<name>`` with ``_id`` and ``_created``
    columns beside the user's. Identifiers are validated and quoted; values are parameters."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, inp: dict[str, Any]) -> dict[str, Any]:
        action, table = inp.get("action"), inp.get("database")
        if action not in ("create", "insert", "query", "update", "delete"):
            raise _bad("action: expected create, insert, query, update or delete")
        if (
            not isinstance(table, str)
            or not _NAME.fullmatch(table)
            or table.lower().startswith("sqlite")
        ):
            raise _bad(
                "database: expected a name of letters, digits and _ (starting with a letter)"
            )
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
            raise _bad("schema: expected an object {column: type}")
        for name, kind in schema.items():
            if not _NAME.fullmatch(name) or kind not in _TYPES:
                raise _bad(f"schema.{name}: needs a plain name and a type in {', '.join(_TYPES)}")
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
            raise _bad("rows: expected a non-empty list of {column: value} objects")
        ids = []
        for i, raw in enumerate(rows):
            row = _row(raw, columns, f"rows[{i}]" if "rows" in inp else "row")
            names = "".join(f', "{c}"' for c in row)
            sql = f'INSERT INTO "{table}" (_created{names}) VALUES (?{", ?" * len(row)})'
            ids.append(conn.execute(sql, [_now(), *row.values()]).lastrowid)
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
            raise _bad("sort: expected a column name, with a leading - for descending")
        limit = inp.get("limit", 100)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise _bad("limit: expected an integer in [1, 10000]")
        direction = "DESC" if order.startswith("-") else "ASC"
        sql = f'SELECT * FROM "{table}"{where} ORDER BY "{order.lstrip("-")}" {direction} LIMIT ?'
        cur = conn.execute(sql, [*params, limit])
        names = [d[0] for d in cur.description]
        rows = [{n: _from_sql(columns[n], v) for n, v in zip(names, r, strict=True)} for r in cur]
        return {"rows": rows, "count": len(rows)}


# ------------------------------------------------------------------------ extraction

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<(https?://[^>\s]+)>")
_TASK = re.compile(r"^\s*[-*+]\s+\[([ xX])\]\s+(.*)$")


def _link_text(m: re.Match[str]) -> str:
    return m.group(1) if m.group(1) is not None else m.group(3)


def extract(markdown: str, fallback_title: str) -> dict[str, Any]:
    """Title, headings, plain text, links and checkbox tasks of a Markdown document."""
    meta, body = split_front_matter(markdown)
    headings, links, tasks, text = [], [], [], []
    fenced = False
    for line in body.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced and (m := _HEADING.match(line)):
            headings.append({"level": len(m.group(1)), "text": m.group(2)})
        if not fenced and (t := _TASK.match(line)):
            tasks.append({"text": t.group(2).strip(), "done": t.group(1) != " "})
        if not fenced:
            for m in _LINK.finditer(line):
                links.append({"text": _link_text(m), "url": m.group(2) or m.group(3)})
        plain = line if fenced else _LINK.sub(_link_text, line)
        if not fenced:
            plain = re.sub(r"^\s*(?:#{1,6}\s+|>\s*|[-*+]\s+(?:\[[ xX]\]\s+)?|\d+\.\s+)", "", plain)
            plain = re.sub(r"\*\*|__|`", "", plain)
        if plain.strip():
            text.append(plain.strip())
    first_h1 = next((h["text"] for h in headings if h["level"] == 1), None)
    title = str(meta.get("title") or first_h1 or fallback_title)
    joined = "\n".join(text)
    return {
        "title": title,
        "headings": headings,
        "text": joined,
        "links": links,
        "tasks": tasks,
        "wordCount": len(joined.split()),
    }


# ------------------------------------------------------------------------------ agent


def _page_title(inp: dict[str, Any]) -> str:
    error, plan, specs = inp.get("error"), inp.get("plan"), inp.get("specifications")
    if "error" in inp:
        kind = error.get("type") if isinstance(error, dict) else None
        where = inp.get("step") or inp.get("workflow") or "a workflow"
        return f"Incident ({inp.get('severity') or 'unrated'}): {kind or 'Error'} in {where}"
    if isinstance(plan, dict):
        return f"Project plan: {plan.get('projectType') or 'project'} ({plan.get('priority') or 'medium'} priority)"
    if isinstance(specs, dict):
        return f"Feature specification: {specs.get('feature') or 'feature'}"
    return "Untitled"


def compose(
    inp: dict[str, Any],
    title: str,
    template_id: str | None,
    templates: Templates,
    *,
    heading: bool = True,
) -> tuple[str | None, str | None, list[str]]:
    """(Markdown, template used, warnings) for a page: ``content`` as given, or the other
    fields rendered by a template, or one section per field; no Markdown when there is
    nothing to render."""
    if (content := _opt_str(inp, "content")) is not None:
        return content, None, []
    fields = {k: v for k, v in inp.items() if k not in _CONTROL}
    if not fields and template_id is None:
        return None, None, []
    if isinstance(fields.get("error"), str):
        fields["error"] = {"type": "Error", "message": fields["error"]}
    warnings, chosen = [], template_id
    if chosen is not None and templates.get(chosen) is None:
        warnings.append(f"unknown template {chosen!r}: rendered without it")
        chosen = None
    for key, default in (
        ("error", "error_report_template"),
        ("plan", "project_plan_template"),
        ("specifications", "feature_spec_template"),
    ):
        chosen = chosen or (default if key in fields else None)
    if chosen is not None:
        ctx = fields | {"title": title, "created": _now(), "date": _now()[:10]}
        return render(templates.get(chosen) or "", ctx), chosen, warnings
    sections = [f"## {k[:1].upper()}{k[1:]}\n\n{to_markdown(fields[k])}" for k in sorted(fields)]
    return "\n\n".join([f"# {title}"] * heading + sections), None, warnings


def create(
    coordinator: str | None = None,
    *,
    workspace: Path,
    max_concurrency: int = 4,
    notion_api_key: str | None = None,
    notion_parent_page_id: str | None = None,
) -> Agent:
    """The notion agent. ``notion_api_key`` (default ``$NOTION_API_KEY``) switches page
    operations to Notion, under ``notion_parent_page_id`` (default ``$NOTION_PARENT_PAGE_ID``)."""
    root = Path(workspace).resolve() / "notion"
    for sub in ("pages", "templates"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    templates, local = Templates(root / "templates"), LocalPages(root / "pages")
    databases = Databases(root / "databases.db")
    api_key = notion_api_key or os.environ.get("NOTION_API_KEY")
    parent_default = notion_parent_page_id or os.environ.get("NOTION_PARENT_PAGE_ID")
    ws = root.parent
    agent = Agent("notion", coordinator, type="notion", max_concurrency=max_concurrency)

    def pages() -> PageStore:
        return NotionApiPages(api_key, parent_default) if api_key else local

    @agent.capability("page_operations", description="create, update, read or append to a page")
    def page_operations(task: Task) -> dict[str, Any]:
        inp = task.input
        action = inp.get("action") or "create"
        if action not in ("create", "update", "get", "append"):
            raise _bad("action: expected create, update, get or append")
        if (severity := inp.get("severity")) is not None and severity not in SEVERITIES:
            raise _bad(f"severity: expected one of {', '.join(SEVERITIES)}")
        title, template_id = _opt_str(inp, "title"), _opt_str(inp, "templateId")
        parent, page_id = _opt_str(inp, "parentId"), _opt_str(inp, "pageId") or ""
        if action != "create" and not page_id:
            raise _bad(f"pageId: required for {action}")
        store = pages()
        if action == "get":
            return store.get(page_id) | {"action": action}
        if action == "create":
            title = title or _page_title(inp)
            body, used, warnings = compose(inp, title, template_id, templates)
            key = task.idempotency_key or uuid.uuid4().hex  # a retry rewrites the same page
            meta = {"template": used} | ({"parent": parent} if parent else {})
            new_id = hashlib.sha256(key.encode()).hexdigest()[:12]
            ref = store.create(new_id, title, body or f"# {title}\n", meta)
        elif action == "update":
            heading = title or store.get(page_id)["title"]
            body, used, warnings = compose(inp, heading, template_id, templates)
            if body is None and title is None:
                raise _bad("title or content: update needs at least one")
            ref = store.update(page_id, title, body)
        else:
            body, used, warnings = compose(inp, title or "", template_id, templates, heading=False)
            if body is None:
                raise _bad("content: required for append (or fields to render)")
            ref = store.append(page_id, body)
        ref.pop("content", None)
        return ref | {"action": action, "template": used, "warnings": warnings}

    @agent.capability(
        "database_operations",
        description="create, insert, query, update or delete rows of a database",
    )
    def database_operations(task: Task) -> dict[str, Any]:
        return databases.run(task.input)

    @agent.capability(
        "content_extraction",
        description="extract title, headings, text, links and tasks from a page",
    )
    def content_extraction(task: Task) -> dict[str, Any]:
        inp = task.input
        page_id, url, raw = _opt_str(inp, "pageId"), _opt_str(inp, "url"), _opt_str(inp, "path")
        if page_id is not None:
            page = pages().get(page_id)
            return extract(page["content"], page["title"]) | {"id": page["id"], "url": page["url"]}
        if url is not None:
            parsed = urlparse(url)
            if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
                raise _bad("url: expected a file:// URL of a page in the workspace")
            raw = url2pathname(parsed.path)
        if raw is None:
            raise _bad("pageId, url or path: one of them is required")
        path = _sandbox.confine(ws, raw, "path")
        if not path.is_file():
            raise TaskError(f"path: no file {raw!r}", type="NotFound")
        if path.stat().st_size > MAX_PAGE_BYTES:
            raise _bad(f"path: larger than {MAX_PAGE_BYTES} bytes")
        text = path.read_text("utf-8", errors="replace")
        return extract(text, path.stem) | {"path": str(path), "url": path.as_uri()}

    @agent.capability("template_management", description="list, read or create page templates")
    def template_management(task: Task) -> dict[str, Any]:
        inp = task.input
        action = inp.get("action") or "list"
        if action == "list":
            return {"templates": templates.list()}
        template_id = _opt_str(inp, "templateId")
        if action not in ("get", "create") or template_id is None:
            raise _bad("action and templateId: expected list, or get/create with a templateId")
        if action == "get":
            content = templates.get(template_id)
            if content is None:
                raise TaskError(f"templateId: no template {template_id!r}", type="NotFound")
            builtin = not (templates.root / f"{template_id}.md").is_file()
            return {
                "id": template_id,
                "content": content,
                "builtin": builtin,
                "placeholders": placeholders(content),
            }
        content = _opt_str(inp, "content")
        if content is None or not content.strip():
            raise _bad("content: required non-empty Markdown for create")
        path, replaced = templates.create(template_id, content)
        return {
            "id": template_id,
            "path": str(path),
            "placeholders": placeholders(content),
            "replaced": replaced,
        }

    return agent
