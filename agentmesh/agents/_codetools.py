"""What the reviewer and refactor agents share: JS/TS lint rules and the source tree.

No Node linter is available offline, so the JS/TS rules are plain Python over the text.
``mask`` blanks comments and string contents (offsets and newlines kept), so the rules
and fixers look at code only; it is a best effort (JSX text with an apostrophe masks the
rest of its line, which can only hide issues, never invent them).

Rules (``RULES``): ``no-console``, ``no-var``, ``no-explicit-any`` (TS only),
``no-trailing-spaces``, ``eol-last``, ``max-len`` (> 120), ``no-debugger``, ``eqeqeq``.
``fix`` applies the fixable ones, only where the rewrite keeps behaviour:

- ``var`` -> ``let`` when no name is redeclared, used before its declaration, read
  outside its block, or captured by a closure in a loop (``const`` too on request);
- ``==`` -> ``===`` only next to ``typeof``; ``== null`` and the rest stay flagged;
- ``console.log/debug/info`` and ``debugger`` lines only when the call is a whole
  statement after ``{``, ``;`` or ``}`` (never the body of a brace-less ``if``);
- ``name: any`` -> ``name: unknown`` only when every later use of ``name`` accepts
  ``unknown`` (typeof, ===, templates, String(), console); ``as any`` stays flagged;
- trailing blanks outside template literals; the final newline.

The second half finds files: workspace-confined paths, ``{a,b}`` and ``**`` globs that
never walk into ``node_modules``, and ``ruff`` (found next to the interpreter or on PATH;
run ``--isolated`` unless the project has its own ruff config).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_sdk import TaskError
from agentmesh.agents import _sandbox

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
TS_SUFFIXES = frozenset({".ts", ".tsx", ".mts", ".cts"})
JS_SUFFIXES = frozenset({".js", ".jsx", ".mjs", ".cjs"}) | TS_SUFFIXES
PY_SUFFIXES = frozenset({".py", ".pyi"})
SKIP_DIRS = frozenset(
    {"node_modules", "dist", "build", "coverage", "__pycache__", "venv", "site-packages"}
)
Keep = Callable[[Path], bool] | None
_IDENT = r"[A-Za-z_$][\w$]*"
_REGEX_PREV = set("(,=:[!&|?{};+-*%~^")  # not < or >: JSX closing tags are not regexes


@dataclass(frozen=True, slots=True)
class Issue:
    line: int
    column: int
    rule: str
    message: str
    severity: str
    fixable: bool


# ------------------------------------------------------------------ masking


def mask(src: str) -> str:
    """``src`` with comments blanked to spaces and string, template and regex contents
    replaced by ``_`` (delimiters, ``${...}`` code and newlines kept)."""
    out = list(src)
    n, i, depth, prev = len(src), 0, 0, ""
    templates: list[int] = []  # brace depth at each open ``${``

    def fill(a: int, b: int, ch: str) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = ch

    def template(start: int) -> int:  # src[start] opens template text; returns resume index
        j = start
        while j < n and src[j] != "`" and not (src[j] == "$" and src[j + 1 : j + 2] == "{"):
            j += 2 if src[j] == "\\" else 1
        fill(start, j, "_")
        if j < n and src[j] == "$":
            templates.append(depth)
            return j + 2
        return j + 1

    while i < n:
        c, nxt = src[i], src[i + 1 : i + 2]
        if c == "/" and nxt == "/":
            j = src.find("\n", i)
            j = n if j < 0 else j
            fill(i, j, " ")
            i = j
        elif c == "/" and nxt == "*":
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            fill(i, j, " ")
            i = j
        elif c in "'\"":
            j = i + 1
            while j < n and src[j] not in (c, "\n"):
                j += 2 if src[j] == "\\" else 1
            fill(i + 1, j, "_")
            i, prev = j + 1, c
        elif c == "`":
            i, prev = template(i + 1), "`"
        elif c == "}" and templates and depth == templates[-1]:
            templates.pop()
            i, prev = template(i + 1), "`"
        elif c == "/" and (prev in _REGEX_PREV or prev == "" or _ends_keyword(out, i)):
            j, in_class = i + 1, False
            while j < n and src[j] != "\n" and (in_class or src[j] != "/"):
                if src[j] == "\\":
                    j += 1
                elif src[j] in "[]":
                    in_class = src[j] == "["
                j += 1
            fill(i + 1, j, "_")
            i, prev = j + 1, "/"
        else:
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            if not c.isspace():
                prev = c
            i += 1
    return "".join(out)


def _ends_keyword(out: list[str], i: int) -> bool:
    head = "".join(out[max(0, i - 12) : i]).rstrip()
    return re.search(r"(?<![\w$])(return|typeof|case|yield|await|in|of)$", head) is not None


def _brace_depths(masked: str) -> list[int]:
    depths, d = [], 0
    for ch in masked:
        depths.append(d)
        d += ch == "{"
        d -= ch == "}"
    return depths


def match_close(masked: str, open_idx: int) -> int:
    """Index of the bracket closing the one at ``open_idx`` (len(masked) if none)."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    want, d = pairs[masked[open_idx]], 0
    for k in range(open_idx, len(masked)):
        if masked[k] == masked[open_idx]:
            d += 1
        elif masked[k] == want:
            d -= 1
            if d == 0:
                return k
    return len(masked)


