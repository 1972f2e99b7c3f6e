"""A small reader of TypeScript types, and JavaScript values of them.

``parse_signature``/``parse_member`` read specs like ``"(value: number) => string"`` or
``"items: NavItem[]"`` into ``Signature``/``Member``; ``type_names``/``spec_types`` find the
names that must be declared; ``default_js``/``sample_js``/``js_check`` give a value of a
type, an argument for a test, and an assertion that the default holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BUILTINS = (
    "string number boolean void null undefined unknown never object bigint symbol true false "
    "Date Promise Array ReadonlyArray Record Partial Required Readonly Pick Omit Map Set Error "
    "RegExp JSX ReactNode Event MouseEvent HTMLElement RequestInit Response URL Blob File "
    "Parameters ReturnType"
)
BUILTIN_TYPES = frozenset(_BUILTINS.split())
SAFE_TYPE = re.compile(r"^[\w$<>\[\]{}()|&,.:;?'\" =-]*$")


@dataclass(frozen=True, slots=True)
class Member:
    """A parameter or property: ``name?: type`` or ``...name: type``."""

    name: str
    type: str
    optional: bool = False
    rest: bool = False


@dataclass(frozen=True, slots=True)
class Signature:
    """``<generics>(params) => returns``."""

    params: tuple[Member, ...] = ()
    returns: str = "void"
    generics: str = ""


@dataclass(frozen=True, slots=True)
class Spec:
    """One thing to generate: kind is component, service, utility, hook or module."""

    name: str
    kind: str
    description: str = ""
    props: tuple[Member, ...] = ()
    methods: tuple[tuple[str, Signature], ...] = ()
    signature: Signature | None = None


def check_type(text: str) -> str:
    """``text`` if it reads as a type (no comment or line breaks); ValueError otherwise."""
    if re.search(r"[\x00-\x1f]", text):
        raise ValueError(f"not a type (control characters): {text[:60]!r}")
    text = " ".join(text.split())
    if len(text) > 200 or not SAFE_TYPE.match(text) or "//" in text or "/*" in text:
        raise ValueError(f"not a type: {text[:60]!r}")
    return text or "unknown"


def _bracket(text: str, i: int) -> int:
    """+1 where ``text[i]`` opens a bracket, -1 where it closes one (the ``>`` of ``=>``
    does not), else 0."""
    ch = text[i]
    if ch in "([{<":
        return 1
    if ch in ")]}" or (ch == ">" and text[i - 1 : i] != "="):
        return -1
    return 0


def split_top(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside brackets (``=>`` is not a bracket)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if step := _bracket(text, i):
            depth += step
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _closing(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        step = _bracket(text, i)
        depth += step
        if step < 0 and depth == 0:
            return i
    raise ValueError(f"unbalanced brackets in {text!r}")


def parse_member(text: str) -> Member:
    """``"name?: type"`` read (a missing type is ``unknown``); ValueError for a bad name."""
    name, colon, typ = text.strip().partition(":")
    name = name.strip()
    rest = name.startswith("...")
    optional = name.endswith("?")
    name = name.removeprefix("...").removesuffix("?").strip()
    if not re.fullmatch(r"[A-Za-z_$][\w$]*", name):
        raise ValueError(f"not a parameter name: {name!r}")
    return Member(name, check_type(typ) if colon else "unknown", optional, rest)


def parse_signature(text: str) -> Signature:
    """``"<T>(a: T, b?: number) => T[]"`` (``: R`` instead of ``=> R`` works too)."""
    s = check_type(text)
    generics = ""
    if s.startswith("<"):
        end = _closing(s, 0)
        generics, s = s[1:end].strip(), s[end + 1 :].strip()
    if not s.startswith("("):
        raise ValueError(f"a signature starts with '(': {text!r}")
    end = _closing(s, 0)
    inner, rest = s[1:end], s[end + 1 :].strip()
    returns = rest[2:] if rest.startswith("=>") else rest[1:] if rest.startswith(":") else rest
    params = tuple(parse_member(p) for p in split_top(inner, ",") if p.strip())
    return Signature(params, check_type(returns.strip() or "void"), generics)


def generic_names(generics: str) -> set[str]:
    """The type parameter names of ``"T, K extends keyof T"``."""
    return {p.strip().split()[0] for p in split_top(generics, ",") if p.strip()}


def type_names(*types: str) -> list[str]:
    """Capitalised type names that are neither built in nor React's, in first-use order."""
    seen: dict[str, None] = {}
    for t in types:
        for name in re.findall(r"(?<![\w$.'\"])([A-Z][\w$]*)", t):
            if name not in BUILTIN_TYPES:
                seen.setdefault(name)
    return list(seen)


