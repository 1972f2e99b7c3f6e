"""``git_operations``: git init, add, commit and status on repositories in the workspace.

git runs without system or global config, hooks or an fsmonitor (a repository's own config
is a workspace file other agents can write), one operation at a time (git's index.lock).
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from agent_sdk import RetryableTaskError, Task, TaskError
from agentmesh.agents import _sandbox
from agentmesh.agents._inputs import bad
from agentmesh.agents.executor._workspace import base_env, directory

GIT_NAME, GIT_EMAIL = "AgentMesh Executor", "executor@agentmesh.local"


class Git:
    """git for the workspace ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def run(self, repo: Path, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[int, str]:
        """Run git in ``repo`` without system or global config; (exit code, stdout)."""
        env = base_env(self.root) | {
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

    def head_hash(self, repo: Path) -> str | None:
        """The commit HEAD names in ``repo``, or None before the first commit."""
        _, out = self.run(repo, "rev-parse", "-q", "--verify", "HEAD", ok=(0, 1))
        return out.strip() or None

    def _find_repo(self, path: Path) -> Path:
        for d in _sandbox.ancestors(self.root, path):
            if (d / ".git").exists():
                return d
        raise TaskError(f"path: {path} is not inside a git repository", type="NotARepository")

    def operation(self, task: Task) -> dict[str, Any]:
        """``git_operations``: init, add, commit or status, one at a time."""
        with self._lock:  # git's index.lock: one operation at a time
            return self._git_task(task)

    def _git_task(self, task: Task) -> dict[str, Any]:
        inp = task.input
        path = directory(self.root, inp.get("path"), "path")
        action, message = inp.get("action"), inp.get("commitMessage")
        initialize = inp.get("initialize", False)
        if not isinstance(initialize, bool):
            raise bad("initialize: must be a boolean")
        if message is not None and (not isinstance(message, str) or not message.strip()):
            raise bad("commitMessage: must be a non-empty string")
        if action is None:
            action = "init" if initialize else "commit" if message else "status"
        if action not in ("init", "add", "commit", "status"):
            raise bad("action: must be one of init, add, commit, status")
        files = inp.get("files", "all")
        if files != "all" and not (
            isinstance(files, list) and files and all(isinstance(f, str) for f in files)
        ):
            raise bad('files: must be "all" or a non-empty list of paths')
        out: dict[str, Any] = {"action": action}
        if action == "init":
            out["initialized"] = not (path / ".git").exists()
            if out["initialized"]:
                self.run(path, "init", "-q", "-b", "main")
            repo, message = path, message or "Initial commit"
            task.progress(0.3, "repository ready")
        else:
            repo = self._find_repo(path)
        for key, value in (("user.name", GIT_NAME), ("user.email", GIT_EMAIL)):
            if self.run(repo, "config", "--local", "--get", key, ok=(0, 1))[0] != 0:
                self.run(repo, "config", "--local", key, value)
        if action in ("init", "add", "commit"):
            if files == "all":
                self.run(repo, "add", "-A")
            else:
                chosen = [_sandbox.confine(self.root, f, "files", base=path) for f in files]
                if not all(_sandbox.is_inside(repo, p) for p in chosen):
                    raise bad(f"files: every file must be inside the repository {repo}")
                self.run(repo, "add", "-A", "--", *(str(p.relative_to(repo)) for p in chosen))
        out["committed"] = False
        if action in ("init", "commit"):
            code, _ = self.run(repo, "diff", "--cached", "--quiet", ok=(0, 1))
            if code == 1:  # there are staged changes
                self.run(repo, "commit", "-q", "--no-verify", "-m", message or "Update")
                out["committed"] = True
        if action in ("add", "status"):
            out["files"] = self.status(repo)
            out["clean"] = not out["files"]
        _, branch = self.run(repo, "symbolic-ref", "--short", "-q", "HEAD", ok=(0, 1))
        task.progress(0.9, f"{action} done")
        return out | {
            "path": str(repo),
            "url": repo.as_uri(),
            "hash": self.head_hash(repo),
            "branch": branch.strip() or None,
        }

    def status(self, repo: Path) -> list[dict[str, str]]:
        """``git status`` of ``repo``: {path, index, worktree[, from]} per changed file."""
        _, raw = self.run(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all")
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
