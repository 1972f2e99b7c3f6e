"""``security_scanning``: secrets (AWS keys, private keys, hard-coded credentials,
high-entropy strings; never echoed whole) and dangerous calls (Python through ``ast``,
JS/TS on code with comments and strings masked)."""

from __future__ import annotations

import ast
import contextlib
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

from agent_sdk import Task
from agentmesh.agents import _codetools as js
from agentmesh.agents.reviewer._select import LINTABLE, collect, specs

_SCANNABLE = LINTABLE | {".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".env", ".sh"}
_SCAN_NAMES = frozenset({"Dockerfile", ".npmrc", ".pypirc"})
_LOCKFILES = frozenset({"package-lock.json", "yarn.lock", "pnpm-lock.yaml", "poetry.lock"})

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
    """``security_scanning``: secrets and dangerous calls in the files the task names."""
    wanted = specs(task.input)

    def keep(p: Path) -> bool:
        scannable = p.suffix in _SCANNABLE or p.name in _SCAN_NAMES or p.name.startswith(".env")
        return scannable and p.name not in _LOCKFILES and p.stat().st_size <= 1_000_000

    files = collect(workspace, wanted, keep)
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
