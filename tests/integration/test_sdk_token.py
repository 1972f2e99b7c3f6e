"""The bearer token on the wire: ``Client`` (its own calls and a polling agent's),
``Agent`` (the Connect stream) and the ``agentmesh`` command send ``authorization:
Bearer <token>`` metadata when given a token (argument, ``AGENTMESH_TOKEN``, ``--token``,
``--token-file``) and no ``authorization`` header without one.

The coordinator does not check tokens (yet), so a small grpc.aio server stands in for
it: it answers the few methods used here with empty replies (a Welcome on Connect) and
records each call's metadata."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from agent_sdk import Agent, Client, Task
from agent_sdk._auth import TOKEN_ENV
from agentmesh.v1 import agent_pb2, registry_pb2, task_pb2, workflow_pb2
from tests.conftest import BIN, ROOT, eventually, running

BEARER = "Bearer s3cret"


@dataclass
class Recorder:
    """The stand-in coordinator: each call's method name and metadata, in order."""

    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def record(self, method: str, context: Any) -> None:
        self.calls.append((method, {m.key: m.value for m in context.invocation_metadata()}))

    def authorization(self, method: str) -> list[str | None]:
        """The ``authorization`` header of each call of ``method`` (None: none sent)."""
        return [md.get("authorization") for name, md in self.calls if name == method]

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        def unary(method: str, request: Any, response: Any) -> grpc.RpcMethodHandler:
            async def answer(req: Any, context: Any) -> Any:
                self.record(method, context)
                return response()

            return grpc.unary_unary_rpc_method_handler(
                answer,
                request_deserializer=request.FromString,
                response_serializer=response.SerializeToString,
            )

        async def connect(requests: Any, context: Any) -> AsyncIterator[Any]:
            self.record("Connect", context)
            async for msg in requests:  # until the agent half-closes (its shutdown)
                if msg.WhichOneof("body") == "hello":
                    welcome = agent_pb2.Welcome(
                        agent_id=f"{msg.hello.name}-1",
                        session_secret="x",
                        heartbeat_interval_ms=1000,
                        heartbeat_timeout_ms=30_000,
                    )
                    yield agent_pb2.CoordinatorMessage(welcome=welcome)

        r, t = registry_pb2, task_pb2
        return [
            grpc.method_handlers_generic_handler(
                "agentmesh.v1.RegistryService",
                {
                    "ListAgents": unary("ListAgents", r.ListAgentsRequest, r.ListAgentsResponse),
                    "RegisterAgent": unary(
                        "RegisterAgent", r.RegisterAgentRequest, r.RegisterAgentResponse
                    ),
                },
            ),
            grpc.method_handlers_generic_handler(
                "agentmesh.v1.TaskService",
                {"PollTasks": unary("PollTasks", t.PollTasksRequest, t.PollTasksResponse)},
            ),
            grpc.method_handlers_generic_handler(
                "agentmesh.v1.WorkflowService",
                {
                    "ListWorkflows": unary(
                        "ListWorkflows",
                        workflow_pb2.ListWorkflowsRequest,
                        workflow_pb2.ListWorkflowsResponse,
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "agentmesh.v1.AgentService",
                {
                    "Connect": grpc.stream_stream_rpc_method_handler(
                        connect,
                        request_deserializer=agent_pb2.AgentMessage.FromString,
                        response_serializer=agent_pb2.CoordinatorMessage.SerializeToString,
                    )
                },
            ),
        ]


@dataclass
class Standin:
    address: str
    recorder: Recorder


@pytest.fixture
async def standin() -> AsyncIterator[Standin]:
    recorder = Recorder()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(recorder.handlers())
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Standin(f"127.0.0.1:{port}", recorder)
    finally:
        await server.stop(grace=1.0)


@pytest.fixture(autouse=True)
def no_token_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)


def agent(address: str, **kw: Any) -> Agent:
    a = Agent("tok", address, reconnect_max=0.5, **kw)

    @a.capability("echo")
    async def echo(task: Task) -> Any:
        return task.input

    return a


async def test_client_calls_carry_the_token(standin: Standin) -> None:
    async with Client(standin.address, token="s3cret", timeout=5) as client:
        assert await client.list_agents() == []
        await client.list_workflows()
        # a polling agent registered through the client: its calls carry it too
        agent_id = await client.register_agent("poller", ["echo"])
        assert await client.poll_tasks(agent_id, wait=0) == []
    r = standin.recorder
    for method in ("ListAgents", "ListWorkflows", "RegisterAgent", "PollTasks"):
        assert r.authorization(method) == [BEARER], method


async def test_the_agent_stream_carries_the_token(standin: Standin) -> None:
    async with running(agent(standin.address, token="s3cret")):
        pass
    assert standin.recorder.authorization("Connect") == [BEARER]


async def test_the_token_comes_from_the_environment(
    standin: Standin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "s3cret")
    async with Client(standin.address, timeout=5) as client:
        await client.list_agents()
    async with running(agent(standin.address)):
        pass
    r = standin.recorder
    assert r.authorization("ListAgents") == [BEARER]
    assert r.authorization("Connect") == [BEARER]


async def test_without_a_token_no_authorization_header_is_sent(
    standin: Standin, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Client(standin.address, timeout=5) as client:
        await client.list_agents()
    async with running(agent(standin.address)):
        pass
    monkeypatch.setenv(TOKEN_ENV, "s3cret")  # token="" means none, whatever the environment
    async with Client(standin.address, token="", timeout=5) as client:
        await client.list_agents()
    async with running(agent(standin.address, token="")):
        pass
    r = standin.recorder
    assert r.authorization("ListAgents") == [None, None]
    assert r.authorization("Connect") == [None, None]
    assert len(r.calls) == 4


# ------------------------------------------------------------------ the CLI


def _environment(extra: Mapping[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMESH_")}
    return {**base, **extra}


async def am(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``agentmesh ARGS`` in a subprocess (this loop serves the stand-in meanwhile)."""
    return await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "agentmesh"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(env),
    )


async def test_the_cli_sends_the_token_of_its_flags_and_environment(
    standin: Standin, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    a = standin.address
    for args, env in [
        (("--token", "s3cret", "agents", "-c", a), {}),
        (("agents", "-c", a, "--token-file", str(token_file)), {}),
        (("agents", "-c", a), {TOKEN_ENV: "s3cret"}),
        (("agents", "-c", a, "--token", "s3cret"), {TOKEN_ENV: "other"}),  # the flag wins
        (("agents", "-c", a), {}),
        (("agents", "-c", a, "--token", ""), {TOKEN_ENV: "s3cret"}),  # '': none
    ]:
        r = await am(*args, **env)
        assert r.returncode == 0, (args, r.stderr)
    expected = [BEARER] * 4 + [None, None]
    assert standin.recorder.authorization("ListAgents") == expected


async def test_agentmesh_agent_gives_its_agent_the_token(standin: Standin, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret")
    # --token-file after the command, over $AGENTMESH_TOKEN
    argv = ["agent", "math", "-c", standin.address, "--token-file", str(token_file)]
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [str(BIN / "agentmesh"), *argv],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_environment({TOKEN_ENV: "other"}),
    )
    try:

        async def connected() -> bool:
            return bool(standin.recorder.authorization("Connect"))

        await eventually(connected, timeout=30, interval=0.1)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)
    assert standin.recorder.authorization("Connect") == [BEARER]
