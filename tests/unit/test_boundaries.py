"""Architecture rules that keep the code honest.

The layers, each allowed to import only what ``ALLOWED`` lists for it (every arrow
points down; docs/architecture.md draws the same picture)::

    agentmesh.cli        the agentmesh command and the demo
    agentmesh.agents     the reference agents            (SDK users, like any agent)
    coordinator.server   the assembly: process, term, replica
    coordinator.api      the gRPC edge: servicers, status mapping, conversions
    coordinator.cluster  membership, the agent directory
    coordinator.auth     principals, tokens, JWTs, roles, the audit log
    coordinator.monitor  the event log (global order, subscriptions), metrics, Prometheus
    coordinator.engine   workflows: definition, validation, the pure core, the runtime
    coordinator.mesh     agents, routing, task life
    coordinator.waits    tasks no live agent can take
    coordinator.store    the event store (memory, SQLite, etcd)
    coordinator.kv       the KV protocol, MemoryKV, EtcdKV, election
    coordinator.config / domain / retry / errors / logs
    agent_sdk            the client side: Agent, Client (never the coordinator)
    agentmesh.protocol / wire / payload / documents / v1   shared by both sides
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import agent_sdk

ROOT = Path(__file__).resolve().parents[2]

SHARED = {
    "agentmesh",
    "agentmesh.protocol",
    "agentmesh.payload",
    "agentmesh.documents",
    "agentmesh.signing",
    "agentmesh.v1",
}
FOUNDATION = {
    "coordinator.errors",
    "coordinator.retry",
    "coordinator.domain",
    "coordinator.config",
    "coordinator.quotas",
    "coordinator.secrets",
    "coordinator.logs",
}
#: component -> the components it may import (besides itself and the standard library).
ALLOWED: dict[str, set[str]] = {
    "agentmesh": set(),  # the package root: __version__
    "coordinator": set(),  # the package root: a docstring
    "agentmesh.protocol": set(),
    "agentmesh.payload": set(),
    "agentmesh.documents": set(),
    "agentmesh.signing": set(),
    "agentmesh.v1": set(),
    "agentmesh.wire": {"agentmesh.payload"},
    "coordinator.errors": set(),
    "coordinator.retry": set(),
    "coordinator.logs": set(),
    "coordinator.domain": {"agentmesh.protocol", "coordinator.errors", "coordinator.retry"},
    "coordinator.config": {"coordinator.errors", "coordinator.retry"},
    "coordinator.quotas": {"coordinator.config", "coordinator.errors"},
    "coordinator.secrets": {"coordinator.config", "coordinator.errors"},
    "coordinator.kv": {"agentmesh.protocol", "coordinator.errors"},
    "coordinator.store": {"coordinator.kv", *FOUNDATION},
    "coordinator.waits": {*FOUNDATION},
    "coordinator.mesh": {"coordinator.waits", "agentmesh.payload", *FOUNDATION},
    "coordinator.engine": {
        "coordinator.store",
        "coordinator.waits",
        "agentmesh.payload",
        "agentmesh.documents",
        *FOUNDATION,
    },
    "coordinator.monitor": {"coordinator.store", *FOUNDATION},
    "coordinator.cluster": {"coordinator.kv", "agentmesh.protocol", *FOUNDATION},
    "coordinator.auth": {"agentmesh.protocol", *FOUNDATION},
    "coordinator.integrations": {"coordinator.store", "agentmesh.signing", *FOUNDATION},
    "coordinator.api": {
        "coordinator.auth",
        "coordinator.integrations",
        "coordinator.monitor",
        "coordinator.mesh",
        "coordinator.engine",
        "coordinator.store",
        "coordinator.kv",
        "coordinator.waits",
        "agentmesh.wire",
        *SHARED,
        *FOUNDATION,
    },
    "coordinator.server": {
        "coordinator.api",
        "coordinator.integrations",
        "coordinator.monitor",
        "coordinator.auth",
        "coordinator.cluster",
        "coordinator.engine",
        "coordinator.mesh",
        "coordinator.store",
        "coordinator.kv",
        "coordinator.waits",
        *SHARED,
        *FOUNDATION,
    },
    "agent_sdk": {"agentmesh.wire", *SHARED},
    "agentmesh.agents": {"agent_sdk", "agentmesh.documents", "agentmesh.payload"},
    "agentmesh.cli": {
        "agentmesh",
        "coordinator.errors",
        "coordinator.logs",
        "agent_sdk",
        "agentmesh.agents",
        "agentmesh.documents",
        "coordinator.server",
        "coordinator.cluster",
        "coordinator.config",
        "coordinator.auth",
        "coordinator.engine",
        "coordinator.kv",
        "coordinator.store",
    },
}
#: Modules that may import grpc or protobuf: the edges. Everything else works on
#: domain types.
TRANSPORT = (
    "agentmesh.v1",
    "agentmesh.wire",
    "coordinator.api",
    "coordinator.server",
    "coordinator.kv.etcd",  # the etcd client's own transport (aetcd's stubs)
    "agent_sdk._agent",
    "agent_sdk._agent_session",
    "agent_sdk._call_status",
    "agent_sdk._agent_runner",
    "agent_sdk._tracing",
    "agent_sdk._integrations",
    "agent_sdk._webhooks",
    "agent_sdk._client",
    "agent_sdk._decode",
    "agent_sdk._discovery",
    "agent_sdk._errors",
    "agent_sdk._monitoring",
    "agent_sdk._task",
    "agent_sdk._task_waits",
    "agent_sdk._tls",
    "agent_sdk._types",
    "agent_sdk._workflows",
    "agent_sdk.testing",
    "agentmesh.cli",  # the grpcurl-facing commands print protobuf JSON
)
#: The pure parts of the engine: no clock, no randomness, no I/O, no event loop.
PURE = ["core", "steps", "model", "events", "expr", "issues", "limits", "schema", "validate"]
IMPURE = {"asyncio", "time", "random", "uuid", "os", "socket", "subprocess", "threading"}


#: Components that are one module, not a prefix (the package roots).
ROOTS = {"agentmesh", "coordinator"}


def component(module: str) -> str | None:
    best = None
    for name in ALLOWED:
        inside = module == name or (name not in ROOTS and module.startswith(name + "."))
        if inside and (best is None or len(name) > len(best)):
            best = name
    return best


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in ``path``, relative ones resolved, ``from X
    import name`` counted as ``X.name`` when that is a module; imports inside functions
    and under TYPE_CHECKING count too (an arrow is an arrow)."""
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names if _is_module(f"{target}.{a.name}")]
            yield from ((node.lineno, t) for t in (subs or [target]))


