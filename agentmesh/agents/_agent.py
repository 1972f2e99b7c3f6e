"""Putting a reference agent together: its workspace made ready, one ``agent_sdk.Agent`` of
its kind, and its capabilities registered in the order given (the order it advertises).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from agent_sdk import Agent, Task

Handler = Callable[[Task], Any]
#: (capability name, handler, description)
Capability = tuple[str, Handler, str]


def make_workspace(workspace: Path | str) -> Path:
    """``workspace`` as a ``Path``, created with its parents when missing."""
    path = Path(workspace)
    path.mkdir(parents=True, exist_ok=True)
    return path


def reference_agent(
    kind: str, coordinator: str | None, max_concurrency: int, capabilities: Iterable[Capability]
) -> Agent:
    """An agent named and typed ``kind`` serving ``capabilities``; ``ValueError`` for an
    empty or repeated capability name."""
    agent = Agent(kind, coordinator, type=kind, max_concurrency=max_concurrency)
    for name, handler, description in capabilities:
        agent.add_capability(name, handler, description=description)
    return agent
