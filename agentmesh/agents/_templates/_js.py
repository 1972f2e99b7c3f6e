"""JavaScript and TypeScript emitters: functions, modules and service classes, React
components and hooks, interfaces, and ``node --test`` files of given cases."""

from __future__ import annotations

import json
import re
from typing import Any

from agentmesh.agents._templates._names import comment, kebab, title
from agentmesh.agents._templates._types import (
    Member,
    Signature,
    Spec,
    arrow_value,
    default_js,
    generic_names,
    passthrough,
    spec_types,
    strip_parens,
    type_names,
)

#: The opening of every generated ``node --test`` file.
NODE_TEST_HEAD = 'import assert from "node:assert/strict";\nimport { test } from "node:test";\n\n'


def type_decls(names: list[str], ts: bool) -> list[str]:
    """Declarations of ``names`` as ``Record<string, unknown>`` (a type, or a JSDoc typedef)."""
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
    """Body lines returning a value of ``sig``'s return type (or throwing when none is known)."""
    returns = sig.returns
    inner = re.fullmatch(r"Promise<(.*)>", returns)
    if inner:
        returns = inner.group(1)
    if returns in ("void", "undefined"):
        return []
    if (first := passthrough(sig, returns)) is not None:
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
    """Lines of an exported function (or a method) with its doc comment."""
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
    """A function component rendering each prop it knows how to show."""
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
        t = strip_parens(m.type)
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
    """A hook holding a default of its return type in state (a plain module when none)."""
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
    out = f'{NODE_TEST_HEAD}import {{ {target} }} from "{module}";\n'
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
    """A ``.ts`` module re-exporting ``name`` from ``./<name>.mjs``."""
    return f'export {{ {name} }} from "./{name}.mjs";\n'