def spec_types(spec: Spec) -> list[str]:
    """The type names ``spec`` uses that need a declaration (its generics excluded)."""
    types = [m.type for m in spec.props]
    sigs = [s for _, s in spec.methods] + ([spec.signature] if spec.signature else [])
    local = set().union(*(generic_names(s.generics) for s in sigs)) if sigs else set()
    for s in sigs:
        types += [p.type for p in s.params] + [s.returns]
    return [n for n in type_names(*types) if n not in local]


def strip_parens(t: str) -> str:
    """``t`` without the parentheses that enclose all of it."""
    t = t.strip()
    while t.startswith("(") and _closing(t, 0) == len(t) - 1:
        t = t[1:-1].strip()
    return t


def default_js(t: str, declared: set[str]) -> str | None:
    """A JavaScript expression of type ``t``, or None (generic, or unknown shape)."""
    t = strip_parens(t)
    alternatives = [a.strip() for a in split_top(t, "|")]
    if len(alternatives) > 1:
        for pick in ("null", "undefined"):
            if pick in alternatives:
                return pick
        return next((d for a in alternatives if (d := default_js(a, declared))), None)
    if "=>" in t and t.startswith("("):
        ret = default_js(parse_signature(t).returns, declared)
        return None if ret is None else f"() => {arrow_value(ret)}"
    simple = {"string": '""', "number": "0", "boolean": "false", "null": "null"}
    simple |= {"undefined": "undefined", "void": "undefined", "unknown": "undefined"}
    if t in simple:
        return simple[t]
    if re.fullmatch(r"-?\d+(\.\d+)?|'[^']*'|\"[^\"]*\"|true|false", t):
        return t
    if t.endswith("[]") or t.startswith(("Array<", "ReadonlyArray<")):
        return "[]"
    if t.startswith(("Record<", "Partial<")) or t in ("object", "{}") or t in declared:
        return "{}"
    if t.startswith("Map<"):
        return "new Map()"
    if t.startswith("Set<"):
        return "new Set()"
    if t == "Date":
        return "new Date(0)"
    return None


def passthrough(sig: Signature, returns: str) -> Member | None:
    """The first parameter when a function of ``sig`` returning ``returns`` can hand it
    back unchanged (it is required and of that very type), else None."""
    first = sig.params[0] if sig.params else None
    return first if first is not None and first.type == returns and not first.optional else None


def arrow_value(value: str) -> str:
    """``value`` as an arrow function's expression body (object literals in parentheses)."""
    return f"({value})" if value.startswith("{") else value


def sample_js(t: str, declared: set[str]) -> str:
    """An argument of type ``t`` for a generated test."""
    t = strip_parens(t.partition("|")[0].strip()) if "|" in t and "=>" not in t else t
    samples = {"string": '"example"', "number": "42", "boolean": "true", "Date": "new Date(0)"}
    if t in samples:
        return samples[t]
    if "=>" in t:
        return "() => undefined"
    return default_js(t, declared) or "{}"


def js_check(returns: str, expr: str, declared: set[str]) -> str:
    """A node:assert statement that holds for the default ``default_js(returns)``."""
    value = default_js(returns, declared)
    if value is None:
        return f"assert.throws(() => {expr}, /not implemented/);"
    if value in ("[]", "{}", "new Map()", "new Set()", "new Date(0)"):
        return f"assert.deepStrictEqual({expr}, {value});"
    if value.startswith("() =>"):
        return f'assert.strictEqual(typeof {expr}, "function");'
    return f"assert.strictEqual({expr}, {value});"
