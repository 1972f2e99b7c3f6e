"""``documentation_review``: a score out of 100 for a project's documentation: a README
with install and usage sections, Markdown links that resolve inside the workspace, and
docstrings (Python) or JSDoc comments (JS/TS) on exported symbols."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from agent_sdk import Task
from agentmesh.agents import _codetools as js
from agentmesh.agents import _sandbox
from agentmesh.agents._inputs import bad
from agentmesh.agents.reviewer._select import LINTABLE, is_test_file

_INSTALL_HEADING = r"install|setup|getting started|requirements"
_INSTALL_COMMAND = (
    r"\b(?:npm (?:install|i|ci)|yarn(?: install)?|pnpm install|pip install|poetry install)\b"
)
_USAGE_HEADING = r"usage|example|run|quick ?start|how to|scripts|commands"
_USAGE_COMMAND = r"\b(?:npm (?:run|start|test)|yarn (?:dev|start|test)|npx|node|python -m|pytest)\s"


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
    """``documentation_review``: a score from the README, relative links and doc coverage."""
    root = js.existing_dir(workspace, task.input.get("path"))
    if not root.is_dir():
        raise bad("path: must be a directory")
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
    sources = js.walk(root, lambda p: p.suffix in LINTABLE and not is_test_file(p, root))
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
