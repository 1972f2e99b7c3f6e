"""The guard ends a revoked stream from outside its handler, wherever the handler is:
awaiting its next message (its task is cancelled, the guard aborts the call with the
revocation), suspended while gRPC writes (the guard aborts before asking for the next
message), or held up by a client that does not read (cancelled after a grace). A real
grpc.aio server with the guard, handlers that stand in for the servicers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from coordinator.api import guard as guard_module
from coordinator.api.guard import Guard
from coordinator.auth import AuditLog, AuditRecord, Authenticator, token_digest
from coordinator.config import load_settings
from tests.conftest import eventually

CONNECT = "/agentmesh.v1.AgentService/Connect"
TOKEN = "agent-s3cret-token"
ENTRY = f"  - name: alpha\n    sha256: {token_digest(TOKEN)}\n    roles: [agent]\n"


def write_tokens(path: Path, text: str) -> None:
    path.write_text("tokens:\n" + text, encoding="utf-8")


class Served:
    """A server with the guard, serving CONNECT with ``handler``; what it audited."""

    def __init__(self, tokens: Path, handler: Any) -> None:
        settings = load_settings(overrides={"auth_tokens_file": str(tokens)}, environ={})
        self.records: list[AuditRecord] = []
        audit = AuditLog()
        audit.subscribe(self.records.append)
        self.guard = Guard(Authenticator(settings), audit)
        self.server = grpc.aio.server(interceptors=[self.guard])
        self.server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "agentmesh.v1.AgentService",
                    {"Connect": grpc.stream_stream_rpc_method_handler(handler)},
                ),
            )
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def outcomes(self) -> list[tuple[str, str]]:
        return [(r.outcome, r.detail) for r in self.records if r.method == CONNECT]


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    write_tokens(path, ENTRY)
    return path


@pytest.fixture
async def channel_to() -> AsyncIterator[Any]:
    servers: list[Served] = []
    channels: list[grpc.aio.Channel] = []

    async def start(served: Served) -> grpc.aio.Channel:
        await served.server.start()
        servers.append(served)
        channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{served.port}"))
        return channels[-1]

    try:
        yield start
    finally:
        for channel in channels:
            await channel.close()
        for served in servers:
            await served.server.stop(0)


def connect(channel: grpc.aio.Channel) -> Any:
    return channel.stream_stream(CONNECT)(metadata=[("authorization", f"Bearer {TOKEN}")])


async def revoke(served: Served, tokens: Path) -> None:
    write_tokens(tokens, "")
    await served.guard.streams.check()
    assert await served.guard.streams.check()  # the second check acts on the change


async def test_a_handler_awaiting_its_next_message_is_cancelled_and_the_call_aborted(
    tokens: Path, channel_to: Any
) -> None:
    left: list[str] = []

    async def handler(requests: Any, context: Any) -> AsyncIterator[bytes]:
        try:
            yield b"welcome"
            await asyncio.Event().wait()  # an agent stream with nothing to send
        finally:
            left.append(guard_module.revocation())

    served = Served(tokens, handler)
    call = connect(await channel_to(served))
    assert await call.read() == b"welcome"
    await revoke(served, tokens)
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await call.read()
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "stream revoked" in (ended.value.details() or "")
    assert left and "stream revoked" in left[0]  # the servicer's cleanup ran, and knew why
    outcomes = served.outcomes()
    assert [o for o, _ in outcomes] == ["STARTED", "UNAUTHENTICATED"]
    assert "revoked" in outcomes[1][1]
    assert len(served.guard.streams) == 0


async def test_a_handler_suspended_while_grpc_writes_is_aborted_before_its_next_message(
    tokens: Path, channel_to: Any
) -> None:
    sent = 0
    closed = asyncio.Event()

    async def handler(requests: Any, context: Any) -> AsyncIterator[bytes]:
        nonlocal sent
        try:
            while True:  # never awaits between messages: it is only ever suspended at yield
                sent += 1
                yield b"x" * 1024
        finally:
            closed.set()

    served = Served(tokens, handler)
    call = connect(await channel_to(served))
    await call.read()
    await revoke(served, tokens)
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        while True:
            await call.read()
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "stream revoked" in (ended.value.details() or "")
    await asyncio.wait_for(closed.wait(), 5)
    assert [o for o, _ in served.outcomes()] == ["STARTED", "UNAUTHENTICATED"]


async def test_a_handler_held_up_by_a_client_that_does_not_read_is_cancelled_after_a_grace(
    tokens: Path, channel_to: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guard_module, "FORCE_END_S", 0.2)
    closed = asyncio.Event()

    async def handler(requests: Any, context: Any) -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x" * 65536  # fills the flow-control window of a client not reading
        finally:
            closed.set()

    served = Served(tokens, handler)
    call = connect(await channel_to(served))
    await call.read()
    await asyncio.sleep(0.2)  # let the writes fill the window (no event says so)
    await revoke(served, tokens)
    await asyncio.wait_for(closed.wait(), 10)  # its cleanup ran: it left the mesh
    await eventually(lambda: len(served.outcomes()) == 2)
    assert served.outcomes()[1][0] == "UNAUTHENTICATED"
    assert len(served.guard.streams) == 0
    call.cancel()
