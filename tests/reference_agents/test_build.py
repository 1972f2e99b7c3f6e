"""The build agent writing real project trees; generated tests run with node and pytest."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent_sdk.testing import TaskOutcome, run_task
from agentmesh.agents.build import create

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")
RUFF = Path(sys.executable).parent / "ruff"

# What the planner's task_planning gives for the demo's dashboard (coreComponents,
# utilityComponents, specifications.dataServices), plus a hook and bare names.
CORE = [
    {"name": "Header", "kind": "component", "description": "Top bar", "props": {"title": "string"}},
    {"name": "Sidebar", "kind": "component", "props": {"items": "NavItem[]"}},
    {
        "name": "StatCard",
        "kind": "component",
        "description": "One metric */ with a comment terminator",
        "props": {"label": "string", "value": "number", "trend?": "number"},
    },
]
UTILS = [
    {"name": "formatNumber", "kind": "utility", "signature": "(value: number) => string"},
    {"name": "chunk", "kind": "utility", "signature": "<T>(items: T[], size: number) => T[][]"},
]
SERVICES = [
    {
        "name": "MetricsService",
        "kind": "service",
        "methods": {"getStats": "() => Promise<Stat[]>", "find": "(id: string) => Stat | null"},
    }
]


async def run(ws: Path, capability: str, inp: dict[str, Any]) -> TaskOutcome:
    return await run_task(create(None, workspace=ws), capability, inp)


def error_type(outcome: TaskOutcome) -> str:
    assert outcome.error is not None, outcome.output
    return outcome.error.type


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def node_test(project: Path) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run([NODE, "--test"], cwd=project, capture_output=True, text=True, timeout=60)


def pytest_in(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ruff_clean(project: Path) -> bool:
    if not RUFF.is_file():
        return True
    return (
        subprocess.run([str(RUFF), "check", "--isolated", "--no-cache", str(project)]).returncode
        == 0
    )


def real(path: Path) -> Path:
    return path.resolve()


def lint_js(project: Path) -> list[str]:
    jslint = pytest.importorskip("agentmesh.agents._codetools")
    found = []
    for p in project.rglob("*"):
        if p.suffix in (".js", ".jsx", ".ts", ".tsx", ".mjs"):
            issues = jslint.lint(p.read_text(), typescript=p.suffix in (".ts", ".tsx"))
            found += [f"{p.name}:{i.line}: {i.rule}" for i in issues]
    return found


async def scaffold(ws: Path, ptype: str = "react-typescript", name: str = "app") -> Path:
    out = await run(ws, "project_scaffolding", {"projectType": ptype, "name": name})
    assert out.ok, out.error
    return Path(out.output["path"])


def test_registers_exactly_the_seed_capabilities(tmp_path: Path) -> None:
    agent = create(None, workspace=tmp_path)
    assert agent.name == agent.type == "build"
    assert sorted(agent.capabilities) == [
        "code_generation",
        "component_generation",
        "file_operations",
        "project_scaffolding",
    ]


# ------------------------------------------------------------ project_scaffolding


async def test_scaffold_react_typescript_layout(tmp_path: Path) -> None:
    inp = {"projectType": "react-typescript", "name": "dashboard-app", "options": {}}
    out = await run(tmp_path, "project_scaffolding", inp)
    assert out.ok, out.error
    project = real(tmp_path) / "projects" / "dashboard-app"
    assert out.output["path"] == str(project)
    assert out.output["projectType"] == "react-typescript"
    assert out.output["testCommand"] == "node --test"
    assert out.output["files"] == files_under(project)
    for rel in (
        "package.json",
        "tsconfig.json",
        "index.html",
        "src/main.tsx",
        "src/App.tsx",
        "src/components/Layout.tsx",
        "src/utils/format.mjs",
        "src/utils/format.ts",
        "src/services/http.ts",
        "tests/format.test.mjs",
        "README.md",
        ".gitignore",
    ):
        assert (project / rel).is_file(), rel
    assert (project / "src" / "hooks").is_dir()
    pkg = json.loads((project / "package.json").read_text())
    assert pkg["name"] == "dashboard-app"
    assert pkg["dependencies"]["react"].startswith("^18")
    assert pkg["devDependencies"]["typescript"].startswith("~4.9")
    assert pkg["scripts"]["test"] == "node --test"
    tsconfig = json.loads((project / "tsconfig.json").read_text())
    assert tsconfig["compilerOptions"]["strict"] is True
    assert 'from "./utils/format"' in (project / "src" / "App.tsx").read_text()
    assert lint_js(project) == []
    assert [p.name for p in (tmp_path / "projects").iterdir()] == ["dashboard-app"]


@needs_node
@pytest.mark.parametrize("ptype", ["react-typescript", "react", "node-service", "static-site"])
async def test_scaffolded_js_projects_pass_node_test(tmp_path: Path, ptype: str) -> None:
    project = await scaffold(tmp_path, ptype)
    proc = node_test(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "# pass 2" in proc.stdout or "# pass 4" in proc.stdout
    assert "# fail 0" in proc.stdout
    assert lint_js(project) == []


async def test_scaffold_python_package_passes_pytest_and_ruff(tmp_path: Path) -> None:
    out = await run(
        tmp_path, "project_scaffolding", {"projectType": "Python", "name": "data-tools"}
    )
    assert out.ok, out.error
    project = Path(out.output["path"])
    assert out.output["projectType"] == "python-package"
    assert out.output["testCommand"] == "pytest"
    assert (project / "src" / "data_tools" / "__init__.py").is_file()
    proc = pytest_in(project)
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout + proc.stderr
    assert ruff_clean(project)


@pytest.mark.parametrize(
    ("given", "options", "expected"),
    [
        ("React TypeScript", {}, "react-typescript"),
        ("react", {"typescript": True}, "react-typescript"),
        ("react_js", {}, "react"),
        ("node", {}, "node-service"),
    ],
)
async def test_project_type_aliases(
    tmp_path: Path, given: str, options: dict[str, Any], expected: str
) -> None:
    inp = {"projectType": given, "name": "x", "options": options}
    out = await run(tmp_path, "project_scaffolding", inp)
    assert out.ok, out.error
    assert out.output["projectType"] == expected


async def test_existing_project_needs_overwrite(tmp_path: Path) -> None:
    project = await scaffold(tmp_path)
    (project / "README.md").write_text("changed\n")
    (project / "mine.txt").write_text("keep me\n")
    out = await run(tmp_path, "project_scaffolding", {"projectType": "react", "name": "app"})
    assert error_type(out) == "ProjectExists"
    assert (project / "README.md").read_text() == "changed\n"
    inp = {"projectType": "react-typescript", "name": "app", "options": {"overwrite": True}}
    out = await run(tmp_path, "project_scaffolding", inp)
    assert out.ok, out.error
    assert out.output["overwritten"] is True
    assert (project / "README.md").read_text().startswith("# App")
    assert (project / "mine.txt").read_text() == "keep me\n"


async def test_scaffold_errors(tmp_path: Path) -> None:
    out = await run(tmp_path, "project_scaffolding", {"projectType": "cobol", "name": "x"})
    assert error_type(out) == "UnknownProjectType"
    for inp in (
        {"name": "x"},
        {"projectType": "react"},
        {"projectType": "react", "name": "../escape"},
        {"projectType": "react", "name": "a/b"},
        {"projectType": "react", "name": ""},
        {"projectType": "react", "name": "x", "options": []},
        {"projectType": "react", "name": "x", "options": {"overwrite": "yes"}},
    ):
        assert error_type(await run(tmp_path, "project_scaffolding", inp)) == "BadInput", inp
    assert not (tmp_path / "escape").exists()


# ----------------------------------------------------------- component_generation


@needs_node
async def test_generate_planner_components_into_react_typescript(tmp_path: Path) -> None:
    project = await scaffold(tmp_path)
    out = await run(tmp_path, "component_generation", {"components": CORE, "path": str(project)})
    assert out.ok, out.error
    assert out.output["path"] == str(project) and out.output["projectType"] == "react-ts"
    assert out.output["files"] == [
        "src/components/Header.tsx",
        "src/components/Sidebar.tsx",
        "src/components/StatCard.tsx",
    ]
    sidebar = (project / "src/components/Sidebar.tsx").read_text()
    assert "export type NavItem = Record<string, unknown>;" in sidebar
    assert "export interface SidebarProps {\n  items: NavItem[];\n}" in sidebar
    assert "export function Sidebar({ items }: SidebarProps): JSX.Element {" in sidebar
    stat = (project / "src/components/StatCard.tsx").read_text()
    assert "  trend?: number;" in stat and "*/ with" not in stat

    utils = await run(tmp_path, "component_generation", {"components": UTILS, "path": str(project)})
    assert utils.ok, utils.error
    assert sorted(utils.output["files"]) == [
        "src/utils/chunk.mjs",
        "src/utils/chunk.ts",
        "src/utils/formatNumber.mjs",
        "src/utils/formatNumber.ts",
        "tests/chunk.test.mjs",
        "tests/formatNumber.test.mjs",
    ]
    assert (project / "src/utils/formatNumber.ts").read_text() == (
        'export { formatNumber } from "./formatNumber.mjs";\n'
    )
    proc = node_test(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "# pass 4" in proc.stdout  # titleCase x2, formatNumber, chunk
    assert lint_js(project) == []


async def test_existing_components_are_skipped(tmp_path: Path) -> None:
    project = await scaffold(tmp_path)
    inp = {"components": ["Header", "Layout"], "path": str(project)}
    out = await run(tmp_path, "component_generation", inp)
    assert out.ok, out.error
    assert out.output["skipped"] == ["Layout"]  # the scaffold's own
    before = (project / "src/components/Header.tsx").read_text()
    again = await run(tmp_path, "component_generation", inp)
    assert again.output["files"] == [] and again.output["skipped"] == ["Header", "Layout"]
    assert (project / "src/components/Header.tsx").read_text() == before


async def test_subfolder_path_finds_the_project_root(tmp_path: Path) -> None:
    """implement_feature passes projectPath + "/src/components" for services too."""
    project = await scaffold(tmp_path)
    inp = {
        "components": [*SERVICES, "useCounter", "slugify"],
        "path": str(project / "src/components"),
    }
    out = await run(tmp_path, "component_generation", inp)
    assert out.ok, out.error
    assert out.output["path"] == str(project)
    kinds = {c["name"]: c["kind"] for c in out.output["components"]}
    assert kinds == {"MetricsService": "service", "useCounter": "hook", "slugify": "utility"}
    service = (project / "src/services/MetricsService.ts").read_text()
    assert "export class MetricsService {" in service
    assert "  async getStats(): Promise<Stat[]> {\n    return [];\n  }" in service
    assert "  find(id: string): Stat | null {\n    return null;\n  }" in service
    assert 'import { useState } from "react";' in (project / "src/hooks/useCounter.ts").read_text()


async def test_generate_into_python_package(tmp_path: Path) -> None:
    project = await scaffold(tmp_path, "python-package", "tools")
    comps = [
        {"name": "MetricsService", "kind": "service", "methods": {"count": "() => number"}},
        {"name": "cli", "kind": "module", "methods": {"main": "(argv: string[]) => number"}},
    ]
    out = await run(tmp_path, "component_generation", {"components": comps, "path": str(project)})
    assert out.ok, out.error
    assert out.output["projectType"] == "python"
    assert sorted(out.output["files"]) == [
        "src/tools/cli.py",
        "src/tools/metrics_service.py",
        "tests/test_cli.py",
        "tests/test_metrics_service.py",
    ]
    proc = pytest_in(project)
    assert proc.returncode == 0 and "4 passed" in proc.stdout, proc.stdout + proc.stderr
    assert ruff_clean(project)


async def test_component_errors(tmp_path: Path) -> None:
    project = str(await scaffold(tmp_path))
    for components in (
        "Header",
        [{"kind": "component"}],
        [42],
        [{"name": "9lives"}],
        [{"name": "f", "kind": "utility", "signature": "not a signature"}],
        [{"name": "X", "props": {"a": "string */ alert(1) /*"}}],
        [{"name": "X", "props": {"a": "string\nevil()"}}],
    ):
        out = await run(
            tmp_path, "component_generation", {"components": components, "path": project}
        )
        assert error_type(out) == "BadInput", components
    out = await run(tmp_path, "component_generation", {"components": ["X"], "path": "/tmp"})
    assert error_type(out) == "PathOutsideWorkspace"


# ------------------------------------------------------------ transform (seed shape)


@pytest.mark.parametrize(
    ("data", "transformations", "expected"),
    [
        ([" b", "a ", "b", "c"], ["trim", "dedupe", "sort", "upper"], ["A", "B", "C"]),
        ("[3, 1, 2, 3]", "sort", [1, 2, 3, 3]),
        ("x\n\ny\n", ["lines", "reverse"], ["y", "x"]),
        (
            [{"n": 2, "k": "a"}, {"n": 1, "k": "b"}],
            [{"name": "sort", "key": "n"}, {"name": "pick", "fields": ["k"]}],
            [{"k": "b"}, {"k": "a"}],
        ),
        ({"Key": "Value"}, ["lower"], {"key": "value"}),
        ([1, None, "", [2, 3]], ["compact", "flatten"], [1, 2, 3]),
        ("unchanged", None, "unchanged"),
    ],
)
async def test_transform(tmp_path: Path, data: Any, transformations: Any, expected: Any) -> None:
    out = await run(
        tmp_path, "component_generation", {"data": data, "transformations": transformations}
    )
    assert out.ok, out.error
    assert out.output["result"] == expected


async def test_transform_errors(tmp_path: Path) -> None:
    out = await run(tmp_path, "component_generation", {"data": [1], "transformations": ["fly"]})
    assert error_type(out) == "UnknownTransformation"
    out = await run(tmp_path, "component_generation", {"data": {"a": 1}, "transformations": "sort"})
    assert error_type(out) == "TransformationFailed"
    out = await run(tmp_path, "component_generation", {"transformations": ["sort"]})
    assert error_type(out) == "BadInput"
    out = await run(tmp_path, "component_generation", {"data": [1], "transformations": 5})
    assert error_type(out) == "BadInput"


# ---------------------------------------------------------------- file_operations


async def test_file_operations_round_trip(tmp_path: Path) -> None:
    # data_processing's save_results: {data, path} writes JSON.
    out = await run(tmp_path, "file_operations", {"data": {"rows": [1, 2]}, "path": "out/r.json"})
    assert out.ok, out.error
    target = real(tmp_path) / "out" / "r.json"
    assert out.output["path"] == str(target) and out.output["created"] is True
    assert json.loads(target.read_text()) == {"rows": [1, 2]}
    read = await run(tmp_path, "file_operations", {"action": "read", "path": "out/r.json"})
    assert read.output["data"] == {"rows": [1, 2]}
    assert read.output["bytes"] == target.stat().st_size
    await run(tmp_path, "file_operations", {"content": "hi\n", "path": "out/notes.txt"})
    assert (tmp_path / "out" / "notes.txt").read_text() == "hi\n"
    await run(tmp_path, "file_operations", {"action": "mkdir", "path": "out/sub/deeper"})
    copy = await run(
        tmp_path, "file_operations", {"action": "copy", "path": "out/notes.txt", "to": "out/sub"}
    )
    assert copy.output["to"] == str(real(tmp_path) / "out" / "sub" / "notes.txt")
    listing = await run(
        tmp_path, "file_operations", {"action": "list", "path": "out", "recursive": True}
    )
    assert [(e["path"], e["type"]) for e in listing.output["entries"]] == [
        ("notes.txt", "file"),
        ("r.json", "file"),
        ("sub", "dir"),
        ("sub/deeper", "dir"),
        ("sub/notes.txt", "file"),
    ]
    out = await run(tmp_path, "file_operations", {"action": "delete", "path": "out/sub"})
    assert error_type(out) == "BadInput"
    out = await run(
        tmp_path, "file_operations", {"action": "delete", "path": "out/sub", "recursive": True}
    )
    assert out.output["deleted"] is True and not (tmp_path / "out" / "sub").exists()


async def test_file_operation_errors(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"action": "rename", "path": "a.txt"}, "BadInput"),
        ({"path": "a.txt"}, "BadInput"),
        ({"action": "write", "path": "b.txt"}, "BadInput"),
        ({"action": "write", "path": "b.txt", "content": 5}, "BadInput"),
        ({"action": "read", "path": "missing.txt"}, "FileNotFound"),
        ({"content": "x", "path": "a.txt", "overwrite": False}, "FileExists"),
        ({"content": "x", "path": "../outside.txt"}, "PathOutsideWorkspace"),
        ({"action": "read", "path": "/etc/passwd"}, "PathOutsideWorkspace"),
        ({"action": "copy", "path": "a.txt", "to": "/tmp/x"}, "PathOutsideWorkspace"),
        ({"action": "delete", "path": "."}, "BadInput"),
    ]
    for inp, expected in cases:
        assert error_type(await run(tmp_path, "file_operations", inp)) == expected, inp
    assert (tmp_path / "a.txt").read_text() == "a"


async def test_no_capability_writes_or_reads_through_a_symlink_out(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (ws / "a.txt").write_text("a")
    (ws / "out").symlink_to(outside)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("file_operations", {"action": "read", "path": "out/secret.txt"}),
        ("file_operations", {"content": "x", "path": "out/new.txt"}),
        ("file_operations", {"action": "mkdir", "path": "out/dir"}),
        ("file_operations", {"action": "delete", "path": "out/secret.txt"}),
        ("file_operations", {"action": "copy", "path": "a.txt", "to": "out/copy.txt"}),
        ("component_generation", {"components": ["Header"], "path": "out"}),
        (
            "code_generation",
            {"language": "typescript", "kind": "function", "name": "f", "path": "out/f.ts"},
        ),
    ]
    for capability, inp in cases:
        assert error_type(await run(ws, capability, inp)) == "PathOutsideWorkspace", inp
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


# ---------------------------------------------------------------- code_generation


@needs_node
async def test_generated_javascript_function_and_test_run(tmp_path: Path) -> None:
    fn = {
        "language": "javascript",
        "kind": "function",
        "name": "add",
        "spec": {"signature": "(a: number, b: number) => number", "body": "return a + b;"},
        "path": "lib/add.mjs",
    }
    out = await run(tmp_path, "code_generation", fn)
    assert out.ok, out.error
    assert "export function add(a, b) {\n  return a + b;\n}" in out.output["code"]
    assert " * @param {number} a" in out.output["code"]
    test = {
        "language": "javascript",
        "kind": "test",
        "name": "add",
        "spec": {
            "target": "add",
            "module": "./add.mjs",
            "cases": [{"args": [1, 2], "expected": 3}, {"args": [-1, 1], "expected": 0}],
        },
        "path": "lib/add.test.mjs",
    }
    out = await run(tmp_path, "code_generation", test)
    assert out.ok, out.error
    proc = node_test(tmp_path / "lib")
    assert proc.returncode == 0 and "# pass 2" in proc.stdout, proc.stdout + proc.stderr


async def test_generated_typescript_and_python(tmp_path: Path) -> None:
    out = await run(
        tmp_path,
        "code_generation",
        {
            "language": "typescript",
            "kind": "interface",
            "name": "User",
            "spec": {"fields": {"id": "string", "roles?": "Role[]"}},
        },
    )
    assert out.ok, out.error
    assert out.output["code"] == (
        "export type Role = Record<string, unknown>;\n\n"
        "export interface User {\n  id: string;\n  roles?: Role[];\n}\n"  # keys sorted
    )
    out = await run(
        tmp_path,
        "code_generation",
        {
            "language": "python",
            "kind": "class",
            "name": "Store",
            "spec": {"methods": {"get": "(key: string) => string | null"}},
            "path": "py/store.py",
        },
    )
    assert out.ok, out.error
    code = (tmp_path / "py" / "store.py").read_text()
    assert "class Store:" in code and "def get(self, key: str) -> str | None:" in code
    compile(code, "store.py", "exec")
    test = {
        "language": "python",
        "kind": "test",
        "name": "get",
        "spec": {"target": "identity", "cases": [{"args": [[1]], "expected": [1]}]},
    }
    out = await run(tmp_path, "code_generation", test)
    assert out.ok, out.error
    assert "from identity import identity" in out.output["code"]
    assert "([[1]], [1])," in out.output["code"]


async def test_code_generation_errors(tmp_path: Path) -> None:
    (tmp_path / "f.ts").write_text("keep")
    base = {"language": "typescript", "kind": "function", "name": "f"}
    for inp in (
        {**base, "language": "cobol"},
        {**base, "kind": "macro"},
        {**base, "name": "not-an-identifier"},
        {**base, "name": "delete"},
        {**base, "language": "python", "name": "class"},
        {**base, "spec": {"signature": "nonsense"}},
        {**base, "spec": []},
    ):
        assert error_type(await run(tmp_path, "code_generation", inp)) == "BadInput", inp
    out = await run(tmp_path, "code_generation", {**base, "path": "f.ts"})
    assert error_type(out) == "FileExists"
    out = await run(tmp_path, "code_generation", {**base, "path": "../f.ts"})
    assert error_type(out) == "PathOutsideWorkspace"
    assert (tmp_path / "f.ts").read_text() == "keep"
