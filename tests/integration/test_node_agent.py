"""The Node.js example agent (examples/node-agent/agent.js), built only from the protos, as a
real `node` process against a real coordinator: it joins with its capabilities, runs tasks
and reports typed failures, heartbeats, resumes its identity across a coordinator restart,
follows a leader redirect, and says goodbye on SIGTERM.

Node and npm must be on PATH; the module fixture runs `npm ci` when node_modules is missing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from agent_sdk import Client, TaskRequest
from coordinator.server import Coordinator
from tests.conftest import ROOT, eventually, fast_settings, free_port

NODE_AGENT = ROOT / "examples" / "node-agent"
CONNECTED = r"connected as (\S+) to (\S+)"
LINE_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def node() -> str:
    """The `node` binary, with the example's dependencies installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "the Node.js agent tests need `node` and `npm` on PATH (Node 20; e.g. "
            "`apt-get install nodejs npm`); found "
            f"node={node or 'none'}, npm={npm or 'none'}",
            pytrace=False,
        )
    if not (NODE_AGENT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=NODE_AGENT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            pytest.fail(
                f"`npm ci` in {NODE_AGENT} failed ({done.returncode}):\n"
                f"{done.stdout}\n{done.stderr}",
                pytrace=False,
            )
    return node


class NodeAgent:
    """`node agent.js` with its stdout (and stderr) read line by line by a thread."""

    def __init__(self, node: str, coordinator: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            [node, "agent.js"],
            cwd=NODE_AGENT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "AGENTMESH_COORDINATOR": coordinator, **env},
        )
        self.lines: list[str] = []
        self._next = 0  # wait_line searches from here
        self._eof = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    async def wait_line(self, pattern: str, timeout: float = LINE_TIMEOUT) -> re.Match[str]:
        """The first line after the previous match that matches ``pattern``."""
        return await asyncio.to_thread(self._wait_line, re.compile(pattern), timeout)

    def _wait_line(self, regex: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for i in range(self._next, len(self.lines)):
                    m = regex.search(self.lines[i])
                    if m is not None:
                        self._next = i + 1
                        return m
                self._next = len(self.lines)
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    why = "the agent exited" if self._eof else f"nothing in {timeout:.0f}s"
                    raise AssertionError(
                        f"no line matching {regex.pattern!r} ({why}); agent output:\n"
                        + "\n".join(self.lines)
                    )
                self._changed.wait(left)

    async def connected(self) -> str:
        """Wait for the next Welcome; return the agent id."""
        return (await self.wait_line(CONNECTED))[1]

    async def exit_code(self, timeout: float = 20.0) -> int:
        return await asyncio.to_thread(self.proc.wait, timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def start_node(node: str) -> Iterator[Callable[..., NodeAgent]]:
    """Start Node agents; each is killed at teardown and its output printed (pytest shows
    it when the test failed)."""
    started: list[NodeAgent] = []

    def start(coordinator: str, **env: str) -> NodeAgent:
        agent = NodeAgent(node, coordinator, **env)
        started.append(agent)
        return agent

    try:
        yield start
    finally:
        for agent in started:
            agent.stop()
            print(f"--- node agent (pid {agent.proc.pid}, exit {agent.proc.returncode}):")
            print(agent.output)


async def test_it_joins_with_its_capabilities(
    coordinator: Coordinator, client: Client, start_node: Callable[..., NodeAgent]
) -> None:
    agent = start_node(coordinator.address, AGENT_NAME="node-joiner", AGENT_MAX_CONCURRENCY="3")
    agent_id = await agent.connected()
    assert agent_id.startswith("node-joiner-")
    [info] = await client.list_agents()
    assert (info.id, info.name, info.type, info.status) == (
        agent_id,
        "node-joiner",
        "node-joiner",
        "online",
    )
    assert sorted(info.capabilities) == ["echo", "uppercase"]
    assert (info.max_concurrency, info.transport) == (3, "stream")
    assert info.labels["language"] == "javascript"
    assert [a.id for a in await client.find_agents_by_capability("uppercase")] == [agent_id]
    assert await client.get_agent_capabilities(agent_id) == ["echo", "uppercase"]
    assert coordinator.mesh is not None
    assert coordinator.mesh.agents[agent_id].sdk_version == "node-example/0.1.0"


async def test_it_runs_tasks_and_reports_typed_failures(
    coordinator: Coordinator, client: Client, start_node: Callable[..., NodeAgent]
) -> None:
    agent = start_node(coordinator.address)
    agent_id = await agent.connected()

    payload: dict[str, Any] = {"n": 1.5, "s": "x", "ok": True, "none": None, "list": [1, "a", {}]}
    echo = await client.assign_task("echo", payload)
    done = await client.wait_task(echo.id, timeout=10)
    assert (done.status, done.result, done.agent_id) == ("completed", payload, agent_id)
    await agent.wait_line(f"task {echo.id} done")

    upper = await client.assign_task("uppercase", {"text": "hello, mesh"})
    done = await client.wait_task(upper.id, timeout=10)
    assert (done.status, done.result) == ("completed", {"text": "HELLO, MESH"})

    bad = await client.assign_task("uppercase", {"text": 42})
    failed = await client.wait_task(bad.id, timeout=10)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.type == "InvalidInput"
    assert failed.error.message == 'uppercase: input needs a string field "text", got number'
    assert (failed.error.retryable, failed.error.details) == (False, {"field": "text"})
    assert failed.attempt == 1  # not retryable: never dispatched again
    await agent.wait_line(f"task {bad.id} failed: InvalidInput: ")

    # a failure frees the credit like a success: the agent holds nothing now
    info = await client.get_agent(agent_id)
    assert (info.task_count, info.tasks_completed, info.tasks_failed) == (0, 2, 1)


async def test_more_tasks_than_credits_all_finish(
    coordinator: Coordinator, client: Client, start_node: Callable[..., NodeAgent]
) -> None:
    """Credits are a window: never more than max_concurrency held, and each result frees
    a slot without any FlowControl message."""
    agent = start_node(coordinator.address, AGENT_MAX_CONCURRENCY="2")
    await agent.connected()
    tasks = await client.bulk_assign_tasks(
        [TaskRequest("echo", {"i": i, "delay_ms": 100}) for i in range(6)]
    )
    for i, t in enumerate(tasks):
        done = await client.wait_task(t.id, timeout=10)
        assert (done.status, done.result) == ("completed", {"i": i, "delay_ms": 100})
    held = [
        int(m[1])
        for line in agent.lines
        if (m := re.search(r"received \(echo, (\d+) in flight\)", line)) is not None
    ]
    assert len(held) == 6 and max(held) == 2, held  # the window was used, never exceeded


async def test_it_heartbeats_past_the_heartbeat_timeout(
    coordinator: Coordinator, client: Client, start_node: Callable[..., NodeAgent]
) -> None:
    timeout_s = coordinator.settings.heartbeat_timeout_ms / 1000
    assert timeout_s == 1.5  # fast_settings: an idle agent without heartbeats is gone in 1.5 s
    agent = start_node(coordinator.address)
    agent_id = await agent.connected()
    assert coordinator.mesh is not None
    session = coordinator.mesh.agents[agent_id].session_id
    first = await client.get_agent(agent_id)
    assert first.last_seen_time is not None
    seen = {first.last_seen_time}

    async def heartbeats_past_twice_the_timeout() -> bool:
        info = await client.get_agent(agent_id)
        assert info.status == "online", info  # never dropped while idle
        assert info.last_seen_time is not None and first.last_seen_time is not None
        seen.add(info.last_seen_time)
        return (info.last_seen_time - first.last_seen_time).total_seconds() > 2 * timeout_s

    await eventually(heartbeats_past_twice_the_timeout, timeout=20, interval=0.1)
    assert len(seen) >= 5  # last_seen_time moved with heartbeats (every 200 ms), not once
    # the same stream all along: nothing reconnected behind the registry's back
    assert coordinator.mesh.agents[agent_id].session_id == session
    assert not [line for line in agent.lines if "reconnecting" in line]


async def test_it_resumes_its_id_after_a_coordinator_restart(
    tmp_path: Path, start_node: Callable[..., NodeAgent]
) -> None:
    address = f"127.0.0.1:{free_port()}"
    settings = fast_settings(
        listen=address, state_persistence="sqlite", store_path=str(tmp_path / "am.db")
    )
    first = Coordinator(settings)
    await first.start()
    try:
        agent = start_node(address)
        agent_id = await agent.connected()
        async with Client(address, timeout=10) as client:
            t = await client.assign_task("echo", {"before": "restart"})
            assert (await client.wait_task(t.id, timeout=10)).status == "completed"
    finally:
        await first.stop(grace=1.0)
    await agent.wait_line(f"disconnected from {re.escape(address)}")
    await agent.wait_line(rf"reconnecting in \d+ ms to {re.escape(address)}")

    second = Coordinator(settings)  # same port, same store
    await second.start()
    try:
        m = await agent.wait_line(rf"connected as (\S+) to {re.escape(address)} .*resumed identity")
        assert m[1] == agent_id
        async with Client(address, timeout=10) as client:
            [info] = await client.list_agents()
            assert (info.id, info.status) == (agent_id, "online")
            t = await client.assign_task("uppercase", {"text": "after restart"})
            done = await client.wait_task(t.id, timeout=10)
            assert (done.status, done.result) == ("completed", {"text": "AFTER RESTART"})
            assert done.agent_id == agent_id
    finally:
        await second.stop(grace=1.0)


class Follower(grpc.GenericRpcHandler):
    """A replica that is not the leader: refuses Connect with UNAVAILABLE and trailing
    metadata ``agentmesh-leader: <leader>`` (agentmesh/protocol.py)."""

    def __init__(self, leader: str) -> None:
        self.leader = leader
        self.server = grpc.aio.server()
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.add_generic_rpc_handlers((self,))
        self.refused = 0

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        async def refuse(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            self.refused += 1
            context.set_trailing_metadata((("agentmesh-leader", self.leader),))
            await context.abort(grpc.StatusCode.UNAVAILABLE, "not the leader")

        return grpc.stream_stream_rpc_method_handler(refuse)


@pytest.fixture
async def follower(coordinator: Coordinator) -> AsyncIterator[Follower]:
    f = Follower(coordinator.address)
    await f.server.start()
    try:
        yield f
    finally:
        await f.server.stop(None)


async def test_it_follows_a_leader_redirect(
    coordinator: Coordinator,
    client: Client,
    follower: Follower,
    start_node: Callable[..., NodeAgent],
) -> None:
    agent = start_node(follower.address)
    await agent.wait_line(
        f"redirected by {re.escape(follower.address)} to leader {re.escape(coordinator.address)}"
    )
    m = await agent.wait_line(CONNECTED)
    assert m[2] == coordinator.address and follower.refused == 1
    t = await client.assign_task("echo", {"via": "redirect"})
    done = await client.wait_task(t.id, timeout=10)
    assert (done.status, done.agent_id) == ("completed", m[1])


async def test_sigterm_says_goodbye_finishes_its_task_and_exits_0(
    coordinator: Coordinator,
    client: Client,
    start_node: Callable[..., NodeAgent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="coordinator.mesh")
    agent = start_node(coordinator.address)
    agent_id = await agent.connected()
    slow = await client.assign_task("echo", {"delay_ms": 1500})
    await agent.wait_line(f"task {slow.id} attempt 1 received")

    agent.proc.send_signal(signal.SIGTERM)
    await agent.wait_line(r"goodbye sent \(1 task\(s\) in flight\)")
    mesh = coordinator.mesh
    assert mesh is not None
    # the coordinator heard the Goodbye: it sends this agent nothing new (status draining)
    await eventually(lambda: mesh.agents[agent_id].draining, timeout=10)
    assert await agent.exit_code() == 0
    assert agent.lines[-1] == "exit 0"

    # the task it held finished on it (drained, not re-dispatched)
    done = await client.wait_task(slow.id, timeout=10)
    assert (done.status, done.attempt, done.agent_id) == ("completed", 1, agent_id)
    # and it left as a departure, not a fault: offline in the registry, gone from the list
    await eventually(lambda: not mesh.agents[agent_id].connected, timeout=10)
    assert await client.list_agents() == []
    [gone] = await client.list_agents(include_offline=True)
    assert (gone.id, gone.status) == (agent_id, "offline")
    left = [r.getMessage() for r in caplog.records if r.name == "coordinator.mesh"]
    assert f"agent {agent_id} (node-echo) left: SIGTERM" in left, left
