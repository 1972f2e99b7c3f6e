"""``NotionApiPages``: the ``PageStore`` on Notion itself, through the optional
``notion-client`` package; its errors are mapped to TaskError (NotFound, NotionError) or,
for rate limits, server errors and no answer, a retryable NotionUnavailable."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from agent_sdk import RetryableTaskError, TaskError
from agentmesh.agents._inputs import bad
from agentmesh.agents.notion._blocks import from_blocks, to_blocks


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
        """See ``PageStore.create``; Notion picks the id (``page_id`` is not used)."""
        parent = meta.get("parent") or self._parent
        if not parent:
            raise bad(
                "parentId: Notion pages need a parent page (parentId or NOTION_PARENT_PAGE_ID)"
            )
        with self._call():
            props = {"title": {"title": [{"type": "text", "text": {"content": title[:2000]}}]}}
            page = self._client.pages.create(parent={"page_id": parent}, properties=props)
            self._append(page["id"], body)
        return self._ref(page, title)

    def update(self, page_id: str, title: str | None, body: str | None) -> dict[str, Any]:
        """See ``PageStore.update``: a new body replaces every block."""
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
        """See ``PageStore.append``."""
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
        """See ``PageStore.get``."""
        with self._call():
            page = self._client.pages.retrieve(page_id=page_id)
            title_prop: dict[str, Any] = next(
                (p for p in page.get("properties", {}).values() if p.get("type") == "title"), {}
            )
            title = "".join(t.get("plain_text", "") for t in title_prop.get("title", []))
            return self._ref(page, title) | {"content": from_blocks(self._children(page_id))}
