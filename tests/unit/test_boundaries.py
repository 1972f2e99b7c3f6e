"""Architecture rules that keep the code honest."""

from __future__ import annotations

import ast
from pathlib import Path

import agent_sdk

ROOT = Path(__file__).resolve().parents[2]
CORE = ["domain.py", "mesh.py", "waits.py", "retry.py", "errors.py", "config.py"]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_never_imports_protobuf_or_grpc() -> None:
    for name in CORE:
        bad = {
            m
            for m in imports_of(ROOT / "coordinator" / name)
            if m.startswith(("agentmesh.v1", "agentmesh.wire", "grpc", "google.protobuf"))
        }
        assert not bad, f"coordinator/{name} imports {bad}: protobuf stays at the edge"


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
            "Execution",
            "ExecutionEvent",
            "ExecutionSummary",
            "StepExecution",
            "ValidationIssue",
            "ValidationResult",
            "WorkflowInfo",
            "AgentMeshError",
            "AgentRejectedError",
            "DeadlineExceededError",
            "FailedPreconditionError",
            "InvalidArgumentError",
            "NotFoundError",
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
