"""The JS/TS lint rules (``RULES``) and ``fix``, which applies the fixable ones only where
the rewrite keeps behaviour (see the package docstring for each rule's conditions)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from agentmesh.agents._codetools._mask import IDENT, mask, match_close
from agentmesh.agents._codetools._vars import analyze_vars, convert_vars

MAX_LEN = 120
# rule -> (severity, description)
RULES: dict[str, tuple[str, str]] = {
    "no-console": ("warning", "Unexpected console statement"),
    "no-var": ("error", "Unexpected var, use let or const instead"),
    "no-explicit-any": ("warning", "Unexpected any. Specify a different type"),
    "no-trailing-spaces": ("warning", "Trailing spaces not allowed"),
    "eol-last": ("warning", "Newline required at end of file"),
    "max-len": ("warning", f"Line longer than {MAX_LEN} characters"),
    "no-debugger": ("error", "Unexpected 'debugger' statement"),
    "eqeqeq": ("error", "Use strict equality"),
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One lint finding; ``line`` and ``column`` are 1-based."""

    line: int
    column: int
    rule: str
    message: str
    severity: str
    fixable: bool


_CONSOLE = re.compile(r"(?<![\w$])console\s*\.\s*(\w+)\s*\(")
_ANY = re.compile(r"(:\s*|(?<![\w$])as\s+|<\s*|\|\s*|,\s*)any(?![\w$])")
_EQ = re.compile(r"(?<![=!<>])(==|!=)(?!=)")


def _whole_statement(mlines: list[str], idx: int, pattern: str) -> bool:
    """True when line ``idx`` is exactly one statement matching ``pattern`` and the code
    before it ends a statement or opens a block (so removing the line is safe)."""
    stripped = mlines[idx].strip()
    if not re.fullmatch(pattern, stripped):
        return False
    if (
        "(" in stripped
        and match_close(stripped, stripped.index("(")) != len(stripped.rstrip(";")) - 1
    ):
        return False
    for k in range(idx - 1, -1, -1):
        before = mlines[k].strip()
        if before:
            return before[-1] in "{;}"
    return True


def _eq_safe(mline: str, start: int, end: int) -> bool:
    left, right = mline[:start], mline[end:]
    return bool(re.search(r"typeof\s+[\w$.\[\]]+\s*$", left) or re.match(r"\s*typeof\b", right))


_UNKNOWN_SAFE_BEFORE = re.compile(
    r"(?:typeof\s+|[!=]==\s*|\$\{\s*|(?:String|Boolean|JSON\.stringify|console\.\w+)\(\s*)$"
)
_UNKNOWN_SAFE_AFTER = re.compile(r"\s*(?:[!=]==|instanceof\b|\})")


def _unknown_ok(masked: str, at: int, prefix: str) -> bool:
    """``name: any`` -> ``name: unknown`` still type-checks when every later use of
    ``name`` accepts ``unknown`` (typeof, ===, templates, String(), console.*())."""
    if not prefix.startswith(":"):
        return False
    name = re.search(rf"({IDENT})\??\s*$", masked[: at - len(prefix)])
    if name is None:
        return False
    uses = re.compile(rf"(?<![\w$.]){re.escape(name.group(1))}(?![\w$])")
    for use in uses.finditer(masked, at):
        before = masked[max(0, use.start() - 30) : use.start()]
        if not (
            _UNKNOWN_SAFE_BEFORE.search(before) or _UNKNOWN_SAFE_AFTER.match(masked, use.end())
        ):
            return False
    return True


