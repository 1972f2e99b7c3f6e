"""Rendering JSON values as Markdown, and filling ``{{a.b}}`` placeholders with them.

Lists become bullets (tasks as checkboxes, components with their interface; at most
``MAX_ITEMS`` per list), objects become ``**key:** value`` lines, long inline JSON is cut.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
MAX_ITEMS = 200  # list entries rendered per field


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
    """The placeholder paths of ``template`` (``{{a.b}}`` -> ``a.b``), sorted, once each."""
    return sorted(set(_PLACEHOLDER.findall(template)))
