"""``code_linting``: Python through ``ruff check``, JS/TS through
``agentmesh.agents._codetools``, reported in one shape with counts per severity and rule."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from agent_sdk import Task
from agentmesh.agents import _codetools as js
from agentmesh.agents.reviewer._select import LINTABLE, collect, specs


def _ruff_issue(d: dict[str, Any], workspace: Path) -> dict[str, Any]:
    code = d.get("code")
    location = d.get("location") or {}
    fix = d.get("fix") or {}
    error = code is None or str(code).startswith(("E9", "F63", "F7", "F82"))
    return {
        "file": js.display(Path(d["filename"]).resolve(), workspace),
        "line": int(location.get("row", 1)),
        "column": int(location.get("column", 1)),
        "rule": code or "syntax-error",
        "message": str(d.get("message", "")),
        "severity": "error" if error else "warning",
        "fixable": fix.get("applicability") == "safe",
        "source": "ruff",
    }


def code_linting(task: Task, workspace: Path) -> dict[str, Any]:
    """``code_linting``: the issues of the Python and JS/TS files the task names."""
    files = collect(workspace, specs(task.input), lambda p: p.suffix in LINTABLE)
    return lint_paths(task, workspace, files)


def lint_paths(task: Task, workspace: Path, files: list[Path]) -> dict[str, Any]:
    """Lint ``files``: JS/TS with ``agentmesh.agents._codetools``, Python with ruff."""
    issues: list[dict[str, Any]] = []
    notes: list[str] = []
    checked = 0
    scripts = [f for f in files if f.suffix in js.JS_SUFFIXES]
    for n, path in enumerate(scripts, 1):
        text = path.read_text(errors="replace")
        for i in js.lint(text, typescript=path.suffix in js.TS_SUFFIXES):
            issue = {"file": js.display(path, workspace), "line": i.line, "column": i.column}
            issue |= {"rule": i.rule, "message": i.message, "severity": i.severity}
            issues.append(issue | {"fixable": i.fixable, "source": "jslint"})
        checked += 1
        if n % 20 == 0:
            task.progress(0.8 * n / len(scripts), f"linted {n}/{len(scripts)} JS/TS files")
    python = [f for f in files if f.suffix in js.PY_SUFFIXES]
    if python and js.ruff_executable() is None:
        notes.append(f"ruff not found: {len(python)} Python file(s) not checked")
    elif python:
        task.progress(0.85, f"ruff on {len(python)} Python files")
        issues += [_ruff_issue(d, workspace) for d in js.ruff_issues(python, workspace)]
        checked += len(python)
    issues.sort(key=lambda i: (i["file"], i["line"], i["column"]))
    severities = Counter(i["severity"] for i in issues)
    counts = {
        "total": len(issues),
        "errors": severities["error"],
        "warnings": severities["warning"],
        "fixable": sum(i["fixable"] for i in issues),
        "byRule": dict(sorted(Counter(i["rule"] for i in issues).items())),
    }
    return {"issues": issues, "counts": counts, "filesChecked": checked, "notes": notes}
