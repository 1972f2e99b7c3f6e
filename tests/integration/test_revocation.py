"""Open streams end when their credentials are revoked: a real coordinator with auth on,
a real tokens file rewritten on disk (or JWTs that expire, or a certificate identity
taken out), real SDK agents and raw gRPC streams. A stream whose credentials no longer
prove a principal ends UNAUTHENTICATED, one no longer allowed PERMISSION_DENIED, both
saying it was revoked, within about a second, and audited; the others stay open."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_reflection.v1alpha import reflection_pb2

from agent_sdk import TLS, Agent, AgentRejectedError, Client, Task
from agentmesh.cli._certs import make_certs
from coordinator.auth import AuditRecord, token_digest
from coordinator.auth.jwks import LEEWAY_S
from coordinator.server import Coordinator
from tests.conftest import eventually, fast_settings
from tests.unit.test_auth_jwt import Key, write_jwks

CONNECT = "/agentmesh.v1.AgentService/Connect"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
TOKENS = {"alpha": "alpha-s3cret-token", "beta": "beta-s3cret-token"}
OPS, VIEWER = "ops-s3cret-token", "viewer-s3cret-token"
#: How soon after the file changes a revoked stream must be gone (the target is ~1 s:
#: checks every 0.4 s, a change acted on at the second check that sees it).
LATENCY_S = 2.0


def tokens_yaml(*, drop: str = "", alpha_capabilities: str = "[echo]", viewer: bool = True) -> str:
    lines = ["tokens:"]
    for name, token in TOKENS.items():
        if name == drop:
            continue
        capabilities = alpha_capabilities if name == "alpha" else "[echo]"
        lines += [
            f"  - name: {name}",
            f"    sha256: {token_digest(token)}",
            "    roles: [agent]",
            f"    capabilities: {capabilities}",
        ]
    lines += ["  - name: ops", f"    sha256: {token_digest(OPS)}", "    roles: [operator]"]
    if viewer:
        lines += ["  - name: watcher", f"    sha256: {token_digest(VIEWER)}", "    roles: [viewer]"]
    return "\n".join(lines) + "\n"


def rewrite(path: Path, text: str) -> None:
    """Rewrite the file in place (truncate and write, as an editor does)."""
    before = os.stat(path).st_mtime_ns
    path.write_text(text, encoding="utf-8")
    if os.stat(path).st_mtime_ns == before:  # a coarse clock: make the change visible
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


class Audit:
    """The coordinator's audit records, as they are made."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.records: list[AuditRecord] = []
        coordinator.audit.subscribe(self.records.append)

    def of(self, principal: str, method: str = CONNECT) -> list[AuditRecord]:
        return [r for r in self.records if r.principal == principal and r.method == method]


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(tokens_yaml(), encoding="utf-8")
    return path


@pytest.fixture
async def secured(tokens_file: Path, tmp_path: Path) -> AsyncIterator[Coordinator]:
    c = Coordinator(
        fast_settings(auth_tokens_file=str(tokens_file), audit_log=str(tmp_path / "audit.jsonl"))
    )
    await c.start()
    try:
        yield c
    finally:
        await c.stop(grace=1.0)


def echo_agent(name: str, address: str, **kw: Any) -> Agent:
    agent = Agent(name, address, reconnect_max=0.5, **kw)

    @agent.capability("echo")
    async def echo(task: Task) -> Any:
        return task.input

    return agent


@contextlib.asynccontextmanager
async def serving(agent: Agent) -> AsyncIterator[asyncio.Task[None]]:
    """``agent.serve()`` as a task, connected; shut down (or cancelled) at the end."""
    task = asyncio.create_task(agent.serve())
    try:
        await agent.wait_connected(10)
        yield task
    finally:
        if not task.done():
            await agent.shutdown(grace=1)
            try:
                await asyncio.wait_for(task, 5)
            except TimeoutError:
                task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def cut_off(task: asyncio.Task[None], since: float) -> tuple[str, float]:
    """How the agent's ``serve()`` ended (it must give up) and how long after ``since``."""
    with pytest.raises(AgentRejectedError) as refused:
        await asyncio.wait_for(task, 10)
    return str(refused.value), asyncio.get_running_loop().time() - since


async def online(coordinator: Coordinator) -> list[str]:
    async with Client(coordinator.address, token=OPS, timeout=10) as ops:
        return sorted(a.name for a in await ops.list_agents() if a.status != "offline")


async def still_serves(coordinator: Coordinator, agent: Agent, task: asyncio.Task[None]) -> None:
    assert not task.done() and agent.connected_to is not None
    async with Client(coordinator.address, token=OPS, timeout=10) as ops:
        done = await ops.wait_task((await ops.assign_task("echo", {"n": 1})).id, timeout=10)
    assert done.status == "completed" and done.result == {"n": 1}


