"""The executor agent on real processes, real git repositories and real file trees."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from agent_sdk.testing import TaskOutcome, run_task
from agentmesh.agents.executor import MAX_OUTPUT, create

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]
# The seed's data_processing handle_save_error command, with its template filled in.
SEED_SAVE_ERROR = (
    'mkdir -p $(dirname out/data.json) && echo "Error saving data" > out/data.json.error.log'
)
# What a child may find in its environment (Python itself may add LC_CTYPE).
CHILD_ENV = {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "TMPDIR"}


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


def script(ws: Path, name: str, code: str) -> str:
    (ws / name).write_text(code)
    return name


@pytest.fixture
def python_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """This interpreter as ``python`` on PATH, and on the allowlist with a few tools: the
    way to run a script file in the workspace (``python -c`` counts as shell)."""
    monkeypatch.setenv("PATH", f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("AGENTMESH_EXECUTOR_ALLOWED_PROGRAMS", "python,echo,pwd,cat,sleep")


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


async def test_command_list_runs_and_reports_output(tmp_path: Path, python_allowed: None) -> None:
    hi = script(tmp_path, "hi.py", "print('hi there')\n")
    out = await run(tmp_path, "command_execution", {"command": ["python", hi]})
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


async def test_child_environment_is_an_allowlist_without_the_agents_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python_allowed: None
) -> None:
    ws = tmp_path / "ws"
    (ws / "bin").mkdir(parents=True)
    for name, value in (
        ("SECRET_TOKEN", "hunter2"),
        ("NOTION_API_KEY", "secret_notion"),
        ("PYTHONPATH", str(tmp_path)),
        ("LD_LIBRARY_PATH", str(tmp_path)),
    ):
        monkeypatch.setenv(name, value)
    # Relative entries and entries in the workspace would let workspace files pose as programs.
    monkeypatch.setenv("PATH", f".{os.pathsep}{ws / 'bin'}{os.pathsep}{os.environ['PATH']}")
    printenv = script(ws, "printenv.py", "import json, os\nprint(json.dumps(dict(os.environ)))\n")
    inp = {"command": ["python", printenv], "env": {"MY_FLAG": "on"}}
    out = await run(ws, "command_execution", inp)
    assert out.ok, out.error
    env = json.loads(out.output["stdout"])
    assert env["MY_FLAG"] == "on"
    assert set(env) <= CHILD_ENV | {"MY_FLAG"}, set(env) - CHILD_ENV
    assert "hunter2" not in out.output["stdout"] and "secret_notion" not in out.output["stdout"]
    assert env["HOME"] == str(real(ws))
    assert env["PATH"].split(os.pathsep)[0] == str(Path(PY).parent)
    assert str(ws) not in env["PATH"]


@pytest.mark.parametrize(
    "name",
    [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "DYLD_INSERT_LIBRARIES",
        "GLIBC_TUNABLES",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "NODE_OPTIONS",
        "BASH_ENV",
        "ENV",
        "PERL5OPT",
        "PERL5LIB",
        "RUBYOPT",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_EXEC_PATH",
        "GIT_CONFIG_GLOBAL",
        "IFS",
        "PS4",
        "PROMPT_COMMAND",
        "PATH",
        "HOME",
    ],
)
async def test_task_env_may_not_change_how_programs_load_or_run(tmp_path: Path, name: str) -> None:
    inp = {"command": ["echo", "ran"], "env": {name: str(tmp_path / "evil")}}
    out = await run(tmp_path, "command_execution", inp)
    assert error_type(out) == "BadInput"
    assert out.error is not None and name in out.error.message


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


# Every one of these would create ./pwned if it ran.
SHELL_LIKE: list[str | list[str]] = [
    ["sh", "-c", "whoami"],
    "sh -c 'whoami'",
    ["sh", "-c", "touch pwned"],
    "sh -c 'touch pwned'",
    ["bash", "-c", "touch pwned"],
    ["/bin/sh", "-c", "touch pwned"],
    ["python3", "-c", "open('pwned', 'w')"],
    ["python3", "-Ic", "open('pwned', 'w')"],
    ["python3", "-m", "timeit", "-n1", "-r1", "open('pwned', 'w')"],
    ["env", "sh", "-c", "touch pwned"],
    "env touch pwned",
    ["xargs", "touch", "pwned"],
    ["timeout", "5", "touch", "pwned"],
    ["nice", "touch", "pwned"],
    ["node", "-e", "require('fs').writeFileSync('pwned', '')"],
    ["node", "--eval=require('fs').writeFileSync('pwned', '')"],
    ["perl", "-le", "open(F, '>pwned')"],
    ["awk", 'BEGIN { printf "" > "pwned" }'],
    ["sed", "-n", "w pwned", "input.txt"],
    ["find", ".", "-maxdepth", "0", "-exec", "touch", "pwned", ";"],
    ["git", "-c", "alias.x=!touch pwned", "x"],
]


@pytest.mark.parametrize("command", SHELL_LIKE, ids=lambda c: str(c)[:40])
async def test_shells_and_interpreters_given_code_count_as_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str | list[str]
) -> None:
    # On the allowlist, even: what refuses them is that they run a command string.
    allowed = "sh,bash,python3,env,xargs,timeout,nice,node,perl,awk,sed,find,git,touch,whoami"
    monkeypatch.setenv("AGENTMESH_EXECUTOR_ALLOWED_PROGRAMS", allowed)
    (tmp_path / "input.txt").write_text("x\n")
    out = await run(tmp_path, "command_execution", {"command": command})
    assert error_type(out) == "ShellNotAllowed"
    assert out.error is not None and "allow_shell" in out.error.message
    assert not (tmp_path / "pwned").exists()


async def test_shell_needs_both_the_task_and_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inp: dict[str, Any] = {"command": "echo abc | tr a x", "shell": True}
    assert error_type(await run(tmp_path, "command_execution", inp)) == "ShellNotAllowed"
    out = await run(tmp_path, "command_execution", inp, allow_shell=True)
    assert out.ok, out.error
    assert out.output["result"] == "xbc"
    # An agent that allows shell still runs none unless the task asks for it.
    inp = {"command": ["sh", "-c", "touch pwned"]}
    out = await run(tmp_path, "command_execution", inp, allow_shell=True)
    assert error_type(out) == "ShellNotAllowed"
    assert not (tmp_path / "pwned").exists()
    out = await run(tmp_path, "command_execution", inp | {"shell": True}, allow_shell=True)
    assert out.ok, out.error
    assert (tmp_path / "pwned").exists()
    monkeypatch.setenv("AGENTMESH_EXECUTOR_ALLOW_SHELL", "1")
    out = await run(tmp_path, "command_execution", {"command": SEED_SAVE_ERROR, "shell": True})
    assert out.ok, out.error
    assert (tmp_path / "out" / "data.json.error.log").read_text() == "Error saving data\n"
    # The environment rules hold for shell commands too.
    inp = {"command": "echo $HOME", "shell": True}
    out = await run(tmp_path, "command_execution", inp)
    assert out.ok, out.error
    assert out.output["result"] == str(real(tmp_path))
    out = await run(tmp_path, "command_execution", inp | {"env": {"LD_PRELOAD": "x.so"}})
    assert error_type(out) == "BadInput"


async def test_a_program_off_the_allowlist_is_refused(tmp_path: Path) -> None:
    for command, name in (
        ("whoami", "whoami"),
        (["id", "-u"], "id"),
        ("uname -a", "uname"),
        ("chmod 777 .", "chmod"),
    ):
        out = await run(tmp_path, "command_execution", {"command": command})
        assert error_type(out) == "ProgramNotAllowed", command
        assert out.error is not None and out.error.details is not None
        assert out.error.details["program"] == name
        assert "AGENTMESH_EXECUTOR_ALLOWED_PROGRAMS" in out.error.message
        assert "allowed_programs" in out.error.message


async def test_the_allowlist_is_configurable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = pwd.getpwuid(os.geteuid()).pw_name
    out = await run(
        tmp_path, "command_execution", {"command": "whoami"}, allowed_programs=["whoami"]
    )
    assert out.ok, out.error
    assert out.output["result"] == me
    out = await run(tmp_path, "command_execution", {"command": "echo"}, allowed_programs=["whoami"])
    assert error_type(out) == "ProgramNotAllowed"
    monkeypatch.setenv("AGENTMESH_EXECUTOR_ALLOWED_PROGRAMS", " whoami , pwd,")
    for command in ("whoami", "pwd"):
        assert (await run(tmp_path, "command_execution", {"command": command})).ok, command
    out = await run(tmp_path, "command_execution", {"command": "echo"})
    assert error_type(out) == "ProgramNotAllowed"
    monkeypatch.setenv("AGENTMESH_EXECUTOR_ALLOWED_PROGRAMS", " ")  # blank: the default
    assert (await run(tmp_path, "command_execution", {"command": "echo"})).ok
    assert error_type(await run(tmp_path, "command_execution", {"command": "whoami"})) == (
        "ProgramNotAllowed"
    )
    for bad in (["/usr/bin/whoami"], ["who ami"], [""]):
        with pytest.raises(ValueError, match="bare program name"):
            create(None, workspace=tmp_path, allowed_programs=bad)


def test_the_default_allowlist_has_no_interpreter_shell_or_git() -> None:
    from agentmesh.agents.executor import DEFAULT_PROGRAMS, SHELL_PROGRAMS, shell_reason

    assert {"cat", "echo", "mkdir", "ls", "true"} <= DEFAULT_PROGRAMS  # the seed and demo
    runners = {"sh", "bash", "env", "python", "python3", "node", "npm", "npx", "git", "perl"}
    assert not DEFAULT_PROGRAMS & (runners | {"awk", "sed", "find", "xargs", "make", "tar"})
    assert not DEFAULT_PROGRAMS & SHELL_PROGRAMS
    assert all(shell_reason([p, "x"]) is None for p in DEFAULT_PROGRAMS)


async def test_a_program_named_by_path_must_be_the_one_on_path(tmp_path: Path) -> None:
    fake = tmp_path / "cat"
    fake.write_text("#!/bin/sh\ntouch pwned\n")
    fake.chmod(0o755)
    for command in (["./cat", "x"], [str(fake), "x"], "./cat x"):
        out = await run(tmp_path, "command_execution", {"command": command})
        assert error_type(out) == "ProgramNotAllowed", command
    assert not (tmp_path / "pwned").exists()
    echo = shutil.which("echo")
    assert echo is not None
    out = await run(tmp_path, "command_execution", {"command": [echo, "hi"]})
    assert out.ok, out.error
    assert out.output["result"] == "hi"


async def test_path_arguments_must_stay_inside_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "data").mkdir(parents=True)
    data = ws / "data" / "input.json"
    data.write_text('["beta", "alpha"]')
    outside = tmp_path / "outside.txt"
    outside.write_text("outside secret")
    (ws / "file-link").symlink_to(outside)
    (ws / "dir-link").symlink_to(tmp_path)
    (ws / "inner-link").symlink_to(data)
    # The demo's data_processing fetch, and paths that stay inside.
    for command in (f"cat {data}", "cat inner-link", "cat data/../data/input.json"):
        out = await run(ws, "command_execution", {"command": command})
        assert out.ok, (command, out.error)
        assert out.output["result"] == '["beta", "alpha"]'
    for command in (
        "cat /etc/passwd",
        f"cat /proc/{os.getpid()}/environ",  # the agent's pid: the child's $PPID
        "cat ../outside.txt",
        "cat file-link",
        "cat dir-link/outside.txt",
        "grep --file=/etc/passwd data/input.json",
        "grep -f/etc/passwd data/input.json",
        "cp data/input.json ../copied.json",
        "mkdir -p ../made",
        "mkdir -p dir-link/made",
        "touch data/../../made",
    ):
        out = await run(ws, "command_execution", {"command": command})
        assert error_type(out) == "PathOutsideWorkspace", command
        assert out.error is not None and "command[" in out.error.message
    assert not (tmp_path / "copied.json").exists() and not (tmp_path / "made").exists()


async def test_nonzero_exit_is_command_failed_with_details(
    tmp_path: Path, python_allowed: None
) -> None:
    boom = script(tmp_path, "boom.py", "import sys\nsys.stderr.write('boom')\nsys.exit(3)\n")
    out = await run(tmp_path, "command_execution", {"command": ["python", boom]})
    assert error_type(out) == "CommandFailed"
    assert out.error is not None and out.error.details is not None
    assert out.error.details["exitCode"] == 3
    assert out.error.details["stderr"] == "boom"
    assert "exited with 3" in out.error.message


async def test_missing_executable_is_command_not_found(tmp_path: Path) -> None:
    inp = {"command": "no-such-binary-xyz --help"}
    out = await run(tmp_path, "command_execution", inp, allowed_programs=["no-such-binary-xyz"])
    assert error_type(out) == "CommandNotFound"


async def test_timeout_is_retryable_and_kills_the_process_group(
    tmp_path: Path, python_allowed: None
) -> None:
    code = (
        "import subprocess\np = subprocess.Popen(['sleep', '30'])\n"
        "open('child.pid', 'w').write(str(p.pid))\np.wait()\n"
    )
    spawn = script(tmp_path, "spawn.py", code)
    started = time.monotonic()
    out = await run(tmp_path, "command_execution", {"command": ["python", spawn], "timeout": 1})
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


async def test_large_output_is_truncated(tmp_path: Path, python_allowed: None) -> None:
    big = script(tmp_path, "big.py", f"import sys\nsys.stdout.write('x' * {MAX_OUTPUT + 1000})\n")
    out = await run(tmp_path, "command_execution", {"command": ["python", big]})
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
        {"command": "''"},
        {"command": ["echo", "a\x00b"]},
        {"command": "echo", "timeout": 0},
        {"command": "echo", "timeout": 601},
        {"command": "echo", "timeout": True},
        {"command": "echo", "env": {"lower": "x"}},
        {"command": "echo", "env": {"X": 1}},
        {"command": "echo", "env": {"X": "a\x00b"}},
        {"command": "echo", "shell": "yes"},
        {"command": "echo 'unbalanced"},
        {"command": "echo", "cwd": "missing-dir"},
        {"command": "echo", "cwd": "a\x00b"},
        {"command": "echo", "cwd": 7},
    ],
)
async def test_command_bad_input(tmp_path: Path, inp: dict[str, Any]) -> None:
    assert error_type(await run(tmp_path, "command_execution", inp)) == "BadInput"


async def test_command_cwd_outside_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "ws" / "out").symlink_to(tmp_path / "elsewhere")
    for cwd in ("..", "/", str(tmp_path), "out", "out/."):
        out = await run(tmp_path / "ws", "command_execution", {"command": "pwd", "cwd": cwd})
        assert error_type(out) == "PathOutsideWorkspace", cwd
    out = await run(tmp_path / "ws", "command_execution", {"command": "pwd", "cwd": "ws\x00"})
    assert error_type(out) == "BadInput"


def test_creating_an_executor_makes_its_process_undumpable(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("prctl(PR_SET_DUMPABLE) is Linux only")
    code = (
        "import ctypes, sys\nfrom pathlib import Path\nfrom agentmesh.agents.executor import create\n"
        "libc = ctypes.CDLL(None)\nbefore = libc.prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE\n"
        "create(None, workspace=Path(sys.argv[1]))\nprint(before, libc.prctl(3, 0, 0, 0, 0))\n"
    )
    probe = tmp_path / "probe.py"
    probe.write_text(code)
    done = subprocess.run(
        [PY, str(probe), str(tmp_path / "ws")], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "0"]


PEEK = """import os
try:
    print(open(f"/proc/{os.getppid()}/environ", "rb").read().count(b"SECRET_TOKEN"))
