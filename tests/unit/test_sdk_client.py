"""Client behaviour that needs no coordinator: the deadline each call gets, and what is
refused before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest

from agent_sdk import Client, TaskRequest


class Recording(Client):
    """Records each call's method name and timeout instead of sending it."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1:1", timeout=7.0)
        self.calls: list[tuple[str, float | None]] = []

    async def _invoke(self, method: Any, request: Any, timeout: float | None) -> Any:
        self.calls.append((self._methods[method][1], timeout))
        raise RuntimeError("not sent")


@pytest.mark.parametrize(
    ("wait", "expected"),
    [
        (lambda c: c.wait_task("t"), ("WaitTask", None)),
        (lambda c: c.wait_task("t", timeout=5), ("WaitTask", 12.0)),
        # Without a timeout it waits as long as it takes, as the coordinator does
        # (it used to get the client's 30 s default and fail DEADLINE_EXCEEDED).
        (lambda c: c.wait_execution("e"), ("WaitExecution", None)),
        (lambda c: c.wait_execution("e", timeout=5), ("WaitExecution", 12.0)),
        (lambda c: c.poll_tasks("a", wait=2), ("PollTasks", 9.0)),
        (lambda c: c.list_agents(), ("ListAgents", 7.0)),
    ],
)
async def test_each_call_gets_its_deadline(wait: Any, expected: tuple[str, float | None]) -> None:
    client = Recording()
    try:
        with pytest.raises(RuntimeError, match="not sent"):
            await wait(client)
        assert client.calls == [expected]
    finally:
        await client.close()


async def test_a_bulk_call_refuses_a_pinned_task() -> None:
    client = Recording()
    try:
        with pytest.raises(ValueError, match="cannot pin"):
            await client.bulk_assign_tasks([TaskRequest("echo"), TaskRequest("echo", agent_id="a")])
        assert client.calls == [], "nothing is sent"
    finally:
        await client.close()