async def test_an_agent_whose_token_is_removed_is_cut_off_unauthenticated(
    secured: Coordinator, tokens_file: Path, tmp_path: Path
) -> None:
    audit = Audit(secured)
    alpha = echo_agent("alpha", secured.address, token=TOKENS["alpha"])
    beta = echo_agent("beta", secured.address, token=TOKENS["beta"])
    async with serving(alpha) as alpha_task, serving(beta) as beta_task:
        assert await online(secured) == ["alpha", "beta"]
        since = asyncio.get_running_loop().time()
        rewrite(tokens_file, tokens_yaml(drop="alpha"))
        message, took = await cut_off(alpha_task, since)
        assert "UNAUTHENTICATED" in message and "stream revoked" in message, message
        assert took < LATENCY_S, took
        await eventually(lambda: [r.outcome for r in audit.of("alpha")][-1:] != ["STARTED"])
        records = audit.of("alpha")
        assert [r.outcome for r in records] == ["STARTED", "UNAUTHENTICATED"]
        assert "revoked" in records[1].detail and "no longer valid" in records[1].detail
        assert TOKENS["alpha"] not in records[1].detail
        # The unaffected agent stays connected and keeps serving.
        assert await online(secured) == ["beta"]
        await still_serves(secured, beta, beta_task)
        assert [r.outcome for r in audit.of("beta")] == ["STARTED"]
    logged = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    ends = [r for r in logged if r["principal"] == "alpha" and r["outcome"] != "STARTED"]
    assert [r["outcome"] for r in ends] == ["UNAUTHENTICATED"]
    assert "stream revoked" in ends[0]["detail"]


async def test_an_agent_whose_capabilities_shrink_is_cut_off_permission_denied(
    secured: Coordinator, tokens_file: Path
) -> None:
    audit = Audit(secured)
    alpha = echo_agent("alpha", secured.address, token=TOKENS["alpha"])
    beta = echo_agent("beta", secured.address, token=TOKENS["beta"])
    async with serving(alpha) as alpha_task, serving(beta) as beta_task:
        since = asyncio.get_running_loop().time()
        rewrite(tokens_file, tokens_yaml(alpha_capabilities="[other]"))
        message, took = await cut_off(alpha_task, since)
        assert "PERMISSION_DENIED" in message and "stream revoked" in message, message
        assert "echo" in message and "alpha" in message, message
        assert took < LATENCY_S, took
        await eventually(lambda: len(audit.of("alpha")) == 2)
        end = audit.of("alpha")[1]
        assert end.outcome == "PERMISSION_DENIED" and "revoked" in end.detail
        assert await online(secured) == ["beta"]
        await still_serves(secured, beta, beta_task)


async def test_a_grant_that_still_allows_the_stream_keeps_it_open(
    secured: Coordinator, tokens_file: Path
) -> None:
    alpha = echo_agent("alpha", secured.address, token=TOKENS["alpha"])
    async with serving(alpha) as alpha_task:
        guard = secured.guard
        assert guard is not None
        checked = guard.streams.revocations
        rewrite(tokens_file, tokens_yaml(alpha_capabilities="[echo, other]", viewer=False))
        generation = guard.authenticator.generation
        # Decided again at the new content (two checks later), and kept.
        await eventually(lambda: all(s.generation == generation for s in guard.streams), timeout=5)
        assert guard.streams.revocations == checked
        await still_serves(secured, alpha, alpha_task)


async def test_any_stream_ends_so_a_reflection_stream_too(
    tokens_file: Path, tmp_path: Path
) -> None:
    """Reflection needs a principal (``auth_open_reflection: false``) and no permission:
    removing the principal ends its open reflection stream."""
    coordinator = Coordinator(
        fast_settings(auth_tokens_file=str(tokens_file), auth_open_reflection=False)
    )
    await coordinator.start()
    audit = Audit(coordinator)
    guard = coordinator.guard
    assert guard is not None
    try:
        async with grpc.aio.insecure_channel(coordinator.address) as channel:
            stream = channel.stream_stream(
                REFLECTION,
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )(metadata=[("authorization", f"Bearer {VIEWER}")])
            await stream.write(reflection_pb2.ServerReflectionRequest(list_services=""))
            listed = await stream.read()
            assert isinstance(listed, reflection_pb2.ServerReflectionResponse)
            assert len(guard.streams) == 1
            since = asyncio.get_running_loop().time()
            rewrite(tokens_file, tokens_yaml(viewer=False))
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await stream.read()
            took = asyncio.get_running_loop().time() - since
        assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "stream revoked" in (ended.value.details() or "") and took < LATENCY_S
        # Reflection is not audited while it lasts; its revocation is (a refusal).
        assert [r.outcome for r in audit.of("watcher", REFLECTION)] == ["UNAUTHENTICATED"]
        await eventually(lambda: len(guard.streams) == 0)
    finally:
        await coordinator.stop(grace=1.0)


