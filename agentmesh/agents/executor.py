"""Executor agent: runs commands, drives git, deploys project trees, reports system load.

Everything it touches lives under ``workspace``: working directories, repositories,
deployments and every path argument it resolves go through ``agentmesh.agents._sandbox`` (``..``,
absolute paths and symlinks that leave it fail with ``PathOutsideWorkspace``). What a
started program does is not sandboxed: it can do whatever its OS user may (see
docs/security.md): run the executor as an unprivileged user.

- ``command_execution`` {command: str | [str], cwd?: path (workspace), timeout?: seconds
  (60, at most 600), env?: {NAME: str}, shell?: bool}
  -> {exitCode, stdout, stderr, result (stdout stripped), durationMs, truncated, argv}.
  A string is split with ``shlex``; no shell runs unless the task says ``shell: true`` AND
  the agent allows it (``create(..., allow_shell=True)`` or
  ``AGENTMESH_EXECUTOR_ALLOW_SHELL=1``); then ``/bin/sh -c`` runs the command text and
  only cwd and environment are confined. Without both, ``ShellNotAllowed`` refuses shell
  syntax (pipes, ``&&``, redirections, ``$(...)``, backticks: the seed's data_processing
  commands use it, and their failures drive that workflow's error routes) and every
  command that counts as shell: shells and programs that run another program or code
  named by their arguments (``env``, ``xargs``, ``timeout``, ``sudo``, ``awk``, ``sed``,
  ``git``, ``make``, ``npx``, ...; see ``SHELL_PROGRAMS``) and interpreters given code on
  the command line (``python -c``/``-m``, ``node -e``/``-p``/``--eval``, ``perl -e``,
  ``ruby -e``, ``php -r``, ``find -exec``, ...; see ``CODE_OPTIONS``). Otherwise the
  program (the base name of argv[0]) must be on the agent's allowlist (``allowed_programs``,
  ``AGENTMESH_EXECUTOR_ALLOWED_PROGRAMS``, default ``DEFAULT_PROGRAMS``) or the task fails
  with ``ProgramNotAllowed``; it is looked up on PATH (an argv[0] with a directory must be
  that same file) and every argument that names a path (absolute, with ``..``, or existing
  under cwd) must stay inside the workspace.
  Errors: ``CommandFailed`` (non-zero exit; details exitCode, stderr tail),
  ``CommandNotFound``, retryable ``CommandTimeout`` (the process group is killed).
  The environment is PATH (its absolute entries outside the workspace), HOME (the
  workspace), LANG, LC_ALL, LC_CTYPE, TERM, TZ, TMPDIR, plus the task's ``env``, whose
  names must be upper case and may not change how programs load or run (``LD_*``,
  ``PYTHON*``, ``NODE_OPTIONS``, ``BASH_ENV``, ``GIT_*``, ...; ``BadInput`` otherwise).
- ``git_operations`` {path, action?: init|add|commit|status, initialize?: bool,
  commitMessage?: str, files?: "all" | [path]} -> {action, path, url (file://), hash,
  branch, committed, ...}. ``initialize`` means init: ``git init -b main`` (kept if the
  repository exists), a local committer identity, and an "Initial commit" of every file.
  ``commitMessage`` alone means commit (add ``files``: "all" or paths relative to
  ``path``), otherwise status; operations run one at a time. Nothing to commit
  returns the current HEAD with ``committed: false``. status adds ``files`` and ``clean``.
  git runs without system or global config, hooks or an fsmonitor.
- ``deployment`` {path: project dir, environment: name, target?: dir (``deployments``)}
  -> {url, path, environment, files, fileCount, totalBytes, sha256, sourceCommit,
  sourceDirty (uncommitted changes were deployed), deployedAt, replaced}. Copies the
  project (without .git, node_modules, __pycache__, .venv) to
  ``<target>/<environment>/<project>/`` through a temporary directory renamed into place
  (the previous deployment is moved aside, then removed), with a ``DEPLOYMENT.json``
  manifest. ``sha256`` hashes the ``sha256sum``-style listing ("<sha256>  <path>" per
  file, sorted by path), so ``sha256sum`` can verify a deployment.
- ``system_monitoring`` {paths?: [path]} -> {timestamp, cpu{count, loadAverage,
  percent}, memory{...Bytes, percent}, disk{...}, paths[{path, exists, disk}], processes,
  uptimeSeconds}; from /proc and the standard library, ``null`` where unavailable.

Creating an executor marks its process non-dumpable on Linux, so the commands it starts
(and other processes of its user that are not root) cannot read its environment through
``/proc/<pid>/environ`` or attach a debugger to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from agent_sdk import Agent, RetryableTaskError, Task, TaskError
from agentmesh.agents import _sandbox
from agentmesh.agents._commands import (
    DEFAULT_PROGRAMS,
    ENV_FROM_AGENT,
    SHELL_PROGRAMS,
    env_refusal,
    needs_shell,
    path_candidates,
    protect_environment,
    shell_reason,
)

__all__ = ["DEFAULT_PROGRAMS", "MAX_OUTPUT", "SHELL_PROGRAMS", "create", "shell_reason"]

MAX_OUTPUT = 64 * 1024  # bytes kept of stdout (its head) and of stderr (its tail)
DEFAULT_TIMEOUT, MAX_TIMEOUT = 60.0, 600.0
GIT_NAME, GIT_EMAIL = "AgentMesh Executor", "executor@agentmesh.local"
DEPLOY_EXCLUDE = frozenset({".git", "node_modules", "__pycache__", ".venv"})
MAX_DEPLOY_FILES, MAX_DEPLOY_BYTES = 20_000, 1 << 30
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_ENVIRONMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def create(
    coordinator: str | None = None,
    *,
    workspace: Path,
    max_concurrency: int = 4,
    allow_shell: bool | None = None,
    allowed_programs: Iterable[str] | None = None,
) -> Agent:
    """The executor agent.

    ``allow_shell`` None reads ``AGENTMESH_EXECUTOR_ALLOW_SHELL`` ("1" allows).
    ``allowed_programs`` (program names, no directories) replaces ``DEFAULT_PROGRAMS``;
    None reads ``AGENTMESH_EXECUTOR_ALLOWED_PROGRAMS`` (comma-separated; unset or blank
    means the default). Marks this process non-dumpable (Linux). Raises ``ValueError`` for
    a program name with a directory, whitespace or a NUL byte.
    """
    if allow_shell is None:
        allow_shell = os.environ.get("AGENTMESH_EXECUTOR_ALLOW_SHELL") == "1"
    if allowed_programs is None:
        configured = os.environ.get("AGENTMESH_EXECUTOR_ALLOWED_PROGRAMS", "")
        names = [n.strip() for n in configured.split(",") if n.strip()]
        allowed_programs = names or DEFAULT_PROGRAMS
    programs = frozenset(allowed_programs)
    for name in programs:
        if not name or "/" in name or "\0" in name or name != "".join(name.split()):
            raise ValueError(f"allowed program {name!r}: must be a bare program name")
    ex = _Executor(Path(workspace), allow_shell, programs)
    protect_environment()
    agent = Agent("executor", coordinator, type="executor", max_concurrency=max_concurrency)
    agent.add_capability(
        "command_execution", ex.command, description="run a command in the workspace"
    )
    agent.add_capability("git_operations", ex.git, description="git init, add, commit, status")
    agent.add_capability(
        "deployment", ex.deploy, description="copy a project to workspace/deployments/<env>"
    )
    agent.add_capability(
        "system_monitoring", ex.monitor, description="CPU, memory, disk and process figures"
    )
    return agent


def _bad(message: str) -> TaskError:
    return TaskError(message, type="BadInput")


def _head(f: IO[bytes]) -> tuple[str, bool]:
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    return f.read(MAX_OUTPUT).decode("utf-8", "replace"), size > MAX_OUTPUT


def _tail(f: IO[bytes]) -> tuple[str, bool]:
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - MAX_OUTPUT))
    return f.read().decode("utf-8", "replace"), size > MAX_OUTPUT


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class _Executor:
    def __init__(self, workspace: Path, allow_shell: bool, programs: frozenset[str]) -> None:
        workspace.mkdir(parents=True, exist_ok=True)
        self.root = _sandbox.real(workspace)
        self.allow_shell = allow_shell
        self.programs = programs
        self._git_lock = threading.Lock()

    def _inside(self, raw: Any, field: str, base: Path | None = None) -> Path:
        return _sandbox.confine(self.root, raw, field, base=base)

    def _dir(self, raw: Any, field: str) -> Path:
        path = self._inside(raw, field)
        if not path.is_dir():
            raise _bad(f"{field}: {raw!r} is not an existing directory")
        return path

    def _base_env(self) -> dict[str, str]:
        """What every child gets: a few of the agent's names, PATH without relative
        entries or entries in the workspace (which would pick workspace files as
        programs), and HOME at the workspace."""
        env = {k: os.environ[k] for k in ENV_FROM_AGENT if k in os.environ}
        entries = env.get("PATH", os.defpath).split(os.pathsep)
        safe = [e for e in entries if os.path.isabs(e) and not _sandbox.is_inside(self.root, e)]
        env["PATH"] = os.pathsep.join(safe) or os.defpath
        env["HOME"] = str(self.root)
        return env

    def _env(self, extra: Any) -> dict[str, str]:
        env = self._base_env()
        extra = {} if extra is None else extra
        if not isinstance(extra, dict):
            raise _bad("env: must be an object of NAME: string")
        for key, value in extra.items():
            if not _ENV_NAME.match(key) or not isinstance(value, str):
                raise _bad(f"env: {key!r} needs an upper-case name and a string value")
            if "\0" in value:
                raise _bad(f"env: the value of {key} holds a NUL byte")
            if (why := env_refusal(key)) is not None:
                raise TaskError(
                    f"env: a task may not set {key} ({why})",
                    type="BadInput",
                    details={"name": key},
                )
            env[key] = value
        return env

    def _program(self, arg0: str, cwd: Path, path: str) -> str:
        """The file to execute for argv[0]: an allowed name found on ``path``; an argv[0]
        with a directory must be that very file."""
        name = os.path.basename(arg0)
        if name not in self.programs:
            raise TaskError(
                f"program {name!r} is not allowed on this executor; allow it with "
                "create(..., allowed_programs=...) or AGENTMESH_EXECUTOR_ALLOWED_PROGRAMS",
                type="ProgramNotAllowed",
                details={"program": name, "allowed": sorted(self.programs)},
            )
        exe = shutil.which(name, path=path)
        if exe is None:
            raise TaskError(
                f"cannot run {arg0!r}: no {name} on PATH",
                type="CommandNotFound",
                details={"program": name},
            )
        if "/" in arg0:
            given = cwd / arg0
            same = False
            with contextlib.suppress(OSError):
                same = os.path.samefile(given, exe)
            if not same:
                raise TaskError(
                    f"program {arg0!r} is not the {name} on PATH ({exe}); name it without "
                    "a directory",
                    type="ProgramNotAllowed",
                    details={"program": name, "path": arg0, "onPath": exe},
                )
        return exe

    def _screen(self, argv: list[str], cwd: Path) -> None:
        """Arguments that name paths must stay inside the workspace (best effort: a
        program may still reach paths it computes or reads from files)."""
        for i, arg in enumerate(argv[1:], 1):
            for candidate in path_candidates(arg):
                if _sandbox.names_a_path(candidate, cwd):
                    self._inside(candidate, f"command[{i}]", base=cwd)

    # ---------------------------------------------------------- command_execution

    def command(self, task: Task) -> dict[str, Any]:
        inp = task.input
        command, shell = inp.get("command"), inp.get("shell", False)
        if not isinstance(shell, bool):
            raise _bad("shell: must be a boolean")
        if isinstance(command, list):
            if not command or not all(isinstance(a, str) for a in command):
                raise _bad("command: a list must be non-empty and hold only strings")
            argv, text = list(command), shlex.join(command)
        elif isinstance(command, str) and command.strip():
            text = command.strip()
            construct = None if shell else needs_shell(text)
            if construct is not None:
                raise TaskError(
                    f"command uses shell syntax ({construct!r}); it needs shell: true on an "
                    "executor started with allow_shell",
                    type="ShellNotAllowed",
                    details={"command": text[:500]},
                )
            try:
                argv = shlex.split(text)
            except ValueError as e:
                raise _bad(f"command: {e}") from None
        else:
            raise _bad("command: must be a non-empty string or a list of strings")
        if not argv or not argv[0]:
            raise _bad("command: names no program")
        if any("\0" in a for a in argv):
            raise _bad("command: an argument holds a NUL byte")
        cwd = self._dir(inp.get("cwd", "."), "cwd")
        timeout = inp.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise _bad("timeout: must be a number of seconds")
        if not 0 < timeout <= MAX_TIMEOUT:
            raise _bad(f"timeout: must be in (0, {MAX_TIMEOUT:.0f}] seconds")
        env = self._env(inp.get("env"))
        if shell:
            if not self.allow_shell:
                raise TaskError(
                    "this executor does not run shell commands (start it with allow_shell)",
                    type="ShellNotAllowed",
                    details={"command": text[:500]},
                )
            argv, exe = ["/bin/sh", "-c", text], "/bin/sh"
        else:
            reason = shell_reason(argv)
            if reason is not None:
                raise TaskError(
                    f"{reason}, so it counts as shell: it needs shell: true on an executor "
                    "started with allow_shell",
                    type="ShellNotAllowed",
                    details={"command": text[:500], "program": os.path.basename(argv[0])},
                )
            exe = self._program(argv[0], cwd, env["PATH"])
            self._screen(argv, cwd)
        task.progress(0.05, f"running {text[:80]}")
        return self._run(argv, exe, text, cwd, env, float(timeout))

    def _run(
        self,
        argv: list[str],
        exe: str,
        text: str,
        cwd: Path,
        env: dict[str, str],
        timeout: float,
    ) -> dict[str, Any]:
        started = time.monotonic()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    argv,
                    executable=exe,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
            except OSError as e:
                raise TaskError(
                    f"cannot run {argv[0]!r}: {e.strerror}",
                    type="CommandNotFound",
                    details={"command": text[:500]},
                ) from None
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
                stdout, _ = _head(out)
                raise RetryableTaskError(
                    f"command timed out after {timeout:g} s",
                    type="CommandTimeout",
                    details={"timeoutSeconds": timeout, "stdoutTail": stdout[-2000:]},
                ) from None
            finally:
                _kill_group(proc.pid)  # whatever it left running in the background
            stdout, cut_out = _head(out)
            stderr, cut_err = _tail(err)
        if code != 0:
            raise TaskError(
                f"command exited with {code}",
                type="CommandFailed",
                details={"exitCode": code, "stderr": stderr[-2000:], "command": text[:500]},
            )
        return {
            "exitCode": code,
            "stdout": stdout,
            "stderr": stderr,
            "result": stdout.strip(),
            "durationMs": int((time.monotonic() - started) * 1000),
            "truncated": cut_out or cut_err,
            "argv": argv,
        }

    # ------------------------------------------------------------- git_operations

    def _git(self, repo: Path, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[int, str]:
        """Run git in ``repo`` without system or global config; (exit code, stdout)."""
        env = self._base_env() | {
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CEILING_DIRECTORIES": str(self.root.parent),
        }
        # A repository's own config is a workspace file other agents can write: these two
        # would otherwise run programs it names on every add, status and commit.
        no_programs = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")
        try:
            proc = subprocess.run(
                ["git", *no_programs, *args],
                cwd=repo,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        except FileNotFoundError:
            raise TaskError("git is not installed", type="CommandNotFound") from None
        except subprocess.TimeoutExpired:
            raise RetryableTaskError(f"git {args[0]} timed out", type="CommandTimeout") from None
        if proc.returncode not in ok:
            raise TaskError(
                f"git {args[0]} failed: {proc.stderr.strip()[-500:]}",
                type="GitFailed",
                details={"exitCode": proc.returncode, "args": list(args)},
            )
        return proc.returncode, proc.stdout

    def _head_hash(self, repo: Path) -> str | None:
        _, out = self._git(repo, "rev-parse", "-q", "--verify", "HEAD", ok=(0, 1))
        return out.strip() or None

    def _find_repo(self, path: Path) -> Path:
        for d in (path, *path.parents):
            if (d / ".git").exists():
                return d
            if d == self.root:
                break
        raise TaskError(f"path: {path} is not inside a git repository", type="NotARepository")

    def git(self, task: Task) -> dict[str, Any]:
        with self._git_lock:  # git's index.lock: one operation at a time
            return self._git_task(task)

    def _git_task(self, task: Task) -> dict[str, Any]:
        inp = task.input
        path = self._dir(inp.get("path"), "path")
        action, message = inp.get("action"), inp.get("commitMessage")
        initialize = inp.get("initialize", False)
        if not isinstance(initialize, bool):
            raise _bad("initialize: must be a boolean")
        if message is not None and (not isinstance(message, str) or not message.strip()):
            raise _bad("commitMessage: must be a non-empty string")
        if action is None:
            action = "init" if initialize else "commit" if message else "status"
        if action not in ("init", "add", "commit", "status"):
            raise _bad("action: must be one of init, add, commit, status")
        files = inp.get("files", "all")
        if files != "all" and not (
            isinstance(files, list) and files and all(isinstance(f, str) for f in files)
        ):
            raise _bad('files: must be "all" or a non-empty list of paths')
        out: dict[str, Any] = {"action": action}
        if action == "init":
            out["initialized"] = not (path / ".git").exists()
            if out["initialized"]:
                self._git(path, "init", "-q", "-b", "main")
            repo, message = path, message or "Initial commit"
            task.progress(0.3, "repository ready")
        else:
            repo = self._find_repo(path)
        for key, value in (("user.name", GIT_NAME), ("user.email", GIT_EMAIL)):
            if self._git(repo, "config", "--local", "--get", key, ok=(0, 1))[0] != 0:
                self._git(repo, "config", "--local", key, value)
        if action in ("init", "add", "commit"):
            if files == "all":
                self._git(repo, "add", "-A")
            else:
                chosen = [self._inside(f, "files", base=path) for f in files]
                if not all(p.is_relative_to(repo) for p in chosen):
                    raise _bad(f"files: every file must be inside the repository {repo}")
                self._git(repo, "add", "-A", "--", *(str(p.relative_to(repo)) for p in chosen))
        out["committed"] = False
        if action in ("init", "commit"):
            code, _ = self._git(repo, "diff", "--cached", "--quiet", ok=(0, 1))
            if code == 1:  # there are staged changes
                self._git(repo, "commit", "-q", "--no-verify", "-m", message or "Update")
                out["committed"] = True
        if action in ("add", "status"):
            out["files"] = self._status(repo)
            out["clean"] = not out["files"]
        _, branch = self._git(repo, "symbolic-ref", "--short", "-q", "HEAD", ok=(0, 1))
        task.progress(0.9, f"{action} done")
        return out | {
            "path": str(repo),
            "url": repo.as_uri(),
            "hash": self._head_hash(repo),
            "branch": branch.strip() or None,
        }

    def _status(self, repo: Path) -> list[dict[str, str]]:
        _, raw = self._git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all")
        items, files = raw.split("\0"), []
        i = 0
        while i < len(items):
            entry = items[i]
            i += 1
            if len(entry) < 4:
                continue
            x, y, name = entry[0], entry[1], entry[3:]
            item = {"path": name, "index": x, "worktree": y}
            if x in "RC":  # a rename or copy names its source next
                item["from"] = items[i]
                i += 1
            files.append(item)
        return files

    # ----------------------------------------------------------------- deployment

    def deploy(self, task: Task) -> dict[str, Any]:
        inp = task.input
        src = self._dir(inp.get("path"), "path")
        environment = inp.get("environment")
        if not isinstance(environment, str) or not _ENVIRONMENT.match(environment):
            raise _bad("environment: must be a name of letters, digits, '.', '_' or '-'")
        target = self._inside(inp.get("target", "deployments"), "target")
        # Resolved again with the environment: an existing <target>/<env> may be a symlink.
        dest = self._inside(environment, "environment", base=target) / src.name
        if dest.is_relative_to(src):
            raise _bad(f"path: {src} contains the deployment target {dest}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        commit, dirty = None, None
        if (src / ".git").exists():
            commit, dirty = self._head_hash(src), bool(self._status(src))
        lock_path = dest.parent / f".{src.name}.lock"
        try:  # O_NOFOLLOW: a symlink planted as the lock file must not truncate its target
            fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            raise TaskError(
                f"environment: cannot lock {lock_path}: {e.strerror}", type="DeploymentLocked"
            ) from None
        with open(fd, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            tmp = dest.parent / f".{src.name}.tmp-{uuid.uuid4().hex[:12]}"
            try:
                files = self._copy_tree(src, tmp, task)
                listing = "".join(f"{f['sha256']}  {f['path']}\n" for f in files)
                manifest = {
                    "project": src.name,
                    "environment": environment,
                    "source": str(src),
                    "sourceCommit": commit,
                    "sourceDirty": dirty,
                    "deployedAt": datetime.now(UTC).isoformat(timespec="seconds"),
                    "sha256": hashlib.sha256(listing.encode()).hexdigest(),
                    "fileCount": len(files),
                    "totalBytes": sum(f["size"] for f in files),
                    "files": files,
                }
                (tmp / "DEPLOYMENT.json").write_text(json.dumps(manifest, indent=2) + "\n")
                replaced = dest.exists() or dest.is_symlink()
                old = dest.parent / f".{src.name}.old-{uuid.uuid4().hex[:12]}"
                if replaced:
                    os.rename(dest, old)
                try:
                    os.rename(tmp, dest)
                except OSError:
                    if replaced:
                        os.rename(old, dest)  # put the previous deployment back
                    raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            if replaced:
                shutil.rmtree(old, ignore_errors=True)
        task.progress(1.0, f"deployed {len(files)} files to {dest}")
        summary = {k: v for k, v in manifest.items() if k not in ("files", "project", "source")}
        return summary | {
            "url": dest.as_uri(),
            "path": str(dest),
            "files": [f["path"] for f in files],
            "replaced": replaced,
        }

    def _copy_tree(self, src: Path, dst: Path, task: Task) -> list[dict[str, Any]]:
        files: list[dict[str, Any]] = []
        total = 0
        for base, dirs, names in os.walk(src):
            dirs[:] = sorted(d for d in dirs if d not in DEPLOY_EXCLUDE)
            rel_dir = Path(base).relative_to(src)
            (dst / rel_dir).mkdir(parents=True, exist_ok=True)
            for name in sorted(names):
                s, d = Path(base, name), dst / rel_dir / name
                if s.is_symlink():
                    os.symlink(os.readlink(s), d)
                    digest, size = hashlib.sha256(os.readlink(s).encode()).hexdigest(), 0
                elif s.is_file():
                    digest, size = _copy_file(s, d)
                else:
                    continue  # sockets, fifos
                total += size
                files.append({"path": (rel_dir / name).as_posix(), "size": size, "sha256": digest})
                if len(files) > MAX_DEPLOY_FILES or total > MAX_DEPLOY_BYTES:
                    raise TaskError(
                        f"project is larger than {MAX_DEPLOY_FILES} files or "
                        f"{MAX_DEPLOY_BYTES >> 20} MiB",
                        type="DeploymentTooLarge",
                    )
                if len(files) % 200 == 0:
                    task.progress(0.5, f"copied {len(files)} files")
        return sorted(files, key=lambda f: str(f["path"]))

    # ---------------------------------------------------------- system_monitoring

    def monitor(self, task: Task) -> dict[str, Any]:
        paths = task.input.get("paths", [])
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise _bad("paths: must be a list of paths")
        resolved = [self._inside(p, "paths") for p in paths]
        try:
            load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
        except OSError:
            load = None
        return {
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpu": {"count": os.cpu_count(), "loadAverage": load, "percent": _cpu_percent()},
            "memory": _memory(),
            "disk": _disk(self.root),
            "paths": [
                {"path": str(p), "exists": p.exists(), "disk": _disk(p) if p.exists() else None}
                for p in resolved
            ],
            "processes": sum(1 for d in os.listdir("/proc") if d.isdigit())
            if os.path.isdir("/proc")
            else None,
            "uptimeSeconds": _uptime(),
        }


def _copy_file(src: Path, dst: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(src, "rb") as f, open(dst, "wb") as g:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            g.write(chunk)
            size += len(chunk)
    shutil.copystat(src, dst)
    return h.hexdigest(), size


def _cpu_times() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields), idle


def _cpu_percent(sample: float = 0.1) -> float | None:
    first = _cpu_times()
    time.sleep(sample)
    second = _cpu_times()
    if first is None or second is None or second[0] == first[0]:
        return None
    busy = 1 - (second[1] - first[1]) / (second[0] - first[0])
    return round(100 * busy, 1)


def _memory() -> dict[str, Any]:
    info: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return {"totalBytes": None, "availableBytes": None, "usedBytes": None, "percent": None}
    total, available = info.get("MemTotal", 0), info.get("MemAvailable", info.get("MemFree", 0))
    return {
        "totalBytes": total,
        "availableBytes": available,
        "usedBytes": total - available,
        "percent": round(100 * (total - available) / total, 1) if total else None,
        "swapTotalBytes": info.get("SwapTotal"),
        "swapFreeBytes": info.get("SwapFree"),
    }


def _disk(path: Path) -> dict[str, Any]:
    usage = shutil.disk_usage(path)
    return {
        "path": str(path),
        "totalBytes": usage.total,
        "usedBytes": usage.used,
        "freeBytes": usage.free,
        "percent": round(100 * usage.used / usage.total, 1) if usage.total else None,
    }


def _uptime() -> float | None:
    try:
        with open("/proc/uptime") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
