"""A page's Markdown from a task's fields: given ``content``, a template (named, or the
one the fields suggest: error, plan, specifications), or one section per field."""

from __future__ import annotations

from typing import Any

from agentmesh.agents.notion._common import now, opt_str
from agentmesh.agents.notion._markdown import render, to_markdown
from agentmesh.agents.notion._page_templates import Templates

_CONTROL = ("action", "title", "content", "templateId", "parentId", "pageId")


def page_title(inp: dict[str, Any]) -> str:
    """A title for a page created without one, from what its fields are about."""
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
    if (content := opt_str(inp, "content")) is not None:
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
        ctx = fields | {"title": title, "created": now(), "date": now()[:10]}
        return render(templates.get(chosen) or "", ctx), chosen, warnings
    sections = [f"## {k[:1].upper()}{k[1:]}\n\n{to_markdown(fields[k])}" for k in sorted(fields)]
    return "\n\n".join([f"# {title}"] * heading + sections), None, warnings
