"""``code_analysis``: lines, functions with their cyclomatic complexity (and nesting for
Python), classes and docstring coverage per file, totals, and the ten worst hotspots."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from agent_sdk import Task
from agentmesh.agents import _codetools as js
from agentmesh.agents.refactor._common import LOOPS, SCOPES, sources

BLOCKS = (*LOOPS, ast.If, ast.With, ast.AsyncWith, ast.Try, ast.Match)


def _complexity(node: ast.AST) -> tuple[int, int]:
    """(cyclomatic complexity, deepest block nesting) of a function, nested defs excluded."""
    score, deepest = 1, 0

    def visit(n: ast.AST, depth: int) -> None:
        nonlocal score, deepest
        for child in ast.iter_child_nodes(n):
            if isinstance(child, SCOPES):
                continue
            if isinstance(child, ast.If | ast.IfExp | ast.ExceptHandler | ast.match_case):
                score += 1
            elif isinstance(child, (*LOOPS, ast.comprehension)):
                score += 1 + len(getattr(child, "ifs", []))
            elif isinstance(child, ast.BoolOp):
                score += len(child.values) - 1
            elif_chain = isinstance(n, ast.If) and child in n.orelse and isinstance(child, ast.If)
            nested = isinstance(child, BLOCKS) and not elif_chain
            deepest = max(deepest, depth + nested)
            visit(child, depth + nested)

    visit(node, 0)
    return score, deepest


def _py_metrics(text: str) -> dict[str, Any]:
    tree = ast.parse(text)
    functions, public, documented = [], 0, 0
    for node in ast.walk(tree):
        defs = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        if isinstance(node, defs) and not node.name.startswith("_"):
            public += 1
            documented += ast.get_docstring(node) is not None
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            complexity, nesting = _complexity(node)
            loc = (node.end_lineno or node.lineno) - node.lineno + 1
            functions.append(
                {"name": node.name, "line": node.lineno, "loc": loc}
                | {"complexity": complexity, "nesting": nesting}
            )
    classes = sum(isinstance(n, ast.ClassDef) for n in ast.walk(tree))
    sloc = sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))
    coverage = round(documented / public, 3) if public else 1.0
    return {"language": "python", "sloc": sloc, "functions": functions, "classes": classes} | {
        "docstringCoverage": coverage,
        "public": public,
        "documented": documented,
    }


def _js_metrics(text: str) -> dict[str, Any]:
    fns = js.functions(text)
    functions = [
        {"name": f.name, "line": f.line, "loc": f.end_line - f.line + 1}
        | {"complexity": f.complexity}
        for f in fns
    ]
    classes = len(re.findall(r"(?<![\w$])class\s+[A-Za-z_$]", js.mask(text)))
    sloc = sum(1 for line in js.mask(text).splitlines() if line.strip())
    return {"sloc": sloc, "functions": functions, "classes": classes}


def analyze(task: Task, ws: Path) -> dict[str, Any]:
    """``code_analysis``: size, complexity and doc metrics per file, totals and hotspots."""
    root = js.existing_dir(ws, task.input.get("path"))
    python, scripts = sources(root)
    files: list[dict[str, Any]] = []
    hotspots: list[dict[str, Any]] = []
    for n, path in enumerate(python + scripts, 1):
        text = js.read_source(path)
        where = js.display(path, ws)
        metrics: dict[str, Any]
        if path.suffix in js.PY_SUFFIXES:
            try:
                metrics = _py_metrics(text)
            except SyntaxError as e:
                files.append({"file": where, "language": "python", "error": f"syntax: {e.msg}"})
                continue
        else:
            metrics = _js_metrics(text)
            metrics["language"] = "typescript" if path.suffix in js.TS_SUFFIXES else "javascript"
        fns = metrics["functions"]
        metrics["maxComplexity"] = max((f["complexity"] for f in fns), default=0)
        files.append({"file": where, "loc": text.count("\n") + bool(text)} | metrics)
        for f in fns:
            reasons = [
                why
                for why, hit in (
                    (f"complexity {f['complexity']}", f["complexity"] >= 10),
                    (f"{f['loc']} lines", f["loc"] >= 60),
                    (f"nesting {f.get('nesting', 0)}", f.get("nesting", 0) >= 4),
                )
                if hit
            ]
            if reasons:
                hotspots.append(
                    {"file": where, "name": f["name"], "line": f["line"]}
                    | {"complexity": f["complexity"], "loc": f["loc"], "reason": ", ".join(reasons)}
                )
        if n % 20 == 0:
            task.progress(n / (len(python) + len(scripts)), f"analysed {n} files")
    measured = [f for f in files if "error" not in f]
    all_fns = [fn for f in measured for fn in f["functions"]]
    public = sum(f.get("public", 0) for f in measured)
    documented = sum(f.get("documented", 0) for f in measured)
    totals = {
        "files": len(files),
        "loc": sum(f["loc"] for f in measured),
        "sloc": sum(f["sloc"] for f in measured),
        "functions": len(all_fns),
        "classes": sum(f["classes"] for f in measured),
        "avgComplexity": round(sum(f["complexity"] for f in all_fns) / len(all_fns), 2)
        if all_fns
        else 0,
        "maxComplexity": max((f["complexity"] for f in all_fns), default=0),
        "docstringCoverage": round(documented / public, 3) if public else None,
    }
    hotspots.sort(key=lambda h: (-h["complexity"], -h["loc"]))
    return {"files": files, "totals": totals, "hotspots": hotspots[:10]}