# ------------------------------------------------------------------- var


@dataclass(frozen=True, slots=True)
class VarDecl:
    offset: int  # of the ``var`` keyword
    let_ok: bool
    const_ok: bool


def _declared_names(masked: str, start: int) -> tuple[list[str] | None, list[str], int]:
    """Names declared by the ``var`` list starting at ``start``, its pieces, and its end."""
    pieces, cur, j, pd, n = [], start, start, 0, len(masked)
    while j < n:
        ch = masked[j]
        if ch in "([{":
            pd += 1
        elif ch in ")]}":
            if pd == 0:
                break
            pd -= 1
        elif ch == ";" and pd == 0:
            break
        elif ch == "," and pd == 0:
            pieces.append(masked[cur:j])
            cur = j + 1
        elif ch == "\n" and pd == 0:
            tail = masked[start:j].rstrip()
            if tail and tail[-1] not in ",=+-*/&|?:(":
                break
        j += 1
    pieces.append(masked[cur:j])
    names = []
    for piece in pieces:
        m = re.match(rf"\s*({_IDENT})", piece)
        if m is None:  # destructuring
            return None, pieces, j
        names.append(m.group(1))
    return names, pieces, j


def analyze_vars(src: str) -> list[VarDecl]:
    masked = mask(src)
    depths = _brace_depths(masked)
    n = len(masked)
    found = []
    for m in re.finditer(r"(?<![\w$.])var\s+", masked):
        names, pieces, end = _declared_names(masked, m.end())
        found.append((m, names, pieces, end))
    counts = Counter(name for _, names, _, _ in found for name in names or [])
    decls = []
    for m, names, pieces, end in found:
        if not names:
            decls.append(VarDecl(m.start(), False, False))
            continue
        in_for = re.search(r"for\s*\(\s*$", masked[: m.start()]) is not None
        d = depths[m.start()]
        block_end = next((k for k in range(m.start(), n) if depths[k] < d), n)
        scope_end = block_end  # where the name stops being visible to a let
        if in_for:
            header_end = match_close(masked, masked.rfind("(", 0, m.start()))
            k = header_end + 1
            while k < n and masked[k].isspace():
                k += 1
            scope_end = match_close(masked, k) if masked[k : k + 1] == "{" else end
            body = masked[header_end:scope_end]
        else:
            opener = next((k for k in range(m.start(), -1, -1) if depths[k] < d), -1)
            body = masked[opener:block_end] if _is_loop_block(masked, opener) else ""
        closure = "=>" in body or re.search(r"\bfunction\b", body) is not None
        let_ok = not closure
        const_ok = not (in_for and ";" in masked[end : end + 1])
        for name, piece in zip(names, pieces, strict=True):
            use = re.compile(rf"(?<![\w$.]){re.escape(name)}(?![\w$])")
            if counts[name] > 1 or use.search(masked, 0, m.start()):
                let_ok = False
            if use.search(masked, max(scope_end, end)):
                let_ok = False
            assign = re.compile(
                rf"(?<![\w$.]){re.escape(name)}\s*(?:[-+*/%&|^]|\*\*|<<|>>>?|&&|\|\||\?\?)?=(?![=>])"
                rf"|(?:\+\+|--)\s*{re.escape(name)}(?![\w$])|(?<![\w$.]){re.escape(name)}\s*(?:\+\+|--)"
            )
            initialised = re.search(r"^\s*" + re.escape(name) + r"\s*(=(?!=)|\s(of|in)\s)", piece)
            if not initialised or assign.search(masked, end, block_end):
                const_ok = False
        decls.append(VarDecl(m.start(), let_ok, let_ok and const_ok))
    return decls


def _is_loop_block(masked: str, opener: int) -> bool:
    if opener < 0 or masked[opener] != "{":
        return False
    head = masked[:opener].rstrip()
    if re.search(r"(?<![\w$])do$", head):
        return True
    if not head.endswith(")"):
        return False
    d, k = 0, len(head) - 1
    while k >= 0:
        d += head[k] == ")"
        d -= head[k] == "("
        if d == 0:
            break
        k -= 1
    return re.search(r"(?<![\w$])(for|while)\s*$", head[:k]) is not None