def _sources() -> list[Path]:
    out = []
    for top in ("coordinator", "agent_sdk", "agentmesh"):
        out += [p for p in (ROOT / top).rglob("*.py") if "v1" not in p.relative_to(ROOT).parts]
    return sorted(out)


def test_every_module_belongs_to_a_layer() -> None:
    orphans = [str(p.relative_to(ROOT)) for p in _sources() if component(_module_of(p)) is None]
    assert not orphans, f"add these to ALLOWED (and docs/architecture.md): {orphans}"


def test_every_import_points_down() -> None:
    """A module imports only its own component and the ones ALLOWED lists for it."""
    upward = []
    for path in _sources():
        mine = component(_module_of(path))
        assert mine is not None
        for line, target in imported(path):
            theirs = component(target)
            if theirs is None or theirs == mine or theirs in ALLOWED[mine]:
                continue
            upward.append(f"{path.relative_to(ROOT)}:{line}: {mine} -> {theirs} ({target})")
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_the_allowed_graph_has_no_cycle() -> None:
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        assert state.get(node) != 1, f"cycle: {' -> '.join([*path, node])}"
        state[node] = 1
        for dep in ALLOWED[node]:
            visit(dep, [*path, node])
        state[node] = 2

    for name in ALLOWED:
        visit(name, [])


@pytest.mark.parametrize(
    "source, target",
    [
        ("coordinator/store/_etcd.py", "coordinator.cluster.membership"),
        ("coordinator/engine/runtime.py", "coordinator.mesh"),
        ("coordinator/mesh/dispatch.py", "coordinator.engine.runtime"),
        ("coordinator/kv/_api.py", "coordinator.store"),
        ("agent_sdk/_client.py", "coordinator.errors"),
        ("coordinator/api/unary.py", "coordinator.server"),
    ],
)
def test_an_upward_import_would_be_caught(source: str, target: str) -> None:
    """The checker itself: each of these arrows points up, and it says so."""
    mine, theirs = component(_module_of(ROOT / source)), component(target)
    assert mine is not None and theirs is not None
    assert theirs != mine and theirs not in ALLOWED[mine]


def test_protobuf_and_grpc_stay_at_the_edges() -> None:
    leaks = []
    for path in _sources():
        module = _module_of(path)
        if any(module == t or module.startswith(t + ".") for t in TRANSPORT):
            continue
        for line, target in imported(path):
            if target.split(".")[0] in ("grpc", "grpc_health", "grpc_reflection") or (
                target.startswith(("google.protobuf", "agentmesh.v1", "aetcd"))
            ):
                leaks.append(f"{path.relative_to(ROOT)}:{line}: {target}")
    assert not leaks, "protobuf/grpc outside the transport modules:\n" + "\n".join(leaks)


def test_the_engine_core_is_pure() -> None:
    """Replaying an execution's inputs must rebuild its state exactly: the pure modules
    take time and randomness as inputs and do no I/O."""
    for name in PURE:
        path = ROOT / "coordinator" / "engine" / f"{name}.py"
        bad = {t for _, t in imported(path) if t.split(".")[0] in IMPURE}
        assert not bad, f"coordinator/engine/{name}.py imports {bad}"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_sdk_does_not_import_the_coordinator() -> None:
    for path in (ROOT / "agent_sdk").glob("*.py"):
        assert not {m for m in imports_of(path) if m.startswith("coordinator")}, path