def lint(src: str, *, typescript: bool = False) -> list[Issue]:
    """Issues of ``src`` (1-based lines and columns), in source order."""
    lines = src.split("\n")
    masked = mask(src)
    mlines = masked.split("\n")
    line_offsets = [0]
    for mline in mlines[:-1]:
        line_offsets.append(line_offsets[-1] + len(mline) + 1)
    var_lines: dict[int, bool] = {}
    for decl in analyze_vars(src):
        var_lines[src.count("\n", 0, decl.offset)] = decl.let_ok
    issues: list[Issue] = []

    def add(idx: int, col: int, rule: str, fixable: bool, detail: str = "") -> None:
        severity, message = RULES[rule]
        issues.append(Issue(idx + 1, col + 1, rule, message + detail, severity, fixable))

    for idx, (line, mline) in enumerate(zip(lines, mlines, strict=True)):
        body = line.rstrip("\r")
        if len(body) > MAX_LEN:
            add(idx, MAX_LEN, "max-len", False, f" ({len(body)})")
        trailing = re.search(r"[ \t]+$", body)
        if trailing and mline[trailing.start()] != "_":
            add(idx, trailing.start(), "no-trailing-spaces", True)
        for m in re.finditer(r"(?<![\w$.])debugger(?![\w$])", mline):
            add(idx, m.start(), "no-debugger", _whole_statement(mlines, idx, r"debugger;?"))
        for m in _CONSOLE.finditer(mline):
            fixable = m.group(1) in ("log", "debug", "info") and _whole_statement(
                mlines, idx, r"console\s*\.\s*\w+\s*\(.*\)\s*;?"
            )
            add(idx, m.start(), "no-console", fixable, f" (console.{m.group(1)})")
        for m in re.finditer(r"(?<![\w$.])var\s+", mline):
            add(idx, m.start(), "no-var", var_lines.get(idx, False))
        if typescript:
            for m in _ANY.finditer(mline):
                at = line_offsets[idx] + m.end() - 3
                add(idx, m.end() - 3, "no-explicit-any", _unknown_ok(masked, at, m.group(1)))
        for m in _EQ.finditer(mline):
            op = m.group(1)
            fixable = _eq_safe(mline, m.start(), m.end())
            add(idx, m.start(), "eqeqeq", fixable, f" (saw '{op}', expected '{op}=')")
    if src and not src.endswith("\n"):
        add(len(lines) - 1, len(lines[-1]), "eol-last", True)
    return sorted(issues, key=lambda i: (i.line, i.column))


def fix(
    src: str, *, typescript: bool = False, rules: Iterable[str] | None = None
) -> tuple[str, Counter[str]]:
    """``src`` with the safely fixable issues fixed, and how many per rule.

    Idempotent: fixing the result again changes nothing."""
    wanted = set(RULES) if rules is None else set(rules)
    done: Counter[str] = Counter()
    if "no-var" in wanted:
        src, done["no-var"] = convert_vars(src)
    edits: list[tuple[int, int, str, str]] = []  # (start, end, replacement, rule)
    masked = mask(src)
    offsets = [0]
    for line in masked.split("\n")[:-1]:
        offsets.append(offsets[-1] + len(line) + 1)
    for issue in lint(src, typescript=typescript):
        if not issue.fixable or issue.rule not in wanted:
            continue
        at = offsets[issue.line - 1] + issue.column - 1
        if issue.rule == "eqeqeq":
            edits.append((at, at + 2, masked[at : at + 2] + "=", issue.rule))
        elif issue.rule == "no-explicit-any":
            edits.append((at, at + 3, "unknown", issue.rule))
    for start, end, text, rule in sorted(edits, reverse=True):
        src = src[:start] + text + src[end:]
        done[rule] += 1
    drops: dict[int, str] = {}
    trailing: set[int] = set()
    for issue in lint(src, typescript=typescript):
        if not issue.fixable or issue.rule not in wanted:
            continue
        if issue.rule in ("no-console", "no-debugger"):
            drops[issue.line] = issue.rule
        elif issue.rule == "no-trailing-spaces":
            trailing.add(issue.line)
    kept = []
    for number, line in enumerate(src.split("\n"), 1):
        if number in drops:
            done[drops[number]] += 1
            continue
        if number in trailing:
            cr = "\r" if line.endswith("\r") else ""
            kept.append(line.rstrip("\r").rstrip(" \t") + cr)
            done["no-trailing-spaces"] += 1
        else:
            kept.append(line)
    src = "\n".join(kept)
    if "eol-last" in wanted and src and not src.endswith("\n"):
        src += "\n"
        done["eol-last"] += 1
    return src, +done
