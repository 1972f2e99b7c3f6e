"""``test_execution``: a project's Python tests under ``python -m pytest`` and its JS tests
under ``node --test``, counted from their summaries; TypeScript tests are reported as
skipped (node cannot run them without a compiler). Each runner has ``TEST_TIMEOUT``."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from agent_sdk import Task
from agentmesh.agents import _codetools as js
from agentmesh.agents import _sandbox
from agentmesh.agents._inputs import bad
from agentmesh.agents.reviewer._select import PY_TEST

TEST_TIMEOUT = 120.0
OUTPUT_TAIL = 4000
DEFAULT_TEST_PATTERN = "**/*.{test,spec}.{js,mjs,cjs,jsx,ts,tsx,mts}"
_NODE_RUNNABLE = frozenset({".js", ".mjs", ".cjs"})


def _tail(text: str) -> str:
    return text if len(text) <= OUTPUT_TAIL else "..." + text[-OUTPUT_TAIL:]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Return code (None on timeout) and combined output."""
    try:
        p = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TEST_TIMEOUT
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
        return None, out + f"\n[timed out after {TEST_TIMEOUT:.0f} s]"
    return p.returncode, p.stdout + p.stderr


def _has_pytest_config(root: Path, workspace: Path) -> bool:
    marks = {
        "pytest.ini": "",
        ".pytest.ini": "",
        "pyproject.toml": "[tool.pytest.ini_options]",
        "tox.ini": "[pytest]",
        "setup.cfg": "[tool:pytest]",
    }
    for d in _sandbox.ancestors(workspace, root):
        for name, mark in marks.items():
            f = d / name
            if f.is_file() and mark in f.read_text(errors="replace"):
                return True
    return False


def _pytest(root: Path, workspace: Path) -> dict[str, Any]:
    if importlib.util.find_spec("pytest") is None:
        return {"runner": "pytest", "error": "pytest is not installed for " + sys.executable}
    # Without a config of its own, pytest would climb out of the workspace to find one.
    config = [] if _has_pytest_config(root, workspace) else ["-c", os.devnull]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *config]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    paths = [str(p) for p in (root / "src", root) if p.is_dir()]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    code, out = _run([*cmd, "--rootdir", str(root)], root, env)
    counts: Counter[str] = Counter()
    for line in reversed(out.splitlines()):
        found = re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)", line)
        if found:
            for n, kind in found:
                counts[kind.rstrip("s") if kind.startswith("error") else kind] += int(n)
            break
    failed = counts["failed"] + counts["error"] + counts["xpassed"]
    result = {
        "runner": "pytest",
        "succeeded": counts["passed"],
        "failed": failed,
        "skipped": counts["skipped"] + counts["xfailed"],
        "output": out,
    }
    return _settle(result, code, ok=(0, 5))


def _node(root: Path, tests: list[Path]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        return {"runner": "node --test", "error": "node is not installed"}
    rel = [str(t.relative_to(root)) for t in tests]
    code, out = _run([node, "--test", "--test-reporter=tap", *rel], root)
    summary = {k: int(v) for k, v in re.findall(r"^# (\w+) (\d+)\s*$", out, re.M)}
    failed = summary.get("fail", 0) + summary.get("cancelled", 0)
    result = {
        "runner": "node --test",
        "succeeded": summary.get("pass", 0),
        "failed": failed,
        "skipped": summary.get("skipped", 0) + summary.get("todo", 0),
        "output": out,
    }
    return _settle(result, code, ok=(0,))


def _settle(result: dict[str, Any], code: int | None, ok: tuple[int, ...]) -> dict[str, Any]:
    """``result`` with a failure added when its runner timed out (``code`` None), or exited
    with a code outside ``ok`` while reporting no failed test."""
    failed = result["failed"]
    if code is None:
        return result | {"failed": max(failed, 1), "error": f"timed out after {TEST_TIMEOUT:.0f} s"}
    if code not in ok and failed == 0:
        return result | {"failed": 1, "error": f"{result['runner']} exited with code {code}"}
    return result


def run_tests(task: Task, workspace: Path) -> dict[str, Any]:
    """``test_execution``: the project's pytest and ``node --test`` tests, run and counted."""
    raw = task.input.get("path")
    pattern = task.input.get("testPattern", task.input.get("pattern"))
    if pattern is None:
        pattern = DEFAULT_TEST_PATTERN
    if not isinstance(pattern, str) or not pattern:
        raise bad("testPattern: must be a non-empty glob string")
    root = _sandbox.confine(workspace, raw, "path")
    empty: dict[str, Any] = {"passed": False, "total": 0, "succeeded": 0, "failed": 0, "skipped": 0}
    empty |= {"durationMs": 0, "runner": None, "output": "", "skippedFiles": []}
    if not root.is_dir():
        return empty | {"reason": f"{js.display(root, workspace)} is not a directory"}
    patterns = []
    for p in js.expand_braces(pattern):
        patterns += [p, p[:-3] + ".mjs", p[:-3] + ".cjs"] if p.endswith(".js") else [p]
    scripts = sorted({f for pat in patterns for f in js.glob(workspace, str(root / pat), "path")})
    runnable = [p for p in scripts if p.suffix in _NODE_RUNNABLE]
    typescript = [p for p in scripts if p.suffix not in _NODE_RUNNABLE]
    python = js.walk(root, lambda p: PY_TEST.fullmatch(p.name) is not None)
    if not (runnable or typescript or python):
        return empty | {"reason": "no tests found"}
    started = time.monotonic()
    runs = []
    if python:
        task.progress(0.1, f"pytest: {len(python)} test files")
        runs.append(_pytest(root, _sandbox.real(workspace)))
    if runnable:
        task.progress(0.5, f"node --test: {len(runnable)} test files")
        runs.append(_node(root, runnable))
    succeeded = sum(r.get("succeeded", 0) for r in runs)
    failed = sum(r.get("failed", 0) for r in runs)
    skipped = sum(r.get("skipped", 0) for r in runs) + len(typescript)
    errors = [f"{r['runner']}: {r['error']}" for r in runs if "error" in r]
    result = {
        "passed": succeeded > 0 and failed == 0 and not errors,
        "total": succeeded + failed + skipped,
        "succeeded": succeeded,
        "failed": failed,
        "skipped": skipped,
        "durationMs": int((time.monotonic() - started) * 1000),
        "runner": "+".join(r["runner"] for r in runs) or None,
        "output": _tail("\n".join(r.get("output", "") for r in runs)),
        "skippedFiles": [
            {"file": js.display(p, workspace), "reason": "TypeScript: no compiler to run it"}
            for p in typescript
        ],
    }
    if errors:
        result["reason"] = "; ".join(errors)
    elif succeeded + failed == 0:
        result["reason"] = (
            f"{len(typescript)} TypeScript test file(s) found, none runnable without a compiler"
            if typescript
            else "the test files contain no tests"
        )
    return result
