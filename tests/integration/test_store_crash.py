"""Durability across SIGKILL: every commit the SQLite store acknowledged is on disk."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from coordinator.store import SqliteStore

ROOT = Path(__file__).resolve().parents[2]

# Several executions appended to concurrently, so the kill lands among group commits.
# Each line printed is a commit that returned: "<execution id> <seq>". A restarted child
# carries on from what the store says was committed, as the engine's recovery does.
CHILD = """
import asyncio, sys
from datetime import UTC, datetime
from coordinator.store import ExecutionRecord, SqliteStore, StoredEvent

async def append_forever(store, execution_id):
    record = await store.get_execution(execution_id)
    seq = 0 if record is None else record.last_seq
    created = datetime.now(UTC) if record is None else record.created
    while True:
        seq += 1
        now = datetime.now(UTC)
        await store.commit(
            [StoredEvent(execution_id, seq, "Tick", now, {"seq": seq, "pad": "x" * 200})],
            [ExecutionRecord(execution_id, "crash", "1", "running", created, now)],
        )
        sys.stdout.write(f"{execution_id} {seq}\\n")
        sys.stdout.flush()

async def main(path):
    store = SqliteStore(path)
    await store.open()
    await asyncio.gather(*(append_forever(store, f"x{i}") for i in range(4)))

asyncio.run(main(sys.argv[1]))
"""

LINES_PER_ROUND = 200
ROUND_TIMEOUT_S = 20.0


async def run_and_kill(path: Path) -> dict[str, int]:
    """Start a child, SIGKILL it mid-stream; the highest seq it reported per execution."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(path),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[bytes] = []
    try:
        async with asyncio.timeout(ROUND_TIMEOUT_S):
            while len(lines) < LINES_PER_ROUND:
                line = await proc.stdout.readline()
                if not line:
                    err = await proc.stderr.read()
                    pytest.fail(f"child exited early ({await proc.wait()}): {err.decode()}")
                lines.append(line)
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
        # Whatever it printed before dying was acknowledged too.
        lines.extend((await asyncio.wait_for(proc.stdout.read(), 10)).splitlines())
    finally:
        if proc.returncode is None:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 10)
    reported: dict[str, int] = {}
    for line in lines:
        execution_id, seq = line.split()
        reported[execution_id.decode()] = max(reported.get(execution_id.decode(), 0), int(seq))
    return reported


@pytest.mark.timeout(90)
async def test_acknowledged_commits_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    for _ in range(3):
        reported = await run_and_kill(path)
        assert reported, "the child reported no commits"
        async with SqliteStore(path) as store:
            for execution_id, acknowledged in reported.items():
                events = await store.load_events(execution_id)
                stored = [e.seq for e in events]
                # Contiguous from 1, and at least everything acknowledged (a commit may
                # land without its line being printed before the kill).
                assert stored == list(range(1, len(stored) + 1)), execution_id
                assert len(stored) >= acknowledged, (execution_id, len(stored), acknowledged)
                assert all(e.data["seq"] == e.seq for e in events)
                record = await store.get_execution(execution_id)
                # The index row was in the same transactions as the events.
                assert record is not None and record.last_seq == len(stored)
