"""The executor's command gate: which commands run at all.

It applies the policy of ``agentmesh.agents._commands`` to one task's input: no shell
syntax or shell-like program unless the task and the agent both allow shell; otherwise the
program must be on the allowlist and found on PATH, every argument that names a path must
stay in the workspace, and the environment is the workspace's plus what the task may set.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_sdk import TaskError
from agentmesh.agents import _sandbox
from agentmesh.agents._commands import env_refusal, needs_shell, path_candidates, shell_reason
from agentmesh.agents._inputs import bad
from agentmesh.agents.executor._process import Command
from agentmesh.agents.executor._workspace import base_env, directory

DEFAULT_TIMEOUT, MAX_TIMEOUT = 60.0, 600.0
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Gate:
    """Admits commands for the workspace ``root``: shell only when ``allow_shell``, other
    programs only when named in ``programs``."""

    root: Path
    allow_shell: bool
    programs: frozenset[str]

    def admit(self, inp: dict[str, Any]) -> Command:
        """The command ``inp`` asks for, if this gate lets it through: ShellNotAllowed,
        ProgramNotAllowed, CommandNotFound, PathOutsideWorkspace or BadInput otherwise."""
        command, shell = inp.get("command"), inp.get("shell", False)
        if not isinstance(shell, bool):
            raise bad("shell: must be a boolean")
        if isinstance(command, list):
            if not command or not all(isinstance(a, str) for a in command):
                raise bad("command: a list must be non-empty and hold only strings")
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
                raise bad(f"command: {e}") from None
        else:
            raise bad("command: must be a non-empty string or a list of strings")
        if not argv or not argv[0]:
            raise bad("command: names no program")
        if any("\0" in a for a in argv):
            raise bad("command: an argument holds a NUL byte")
        cwd = directory(self.root, inp.get("cwd", "."), "cwd")
        timeout = inp.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise bad("timeout: must be a number of seconds")
        if not 0 < timeout <= MAX_TIMEOUT:
            raise bad(f"timeout: must be in (0, {MAX_TIMEOUT:.0f}] seconds")
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
        return Command(argv, exe, text, cwd, env, float(timeout))

    def _env(self, extra: Any) -> dict[str, str]:
        env = base_env(self.root)
        extra = {} if extra is None else extra
        if not isinstance(extra, dict):
            raise bad("env: must be an object of NAME: string")
        for key, value in extra.items():
            if not _ENV_NAME.match(key) or not isinstance(value, str):
                raise bad(f"env: {key!r} needs an upper-case name and a string value")
            if "\0" in value:
                raise bad(f"env: the value of {key} holds a NUL byte")
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
                    _sandbox.confine(self.root, candidate, f"command[{i}]", base=cwd)
