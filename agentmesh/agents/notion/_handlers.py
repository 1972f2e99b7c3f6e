"""The notion agent's capabilities over one workspace: pages (local, or Notion's when an
API key is configured), databases, content extraction and templates."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from agent_sdk import Task, TaskError
from agentmesh.agents import _sandbox
from agentmesh.agents._inputs import bad
from agentmesh.agents.notion._api import NotionApiPages
from agentmesh.agents.notion._common import opt_str
from agentmesh.agents.notion._compose import compose, page_title
from agentmesh.agents.notion._databases import Databases
from agentmesh.agents.notion._extract import extract
from agentmesh.agents.notion._markdown import placeholders
from agentmesh.agents.notion._page_templates import Templates
from agentmesh.agents.notion._pages import LocalPages, PageStore

SEVERITIES = ("low", "medium", "high", "critical")
MAX_PAGE_BYTES = 5 * 1024 * 1024


class Notion:
    """The capabilities' handlers for the notion workspace ``root`` (``<workspace>/notion``);
    page operations go to Notion when ``api_key`` is set, under ``parent`` by default."""

    def __init__(self, root: Path, api_key: str | None, parent: str | None) -> None:
        self.templates = Templates(root / "templates")
        self.local = LocalPages(root / "pages")
        self.databases = Databases(root / "databases.db")
        self.workspace = root.parent
        self.api_key, self.parent = api_key, parent

    def pages(self) -> PageStore:
        """Where pages live for this call: Notion when an API key is set, else the workspace."""
        return NotionApiPages(self.api_key, self.parent) if self.api_key else self.local

    def page_operations(self, task: Task) -> dict[str, Any]:
        """``page_operations``: create, update, get or append to a page."""
        inp = task.input
        action = inp.get("action") or "create"
        if action not in ("create", "update", "get", "append"):
            raise bad("action: expected create, update, get or append")
        if (severity := inp.get("severity")) is not None and severity not in SEVERITIES:
            raise bad(f"severity: expected one of {', '.join(SEVERITIES)}")
        title, template_id = opt_str(inp, "title"), opt_str(inp, "templateId")
        parent, page_id = opt_str(inp, "parentId"), opt_str(inp, "pageId") or ""
        if action != "create" and not page_id:
            raise bad(f"pageId: required for {action}")
        store = self.pages()
        if action == "get":
            return store.get(page_id) | {"action": action}
        if action == "create":
            title = title or page_title(inp)
            body, used, warnings = compose(inp, title, template_id, self.templates)
            key = task.idempotency_key or uuid.uuid4().hex  # a retry rewrites the same page
            meta = {"template": used} | ({"parent": parent} if parent else {})
            new_id = hashlib.sha256(key.encode()).hexdigest()[:12]
            ref = store.create(new_id, title, body or f"# {title}\n", meta)
        elif action == "update":
            heading = title or store.get(page_id)["title"]
            body, used, warnings = compose(inp, heading, template_id, self.templates)
            if body is None and title is None:
                raise bad("title or content: update needs at least one")
            ref = store.update(page_id, title, body)
        else:
            body, used, warnings = compose(
                inp, title or "", template_id, self.templates, heading=False
            )
            if body is None:
                raise bad("content: required for append (or fields to render)")
            ref = store.append(page_id, body)
        ref.pop("content", None)
        return ref | {"action": action, "template": used, "warnings": warnings}

    def database_operations(self, task: Task) -> dict[str, Any]:
        """``database_operations``: see ``Databases.run``."""
        return self.databases.run(task.input)

    def content_extraction(self, task: Task) -> dict[str, Any]:
        """``content_extraction``: what a page, or a Markdown file in the workspace, holds."""
        inp = task.input
        page_id, url, raw = opt_str(inp, "pageId"), opt_str(inp, "url"), opt_str(inp, "path")
        if page_id is not None:
            page = self.pages().get(page_id)
            return extract(page["content"], page["title"]) | {"id": page["id"], "url": page["url"]}
        if url is not None:
            parsed = urlparse(url)
            if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
                raise bad("url: expected a file:// URL of a page in the workspace")
            raw = url2pathname(parsed.path)
        if raw is None:
            raise bad("pageId, url or path: one of them is required")
        path = _sandbox.confine(self.workspace, raw, "path")
        if not path.is_file():
            raise TaskError(f"path: no file {raw!r}", type="NotFound")
        if path.stat().st_size > MAX_PAGE_BYTES:
            raise bad(f"path: larger than {MAX_PAGE_BYTES} bytes")
        text = path.read_text("utf-8", errors="replace")
        return extract(text, path.stem) | {"path": str(path), "url": path.as_uri()}

    def template_management(self, task: Task) -> dict[str, Any]:
        """``template_management``: list, read or create page templates."""
        inp = task.input
        action = inp.get("action") or "list"
        if action == "list":
            return {"templates": self.templates.list()}
        template_id = opt_str(inp, "templateId")
        if action not in ("get", "create") or template_id is None:
            raise bad("action and templateId: expected list, or get/create with a templateId")
        if action == "get":
            content = self.templates.get(template_id)
            if content is None:
                raise TaskError(f"templateId: no template {template_id!r}", type="NotFound")
            builtin = not self.templates.file(template_id).is_file()
            return {
                "id": template_id,
                "content": content,
                "builtin": builtin,
                "placeholders": placeholders(content),
            }
        content = opt_str(inp, "content")
        if content is None or not content.strip():
            raise bad("content: required non-empty Markdown for create")
        path, replaced = self.templates.create(template_id, content)
        return {
            "id": template_id,
            "path": str(path),
            "placeholders": placeholders(content),
            "replaced": replaced,
        }