async def test_a_jwt_stream_ends_when_the_jwt_expires(tmp_path: Path) -> None:
    key = Key("ec-1", ec.generate_private_key(ec.SECP256R1()), "ES256")
    jwks = write_jwks(tmp_path / "jwks.json", key)
    coordinator = Coordinator(
        fast_settings(auth_jwks_file=str(jwks), auth_jwt_audience="agentmesh")
    )
    await coordinator.start()
    audit = Audit(coordinator)

    def jwt(sub: str, exp: float) -> str:
        claims = {"sub": sub, "aud": "agentmesh", "exp": int(exp), "roles": ["agent"]}
        return key.sign({**claims, "capabilities": ["echo"]})

    try:
        # Accepted until its exp plus the clock skew forgiven (LEEWAY_S): minted so that
        # about 3 s of that are left, so the test need not wait out the leeway.
        exp = int(time.time() - LEEWAY_S) + 3
        short = echo_agent("short", coordinator.address, token=jwt("short", exp))
        long = echo_agent("long", coordinator.address, token=jwt("long", time.time() + 600))
        async with serving(short) as short_task, serving(long) as long_task:
            message, _ = await cut_off(short_task, asyncio.get_running_loop().time())
            late = time.time() - (exp + LEEWAY_S)
            assert "UNAUTHENTICATED" in message and "the JWT has expired" in message, message
            assert -0.5 < late < LATENCY_S, late  # at its expiry, not before
            assert not long_task.done() and long.connected_to is not None
            end = audit.of("short")[-1]
            assert end.outcome == "UNAUTHENTICATED" and "revoked" in end.detail
            assert [r.outcome for r in audit.of("long")] == ["STARTED"]
    finally:
        await coordinator.stop(grace=1.0)


async def test_a_certificate_identity_taken_out_of_the_tokens_file_ends_its_stream(
    tmp_path: Path,
) -> None:
    certs = make_certs(tmp_path / "pki", clients=["executor", "builder"])
    tokens = tmp_path / "tokens.yaml"
    entries = {
        name: f"  - name: {name}\n    spiffe: spiffe://agentmesh/{name}\n"
        "    roles: [agent]\n    capabilities: [echo]\n"
        for name in ("executor", "builder")
    }
    tokens.write_text("tokens:\n" + "".join(entries.values()), encoding="utf-8")
    coordinator = Coordinator(
        fast_settings(
            tls_cert=str(certs["server"]),
            tls_key=str(certs["server_key"]),
            tls_client_ca=str(certs["ca"]),
            auth_tokens_file=str(tokens),
        )
    )
    await coordinator.start()

    def tls(name: str) -> TLS:
        return TLS(ca=certs["ca"], cert=certs[f"client:{name}"], key=certs[f"client_key:{name}"])

    try:
        executor = echo_agent("executor", coordinator.address, tls=tls("executor"))
        builder = echo_agent("builder", coordinator.address, tls=tls("builder"))
        async with serving(executor) as executor_task, serving(builder) as builder_task:
            since = asyncio.get_running_loop().time()
            rewrite(tokens, "tokens:\n" + entries["builder"])
            message, took = await cut_off(executor_task, since)
            assert "UNAUTHENTICATED" in message and "spiffe://agentmesh/executor" in message
            assert "stream revoked" in message and took < LATENCY_S, (message, took)
            assert not builder_task.done() and builder.connected_to is not None
    finally:
        await coordinator.stop(grace=1.0)


class _ClosedCall:
    """A Connect call the coordinator has just ended: writes find it closed at once,
    the read raises its status a moment later (the race an agent sees when its stream
    is revoked while it is writing a heartbeat)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self.error = grpc.aio.AioRpcError(
            code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details
        )

    async def write(self, message: Any) -> None:
        raise asyncio.InvalidStateError("the call is done")

    async def read(self) -> Any:
        await asyncio.sleep(0.05)
        raise self.error

    async def done_writing(self) -> None:
        pass


async def test_the_agent_hears_the_revocation_even_when_a_write_finds_the_stream_closed() -> None:
    from agent_sdk._agent_session import Session
    from agentmesh.v1 import agent_pb2

    agent = echo_agent("alpha", "127.0.0.1:1")
    agent._outbox.open(asyncio.get_running_loop())
    agent._runner.open(1)
    session = Session(
        "alpha", agent._outbox, agent._runner, agent._status, asyncio.Event(), 1 << 20
    )
    welcome = agent_pb2.Welcome(heartbeat_interval_ms=50, heartbeat_timeout_ms=1000)
    call = _ClosedCall(grpc.StatusCode.PERMISSION_DENIED, "stream revoked: no longer allowed")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await session._serve(call, welcome)  # the heartbeat's write fails first
    assert raised.value is call.error  # the status, not the write's InvalidStateError
