"""The reviewer agent on real project trees: ruff, node --test and pytest run for real."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from agent_sdk.testing import TaskOutcome, run_task
from agentmesh.agents import _codetools as js
from agentmesh.agents.reviewer import create

NEEDS_NODE = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
NEEDS_RUFF = pytest.mark.skipif(js.ruff_executable() is None, reason="ruff is not installed")
SEED_GLOB = "/**/*.{js,ts,jsx,tsx}"


async def run(ws: Path, capability: str, inp: dict[str, Any]) -> TaskOutcome:
    return await run_task(create(None, workspace=ws), capability, inp)


async def failure(ws: Path, capability: str, inp: dict[str, Any]) -> str:
    """The error type of a task that must fail."""
    out = await run(ws, capability, inp)
    assert out.error is not None, out.output
    return out.error.type


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


HEADER_TSX = """import React from 'react';

/** The top bar. */
export function Header({ title }: { title: string }) {
  console.log(title);
  return <h1>{title}</h1>;
}
"""
CARD_TSX = "export const Card = (p: any) => <div>{p.value == 1 ? 'one' : 'many'}</div>;"
OLD_JS = "var total = 0;   \ndebugger;\nif (typeof total == 'number') { total = 1; }\n"
MATH_MJS = "/** Adds. */\nexport function add(a, b) {\n  return a + b;\n}\n"
MATH_TEST = """import { test } from 'node:test';
import assert from 'node:assert/strict';
import { add } from '../src/utils/math.mjs';

test('adds', () => { assert.equal(add(1, 2), 3); });
"""
FAILING_TEST = """import { test } from 'node:test';
import assert from 'node:assert/strict';