def convert_vars(src: str, *, prefer_const: bool = False) -> tuple[str, int]:
    """Rewrite the ``var`` declarations that are safe to ``let`` (or ``const``)."""
    out, count = src, 0
    for decl in sorted(analyze_vars(src), key=lambda v: -v.offset):
        if decl.let_ok:
            word = "const" if prefer_const and decl.const_ok else "let"
            out = out[: decl.offset] + word + out[decl.offset + 3 :]
            count += 1
    return out, count


# ------------------------------------------------------------------- lint


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
    name = re.search(rf"({_IDENT})\??\s*$", masked[: at - len(prefix)])
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


# -------------------------------------------------------------- functions

_KEYWORDS = frozenset({"if", "for", "while", "switch", "catch", "function", "return", "with"})
_FUNCTION = re.compile(
    rf"^[ \t]*(?P<ex>export\s+(?:default\s+)?)?(?:async\s+)?function\s*\*?\s*(?P<n>{_IDENT})?"
    rf"\s*(?:<[^>\n]*>)?\s*\("
    rf"|^[ \t]*(?P<ex2>export\s+)?(?:const|let|var)\s+(?P<n2>{_IDENT})\s*(?::[^=\n]+)?=\s*"
    rf"(?:async\s+)?(?:function\b|\([^()]*\)\s*(?::[^=\n]+)?=>|{_IDENT}\s*=>)"
    rf"|^[ \t]*(?:(?:public|private|protected|static|async|get|set)\s+)*(?P<n3>{_IDENT})"
    rf"\s*\([^()]*\)\s*(?::[^{{\n;]+)?\{{",
    re.M,
)
_BRANCH = re.compile(r"(?<![\w$])(?:if|for|while|case|catch)(?![\w$])|&&|\|\||(?<!\?)\?(?![.?:])")


@dataclass(frozen=True, slots=True)
class JsFunction:
    name: str
    line: int
    end_line: int
    exported: bool
    documented: bool  # a ``/** ... */`` comment right above
    complexity: int  # 1 + branches (if, loops, case, catch, &&, ||, ?:)


def functions(src: str) -> list[JsFunction]:
    """Functions, arrow functions bound to a name, and methods of ``src``."""
    masked = mask(src)
    reexported = set(re.findall(rf"export\s+default\s+({_IDENT})\s*;?\s*$", masked, re.M))
    for group in re.findall(r"export\s*\{([^}]*)\}", masked):
        reexported |= {p.split()[0] for p in group.split(",") if p.strip()}
    found = []
    for m in _FUNCTION.finditer(masked):
        name = m.group("n") or m.group("n2") or m.group("n3") or "default"
        if name in _KEYWORDS:
            continue
        text, k = m.group(0), m.end()
        if text.endswith("("):
            k = match_close(masked, k - 1) + 1
        elif text.endswith("function"):
            k = match_close(masked, masked.find("(", k)) + 1
        if text.endswith("=>"):
            while k < len(masked) and masked[k] in " \t\n":
                k += 1
            end = match_close(masked, k) if masked[k : k + 1] in ("(", "{", "[") else k
            if end == k:
                end = masked.find("\n", k) % (len(masked) + 1)
        else:
            opener = k - 1 if text.endswith("{") else masked.find("{", k)
            end = match_close(masked, opener) if opener >= 0 else k
        start = m.start() + len(text) - len(text.lstrip())
        head = src[:start].rstrip()
        documented = head.endswith("*/") and src[head.rfind("/*") :].startswith("/**")
        exported = bool(m.group("ex") or m.group("ex2")) or name in reexported
        found.append(
            JsFunction(
                name=name,
                line=src.count("\n", 0, start) + 1,
                end_line=src.count("\n", 0, end) + 1,
                exported=exported,
                documented=documented,
                complexity=1 + len(_BRANCH.findall(masked, m.end(), end)),
            )
        )
    return found


# ------------------------------------------------------------ source tree


def inside(workspace: Path, raw: Any, field: str) -> Path:
    """``raw`` (absolute, or relative to ``workspace``) resolved; it must stay inside
    (``agentmesh.agents._sandbox.confine``: ``BadInput`` or ``PathOutsideWorkspace`` otherwise)."""
    return _sandbox.confine(workspace, raw, field)


def existing_dir(workspace: Path, raw: Any, field: str = "path") -> Path:
    path = inside(workspace, raw, field)
    if not path.exists():
        raise TaskError(f"{field}: {raw!r} does not exist", type="BadInput")
    return path


