"""The workflow catalog: definitions defined, loaded from and saved to ``workflowDir``,
versioned, parsed and validated (off the event loop), cached by (name, version).

Definitions live in the store (so a restarted or newly elected coordinator has them);
the catalog keeps the parsed ones it has used. Every definition belongs to one namespace
(``DEFAULT_NAMESPACE`` unless given): the same name in two namespaces is two workflows,
and a lookup never crosses namespaces. ``workflowDir`` loads into the default one. Raises the domain errors of
``coordinator.errors``: InvalidArgument (with bounded issue text), NotFound,
AlreadyExists, FailedPrecondition.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from coordinator.config import Settings
from coordinator.domain import DEFAULT_NAMESPACE
from coordinator.engine.definition import (
    DefinitionError,
    Issue,
    dump_definition,
    load_definition_file,
    parse_definition,
)
from coordinator.engine.issues import issues_text
from coordinator.engine.model import WorkflowDefinition
from coordinator.engine.templates import instantiate_template
from coordinator.engine.validate import validate_definition
from coordinator.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    MeshError,
    NotFound,
)
from coordinator.store import Store, WorkflowRecord


def _now() -> datetime:
    return datetime.now(UTC)


class Catalog:
    """The definitions of one coordinator. ``capabilities(namespace)`` names what
    agents of a namespace advertise: validation warns of task steps nobody can run."""

    def __init__(
        self, settings: Settings, store: Store, capabilities: Callable[[str], set[str]]
    ) -> None:
        self.settings = settings
        self.store = store
        self._capabilities = capabilities
        self._defs: dict[tuple[str, str, str], WorkflowDefinition] = {}  # (ns, name, version)
        self._latest: dict[tuple[str, str], str] = {}  # (ns, name) -> latest, on first use
        self._listeners: list[Callable[[str, str], Awaitable[None]]] = []

    def add_listener(self, listener: Callable[[str, str], Awaitable[None]]) -> None:
        """Await ``listener(namespace, name)`` after a workflow is defined or deleted,
        before the change is answered."""
        self._listeners.append(listener)

    async def _changed(self, namespace: str, name: str) -> None:
        for listener in self._listeners:
            await listener(namespace, name)

    async def define_workflow(
        self,
        name: str,
        source: dict[str, Any],
        parameters: dict[str, Any] | None = None,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> WorkflowDefinition:
        """``define`` without its warnings."""
        return (await self.define(name, source, parameters, namespace))[0]

    async def define(
        self,
        name: str,
        source: dict[str, Any],
        parameters: dict[str, Any] | None = None,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> tuple[WorkflowDefinition, list[Issue]]:
        """Register a definition; returns it with what validation warned of. A
        definition without an explicit version that differs from the latest gets the
        next integer version; an explicit version that exists with different content is
        refused (ALREADY_EXISTS). A template (a definition with ``parameters``) is
        instantiated with ``parameters`` first."""
        caps, known = await self._known(namespace)
        # Off the event loop: parsing and validation are linear in a bounded document
        # (coordinator/engine/limits.py), but a big one still takes milliseconds.
        try:
            source, defn, problems = await asyncio.to_thread(
                _prepare, name, source, parameters, caps, known
            )
        except DefinitionError as e:
            raise InvalidArgument(issues_text(e.issues)) from None
        errors = [i for i in problems if i.severity == "error"]
        if errors:
            raise InvalidArgument(issues_text(errors))
        return await self._register(defn, source, namespace), problems

    async def _register(
        self, defn: WorkflowDefinition, source: dict[str, Any], namespace: str
    ) -> WorkflowDefinition:
        latest = await self.store.get_workflow(defn.name, "", namespace)
        explicit = "version" in source
        version = defn.version
        if latest is not None and not explicit:
            if latest.definition == dict(source):
                return self._remember(latest)
            version = _next_version(latest.version)
        existing = await self.store.get_workflow(defn.name, version, namespace)
        if existing is not None and existing.definition != dict(source):
            raise AlreadyExists(
                f"workflow {defn.name!r} version {version!r} exists with a different "
                "definition; give the new one another version"
            )
        record = WorkflowRecord(defn.name, version, dict(source), _now(), namespace)
        await self.store.put_workflow(record)
        self._latest.pop((namespace, defn.name), None)  # the store decides the latest
        remembered = self._remember(record)
        await self._changed(namespace, defn.name)
        return remembered

    async def _known(self, namespace: str) -> tuple[set[str], set[str]]:
        """Capabilities the namespace's agents advertise and the workflows it defines
        (in the store: a restarted coordinator knows them too): what validation warns of."""
        stored = {r.name for r in await self.store.list_workflows(namespace)}
        cached = {name for ns, name, _ in self._defs if ns == namespace}
        return self._capabilities(namespace), stored | cached

    async def check_definition(
        self, source: dict[str, Any], name: str = "", namespace: str = DEFAULT_NAMESPACE
    ) -> list[Issue]:
        """Every issue of a definition (parse errors, or validation errors and warnings),
        found off the event loop."""
        caps, known = await self._known(namespace)

        def check() -> list[Issue]:
            try:
                defn = parse_definition(source, name or None)
            except DefinitionError as e:
                return e.issues
            return validate_definition(defn, known_capabilities=caps, known_workflows=known)

        return await asyncio.to_thread(check)

    async def validate(
        self, defn: WorkflowDefinition, namespace: str = DEFAULT_NAMESPACE
    ) -> list[Issue]:
        """The validation issues of a parsed definition, found off the event loop."""
        caps, known = await self._known(namespace)
        return await asyncio.to_thread(
            validate_definition, defn, known_capabilities=caps, known_workflows=known
        )

    async def load_directory(self, directory: str) -> list[WorkflowDefinition]:
        """Define every workflow file in ``directory`` (``*.yaml``, ``*.yml``, ``*.json``);
        a file that does not parse or validate is logged and skipped. Returns how many loaded."""
        out = []
        paths = await asyncio.to_thread(lambda: sorted(Path(directory).glob("*")))
        for path in paths:
            if path.suffix in (".json", ".yaml", ".yml"):
                out.append(await self.load_file(path))
        return out

    def _in_workflow_dir(self, path: str) -> Path:
        """Resolve an API-given path inside ``workflowDir`` (never outside it)."""
        if not self.settings.workflow_dir:
            raise FailedPrecondition("the coordinator has no workflowDir configured")
        if not path.isprintable():
            raise InvalidArgument(f"path {path!r} contains control characters")
        root = Path(self.settings.workflow_dir).resolve()
        try:
            target = (root / path).resolve()
        except (OSError, ValueError) as e:
            raise InvalidArgument(f"path {path!r} cannot be resolved: {e}") from None
        if target != root and root not in target.parents:
            raise InvalidArgument(f"path {path!r} is outside the workflow directory")
        return target

    async def load_workflow(
        self, path: str, namespace: str = DEFAULT_NAMESPACE
    ) -> WorkflowDefinition:
        """loadWorkflow(path): a file in workflowDir (paths cannot leave it)."""
        return await self.load_file(self._in_workflow_dir(path), namespace)

    async def save_workflow(
        self, name: str, version: str = "", path: str = "", namespace: str = DEFAULT_NAMESPACE
    ) -> str:
        """saveWorkflow: write a defined workflow as YAML into workflowDir."""
        record = await self.store.get_workflow(name, version, namespace)
        if record is None:
            raise NotFound(f"workflow {name!r} is not defined")
        target = self._in_workflow_dir(path or f"{name}.yaml")
        source = dump_definition(self._remember(record))  # carries `id`, so it reloads as itself
        text = yaml.safe_dump(source, sort_keys=False, allow_unicode=True)
        try:
            await asyncio.to_thread(target.write_text, text)
        except OSError as e:
            raise _path_error(e, "write", path or f"{name}.yaml") from None
        return str(target)

    async def load_file(
        self, path: str | Path, namespace: str = DEFAULT_NAMESPACE
    ) -> WorkflowDefinition:
        """Define the workflow in ``path``. Raises ``DefinitionError`` (with every issue) or
        ``OSError``; cancelling it before the store write leaves nothing defined."""
        try:
            defn = await asyncio.to_thread(load_definition_file, path)
        except DefinitionError as e:
            raise InvalidArgument(issues_text(e.issues)) from None
        except OSError as e:
            raise _path_error(e, "read", str(path)) from None
        return await self.define_workflow(defn.name, dict(defn.source), None, namespace)

    async def get_workflow(
        self, name: str, version: str = "", namespace: str = DEFAULT_NAMESPACE
    ) -> WorkflowDefinition:
        """The version ``version`` of ``name`` in ``namespace`` (the latest with "").
        Raises NotFound, also for a workflow only another namespace defines."""
        version = version or self._latest.get((namespace, name), "")
        cached = self._defs.get((namespace, name, version)) if version else None
        if cached is not None:
            return cached
        record = await self.store.get_workflow(name, version, namespace)
        if record is None:
            what = f"{name!r} version {version!r}" if version else repr(name)
            raise NotFound(f"workflow {what} is not defined")
        if not version:
            self._latest[(namespace, name)] = record.version
        return self._remember(record)

    async def list_workflows(self, namespace: str = DEFAULT_NAMESPACE) -> list[WorkflowRecord]:
        """Every version of every workflow of ``namespace``."""
        return await self.store.list_workflows(namespace)

    async def delete_workflow(
        self, name: str, version: str = "", namespace: str = DEFAULT_NAMESPACE
    ) -> int:
        """Delete one version, or every version with ""; NotFound when none was."""
        n = await self.store.delete_workflow(name, version, namespace)
        if n == 0:
            raise NotFound(f"workflow {name!r} is not defined")
        for key in [
            k for k in self._defs if k[:2] == (namespace, name) and (not version or k[2] == version)
        ]:
            del self._defs[key]
        self._latest.pop((namespace, name), None)
        await self._changed(namespace, name)
        return n

    def _remember(self, record: WorkflowRecord) -> WorkflowDefinition:
        key = (record.namespace, record.name, record.version)
        if key not in self._defs:
            defn = parse_definition(record.definition, record.name)
            if defn.version != record.version:
                defn = _with_version(defn, record.version)
            self._defs[key] = defn
        return self._defs[key]


def _path_error(e: OSError, verb: str, path: str) -> MeshError:
    """The domain error for a workflow file that cannot be read or written."""
    message = f"cannot {verb} {path}: {e.strerror or e}"
    if e.errno == errno.ENOENT:
        return NotFound(message)
    if e.errno in (errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG, errno.EINVAL):
        return InvalidArgument(message)
    return FailedPrecondition(message)  # permissions, a full disk: the operator's to fix


def _prepare(
    name: str,
    source: dict[str, Any],
    parameters: dict[str, Any] | None,
    capabilities: set[str],
    workflows: set[str],
) -> tuple[dict[str, Any], WorkflowDefinition, list[Issue]]:
    """Instantiate (a template), parse and validate a definition: pure, for a thread.
    Raises DefinitionError."""
    if "parameters" in source:
        source = instantiate_template(source, parameters or {})
        if name:
            source["id"] = name
    defn = parse_definition(source, name or None)
    issues = validate_definition(defn, known_capabilities=capabilities, known_workflows=workflows)
    return source, defn, issues


def _next_version(version: str) -> str:
    return str(int(version) + 1) if version.isdigit() else f"{version}.1"


def _with_version(defn: WorkflowDefinition, version: str) -> WorkflowDefinition:
    return replace(defn, version=version)
