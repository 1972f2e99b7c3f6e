"""Python emitters: modules (a class for a service) with pytest tests, ``TypedDict``s, and
parametrized tests of given cases; TypeScript types are mapped to Python annotations."""

from __future__ import annotations

import json
import re
from typing import Any

from agentmesh.agents._templates._names import docstring, pascal, py_name, snake, title
from agentmesh.agents._templates._types import (
    Member,
    Spec,
    passthrough,
    split_top,
    strip_parens,
)


def py_type(t: str) -> str:
    """The Python annotation for TypeScript type ``t`` (capitalised names are dicts)."""
    t = strip_parens(t)
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
    """A Python expression of annotation ``t``."""
    if " | " in t:
        return "None" if "None" in t.split(" | ") else py_default(t.partition(" | ")[0])
    defaults = {"str": '""', "float": "0.0", "bool": "False", "None": "None", "object": "None"}
    if t in defaults:
        return defaults[t]
    return "[]" if t.startswith("list[") else "{}"


def py_sample(t: str) -> str:
    """An argument of annotation ``t`` for a generated test."""
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
        identity = passthrough(sig, sig.returns) is not None
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
    """A pytest file checking ``py_module``'s cases."""
    out = f"from {module} import {', '.join(imported)}\n"
    for name, call, expected in cases:
        check = f"assert {call} is None" if expected == "None" else f"assert {call} == {expected}"
        out += f"\n\ndef test_{name}() -> None:\n    {check}\n"
    return out


def py_typed_dict(name: str, description: str, fields: tuple[Member, ...]) -> str:
    """A module with one ``TypedDict`` of ``fields``."""
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
