"""What a coordinator restarted on the same SQLite store knows: every execution call finds
what the store holds, and recovery never runs a finished child twice."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agent_sdk import Client, FailedPreconditionError, NotFoundError, UnavailableError
from coordinator.server import Coordinator, ListenError
from tests.conftest import BIN, ServerProcess, eventually, fast_settings, free_port

TICK = {"id": "tick", "steps": [{"id": "w", "type": "wait", "wait": {"durationMs": 10}}]}
HOLD = {
    "id": "hold",
    "steps": [{"id": "e", "type": "event", "event": {"name": "go"}}],
}


@asynccontextmanager
async def coordinator(db: Path) -> AsyncIterator[Client]:
    c = Coordinator(fast_settings(state_persistence="sqlite", store_path=str(db)))
    await c.start()
    try:
        async with Client(c.address, timeout=10) as client:
            yield client
    finally:
        await c.stop(grace=1)


async def test_every_execution_call_finds_what_the_store_holds(tmp_path: Path) -> None:
    db = tmp_path / "am.db"
    async with coordinator(db) as client:
        await client.define_workflow("tick", TICK)
        await client.define_workflow("hold", HOLD)
        done = await client.start_workflow("tick", {})
        assert (await client.wait_execution(done.id, timeout=10)).status == "completed"
        stopped = await client.start_workflow("hold", {})
        await client.stop_workflow(stopped.id, "not needed")
        running = await client.start_workflow("hold", {})

    async with coordinator(db) as client:
        # finished before the restart: the store answers every call
        again = await client.wait_execution(done.id, timeout=30)
        assert again.status == "completed" and again.id == done.id
        assert (await client.get_execution_status(done.id)).status == "completed"
        assert [e.type for e in await client.get_execution_history(done.id)][-1] == (
            "execution.completed"
        )
        for call in (
            client.stop_workflow(done.id),
            client.pause_workflow(done.id),
            client.resume_workflow(done.id),
        ):
            with pytest.raises(FailedPreconditionError, match=f"execution {done.id} is completed"):
                await call
        with pytest.raises(FailedPreconditionError, match="is cancelled: it cannot be stopped"):
            await client.stop_workflow(stopped.id)
        # recovered (unfinished): control calls act on it, in the states they fit
        with pytest.raises(FailedPreconditionError, match="is running: it cannot be resumed"):
            await client.resume_workflow(running.id)
        assert (await client.pause_workflow(running.id)).status == "paused"
        with pytest.raises(FailedPreconditionError, match="is paused: it cannot be paused"):
            await client.pause_workflow(running.id)
        assert (await client.resume_workflow(running.id)).status == "running"
        assert (await client.stop_workflow(running.id)).status == "cancelled"
        for call in (
            client.wait_execution("nope", timeout=1),
            client.stop_workflow("nope"),
            client.pause_workflow("nope"),
            client.resume_workflow("nope"),
        ):
            with pytest.raises(NotFoundError, match="execution 'nope' not found"):
                await call


CHILD = {"id": "child", "steps": [{"id": "w", "type": "wait", "wait": {"durationMs": 10}}]}
PARENT = {
    "id": "parent",
    "steps": [
        {"id": "sub", "type": "subworkflow", "workflow": "child", "next": "e"},
        {"id": "e", "type": "event", "event": {"name": "go"}},
    ],
}


async def at_hold(client: Client, execution_id: str) -> bool:
    status = await client.get_execution_status(execution_id)
    return [s.step_id for s in status.current_steps] == ["e"]


async def test_a_child_that_finished_before_the_crash_is_not_run_again(tmp_path: Path) -> None:
    """The parent's history ends before it heard of its child's end (a crash between the
    two commits), and more than 1 000 executions finished after the child: recovery still
    finds the child's outcome through the store's parent index instead of starting it
    again."""
    db = tmp_path / "am.db"
    async with coordinator(db) as client:
        await client.define_workflow("child", CHILD)
        await client.define_workflow("parent", PARENT)
        parent = await client.start_workflow("parent", {})
        await eventually(lambda: at_hold(client, parent.id), timeout=10)

    conn = sqlite3.connect(db)
    with conn:
        (cut,) = conn.execute(
            "SELECT MIN(seq) FROM events WHERE execution_id = ? AND type = 'ChildFinished'",
            (parent.id,),
        ).fetchone()
        assert cut is not None
        conn.execute("DELETE FROM events WHERE execution_id = ? AND seq >= ?", (parent.id, cut))
        conn.execute(
            "UPDATE executions SET status = 'running', last_seq = ? WHERE id = ?",
            (cut - 1, parent.id),
        )
        (child_id,) = conn.execute(
            "SELECT id FROM executions WHERE parent_id = ?", (parent.id,)
        ).fetchone()
        later = datetime.now(UTC) + timedelta(minutes=1)
        rows = [
            (
                f"later-{i:04d}",
                "tick",
                "1",
                "completed",
                (later + timedelta(seconds=i)).isoformat(timespec="microseconds"),
                (later + timedelta(seconds=i)).isoformat(timespec="microseconds"),
                "",
                0,
                "",
                "",
                "default",
            )
            for i in range(1_200)
        ]
        conn.executemany("INSERT INTO executions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.close()

    async with coordinator(db) as client:
        await eventually(lambda: at_hold(client, parent.id), timeout=10)
        assert (await client.trigger_event("go", {})).delivered == 1
        finished = await client.wait_execution(parent.id, timeout=10)
        assert finished.status == "completed", finished.error
        history = await client.get_execution_history(parent.id)
        heard = [e for e in history if e.type == "ChildFinished"]
        assert len(heard) == 1 and heard[0].data["child_id"] == child_id
    conn = sqlite3.connect(db)
    children = conn.execute("SELECT id FROM executions WHERE parent_id = ?", (parent.id,))
    assert [c for (c,) in children] == [child_id]  # never started a second time
    conn.close()


def health(address: str, service: str = "") -> int:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status)


async def test_a_second_coordinator_on_one_store_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "am.db"
    first = ServerProcess("--state-persistence", "sqlite", "--store-path", str(db))
    try:
        second = await asyncio.to_thread(
            subprocess.run,
            [
                str(BIN / "agentmesh"),
                "serve",
                "--listen",
                f"127.0.0.1:{free_port()}",
                "--state-persistence",
                "sqlite",
                "--store-path",
                str(db),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr  # one line, no traceback
        assert lines[0] == (
            f"agentmesh: store {db} is in use by coordinator "
            f"{socket.gethostname()}:{first.proc.pid} (pid {first.proc.pid}, listening on "
            f"{first.address}); only one coordinator may open a store (stop it, or give "
            "this one another --store-path)"
        )
        async with Client(first.address, timeout=10) as client:  # the first is unharmed
            await client.define_workflow("tick", TICK)
            done = await client.start_workflow("tick", {})
            assert (await client.wait_execution(done.id, timeout=10)).status == "completed"
    finally:
        first.stop()
    # SIGKILLed above: the kernel released the lock with the process
    again = ServerProcess("--state-persistence", "sqlite", "--store-path", str(db))
    try:
        async with Client(again.address, timeout=10) as client:
            assert (await client.get_execution_status(done.id)).status == "completed"
    finally:
        again.stop()


async def test_a_dead_engine_takes_the_process_down(tmp_path: Path) -> None:
    """A failed store write stops the engine: health goes NOT_SERVING and the process
    exits non-zero after its grace period, so its supervisor restarts it."""
    db = tmp_path / "am.db"
    server = ServerProcess(
        "--state-persistence",
        "sqlite",
        "--store-path",
        str(db),
        "--shutdown-grace-s",
        "1",
        "--readiness-drain-s",
        "1",  # health says NOT_SERVING for a while before the process ends
    )
    try:
        async with Client(server.address, timeout=10) as client:
            await client.define_workflow("tick", TICK)
            assert health(server.address) == health_pb2.HealthCheckResponse.SERVING
            conn = sqlite3.connect(db)
            with conn:  # every later append fails, as a full disk would make it
                conn.execute(
                    "CREATE TRIGGER broken BEFORE INSERT ON events "
                    "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
                )
            conn.close()
            with pytest.raises(UnavailableError, match="workflow engine failed"):
                await client.start_workflow("tick", {})
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        await eventually(lambda: health(server.address) == not_serving, timeout=10)
        code = await asyncio.to_thread(server.proc.wait, 30)
        assert code == 1
        assert server.proc.stderr is not None
        log = server.proc.stderr.read()
        assert "the workflow engine stopped" in log and "shutting down (exit status 1)" in log
    finally:
        server.stop()


async def test_a_start_that_cannot_bind_releases_the_store(tmp_path: Path) -> None:
    """A failed start (its address taken) used to leave the engine running and the store
    locked; now it releases both, and `agentmesh serve` says why in one line (exit 2)."""
    db = tmp_path / "am.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        blocked = Coordinator(
            fast_settings(listen=address, state_persistence="sqlite", store_path=str(db))
        )
        with pytest.raises(ListenError, match=f"cannot listen on {address}"):
            await blocked.start()
        refused = await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "agentmesh"), "serve", "--listen", address, "--store-path", str(db)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert refused.returncode == 2, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last == f"agentmesh: cannot listen on {address}: address already in use"
    assert "Traceback" not in refused.stderr
    async with coordinator(db) as client:  # the store is free again
        await client.define_workflow("tick", TICK)
