"""``code_transformation``: the safe fixes of the issues a task names (or of every source
file), ``ruff format`` for Python, and, given test results, a configured test runner
(``scripts.test`` in package.json, ``[tool.pytest.ini_options]`` in pyproject.toml)."""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from agent_sdk import Task
from agentmesh.agents import _codetools as js
from agentmesh.agents import _sandbox
from agentmesh.agents._inputs import bad
from agentmesh.agents.refactor._common import optional_list, ruff_fix, sources

_NPM_DEFAULT_TEST = "no test specified"


def _fix_scripts(
    scripts: list[Path], ws: Path, rules: dict[Path, set[str]] | None
) -> list[dict[str, Any]]:
    applied = []
    for path in scripts:
        text = js.read_source(path)
        wanted = None if rules is None else rules.get(path, set())
        fixed, done = js.fix(text, typescript=path.suffix in js.TS_SUFFIXES, rules=wanted)
        if fixed != text:
            js.write_source(path, fixed)
        where = js.display(path, ws)
        applied += [{"file": where, "rule": r, "count": n} for r, n in sorted(done.items())]
    return applied


def _format(python: list[Path], ws: Path) -> list[dict[str, Any]]:
    if not python or js.ruff_executable() is None:
        return []
    before = {p: js.read_source(p) for p in python}
    js.ruff(["format"], python, ws)
    return [
        {"file": js.display(p, ws), "rule": "ruff-format", "count": 1}
        for p in python
        if js.read_source(p) != before[p]
    ]


def _runner_config(root: Path, ws: Path, notes: list[str]) -> list[dict[str, Any]]:
    """Make sure the project's test runner is configured (the safely automatable part)."""
    applied = []
    package = root / "package.json"
    if package.is_file():
        try:
            data = json.loads(js.read_source(package))
        except ValueError:
            notes.append("package.json is not valid JSON; left alone")
            data = None
        if isinstance(data, dict):
            scripts = data.setdefault("scripts", {})
            if isinstance(scripts, dict) and (
                not isinstance(scripts.get("test"), str) or _NPM_DEFAULT_TEST in scripts["test"]
            ):
                scripts["test"] = "node --test"
                js.write_source(package, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
                applied.append({"file": js.display(package, ws), "rule": "test-script", "count": 1})
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and (root / "tests").is_dir():
        text = js.read_source(pyproject)
        try:
            configured = "pytest" in tomllib.loads(text).get("tool", {})
        except tomllib.TOMLDecodeError:
            notes.append("pyproject.toml does not parse; left alone")
            configured = True
        if not configured:
            section = '\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
            if (root / "src").is_dir():
                section += 'pythonpath = ["src"]\n'
            js.write_source(pyproject, text.rstrip("\n") + "\n" + section)
            applied.append({"file": js.display(pyproject, ws), "rule": "pytest-config", "count": 1})
    return applied


def transform(task: Task, ws: Path) -> dict[str, Any]:
    """``code_transformation``: safe lint fixes and formatting, and a configured test runner."""
    root = js.existing_dir(ws, task.input.get("path"))
    issues = optional_list(task.input, "issues")
    results = task.input.get("testResults")
    if results is not None and not isinstance(results, dict):
        raise bad("testResults: must be an object (test_execution's output)")
    python, scripts = sources(root)
    rules: dict[Path, set[str]] | None = None
    ignored = 0
    if issues is not None:
        rules = {}
        for issue in issues:
            if not isinstance(issue.get("file"), str):
                raise bad("issues: every issue needs a file (string)")
            path = _sandbox.confine(ws, issue["file"], "issues[].file")
            if path.is_file() and _sandbox.is_inside(root, path):
                rules.setdefault(path, set()).add(str(issue.get("rule", "")))
            else:
                ignored += 1
        python = [p for p in python if p in rules]
        scripts = [p for p in scripts if p in rules]
    elif results is not None:
        python, scripts = [], []
    notes: list[str] = []
    applied = _fix_scripts(scripts, ws, rules)
    task.progress(0.4, f"fixed {len(scripts)} JS/TS files")
    if python and js.ruff_executable() is None:
        notes.append(f"ruff not found: {len(python)} Python file(s) not fixed")
    fixed, left = ruff_fix(python, ws)
    applied += fixed + _format(python, ws)
    task.progress(0.8, f"fixed {len(python)} Python files")
    remaining: Counter[str] = Counter(d.get("code") or "syntax-error" for d in left)
    for path in scripts:
        remaining.update(
            i.rule for i in js.lint(js.read_source(path), typescript=path.suffix in js.TS_SUFFIXES)
        )
    if results is not None:
        applied += _runner_config(root if root.is_dir() else root.parent, ws, notes)
        failed = results.get("failed")
        failing = (
            failed if isinstance(failed, int) and failed > 0 else int(not results.get("passed"))
        )
        if failing:
            remaining["failing-tests"] += failing
            why = results.get("reason") or f"{failing} failing test(s)"
            notes.append(f"{why}: needs code or test changes, not automatable")
    return {
        "applied": applied,
        "filesChanged": sorted({a["file"] for a in applied}),
        "remaining": sum(remaining.values()),
        "remainingByRule": dict(sorted(remaining.items())),
        "ignored": ignored,
        "notes": notes,
    }
