"""``code_generation``: one function, class, interface or test in TypeScript, JavaScript
or Python, returned and optionally written inside the workspace."""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from typing import Any

from agent_sdk import Task, TaskError
from agentmesh.agents import _sandbox
from agentmesh.agents import _templates as tpl
from agentmesh.agents._build_specs import IDENT, RESERVED, members, methods, signature
from agentmesh.agents._files import write_atomic
from agentmesh.agents._inputs import bad


def code(task: Task, root: Path) -> dict[str, Any]:
    """``code_generation``: a function, class, interface or test (written to ``path`` if given)."""
    inp = task.input
    language = inp.get("language")
    language = (
        {"ts": "typescript", "js": "javascript", "py": "python"}.get(language, language)
        if isinstance(language, str)
        else language
    )
    kind, name, spec = inp.get("kind"), inp.get("name"), inp.get("spec")
    spec = {} if spec is None else spec
    if language not in ("typescript", "javascript", "python"):
        raise bad("language: must be typescript, javascript or python")
    if kind not in ("function", "class", "interface", "test"):
        raise bad("kind: must be function, class, interface or test")
    if not isinstance(spec, dict):
        raise bad("spec: must be an object")
    py = language == "python"
    if (
        not isinstance(name, str)
        or not IDENT.match(name)
        or (py and (keyword.iskeyword(name) or "$" in name))
        or name in RESERVED
    ):
        raise bad(f"name: {name!r} is not a valid {language} identifier")
    try:
        code = _generate(language, kind, name, spec)
    except ValueError as e:
        raise bad(f"spec: {e}") from None
    out: dict[str, Any] = {"language": language, "kind": kind, "name": name, "code": code}
    if inp.get("path") is not None:
        path = _sandbox.confine(root, inp.get("path"), "path")
        if path.exists() and inp.get("overwrite") is not True:
            raise TaskError(f"path: {path} exists (set overwrite)", type="FileExists")
        write_atomic(path, code.encode())
        out["path"] = str(path)
    return out


def _generate(language: str, kind: str, name: str, spec: dict[str, Any]) -> str:
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise ValueError("description: must be a string")
    ts, py = language == "typescript", language == "python"
    if kind == "test":
        return _test_code(language, name, spec)
    if kind == "interface":
        fields = members(spec.get("fields", spec.get("props")), "fields")
        if py:
            return tpl.py_typed_dict(name, description, fields)
        return tpl.interface_source(name, description, fields, ts)
    if kind == "class":
        item = tpl.Spec(name, "service", description, methods=methods(spec.get("methods")))
        return tpl.py_module(item)[0] if py else tpl.module_source(item, ts)
    sig = signature(spec) or tpl.Signature()
    if py:
        return tpl.py_module(tpl.Spec(name, "module", description, methods=((name, sig),)))[0]
    body = spec.get("body")
    if body is not None and not isinstance(body, str):
        raise ValueError("body: must be a string of code")
    names = tpl.spec_types(tpl.Spec(name, "utility", signature=sig))
    lines = tpl.type_decls(names, ts)
    lines += [""] if lines else []
    lines += tpl.js_function(
        name, sig, description, ts, set(names), body=body.splitlines() if body else None
    )
    return "\n".join(lines) + "\n"


def _test_code(language: str, name: str, spec: dict[str, Any]) -> str:
    target, module, cases = spec.get("target", name), spec.get("module"), spec.get("cases", [])
    if not isinstance(target, str) or not IDENT.match(target):
        raise ValueError("target: must be the name of the function under test")
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise ValueError("cases: must be a list of {args, expected}")
    for c in cases:
        if not isinstance(c.get("args", []), list):
            raise ValueError("cases: args must be a list")
    if language == "python":
        module = module or tpl.snake(target)
        if not isinstance(module, str) or not re.fullmatch(r"[A-Za-z_][\w.]*", module):
            raise ValueError("module: must be a dotted Python module name")
        return tpl.py_cases_test(name, target, module, cases)
    module = module or f"./{target}.mjs"
    if not isinstance(module, str) or not re.fullmatch(r"[\w./@-]+", module):
        raise ValueError("module: must be an import path")
    return tpl.js_cases_test(name, target, module, cases)
