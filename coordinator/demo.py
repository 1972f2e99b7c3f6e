"""``agentmesh demo``: a coordinator, three agent processes and real tasks, end to end.

Everything runs as separate processes on loopback, exactly as in production:
``agentmesh serve``, then ``python -m agents text`` and two ``python -m agents math``.
The demo shows the mesh, runs a task with live progress, spreads a batch over
the agents, kills an agent in the middle of a task to show re-dispatch, and
stops everything it started (also on Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import IO

from agent_sdk import Client, TaskAssignment, TaskRequest

SAMPLE = (
    "Agents join a coordinator over gRPC, each advertising capabilities. "
    "The coordinator hands each task to a capable, lightly loaded agent."
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def _say(msg: str = "") -> None:
    print(msg, flush=True)


class Processes:
    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # Ctrl-C reaches us; we stop them in order
        )
        self.procs[name] = proc
        return proc

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out: IO[str] | None = proc.stdout
            if out is not None:
                out.close()


async def _wait_agents(client: Client, count: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while len(await client.list_agents()) < count:
        if time.monotonic() > end:
            raise RuntimeError(f"fewer than {count} agents joined within {timeout:.0f}s")
        await asyncio.sleep(0.1)


async def _watch(client: Client, task_id: str, label: str) -> TaskAssignment:
    """Show a task's progress: a redrawn bar on a terminal, one line per change otherwise."""
    width, tty, last = 30, sys.stdout.isatty(), ""
    while True:
        t = await client.wait_task(task_id, timeout=0.1)
        filled = int(t.progress * width) if not t.finished else width
        bar = "#" * filled + "." * (width - filled)
        where = f"{t.agent_id or 'queued'} attempt {t.attempt}"
        line = f"  {label} [{bar}] {t.status:<9} {where}"
        if tty:
            print(f"\r{line:<90}", end="" if not t.finished else "\n", flush=True)
        elif line != last:
            print(line, flush=True)
        last = line
        if t.finished:
            return t


async def _scenario(address: str, procs: Processes, tasks: int) -> None:
    async with Client(address) as client:
        await _wait_agents(client, 3)
        _say("\n1. The mesh (agentmesh agents):")
        from coordinator.cli import _agents_table

        _say(_agents_table(await client.list_agents()))

        _say("\n2. One task with live progress: count primes below 40,000,000")
        t = await client.assign_task("primes", {"limit": 40_000_000})
        done = await _watch(client, t.id, "primes")
        _say(f"  -> {_json(done.result)} on {done.agent_id}")

        _say(f"\n3. A batch of {tasks} tasks spread over the capable agents")
        started = time.perf_counter()
        reqs = [TaskRequest("word_count", {"text": SAMPLE}) for _ in range(tasks // 2)]
        reqs += [TaskRequest("primes", {"limit": 20_000 + i}) for i in range(tasks - len(reqs))]
        subs = await client.bulk_assign_tasks(reqs)
        results = []
        for s in subs:
            results.append(await client.wait_task(s.id, timeout=60))
        elapsed = time.perf_counter() - started
        by_agent = Counter(r.agent_id for r in results)
        ok = sum(r.status == "completed" for r in results)
        _say(f"  {ok}/{len(results)} completed in {elapsed:.2f}s; tasks per agent:")
        for agent_id, n in sorted(by_agent.items()):
            _say(f"    {agent_id:<24} {n}")

        _say("\n4. Fault: kill the agent running a task (SIGKILL) and watch it move")
        t = await client.assign_task("primes", {"limit": 40_000_000})
        status = await client.get_task_status(t.id)
        while status.status != "running":
            status = await client.wait_task(t.id, timeout=0.02)
        victim_id = status.agent_id
        victim = next(name for name in procs.procs if name.startswith("math") and name in victim_id)
        procs.procs[victim].kill()
        _say(f"  killed {victim} (agent {victim_id}) while it held task {t.id[:8]}")
        done = await _watch(client, t.id, "primes")
        _say(f"  -> {done.status} on {done.agent_id}, attempt {done.attempt}: {_json(done.result)}")
        _say("\n5. The mesh afterwards (agentmesh agents --all):")
        _say(_agents_table(await client.list_agents(include_offline=True)))


def run_demo(tasks: int = 20) -> int:
    """Run the demo; return a process exit status."""
    procs = Processes()
    workdir = tempfile.TemporaryDirectory(prefix="agentmesh-demo-")
    address = f"127.0.0.1:{_free_port()}"
    started = time.perf_counter()
    try:
        _say(f"Starting coordinator on {address} and three agents (text, math-1, math-2)...")
        server = procs.start(
            "coordinator",
            "-m",
            "coordinator.cli",
            "serve",
            "--listen",
            address,
            "--heartbeat-interval-ms",
            "500",
            "--heartbeat-timeout-ms",
            "2000",
            "--log-level",
            "warn",
            "--store-path",
            str(Path(workdir.name) / "demo.db"),
        )
        assert server.stdout is not None
        line = server.stdout.readline()
        if "listening" not in line:
            _say("coordinator failed to start")
            return 1
        procs.start("text", "-m", "agents", "text", "--coordinator", address)
        for name in ("math-1", "math-2"):
            procs.start(
                name, "-m", "agents", "math", "--coordinator", address, "--agent-name", name
            )
        asyncio.run(_scenario(address, procs, tasks))
        _say(f"\nDemo finished in {time.perf_counter() - started:.1f}s. Stopping everything...")
        return 0
    except KeyboardInterrupt:
        _say("\ninterrupted: stopping everything...")
        return 130
    finally:
        with contextlib.suppress(Exception):
            procs.stop_all()
        workdir.cleanup()
