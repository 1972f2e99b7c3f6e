"""What the executor's work gets from the workspace: directories confined in it
(``agentmesh.agents._sandbox``), and the environment every child process starts from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agentmesh.agents import _sandbox
from agentmesh.agents._commands import ENV_FROM_AGENT
from agentmesh.agents._inputs import bad


def directory(root: Path, raw: Any, field: str) -> Path:
    """The real path of ``raw``, which must be an existing directory in the workspace."""
    path = _sandbox.confine(root, raw, field)
    if not path.is_dir():
        raise bad(f"{field}: {raw!r} is not an existing directory")
    return path


def base_env(root: Path) -> dict[str, str]:
    """What every child gets: a few of the agent's names, PATH without relative
    entries or entries in the workspace (which would pick workspace files as
    programs), and HOME at the workspace."""
    env = {k: os.environ[k] for k in ENV_FROM_AGENT if k in os.environ}
    entries = env.get("PATH", os.defpath).split(os.pathsep)
    safe = [e for e in entries if os.path.isabs(e) and not _sandbox.is_inside(root, e)]
    env["PATH"] = os.pathsep.join(safe) or os.defpath
    env["HOME"] = str(root)
    return env
