"""Secrets never leak: a workflow started with a secret (a `password` field, and a field
its input schema marks `secret: true`) runs on a real coordinator process with SQLite;
its agent gets the real values, copies them under other names and into a failure
message, the coordinator restarts mid-way; then the SQLite files, the coordinator's log,
the history (today's event stream) and every answer are searched for the planted values
and hold none. The etcd variant is tests/cluster/test_secrets_etcd.py."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from agent_sdk import Agent, Client, Task, TaskError
from coordinator.secrets import REDACTED
from tests.conftest import ServerProcess, eventually, running

PASSWORD = "pw-Planted-7f3a9c"
KEY = "dk-Planted-51e2b8"
PLANTED = (PASSWORD, KEY)

DEPLOY = {
    "id": "deploy",
    "input": {
        "type": "object",
        "required": ["password", "deployKey"],
        "properties": {
            "user": {"type": "string"},
            "password": {"type": "string"},
            "deployKey": {"type": "string", "secret": True},
        },
    },
    "steps": [
        {
            "id": "use",
            "type": "task",
            "capability": "use_secret",
            "input": {"password": "$.input.password", "key": "$.input.deployKey"},
            "output": {"first": "$.output"},
            "next": "hold",
        },
        {"id": "hold", "type": "event", "event": {"name": "go"}, "next": "again"},
        {
            "id": "again",
            "type": "task",
            "capability": "use_secret",
            "retry": {"maxAttempts": 2, "interval": 10},
            "input": {"password": "$.input.password", "key": "$.input.deployKey"},
            "output": {"second": "$.output"},
        },
    ],
}


class Handler:
    """The agent's side: it must see the real values; it leaks them every way it can."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, task: Task) -> dict[str, Any]:
        self.seen.append(dict(task.input))
        if len(self.seen) == 2:  # the first attempt of `again`: a failure that quotes it
            raise TaskError(
                f"login with {task.input['password']} refused",
                type="AuthFailed",
                details={"tried": task.input["key"]},
                retryable=True,
            )
        return {"saw": task.input["password"], "note": f"deployed with {task.input['key']}"}


def agent_for(address: str, handler: Handler) -> Agent:
    agent = Agent("keeper", address, reconnect_max=0.3)
    agent.add_capability("use_secret", handler)
    return agent


async def at_hold(client: Client, exec_id: str) -> bool:
    status = await client.get_execution_status(exec_id)
    return [s.step_id for s in status.current_steps] == ["hold"]


def leaks(text: str) -> list[str]:
    return [p for p in PLANTED if p in text]


async def run_scenario(
    start: Callable[[], ServerProcess],
    stored: Callable[[], Awaitable[list[bytes]]],
    logs: list[Path],
) -> None:
    """Plant, restart, finish, search. ``start`` starts the coordinator (again, on
    the same store, logging to the last of ``logs``); ``stored`` returns what its
    store holds, as bytes."""
    handler = Handler()
    server = start()
    try:
        async with (
            Client(server.address, timeout=10) as client,
            running(agent_for(server.address, handler)),
        ):
            await client.define_workflow("deploy", DEPLOY)
            ex = await client.start_workflow(
                "deploy", {"user": "bob", "password": PASSWORD, "deployKey": KEY}
            )
            await eventually(lambda: at_hold(client, ex.id), timeout=15)
            shown = await answers(client, ex.id)
            assert not leaks(shown), shown
            assert REDACTED in shown
    finally:
        server.stop()
    server = start()  # recovered from the sealed history
    try:
        async with (
            Client(server.address, timeout=10) as client,
            running(agent_for(server.address, handler)),
        ):
            await eventually(lambda: at_hold(client, ex.id), timeout=15)
            assert (await client.trigger_event("go", {})).delivered == 1
            done = await client.wait_execution(ex.id, timeout=20)
            assert done.status == "completed", done.error
            shown = await answers(client, ex.id)
            assert not leaks(shown), shown
            # The workflow still had the real values after the restart.
            assert done.variables["second"]["saw"] == REDACTED
    finally:
        server.stop()
    # The agent got the real values every time, before and after the restart.
    assert len(handler.seen) == 3
    assert all(s == {"password": PASSWORD, "key": KEY} for s in handler.seen), handler.seen
    for blob in await stored():
        assert not [p for p in PLANTED if p.encode() in blob]
    text = "".join(p.read_text() for p in logs)
    assert "recovered 1 unfinished execution" in text  # the logs are the real ones
    assert not leaks(text)
    assert "secret values are stored as" not in text  # the key was found: sealed


async def answers(client: Client, exec_id: str) -> str:
    """Everything the API tells about the execution and its tasks, as one text."""
    parts: list[Any] = [
        await client.get_execution_status(exec_id),
        await client.get_execution_history(exec_id),
        await client.list_executions(),
        await client.list_active_executions(),
    ]
    tasks = await client.list_tasks(limit=100)
    parts.append(tasks)
    for t in tasks:
        parts.append(await client.get_task_status(t.id))
    return json.dumps(parts, default=repr)


@pytest.fixture
def history_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("AGENTMESH_SECRET_HISTORY_KEY", key)  # the servers inherit it
    return key


async def test_a_planted_secret_is_nowhere_in_sqlite_logs_or_answers(
    tmp_path: Path, history_key: str
) -> None:
    db = tmp_path / "state.db"
    logs: list[Path] = []

    def start() -> ServerProcess:
        logs.append(tmp_path / f"coordinator-{len(logs)}.log")
        sqlite = ("--state-persistence", "sqlite", "--store-path", str(db))
        return ServerProcess(*sqlite, "--log-level", "debug", log=logs[-1])

    async def stored() -> list[bytes]:
        return [p.read_bytes() for p in sorted(tmp_path.glob("state.db*"))]  # noqa: ASYNC240

    await run_scenario(start, stored, logs)


async def test_an_api_task_with_a_secret_field_is_redacted_in_answers(tmp_path: Path) -> None:
    server = ServerProcess()
    try:
        async with (
            Client(server.address, timeout=10) as client,
            running(agent_for(server.address, Handler())),
        ):
            t = await client.assign_task("use_secret", {"password": PASSWORD, "key": "k" * 8})
            done = await client.wait_task(t.id, timeout=10)
            assert done.input["password"] == REDACTED
            assert done.result == {"saw": REDACTED, "note": "deployed with kkkkkkkk"}
            assert not leaks(json.dumps([await client.list_tasks(), done], default=repr))
    finally:
        server.stop()
