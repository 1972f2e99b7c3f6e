"""The executor agent on real processes, real git repositories and real file trees."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent_sdk.testing import TaskOutcome, run_task
from agents.executor import MAX_OUTPUT, create

PY = sys.executable
# The seed's data_processing handle_save_error command, with its template filled in.
SEED_SAVE_ERROR = (
    'mkdir -p $(dirname out/data.json) && echo "Error saving data" > out/data.json.error.log'
)


async def run(ws: Path, capability: str, inp: dict[str, Any], **options: Any) -> TaskOutcome:
    return await run_task(create(None, workspace=ws, **options), capability, inp)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def real(path: Path) -> Path:
    return path.resolve()


def reaped(pid: int) -> bool:
    """Whether process ``pid`` is gone or a zombie."""
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(") ")[1].startswith("Z")


def error_type(outcome: TaskOutcome) -> str:
    assert outcome.error is not None, outcome.output
    return outcome.error.type


def test_registers_exactly_the_seed_capabilities(tmp_path: Path) -> None:
    agent = create(None, workspace=tmp_path / "ws")
    assert agent.name == agent.type == "executor"
    assert sorted(agent.capabilities) == [
        "command_execution",
        "deployment",
        "git_operations",
        "system_monitoring",
    ]
    assert (tmp_path / "ws").is_dir()


# ------------------------------------------------------------ command_execution


async def test_command_list_runs_and_reports_output(tmp_path: Path) -> None:
    out = await run(tmp_path, "command_execution", {"command": [PY, "-c", "print('hi there')"]})
    assert out.ok, out.error
    assert out.output["exitCode"] == 0
    assert out.output["stdout"] == "hi there\n"
    assert out.output["result"] == "hi there"
    assert out.output["truncated"] is False
    assert out.output["durationMs"] >= 0


async def test_string_command_is_split_without_a_shell(tmp_path: Path) -> None:
    out = await run(tmp_path, "command_execution", {"command": "echo 'a b'   c $HOME"})
    assert out.ok, out.error
    assert out.output["argv"] == ["echo", "a b", "c", "$HOME"]
    assert out.output["result"] == "a b c $HOME"  # no expansion without a shell


async def test_cwd_is_resolved_inside_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "sub" / "dir").mkdir(parents=True)
    out = await run(tmp_path, "command_execution", {"command": "pwd", "cwd": "sub/dir"})
    assert out.ok, out.error
    assert out.output["result"] == str(real(tmp_path / "sub" / "dir"))
    out = await run(tmp_path, "command_execution", {"command": "pwd"})
    assert out.output["result"] == str(real(tmp_path))


async def test_environment_is_an_allowlist_plus_the_task_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTMESH_TEST_SECRET", "hunter2")
    out = await run(tmp_path, "command_execution", {"command": "env", "env": {"MY_FLAG": "on"}})
    assert out.ok, out.error
    names = {line.partition("=")[0] for line in out.output["stdout"].splitlines()}
    assert "MY_FLAG=on" in out.output["stdout"].splitlines()
    assert "AGENTMESH_TEST_SECRET" not in names
    assert names <= {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "MY_FLAG", "PWD"}


async def test_seed_shell_commands_fail_as_shell_not_allowed(tmp_path: Path) -> None:
    for command in (
        SEED_SAVE_ERROR,
        'echo "Data processing completed successfully" | mail -s "Success" a@example.com',
        "ls 2>&1",
        "echo `id`",
    ):
        out = await run(tmp_path, "command_execution", {"command": command})
        assert error_type(out) == "ShellNotAllowed", command
        assert out.error is not None and not out.error.retryable
    assert not (tmp_path / "out").exists()


async def test_shell_needs_both_the_task_and_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inp = {"command": "echo abc | tr a x", "shell": True}
    assert error_type(await run(tmp_path, "command_execution", inp)) == "ShellNotAllowed"
    out = await run(tmp_path, "command_execution", inp, allow_shell=True)
    assert out.ok, out.error
    assert out.output["result"] == "xbc"
    monkeypatch.setenv("AGENTMESH_EXECUTOR_ALLOW_SHELL", "1")
    out = await run(tmp_path, "command_execution", {"command": SEED_SAVE_ERROR, "shell": True})
    assert out.ok, out.error
    assert (tmp_path / "out" / "data.json.error.log").read_text() == "Error saving data\n"


async def test_nonzero_exit_is_command_failed_with_details(tmp_path: Path) -> None:
    code = "import sys; sys.stderr.write('boom'); sys.exit(3)"
    out = await run(tmp_path, "command_execution", {"command": [PY, "-c", code]})
    assert error_type(out) == "CommandFailed"
    assert out.error is not None and out.error.details is not None
    assert out.error.details["exitCode"] == 3
    assert out.error.details["stderr"] == "boom"
    assert "exited with 3" in out.error.message


async def test_missing_executable_is_command_not_found(tmp_path: Path) -> None:
    out = await run(tmp_path, "command_execution", {"command": "no-such-binary-xyz --help"})
    assert error_type(out) == "CommandNotFound"


async def test_timeout_is_retryable_and_kills_the_process_group(tmp_path: Path) -> None:
    code = (
        "import subprocess; p = subprocess.Popen(['sleep', '30']); "
        "open('child.pid', 'w').write(str(p.pid)); p.wait()"
    )
    started = time.monotonic()
    out = await run(tmp_path, "command_execution", {"command": [PY, "-c", code], "timeout": 1})
    assert time.monotonic() - started < 10
    assert error_type(out) == "CommandTimeout"
    assert out.error is not None and out.error.retryable
    child = int((tmp_path / "child.pid").read_text())
    for _ in range(50):  # the orphaned child is killed; its reaper may need a moment
        if reaped(child):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail(f"child {child} outlived the timeout")


async def test_large_output_is_truncated(tmp_path: Path) -> None:
    code = f"import sys; sys.stdout.write('x' * {MAX_OUTPUT + 1000})"
    out = await run(tmp_path, "command_execution", {"command": [PY, "-c", code]})
    assert out.ok, out.error
    assert out.output["truncated"] is True
    assert len(out.output["stdout"]) == MAX_OUTPUT


@pytest.mark.parametrize(
    "inp",
    [
        {},
        {"command": ""},
        {"command": []},
        {"command": ["echo", 1]},
        {"command": "echo", "timeout": 0},
        {"command": "echo", "timeout": 601},
        {"command": "echo", "timeout": True},
        {"command": "echo", "env": {"lower": "x"}},
        {"command": "echo", "env": {"X": 1}},
        {"command": "echo", "shell": "yes"},
        {"command": "echo 'unbalanced"},
        {"command": "echo", "cwd": "missing-dir"},
    ],
)
async def test_command_bad_input(tmp_path: Path, inp: dict[str, Any]) -> None:
    assert error_type(await run(tmp_path, "command_execution", inp)) == "BadInput"


async def test_command_cwd_outside_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    for cwd in ("..", "/", str(tmp_path)):
        out = await run(tmp_path / "ws", "command_execution", {"command": "pwd", "cwd": cwd})
        assert error_type(out) == "PathOutsideWorkspace", cwd


# ---------------------------------------------------------------- git_operations


def make_project(ws: Path, name: str = "app") -> Path:
    project = ws / "projects" / name
    (project / "src").mkdir(parents=True)
    (project / "README.md").write_text("# app\n")
    (project / "src" / "main.ts").write_text("export const x = 1;\n")
    return project


async def test_initialize_creates_a_repository_with_an_initial_commit(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    out = await run(tmp_path, "git_operations", {"path": str(project), "initialize": True})
    assert out.ok, out.error
    o = out.output
    assert o["action"] == "init" and o["initialized"] is True and o["committed"] is True
    assert o["url"] == project.resolve().as_uri() and o["url"].startswith("file:///")
    assert o["hash"] == git(project, "rev-parse", "HEAD") and len(o["hash"]) == 40
    assert o["branch"] == "main"
    assert git(project, "log", "-1", "--format=%s|%an|%ae") == (
        "Initial commit|AgentMesh Executor|executor@agentmesh.local"
    )
    assert git(project, "ls-files").splitlines() == ["README.md", "src/main.ts"]

    again = await run(tmp_path, "git_operations", {"path": "projects/app", "initialize": True})
    assert again.ok, again.error
    assert again.output["initialized"] is False and again.output["committed"] is False
    assert again.output["hash"] == o["hash"]


async def test_initialize_an_empty_directory_has_no_commit(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    out = await run(tmp_path, "git_operations", {"path": "empty", "initialize": True})
    assert out.ok, out.error
    assert out.output["hash"] is None and out.output["committed"] is False
    assert (tmp_path / "empty" / ".git").is_dir()


async def test_commit_all_then_nothing_to_commit(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    first = await run(tmp_path, "git_operations", {"path": str(project), "initialize": True})
    (project / "src" / "auth.ts").write_text("export const auth = true;\n")
    (project / "README.md").unlink()
    inp = {"path": str(project), "commitMessage": "Feature: User Authentication", "files": "all"}
    out = await run(tmp_path, "git_operations", inp)
    assert out.ok, out.error
    assert out.output["action"] == "commit" and out.output["committed"] is True
    assert out.output["hash"] != first.output["hash"]
    assert out.output["hash"] == git(project, "rev-parse", "HEAD")
    assert git(project, "log", "-1", "--format=%s") == "Feature: User Authentication"
    assert git(project, "ls-files").splitlines() == ["src/auth.ts", "src/main.ts"]

    same = await run(tmp_path, "git_operations", inp)
    assert same.ok, same.error
    assert same.output["committed"] is False and same.output["hash"] == out.output["hash"]


async def test_add_selected_files_and_status(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    await run(tmp_path, "git_operations", {"path": str(project), "initialize": True})
    (project / "a.txt").write_text("a\n")
    (project / "b.txt").write_text("b\n")
    (project / "README.md").write_text("# changed\n")
    out = await run(
        tmp_path, "git_operations", {"path": str(project), "action": "add", "files": ["a.txt"]}
    )
    assert out.ok, out.error
    by_path = {f["path"]: (f["index"], f["worktree"]) for f in out.output["files"]}
    assert by_path == {"a.txt": ("A", " "), "README.md": (" ", "M"), "b.txt": ("?", "?")}
    status = await run(tmp_path, "git_operations", {"path": str(project / "src")})
    assert status.output["action"] == "status"
    assert status.output["clean"] is False
    assert status.output["path"] == str(project.resolve())


async def test_git_errors(tmp_path: Path) -> None:
    make_project(tmp_path)
    out = await run(tmp_path, "git_operations", {"path": "projects/app", "action": "status"})
    assert error_type(out) == "NotARepository"
    for inp in (
        {},
        {"path": "projects/app", "action": "push"},
        {"path": "projects/app", "initialize": "yes"},
        {"path": "projects/app", "commitMessage": ""},
        {"path": "projects/app", "initialize": True, "files": "some"},
        {"path": "projects/missing", "initialize": True},
    ):
        assert error_type(await run(tmp_path, "git_operations", inp)) == "BadInput", inp
    out = await run(tmp_path, "git_operations", {"path": "../..", "initialize": True})
    assert error_type(out) == "PathOutsideWorkspace"


# -------------------------------------------------------------------- deployment


def tree_sha(files: list[dict[str, Any]]) -> str:
    listing = "".join(f"{f['sha256']}  {f['path']}\n" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()


async def test_deployment_copies_the_project_with_a_manifest(tmp_path: Path) -> None:
    project = make_project(tmp_path, "dashboard-app")
    for junk in ("node_modules/react", "src/__pycache__", ".venv/bin"):
        (project / junk).mkdir(parents=True)
        (project / junk / "f").write_text("junk")
    head = await run(tmp_path, "git_operations", {"path": str(project), "initialize": True})
    out = await run(tmp_path, "deployment", {"path": str(project), "environment": "development"})
    assert out.ok, out.error
    dest = real(tmp_path) / "deployments" / "development" / "dashboard-app"
    o = out.output
    assert o["url"] == dest.as_uri() and o["path"] == str(dest)
    assert o["environment"] == "development"
    assert o["files"] == ["README.md", "src/main.ts"]
    assert o["sourceCommit"] == head.output["hash"]
    assert o["sourceDirty"] is False
    assert o["replaced"] is False
    assert (dest / "src" / "main.ts").read_text() == "export const x = 1;\n"
    assert not any(
        (dest / d).exists() for d in (".git", "node_modules", ".venv", "src/__pycache__")
    )
    manifest = json.loads((dest / "DEPLOYMENT.json").read_text())
    assert manifest["sha256"] == o["sha256"] == tree_sha(manifest["files"])
    assert manifest["files"][0] == {
        "path": "README.md",
        "size": 6,
        "sha256": hashlib.sha256(b"# app\n").hexdigest(),
    }
    assert manifest["fileCount"] == 2 and manifest["totalBytes"] == 6 + 20


async def test_redeployment_replaces_the_previous_one(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    first = await run(tmp_path, "deployment", {"path": "projects/app", "environment": "prod"})
    (project / "README.md").unlink()
    (project / "NEW.md").write_text("new\n")
    out = await run(tmp_path, "deployment", {"path": "projects/app", "environment": "prod"})
    assert out.ok, out.error
    assert out.output["replaced"] is True
    assert out.output["sha256"] != first.output["sha256"]
    assert out.output["sourceCommit"] is None and out.output["sourceDirty"] is None
    env_dir = tmp_path / "deployments" / "prod"
    assert sorted(p.name for p in (env_dir / "app").iterdir()) == [
        "DEPLOYMENT.json",
        "NEW.md",
        "src",
    ]
    assert [p.name for p in env_dir.iterdir() if ".tmp-" in p.name or ".old-" in p.name] == []


async def test_deployment_errors(tmp_path: Path) -> None:
    make_project(tmp_path)
    for inp in (
        {"path": "projects/app"},
        {"path": "projects/app", "environment": "../escape"},
        {"path": "projects/app", "environment": ""},
        {"path": "projects/missing", "environment": "dev"},
        {"path": ".", "environment": "dev"},  # would deploy into itself
    ):
        assert error_type(await run(tmp_path, "deployment", inp)) == "BadInput", inp
    for inp in (
        {"path": "/etc", "environment": "dev"},
        {"path": "projects/app", "environment": "dev", "target": "../out"},
    ):
        assert error_type(await run(tmp_path, "deployment", inp)) == "PathOutsideWorkspace"


# ------------------------------------------------------------- system_monitoring


async def test_system_monitoring_reports_real_figures(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    out = await run(tmp_path, "system_monitoring", {"paths": ["data", "nope"]})
    assert out.ok, out.error
    o = out.output
    assert o["cpu"]["count"] == os.cpu_count()
    assert len(o["cpu"]["loadAverage"]) == 3
    assert o["disk"]["totalBytes"] > 0 and o["disk"]["path"] == str(real(tmp_path))
    assert [(p["exists"], p["disk"] is not None) for p in o["paths"]] == [
        (True, True),
        (False, False),
    ]
    if o["memory"]["totalBytes"] is not None:
        assert o["memory"]["totalBytes"] > o["memory"]["availableBytes"] > 0
        assert 0 <= o["cpu"]["percent"] <= 100
        assert o["processes"] >= 1


async def test_system_monitoring_errors(tmp_path: Path) -> None:
    out = await run(tmp_path, "system_monitoring", {"paths": "data"})
    assert error_type(out) == "BadInput"
    out = await run(tmp_path, "system_monitoring", {"paths": ["/"]})
    assert error_type(out) == "PathOutsideWorkspace"
