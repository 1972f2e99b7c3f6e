"""Markdown lines to Notion blocks and back: headings, to-dos, bullets, quotes and
paragraphs (rich text cut into the API's 2000-character pieces)."""

from __future__ import annotations

from typing import Any

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
    """Notion blocks as Markdown lines (the inverse of ``to_blocks`` for its block types)."""
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