test('wrong', () => { assert.equal(1, 2); });
"""


def react_project(ws: Path) -> Path:
    return write(
        ws / "projects" / "dash",
        {
            "package.json": '{"name": "dash", "scripts": {"test": "node --test"}}\n',
            "src/components/Header.tsx": HEADER_TSX,
            "src/components/Card.tsx": CARD_TSX,
            "src/legacy.js": OLD_JS,
            "src/utils/math.mjs": MATH_MJS,
            "tests/math.test.mjs": MATH_TEST,
            "node_modules/lib/index.js": "var ignored = 1",
        },
    )


# -------------------------------------------------------------- code_linting


async def test_linting_expands_the_seed_brace_glob_and_reports_real_issues(tmp_path: Path) -> None:
    root = react_project(tmp_path)
    out = (await run(tmp_path, "code_linting", {"files": str(root) + SEED_GLOB})).output
    assert out["filesChecked"] == 3  # .tsx x2 and .js; .mjs and node_modules are not in the glob
    found = {(i["file"].split("/")[-1], i["line"], i["rule"], i["fixable"]) for i in out["issues"]}
    assert found == {
        ("Header.tsx", 5, "no-console", True),
        ("Card.tsx", 1, "no-explicit-any", False),  # p.value: unknown would not compile
        ("Card.tsx", 1, "eqeqeq", False),
        ("Card.tsx", 1, "eol-last", True),
        ("legacy.js", 1, "no-var", True),
        ("legacy.js", 1, "no-trailing-spaces", True),
        ("legacy.js", 2, "no-debugger", True),
        ("legacy.js", 3, "eqeqeq", True),  # next to typeof: === is equivalent
    }
    assert out["counts"]["total"] == 8
    assert out["counts"]["errors"] == 4
    assert out["counts"]["fixable"] == 6
    assert out["counts"]["byRule"]["eqeqeq"] == 2
    assert all(i["file"].startswith("projects/dash/src/") for i in out["issues"])


async def test_linting_takes_a_list_of_directories_and_a_path(tmp_path: Path) -> None:
    react_project(tmp_path)
    specs = ["projects/dash/src/components", "projects/dash/src/services"]  # services missing
    by_list = (await run(tmp_path, "code_linting", {"files": specs})).output
    assert by_list["filesChecked"] == 2
    by_path = (await run(tmp_path, "code_linting", {"path": "projects/dash"})).output
    assert by_path["filesChecked"] == 5  # + legacy.js, math.mjs, math.test.mjs


async def test_linting_a_glob_under_a_missing_directory_matches_nothing(tmp_path: Path) -> None:
    # project_setup without scaffolding: null + "/**/*.{...}"
    out = await run(tmp_path, "code_linting", {"files": "null" + SEED_GLOB})
    assert out.ok
    assert out.output["issues"] == []
    assert out.output["filesChecked"] == 0


@NEEDS_RUFF
async def test_linting_python_goes_through_ruff(tmp_path: Path) -> None:
    write(tmp_path / "py", {"pkg/mod.py": "import os\n\n\ndef f(x):\n    y = x\n"})
    out = (await run(tmp_path, "code_linting", {"path": "py"})).output
    rules = {i["rule"]: i for i in out["issues"]}
    assert {"F401", "F841"} <= set(rules)
    assert rules["F401"]["source"] == "ruff"
    assert rules["F401"]["file"] == "py/pkg/mod.py"
    assert rules["F401"]["line"] == 1
    assert out["filesChecked"] == 1


async def test_linting_bad_input(tmp_path: Path) -> None:
    assert await failure(tmp_path, "code_linting", {}) == "BadInput"
    assert await failure(tmp_path, "code_linting", {"files": 3}) == "BadInput"
    assert await failure(tmp_path, "code_linting", {"files": ["a", 1]}) == "BadInput"


async def test_linting_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    for spec in ("../elsewhere/**/*.{js,ts}", "/etc/*.conf", str(tmp_path)):
        assert await failure(ws, "code_linting", {"files": spec}) == "PathOutsideWorkspace", spec


async def test_no_capability_follows_a_symlink_out_of_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    outside = write(tmp_path / "outside", {"a.js": "var x = 1\n", "README.md": "# Out\n"})
    write(ws, {"src/b.js": "let y = 1;\n"})
    (ws / "out").symlink_to(outside)
    (ws / "src" / "out").symlink_to(outside)
    for capability, inp in [
        ("code_linting", {"files": "out/*.js"}),
        ("code_linting", {"path": "out"}),
        ("test_execution", {"path": "out"}),
        ("documentation_review", {"path": "out"}),
        ("security_scanning", {"path": "out"}),
    ]:
        assert await failure(ws, capability, inp) == "PathOutsideWorkspace", (capability, inp)
    # Walking a tree does not descend into a link that leads out of it either.
    out = await run(ws, "code_linting", {"path": "src"})
    assert out.ok, out.error
    assert out.output["filesChecked"] == 1


# ------------------------------------------------------------ test_execution


@NEEDS_NODE
async def test_node_tests_run_for_real(tmp_path: Path) -> None:
    root = react_project(tmp_path)
    write(root, {"tests/header.test.ts": "test('renders', () => {});\n"})
    inp = {"path": str(root), "testPattern": "**/*.test.{js,ts}"}
    out = (await run(tmp_path, "test_execution", inp)).output
    assert out["runner"] == "node --test"
    assert out["passed"] is True
    assert (out["succeeded"], out["failed"], out["skipped"], out["total"]) == (1, 0, 1, 2)
    assert out["skippedFiles"][0]["file"] == "projects/dash/tests/header.test.ts"
    assert "# pass 1" in out["output"]

    write(root, {"tests/wrong.test.mjs": FAILING_TEST})
    out = (await run(tmp_path, "test_execution", inp)).output
    assert out["passed"] is False
    assert (out["succeeded"], out["failed"]) == (1, 1)


async def test_python_tests_run_under_pytest(tmp_path: Path) -> None:
    root = write(
        tmp_path / "projects" / "calc",
        {
            "pyproject.toml": '[project]\nname = "calc"\nversion = "0.1.0"\n',
            "src/calc/__init__.py": "def add(a, b):\n    return a + b\n",
            "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n"
            "    assert add(2, 2) == 4\n",
        },
    )
    out = (await run(tmp_path, "test_execution", {"path": "projects/calc"})).output
    assert out["runner"] == "pytest"
    assert (out["passed"], out["succeeded"], out["failed"]) == (True, 1, 0)

    write(root, {"tests/test_bad.py": "def test_bad():\n    assert 1 == 2\n"})
    out = (await run(tmp_path, "test_execution", {"path": "projects/calc"})).output
    assert (out["passed"], out["succeeded"], out["failed"], out["total"]) == (False, 1, 1, 2)
    assert "1 failed" in out["output"]


async def test_no_tests_found(tmp_path: Path) -> None:
    write(tmp_path / "empty", {"src/index.ts": "export const x = 1;\n"})
    out = (await run(tmp_path, "test_execution", {"path": "empty"})).output
    assert out["passed"] is False
    assert out["total"] == 0
    assert out["reason"] == "no tests found"


async def test_test_execution_bad_input_and_escape(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert await failure(ws, "test_execution", {}) == "BadInput"
    assert await failure(ws, "test_execution", {"path": ".", "testPattern": 5}) == "BadInput"
    assert await failure(ws, "test_execution", {"path": "../.."}) == "PathOutsideWorkspace"


# ------------------------------------------------------ documentation_review

GOOD_README = """# Dash

