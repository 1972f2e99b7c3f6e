"""``performance_optimization``: slow patterns in Python (string ``+=`` and list
membership in loops, ``range(len())``, ``len()`` in ``while`` tests, ruff's PERF and C4
rules) and JS/TS (async ``forEach``, ``await`` in loops, nested loops over one array,
``RegExp`` built in loops, synchronous JSON reads, JSON deep clones, ``.filter(f)[0]``),
each with a suggestion; with ``apply``, ruff's safe fixes and ``.filter(f)[0]`` ->
``.find(f)``."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from agent_sdk import Task
from agentmesh.agents import _codetools as js
from agentmesh.agents._inputs import bad
from agentmesh.agents.refactor._common import LOOPS, SCOPES, optional_list, ruff_fix, sources

_PY_PERF_RULES = "PERF,C4"
HINTS = {
    "string-concat-in-loop": "collect the parts in a list and ''.join() them once",
    "list-membership-in-loop": "membership in a list is O(n) per test; build a set first",
    "len-in-loop-condition": "len() runs on every iteration; hoist it if the size is fixed",
    "range-len": "iterate over the sequence directly, or use enumerate()",
    "async-foreach": "forEach does not wait for async callbacks; use for...of with await, "
    "or await Promise.all(items.map(...))",
    "await-in-loop": "awaiting in a loop serialises the work; use Promise.all for independent items",
    "nested-loop-same-array": "nested loops over one array are O(n^2); index it in a Map or Set",
    "regexp-in-loop": "build the RegExp once, outside the loop",
    "sync-json-parse": "a synchronous read and parse blocks the event loop; use "
    "fs.promises.readFile (or stream large JSON)",
    "json-deep-clone": "use structuredClone() instead of a JSON round trip",
    "filter-first": "use .find(): it stops at the first match and builds no array",
}


def _in_loops(tree: ast.AST) -> list[tuple[ast.AST, ast.AST]]:
    """(loop, node) for every node inside a loop body, not crossing into nested scopes."""
    found = []

    def inner(loop: ast.AST, n: ast.AST) -> None:
        for child in ast.iter_child_nodes(n):
            if not isinstance(child, SCOPES):
                found.append((loop, child))
                inner(loop, child)

    for loop in ast.walk(tree):
        if isinstance(loop, LOOPS):
            for stmt in [*loop.body, *([loop.test] if isinstance(loop, ast.While) else [])]:
                found.append((loop, stmt))
                inner(loop, stmt)
    return found


def _py_perf(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, kind) of slow patterns; names bound to a str or list literal are tracked."""
    strings, lists = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            value, name = node.value, node.targets[0].id
            if isinstance(value, ast.JoinedStr) or (
                isinstance(value, ast.Constant) and isinstance(value.value, str)
            ):
                strings.add(name)
            elif isinstance(value, ast.List | ast.ListComp) or (
                isinstance(value, ast.Call) and _called(value) == "list"
            ):
                lists.add(name)
    found: set[tuple[int, str]] = set()
    for loop, node in _in_loops(tree):
        if (
            isinstance(node, ast.AugAssign)
            and isinstance(node.op, ast.Add)
            and isinstance(node.target, ast.Name)
            and (node.target.id in strings or isinstance(node.value, ast.JoinedStr))
        ):
            found.add((node.lineno, "string-concat-in-loop"))
        elif isinstance(node, ast.Compare) and any(
            isinstance(o, ast.In | ast.NotIn) for o in node.ops
        ):
            if any(
                (isinstance(r, ast.Name) and r.id in lists)
                or (isinstance(r, ast.List) and len(r.elts) >= 5)
                for r in node.comparators
            ):
                found.add((node.lineno, "list-membership-in-loop"))
        elif (
            isinstance(node, ast.Call)
            and _called(node) == "len"
            and isinstance(loop, ast.While)
            and node in ast.walk(loop.test)
        ):
            found.add((node.lineno, "len-in-loop-condition"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.For)
            and isinstance(node.iter, ast.Call)
            and _called(node.iter) == "range"
            and len(node.iter.args) == 1
            and isinstance(node.iter.args[0], ast.Call)
            and _called(node.iter.args[0]) == "len"
        ):
            found.add((node.lineno, "range-len"))
    return sorted(found)


def _called(call: ast.Call) -> str:
    return call.func.id if isinstance(call.func, ast.Name) else ""


_AWAIT = re.compile(r"(?<![\w$.])await(?![\w$])")
_REGEXP = re.compile(r"\bnew\s+RegExp\s*\(")


def _js_loops(masked: str) -> list[tuple[int, int, str]]:
    """(start, end, iterated array or "") of every loop body and array callback."""
    loops = []
    for m in re.finditer(r"(?<![\w$.])(for|while)\s*\(", masked):
        close = js.match_close(masked, m.end() - 1)
        header = masked[m.end() : close]
        k = close + 1
        while k < len(masked) and masked[k].isspace():
            k += 1
        end = js.match_close(masked, k) if masked[k : k + 1] == "{" else masked.find(";", k)
        of = re.search(r"\s(?:of|in)\s+([\w$.]+)\s*$", header) or re.search(
            r";\s*[\w$]+\s*<=?\s*([\w$.]+)\.length", header
        )
        loops.append((m.start(), end, of.group(1) if of else ""))
    callbacks = r"([\w$.]+)\s*\.\s*(?:forEach|map|filter|some|every|find|reduce|flatMap)\s*\("
    for m in re.finditer(callbacks, masked):
        loops.append((m.start(), js.match_close(masked, m.end() - 1), m.group(1)))
    return loops


