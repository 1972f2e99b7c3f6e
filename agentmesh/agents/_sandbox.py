"""Confining user-given paths to an agent's workspace: the one check every reference agent uses.

A path is resolved to its real path (``..`` collapsed, every existing symlink followed, a
missing tail taken as written) and compared with the real path of the workspace root, so
``..`` escapes, absolute paths elsewhere and symlinks inside the workspace that point out of
it all fail the same way. The check is made once, when the path is resolved: a symlink an
untrusted process swaps in afterwards is not seen (keep untrusted writers out of the
workspace, or treat the workspace as theirs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from agent_sdk import TaskError

OUTSIDE = "PathOutsideWorkspace"


def real(path: Path | str) -> Path:
    """``path`` with ``..`` collapsed and every existing symlink followed (never raises for a
    missing path; a symlink loop is left unresolved, and the OS refuses to follow it)."""
    return Path(os.path.realpath(path))


def is_inside(root: Path, path: Path | str) -> bool:
    """Whether the real path of ``path`` is ``root``'s real path or below it."""
    return real(path).is_relative_to(real(root))


def confine(root: Path, raw: object, field: str, *, base: Path | None = None) -> Path:
    """The real path of ``raw`` (absolute, or relative to ``base``, default ``root``).

    Raises ``TaskError`` type ``BadInput`` when ``raw`` is not a non-empty string or holds a
    NUL byte, and type ``PathOutsideWorkspace`` when the real path is not under ``root``'s
    real path (through ``..``, an absolute path, or a symlink that leads out).
    """
    if not isinstance(raw, str) or not raw.strip():
        raise TaskError(f"{field}: must be a non-empty string", type="BadInput")
    if "\0" in raw:
        raise TaskError(f"{field}: {raw!r} holds a NUL byte", type="BadInput")
    workspace = real(root)
    text = raw.strip()
    path = real((base if base is not None else workspace) / text)
    if not path.is_relative_to(workspace):
        lexical = Path(os.path.normpath((base if base is not None else workspace) / text))
        how = " through a symlink" if lexical.is_relative_to(workspace) else ""
        raise TaskError(f"{field}: {raw!r} is outside the workspace {workspace}{how}", type=OUTSIDE)
    return path


def ancestors(root: Path, path: Path) -> Iterator[Path]:
    """``path`` and the directories above it, nearest first, ending with ``root``: the
    places an upward search (for a project file, a repository, a tool's config) may look
    without leaving the workspace. Lexical: pass real paths (``confine``'s). A ``path`` not
    under ``root`` yields every parent up to the filesystem root."""
    for directory in (path, *path.parents):
        yield directory
        if directory == root:
            return


def names_a_path(arg: str, cwd: Path) -> bool:
    """Whether a program argument is one a program would take as a path that may leave the
    workspace: absolute, with a ``..`` component, or starting with something that exists
    under ``cwd`` (which may be a symlink: ``link/new-file`` leaves through ``link``)."""
    if not arg or "\0" in arg:
        return False
    parts = PurePosixPath(arg).parts
    return (
        arg.startswith("/")
        or ".." in parts
        or os.path.lexists(os.path.join(cwd, parts[0] if parts else "."))
    )
