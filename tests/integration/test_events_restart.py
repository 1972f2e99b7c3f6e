"""A subscriber that outlives its coordinator: SIGKILL, a restart on the same SQLite
store, and the SDK's stream resumes after the last event it handed out, with no gap
and no duplicate (the executions' histories are the oracle)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_sdk import Client, Event
from tests.conftest import (
    ServerProcess,
    assert_stream_is_the_history,
    free_port,
    read_until,
    read_until_done,
    wait_chain,
)

pytestmark = pytest.mark.timeout(90)

TICKS = wait_chain("ticks", steps=8, ms=80)


async def test_a_subscriber_resumes_across_a_sigkill_and_restart(tmp_path: Path) -> None:
    port = free_port()
    store = ("--state-persistence", "sqlite", "--store-path", str(tmp_path / "am.db"))
    server = ServerProcess(*store, port=port, log=tmp_path / "first.log")
    try:
        async with Client(server.address, timeout=30) as client:
            await client.define_workflow("ticks", TICKS)
            events: list[Event] = []
            async with client.subscribe_to_events({"workflowName": "ticks"}) as stream:
                ids = [(await client.start_workflow("ticks", {"n": n})).id for n in range(4)]
                await read_until(stream, events, steps_completed=6)
                server.stop()  # SIGKILL mid-way: no drain, nothing flushed on the way out
                killed_at = events[-1].sequence
                assert not any(e.type == "execution.completed" for e in events), "mid-way"
                server = ServerProcess(*store, port=port, log=tmp_path / "second.log")
                await read_until_done(stream, events, ids)
            # The new process cannot know which live events of the old one the stream
            # missed (its ring died with it): the stream says so, once, where it resumed.
            markers = [i for i, e in enumerate(events) if e.type == "stream.truncated"]
            assert len(markers) == 1, markers
            marker = events[markers[0]]
            assert marker.sequence == events[markers[0] - 1].sequence >= killed_at
            assert marker.data["lostUpTo"] > marker.sequence
            assert events[markers[0] + 1].sequence > marker.sequence
            assert any(e.sequence > marker.data["lostUpTo"] for e in events), "after the restart"
            await assert_stream_is_the_history(client, events, ids)
    finally:
        server.stop()