_JS_PATTERNS = {
    "async-foreach": r"\.forEach\s*\(\s*async\b",
    "sync-json-parse": r"JSON\.parse\s*\(\s*(?:fs\.)?readFileSync\s*\(",
    "json-deep-clone": r"JSON\.parse\s*\(\s*JSON\.stringify\s*\(",
    "filter-first": r"\.filter\s*\(",
}


def _js_perf(text: str) -> list[tuple[int, str]]:
    """(line, kind) of slow patterns, found on code with comments and strings masked."""
    masked = js.mask(text)

    def line(at: int) -> int:
        return masked.count("\n", 0, at) + 1

    found = set()
    for kind, pattern in _JS_PATTERNS.items():
        for m in re.finditer(pattern, masked):
            if kind != "filter-first" or _filter_first_end(masked, m) is not None:
                found.add((line(m.start()), kind))
    loops = _js_loops(masked)
    for start, end, array in loops:
        body = masked[start:end]
        if body.startswith(("for", "while")):
            found |= {(line(start + m.start()), "await-in-loop") for m in _AWAIT.finditer(body)}
        found |= {(line(start + m.start()), "regexp-in-loop") for m in _REGEXP.finditer(body)}
        for inner, _, other in loops:
            if array and other == array and start < inner < end:
                found.add((line(inner), "nested-loop-same-array"))
    return sorted(found)


def _filter_first_end(masked: str, m: re.Match[str]) -> int | None:
    close = js.match_close(masked, m.end() - 1)
    index = re.match(r"\s*\[\s*0\s*\]", masked[close + 1 :])
    return close + 1 + index.end() if index else None


def _apply_find(text: str) -> tuple[str, int]:
    """``.filter(f)[0]`` -> ``.find(f)``, from the end so offsets stay valid."""
    masked = js.mask(text)
    edits = []
    for m in re.finditer(r"\.filter\s*\(", masked):
        end = _filter_first_end(masked, m)
        if end is not None:
            close = js.match_close(masked, m.end() - 1)
            edits.append((m.start(), m.end() - 1, close + 1, end))
    for start, paren, close, end in reversed(edits):
        text = text[:start] + ".find" + text[paren:close] + text[end:]
    return text, len(edits)


def _entry(file: str, line: int, kind: str, suggestion: str = "") -> dict[str, Any]:
    return {"file": file, "line": line, "kind": kind} | {
        "suggestion": suggestion or HINTS[kind],
        "applied": False,
    }


def optimize(task: Task, ws: Path) -> dict[str, Any]:
    """``performance_optimization``: slow patterns found (and, with ``apply``, the safe
    rewrites applied)."""
    root = js.existing_dir(ws, task.input.get("path"))
    issues = optional_list(task.input, "issues")
    apply = task.input.get("apply", False)
    if not isinstance(apply, bool):
        raise bad("apply: must be a boolean")
    python, scripts = sources(root)
    found: list[dict[str, Any]] = []
    changed: set[str] = set()
    for path in python:
        try:
            tree = ast.parse(js.read_source(path))
        except SyntaxError:
            continue
        found += [_entry(js.display(path, ws), line, kind) for line, kind in _py_perf(tree)]
    task.progress(0.3, "Python checked")
    if python and js.ruff_executable() is not None:
        before = js.ruff_issues(python, ws, _PY_PERF_RULES)
        left: set[tuple[str, str, int]] | None = None
        if apply:  # ruff applies only its safe fixes; what disappeared was applied
            fixed, after = ruff_fix(python, ws, _PY_PERF_RULES)
            changed |= {f["file"] for f in fixed}
            left = {(d["filename"], d.get("code") or "", d["location"]["row"]) for d in after}
        for d in before:
            key = (d["filename"], d.get("code") or "", d["location"]["row"])
            entry = _entry(js.display(Path(key[0]).resolve(), ws), key[2], key[1], d["message"])
            found.append(entry | {"applied": left is not None and key not in left})
    task.progress(0.6, "ruff PERF/C4 checked")
    for path in scripts:
        text = js.read_source(path)
        where = js.display(path, ws)
        entries = [_entry(where, line, kind) for line, kind in _js_perf(text)]
        if apply:
            new, count = _apply_find(text)
            if count:
                js.write_source(path, new)
                changed.add(where)
                for e in entries:
                    e["applied"] = e["kind"] == "filter-first"
        found += entries
    found.sort(key=lambda o: (o["file"], o["line"], o["kind"]))
    return {
        "optimizations": found,
        "count": len(found),
        "applied": sum(o["applied"] for o in found),
        "filesChanged": sorted(changed),
        "issuesConsidered": len(issues or []),
    }
