"""Project templates and source generators of the build agent (pure: text in, text out).

- ``PROJECTS``: project type -> ``(name, description) -> {relative path: content}``, for
  ``react-typescript``, ``react``, ``node-service``, ``static-site``, ``python-package``.
  Every JavaScript-side project keeps its runnable logic in ``.mjs`` files with a
  ``tests/*.test.mjs`` suite for ``node --test`` (TypeScript cannot run without a
  compiler, so ``src/utils/<name>.ts`` re-exports ``./<name>.mjs``, typed by JSDoc).
- A small TypeScript type reader (``parse_signature``, ``type_names``) so component specs
  like ``{props: {"items": "NavItem[]"}}`` or ``signature: "(value: number) => string"``
  become declarations that type-check: unknown type names are declared as
  ``Record<string, unknown>`` next to their use.
- Emitters for React components and hooks, service classes, utilities with their tests
  (real implementations for common names, defaults from the signature otherwise), and
  Python modules with pytest tests.

Generated code follows the reviewer's rules: no ``console``, no ``any``, no ``var``, no
trailing blanks, a final newline.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# ------------------------------------------------------------------ words


def words(text: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def pascal(text: str) -> str:
    return "".join(w[0].upper() + w[1:] for w in words(text))


def camel(text: str) -> str:
    p = pascal(text)
    return p[:1].lower() + p[1:]


def snake(text: str) -> str:
    return "_".join(w.lower() for w in words(text))


def py_name(text: str) -> str:
    """``snake(text)``, with a trailing underscore when that is a Python keyword."""
    name = snake(text)
    return f"{name}_" if keyword.iskeyword(name) or keyword.issoftkeyword(name) else name


def kebab(text: str) -> str:
    return "-".join(w.lower() for w in words(text))


def title(text: str) -> str:
    return " ".join(w[0].upper() + w[1:] for w in words(text))


def comment(text: str) -> str:
    """``text`` safe inside a /* */ or JSDoc comment and on one line."""
    return " ".join(text.replace("*/", "* /").split())


def docstring(text: str) -> str:
    return " ".join(text.replace("\\", "/").replace('"""', "'''").split())


# ------------------------------------------------------------- type model

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
    name: str
    type: str
    optional: bool = False
    rest: bool = False


@dataclass(frozen=True, slots=True)
class Signature:
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


