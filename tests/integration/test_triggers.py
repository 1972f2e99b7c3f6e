"""Executions started by triggers, on a real coordinator (SQLite store): an event trigger
with a filter and an input mapping, started once per event id (by TriggerEvent and by a
signed inbound POST); a cron schedule that fires, and after a restart applies its missed-run
policy; and definitions whose triggers are wrong, refused with the field named."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_sdk import Client, InvalidArgumentError, sign_event
from coordinator.server import Coordinator
from tests.conftest import eventually, fast_settings, serving_coordinator, sqlite_with_secrets

KEY = "inbound-signing-key-for-triggers"


@pytest.fixture
def settings_kw(tmp_path: Path) -> dict[str, Any]:
    return {
        **sqlite_with_secrets(tmp_path, **{"inbound-events": KEY}),
        "http_listen": "127.0.0.1:0",
    }


@pytest.fixture
async def coordinator(settings_kw: dict[str, Any]) -> AsyncIterator[Coordinator]:
    async with serving_coordinator(**settings_kw) as c:
        yield c


def on_push() -> dict[str, Any]:
    """Started by each push to main, with the commit as input."""
    trigger = {
        "event": "push",
        "filter": "$.payload.ref == 'main'",
        "input": {"sha": "$.payload.sha", "eventId": "$.event.id"},
    }
    step = {"id": "note", "type": "wait", "wait": {"durationMs": 1}}
    return {"name": "on-push", "triggers": [trigger], "steps": [step]}


async def executions(client: Client, workflow: str) -> list[Any]:
    return [e for e in await client.list_executions() if e.workflow_name == workflow]


async def test_an_event_starts_matching_triggers_once_per_event_id(
    coordinator: Coordinator,
) -> None:
    async with Client(coordinator.address, timeout=10) as client:
        await client.define_workflow("on-push", on_push())
        first = await client.trigger_event("push", {"ref": "main", "sha": "a1"}, event_id="d-1")
        assert first.delivered == 0 and len(first.started) == 1 and first.refused == []
        again = await client.trigger_event("push", {"ref": "main", "sha": "a1"}, event_id="d-1")
        assert again.started == first.started  # the sender's retry starts nothing more
        other = await client.trigger_event("push", {"ref": "dev", "sha": "b2"}, event_id="d-2")
        assert other.started == []  # the filter
        done = await client.wait_execution(first.started[0], timeout=10)
        assert done.status == "completed"
        assert done.input == {"sha": "a1", "eventId": "d-1"}

        body = json.dumps({"ref": "main", "sha": "c3"}).encode()
        headers = {"AgentMesh-Signature": sign_event(KEY, body), "X-GitHub-Delivery": "gh-9"}
        assert coordinator.http is not None
        async with httpx.AsyncClient(base_url=coordinator.http.url) as http:
            for _ in range(2):  # GitHub redelivers: still one execution
                answer = await http.post("/v1/events/push", content=body, headers=headers)
                assert answer.status_code == 202, answer.text
        [inbound] = answer.json()["started"]
        done = await client.wait_execution(inbound, timeout=10)
        assert done.input == {"sha": "c3", "eventId": "gh-9"}
        assert len(await executions(client, "on-push")) == 2

        # a trigger whose input fails the workflow's schema is reported, not raised
        strict = {**on_push(), "input": {"type": "object", "required": ["sha"]}}
        strict["triggers"] = [{"event": "push", "input": {"nope": 1}}]
        await client.define_workflow("on-push", strict)
        refused = await client.trigger_event("push", {"ref": "main"}, event_id="d-3")
        assert refused.started == [] and refused.refused[0].startswith("on-push: ")


async def scheduled_times(client: Client) -> list[datetime]:
    """The scheduled time of every execution of ``tick`` (its input), sorted."""
    found = [await client.get_execution_status(e.id) for e in await executions(client, "tick")]
    return sorted(datetime.fromisoformat(e.input["at"]) for e in found)


async def test_a_cron_schedule_fires_and_catches_up_after_a_restart(
    settings_kw: dict[str, Any],
) -> None:
    """Every second, ``missed: all``: after a downtime, each second missed is run once, and
    no scheduled time runs twice."""
    every_second = {
        "name": "tick",
        "triggers": [{"cron": "* * * * * *", "missed": "all", "input": {"at": "$.event.id"}}],
        "steps": [{"id": "t", "type": "wait", "wait": {"durationMs": 1}}],
    }
    first = Coordinator(fast_settings(**settings_kw))
    await first.start()
    try:
        async with Client(first.address, timeout=10) as client:
            await client.define_workflow("tick", every_second)

            async def ticked() -> bool:
                return len(await executions(client, "tick")) >= 2

            await eventually(ticked, timeout=10)
    finally:
        await first.stop(grace=1.0)
    await asyncio.sleep(2.5)  # the downtime: the schedule misses two or three seconds
    restarted = datetime.now(UTC).replace(microsecond=0)
    second = Coordinator(fast_settings(**settings_kw))
    await second.start()
    try:
        async with Client(second.address, timeout=10) as client:

            async def caught_up() -> bool:
                times = await scheduled_times(client)
                return bool(times) and times[-1] > restarted

            await eventually(caught_up, timeout=10)
            times = await scheduled_times(client)
    finally:
        await second.stop(grace=1.0)
    assert len(times) == len(set(times))  # one execution per scheduled time
    steps = {b - a for a, b in itertools.pairwise(times)}
    assert steps == {timedelta(seconds=1)}, times  # none missed, the downtime's included


async def test_bad_triggers_are_refused_with_the_field_named(coordinator: Coordinator) -> None:
    step = [{"id": "t", "type": "wait", "wait": {"durationMs": 1}}]
    cases = [
        ([{"cron": "61 * * * *"}], "triggers[0].cron: cron '61 * * * *': minute '61'"),
        ([{"event": "a", "cron": "@daily"}], "exactly one of 'event'"),
        ([{}], "exactly one of 'event'"),
        ([{"event": "a", "filter": "$.payload.("}], "triggers[0].filter: not an expression"),
        ([{"event": "a", "missed": "all"}], "only a cron trigger takes 'missed'"),
        ([{"cron": "@daily", "missed": "some"}], "must be one of skip, once, all"),
        ([{"evnt": "a"}], "unknown field 'evnt'"),
    ]
    async with Client(coordinator.address, timeout=10) as client:
        for triggers, error in cases:
            with pytest.raises(InvalidArgumentError, match=re.escape(error)):
                await client.define_workflow("bad", {"triggers": triggers, "steps": step})


async def test_list_triggers_and_the_cli(coordinator: Coordinator) -> None:
    from tests.integration.test_cli import aam, shown

    nightly = {
        "name": "nightly",
        "triggers": [{"cron": "0 3 * * *", "missed": "skip"}, {"event": "deploy"}],
        "steps": [{"id": "t", "type": "wait", "wait": {"durationMs": 1}}],
    }
    async with Client(coordinator.address, timeout=10) as client:
        await client.define_workflow("nightly", nightly)
        await client.define_workflow("on-push", on_push())
        listed = await client.list_triggers()
        assert [(t.workflow, t.index, t.event, t.cron) for t in listed] == [
            ("nightly", 0, "", "0 3 * * *"),
            ("nightly", 1, "deploy", ""),
            ("on-push", 0, "push", ""),
        ]
        cron = listed[0]
        assert cron.missed == "skip" and cron.next_fire is not None
        assert (cron.next_fire.hour, cron.next_fire.minute) == (3, 0)
        await client.delete_workflow("nightly")
        assert [t.workflow for t in await client.list_triggers()] == ["on-push"]
    c = ("-c", coordinator.address)
    r = await aam("trigger", "list", *c)
    assert r.returncode == 0 and "event push if $.payload.ref == 'main'" in r.stdout, shown(r)
    payload = '{"ref": "main", "sha": "d4"}'
    r = await aam("trigger", "fire", "push", *c, "--payload", payload, "--id", "cli-1")
    assert r.returncode == 0 and "started " in r.stdout, shown(r)
    started = r.stdout.split("started ")[1].strip()
    r = await aam("event", "push", *c, "--payload", payload, "--id", "cli-1")
    assert r.returncode == 0 and r.stdout.endswith(f"started {started}\n"), shown(r)
