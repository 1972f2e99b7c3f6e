"""Build agent: scaffolds projects, generates components and code, transforms data, edits files.

Everything it writes lives under ``workspace`` (projects in ``workspace/projects/<name>``);
any path outside fails the task with ``PathOutsideWorkspace`` (``agentmesh.agents._sandbox``).
Templates and emitters are in ``agentmesh.agents._templates``; each capability has its
module: ``_build_scaffold``, ``_build_components`` (with ``_build_specs`` and
``_build_transform``), ``_build_fileops``, ``_build_codegen``. (A ``build/`` package would be
ignored by the repository's ``build/`` rules and by ruff, hence the flat modules.)

- ``project_scaffolding`` {projectType: react-typescript | react | node-service |
  static-site | python-package (aliases like "React TypeScript", "python"), name,
  options?: {overwrite?, description?, typescript?}} -> {path (absolute), name,
  projectType, files[], testCommand}. The tree is written to a temporary directory and
  renamed into place; an existing project fails with ``ProjectExists`` unless
  ``options.overwrite`` (the template's files are then rewritten, others kept).
- ``component_generation`` {components: [name | {name, kind?, description?, props?,
  methods?, signature?}], path} -> {path (project root), projectType, files[], skipped[],
  components[{name, kind, files}]}. ``path`` may be the project or a folder in it (the
  root is the nearest folder up with package.json, pyproject.toml or index.html). kind is
  component (src/components/<Name>.tsx), service (src/services/<Name>.ts), hook
  (src/hooks/<name>.ts), utility or module (src/utils/<name>.mjs, a .ts re-export and
  tests/<name>.test.mjs for ``node --test``); Python projects get a module and a pytest
  file. A component whose files exist is skipped, not rewritten. props and methods are
  {name: type} objects (taken in name order: JSON objects are unordered on the wire) or
  lists; types are TypeScript, and unknown type names are declared next to their use.
  With {data, transformations} instead (the seed's data_processing "transform" step):
  -> {result, applied[]}; transformations are names (upper, lower, trim, sort, dedupe,
  reverse, lines, json, compact, flatten) or {name, ...} (sort {key, descending}, pick
  {fields}); ``data`` that is JSON text for an array or object is parsed first; an
  unknown name fails with ``UnknownTransformation``.
- ``file_operations`` {action?: write | read | list | delete | mkdir | copy, path, ...}:
  write {content: str | data: JSON, overwrite?} (the action when content or data is
  given; data is written as JSON unless it is a string and the file is not .json)
  -> {path, bytes, sha256, created}; read -> {content, bytes, data?}; list {recursive?}
  -> {entries[{path, type, size}]}; delete {recursive?} -> {deleted}; mkdir -> {created};
  copy {to, overwrite?} -> {to, files}.
- ``code_generation`` {language: typescript | javascript | python, kind: function |
  class | interface | test, name, spec?: {description, signature | params + returns,
  body, methods, fields, target, module, cases[{args, expected}]}, path?, overwrite?}
  -> {language, kind, name, code, path?}.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from agent_sdk import Agent
from agentmesh.agents import _sandbox
from agentmesh.agents._agent import make_workspace, reference_agent
from agentmesh.agents._build_codegen import code
from agentmesh.agents._build_components import components
from agentmesh.agents._build_fileops import MAX_LIST, MAX_READ, MAX_WRITE, files
from agentmesh.agents._build_scaffold import TEST_COMMANDS, scaffold
from agentmesh.agents._build_transform import TRANSFORMATIONS

__all__ = ["MAX_LIST", "MAX_READ", "MAX_WRITE", "TEST_COMMANDS", "TRANSFORMATIONS", "create"]


def create(coordinator: str | None = None, *, workspace: Path, max_concurrency: int = 4) -> Agent:
    """The build agent, writing under ``workspace``."""
    root = _sandbox.real(make_workspace(workspace))
    return reference_agent(
        "build",
        coordinator,
        max_concurrency,
        [
            (
                "project_scaffolding",
                partial(scaffold, root=root),
                "create a project tree from a template",
            ),
            (
                "component_generation",
                partial(components, root=root),
                "generate components, services, hooks and utilities (or transform data)",
            ),
            (
                "file_operations",
                partial(files, root=root),
                "write, read, list, delete, mkdir, copy",
            ),
            (
                "code_generation",
                partial(code, root=root),
                "generate a function, class, interface or test",
            ),
        ],
    )
