"""The functions of JS/TS source (declarations, arrow functions bound to a name,
methods) with their extent, export, JSDoc and cyclomatic complexity."""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentmesh.agents._codetools._mask import IDENT, mask, match_close

_KEYWORDS = frozenset({"if", "for", "while", "switch", "catch", "function", "return", "with"})
_FUNCTION = re.compile(
    rf"^[ \t]*(?P<ex>export\s+(?:default\s+)?)?(?:async\s+)?function\s*\*?\s*(?P<n>{IDENT})?"
    rf"\s*(?:<[^>\n]*>)?\s*\("
    rf"|^[ \t]*(?P<ex2>export\s+)?(?:const|let|var)\s+(?P<n2>{IDENT})\s*(?::[^=\n]+)?=\s*"
    rf"(?:async\s+)?(?:function\b|\([^()]*\)\s*(?::[^=\n]+)?=>|{IDENT}\s*=>)"
    rf"|^[ \t]*(?:(?:public|private|protected|static|async|get|set)\s+)*(?P<n3>{IDENT})"
    rf"\s*\([^()]*\)\s*(?::[^{{\n;]+)?\{{",
    re.M,
)
_BRANCH = re.compile(r"(?<![\w$])(?:if|for|while|case|catch)(?![\w$])|&&|\|\||(?<!\?)\?(?![.?:])")


@dataclass(frozen=True, slots=True)
class JsFunction:
    """A function of JS/TS source; ``line`` and ``end_line`` are 1-based."""

    name: str
    line: int
    end_line: int
    exported: bool
    documented: bool  # a ``/** ... */`` comment right above
    complexity: int  # 1 + branches (if, loops, case, catch, &&, ||, ?:)


def functions(src: str) -> list[JsFunction]:
    """Functions, arrow functions bound to a name, and methods of ``src``."""
    masked = mask(src)
    reexported = set(re.findall(rf"export\s+default\s+({IDENT})\s*;?\s*$", masked, re.M))
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
