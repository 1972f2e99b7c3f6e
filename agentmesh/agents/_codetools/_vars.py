"""``var`` declarations and when ``let`` or ``const`` may replace them without a change
in behaviour."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from agentmesh.agents._codetools._mask import IDENT, brace_depths, mask, match_close


@dataclass(frozen=True, slots=True)
class VarDecl:
    """A ``var`` declaration and whether ``let`` (``const``) may replace it."""

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
        m = re.match(rf"\s*({IDENT})", piece)
        if m is None:  # destructuring
            return None, pieces, j
        names.append(m.group(1))
    return names, pieces, j


def analyze_vars(src: str) -> list[VarDecl]:
    """Every ``var`` declaration of ``src`` with whether ``let`` (and ``const``) keeps its
    behaviour: no name redeclared, used before its declaration, read outside its block, or
    captured by a closure in a loop."""
    masked = mask(src)
    depths = brace_depths(masked)
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
