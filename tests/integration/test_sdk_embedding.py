"""The SDK where people embed it: threads, running event loops, the environment, and
status output for applications that configured no logging.

Real coordinators on loopback ports and real SDK agents, in this process or in a child
process (for what only a fresh interpreter shows: stderr with logging unconfigured).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import pytest

from agent_sdk import Agent, Client, Task
from agent_sdk._discovery import ignored_environment, resolve_address
from coordinator.server import Coordinator
from tests.conftest import ROOT, eventually, fast_settings, free_port, running, stop_process

ENV = "AGENTMESH_COORDINATOR"
pytestmark = pytest.mark.timeout(60)


def doubling_agent(name: str, address: str | None, **kw: Any) -> Agent:
    agent = Agent(name, address, reconnect_min=0.05, reconnect_max=0.2, **kw)

    @agent.capability("double")
    async def double(task: Task) -> dict[str, Any]:
        return {"value": task.input["value"] * 2, "thread": threading.current_thread().name}

    return agent


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# ------------------------------------------------------------------ threads, loops


async def test_run_in_a_worker_thread_serves_and_stops_on_request(
    coordinator: Coordinator, client: Client
) -> None:
    assert threading.current_thread() is threading.main_thread()
    agent = doubling_agent("threaded", coordinator.address)
    errors: list[BaseException] = []

    def serve_in_thread() -> None:
        try:
            agent.run()
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=serve_in_thread, name="agent-thread", daemon=True)
    thread.start()
    try:
        await eventually(lambda: agent.connected_to is not None or not thread.is_alive())
        assert errors == [], "run() off the main thread must not touch signal handlers"
        t = await client.assign_task("double", {"value": 21})
        done = await client.wait_task(t.id, timeout=10)
        assert done.status == "completed"
        assert done.result == {"value": 42, "thread": "agent-thread"}
        agent.request_shutdown()  # from the main thread, not the agent's loop
        await asyncio.to_thread(thread.join, 15)
        assert not thread.is_alive(), "request_shutdown() from another thread stops run()"
        assert errors == []
        assert agent.connected_to is None and agent.stats.completed == 1
    finally:
        if thread.is_alive():
            agent.request_shutdown()
            await asyncio.to_thread(thread.join, 10)


def test_request_shutdown_before_run_makes_it_return_at_once() -> None:
    agent = doubling_agent("early", f"127.0.0.1:{free_port()}")
    agent.request_shutdown()  # nothing runs yet: remembered
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    thread.join(15)
    assert not thread.is_alive()
    assert agent.stats.sessions == 0


async def test_run_inside_a_running_loop_says_to_await_serve() -> None:
    agent = doubling_agent("notebook", f"127.0.0.1:{free_port()}")
    with pytest.raises(RuntimeError, match=r"running event loop.*use `await agent\.serve\(\)`"):
        agent.run()


# ------------------------------------------------------------ the coordinator address


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        ("a:1", "b:2", ("a:1", "argument")),
        ("a:1", None, ("a:1", "argument")),
        (None, "b:2,c:3", ("b:2,c:3", ENV)),
        ("", "b:2", ("b:2", ENV)),
        (None, None, ("localhost:50051", "default")),
        (None, "  ", ("localhost:50051", "default")),
    ],
)
def test_address_precedence_is_argument_then_environment_then_default(
    explicit: str | None, env: str | None, expected: tuple[str, str]
) -> None:
    environ = {} if env is None else {ENV: env}
    assert resolve_address(explicit, environ) == expected


def test_only_a_different_environment_value_counts_as_ignored() -> None:
    assert ignored_environment("a:1", "argument", {ENV: "h1:1,h2:2"}) == "h1:1,h2:2"
    assert ignored_environment("a:1", "argument", {ENV: " a:1 "}) is None
    assert ignored_environment("a:01", "argument", {ENV: "a:1"}) is None  # same address
    assert ignored_environment("a:1", "argument", {}) is None
    assert ignored_environment("h1:1", ENV, {ENV: "h1:1"}) is None


async def test_client_without_an_address_uses_the_environment(
    coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, coordinator.address)
    async with Client(timeout=10) as client:
        assert client.address == coordinator.address
        assert await client.list_agents() == []


async def test_a_client_address_argument_wins_over_the_environment(
    coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, f"127.0.0.1:{free_port()}")  # nothing listens there
    async with Client(coordinator.address, timeout=10) as client:
        assert client.address == coordinator.address
        assert await client.list_agents() == []
    monkeypatch.delenv(ENV)
    async with Client() as client:
        assert client.address == "localhost:50051"


async def test_an_agent_reports_an_overridden_environment_once(
    coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent_sdk")
    monkeypatch.setenv(ENV, "h1:1,h2:2")
    agent = doubling_agent("planner", coordinator.address)
    assert agent.coordinator == coordinator.address, "the argument wins"
    async with running(agent):
        pass
    assert messages(caplog, "is ignored") == [
        f"agent planner: using coordinator {coordinator.address} (given in code); "
        f"{ENV}=h1:1,h2:2 is ignored"
    ]
    assert messages(caplog, "connected to") == [
        f"agent planner connected to {coordinator.address} as {agent.agent_id}"
    ]
    assert len(messages(caplog, "agent planner: shutting down")) == 1
    assert messages(caplog, "agent planner: stopped") == ["agent planner: stopped"]

    caplog.clear()
    monkeypatch.setenv(ENV, coordinator.address)  # the same address: nothing to say
    async with running(doubling_agent("same", coordinator.address)):
        pass
    agent = doubling_agent("from-env", None)  # the environment only: nothing to say
    assert agent.coordinator == coordinator.address
    async with running(agent):
        pass
    assert messages(caplog, "is ignored") == []


async def test_losing_the_coordinator_is_logged_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="agent_sdk")
    address = f"127.0.0.1:{free_port()}"
    first = Coordinator(fast_settings(listen=address))
    await first.start()
    agent = doubling_agent("lost", address)
    serving = asyncio.create_task(agent.serve())
    try:
        await agent.wait_connected(10)
        await first.stop(grace=1.0)
        await eventually(lambda: messages(caplog, "cannot reach"))
        lost = messages(caplog, f"agent lost: disconnected from {address}: ")
        assert len(lost) == 1 and "; reconnecting in " in lost[0], lost
        reach = messages(caplog, f"agent lost: cannot reach {address}: UNAVAILABLE: ")[0]
        assert "; retrying in " in reach
        second = Coordinator(fast_settings(listen=address))
        await second.start()
        try:
            await eventually(lambda: agent.stats.sessions == 2 and agent.connected_to)
            assert len(messages(caplog, f"agent lost connected to {address} as ")) == 2
        finally:
            await agent.shutdown(grace=2)
            await asyncio.wait_for(serving, 10)
            await second.stop(grace=1.0)
    finally:
        serving.cancel()
        await first.stop(grace=1.0)


# ------------------------------------------------- stderr without logging configured

AGENT_SCRIPT = """\
import logging, sys
from agent_sdk import Agent

