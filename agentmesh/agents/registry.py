"""Which agents exist and how to build them (imported lazily: one process, one agent).

The six reference agents of the seed take ``create(coordinator, workspace=..., **options)``
and return an ``agent_sdk.Agent``; ``workspace`` is the directory they may write in
(projects, pages, deployments), default ``$AGENTMESH_WORKSPACE`` or ``./agentmesh-workspace``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from agent_sdk import Agent

REFERENCE = ("planner", "executor", "notion", "build", "reviewer", "refactor")
FACTORIES = {
    "planner": "agentmesh.agents.planner:create",
    "executor": "agentmesh.agents.executor:create",
    "notion": "agentmesh.agents.notion:create",
    "build": "agentmesh.agents.build:create",
    "reviewer": "agentmesh.agents.reviewer:create",
    "refactor": "agentmesh.agents.refactor:create",
    "text": "agentmesh.agents.examples:text_agent",
    "math": "agentmesh.agents.examples:math_agent",
}


def default_workspace() -> Path:
    """``$AGENTMESH_WORKSPACE``, or ``./agentmesh-workspace``, as an absolute path."""
    return Path(os.environ.get("AGENTMESH_WORKSPACE", "agentmesh-workspace")).resolve()


def build_agent(name: str, coordinator: str | None = None, **options: Any) -> Agent:
    """The agent called ``name``; ValueError naming the known ones otherwise."""
    if name not in FACTORIES:
        raise ValueError(f"unknown agent {name!r}; known: {', '.join(FACTORIES)}")
    module, _, attr = FACTORIES[name].partition(":")
    factory = getattr(importlib.import_module(module), attr)
    if name in REFERENCE:
        options.setdefault("workspace", default_workspace())
    agent: Agent = factory(coordinator, **options)
    return agent
