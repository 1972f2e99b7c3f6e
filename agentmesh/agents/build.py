"""Build agent: scaffolds projects, generates components and code, transforms data, edits files.

Everything it writes lives under ``workspace`` (projects in ``workspace/projects/<name>``);
any path outside fails the task with ``PathOutsideWorkspace``. Templates and emitters are
in ``agentmesh.agents._templates``.

- ``project_scaffolding`` {projectType: react-typescript | react | node-service |
  static-site | python-package (aliases like "React TypeScript", "python"), name,
  options?: {overwrite?, description?, typescript?}} -> {path (absolute), name,
  projectType, files[], testCommand}. The tree is written to a temporary directory and
  renamed into place; an existing project fails with ``ProjectExists`` unless
  ``options.overwrite`` (the template's files are then rewritten, others kept).
- ``component_generation`` {components: [name | {name, kind?, description?, props?,
  methods?, signature?}], path} -> {path (project root), projectType, files[], skipped[],
  components[{name, kind, files}]}. ``path`` may be the project or a folder in it (the
  root is the nearest folder up with package.json, pyproject.toml or index.html). kind is
  component (src/components/<Name>.tsx), service (src/services/<Name>.ts), hook
  (src/hooks/<name>.ts), utility or module (src/utils/<name>.mjs, a .ts re-export and
  tests/<name>.test.mjs for ``node --test``); Python projects get a module and a pytest
  file. A component whose files exist is skipped, not rewritten. props and methods are
  {name: type} objects (taken in name order: JSON objects are unordered on the wire) or
  lists; types are TypeScript, and unknown type names are declared next to their use.
  With {data, transformations} instead (the seed's data_processing "transform" step):
  -> {result, applied[]}; transformations are names (upper, lower, trim, sort, dedupe,
  reverse, lines, json, compact, flatten) or {name, ...} (sort {key, descending}, pick
  {fields}); ``data`` that is JSON text for an array or object is parsed first; an
  unknown name fails with ``UnknownTransformation``.
- ``file_operations`` {action?: write | read | list | delete | mkdir | copy, path, ...}:
  write {content: str | data: JSON, overwrite?} (the action when content or data is
  given; data is written as JSON unless it is a string and the file is not .json)
  -> {path, bytes, sha256, created}; read -> {content, bytes, data?}; list {recursive?}
  -> {entries[{path, type, size}]}; delete {recursive?} -> {deleted}; mkdir -> {created};
  copy {to, overwrite?} -> {to, files}.
- ``code_generation`` {language: typescript | javascript | python, kind: function |
  class | interface | test, name, spec?: {description, signature | params + returns,
  body, methods, fields, target, module, cases[{args, expected}]}, path?, overwrite?}
  -> {language, kind, name, code, path?}.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import keyword
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from agent_sdk import Agent, Task, TaskError
from agentmesh.agents import _sandbox
from agentmesh.agents import _templates as tpl

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_IDENT = re.compile(r"^[A-Za-z_$][\w$]*$")
_ALIASES = {
    "react-ts": "react-typescript",
    "react-tsx": "react-typescript",
    "typescript-react": "react-typescript",
    "react-js": "react",
    "react-javascript": "react",
    "python": "python-package",
    "python-library": "python-package",
    "node": "node-service",
    "nodejs": "node-service",
    "node-js": "node-service",
    "static": "static-site",
    "html": "static-site",
}
_KINDS = {"component", "service", "utility", "hook", "module"}
_KIND_ALIASES = {"function": "utility", "util": "utility", "page": "component", "class": "service"}
_RESERVED_WORDS = (
    "break case catch class const continue debugger default delete do else enum export extends "
    "false finally for function if import in instanceof new null return super switch this "
    "throw true try typeof var void while with yield let static await"
)
_RESERVED = frozenset(_RESERVED_WORDS.split())
TEST_COMMANDS = {"python-package": "pytest"}
TRANSFORMATIONS = "upper lower trim reverse lines json sort dedupe compact flatten pick"
_LIST_OPS = frozenset({"sort", "dedupe", "unique", "distinct", "compact", "flatten", "pick"})
MAX_WRITE, MAX_READ, MAX_LIST = 10 << 20, 1 << 20, 2000


def create(coordinator: str | None = None, *, workspace: Path, max_concurrency: int = 4) -> Agent:
    """The build agent, writing under ``workspace``."""
    b = _Build(Path(workspace))
    agent = Agent("build", coordinator, type="build", max_concurrency=max_concurrency)
    agent.add_capability(
        "project_scaffolding", b.scaffold, description="create a project tree from a template"
    )
    agent.add_capability(
        "component_generation",
        b.components,
        description="generate components, services, hooks and utilities (or transform data)",
    )
    agent.add_capability(
        "file_operations", b.files, description="write, read, list, delete, mkdir, copy"
    )
    agent.add_capability(
        "code_generation", b.code, description="generate a function, class, interface or test"
    )
    return agent


def _bad(message: str) -> TaskError:
    return TaskError(message, type="BadInput")


def _write_new(path: Path, content: str) -> bool:
    """Create ``path`` with ``content``; False when it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(content)
    except FileExistsError:
        return False
    return True


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class _Build:
    def __init__(self, workspace: Path) -> None:
        workspace.mkdir(parents=True, exist_ok=True)
        self.root = workspace.resolve()

    def _inside(self, raw: Any, field: str) -> Path:
        return _sandbox.confine(self.root, raw, field)

    # -------------------------------------------------------- project_scaffolding

    def scaffold(self, task: Task) -> dict[str, Any]:
        inp = task.input
        options = inp.get("options")
        options = {} if options is None else options
        if not isinstance(options, dict):
            raise _bad("options: must be an object")
        raw_type, name = inp.get("projectType"), inp.get("name")
        if not isinstance(raw_type, str) or not raw_type.strip():
            raise _bad("projectType: must be a non-empty string")
        ptype = re.sub(r"[\s_/+.]+", "-", raw_type.strip().lower())
        ptype = _ALIASES.get(ptype, ptype)
        if ptype == "react" and options.get("typescript") is True:
            ptype = "react-typescript"
        if ptype not in tpl.PROJECTS:
            raise TaskError(
                f"projectType: {raw_type!r} is not one of {', '.join(tpl.PROJECTS)}",
                type="UnknownProjectType",
            )
        if not isinstance(name, str) or not _NAME.match(name) or name.endswith("."):
            raise _bad("name: must be 1-64 letters, digits, '.', '_' or '-', starting alnum")
        overwrite = options.get("overwrite", False)
        description = options.get("description") or f"A {ptype} project."
        if not isinstance(overwrite, bool) or not isinstance(description, str):
            raise _bad("options: overwrite must be a boolean and description a string")
        files = tpl.PROJECTS[ptype](name, description)
        projects = self.root / "projects"
        dest = projects / name
        task.progress(0.2, f"writing {len(files)} files")
        existed = dest.exists()
        if existed and not overwrite:
            raise TaskError(
                f"project {name!r} already exists at {dest} (set options.overwrite)",
                type="ProjectExists",
                details={"path": str(dest)},
            )
        if existed:
            for rel, content in files.items():
                _write_atomic(dest / rel, content.encode())
        else:
            tmp = projects / f".{name}.tmp-{uuid.uuid4().hex[:12]}"
            try:
                for rel, content in files.items():
                    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                    (tmp / rel).write_text(content, encoding="utf-8")
                for folder in ("src/components", "src/hooks") if "react" in ptype else ():
                    (tmp / folder).mkdir(parents=True, exist_ok=True)
                try:
                    os.rename(tmp, dest)
                except OSError:
                    raise TaskError(
                        f"project {name!r} appeared at {dest} meanwhile", type="ProjectExists"
                    ) from None
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        task.progress(1.0, f"scaffolded {dest}")
        return {
            "path": str(dest),
            "name": name,
            "projectType": ptype,
            "files": sorted(files),
            "testCommand": TEST_COMMANDS.get(ptype, "node --test"),
            "overwritten": existed,
        }

    # ------------------------------------------------------- component_generation

    def components(self, task: Task) -> dict[str, Any]:
        inp = task.input
        if "components" not in inp and ("data" in inp or "transformations" in inp):
            return _transform(inp)
        raw = inp.get("components")
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise _bad("components: must be a list of names or {name, kind, ...} objects")
        path = self._inside(inp.get("path"), "path")
        specs = [_spec(item, i) for i, item in enumerate(raw)]
        root, flavour = self._project(path, raw)
        created: list[str] = []
        skipped: list[str] = []
        report = []
        for i, spec in enumerate(specs):
            planned = self._plan(root, flavour, spec)
            rels = [p.relative_to(root).as_posix() for p, _ in planned]
            if any(p.exists() for p, _ in planned):
                skipped.append(spec.name)
                continue
            written = [
                rel for (p, text), rel in zip(planned, rels, strict=True) if _write_new(p, text)
            ]
            if len(written) < len(planned):
                skipped.append(spec.name)  # another task created it meanwhile
            created += written
            report.append({"name": spec.name, "kind": spec.kind, "files": written})
            task.progress((i + 1) / len(specs), f"generated {spec.name}")
        return {
            "path": str(root),
            "projectType": flavour,
            "files": created,
            "skipped": skipped,
            "components": report,
        }

    def _project(self, path: Path, raw: list[Any]) -> tuple[Path, str]:
        """The project root above ``path`` and its flavour (react-ts, react-js, node,
        static, python)."""
        start = path
        while not start.exists() and start != self.root:
            start = start.parent
        for d in (start, *start.parents):
            if (d / "package.json").is_file():
                try:
                    pkg = json.loads((d / "package.json").read_text())
                    deps = {**pkg.get("dependencies", {}), **pkg.get("devDependencies", {})}
                except (ValueError, AttributeError, TypeError):
                    deps = {}
                if "react" in deps:
                    ts = (d / "tsconfig.json").exists() or "typescript" in deps
                    return d, "react-ts" if ts else "react-js"
                return d, "node"
            if (d / "pyproject.toml").is_file() or (d / "setup.py").is_file():
                return d, "python"
            if (d / "index.html").is_file():
                return d, "static"
            if d == self.root:
                break
        languages = {c.get("language") for c in raw if isinstance(c, dict)}
        if "python" in languages:
            return path, "python"
        return path, "react-js" if languages == {"javascript"} else "react-ts"

    def _plan(self, root: Path, flavour: str, spec: tpl.Spec) -> list[tuple[Path, str]]:
        """The files for ``spec`` in a project of ``flavour``: (path, content)."""
        n, kind = spec.name, spec.kind
        if flavour == "python":
            pkg = _python_package(root)
            module = tpl.snake(n)
            source, imported, cases = tpl.py_module(spec)
            test = tpl.py_test(f"{pkg.name}.{module}", imported, cases)
            return [(pkg / f"{module}.py", source), (root / "tests" / f"test_{module}.py", test)]
        ts = flavour == "react-ts"
        react = flavour.startswith("react")
        utils = root / ("js" if flavour == "static" else "src/utils")
        if kind in ("utility", "module") and (react or kind == "utility"):
            module_path = f"../{utils.relative_to(root).as_posix()}/{n}.mjs"
            files = [
                (utils / f"{n}.mjs", tpl.utility_module(spec)),
                (root / "tests" / f"{n}.test.mjs", tpl.utility_test(spec, module_path)),
            ]
            return files + ([(utils / f"{n}.ts", tpl.reexport(n))] if ts else [])
        x = "ts" if ts else "js"
        if react and kind == "component":
            return [(root / "src/components" / f"{n}.{x}x", tpl.react_component(spec, ts))]
        if react and kind == "hook":
            return [(root / "src/hooks" / f"{n}.{x}", tpl.react_hook(spec, ts))]
        if kind == "service":
            return [(root / "src/services" / f"{n}.{x}", tpl.module_source(spec, ts))]
        folder = root / ("js" if flavour == "static" else "src")
        return [(folder / f"{n}.js", tpl.module_source(spec, False))]

    # ------------------------------------------------------------ file_operations

    def files(self, task: Task) -> dict[str, Any]:
        inp = task.input
        action = inp.get("action")
        if action is None and ("content" in inp or "data" in inp):
            action = "write"
        ops = {
            "write": self._write,
            "read": self._read,
            "list": self._list,
            "delete": self._delete,
            "mkdir": self._mkdir,
            "copy": self._copy,
        }
        if action not in ops:
            raise _bad(f"action: must be one of {', '.join(sorted(ops))}")
        path = self._inside(inp.get("path"), "path")
        if action in ("read", "list", "copy") and not path.exists():
            raise TaskError(f"path: {path} does not exist", type="FileNotFound")
        return {"action": action, "path": str(path)} | ops[action](path, inp)

    def _mkdir(self, path: Path, inp: dict[str, Any]) -> dict[str, Any]:
        created = not path.is_dir()
        path.mkdir(parents=True, exist_ok=True)
        return {"created": created}

    def _delete(self, path: Path, inp: dict[str, Any]) -> dict[str, Any]:
        if path == self.root:
            raise _bad("path: will not delete the workspace itself")
        if path.is_dir() and not path.is_symlink():
            if any(path.iterdir()) and inp.get("recursive") is not True:
                raise _bad("path: a non-empty directory needs recursive: true")
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            return {"deleted": False}
        return {"deleted": True}

    def _read(self, path: Path, inp: dict[str, Any]) -> dict[str, Any]:
        if not path.is_file():
            raise _bad("path: not a file")
        size = path.stat().st_size
        if size > MAX_READ:
            raise TaskError(f"{path} is {size} bytes (limit {MAX_READ})", type="FileTooLarge")
        text = path.read_bytes().decode("utf-8", "replace")
        out: dict[str, Any] = {"content": text, "bytes": size}
        if path.suffix == ".json":
            with contextlib.suppress(ValueError):
                out["data"] = json.loads(text)
        return out

    def _list(self, path: Path, inp: dict[str, Any]) -> dict[str, Any]:
        pattern = "**/*" if inp.get("recursive") is True else "*"
        entries = []
        for p in sorted(path.glob(pattern)) if path.is_dir() else [path]:
            kind = "symlink" if p.is_symlink() else "dir" if p.is_dir() else "file"
            rel = p.relative_to(path).as_posix() if p != path else p.name
            size = p.lstat().st_size if kind == "file" else None
            entries.append({"path": rel, "type": kind, "size": size})
        return {"entries": entries[:MAX_LIST], "truncated": len(entries) > MAX_LIST}

    def _copy(self, path: Path, inp: dict[str, Any]) -> dict[str, Any]:
        target = self._inside(inp.get("to"), "to")
        overwrite = inp.get("overwrite") is True
        if path.is_dir():
            if target.is_relative_to(path):
                raise _bad("to: cannot copy a directory into itself")
            if target.exists() and not overwrite:
                raise TaskError(f"to: {target} exists (set overwrite)", type="FileExists")
            shutil.copytree(path, target, symlinks=True, dirs_exist_ok=overwrite)
            return {"to": str(target), "files": sum(1 for p in target.rglob("*") if p.is_file())}
        target = target / path.name if target.is_dir() else target
        if target.exists() and not overwrite:
            raise TaskError(f"to: {target} exists (set overwrite)", type="FileExists")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        return {"to": str(target), "files": 1}

    def _write(self, path: Path, inp: dict[str, Any]) -> dict[str, Any]:
        if "content" in inp:
            if not isinstance(inp["content"], str):
                raise _bad("content: must be a string (use data for JSON)")
            text = inp["content"]
        elif "data" in inp:
            data = inp["data"]
            plain = isinstance(data, str) and path.suffix != ".json"
            text = data if plain else json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        else:
            raise _bad("content or data: one is required to write")
        if path.is_dir():
            raise _bad(f"path: {path} is a directory")
        created = not path.exists()
        if not created and inp.get("overwrite", True) is False:
            raise TaskError(f"path: {path} exists", type="FileExists")
        raw = text.encode()
        if len(raw) > MAX_WRITE:
            raise _bad(f"content: {len(raw)} bytes is over the {MAX_WRITE} byte limit")
        _write_atomic(path, raw)
        return {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), "created": created}

    # ------------------------------------------------------------ code_generation

    def code(self, task: Task) -> dict[str, Any]:
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
            raise _bad("language: must be typescript, javascript or python")
        if kind not in ("function", "class", "interface", "test"):
            raise _bad("kind: must be function, class, interface or test")
        if not isinstance(spec, dict):
            raise _bad("spec: must be an object")
        py = language == "python"
        if (
            not isinstance(name, str)
            or not _IDENT.match(name)
            or (py and (keyword.iskeyword(name) or "$" in name))
            or name in _RESERVED
        ):
            raise _bad(f"name: {name!r} is not a valid {language} identifier")
        try:
            code = _generate(language, kind, name, spec)
        except ValueError as e:
            raise _bad(f"spec: {e}") from None
        out: dict[str, Any] = {"language": language, "kind": kind, "name": name, "code": code}
        if inp.get("path") is not None:
            path = self._inside(inp.get("path"), "path")
            if path.exists() and inp.get("overwrite") is not True:
                raise TaskError(f"path: {path} exists (set overwrite)", type="FileExists")
            _write_atomic(path, code.encode())
            out["path"] = str(path)
        return out


