"""Principals proved by client certificates (mutual TLS, SPIFFE IDs and common names in
the tokens file), and agents held to the capabilities their grant names. Real
handshakes with certificates from ``agentmesh dev certs``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_sdk import (
    TLS,
    Agent,
    AgentRejectedError,
    Client,
    NotFoundError,
    PermissionDeniedError,
    Task,
    UnauthenticatedError,
)
from agentmesh.cli._certs import make_certs
from coordinator.server import Coordinator
from tests.conftest import fast_settings, running

TOKENS = """\
tokens:
  - name: ops
    spiffe: spiffe://agentmesh/ops
    roles: [operator]
  - name: executor
    spiffe: spiffe://agentmesh/executor
    roles: [agent]
    capabilities: [echo]
  - name: watcher
    common_name: watcher
    roles: [viewer]
"""


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Path]:
    return make_certs(tmp_path / "pki", clients=["ops", "executor", "watcher", "stranger"])


@pytest.fixture
async def mutual(tmp_path: Path, certs: dict[str, Path]) -> AsyncIterator[Coordinator]:
    (tmp_path / "tokens.yaml").write_text(TOKENS)
    c = Coordinator(
        fast_settings(
            tls_cert=str(certs["server"]),
            tls_key=str(certs["server_key"]),
            tls_client_ca=str(certs["ca"]),
            auth_tokens_file=str(tmp_path / "tokens.yaml"),
        )
    )
    await c.start()
    try:
        yield c
    finally:
        await c.stop(grace=1.0)


def as_(certs: dict[str, Path], name: str) -> TLS:
    return TLS(ca=certs["ca"], cert=certs[f"client:{name}"], key=certs[f"client_key:{name}"])


async def test_a_certificate_named_in_the_tokens_file_is_a_principal(
    mutual: Coordinator, certs: dict[str, Path]
) -> None:
    agent = Agent("executor", mutual.address, tls=as_(certs, "executor"), reconnect_max=0.5)

    @agent.capability("echo")
    async def echo(task: Task) -> Any:
        return task.input

    async with running(agent), Client(mutual.address, tls=as_(certs, "ops"), timeout=10) as ops:
        task = await ops.assign_task("echo", {"n": 7})
        done = await ops.wait_task(task.id, timeout=10)
        assert done.status == "completed" and done.result == {"n": 7}
        with pytest.raises(NotFoundError):  # allowed (an operator may stop), then not found
            await ops.stop_workflow("no-such-execution")
    async with Client(mutual.address, tls=as_(certs, "watcher"), timeout=10) as watcher:
        assert await watcher.list_agents() is not None  # by common name: a viewer
        with pytest.raises(PermissionDeniedError) as denied:
            await watcher.stop_workflow("no-such-execution")
    assert "executions.stop" in str(denied.value) and "watcher" in str(denied.value)


async def test_a_trusted_certificate_the_tokens_file_does_not_name_is_unauthenticated(
    mutual: Coordinator, certs: dict[str, Path]
) -> None:
    async with Client(mutual.address, tls=as_(certs, "stranger"), timeout=10) as stranger:
        with pytest.raises(UnauthenticatedError) as refused:
            await stranger.list_agents()
    assert "spiffe://agentmesh/stranger" in str(refused.value)


async def test_an_agent_may_serve_only_the_capabilities_of_its_grant(
    mutual: Coordinator, certs: dict[str, Path]
) -> None:
    agent = Agent("greedy", mutual.address, tls=as_(certs, "executor"), reconnect_max=0.5)

    @agent.capability("echo")
    async def echo(task: Task) -> Any:
        return task.input

    @agent.capability("command_execution")
    async def shell(task: Task) -> Any:
        return None

    with pytest.raises(AgentRejectedError) as rejected:
        await agent.serve()
    text = str(rejected.value)
    assert "PERMISSION_DENIED" in text and "command_execution" in text and "echo" in text
    # An operator is not an agent: it may not join at all.
    impostor = Agent("impostor", mutual.address, tls=as_(certs, "ops"), reconnect_max=0.5)

    @impostor.capability("echo")
    async def echo2(task: Task) -> Any:
        return None

    with pytest.raises(AgentRejectedError) as not_agent:
        await impostor.serve()
    assert "agents.connect" in str(not_agent.value)
