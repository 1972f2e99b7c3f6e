"""Shared fixtures: a real coordinator on a loopback port, real SDK agents."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_sdk import Agent, Client
from coordinator.config import Settings, load_settings
from coordinator.server import Coordinator

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Coordinators the tests start as processes inherit this: each binds its HTTP listener
# on a free port, so several can run at once.
os.environ["AGENTMESH_HTTP_LISTEN"] = "127.0.0.1:0"

FAST = {
    "listen": "127.0.0.1:0",
    "http_listen": "127.0.0.1:0",
    "heartbeat_interval_ms": 200,
    "heartbeat_timeout_ms": 1500,
    "retry_interval_ms": 20,
    "retry_jitter": 0.0,
    "shutdown_grace_s": 5.0,
    "state_persistence": "memory",
}


def stored_bytes(directory: Path) -> bytes:
    """The SQLite store's database and WAL files (``mesh.db*``), concatenated: what a
    test greps to show a secret never reached the disk."""
    return b"".join(p.read_bytes() for p in sorted(directory.glob("mesh.db*")))


def fast_settings(**overrides: Any) -> Settings:
    return load_settings(overrides={**FAST, **overrides}, environ={})


@contextlib.asynccontextmanager
async def serving_coordinator(**overrides: Any) -> AsyncIterator[Coordinator]:
    """A coordinator on ``fast_settings(**overrides)``, started for the block and stopped
    (gracefully) after it."""
    c = Coordinator(fast_settings(**overrides))
    await c.start()
    try:
        yield c
    finally:
        await c.stop(grace=1.0)


def sqlite_with_secrets(directory: Path, **secrets: str) -> dict[str, str]:
    """Settings for a SQLite store and a secrets file, both in ``directory``."""
    path = directory / "secrets.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in secrets.items()), encoding="utf-8")
    return {
        "state_persistence": "sqlite",
        "store_path": str(directory / "mesh.db"),
        "secrets_file": str(path),
    }


@pytest.fixture
async def coordinator() -> AsyncIterator[Coordinator]:
    c = Coordinator(fast_settings())
    await c.start()
    try:
        yield c
    finally:
        await c.stop(grace=1.0)


@pytest.fixture
async def client(coordinator: Coordinator) -> AsyncIterator[Client]:
    async with Client(coordinator.address, timeout=10) as c:
        yield c


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[Agent]:
    """Serve ``agent`` in this loop for the duration of the block."""
    task = asyncio.create_task(agent.serve())
    try:
        await agent.wait_connected(10)
        yield agent
    finally:
        await agent.shutdown(grace=2)
        try:
            await asyncio.wait_for(task, 5)
        except TimeoutError:
            task.cancel()


class AgentProcess:
    """A real agent in its own process (tests/agents/worker.py)."""

    def __init__(self, coordinator: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.agents.worker", "--coordinator", coordinator, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.agent_id = ""

    async def ready(self, timeout: float = 20.0) -> str:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        if not line.startswith("READY "):
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"agent did not start: {line!r} {err}")
        self.agent_id = line.split()[1]
        return self.agent_id

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it still runs, reap it and close its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for s in (proc.stdout, proc.stderr):
        if s is not None:
            s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``agentmesh serve`` as a real process on a free loopback port (memory store
    unless ``args`` say otherwise; a later flag wins). With ``log``, its stderr goes to
    that file instead of a pipe (which a chatty server could fill and stall on)."""

    def __init__(self, *args: str, port: int = 0, log: Path | None = None) -> None:
        self.port = port or free_port()
        err = None if log is None else log.open("w")
        self.address = f"127.0.0.1:{self.port}"
        # The HTTP listener's address when the args fix it ("" otherwise: a free port).
        self.http = next((v for k, v in itertools.pairwise(args) if k == "--http-listen"), "")
        self.proc = subprocess.Popen(
            [
                str(BIN / "agentmesh"),
                "serve",
                "--listen",
                self.address,
                "--heartbeat-interval-ms",
                "200",
                "--heartbeat-timeout-ms",
                "2000",
                "--state-persistence",
                "memory",
                *args,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if err is None else err,
            text=True,
        )
        if err is not None:
            err.close()  # the child has its own copy
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("agentmesh coordinator listening on"), line

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def spawn() -> Iterator[Any]:
    procs: list[AgentProcess] = []

    def start(coordinator: str, *args: str) -> AgentProcess:
        p = AgentProcess(coordinator, *args)
        procs.append(p)
        return p

    try:
        yield start
    finally:
        for p in procs:
            p.stop()


async def eventually(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Wait until ``predicate()`` (sync or async) is truthy."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def assert_stream_is_the_history(client: Client, events: Any, ids: Any) -> None:
    """``events`` (read from one resumed subscription) hold each of ``ids``'s durable
    history exactly: no gap, no duplicate, in order; the store's history is the oracle.
    (``stream.truncated`` markers are not events of the log: they carry the sequence
    they follow.)"""
    logged = [e for e in events if e.type != "stream.truncated"]
    sequences = [e.sequence for e in logged]
    assert sequences == sorted(set(sequences)), "strictly increasing, no duplicate"
    for execution_id in ids:
        journal = await client.get_execution_history(execution_id)
        # The engine's inputs (``ExecutionStarted``, ``TimerFired``) are not published.
        history = [(h.type, h.step_id) for h in journal if "." in h.type]
        streamed = [(e.type, e.step_id) for e in logged if e.execution_id == execution_id]
        assert streamed == history, execution_id


def wait_chain(name: str, steps: int, ms: int) -> dict[str, Any]:
    """A workflow of ``steps`` wait steps of ``ms`` each, one after the other: it takes
    a known while and needs no agent."""
    return {
        "id": name,
        "steps": [
            {
                "id": f"w{i}",
                "type": "wait",
                "wait": {"durationMs": ms},
                **({"next": f"w{i + 1}"} if i + 1 < steps else {}),
            }
            for i in range(steps)
        ],
    }


async def read_until(stream: Any, events: list[Any], steps_completed: int) -> None:
    """Append ``stream``'s events to ``events`` until ``steps_completed`` steps completed."""
    async for e in stream:
        events.append(e)
        if sum(x.type == "step.completed" for x in events) == steps_completed:
            return


async def read_until_done(stream: Any, events: list[Any], ids: Any) -> None:
    """Append ``stream``'s events to ``events`` until every one of ``ids`` completed."""
    done: set[str] = set()
    async for e in stream:
        events.append(e)
        if e.type == "execution.completed":
            done.add(e.execution_id)
            if done == set(ids):
                return
