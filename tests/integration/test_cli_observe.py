"""``agentmesh events``, ``metrics`` and ``top`` against a real coordinator and agent."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from agent_sdk import Client
from coordinator.server import Coordinator
from tests.conftest import BIN, ROOT, ServerProcess, running
from tests.integration.test_events import FLOW, echo_agent

pytestmark = pytest.mark.timeout(60)


async def cli(address: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "agentmesh"), *argv, "-c", address],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


async def test_events_metrics_and_top(coordinator: Coordinator, client: Client) -> None:
    address = coordinator.address
    async with running(echo_agent(address)) as agent:
        await client.define_workflow("flow", FLOW)
        follow = asyncio.create_task(
            cli(
                address,
                "events",
                "-f",
                "--from",
                "0",
                "--type",
                "execution.*",
                "--until",
                "execution.c*",
            )
        )
        ex = await client.start_workflow("flow", {"n": 1})
        await client.wait_execution(ex.id, timeout=20)
        followed = await asyncio.wait_for(follow, 30)
        listed = await cli(address, "events", "--execution", ex.id, "--type", "step.*")
        as_json = await cli(address, "events", "--execution", ex.id, "--json")
        metrics = await cli(address, "metrics", "flow", "--json")
        system = await cli(address, "metrics")
        top = await cli(address, "top", "--once")
        bad = await cli(address, "events", "--type", "st*ep")
    assert followed.returncode == 0, followed.stderr
    assert [ln.split()[2] for ln in followed.stdout.splitlines()] == [
        "execution.started",
        "execution.completed",
    ]
    assert listed.returncode == 0, listed.stderr
    steps = [ln.split()[2:4] for ln in listed.stdout.splitlines()]
    assert [t for t, _ in steps] == ["step.started", "step.completed"] * 2
    assert [s.split("/")[1] for _, s in steps] == ["one", "one", "two", "two"]
    events = [json.loads(ln) for ln in as_json.stdout.splitlines()]
    assert events and {e["execution_id"] for e in events} == {ex.id}
    seqs = [e["sequence"] for e in events]
    assert seqs == sorted(set(seqs))
    assert json.loads(metrics.stdout)["total_executions"] == 1
    assert json.loads(metrics.stdout)["agent_utilization"] == {agent.agent_id: 1.0}
    assert "health      healthy" in system.stdout
    assert agent.agent_id in top.stdout and "agentmesh top" in top.stdout
    assert bad.returncode == 3 and "prefix ending in '*'" in bad.stderr


async def test_serve_writes_json_logs_with_the_ids(tmp_path: Path) -> None:
    log = tmp_path / "coordinator.log"
    server = ServerProcess("--log-format", "json", log=log)
    try:
        async with running(echo_agent(server.address)) as agent:
            pass
    finally:
        server.stop()
    lines = [json.loads(ln) for ln in log.read_text().splitlines() if ln.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(ln) for ln in lines)
    joined = [ln for ln in lines if ln.get("agent_id") == agent.agent_id]
    assert joined and joined[0]["namespace"] == "default"
    assert joined[0]["time"].endswith("Z") and joined[0]["level"] == "info"
