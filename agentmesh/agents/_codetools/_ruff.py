"""Running ``ruff`` (found next to the interpreter or on PATH) on workspace files: the
project's own ruff config applies when it has one up to the workspace, else ``--isolated``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent_sdk import TaskError
from agentmesh.agents import _sandbox

_RUFF_CONFIGS = ("ruff.toml", ".ruff.toml")


def ruff_executable() -> str | None:
    """ruff next to this interpreter, else on PATH; None when there is none."""
    sibling = Path(sys.executable).parent / "ruff"
    return str(sibling) if sibling.is_file() else shutil.which("ruff")


def _has_ruff_config(directory: Path, workspace: Path) -> bool:
    for d in _sandbox.ancestors(workspace, directory):
        if any((d / name).is_file() for name in _RUFF_CONFIGS):
            return True
        pyproject = d / "pyproject.toml"
        if pyproject.is_file() and "[tool.ruff" in pyproject.read_text(errors="replace"):
            return True
    return False


def ruff(
    args: list[str], files: list[Path], workspace: Path, *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``ruff <args> <files>``; the project's own ruff config applies when it has one,
    otherwise ruff's defaults (``--isolated``, so no config above the workspace leaks in).
    TaskError ToolFailed when ruff itself fails."""
    exe = ruff_executable()
    if exe is None:
        raise TaskError("ruff is not installed", type="ToolMissing")
    common = Path(os.path.commonpath([str(f.parent) for f in files]))
    isolated = [] if _has_ruff_config(common, _sandbox.real(workspace)) else ["--isolated"]
    cmd = [exe, *args[:1], "--no-cache", *isolated, *args[1:], *map(str, files)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=common)
    except subprocess.TimeoutExpired:
        raise TaskError(f"ruff timed out after {timeout:.0f} s", type="ToolFailed") from None
    if proc.returncode not in (0, 1):
        raise TaskError(
            f"ruff failed ({proc.returncode}): {proc.stderr.strip()[-500:]}", type="ToolFailed"
        )
    return proc


def ruff_issues(
    files: list[Path], workspace: Path, select: str | None = None, extra: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """ruff's diagnostics of ``files``, as raw JSON objects."""
    if not files:
        return []
    args = ["check", "--output-format=json", "--exit-zero", *extra]
    if select:
        args.append(f"--select={select}")
    data = json.loads(ruff(args, files, workspace).stdout or "[]")
    return [d for d in data if isinstance(d, dict)]
