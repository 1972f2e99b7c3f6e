"""``modernization``: ``ruff check --select UP --fix`` for a target Python version, and
``var`` -> ``let``/``const`` in JS/TS where the rewrite keeps behaviour."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent_sdk import Task
from agentmesh.agents import _codetools as js
from agentmesh.agents._inputs import bad
from agentmesh.agents.refactor._common import ruff_fix, sources


def modernize(task: Task, ws: Path) -> dict[str, Any]:
    """``modernization``: pyupgrade rules (ruff UP, for ``target``) and JS ``var`` ->
    ``let``/``const`` where safe."""
    root = js.existing_dir(ws, task.input.get("path"))
    target = task.input.get("target", "py311")
    if not isinstance(target, str) or not re.fullmatch(r"py3\d{1,2}", target):
        raise bad("target: must look like 'py311'")
    python, scripts = sources(root)
    changes, left = ruff_fix(python, ws, "UP", (f"--target-version={target}",))
    task.progress(0.6, f"pyupgrade rules on {len(python)} Python files")
    for path in scripts:
        text = js.read_source(path)
        new, count = js.convert_vars(text, prefer_const=True)
        if count:
            js.write_source(path, new)
            changes.append({"file": js.display(path, ws), "rule": "no-var", "count": count})
    notes = [] if js.ruff_executable() or not python else ["ruff not found: Python not modernised"]
    return {
        "changes": changes,
        "filesChanged": sorted({c["file"] for c in changes}),
        "remaining": len(left),
        "target": target,
        "notes": notes,
    }
