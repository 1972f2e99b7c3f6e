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

Layout: ``_handlers`` (the capabilities), ``_pages`` (the page store and front matter),
``_api`` with ``_blocks`` (pages on Notion), ``_page_templates``, ``_compose`` and
``_markdown`` (a page's Markdown), ``_databases``, ``_extract``.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent_sdk import Agent
from agentmesh.agents import _sandbox
from agentmesh.agents._agent import reference_agent
from agentmesh.agents.notion._api import NotionApiPages
from agentmesh.agents.notion._blocks import from_blocks, to_blocks
from agentmesh.agents.notion._compose import compose
from agentmesh.agents.notion._databases import Databases
from agentmesh.agents.notion._extract import extract
from agentmesh.agents.notion._handlers import MAX_PAGE_BYTES, SEVERITIES, Notion
from agentmesh.agents.notion._markdown import MAX_ITEMS, placeholders, render, to_markdown
from agentmesh.agents.notion._page_templates import BUILTIN_TEMPLATES, Templates
from agentmesh.agents.notion._pages import LocalPages, PageStore, split_front_matter

__all__ = [
    "BUILTIN_TEMPLATES",
    "MAX_ITEMS",
    "MAX_PAGE_BYTES",
    "SEVERITIES",
    "Databases",
    "LocalPages",
    "NotionApiPages",
    "PageStore",
    "Templates",
    "compose",
    "create",
    "extract",
    "from_blocks",
    "placeholders",
    "render",
    "split_front_matter",
    "to_blocks",
    "to_markdown",
]


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
    root = _sandbox.real(workspace) / "notion"
    for sub in ("pages", "templates"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    api_key = notion_api_key or os.environ.get("NOTION_API_KEY")
    parent_default = notion_parent_page_id or os.environ.get("NOTION_PARENT_PAGE_ID")
    notion = Notion(root, api_key, parent_default)
    return reference_agent(
        "notion",
        coordinator,
        max_concurrency,
        [
            (
                "page_operations",
                notion.page_operations,
                "create, update, read or append to a page",
            ),
            (
                "database_operations",
                notion.database_operations,
                "create, insert, query, update or delete rows of a database",
            ),
            (
                "content_extraction",
                notion.content_extraction,
                "extract title, headings, text, links and tasks from a page",
            ),
            (
                "template_management",
                notion.template_management,
                "list, read or create page templates",
            ),
        ],
    )