class CountingAgent(Agent):
    async def _next_target(self):
        target = await super()._next_target()
        print("ATTEMPT", target, flush=True)
        return target

if sys.argv[2] == "configured":
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="LOG %(levelname)s %(name)s %(message)s"
    )
agent = CountingAgent("planner", sys.argv[1], reconnect_min=0.05, reconnect_max=0.2)
agent.add_capability("echo", lambda task: task.input)
agent.run()
print("EXIT", flush=True)
"""


class Lines:
    """The lines of a child's output stream, read by a thread as they come."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self.lines.append(line.rstrip("\n"))
        except (OSError, ValueError):  # closed under us when the test fails
            pass

    def having(self, text: str) -> list[str]:
        return [line for line in list(self.lines) if text in line]

    async def until_closed(self, timeout: float) -> None:
        await asyncio.to_thread(self._thread.join, timeout)
        assert not self._thread.is_alive(), "the stream did not close"


def start_agent_process(tmp_path: Path, address: str, mode: str) -> subprocess.Popen[str]:
    script = tmp_path / "agent.py"
    script.write_text(AGENT_SCRIPT)
    env = {**os.environ, ENV: "h1:1,h2:2", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(script), address, mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


async def run_down_then_up(tmp_path: Path, mode: str) -> tuple[str, list[str]]:
    """Start an agent process against a port where nothing listens, wait for its
    "cannot reach" line on stderr and then for several more connection attempts,
    start a coordinator there, wait until connected, SIGTERM the agent.  Returns the
    address and the agent's stderr lines."""
    address = f"127.0.0.1:{free_port()}"
    proc = start_agent_process(tmp_path, address, mode)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        await eventually(lambda: err.having("cannot reach"), timeout=20)
        seen = len(out.having("ATTEMPT"))
        await eventually(lambda: len(out.having("ATTEMPT")) >= seen + 4, timeout=20)
        coordinator = Coordinator(fast_settings(listen=address))
        await coordinator.start()
        try:
            await eventually(lambda: err.having(f"connected to {address} as "), timeout=20)
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 20) == 0, err.lines
        finally:
            await coordinator.stop(grace=1.0)
        await out.until_closed(10)
        await err.until_closed(10)
        assert out.lines[-1] == "EXIT"
        return address, err.lines
    finally:
        stop_process(proc)


async def test_unconfigured_logging_shows_each_state_change_once_on_stderr(
    tmp_path: Path,
) -> None:
    address, lines = await run_down_then_up(tmp_path, "unconfigured")
    assert len([line for line in lines if "cannot reach" in line]) == 1, lines
    status = [line for line in lines if line.startswith("agent_sdk: ")]
    assert status[0] == (
        f"agent_sdk: agent planner: using coordinator {address} (given in code); "
        f"{ENV}=h1:1,h2:2 is ignored"
    )
    assert status[1].startswith(f"agent_sdk: agent planner: cannot reach {address}: UNAVAILABLE: ")
    assert "; retrying in " in status[1]
    assert status[2].startswith(f"agent_sdk: agent planner connected to {address} as planner-")
    assert status[3].startswith("agent_sdk: agent planner: shutting down: finishing 0 running")
    assert status[4:] == ["agent_sdk: agent planner: stopped"], status
    assert not [line for line in lines if line.startswith("LOG ")]


async def test_configured_logging_gets_the_records_and_no_stderr_copies(
    tmp_path: Path,
) -> None:
    prefix = "LOG INFO agent_sdk agent planner"
    address, lines = await run_down_then_up(tmp_path, "configured")
    assert not [line for line in lines if line.startswith("agent_sdk: ")], lines
    failed = [line for line in lines if line.startswith(f"{prefix}: cannot reach {address}")]
    assert len(failed) >= 4, "the log has every failed attempt"
    assert len([line for line in lines if "is ignored" in line]) == 1
    assert len([line for line in lines if line.startswith(f"{prefix} connected to")]) == 1
    assert [line for line in lines if line.startswith(f"{prefix}: stopped")] == [
        f"{prefix}: stopped"
    ]