# ------------------------------------------------------------------ helpers


def _python_package(root: Path) -> Path:
    """The project's package directory (created under src/ when there is none)."""
    for base in (root / "src", root):
        if base.is_dir():
            for d in sorted(base.iterdir()):
                if (d / "__init__.py").is_file() and d.name != "tests":
                    return d
    pkg = root / "src" / tpl.python_package_name(root.name)
    _write_new(pkg / "__init__.py", f'"""{tpl.docstring(root.name)}."""\n')
    return pkg


def _members(raw: Any, where: str) -> tuple[tpl.Member, ...]:
    if raw is None:
        return ()
    if isinstance(raw, dict):  # JSON objects are unordered on the wire: sort by name
        items = sorted((str(k), v) for k, v in raw.items())
    elif isinstance(raw, list):
        items = []
        for m in raw:
            if isinstance(m, str):
                items.append((m, "string"))
            elif isinstance(m, dict) and isinstance(m.get("name"), str):
                opt = "?" if m.get("optional") is True else ""
                items.append((m["name"] + opt, m.get("type", "unknown")))
            else:
                raise ValueError(f"{where}: each entry needs a name")
    else:
        raise ValueError(f"{where}: must be an object of name: type or a list")
    return tuple(
        tpl.parse_member(f"{k}: {v if isinstance(v, str) else 'unknown'}") for k, v in items
    )


