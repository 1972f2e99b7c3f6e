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

Layout: ``_gate`` admits commands (the policy is ``agentmesh.agents._commands``),
``_process`` runs them, ``_workspace`` gives children their directory and environment,
``_git``, ``_deploy`` and ``_monitor`` serve the other capabilities.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from agent_sdk import Agent, Task
from agentmesh.agents import _sandbox
from agentmesh.agents._agent import make_workspace, reference_agent
from agentmesh.agents._commands import (
    DEFAULT_PROGRAMS,
    ENV_FORBIDDEN,
    SHELL_PROGRAMS,
    protect_environment,
    shell_reason,
)
from agentmesh.agents.executor._deploy import deploy
from agentmesh.agents.executor._gate import Gate
from agentmesh.agents.executor._git import Git
from agentmesh.agents.executor._monitor import monitor
from agentmesh.agents.executor._process import MAX_OUTPUT, run

__all__ = [
    "DEFAULT_PROGRAMS",
    "ENV_FORBIDDEN",
    "MAX_OUTPUT",
    "SHELL_PROGRAMS",
    "create",
    "shell_reason",
]


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
    root = _sandbox.real(make_workspace(workspace))
    gate, git = Gate(root, allow_shell, programs), Git(root)
    protect_environment()
    return reference_agent(
        "executor",
        coordinator,
        max_concurrency,
        [
            ("command_execution", partial(command, gate=gate), "run a command in the workspace"),
            ("git_operations", git.operation, "git init, add, commit, status"),
            (
                "deployment",
                partial(deploy, root=root, git=git),
                "copy a project to workspace/deployments/<env>",
            ),
            (
                "system_monitoring",
                partial(monitor, root=root),
                "CPU, memory, disk and process figures",
            ),
        ],
    )


def command(task: Task, gate: Gate) -> dict[str, Any]:
    """``command_execution``: the task's command, if ``gate`` admits it, run to its end."""
    admitted = gate.admit(task.input)
    task.progress(0.05, f"running {admitted.text[:80]}")
    return run(admitted)
