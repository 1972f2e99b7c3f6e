"""Page templates: three built-ins (project plan, feature spec, error report) and
``<root>/<id>.md`` files in the workspace, which shadow built-ins of the same id."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agentmesh.agents._files import write_atomic
from agentmesh.agents._inputs import bad
from agentmesh.agents.notion._markdown import placeholders

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
_TEMPLATE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class Templates:
    """Built-in templates plus ``<root>/<id>.md`` files, which shadow built-ins."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def file(self, template_id: str) -> Path:
        """Where the workspace template ``template_id`` lives (BadInput for a bad id)."""
        if not _TEMPLATE_ID.fullmatch(template_id):
            raise bad(f"templateId: {template_id!r} is not a valid id ([a-z0-9_-], 1-64 chars)")
        return self.root / f"{template_id}.md"

    def get(self, template_id: str) -> str | None:
        """The template ``template_id`` (a workspace file first, then a built-in), or None."""
        path = self.file(template_id)
        return path.read_text("utf-8") if path.is_file() else BUILTIN_TEMPLATES.get(template_id)

    def list(self) -> list[dict[str, Any]]:
        """Every template id with whether it is built in and its placeholders."""
        local = {p.stem for p in self.root.glob("*.md") if _TEMPLATE_ID.fullmatch(p.stem)}
        ids = sorted(local | set(BUILTIN_TEMPLATES))
        return [
            {"id": t, "builtin": t not in local, "placeholders": placeholders(self.get(t) or "")}
            for t in ids
        ]

    def create(self, template_id: str, content: str) -> tuple[Path, bool]:
        """Write the workspace template ``template_id``; its path and whether it replaced one."""
        path = self.file(template_id)
        replaced = path.exists()
        write_atomic(path, content.encode("utf-8"))
        return path, replaced