def _signature(spec: dict[str, Any]) -> tpl.Signature | None:
    if isinstance(spec.get("signature"), str):
        return tpl.parse_signature(spec["signature"])
    if "params" in spec or "returns" in spec:
        returns = spec.get("returns", "void")
        if not isinstance(returns, str):
            raise ValueError("returns: must be a type")
        return tpl.Signature(_members(spec.get("params"), "params"), tpl.check_type(returns))
    return None


def _methods(raw: Any) -> tuple[tuple[str, tpl.Signature], ...]:
    if raw is None:
        return ()
    if isinstance(raw, dict):
        items = sorted(raw.items())
    elif isinstance(raw, list):
        items = [
            (m.get("name"), m.get("signature", "() => void")) for m in raw if isinstance(m, dict)
        ]
        if len(items) != len(raw):
            raise ValueError("methods: each entry needs {name, signature}")
    else:
        raise ValueError("methods: must be an object of name: signature or a list")
    out = []
    for name, sig in items:
        if not isinstance(name, str) or not _IDENT.match(name) or name in _RESERVED:
            raise ValueError(f"methods: {name!r} is not a method name")
        out.append((name, tpl.parse_signature(sig if isinstance(sig, str) else "() => void")))
    return tuple(out)


def _spec(item: Any, index: int) -> tpl.Spec:
    """A component from a name or a {name, kind, ...} object (BadInput otherwise)."""
    where = f"components[{index}]"
    raw: dict[str, Any] = {"name": item} if isinstance(item, str) else item
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise _bad(f"{where}: must be a name or an object with a name")
    given = raw.get("kind")
    given = _KIND_ALIASES.get(given, given) if isinstance(given, str) else None
    base = raw["name"].strip()
    if given in _KINDS:
        kind = given
    elif re.match(r"use[A-Z]", base):
        kind = "hook"
    elif base[:1].islower():
        kind = "utility"
    elif re.search(r"(Service|Client|Api|Store|Storage|Repository)$", base):
        kind = "service"
    else:
        kind = "component"
    name = tpl.pascal(base) if kind in ("component", "service") else tpl.camel(base)
    if not name or not _IDENT.match(name) or name[0].isdigit() or name in _RESERVED:
        raise _bad(f"{where}.name: {raw['name']!r} does not make an identifier")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _bad(f"{where}.description: must be a string")
    try:
        return tpl.Spec(
            name=name,
            kind=kind,
            description=description,
            props=_members(raw.get("props"), "props"),
            methods=_methods(raw.get("methods")),
            signature=_signature(raw),
        )
    except ValueError as e:
        raise _bad(f"{where}: {e}") from None


