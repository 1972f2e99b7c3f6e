"""Masking JS/TS source so rules see code only: comments blanked to spaces, string,
template and regex contents replaced by ``_`` (offsets, delimiters, ``${...}`` code and
newlines kept), and bracket matching on the result.

A best effort: JSX text with an apostrophe masks the rest of its line, which can only hide
issues, never invent them.
"""

from __future__ import annotations

import re

IDENT = r"[A-Za-z_$][\w$]*"
_REGEX_PREV = set("(,=:[!&|?{};+-*%~^")  # not < or >: JSX closing tags are not regexes


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


def brace_depths(masked: str) -> list[int]:
    """The ``{}`` nesting depth at each offset of ``masked`` (before the character there)."""
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
