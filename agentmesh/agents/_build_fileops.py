"""``file_operations``: write, read, list, delete, mkdir and copy inside the workspace.

Every path (``path``, and ``to`` for copy) is confined to the workspace; writes are atomic,
reads, listings and writes are capped (``MAX_READ``, ``MAX_LIST``, ``MAX_WRITE``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from agent_sdk import Task, TaskError
from agentmesh.agents import _sandbox
from agentmesh.agents._files import write_atomic
from agentmesh.agents._inputs import bad

MAX_WRITE, MAX_READ, MAX_LIST = 10 << 20, 1 << 20, 2000


def files(task: Task, root: Path) -> dict[str, Any]:
    """``file_operations``: write, read, list, delete, mkdir or copy a path in ``root``."""
    inp = task.input
    action = inp.get("action")
    if action is None and ("content" in inp or "data" in inp):
        action = "write"
    ops = {
        "write": _write,
        "read": _read,
        "list": _list,
        "delete": _delete,
        "mkdir": _mkdir,
        "copy": _copy,
    }
    if action not in ops:
        raise bad(f"action: must be one of {', '.join(sorted(ops))}")
    path = _sandbox.confine(root, inp.get("path"), "path")
    if action in ("read", "list", "copy") and not path.exists():
        raise TaskError(f"path: {path} does not exist", type="FileNotFound")
    return {"action": action, "path": str(path)} | ops[action](root, path, inp)


def _mkdir(root: Path, path: Path, inp: dict[str, Any]) -> dict[str, Any]:
    created = not path.is_dir()
    path.mkdir(parents=True, exist_ok=True)
    return {"created": created}


def _delete(root: Path, path: Path, inp: dict[str, Any]) -> dict[str, Any]:
    if path == root:
        raise bad("path: will not delete the workspace itself")
    if path.is_dir() and not path.is_symlink():
        if any(path.iterdir()) and inp.get("recursive") is not True:
            raise bad("path: a non-empty directory needs recursive: true")
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    else:
        return {"deleted": False}
    return {"deleted": True}


def _read(root: Path, path: Path, inp: dict[str, Any]) -> dict[str, Any]:
    if not path.is_file():
        raise bad("path: not a file")
    size = path.stat().st_size
    if size > MAX_READ:
        raise TaskError(f"{path} is {size} bytes (limit {MAX_READ})", type="FileTooLarge")
    text = path.read_bytes().decode("utf-8", "replace")
    out: dict[str, Any] = {"content": text, "bytes": size}
    if path.suffix == ".json":
        with contextlib.suppress(ValueError):
            out["data"] = json.loads(text)
    return out


def _list(root: Path, path: Path, inp: dict[str, Any]) -> dict[str, Any]:
    pattern = "**/*" if inp.get("recursive") is True else "*"
    entries = []
    for p in sorted(path.glob(pattern)) if path.is_dir() else [path]:
        kind = "symlink" if p.is_symlink() else "dir" if p.is_dir() else "file"
        rel = p.relative_to(path).as_posix() if p != path else p.name
        size = p.lstat().st_size if kind == "file" else None
        entries.append({"path": rel, "type": kind, "size": size})
    return {"entries": entries[:MAX_LIST], "truncated": len(entries) > MAX_LIST}


def _copy(root: Path, path: Path, inp: dict[str, Any]) -> dict[str, Any]:
    target = _sandbox.confine(root, inp.get("to"), "to")
    overwrite = inp.get("overwrite") is True
    if path.is_dir():
        if target.is_relative_to(path):
            raise bad("to: cannot copy a directory into itself")
        if target.exists() and not overwrite:
            raise TaskError(f"to: {target} exists (set overwrite)", type="FileExists")
        shutil.copytree(path, target, symlinks=True, dirs_exist_ok=overwrite)
        return {"to": str(target), "files": sum(1 for p in target.rglob("*") if p.is_file())}
    target = target / path.name if target.is_dir() else target
    if target.exists() and not overwrite:
        raise TaskError(f"to: {target} exists (set overwrite)", type="FileExists")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, target)
    return {"to": str(target), "files": 1}


def _write(root: Path, path: Path, inp: dict[str, Any]) -> dict[str, Any]:
    if "content" in inp:
        if not isinstance(inp["content"], str):
            raise bad("content: must be a string (use data for JSON)")
        text = inp["content"]
    elif "data" in inp:
        data = inp["data"]
        plain = isinstance(data, str) and path.suffix != ".json"
        text = data if plain else json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        raise bad("content or data: one is required to write")
    if path.is_dir():
        raise bad(f"path: {path} is a directory")
    created = not path.exists()
    if not created and inp.get("overwrite", True) is False:
        raise TaskError(f"path: {path} exists", type="FileExists")
    raw = text.encode()
    if len(raw) > MAX_WRITE:
        raise bad(f"content: {len(raw)} bytes is over the {MAX_WRITE} byte limit")
    write_atomic(path, raw)
    return {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), "created": created}
