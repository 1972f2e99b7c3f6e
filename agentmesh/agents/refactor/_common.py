"""What the refactor agent's capabilities share: the source files under a path, optional
list inputs, ruff's safe fixes with what they fixed, and the AST node kinds that count as
loops and scopes."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from typing import Any

from agentmesh.agents import _codetools as js
from agentmesh.agents._inputs import bad

LOOPS = (ast.For, ast.AsyncFor, ast.While)
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def sources(root: Path) -> tuple[list[Path], list[Path]]:
    """(Python files, JS/TS files) under ``root``, as ``_codetools.walk`` finds them."""
    files = js.walk(root, lambda p: p.suffix in js.PY_SUFFIXES | js.JS_SUFFIXES)
    return [f for f in files if f.suffix in js.PY_SUFFIXES], [
        f for f in files if f.suffix in js.JS_SUFFIXES
    ]


def optional_list(inp: dict[str, Any], field: str) -> list[dict[str, Any]] | None:
    """``inp[field]``: None, or a list of objects (BadInput otherwise)."""
    value = inp.get(field)
    if value is not None and not (
        isinstance(value, list) and all(isinstance(v, dict) for v in value)
    ):
        raise bad(f"{field}: must be a list of objects")
    return value


def ruff_fix(
    files: list[Path], ws: Path, select: str | None = None, extra: tuple[str, ...] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Apply ruff's safe fixes; return (what was fixed per file and rule, what is left)."""
    if not files or js.ruff_executable() is None:
        return [], []
    before = js.ruff_issues(files, ws, select, extra)
    args = ["check", "--fix", "--exit-zero", *extra]
    js.ruff(args + ([f"--select={select}"] if select else []), files, ws)
    after = js.ruff_issues(files, ws, select, extra)

    def key(d: dict[str, Any]) -> tuple[str, str]:
        return js.display(Path(d["filename"]).resolve(), ws), d.get("code") or "syntax-error"

    fixed = Counter(map(key, before)) - Counter(map(key, after))
    return [{"file": f, "rule": r, "count": n} for (f, r), n in sorted(fixed.items())], after
