"""``component_generation``: components, services, hooks and utilities written into a
project, in the layout of its flavour (React TS/JS, Node, static, Python), found from the
nearest folder up with package.json, pyproject.toml/setup.py or index.html. A component
whose files exist is skipped, never rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent_sdk import Task
from agentmesh.agents import _sandbox
from agentmesh.agents import _templates as tpl
from agentmesh.agents._build_specs import component_spec
from agentmesh.agents._build_transform import transform
from agentmesh.agents._files import write_new
from agentmesh.agents._inputs import bad


def components(task: Task, root: Path) -> dict[str, Any]:
    """``component_generation``: new files for each component (or, given ``data`` and
    ``transformations`` instead, the data transformed)."""
    inp = task.input
    if "components" not in inp and ("data" in inp or "transformations" in inp):
        return transform(inp)
    raw = inp.get("components")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise bad("components: must be a list of names or {name, kind, ...} objects")
    path = _sandbox.confine(root, inp.get("path"), "path")
    specs = [component_spec(item, i) for i, item in enumerate(raw)]
    project, flavour = _project(root, path, raw)
    created: list[str] = []
    skipped: list[str] = []
    report = []
    for i, spec in enumerate(specs):
        planned = _plan(project, flavour, spec)
        rels = [p.relative_to(project).as_posix() for p, _ in planned]
        if any(p.exists() for p, _ in planned):
            skipped.append(spec.name)
            continue
        written = [rel for (p, text), rel in zip(planned, rels, strict=True) if write_new(p, text)]
        if len(written) < len(planned):
            skipped.append(spec.name)  # another task created it meanwhile
        created += written
        report.append({"name": spec.name, "kind": spec.kind, "files": written})
        task.progress((i + 1) / len(specs), f"generated {spec.name}")
    return {
        "path": str(project),
        "projectType": flavour,
        "files": created,
        "skipped": skipped,
        "components": report,
    }


def _project(root: Path, path: Path, raw: list[Any]) -> tuple[Path, str]:
    """The project root above ``path`` and its flavour (react-ts, react-js, node,
    static, python)."""
    start = path
    while not start.exists() and start != root:
        start = start.parent
    for d in _sandbox.ancestors(root, start):
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
    languages = {c.get("language") for c in raw if isinstance(c, dict)}
    if "python" in languages:
        return path, "python"
    return path, "react-js" if languages == {"javascript"} else "react-ts"


def _plan(root: Path, flavour: str, spec: tpl.Spec) -> list[tuple[Path, str]]:
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


def _python_package(root: Path) -> Path:
    """The project's package directory (created under src/ when there is none)."""
    for base in (root / "src", root):
        if base.is_dir():
            for d in sorted(base.iterdir()):
                if (d / "__init__.py").is_file() and d.name != "tests":
                    return d
    pkg = root / "src" / tpl.python_package_name(root.name)
    write_new(pkg / "__init__.py", f'"""{tpl.docstring(root.name)}."""\n')
    return pkg