def _generate(language: str, kind: str, name: str, spec: dict[str, Any]) -> str:
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise ValueError("description: must be a string")
    ts, py = language == "typescript", language == "python"
    if kind == "test":
        return _test_code(language, name, spec)
    if kind == "interface":
        fields = _members(spec.get("fields", spec.get("props")), "fields")
        if py:
            return tpl.py_typed_dict(name, description, fields)
        return tpl.interface_source(name, description, fields, ts)
    if kind == "class":
        item = tpl.Spec(name, "service", description, methods=_methods(spec.get("methods")))
        return tpl.py_module(item)[0] if py else tpl.module_source(item, ts)
    sig = _signature(spec) or tpl.Signature()
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
    if not isinstance(target, str) or not _IDENT.match(target):
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


def _transform(inp: dict[str, Any]) -> dict[str, Any]:
    if "data" not in inp:
        raise _bad("data: required with transformations")
    data, steps = inp["data"], inp.get("transformations")
    if isinstance(data, str) and data.strip()[:1] in ("[", "{"):
        with contextlib.suppress(ValueError):
            data = json.loads(data)
    if steps is None:
        steps = []
    elif isinstance(steps, str | dict):
        steps = [steps]
    if not isinstance(steps, list):
        raise _bad("transformations: must be a name, an object or a list of them")
    applied = []
    for step in steps:
        args = step if isinstance(step, dict) else {"name": step}
        name = args.get("name", args.get("type", args.get("op")))
        if not isinstance(name, str):
            raise _bad("transformations: each needs a name")
        data = _apply(name, data, args)
        applied.append(name)
    return {"result": data, "applied": applied}


