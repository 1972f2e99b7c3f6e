"""``deployment``: a project tree copied into ``<target>/<environment>/<project>/``.

The copy (without .git, node_modules, __pycache__, .venv) is made in a temporary directory
with a ``DEPLOYMENT.json`` manifest and renamed into place under a lock; the previous
deployment is moved aside, then removed. ``sha256`` hashes the ``sha256sum``-style listing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent_sdk import Task, TaskError
from agentmesh.agents import _sandbox
from agentmesh.agents._inputs import bad
from agentmesh.agents.executor._git import Git
from agentmesh.agents.executor._workspace import directory

DEPLOY_EXCLUDE = frozenset({".git", "node_modules", "__pycache__", ".venv"})
MAX_DEPLOY_FILES, MAX_DEPLOY_BYTES = 20_000, 1 << 30
_ENVIRONMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def deploy(task: Task, root: Path, git: Git) -> dict[str, Any]:
    """``deployment``: the project copied to ``<target>/<environment>/<project>``."""
    inp = task.input
    src = directory(root, inp.get("path"), "path")
    environment = inp.get("environment")
    if not isinstance(environment, str) or not _ENVIRONMENT.match(environment):
        raise bad("environment: must be a name of letters, digits, '.', '_' or '-'")
    target = _sandbox.confine(root, inp.get("target", "deployments"), "target")
    # Resolved again with the environment: an existing <target>/<env> may be a symlink.
    dest = _sandbox.confine(root, environment, "environment", base=target) / src.name
    if dest.is_relative_to(src):
        raise bad(f"path: {src} contains the deployment target {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    commit, dirty = None, None
    if (src / ".git").exists():
        commit, dirty = git.head_hash(src), bool(git.status(src))
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
            files = _copy_tree(src, tmp, task)
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


def _copy_tree(src: Path, dst: Path, task: Task) -> list[dict[str, Any]]:
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


def _copy_file(src: Path, dst: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(src, "rb") as f, open(dst, "wb") as g:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            g.write(chunk)
            size += len(chunk)
    shutil.copystat(src, dst)
    return h.hexdigest(), size