A dashboard.

## Installation

npm install

## Usage

npm start; see [the guide](docs/guide.md#start) and [the site](https://example.com).
"""


async def test_documentation_review_scores_a_documented_project_high(tmp_path: Path) -> None:
    write(
        tmp_path / "p",
        {
            "README.md": GOOD_README,
            "docs/guide.md": "# Guide\n\nBack to the [README](../README.md).\n",
            "src/math.mjs": MATH_MJS,
            "src/pkg/util.py": '"""Utils."""\n\n\ndef double(x):\n    """Twice x."""\n'
            "    return 2 * x\n",
        },
    )
    out = (await run(tmp_path, "documentation_review", {"path": "p"})).output
    assert out["score"] == 100
    assert out["findings"] == []
    assert out["sections"] == {"install": True, "usage": True}
    assert out["coverage"] == {"documented": 2, "total": 2, "ratio": 1.0, "undocumented": []}
    assert sorted(out["files"]) == ["p/README.md", "p/docs/guide.md"]


async def test_readme_sections_count_when_their_commands_are_there(tmp_path: Path) -> None:
    readme = "# Tool\n\nDoes things.\n\n## Commands\n\n- `npm install`\n- `npm test`\n"
    write(tmp_path / "p", {"README.md": readme})
    out = (await run(tmp_path, "documentation_review", {"path": "p"})).output
    assert out["sections"] == {"install": True, "usage": True}
    write(
        tmp_path / "p",
        {"README.md": "# Tool\n\nDoes things.\n\nMore.\n\nEven more.\n\nAnd more.\n"},
    )
    out = (await run(tmp_path, "documentation_review", {"path": "p"})).output
    assert out["sections"] == {"install": False, "usage": False}
    assert out["score"] == 80


async def test_documentation_review_finds_what_is_missing(tmp_path: Path) -> None:
    write(
        tmp_path / "p",
        {
            "docs/notes.md": "See [setup](setup.md) and [api](../api/index.md).\n",
            "src/Card.tsx": CARD_TSX + "\n",
            "src/math.mjs": MATH_MJS,
            "tests/card.test.mjs": "export function helper() {}\n",  # tests are not counted
        },
    )
    out = (await run(tmp_path, "documentation_review", {"path": "p"})).output
    kinds = [(f["kind"], f["severity"]) for f in out["findings"]]
    assert ("readme", "error") in kinds
    broken = [f for f in out["findings"] if f["kind"] == "broken-link"]
    assert [(f["file"], f["line"]) for f in broken] == [("p/docs/notes.md", 1)] * 2
    assert out["coverage"]["documented"] == 1
    assert out["coverage"]["total"] == 2
    assert out["coverage"]["undocumented"] == ["p/src/Card.tsx:1 Card"]
    assert out["score"] == 100 - 40 - 10 - 15
    assert out["readme"] is None


async def test_documentation_review_bad_input(tmp_path: Path) -> None:
    assert await failure(tmp_path, "documentation_review", {}) == "BadInput"
    assert await failure(tmp_path, "documentation_review", {"path": "nope"}) == "BadInput"
    assert (
        await failure(tmp_path / "ws", "documentation_review", {"path": str(tmp_path)})
        == "PathOutsideWorkspace"
    )


# --------------------------------------------------------- security_scanning

AWS_KEY = "AKIA" + "ABCDEFGHIJKLMNOP"  # split so this file does not trip scanners
PRIVATE_KEY = "-----BEGIN RSA " + "PRIVATE KEY-----"
PY_DANGERS = f"""import os, pickle, subprocess, yaml

AWS = "{AWS_KEY}"
password = "hunter2hunter2"
placeholder_password = "changeme-later"

def f(data, cmd):
    eval(data)
    pickle.loads(data)
    subprocess.run(cmd, shell=True)
    subprocess.run(["ls"], shell=False)
    os.system(cmd)
    yaml.load(data)
    yaml.load(data, Loader=yaml.SafeLoader)
"""
JS_DANGERS = """const { exec } = require('child_process');
// eval(notCode) in a comment is fine
const s = "eval(in a string) is fine";
el.innerHTML = html;
exec(cmd);
const C = () => <div dangerouslySetInnerHTML={{ __html: x }} />;
const blob = "aZ3kP9qL2mX8vB4nR7tY1wE5uI0oS6dF";
"""


async def test_security_scanning_finds_secrets_and_dangerous_calls(tmp_path: Path) -> None:
    write(
        tmp_path / "p",
        {
            "app/main.py": PY_DANGERS,
            "web/ui.jsx": JS_DANGERS,
            "deploy/key.pem.env": PRIVATE_KEY + "\n",
            "package-lock.json": '{"integrity": "sha512-aZ3kP9qL2mX8vB4nR7tY1wE5uI0oS6dF"}',
        },
    )
    out = (await run(tmp_path, "security_scanning", {"path": "p"})).output
    got = {(f["file"].split("/")[-1], f["line"], f["rule"]) for f in out["findings"]}
    assert got == {
        ("main.py", 3, "aws-access-key"),
        ("main.py", 4, "hardcoded-secret"),
        ("main.py", 8, "py-eval"),
        ("main.py", 9, "py-pickle"),
        ("main.py", 10, "py-subprocess-shell"),
        ("main.py", 12, "py-os-system"),
        ("main.py", 13, "py-yaml-load"),
        ("ui.jsx", 4, "js-inner-html"),
        ("ui.jsx", 5, "js-child-process-exec"),
        ("ui.jsx", 6, "react-dangerously-set-inner-html"),
        ("ui.jsx", 7, "high-entropy-string"),
        ("key.pem.env", 1, "private-key"),
    }
    assert out["counts"]["critical"] == 2
    assert out["filesScanned"] == 3  # the lockfile is skipped
    assert all(
        "hunter2" not in f["message"] and AWS_KEY not in f["message"] for f in out["findings"]
    )


async def test_security_scanning_a_clean_project_and_files_input(tmp_path: Path) -> None:
    root = react_project(tmp_path)
    out = (await run(tmp_path, "security_scanning", {"files": str(root) + SEED_GLOB})).output
    assert out["findings"] == []
    assert out["counts"]["total"] == 0
    assert out["filesScanned"] == 3


async def test_security_scanning_bad_input_and_escape(tmp_path: Path) -> None:
    assert await failure(tmp_path, "security_scanning", {}) == "BadInput"
    assert (
        await failure(tmp_path / "ws", "security_scanning", {"path": "../"})
        == "PathOutsideWorkspace"
    )


# ------------------------------------------------------------------- agent


def test_the_agent_offers_exactly_the_seed_capabilities(tmp_path: Path) -> None:
    agent = create(None, workspace=tmp_path / "new")
    assert agent.name == agent.type == "reviewer"
    assert agent.capabilities == [
        "code_linting",
        "test_execution",
        "documentation_review",
        "security_scanning",
    ]
    assert (tmp_path / "new").is_dir()


def test_mask_blanks_comments_and_strings_but_keeps_template_code() -> None:
    src = "a == 1 // b == 2\nconst s = 'c == 3'; /* d == 4 */ `e ${f == 5} g`;"
    masked = js.mask(src)
    assert len(masked) == len(src)
    assert masked.count("==") == 2  # a == 1 and f == 5
    assert masked.split("\n")[1].startswith("const s = '______';")


def test_brace_expansion() -> None:
    assert js.expand_braces("src/**/*.{js,ts}") == ["src/**/*.js", "src/**/*.ts"]
    assert js.expand_braces("{a,b}/{c,d}") == ["a/c", "a/d", "b/c", "b/d"]
    assert js.expand_braces("plain/*.js") == ["plain/*.js"]
