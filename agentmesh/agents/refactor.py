"""Refactor agent: measures code, applies safe fixes, suggests optimisations, modernises.

Python goes through ``ast`` and ``ruff`` (``--fix`` applies ruff's safe fixes only); JS/TS
through ``agentmesh.agents._codetools``. Every write is under ``path``, which must lie in the workspace;
outputs name files relative to the workspace. Every capability is idempotent: a second run
changes nothing and reports nothing applied.

- ``code_analysis`` {path: dir | file} -> {files[{file, language, loc, sloc, functions[{name,
  line, loc, complexity, nesting?}], classes, maxComplexity, docstringCoverage?}], totals{files,
  loc, sloc, functions, classes, avgComplexity, maxComplexity, docstringCoverage},
  hotspots[{file, name, line, complexity, loc, reason}]}
- ``code_transformation`` {path, issues?: code_linting issues, testResults?: test_execution
  output} -> {applied[{file, rule, count}], filesChanged[], remaining, remainingByRule,
  ignored, notes[]}. With issues: fixes the files they name (JS/TS: the rules they name;
  Python: ruff's safe fixes, then ``ruff format``). With neither: every source file. With
  testResults: makes sure a test runner is configured (``scripts.test`` in package.json,
  ``[tool.pytest.ini_options]`` in pyproject.toml); failing tests themselves stay in
  ``remaining``.
- ``performance_optimization`` {path, issues?, apply?: bool (false)} -> {optimizations[{file,
  line, kind, suggestion, applied}], count, applied, filesChanged[]}. Python: string
  ``+=`` and list membership in loops, ``range(len())``, ``len()`` in ``while`` tests, ruff's
  PERF and C4 rules (their safe fixes applied with apply). JS/TS: async ``forEach``,
  ``await`` in loops, nested loops over one array, ``RegExp`` built in loops, synchronous
  JSON reads, JSON deep clones, ``.filter(f)[0]`` (rewritten to ``.find(f)`` with apply).
- ``modernization`` {path, target?: "py3NN" (py311)} -> {changes[{file, rule, count}],
  filesChanged[], remaining, target}: ``ruff check --select UP --fix``; JS ``var`` ->
  ``let``/``const`` where safe.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from agent_sdk import Agent, Task, TaskError
from agentmesh.agents import _codetools as js
from agentmesh.agents import _sandbox

_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_BLOCKS = (*_LOOPS, ast.If, ast.With, ast.AsyncWith, ast.Try, ast.Match)
_NPM_DEFAULT_TEST = "no test specified"


def _bad(message: str) -> TaskError:
    return TaskError(message, type="BadInput")


def _sources(root: Path) -> tuple[list[Path], list[Path]]:
    files = js.walk(root, lambda p: p.suffix in js.PY_SUFFIXES | js.JS_SUFFIXES)
    return [f for f in files if f.suffix in js.PY_SUFFIXES], [
        f for f in files if f.suffix in js.JS_SUFFIXES
    ]


def _optional_list(inp: dict[str, Any], field: str) -> list[dict[str, Any]] | None:
    value = inp.get(field)
    if value is not None and not (
        isinstance(value, list) and all(isinstance(v, dict) for v in value)
    ):
        raise _bad(f"{field}: must be a list of objects")
    return value


def _ruff_fix(
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


# ----------------------------------------------------------------- analysis


def _complexity(node: ast.AST) -> tuple[int, int]:
    """(cyclomatic complexity, deepest block nesting) of a function, nested defs excluded."""
    score, deepest = 1, 0

    def visit(n: ast.AST, depth: int) -> None:
        nonlocal score, deepest
        for child in ast.iter_child_nodes(n):
            if isinstance(child, _SCOPES):
                continue
            if isinstance(child, ast.If | ast.IfExp | ast.ExceptHandler | ast.match_case):
                score += 1
            elif isinstance(child, (*_LOOPS, ast.comprehension)):
                score += 1 + len(getattr(child, "ifs", []))
            elif isinstance(child, ast.BoolOp):
                score += len(child.values) - 1
            elif_chain = isinstance(n, ast.If) and child in n.orelse and isinstance(child, ast.If)
            nested = isinstance(child, _BLOCKS) and not elif_chain
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
    root = js.existing_dir(ws, task.input.get("path"))
    python, scripts = _sources(root)
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


# ----------------------------------------------------------- transformation


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
    root = js.existing_dir(ws, task.input.get("path"))
    issues = _optional_list(task.input, "issues")
    results = task.input.get("testResults")
    if results is not None and not isinstance(results, dict):
        raise _bad("testResults: must be an object (test_execution's output)")
    python, scripts = _sources(root)
    rules: dict[Path, set[str]] | None = None
    ignored = 0
    if issues is not None:
        rules = {}
        for issue in issues:
            if not isinstance(issue.get("file"), str):
                raise _bad("issues: every issue needs a file (string)")
            path = js.inside(ws, issue["file"], "issues[].file")
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
    fixed, left = _ruff_fix(python, ws)
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


# -------------------------------------------------------------- performance

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
            if not isinstance(child, _SCOPES):
                found.append((loop, child))
                inner(loop, child)

    for loop in ast.walk(tree):
        if isinstance(loop, _LOOPS):
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
    root = js.existing_dir(ws, task.input.get("path"))
    issues = _optional_list(task.input, "issues")
    apply = task.input.get("apply", False)
    if not isinstance(apply, bool):
        raise _bad("apply: must be a boolean")
    python, scripts = _sources(root)
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
            fixed, after = _ruff_fix(python, ws, _PY_PERF_RULES)
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


# ------------------------------------------------------------- modernization


def modernize(task: Task, ws: Path) -> dict[str, Any]:
    root = js.existing_dir(ws, task.input.get("path"))
    target = task.input.get("target", "py311")
    if not isinstance(target, str) or not re.fullmatch(r"py3\d{1,2}", target):
        raise _bad("target: must look like 'py311'")
    python, scripts = _sources(root)
    changes, left = _ruff_fix(python, ws, "UP", (f"--target-version={target}",))
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


# -------------------------------------------------------------------- agent


def create(coordinator: str | None = None, *, workspace: Path, max_concurrency: int = 4) -> Agent:
    """The refactor agent; it rewrites files only under ``workspace``."""
    workspace = Path(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    agent = Agent("refactor", coordinator, type="refactor", max_concurrency=max_concurrency)

    @agent.capability("code_analysis", description="complexity, size and doc metrics per file")
    def code_analysis(task: Task) -> dict[str, Any]:
        return analyze(task, workspace)

    @agent.capability("code_transformation", description="apply safe lint fixes and formatting")
    def code_transformation(task: Task) -> dict[str, Any]:
        return transform(task, workspace)

    @agent.capability(
        "performance_optimization", description="find (and optionally fix) slow patterns"
    )
    def performance_optimization(task: Task) -> dict[str, Any]:
        return optimize(task, workspace)

    @agent.capability("modernization", description="pyupgrade rules (ruff UP) and JS var -> let")
    def modernization(task: Task) -> dict[str, Any]:
        return modernize(task, workspace)

    return agent
