"""SIGKILL the coordinator in the middle of workflows; restart it on the same store."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

from agent_sdk import Client
from coordinator.store import SqliteStore
from tests.conftest import AgentProcess, ServerProcess, eventually, free_port

STEPS = 5
EXECUTIONS = 10


def start_coordinator(port: int, db: Path) -> ServerProcess:
    return ServerProcess("--state-persistence", "sqlite", "--store-path", str(db), port=port)


async def completed_steps(client: Client, execution_id: str) -> list[str]:
    return [
        e.step_id
        for e in await client.get_execution_history(execution_id)
        if e.type == "step.completed"
    ]


async def durable_completions(db: Path, ids: list[str]) -> set[str]:
    """The idempotency keys (execution/key) of the tasks whose completion is in the
    store: what a coordinator recovering from it will never run again."""
    store = SqliteStore(str(db))
    await store.open()
    try:
        return {
            f"{execution_id}/{e.data['key']}"
            for execution_id in ids
            for e in await store.load_events(execution_id)
            if e.type == "TaskCompleted"
        }
    finally:
        await store.close()


async def test_sigkill_mid_workflow_resumes_from_the_store(tmp_path: Path, spawn: Any) -> None:
    port, db, log = free_port(), tmp_path / "am.db", tmp_path / "runs.log"
    address = f"127.0.0.1:{port}"
    first = start_coordinator(port, db)
    second: ServerProcess | None = None
    try:
        agent: AgentProcess = spawn(
            address, "--name", "rec", "--capability", "record", "--max-concurrency", "4"
        )
        await agent.ready()
        steps = [
            {
                "id": f"s{i}",
                "name": f"s{i}",
                "type": "task",
                "capability": "record",
                "input": {"path": "$.input.path", "seconds": 0.15},
                "output": {f"s{i}": "$.output.pid"},
                **({"next": f"s{i + 1}"} if i + 1 < STEPS else {}),
            }
            for i in range(STEPS)
        ]
        async with Client(address) as client:
            await client.define_workflow("chain", {"id": "chain", "steps": steps})
            ids = [
                (await client.start_workflow("chain", {"path": str(log)})).id
                for _ in range(EXECUTIONS)
            ]
            # let some, not all, of the work happen
            await eventually(
                lambda: len(log.read_text().splitlines()) >= 12 if log.exists() else False,
                timeout=20,
            )
        first.proc.kill()  # SIGKILL: no drain, no goodbye
        first.proc.wait(10)
        before = len(log.read_text().splitlines())
        assert before < STEPS * EXECUTIONS, "the crash must come mid-way"
        durable = await durable_completions(db, ids)
        assert durable, "some steps completed durably before the crash"

        second = start_coordinator(port, db)
        async with Client(address) as client:
            for execution_id in ids:
                done = await client.wait_execution(execution_id, timeout=60)
                assert done.status == "completed", (execution_id, done.error)
                # every step completed exactly once in the durable history
                assert await completed_steps(client, execution_id) == [
                    f"s{i}" for i in range(STEPS)
                ]
                assert sorted(done.variables) == [f"s{i}" for i in range(STEPS)]
        runs = [line.split() for line in log.read_text().splitlines()]
        keys = collections.Counter(r[3] for r in runs)
        # each (execution, step) ran at least once; only work in flight at the crash twice,
        # and a re-run carries the same idempotency key
        assert len({k.rsplit(".t", 1)[0] for k in keys}) == STEPS * EXECUTIONS
        assert all(n <= 2 for n in keys.values())
        # Only work whose completion was not yet durable runs again: what the agent held
        # (4 slots) and results received but not yet committed when the process died.
        rerun = {k for k, n in keys.items() if n == 2}
        assert rerun, "the crash came mid-task: something ran again"
        assert not rerun & durable, f"durably completed work ran again: {rerun & durable}"
    finally:
        first.stop()
        if second is not None:
            second.stop()