def test_sdk_public_surface_is_pinned() -> None:
    assert sorted(agent_sdk.__all__) == sorted(
        [
            "Agent",
            "AgentStats",
            "Task",
            "AgentInfo",
            "Client",
            "CoordinatorInfo",
            "TaskAssignment",
            "TaskFailure",
            "TaskRequest",
            "TLS",
            "EventResult",
            "Execution",
            "ExecutionEvent",
            "ExecutionSummary",
            "StepExecution",
            "Trigger",
            "ValidationIssue",
            "ValidationResult",
            "WorkflowInfo",
            "ExternalService",
            "ServiceCallResult",
            "DeadLetter",
            "Webhook",
            "sign_event",
            "verify_webhook",
            "Event",
            "EventFilter",
            "EventStream",
            "StepMetrics",
            "Subscription",
            "SystemMetrics",
            "WorkflowMetrics",
            "AgentMeshError",
            "AgentRejectedError",
            "DeadlineExceededError",
            "FailedPreconditionError",
            "InvalidArgumentError",
            "NotFoundError",
            "UnauthenticatedError",
            "PermissionDeniedError",
            "ResourceExhaustedError",
            "RetryableTaskError",
            "RpcError",
            "TaskError",
            "UnavailableError",
        ]
    )
    for name in agent_sdk.__all__:
        assert getattr(agent_sdk, name).__module__.startswith("agent_sdk.")


def _string_constants(path: Path) -> set[str]:
    """String literals of a module that are not docstrings."""
    tree = ast.parse(path.read_text())
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    }


def test_protocol_constants_are_defined_once() -> None:
    """Both sides take the metadata keys from agentmesh.protocol, never a copy of them."""
    shared = {"agentmesh-leader", "agentmesh-election"}
    for package in ("coordinator", "agent_sdk"):
        for path in (ROOT / package).rglob("*.py"):
            copies = shared & _string_constants(path)
            assert not copies, f"{path.relative_to(ROOT)} spells {copies}: use agentmesh.protocol"


def test_one_error_tree_on_the_server_side() -> None:
    """Every public exception the coordinator defines is in coordinator/errors.py and
    descends from CoordinatorError (private ones never leave their module)."""
    from coordinator import errors

    elsewhere = []
    for path in (ROOT / "coordinator").rglob("*.py"):
        if path == ROOT / "coordinator" / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {ast.unparse(b) for b in node.bases}
                if any(b.endswith(("Error", "Exception")) for b in bases):
                    elsewhere.append(f"{path.relative_to(ROOT)}: {node.name}({', '.join(bases)})")
    assert not elsewhere, "define these in coordinator/errors.py:\n" + "\n".join(elsewhere)
    defined = [
        v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, BaseException)
    ]
    assert len(defined) > 20
    assert all(issubclass(cls, errors.CoordinatorError) for cls in defined), defined


def test_long_modules_say_why_they_are_one_piece() -> None:
    """Modules of one concern, rarely over ~500 lines: a longer one says in its
    docstring why it must be one piece ("One piece...")."""
    unexplained = []
    for path in _sources():
        lines = path.read_text().count("\n")
        if lines > 500:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            if "One piece" not in doc:
                unexplained.append(f"{path.relative_to(ROOT)} ({lines} lines)")
    assert not unexplained, "split these, or say why they are one piece: " + ", ".join(unexplained)


def test_the_coordinators_public_classes_are_documented() -> None:
    """Every public class of the coordinator, and every public method or property of
    one, has a docstring (its own, a base class's, or the protocol's it implements)."""
    import importlib
    import inspect
    import pkgutil

    import coordinator
    from coordinator.domain import AgentSink
    from coordinator.kv import KV
    from coordinator.store import Store

    protocols = [Store, KV, AgentSink]
    missing = []
    for info in pkgutil.walk_packages(coordinator.__path__, "coordinator."):
        module = importlib.import_module(info.name)
        for name, cls in vars(module).items():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__ or name[0] == "_":
                continue
            if not cls.__doc__ or cls.__doc__.startswith(f"{name}("):  # a dataclass's own
                missing.append(f"{module.__name__}.{name}")
            for attr, value in vars(cls).items():
                if attr[0] == "_" or not (inspect.isfunction(value) or isinstance(value, property)):
                    continue
                documented = inspect.getdoc(getattr(cls, attr)) or any(
                    inspect.getdoc(getattr(p, attr, None)) for p in protocols if hasattr(p, attr)
                )
                if not documented:
                    missing.append(f"{module.__name__}.{name}.{attr}")
    assert not missing, "document these: " + ", ".join(missing)


def test_the_architecture_page_names_every_layer() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    absent = [c for c in ALLOWED if c not in ROOTS and c not in page]
    assert not absent, f"docs/architecture.md does not mention {absent}"
