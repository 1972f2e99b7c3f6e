"""Reviewer agent: lints, runs tests, reviews documentation and scans for security issues.

Read-only except for what the tools it runs write (pytest and node write nothing that
stays; ruff runs with ``--no-cache``). Paths are absolute or relative to the workspace and
must stay inside it; outputs name files relative to the workspace.

- ``code_linting`` {files: glob | [glob | dir | file, ...] (``{a,b}`` and ``**`` work),
  or path: dir} -> {issues[{file, line, column, rule, message, severity (error|warning),
  fixable, source (ruff|jslint)}], counts{total, errors, warnings, fixable, byRule},
  filesChecked, notes[]}. Python through ``ruff check``; JS/TS through ``agentmesh.agents._codetools``.
  A glob whose base directory does not exist matches nothing (not an error).
- ``test_execution`` {path: dir, testPattern? | pattern?: glob for JS/TS tests (default
  ``**/*.{test,spec}.{js,mjs,cjs,jsx,ts,tsx,mts}``; ``.js`` in a pattern also matches
  ``.mjs``/``.cjs``)} -> {passed (at least one test ran, none failed), total, succeeded,
  failed, skipped, durationMs, runner, output (tail), reason?, skippedFiles[]}. Python tests
  (``test_*.py``) run with ``python -m pytest``, JS with ``node --test``; TypeScript tests
  are reported as skipped (node cannot run them without a compiler).
- ``documentation_review`` {path: dir} -> {score 0..100, findings[{file, line?, kind,
  severity, message}], files[markdown files], readme, sections{install, usage},
  coverage{documented, total, ratio, undocumented[]}}
- ``security_scanning`` {path: dir | files: like code_linting} -> {findings[{file, line,
  rule, severity (critical|high|medium), message}], counts{total, critical, high, medium,
  byRule}, filesScanned}. Secrets (AWS keys, private keys, hard-coded credentials,
  high-entropy strings; never echoed) and dangerous calls (Python via ``ast``; JS/TS on
  code with comments and strings masked).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from agent_sdk import Agent, Task, TaskError
from agentmesh.agents import _codetools as js
from agentmesh.agents import _sandbox

TEST_TIMEOUT = 120.0
OUTPUT_TAIL = 4000
DEFAULT_TEST_PATTERN = "**/*.{test,spec}.{js,mjs,cjs,jsx,ts,tsx,mts}"
_NODE_RUNNABLE = frozenset({".js", ".mjs", ".cjs"})
_LINTABLE = js.JS_SUFFIXES | js.PY_SUFFIXES
_SCANNABLE = _LINTABLE | {".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".env", ".sh"}
_SCAN_NAMES = frozenset({"Dockerfile", ".npmrc", ".pypirc"})
_LOCKFILES = frozenset({"package-lock.json", "yarn.lock", "pnpm-lock.yaml", "poetry.lock"})
_PY_TEST = re.compile(r"test_.*\.py|.*_test\.py")
_INSTALL_HEADING = r"install|setup|getting started|requirements"
_INSTALL_COMMAND = (
    r"\b(?:npm (?:install|i|ci)|yarn(?: install)?|pnpm install|pip install|poetry install)\b"
)
_USAGE_HEADING = r"usage|example|run|quick ?start|how to|scripts|commands"
_USAGE_COMMAND = r"\b(?:npm (?:run|start|test)|yarn (?:dev|start|test)|npx|node|python -m|pytest)\s"


def _bad(message: str) -> TaskError:
    return TaskError(message, type="BadInput")


def _specs(inp: dict[str, Any]) -> list[str]:
    """The ``files`` and ``path`` inputs as a list of specs (one is required)."""
    files, path = inp.get("files"), inp.get("path")
    if files is None and path is None:
        raise _bad("files: required (a glob or a list of globs/paths) unless path is given")
    specs: list[str] = []
    if isinstance(files, str):
        specs.append(files)
    elif isinstance(files, list) and all(isinstance(f, str) for f in files):
        specs += files
    elif files is not None:
        raise _bad("files: must be a string or a list of strings")
    if path is not None:
        if not isinstance(path, str):
            raise _bad("path: must be a string")
        specs.append(path)
    return specs


def _collect(workspace: Path, specs: list[str], keep: js.Keep) -> list[Path]:
    found: set[Path] = set()
    for spec in specs:
        found.update(js.glob(workspace, spec, "files", keep))
    return sorted(found)


def _is_test_file(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts[:-1]
    return bool(
        _PY_TEST.fullmatch(path.name)
        or re.search(r"\.(test|spec)\.\w+$", path.name)
        or {"tests", "test", "__tests__"} & set(parts)
    )


# ------------------------------------------------------------------ linting


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


def lint_paths(task: Task, workspace: Path, files: list[Path]) -> dict[str, Any]:
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


# -------------------------------------------------------------------- tests


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
    for d in (root, *root.parents):
        for name, mark in marks.items():
            f = d / name
            if f.is_file() and mark in f.read_text(errors="replace"):
                return True
        if d == workspace:
            break
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
    if code is None:
        result |= {"failed": max(failed, 1), "error": f"timed out after {TEST_TIMEOUT:.0f} s"}
    elif code not in (0, 5) and failed == 0:
        result |= {"failed": 1, "error": f"pytest exited with code {code}"}
    return result


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
    if code is None:
        result |= {"failed": max(failed, 1), "error": f"timed out after {TEST_TIMEOUT:.0f} s"}
    elif code != 0 and failed == 0:
        result |= {"failed": 1, "error": f"node --test exited with code {code}"}
    return result


def run_tests(task: Task, workspace: Path) -> dict[str, Any]:
    raw = task.input.get("path")
    pattern = task.input.get("testPattern", task.input.get("pattern"))
    if pattern is None:
        pattern = DEFAULT_TEST_PATTERN
    if not isinstance(pattern, str) or not pattern:
        raise _bad("testPattern: must be a non-empty glob string")
    root = js.inside(workspace, raw, "path")
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
    python = js.walk(root, lambda p: _PY_TEST.fullmatch(p.name) is not None)
    if not (runnable or typescript or python):
        return empty | {"reason": "no tests found"}
    started = time.monotonic()
    runs = []
    if python:
        task.progress(0.1, f"pytest: {len(python)} test files")
        runs.append(_pytest(root, workspace.resolve()))
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


# ------------------------------------------------------------ documentation


def _links(text: str) -> list[tuple[int, str]]:
    found = []
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if fenced:
            continue
        for target in re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", line):
            found.append((n, target))
        m = re.match(r"\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", line)
        if m:
            found.append((n, m.group(1)))
    return found


def _py_public(tree: ast.Module) -> list[tuple[str, int, bool]]:
    """(name, line, documented) of public top-level defs and public methods."""
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name.startswith("_"):
                continue
            out.append((node.name, node.lineno, ast.get_docstring(node) is not None))
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and not (
                        item.name.startswith("_")
                    ):
                        documented = ast.get_docstring(item) is not None
                        out.append((f"{node.name}.{item.name}", item.lineno, documented))
    return out


def review_docs(task: Task, workspace: Path) -> dict[str, Any]:
    root = js.existing_dir(workspace, task.input.get("path"))
    if not root.is_dir():
        raise _bad("path: must be a directory")
    findings: list[dict[str, Any]] = []
    score = 100.0

    def finding(path: Path, kind: str, severity: str, message: str, line: int = 0) -> None:
        f: dict[str, Any] = {"file": js.display(path, workspace), "kind": kind}
        findings.append(
            f | ({"line": line} if line else {}) | {"severity": severity, "message": message}
        )

    readmes = sorted(
        p for p in root.iterdir() if p.is_file() and p.name.lower().startswith("readme")
    )
    sections = {"install": False, "usage": False}
    if not readmes:
        finding(root, "readme", "error", "no README in the project root")
        score -= 40
    else:
        text = readmes[0].read_text(errors="replace")
        headings = " | ".join(re.findall(r"^#{1,6}\s+(.+)$", text, re.M)).lower()
        # A section counts when a heading names it or the text shows its commands.
        sections["install"] = bool(
            re.search(_INSTALL_HEADING, headings) or re.search(_INSTALL_COMMAND, text)
        )
        sections["usage"] = bool(
            re.search(_USAGE_HEADING, headings) or re.search(_USAGE_COMMAND, text)
        )
        for name, present in sections.items():
            if not present:
                finding(readmes[0], "readme", "warning", f"README has no {name} section")
                score -= 10
        if sum(1 for line in text.splitlines() if line.strip()) < 5:
            finding(readmes[0], "readme", "info", "README is very short (under 5 lines)")
            score -= 5
    task.progress(0.3, "README checked")
    markdown = js.walk(root, lambda p: p.suffix.lower() in (".md", ".markdown"))
    broken = 0
    for md in markdown:
        for line, target in _links(md.read_text(errors="replace")):
            if re.match(r"[a-zA-Z][\w+.-]*:|#|//", target):
                continue
            local = unquote(target.split("#")[0].split("?")[0])
            dest = (root / local.lstrip("/")) if local.startswith("/") else md.parent / local
            # A link out of the workspace is not followed (its target's existence is
            # none of this review's business): it counts as broken.
            if local and not (_sandbox.is_inside(workspace, dest) and dest.exists()):
                finding(md, "broken-link", "warning", f"broken relative link {target!r}", line)
                broken += 1
    score -= min(20, 5 * broken)
    task.progress(0.6, "links checked")
    documented, total, undocumented = 0, 0, []
    sources = js.walk(root, lambda p: p.suffix in _LINTABLE and not _is_test_file(p, root))
    for path in sources:
        text = path.read_text(errors="replace")
        if path.suffix in js.PY_SUFFIXES:
            try:
                items = _py_public(ast.parse(text))
            except SyntaxError as e:
                finding(path, "syntax", "warning", f"cannot parse: {e.msg}", e.lineno or 0)
                continue
        else:
            items = [(f.name, f.line, f.documented) for f in js.functions(text) if f.exported]
        for name, line, ok in items:
            total += 1
            documented += ok
            if not ok:
                undocumented.append(f"{js.display(path, workspace)}:{line} {name}")
    ratio = documented / total if total else 1.0
    score -= (1 - ratio) * 30
    if undocumented:
        what = "docstrings" if any(p.suffix == ".py" for p in sources) else "JSDoc comments"
        finding(
            root, "coverage", "info", f"{len(undocumented)} of {total} exported symbols lack {what}"
        )
    return {
        "score": max(0, min(100, round(score))),
        "findings": findings,
        "files": [js.display(p, workspace) for p in markdown],
        "readme": js.display(readmes[0], workspace) if readmes else None,
        "sections": sections,
        "coverage": {
            "documented": documented,
            "total": total,
            "ratio": round(ratio, 3),
            "undocumented": undocumented[:50],
        },
    }


# ----------------------------------------------------------------- security

_SECRETS = [
    (
        "aws-access-key",
        "critical",
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"),
    ),
    (
        "private-key",
        "critical",
        re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY"),
    ),
    (
        "hardcoded-secret",
        "high",
        re.compile(
            r"(?i)[\w.-]*(?:api[_-]?key|secret|passw(?:or)?d|token|auth[_-]?key)[\w-]*[\"']?"
            r"\s*[:=]\s*([\"'])([^\"'\n]{8,})\1"
        ),
    ),
]
_PLACEHOLDER = re.compile(
    r"(?i)^(\*+|x+|\.+|<[^>]*>|\$\{.*\}|(your|example|placeholder|changeme).*)$"
)
_TOKEN = re.compile(r"[\"'`]([A-Za-z0-9+/=_-]{24,})[\"'`]")
_PY_CALLS = {
    "eval": ("py-eval", "eval() runs arbitrary code"),
    "exec": ("py-exec", "exec() runs arbitrary code"),
    "pickle.loads": ("py-pickle", "unpickling untrusted data runs arbitrary code"),
    "pickle.load": ("py-pickle", "unpickling untrusted data runs arbitrary code"),
    "marshal.loads": ("py-pickle", "unmarshalling untrusted data is unsafe"),
    "os.system": ("py-os-system", "os.system() runs a shell command"),
    "os.popen": ("py-os-system", "os.popen() runs a shell command"),
    "yaml.unsafe_load": ("py-yaml-load", "yaml.unsafe_load() can construct arbitrary objects"),
}
_SUBPROCESS = frozenset({"run", "call", "check_call", "check_output", "Popen"})
_JS_CALLS = [
    ("js-eval", re.compile(r"(?<![\w$.])eval\s*\("), "eval() runs arbitrary code"),
    ("js-new-function", re.compile(r"\bnew\s+Function\s*\("), "new Function() compiles code"),
    (
        "js-inner-html",
        re.compile(r"\.(?:inner|outer)HTML\s*\+?=(?!=)"),
        "assigning HTML invites XSS",
    ),
    (
        "react-dangerously-set-inner-html",
        re.compile(r"\bdangerouslySetInnerHTML\b"),
        "dangerouslySetInnerHTML renders unsanitised HTML",
    ),
    (
        "js-document-write",
        re.compile(r"\bdocument\.write(?:ln)?\s*\("),
        "document.write() invites XSS",
    ),
]


def _entropy(s: str) -> float:
    return -sum(c / len(s) * math.log2(c / len(s)) for c in Counter(s).values())


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _py_dangers(tree: ast.AST) -> list[tuple[int, str, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if name in _PY_CALLS:
            found.append((node.lineno, *_PY_CALLS[name]))
        elif name.startswith("subprocess.") and name.split(".")[-1] in _SUBPROCESS:
            shell = kw.get("shell")
            if isinstance(shell, ast.Constant) and shell.value is True:
                found.append((node.lineno, "py-subprocess-shell", "subprocess with shell=True"))
        elif name == "yaml.load":
            loader = _dotted(kw["Loader"]) if "Loader" in kw else ""
            if len(node.args) < 2 and not loader.endswith(("SafeLoader", "CSafeLoader")):
                found.append((node.lineno, "py-yaml-load", "yaml.load() without SafeLoader"))
    return found


def _js_dangers(text: str) -> list[tuple[int, str, str]]:
    masked = js.mask(text)
    found = []
    for rule, regex, message in _JS_CALLS:
        for m in regex.finditer(masked):
            found.append((masked.count("\n", 0, m.start()) + 1, rule, message))
    if re.search(r"[\"'](?:node:)?child_process[\"']", text):
        for m in re.finditer(r"(?<![\w$])(?:exec|execSync)\s*\(", masked):
            line = masked.count("\n", 0, m.start()) + 1
            found.append((line, "js-child-process-exec", "child_process exec runs a shell command"))
    return found


def _secrets(text: str) -> list[tuple[int, str, str, str]]:
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        hits = []
        for rule, severity, regex in _SECRETS:
            for m in regex.finditer(line):
                value = m.group(2) if m.lastindex else m.group(0)
                if rule == "hardcoded-secret" and _PLACEHOLDER.match(value):
                    continue
                hits.append(
                    (n, rule, severity, f"possible {rule.replace('-', ' ')} ({value[:4]}...)")
                )
        if not hits:
            for m in _TOKEN.finditer(line):
                token = m.group(1)
                hexish = re.fullmatch(r"[0-9a-fA-F]+", token) is not None
                threshold = 3.5 if hexish else 4.2
                mixed = re.search(r"\d", token) and re.search(r"[A-Za-z]", token)
                if mixed and _entropy(token) >= threshold and (not hexish or len(token) >= 32):
                    message = f"high-entropy string ({token[:4]}...)"
                    hits.append((n, "high-entropy-string", "medium", message))
        found += hits
    return found


def scan(task: Task, workspace: Path) -> dict[str, Any]:
    specs = _specs(task.input)

    def keep(p: Path) -> bool:
        scannable = p.suffix in _SCANNABLE or p.name in _SCAN_NAMES or p.name.startswith(".env")
        return scannable and p.name not in _LOCKFILES and p.stat().st_size <= 1_000_000

    files = _collect(workspace, specs, keep)
    findings: list[dict[str, Any]] = []
    for n, path in enumerate(files, 1):
        text = path.read_text(errors="replace")
        dangers: list[tuple[int, str, str]] = []
        if path.suffix in js.PY_SUFFIXES:
            with contextlib.suppress(SyntaxError):
                dangers = _py_dangers(ast.parse(text))
        elif path.suffix in js.JS_SUFFIXES:
            dangers = _js_dangers(text)
        hits = _secrets(text) + [(line, rule, "high", msg) for line, rule, msg in dangers]
        where = js.display(path, workspace)
        keys = ("line", "rule", "severity", "message")
        findings += [{"file": where} | dict(zip(keys, hit, strict=True)) for hit in hits]
        if n % 25 == 0:
            task.progress(n / len(files), f"scanned {n}/{len(files)} files")
    findings.sort(key=lambda f: (f["file"], f["line"], f["rule"]))
    severities = Counter(f["severity"] for f in findings)
    counts: dict[str, Any] = {
        "total": len(findings),
        **{s: severities[s] for s in ("critical", "high", "medium")},
    }
    counts["byRule"] = dict(sorted(Counter(f["rule"] for f in findings).items()))
    return {"findings": findings, "counts": counts, "filesScanned": len(files)}


# -------------------------------------------------------------------- agent


def create(coordinator: str | None = None, *, workspace: Path, max_concurrency: int = 4) -> Agent:
    """The reviewer agent; it reads (and runs tests) under ``workspace``."""
    workspace = Path(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    agent = Agent("reviewer", coordinator, type="reviewer", max_concurrency=max_concurrency)

    @agent.capability("code_linting", description="lint Python (ruff) and JS/TS files")
    def code_linting(task: Task) -> dict[str, Any]:
        files = _collect(workspace, _specs(task.input), lambda p: p.suffix in _LINTABLE)
        return lint_paths(task, workspace, files)

    @agent.capability("test_execution", description="run a project's pytest or node tests")
    def test_execution(task: Task) -> dict[str, Any]:
        return run_tests(task, workspace)

    @agent.capability(
        "documentation_review", description="score README, doc comments and Markdown links"
    )
    def documentation_review(task: Task) -> dict[str, Any]:
        return review_docs(task, workspace)

    @agent.capability("security_scanning", description="find secrets and dangerous calls")
    def security_scanning(task: Task) -> dict[str, Any]:
        return scan(task, workspace)

    return agent