def split_top(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside brackets (``=>`` is not a bracket)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{<":
            depth += 1
        elif ch in ")]}" or (ch == ">" and text[i - 1 : i] != "="):
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _closing(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch in "([{<":
            depth += 1
        elif ch in ")]}" or (ch == ">" and text[i - 1 : i] != "="):
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced brackets in {text!r}")


def parse_member(text: str) -> Member:
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
    types = [m.type for m in spec.props]
    sigs = [s for _, s in spec.methods] + ([spec.signature] if spec.signature else [])
    local = set().union(*(generic_names(s.generics) for s in sigs)) if sigs else set()
    for s in sigs:
        types += [p.type for p in s.params] + [s.returns]
    return [n for n in type_names(*types) if n not in local]


def _strip_parens(t: str) -> str:
    t = t.strip()
    while t.startswith("(") and _closing(t, 0) == len(t) - 1:
        t = t[1:-1].strip()
    return t


def default_js(t: str, declared: set[str]) -> str | None:
    """A JavaScript expression of type ``t``, or None (generic, or unknown shape)."""
    t = _strip_parens(t)
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


def arrow_value(value: str) -> str:
    """``value`` as an arrow function's expression body (object literals in parentheses)."""
    return f"({value})" if value.startswith("{") else value


def sample_js(t: str, declared: set[str]) -> str:
    """An argument of type ``t`` for a generated test."""
    t = _strip_parens(t.partition("|")[0].strip()) if "|" in t and "=>" not in t else t
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


# ------------------------------------------------------------ JS/TS emitters


def type_decls(names: list[str], ts: bool) -> list[str]:
    if ts:
        return [f"export type {n} = Record<string, unknown>;" for n in names]
    return [f"/** @typedef {{Record<string, unknown>}} {n} */" for n in names]


def _params(sig: Signature, ts: bool) -> str:
    out = []
    for p in sig.params:
        dots = "..." if p.rest else ""
        out.append(
            f"{dots}{p.name}{'?' if p.optional and ts else ''}" + (f": {p.type}" if ts else "")
        )
    return ", ".join(out)


def _jsdoc(description: str, sig: Signature, indent: str = "") -> list[str]:
    lines = (
        [f"{indent}/**", f"{indent} * {comment(description)}"] if description else [f"{indent}/**"]
    )
    lines += [f"{indent} * @template {g}" for g in generic_names(sig.generics)]
    for p in sig.params:
        name = f"[{p.name}]" if p.optional else p.name
        lines.append(f"{indent} * @param {{{p.type}}} {name}")
    lines += [f"{indent} * @returns {{{sig.returns}}}", f"{indent} */"]
    return lines


def function_body(name: str, sig: Signature, declared: set[str]) -> list[str]:
    returns = sig.returns
    inner = re.fullmatch(r"Promise<(.*)>", returns)
    if inner:
        returns = inner.group(1)
    if returns in ("void", "undefined"):
        return []
    first = sig.params[0] if sig.params else None
    if first is not None and first.type == returns and not first.optional:
        return [f"return {first.name};"]
    value = default_js(returns, declared)
    if value is None:
        return [f'throw new Error("{name} is not implemented");']
    return [f"return {value};"]


def js_function(
    name: str,
    sig: Signature,
    description: str,
    ts: bool,
    declared: set[str],
    body: list[str] | None = None,
    indent: str = "",
    method: bool = False,
) -> list[str]:
    is_async = sig.returns.startswith("Promise<")
    gen = f"<{sig.generics}>" if sig.generics and ts else ""
    ret = f": {sig.returns}" if ts else ""
    head = f"{'async ' if is_async else ''}{name}{gen}({_params(sig, ts)}){ret} {{"
    if not method:
        head = f"export {'async ' if is_async else ''}function " + head.removeprefix("async ")
    doc = [f"{indent}/** {comment(description)} */"] if ts and description else []
    doc = doc if ts else _jsdoc(description, sig, indent)
    lines = body if body is not None else function_body(name, sig, declared)
    if not lines:
        return [*doc, indent + head + "}"]
    return [*doc, indent + head, *(f"{indent}  {line}" for line in lines), indent + "}"]


def module_source(spec: Spec, ts: bool) -> str:
    """A module of functions, or a class when ``spec.kind`` is service."""
    names = spec_types(spec)
    declared = set(names)
    out = type_decls(names, ts)
    out += [""] if out else []
    if spec.kind == "service":
        out.append(f"/** {comment(spec.description or spec.name)} */")
        out.append(f"export class {spec.name} {{" + ("}" if not spec.methods else ""))
        for i, (method, sig) in enumerate(spec.methods):
            out += [""] if i else []
            out += js_function(method, sig, "", ts, declared, indent="  ", method=True)
        out += ["}"] if spec.methods else []
        out += ["", f"export default {spec.name};"]
    elif spec.methods:
        for i, (fn, sig) in enumerate(spec.methods):
            out += [""] if i else []
            out += js_function(fn, sig, spec.description if not i else "", ts, declared)
    else:
        out.append(f"/** {comment(spec.description or spec.name)} */")
        out.append(f"export const description = {json.dumps(spec.description or spec.name)};")
    return "\n".join(out) + "\n"


def _jsdoc_type(t: str) -> str:
    return re.sub(r"(?<![\w$.])ReactNode(?![\w$])", 'import("react").ReactNode', t)


def react_component(spec: Spec, ts: bool) -> str:
    names = [n for n in spec_types(spec) if n != "ReactNode"]
    uses_node = any("ReactNode" in m.type for m in spec.props)
    out = ['import type { ReactNode } from "react";', ""] if uses_node and ts else []
    out += type_decls(names, ts)
    out += [""] if names else []
    props_type = f"{spec.name}Props"
    if ts and spec.props:
        out.append(f"export interface {props_type} {{")
        out += [f"  {m.name}{'?' if m.optional else ''}: {m.type};" for m in spec.props]
        out += ["}", ""]
    rendered, used = [], []
    for m in spec.props:
        t = _strip_parens(m.type)
        if t == "ReactNode":
            rendered.append(f"{{{m.name}}}")
        elif t in ("string", "number") or t.startswith(("string |", "number |")):
            label = title(m.name)
            rendered.append(
                f'<p className="{kebab(spec.name)}__{kebab(m.name)}">{label}: {{{m.name}}}</p>'
            )
        elif t == "boolean":
            rendered.append(f'<p>{title(m.name)}: {{{m.name} ? "yes" : "no"}}</p>')
        elif t.endswith("[]"):
            items = f"({m.name} ?? [])" if m.optional else m.name
            rendered += [
                "<ul>",
                f"  {{{items}.map((item, index) => (",
                "    <li key={index}>{JSON.stringify(item)}</li>",
                "  ))}",
                "</ul>",
            ]
        elif t.startswith("()") and "=>" in t:
            call = f"{m.name}?.()" if m.optional else f"{m.name}()"
            rendered.append(
                f'<button type="button" onClick={{() => void {call}}}>{title(m.name)}</button>'
            )
        else:
            continue
        used.append(m.name)
    args = f"{{ {', '.join(used)} }}" if used else ("_props" if spec.props else "")
    if ts and spec.props:
        args += f": {props_type}"
    doc = comment(spec.description or spec.name)
    if spec.props and not ts:
        fields = ", ".join(
            f"{m.name}{'?' if m.optional else ''}: {_jsdoc_type(m.type)}" for m in spec.props
        )
        param = "props" if used else "_props"
        out += ["/**", f" * {doc}", f" * @param {{{{ {fields} }}}} {param}", " */"]
    else:
        out.append(f"/** {doc} */")
    ret = ": JSX.Element" if ts else ""
    out.append(f"export function {spec.name}({args}){ret} {{")
    out += [
        "  return (",
        f'    <section className="{kebab(spec.name)}" aria-label="{title(spec.name)}">',
        f"      <h2>{title(spec.name)}</h2>",
    ]
    out += [f"      {line}" for line in rendered]
    out += ["    </section>", "  );", "}", "", f"export default {spec.name};"]
    return "\n".join(out) + "\n"


def react_hook(spec: Spec, ts: bool) -> str:
    sig = spec.signature or Signature(returns="unknown")
    names = spec_types(spec)
    declared = set(names)
    value = default_js(sig.returns, declared)
    if sig.returns == "void" or value is None:
        return module_source(
            Spec(spec.name, "module", spec.description, methods=((spec.name, sig),)), ts
        )
    out = ['import { useState } from "react";', ""]
    out += type_decls(names, ts)
    out += [""] if names else []
    state = f"useState<{sig.returns}>" if ts else "useState"
    body = [f"const [state] = {state}(() => {arrow_value(value)});", "return state;"]
    out += js_function(spec.name, sig, spec.description, ts, declared, body=body)
    return "\n".join(out) + "\n"


def interface_source(name: str, description: str, fields: tuple[Member, ...], ts: bool) -> str:
    """An exported interface (TypeScript) or a JSDoc typedef (JavaScript)."""
    names = [n for n in type_names(*(f.type for f in fields)) if n != name]
    out = type_decls(names, ts)
    out += [""] if out else []
    if ts:
        out += [f"/** {comment(description)} */"] if description else []
        out.append(f"export interface {name} {{")
        out += [f"  {f.name}{'?' if f.optional else ''}: {f.type};" for f in fields]
        out.append("}")
    else:
        out += ["/**"] + ([f" * {comment(description)}"] if description else [])
        out.append(f" * @typedef {{object}} {name}")
        for f in fields:
            out.append(f" * @property {{{f.type}}} {'[' + f.name + ']' if f.optional else f.name}")
        out += [" */", "", "export {};"]
    return "\n".join(out) + "\n"


def js_cases_test(suite: str, target: str, module: str, cases: list[dict[str, Any]]) -> str:
    """A ``node --test`` file: one test per {args, expected} case, or a smoke test."""
    head = 'import assert from "node:assert/strict";\nimport { test } from "node:test";\n\n'
    out = f'{head}import {{ {target} }} from "{module}";\n'
    for i, case in enumerate(cases, 1):
        args = ", ".join(json.dumps(a) for a in case.get("args", []))
        expected = json.dumps(case.get("expected"))
        out += f'\ntest("{suite}: case {i}", () => {{\n'
        out += f"  assert.deepStrictEqual({target}({args}), {expected});\n}});\n"
    if not cases:
        out += f'\ntest("{suite}: {target} is a function", () => {{\n'
        out += f'  assert.strictEqual(typeof {target}, "function");\n}});\n'
    return out


def reexport(name: str) -> str:
    return f'export {{ {name} }} from "./{name}.mjs";\n'


# Hand-written utilities: name -> (module source, test cases). The tests import the name.
KNOWN_UTILITIES: dict[str, tuple[str, str]] = {
    "formatNumber": (
        """/**
 * Formats a number with thousands separators (en-US, at most two decimals).
 * @param {number} value
 * @returns {string}
 */
export function formatNumber(value) {
  return new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 }).format(value);
}
""",
        """test("formatNumber groups thousands", () => {
  assert.strictEqual(formatNumber(1234567), "1,234,567");
  assert.strictEqual(formatNumber(1234.5), "1,234.5");
  assert.strictEqual(formatNumber(0), "0");
});
""",
    ),
    "formatDate": (
        """/**
 * Formats a date as YYYY-MM-DD (UTC).
 * @param {Date | string} value
 * @returns {string}
 */
export function formatDate(value) {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new RangeError(`Invalid date: ${String(value)}`);
  }
  return date.toISOString().slice(0, 10);
}
""",
        """test("formatDate formats strings and dates", () => {
  assert.strictEqual(formatDate("2024-03-05T12:00:00Z"), "2024-03-05");
  assert.strictEqual(formatDate(new Date(Date.UTC(2020, 0, 31))), "2020-01-31");
});

test("formatDate rejects invalid dates", () => {
  assert.throws(() => formatDate("not a date"), RangeError);
});
""",
    ),
    "validateEmail": (
        """/**
 * Checks an email address: one @, no spaces, a dot in the domain.
 * @param {string} value
 * @returns {boolean}
 */
export function validateEmail(value) {
  return /^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$/.test(value);
}
""",
        """test("validateEmail accepts addresses", () => {
  assert.strictEqual(validateEmail("ada@example.com"), true);
});

test("validateEmail rejects malformed addresses", () => {
  for (const bad of ["", "ada", "ada@", "@example.com", "ada @example.com", "ada@example"]) {
    assert.strictEqual(validateEmail(bad), false, bad);
  }
});
""",
    ),
    "debounce": (
        """/**
 * Delays a call until the input settles: only the last call within `ms` runs.
 * @template {unknown[]} A
 * @param {(...args: A) => void} fn
 * @param {number} ms
 * @returns {(...args: A) => void}
 */
export function debounce(fn, ms) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
""",
        """test("debounce runs the last call once the input settles", async () => {
  /** @type {number[]} */
  const calls = [];
  const debounced = debounce((value) => {
    calls.push(Number(value));
  }, 20);
  debounced(1);
  debounced(2);
  debounced(3);
  assert.deepStrictEqual(calls, []);
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.deepStrictEqual(calls, [3]);
});
""",
    ),
    "toSeries": (
        """/**
 * Turns records into chart points: x from `xKey` (or the index), y from `yKey`.
 * @param {Array<Record<string, unknown>>} rows
 * @param {string} [xKey]
 * @param {string} [yKey]
 * @returns {Array<{ x: unknown, y: number }>}
 */
export function toSeries(rows, xKey = "x", yKey = "y") {
  return rows.map((row, index) => ({ x: row[xKey] ?? index, y: Number(row[yKey] ?? 0) }));
}
""",
        """test("toSeries maps rows to points", () => {
  const rows = [{ x: "mon", y: 3 }, { y: "4" }];
  assert.deepStrictEqual(toSeries(rows), [{ x: "mon", y: 3 }, { x: 1, y: 4 }]);
  assert.deepStrictEqual(toSeries([{ day: 1, total: 9 }], "day", "total"), [{ x: 1, y: 9 }]);
});
""",
    ),
    "slugify": (
        """/**
 * Lower-case words joined by hyphens, for URLs and ids.
 * @param {string} text
 * @returns {string}
 */
export function slugify(text) {
  return text
    .normalize("NFKD")
    .replace(/[\\u0300-\\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}
""",
        """test("slugify makes url-safe slugs", () => {
  assert.strictEqual(slugify("  Hello, Wörld! "), "hello-world");
  assert.strictEqual(slugify("Already-a-slug"), "already-a-slug");
});
""",
    ),
    "clamp": (
        """/**
 * Limits a number to the range [min, max].
 * @param {number} value
 * @param {number} min
 * @param {number} max
 * @returns {number}
 */
export function clamp(value, min, max) {
  return Math.min(Math.max(value, min), max);
}
""",
        """test("clamp limits to the range", () => {
  assert.strictEqual(clamp(5, 0, 10), 5);
  assert.strictEqual(clamp(-1, 0, 10), 0);
  assert.strictEqual(clamp(11, 0, 10), 10);
});
""",
    ),
    "truncate": (
        """/**
 * Shortens text to at most `max` characters, ending with an ellipsis when cut.
 * @param {string} text
 * @param {number} max
 * @returns {string}
 */
export function truncate(text, max) {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}
""",
        """test("truncate shortens long text only", () => {
  assert.strictEqual(truncate("dashboard", 20), "dashboard");
  assert.strictEqual(truncate("dashboard", 5), "dash…");
});
""",
    ),
    "titleCase": (
        """/**
 * Turns "dashboard-app" or "user_settings" into "Dashboard App" or "User Settings".
 * @param {string} text
 * @returns {string}
 */
export function titleCase(text) {
  return text
    .split(/[\\s_-]+/)
    .filter((word) => word.length > 0)
    .map((word) => word[0].toUpperCase() + word.slice(1))
    .join(" ");
}
""",
        """test("titleCase capitalises each word", () => {
  assert.strictEqual(titleCase("dashboard-app"), "Dashboard App");
  assert.strictEqual(titleCase("user_settings page"), "User Settings Page");
});

test("titleCase of an empty string is empty", () => {
  assert.strictEqual(titleCase(""), "");
});
""",
    ),
}


def utility_module(spec: Spec) -> str:
    """The runnable ``.mjs`` source of a utility (JSDoc-typed)."""
    if spec.name in KNOWN_UTILITIES:
        return KNOWN_UTILITIES[spec.name][0]
    sig = spec.signature or Signature((Member("value", "unknown"),), "unknown")
    names = spec_types(spec)
    out = type_decls(names, ts=False)
    out += [""] if out else []
    out += js_function(spec.name, sig, spec.description or spec.name, False, set(names))
    return "\n".join(out) + "\n"


def utility_test(spec: Spec, module: str) -> str:
    """A ``node --test`` file for the utility, importing it from ``module``."""
    if spec.name in KNOWN_UTILITIES:
        cases = KNOWN_UTILITIES[spec.name][1]
    else:
        sig = spec.signature or Signature((Member("value", "unknown"),), "unknown")
        declared = set(spec_types(spec))
        args = ", ".join(sample_js(p.type, declared) for p in sig.params if not p.optional)
        call = f"{spec.name}({args})"
        returns = sig.returns
        first = sig.params[0] if sig.params else None
        if first is not None and first.type == returns and not first.optional:
            check = f"assert.deepStrictEqual({call}, {sample_js(first.type, declared)});"
        else:
            check = js_check(returns, call, declared)
        cases = (
            f'test("{spec.name} returns a value of its declared type", () => {{\n  {check}\n}});\n'
        )
    head = 'import assert from "node:assert/strict";\nimport { test } from "node:test";\n\n'
    return f'{head}import {{ {spec.name} }} from "{module}";\n\n{cases}'


# ------------------------------------------------------------ Python emitters


def py_type(t: str) -> str:
    t = _strip_parens(t)
    alternatives = [a.strip() for a in split_top(t, "|")]
    if len(alternatives) > 1:
        return " | ".join(dict.fromkeys(py_type(a) for a in alternatives))
    inner = re.fullmatch(r"Promise<(.*)>", t)
    if inner:
        return py_type(inner.group(1))
    if t.endswith("[]"):
        return f"list[{py_type(t[:-2])}]"
    simple = {"string": "str", "number": "float", "boolean": "bool", "void": "None"}
    simple |= {"null": "None", "undefined": "None", "Date": "str"}
    return simple.get(t, "dict[str, object]" if t[:1].isupper() else "object")


def py_default(t: str) -> str:
    if " | " in t:
        return "None" if "None" in t.split(" | ") else py_default(t.partition(" | ")[0])
    defaults = {"str": '""', "float": "0.0", "bool": "False", "None": "None", "object": "None"}
    if t in defaults:
        return defaults[t]
    return "[]" if t.startswith("list[") else "{}"


def py_sample(t: str) -> str:
    samples = {"str": '"example"', "float": "42.0", "bool": "True"}
    return samples.get(t.partition(" | ")[0], py_default(t))


def py_module(spec: Spec) -> tuple[str, list[str], list[tuple[str, str, str]]]:
    """Source of a module (a class for a service), the names a test imports, and
    ``(test name, call, expected value)`` triples for ``py_test``."""
    cls = spec.kind == "service"
    members = list(spec.methods) or ([(spec.name, spec.signature)] if spec.signature else [])
    indent = "    " if cls else ""
    owner = pascal(spec.name)
    functions, cases = [], []
    for name, sig in members:
        fn, ret = py_name(name), py_type(sig.returns)
        params = [(py_name(p.name), py_type(p.type), p.optional) for p in sig.params]
        args = ["self"] if cls else []
        for n, t, optional in params:
            default = "" if not optional else " = None" if "None" in t else " | None = None"
            args.append(f"{n}: {t}{default}")
        first = sig.params[0] if sig.params else None
        identity = first is not None and first.type == sig.returns and not first.optional
        value = params[0][0] if identity else py_default(ret)
        functions.append(
            f"{indent}def {fn}({', '.join(args)}) -> {ret}:\n{indent}    return {value}"
        )
        samples = [py_sample(t) for _, t, optional in params if not optional]
        call = f"{owner}().{fn}" if cls else fn
        expected = samples[0] if identity else py_default(ret)
        cases.append(
            (snake(f"{owner}_{fn}") if cls else fn, f"{call}({', '.join(samples)})", expected)
        )
    description = json.dumps(spec.description or spec.name)
    if not members:
        self_arg = "self" if cls else ""
        functions.append(
            f"{indent}def describe({self_arg}) -> str:\n{indent}    return {description}"
        )
        call = f"{owner}().describe()" if cls else "describe()"
        cases.append((snake(f"{owner}_describe") if cls else "describe", call, description))
    doc = docstring(spec.description or title(spec.name)).rstrip(".")
    text = f'"""{doc}."""\n\nfrom __future__ import annotations\n\n\n'
    if cls:
        text += f'class {owner}:\n    """{doc}."""\n\n' + "\n\n".join(functions)
        imported = [owner]
    else:
        text += "\n\n\n".join(functions)
        imported = sorted({call.partition("(")[0] for _, call, _ in cases})
    return text + "\n", imported, cases


def py_test(module: str, imported: list[str], cases: list[tuple[str, str, str]]) -> str:
    out = f"from {module} import {', '.join(imported)}\n"
    for name, call, expected in cases:
        check = f"assert {call} is None" if expected == "None" else f"assert {call} == {expected}"
        out += f"\n\ndef test_{name}() -> None:\n    {check}\n"
    return out


def py_typed_dict(name: str, description: str, fields: tuple[Member, ...]) -> str:
    lines = [
        f'"""{docstring(description or name).rstrip(".")}."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import NotRequired, TypedDict",
        "",
        "",
        f"class {name}(TypedDict):",
    ]
    for f in fields:
        t = py_type(f.type)
        lines.append(f"    {snake(f.name)}: {f'NotRequired[{t}]' if f.optional else t}")
    if not fields:
        lines.append("    pass")
    text = "\n".join(lines) + "\n"
    return text if "NotRequired[" in text else text.replace("NotRequired, ", "")


def py_cases_test(suite: str, target: str, module: str, cases: list[dict[str, Any]]) -> str:
    """A pytest file: the {args, expected} cases as one parametrized test."""
    out = f"import pytest\n\nfrom {module} import {target}\n\n\n"
    if not cases:
        return out + f"def test_{snake(suite)}() -> None:\n    assert callable({target})\n"
    rows = "".join(f"        ({c.get('args', [])!r}, {c.get('expected')!r}),\n" for c in cases)
    out += f'@pytest.mark.parametrize(\n    ("args", "expected"),\n    [\n{rows}    ],\n)\n'
    out += f"def test_{snake(suite)}(args: list[object], expected: object) -> None:\n"
    return out + f"    assert {target}(*args) == expected\n"


# ------------------------------------------------------------ project templates

GITIGNORE_JS = "node_modules/\ndist/\ncoverage/\n.vite/\n*.log\n.DS_Store\n"
GITIGNORE_PY = (
    "__pycache__/\n*.py[cod]\n.venv/\n.pytest_cache/\n.ruff_cache/\ndist/\nbuild/\n*.egg-info/\n"
)
VERSIONS = {"react": "^18.2.0", "react-dom": "^18.2.0", "typescript": "~4.9.5"}


def _package_json(name: str, description: str, **fields: object) -> str:
    data: dict[str, object] = {"name": name.lower(), "private": True, "version": "0.1.0"}
    data |= {"description": description} | fields
    return json.dumps(data, indent=2) + "\n"


def _test_file(names: list[str], module: str) -> str:
    head = 'import assert from "node:assert/strict";\nimport { test } from "node:test";\n\n'
    body = "\n".join(KNOWN_UTILITIES[n][1] for n in names)
    return f'{head}import {{ {", ".join(names)} }} from "{module}";\n\n{body}'


def _readme(name: str, description: str, layout: str, commands: str) -> str:
    return (
        f"# {title(name)}\n\n{description}\n\n## Layout\n\n```\n{layout.strip()}\n```\n\n"
        f"## Commands\n\n{commands.strip()}\n\nGenerated by the AgentMesh build agent.\n"
    )


def _index_html(name: str, script: str) -> str:
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1.0" />
    <title>{title(name)}</title>
  </head>
  <body>
    <div id="root"></div>
    <script type="module" src="{script}"></script>
  </body>
</html>
"""


STYLES = """body {
  margin: 0;
  font-family: system-ui, sans-serif;
  color: #1f2933;
  background: #f5f7fa;
}

.layout__header {
  padding: 1rem 2rem;
  background: #243b53;
  color: #fff;
}

.layout__main {
  padding: 2rem;
}
"""


def react_project(name: str, description: str, ts: bool) -> dict[str, str]:
    x, sx = ("tsx", "ts") if ts else ("jsx", "js")
    node_type = 'import type { ReactNode } from "react";\n\n' if ts else ""
    props = (
        "export interface LayoutProps {\n  title: string;\n  children?: ReactNode;\n}\n\n"
        if ts
        else '/**\n * @param {{ title: string, children?: import("react").ReactNode }} props\n */\n'
    )
    el = ": JSX.Element" if ts else ""
    layout_doc = "/** The page frame: a header with the title, then the content. */\n" if ts else ""
    files = {
        "package.json": _package_json(
            name,
            description,
            type="module",
            scripts={
                "dev": "vite",
                "build": ("tsc && " if ts else "") + "vite build",
                **({"typecheck": "tsc --noEmit"} if ts else {}),
                "test": "node --test",
            },
            dependencies={"react": VERSIONS["react"], "react-dom": VERSIONS["react-dom"]},
            devDependencies={
                **({"@types/react": "^18.2.0", "@types/react-dom": "^18.2.0"} if ts else {}),
                "@vitejs/plugin-react": "^4.2.0",
                **({"typescript": VERSIONS["typescript"]} if ts else {}),
                "vite": "^4.5.0",
            },
            engines={"node": ">=18"},
        ),
        "index.html": _index_html(name, f"/src/main.{x}"),
        f"vite.config.{sx}": 'import { defineConfig } from "vite";\nimport react from "@vitejs/plugin-react";\n\nexport default defineConfig({\n  plugins: [react()],\n});\n',
        f"src/main.{x}": """import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import App from "./App";
import "./styles.css";

const container = document.getElementById("root");
if (container === null) {
  throw new Error("index.html has no #root element");
}
createRoot(container).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
""",
        f"src/App.{x}": f"""import {{ Layout }} from "./components/Layout";
import {{ titleCase }} from "./utils/format{"" if ts else ".mjs"}";

const APP_NAME = {json.dumps(name)};

/** The application's root component. */
export function App(){el} {{
  return (
    <Layout title={{titleCase(APP_NAME)}}>
      <p>
        Edit <code>src/App.{x}</code> to start building.
      </p>
    </Layout>
  );
}}

export default App;
""",
        f"src/components/Layout.{x}": f"""{node_type}{props}{layout_doc}export function Layout({{ title, children }}{": LayoutProps" if ts else ""}){el} {{
  return (
    <div className="layout">
      <header className="layout__header">
        <h1>{{title}}</h1>
      </header>
      <main className="layout__main">{{children}}</main>
    </div>
  );
}}

export default Layout;
""",
        "src/utils/format.mjs": KNOWN_UTILITIES["titleCase"][0],
        f"src/services/http.{sx}": (
            "/** Fetches `url` and parses its JSON body; rejects on a non-2xx status. */\n"
            "export async function fetchJson<T>(url: string, init?: RequestInit): Promise<T> {\n"
            if ts
            else "/**\n * Fetches `url` and parses its JSON body; rejects on a non-2xx status.\n"
            " * @param {string} url\n * @param {RequestInit} [init]\n * @returns {Promise<unknown>}\n */\n"
            "export async function fetchJson(url, init) {\n"
        )
        + "  const response = await fetch(url, init);\n  if (!response.ok) {\n"
        "    throw new Error(`Request to ${url} failed with status ${response.status}`);\n  }\n"
        + (
            "  return (await response.json()) as T;\n}\n"
            if ts
            else "  return response.json();\n}\n"
        ),
        "src/styles.css": STYLES,
        "tests/format.test.mjs": _test_file(["titleCase"], "../src/utils/format.mjs"),
        ".gitignore": GITIGNORE_JS,
    }
    if ts:
        files["src/utils/format.ts"] = 'export { titleCase } from "./format.mjs";\n'
        files["src/vite-env.d.ts"] = '/// <reference types="vite/client" />\n'
        files["tsconfig.json"] = json.dumps(TSCONFIG, indent=2) + "\n"
    layout = f"""
{"tsconfig.json         compiler options (strict; allowJs+checkJs type the .mjs files)" if ts else ""}
index.html            the page; loads src/main.{x}
src/main.{x}          mounts <App /> in #root
src/App.{x}           the root component
src/components/       React components (one file each, typed props)
src/utils/            pure functions: NAME.mjs runs under Node{", NAME.ts re-exports it" if ts else ""}
src/services/         data access (fetchJson)
src/hooks/            React hooks (made by component generation)
tests/                node --test suites (*.test.mjs) for src/utils
"""
    commands = "- `npm install` then `npm run dev`\n- `npm test` (or `node --test`): the unit tests, no install needed\n"
    commands += "- `npm run typecheck`: TypeScript 4.9 checks\n" if ts else ""
    files["README.md"] = _readme(
        name, description, "\n".join(line for line in layout.splitlines() if line), commands
    )
    return files


TSCONFIG = {
    "compilerOptions": {
        "target": "ES2020",
        "lib": ["DOM", "DOM.Iterable", "ES2020"],
        "module": "ESNext",
        "moduleResolution": "Node",
        "jsx": "react-jsx",
        "strict": True,
        "allowJs": True,
        "checkJs": True,
        "noEmit": True,
        "isolatedModules": True,
        "esModuleInterop": True,
        "resolveJsonModule": True,
        "skipLibCheck": True,
        "forceConsistentCasingInFileNames": True,
        "noUnusedLocals": True,
        "noFallthroughCasesInSwitch": True,
    },
    "include": ["src"],
}


def node_project(name: str, description: str) -> dict[str, str]:
    return {
        "package.json": _package_json(
            name,
            description,
            type="module",
            main="src/server.js",
            scripts={"start": "node src/server.js", "test": "node --test"},
            engines={"node": ">=18"},
        ),
        "src/app.js": """/**
 * Routes a request to a status and a JSON body; pure, so tests need no server.
 * @param {string} method
 * @param {string} url
 * @returns {{ status: number, body: Record<string, unknown> }}
 */
export function route(method, url) {
  const { pathname } = new URL(url, "http://localhost");
  if (method === "GET" && pathname === "/health") {
    return { status: 200, body: { status: "ok" } };
  }
  return { status: 404, body: { error: `No route for ${method} ${pathname}` } };
}
""",
        "src/server.js": """import { createServer } from "node:http";

import { route } from "./app.js";

const port = Number(process.env.PORT ?? 3000);

createServer((request, response) => {
  const { status, body } = route(request.method ?? "GET", request.url ?? "/");
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}).listen(port);
""",
        "src/utils/format.mjs": KNOWN_UTILITIES["titleCase"][0],
        "tests/app.test.mjs": """import assert from "node:assert/strict";
import { test } from "node:test";

import { route } from "../src/app.js";

test("GET /health answers ok", () => {
  assert.deepStrictEqual(route("GET", "/health"), { status: 200, body: { status: "ok" } });
});

test("unknown routes are 404", () => {
  assert.strictEqual(route("POST", "/nope?x=1").status, 404);
});
""",
        "tests/format.test.mjs": _test_file(["titleCase"], "../src/utils/format.mjs"),
        ".gitignore": GITIGNORE_JS,
        "README.md": _readme(
            name,
            description,
            "src/app.js            request routing (pure)\nsrc/server.js         the HTTP server\n"
            "src/services/         service classes\nsrc/utils/            pure functions (.mjs)\n"
            "tests/                node --test suites",
            "- `npm start`: serve on $PORT (3000)\n- `npm test` (or `node --test`)\n",
        ),
    }


def static_project(name: str, description: str) -> dict[str, str]:
    html = (
        _index_html(name, "js/main.js")
        .replace(
            '    <div id="root"></div>\n',
            f'    <h1 id="title">{title(name)}</h1>\n    <p>{comment(description)}</p>\n',
        )
        .replace("</title>\n", '</title>\n    <link rel="stylesheet" href="css/styles.css" />\n')
    )
    return {
        "index.html": html,
        "css/styles.css": STYLES,
        "js/main.js": 'import { titleCase } from "./format.mjs";\n\n'
        'const heading = document.getElementById("title");\n'
        f"if (heading !== null) {{\n  heading.textContent = titleCase({json.dumps(name)});\n}}\n",
        "js/format.mjs": KNOWN_UTILITIES["titleCase"][0],
        "tests/format.test.mjs": _test_file(["titleCase"], "../js/format.mjs"),
        ".gitignore": GITIGNORE_JS,
        "README.md": _readme(
            name,
            description,
            "index.html   the page\ncss/         styles\njs/          scripts (.mjs for testable functions)\n"
            "tests/       node --test suites",
            "- open `index.html`, or serve the folder with any static server\n- `node --test`\n",
        ),
    }


def python_project(name: str, description: str) -> dict[str, str]:
    pkg = python_package_name(name)
    return {
        "pyproject.toml": f"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1.0"
description = {json.dumps(description)}
readme = "README.md"
requires-python = ">=3.10"
dependencies = []

[project.optional-dependencies]
dev = ["pytest>=7", "ruff>=0.5"]

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
pythonpath = ["src"]
testpaths = ["tests"]
""",
        f"src/{pkg}/__init__.py": f'"""{docstring(title(name))}: {docstring(description)}"""\n\n'
        f'from {pkg}.core import slugify\n\n__all__ = ["slugify"]\n__version__ = "0.1.0"\n',
        f"src/{pkg}/core.py": '"""The package\'s core functions."""\n\nfrom __future__ import annotations\n\n'
        "import re\nimport unicodedata\n\n\ndef slugify(text: str) -> str:\n"
        '    """Lower-case ASCII words joined by hyphens."""\n'
        '    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()\n'
        '    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")\n',
        "tests/test_core.py": f"from {pkg} import slugify\n\n\ndef test_slugify() -> None:\n"
        '    assert slugify("  Hello, Wörld! ") == "hello-world"\n\n\n'
        "def test_slugify_keeps_slugs() -> None:\n"
        '    assert slugify("already-a-slug") == "already-a-slug"\n',
        ".gitignore": GITIGNORE_PY,
        "README.md": _readme(
            name,
            description,
            f"pyproject.toml        metadata; pytest finds src/ on its own\nsrc/{pkg}/   the package\n"
            "tests/                pytest tests",
            "- `pip install -e '.[dev]'`\n- `pytest`\n",
        ),
    }


def python_package_name(name: str) -> str:
    pkg = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "package"
    return f"pkg_{pkg}" if pkg[0].isdigit() else pkg


PROJECTS: dict[str, Callable[[str, str], dict[str, str]]] = {
    "react-typescript": lambda n, d: react_project(n, d, ts=True),
    "react": lambda n, d: react_project(n, d, ts=False),
    "node-service": node_project,
    "static-site": static_project,
    "python-package": python_project,
}
