"""``project_scaffolding``: a project written from a template, whole or not at all.

A new tree is written to a temporary directory and renamed into place; with
``options.overwrite`` an existing project gets the template's files rewritten (others kept).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from agent_sdk import Task, TaskError
from agentmesh.agents import _templates as tpl
from agentmesh.agents._files import write_atomic
from agentmesh.agents._inputs import bad

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ALIASES = {
    "react-ts": "react-typescript",
    "react-tsx": "react-typescript",
    "typescript-react": "react-typescript",
    "react-js": "react",
    "react-javascript": "react",
    "python": "python-package",
    "python-library": "python-package",
    "node": "node-service",
    "nodejs": "node-service",
    "node-js": "node-service",
    "static": "static-site",
    "html": "static-site",
}
TEST_COMMANDS = {"python-package": "pytest"}


def scaffold(task: Task, root: Path) -> dict[str, Any]:
    """``project_scaffolding``: a project tree from a template under ``root/projects``."""
    inp = task.input
    options = inp.get("options")
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise bad("options: must be an object")
    raw_type, name = inp.get("projectType"), inp.get("name")
    if not isinstance(raw_type, str) or not raw_type.strip():
        raise bad("projectType: must be a non-empty string")
    ptype = re.sub(r"[\s_/+.]+", "-", raw_type.strip().lower())
    ptype = _ALIASES.get(ptype, ptype)
    if ptype == "react" and options.get("typescript") is True:
        ptype = "react-typescript"
    if ptype not in tpl.PROJECTS:
        raise TaskError(
            f"projectType: {raw_type!r} is not one of {', '.join(tpl.PROJECTS)}",
            type="UnknownProjectType",
        )
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith("."):
        raise bad("name: must be 1-64 letters, digits, '.', '_' or '-', starting alnum")
    overwrite = options.get("overwrite", False)
    description = options.get("description") or f"A {ptype} project."
    if not isinstance(overwrite, bool) or not isinstance(description, str):
        raise bad("options: overwrite must be a boolean and description a string")
    files = tpl.PROJECTS[ptype](name, description)
    projects = root / "projects"
    dest = projects / name
    task.progress(0.2, f"writing {len(files)} files")
    existed = dest.exists()
    if existed and not overwrite:
        raise TaskError(
            f"project {name!r} already exists at {dest} (set options.overwrite)",
            type="ProjectExists",
            details={"path": str(dest)},
        )
    if existed:
        for rel, content in files.items():
            write_atomic(dest / rel, content.encode())
    else:
        tmp = projects / f".{name}.tmp-{uuid.uuid4().hex[:12]}"
        try:
            for rel, content in files.items():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_text(content, encoding="utf-8")
            for folder in ("src/components", "src/hooks") if "react" in ptype else ():
                (tmp / folder).mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, dest)
            except OSError:
                raise TaskError(
                    f"project {name!r} appeared at {dest} meanwhile", type="ProjectExists"
                ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    task.progress(1.0, f"scaffolded {dest}")
    return {
        "path": str(dest),
        "name": name,
        "projectType": ptype,
        "files": sorted(files),
        "testCommand": TEST_COMMANDS.get(ptype, "node --test"),
        "overwritten": existed,
    }