def _strings(value: Any, fn: Any) -> Any:
    """``value`` with ``fn`` applied to every string in it (keys too)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {fn(k): _strings(v, fn) for k, v in value.items()}
    return value


def _order(value: Any) -> tuple[int, Any]:
    """A sort key that orders mixed JSON values: null, bools, numbers, strings, the rest."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    return (4, json.dumps(value, sort_keys=True))


def _apply(name: str, data: Any, args: dict[str, Any]) -> Any:
    """One named transformation; UnknownTransformation or TransformationFailed."""
    key = re.sub(r"[\s_-]", "", name.lower())

    def need(kind: type | tuple[type, ...], what: str) -> None:
        if not isinstance(data, kind):
            raise TaskError(
                f"transformation {name!r} needs {what}, got {type(data).__name__}",
                type="TransformationFailed",
            )

    if key in ("upper", "uppercase"):
        return _strings(data, str.upper)
    if key in ("lower", "lowercase"):
        return _strings(data, str.lower)
    if key in ("trim", "strip"):
        return _strings(data, str.strip)
    if key == "reverse":
        need((list, str), "a list or a string")
        return data[::-1]
    if key in ("lines", "split"):
        need(str, "a string")
        return [line for line in data.splitlines() if line.strip()]
    if key in ("json", "parsejson"):
        need(str, "a string")
        try:
            return json.loads(data)
        except ValueError as e:
            raise TaskError(f"data is not JSON: {e}", type="TransformationFailed") from None
    if key in _LIST_OPS:
        need(list, "a list")
    if key == "sort":
        field, descending = args.get("key"), args.get("descending") is True
        if isinstance(field, str):
            return sorted(
                data,
                key=lambda v: _order(v.get(field) if isinstance(v, dict) else None),
                reverse=descending,
            )
        return sorted(data, key=_order, reverse=descending)
    if key in ("dedupe", "unique", "distinct"):
        seen, out = set(), []
        for v in data:
            marker = json.dumps(v, sort_keys=True)
            if marker not in seen:
                seen.add(marker)
                out.append(v)
        return out
    if key == "compact":
        return [v for v in data if v not in (None, "", [], {})]
    if key == "flatten":
        return [x for v in data for x in (v if isinstance(v, list) else [v])]
    if key == "pick":
        fields = args.get("fields")
        if not isinstance(fields, list):
            raise _bad("transformations: pick needs fields: [names]")
        return [{f: v.get(f) for f in fields} if isinstance(v, dict) else v for v in data]
    raise TaskError(
        f"unknown transformation {name!r}",
        type="UnknownTransformation",
        details={
            "known": [
                "upper",
                "lower",
                "trim",
                "sort",
                "dedupe",
                "reverse",
                "lines",
                "json",
                "compact",
                "flatten",
                "pick",
            ]
        },
    )