def display(path: Path, workspace: Path) -> str:
    """``path`` relative to the workspace, with forward slashes (what outputs carry)."""
    return path.relative_to(workspace.resolve()).as_posix()


def read_source(path: Path) -> str:
    """The text of ``path``, newlines and undecodable bytes kept (round-trips exactly)."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        return f.read()


def write_source(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        f.write(text)


def expand_braces(pattern: str) -> list[str]:
    """Shell-style ``{a,b}`` expansion (nested allowed): ``*.{js,ts}`` -> two patterns."""
    m = re.search(r"\{([^{}]*,[^{}]*)\}", pattern)
    if m is None:
        return [pattern]
    head, tail = pattern[: m.start()], pattern[m.end() :]
    return [p for alt in m.group(1).split(",") for p in expand_braces(head + alt + tail)]


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            j = pattern.index("]", i + 1)
            body = pattern[i + 1 : j].replace("\\", "\\\\")
            out, i = out + "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", j + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def walk(root: Path, keep: Keep = None) -> list[Path]:
    """Files under ``root`` (sorted), skipping dependency, build and hidden directories
    and symlinks (which could lead out of the workspace); ``keep(path)`` filters them."""
    if root.is_file():
        return [root] if keep is None or keep(root) else []
    found = []
    for base, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in files:
            path = Path(base, name)
            if not path.is_symlink() and (keep is None or keep(path)):
                found.append(path)
    return sorted(found)


def glob(workspace: Path, spec: str, field: str, keep: Keep = None) -> list[Path]:
    """Files that ``spec`` names: a glob (with ``{a,b}`` and ``**``), a directory (all of
    its files) or a file. A spec whose base directory does not exist names nothing."""
    found: list[Path] = []
    for pattern in expand_braces(spec):
        parts = pattern.split("/")
        cut = next((k for k, p in enumerate(parts) if any(c in p for c in "*?[")), len(parts))
        base = "/".join(parts[:cut]) or ("/" if pattern.startswith("/") else ".")
        root = inside(workspace, base, field)
        if not root.exists():
            continue
        if cut == len(parts):
            found += walk(root, keep)
            continue
        regex = _glob_regex("/".join(parts[cut:]))
        found += [p for p in walk(root, keep) if regex.match(p.relative_to(root).as_posix())]
    return sorted({_sandbox.real(p) for p in found if _sandbox.is_inside(workspace, p)})


# ------------------------------------------------------------------ ruff

_RUFF_CONFIGS = ("ruff.toml", ".ruff.toml")


def ruff_executable() -> str | None:
    sibling = Path(sys.executable).parent / "ruff"
    return str(sibling) if sibling.is_file() else shutil.which("ruff")


def _has_ruff_config(directory: Path, workspace: Path) -> bool:
    for d in (directory, *directory.parents):
        if any((d / name).is_file() for name in _RUFF_CONFIGS):
            return True
        pyproject = d / "pyproject.toml"
        if pyproject.is_file() and "[tool.ruff" in pyproject.read_text(errors="replace"):
            return True
        if d == workspace:
            break
    return False


def ruff(
    args: list[str], files: list[Path], workspace: Path, *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``ruff <args> <files>``; the project's own ruff config applies when it has one,
    otherwise ruff's defaults (``--isolated``, so no config above the workspace leaks in).
    TaskError ToolFailed when ruff itself fails."""
    exe = ruff_executable()
    if exe is None:
        raise TaskError("ruff is not installed", type="ToolMissing")
    common = Path(os.path.commonpath([str(f.parent) for f in files]))
    isolated = [] if _has_ruff_config(common, workspace.resolve()) else ["--isolated"]
    cmd = [exe, *args[:1], "--no-cache", *isolated, *args[1:], *map(str, files)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=common)
    except subprocess.TimeoutExpired:
        raise TaskError(f"ruff timed out after {timeout:.0f} s", type="ToolFailed") from None
    if proc.returncode not in (0, 1):
        raise TaskError(
            f"ruff failed ({proc.returncode}): {proc.stderr.strip()[-500:]}", type="ToolFailed"
        )
    return proc


def ruff_issues(
    files: list[Path], workspace: Path, select: str | None = None, extra: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """ruff's diagnostics of ``files``, as raw JSON objects."""
    if not files:
        return []
    args = ["check", "--output-format=json", "--exit-zero", *extra]
    if select:
        args.append(f"--select={select}")
    data = json.loads(ruff(args, files, workspace).stdout or "[]")
    return [d for d in data if isinstance(d, dict)]
