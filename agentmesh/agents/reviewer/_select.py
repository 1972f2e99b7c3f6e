"""Which files a reviewer task names: ``files`` (a glob or a list of globs, directories
and files) and ``path``, confined to the workspace; and which files are tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agentmesh.agents import _codetools as js
from agentmesh.agents._inputs import bad

LINTABLE = js.JS_SUFFIXES | js.PY_SUFFIXES
PY_TEST = re.compile(r"test_.*\.py|.*_test\.py")


def specs(inp: dict[str, Any]) -> list[str]:
    """The ``files`` and ``path`` inputs as a list of specs (one is required)."""
    files, path = inp.get("files"), inp.get("path")
    if files is None and path is None:
        raise bad("files: required (a glob or a list of globs/paths) unless path is given")
    specs: list[str] = []
    if isinstance(files, str):
        specs.append(files)
    elif isinstance(files, list) and all(isinstance(f, str) for f in files):
        specs += files
    elif files is not None:
        raise bad("files: must be a string or a list of strings")
    if path is not None:
        if not isinstance(path, str):
            raise bad("path: must be a string")
        specs.append(path)
    return specs


def collect(workspace: Path, specs: list[str], keep: js.Keep) -> list[Path]:
    """The files the ``specs`` name in the workspace that ``keep`` keeps, sorted, once each."""
    found: set[Path] = set()
    for spec in specs:
        found.update(js.glob(workspace, spec, "files", keep))
    return sorted(found)


def is_test_file(path: Path, root: Path) -> bool:
    """Whether ``path`` is a test: by its name, or by a tests folder between it and ``root``."""
    parts = path.relative_to(root).parts[:-1]
    return bool(
        PY_TEST.fullmatch(path.name)
        or re.search(r"\.(test|spec)\.\w+$", path.name)
        or {"tests", "test", "__tests__"} & set(parts)
    )
