"""The source tree the reviewer and refactor agents work on: workspace-confined paths
(``agentmesh.agents._sandbox``), exact reads and writes, and ``{a,b}``/``**`` globs that never
walk into dependency, build or hidden directories or follow symlinks."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_sdk import TaskError
from agentmesh.agents import _sandbox

TS_SUFFIXES = frozenset({".ts", ".tsx", ".mts", ".cts"})
JS_SUFFIXES = frozenset({".js", ".jsx", ".mjs", ".cjs"}) | TS_SUFFIXES
PY_SUFFIXES = frozenset({".py", ".pyi"})
SKIP_DIRS = frozenset(
    {"node_modules", "dist", "build", "coverage", "__pycache__", "venv", "site-packages"}
)
Keep = Callable[[Path], bool] | None


def existing_dir(workspace: Path, raw: Any, field: str = "path") -> Path:
    """The real path of ``raw``, confined to the workspace (``_sandbox.confine``), which
    must exist (a file or a directory): BadInput otherwise."""
    path = _sandbox.confine(workspace, raw, field)
    if not path.exists():
        raise TaskError(f"{field}: {raw!r} does not exist", type="BadInput")
    return path


def display(path: Path, workspace: Path) -> str:
    """``path`` relative to the workspace, with forward slashes (what outputs carry)."""
    return path.relative_to(_sandbox.real(workspace)).as_posix()


def read_source(path: Path) -> str:
    """The text of ``path``, newlines and undecodable bytes kept (round-trips exactly)."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        return f.read()


def write_source(path: Path, text: str) -> None:
    """Write ``text`` as ``read_source`` read it (newlines and undecodable bytes as they were)."""
    with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        f.write(text)


def expand_braces(pattern: str) -> list[str]:
    """Shell-style ``{a,b}`` expansion (nested allowed): ``*.{js,ts}`` -> two patterns."""
    m = re.search(r"\{([^{}]*,[^{}]*)\}", pattern)
    if m is None:
        return [pattern]
    head, tail = pattern[: m.start()], pattern[m.end() :]
    return [p for alt in m.group(1).split(",") for p in expand_braces(head + alt + tail)]


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            j = pattern.index("]", i + 1)
            body = pattern[i + 1 : j].replace("\\", "\\\\")
            out, i = out + "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", j + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def walk(root: Path, keep: Keep = None) -> list[Path]:
    """Files under ``root`` (sorted), skipping dependency, build and hidden directories
    and symlinks (which could lead out of the workspace); ``keep(path)`` filters them."""
    if root.is_file():
        return [root] if keep is None or keep(root) else []
    found = []
    for base, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in files:
            path = Path(base, name)
            if not path.is_symlink() and (keep is None or keep(path)):
                found.append(path)
    return sorted(found)


def glob(workspace: Path, spec: str, field: str, keep: Keep = None) -> list[Path]:
    """Files that ``spec`` names: a glob (with ``{a,b}`` and ``**``), a directory (all of
    its files) or a file. A spec whose base directory does not exist names nothing."""
    found: list[Path] = []
    for pattern in expand_braces(spec):
        parts = pattern.split("/")
        cut = next((k for k, p in enumerate(parts) if any(c in p for c in "*?[")), len(parts))
        base = "/".join(parts[:cut]) or ("/" if pattern.startswith("/") else ".")
        root = _sandbox.confine(workspace, base, field)
        if not root.exists():
            continue
        if cut == len(parts):
            found += walk(root, keep)
            continue
        regex = _glob_regex("/".join(parts[cut:]))
        found += [p for p in walk(root, keep) if regex.match(p.relative_to(root).as_posix())]
    return sorted({_sandbox.real(p) for p in found if _sandbox.is_inside(workspace, p)})
