"""Where pages live: the ``PageStore`` protocol and ``LocalPages``, Markdown files with a
YAML front matter (id, title, created, template[, parent, updated]) named
``<slug>-<id>.md``; a page keeps its file, so its ``file://`` url, when it changes."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any, Protocol

import yaml

from agent_sdk import TaskError
from agentmesh.agents._files import write_atomic
from agentmesh.agents._inputs import bad
from agentmesh.agents.notion._common import now

_PAGE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


class PageStore(Protocol):
    """Where pages live. Every method returns {id, url, title, path} (+ content for get)
    and raises TaskError: NotFound, BadInput, NotionUnavailable."""

    def create(self, page_id: str, title: str, body: str, meta: dict[str, Any]) -> dict[str, Any]:
        """A new page (or, for a store that keeps ``page_id``, that page rewritten)."""
        ...

    def update(self, page_id: str, title: str | None, body: str | None) -> dict[str, Any]:
        """The page with a new title and/or body (None keeps it)."""
        ...

    def append(self, page_id: str, body: str) -> dict[str, Any]:
        """The page with ``body`` added at its end."""
        ...

    def get(self, page_id: str) -> dict[str, Any]:
        """The page with its ``content``."""
        ...


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(YAML front matter, the rest) of a Markdown page; ({}, text) without valid front matter."""
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
            raise bad(f"pageId: {page_id!r} is not a page id")
        return next(iter(sorted(self.root.glob(f"*-{page_id}.md"))), None)

    def _load(self, page_id: str) -> tuple[Path, dict[str, Any], str]:
        path = self._find(page_id)
        if path is None:
            raise TaskError(f"pageId: no page {page_id!r}", type="NotFound")
        meta, body = split_front_matter(path.read_text("utf-8"))
        return path, meta, body

    def _save(self, path: Path, meta: dict[str, Any], body: str) -> dict[str, Any]:
        front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
        write_atomic(path, f"---\n{front}---\n{body.rstrip()}\n".encode())
        return {"id": meta["id"], "url": path.as_uri(), "title": meta["title"], "path": str(path)}

    def create(self, page_id: str, title: str, body: str, meta: dict[str, Any]) -> dict[str, Any]:
        """See ``PageStore.create``; the parent page must exist."""
        if (parent := meta.get("parent")) is not None:
            self._load(parent)  # must exist
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:48].strip("-") or "page"
        path = self._find(page_id) or self.root / f"{slug}-{page_id}.md"  # a retry rewrites
        return self._save(path, {"id": page_id, "title": title, "created": now(), **meta}, body)

    def update(self, page_id: str, title: str | None, body: str | None) -> dict[str, Any]:
        """See ``PageStore.update``."""
        path, meta, old = self._load(page_id)  # the file keeps its name, so the url stays
        meta |= {"title": title or meta.get("title", ""), "updated": now()}
        return self._save(path, meta, old if body is None else body)

    def append(self, page_id: str, body: str) -> dict[str, Any]:
        """See ``PageStore.append``."""
        path, meta, old = self._load(page_id)
        meta["updated"] = now()
        return self._save(path, meta, f"{old.rstrip()}\n\n{body}")

    def get(self, page_id: str) -> dict[str, Any]:
        """See ``PageStore.get``; ``meta`` is the front matter."""
        path, meta, body = self._load(page_id)
        out = {"id": page_id, "url": path.as_uri(), "title": str(meta.get("title", ""))}
        return out | {
            "path": str(path),
            "content": body,
            "meta": json.loads(json.dumps(meta, default=str)),
        }
