"""``content_extraction``'s reading of Markdown: title, headings, plain text, links and
checkbox tasks, ignoring fenced code."""

from __future__ import annotations

import re
from typing import Any

from agentmesh.agents.notion._pages import split_front_matter

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