except OSError as e:
    print(type(e).__name__)
"""
DRIVE = """import asyncio, os, subprocess, sys
from pathlib import Path
from agent_sdk.testing import run_task
from agentmesh.agents.executor import create
ws = Path(sys.argv[1])
if sys.argv[2] == "control":  # the same child, started by a process that protects nothing
    print(subprocess.run(["python3", "peek.py"], cwd=ws, capture_output=True, text=True).stdout)
else:
    inp = {"command": ["python3", "peek.py"]}
    out = asyncio.run(run_task(create(None, workspace=ws), "command_execution", inp))
    print(out.output["result"] if out.ok else out.error)
"""


def _unprivileged_python() -> tuple[str, int, int] | None:
    """An interpreter of this Python version the ``nobody`` user may run, with its ids."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return None
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return None
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for candidate in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        if os.access(candidate, os.X_OK):
            return candidate, nobody.pw_uid, nobody.pw_gid
    return None


def test_a_command_cannot_read_the_agents_environment_through_proc() -> None:
    """As an unprivileged user: root reads every /proc/<pid>/environ, so this test needs
    root to become ``nobody`` and an interpreter that user may run."""
    found = _unprivileged_python()
    if found is None:
        pytest.skip("needs root, a 'nobody' user and a system python of this version")
    python, uid, gid = found
    ws = Path(tempfile.mkdtemp(prefix="agentmesh-nobody-"))
    try:
        os.chown(ws, uid, gid)
        (ws / "peek.py").write_text(PEEK)
        (ws / "drive.py").write_text(DRIVE)
        env = {
            "PATH": "/usr/bin:/bin",
            "SECRET_TOKEN": "s3cret",
            "AGENTMESH_EXECUTOR_ALLOWED_PROGRAMS": "python3",
            "PYTHONPATH": os.pathsep.join([str(ROOT), sysconfig.get_paths()["purelib"]]),
        }

        def drive(mode: str) -> str:
            done = subprocess.run(
                [python, str(ws / "drive.py"), str(ws), mode],
                cwd=ws,
                env=env,
                user=uid,
                group=gid,
                extra_groups=[],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode != 0 and "ModuleNotFoundError" in done.stderr:
                pytest.skip(f"{python} cannot import the project as nobody: {done.stderr}")
            assert done.returncode == 0, done.stderr
            return done.stdout.strip()

        assert drive("control") == "1"  # the probe does detect a readable environment
        assert drive("executor") == "PermissionError"
    finally:
        shutil.rmtree(ws, ignore_errors=True)


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


async def test_git_runs_no_program_the_repository_names(tmp_path: Path) -> None:
    """Another agent may write a repository's .git: its hooks and fsmonitor do not run."""
    project = make_project(tmp_path)
    await run(tmp_path, "git_operations", {"path": str(project), "initialize": True})
    marker = tmp_path / "ran"
    for name, file in (
        ("hook", project / ".git" / "hooks" / "post-commit"),
        ("fsmonitor", project / ".git" / "monitor.sh"),
    ):
        file.write_text(f"#!/bin/sh\necho {name} >> {marker}\n")
        file.chmod(0o755)
    git(project, "config", "core.fsmonitor", str(project / ".git" / "monitor.sh"))
    (project / "new.txt").write_text("new\n")
    out = await run(tmp_path, "git_operations", {"path": str(project), "commitMessage": "Add"})
    assert out.ok, out.error
    assert out.output["committed"] is True
    status = await run(tmp_path, "git_operations", {"path": str(project)})
    assert status.ok, status.error
    assert not marker.exists(), marker.read_text()


async def test_git_files_stay_inside_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    project = make_project(ws)
    await run(ws, "git_operations", {"path": str(project), "initialize": True})
    (tmp_path / "outside.txt").write_text("x")
    for files in (["../../../outside.txt"], [str(tmp_path / "outside.txt")], ["ok\x00.txt"]):
        inp = {"path": str(project), "action": "add", "files": files}
        assert error_type(await run(ws, "git_operations", inp)) in (
            "PathOutsideWorkspace",
            "BadInput",
        ), files
    out = await run(ws, "git_operations", {"path": "projects/app\x00", "initialize": True})
    assert error_type(out) == "BadInput"


async def test_git_files_stay_inside_the_repository(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    await run(tmp_path, "git_operations", {"path": str(project), "initialize": True})
    (tmp_path / "elsewhere.txt").write_text("x")
    (project / "link.txt").symlink_to(tmp_path / "elsewhere.txt")  # in the workspace, not the repo
    for files in (["../../elsewhere.txt"], ["link.txt"]):
        inp = {"path": str(project), "action": "add", "files": files}
        out = await run(tmp_path, "git_operations", inp)
        assert error_type(out) == "BadInput", files
        assert out.error is not None and "inside the repository" in out.error.message


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


async def test_deployment_does_not_follow_symlinks_out_of_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    make_project(ws)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (ws / "deployments" / "prod").mkdir(parents=True)
    (ws / "deployments" / "dev").symlink_to(elsewhere)
    out = await run(ws, "deployment", {"path": "projects/app", "environment": "dev"})
    assert error_type(out) == "PathOutsideWorkspace"
    assert list(elsewhere.iterdir()) == []
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (ws / "deployments" / "prod" / ".app.lock").symlink_to(victim)
    out = await run(ws, "deployment", {"path": "projects/app", "environment": "prod"})
    assert out.error is not None
    assert victim.read_text() == "keep me"


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
