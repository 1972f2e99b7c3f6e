"""Inbound events: a signed ``POST /v1/events/{event}`` on the coordinator's HTTP listener
wakes the event steps waiting for it, in the namespace whose secret signed it; unsigned,
badly signed, stale or misdirected requests get 401 and change nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agent_sdk import Client, sign_event
from coordinator.server import Coordinator
from tests.conftest import eventually, serving_coordinator, sqlite_with_secrets

KEY = "inbound-signing-key-for-default"
TEAM_KEY = "inbound-signing-key-for-team-a"


@pytest.fixture
async def coordinator(tmp_path: Path) -> AsyncIterator[Coordinator]:
    keys = {"inbound-events": KEY, "inbound-events.team-a": TEAM_KEY}
    async with serving_coordinator(**sqlite_with_secrets(tmp_path, **keys)) as c:
        yield c


def deploy_gate() -> dict[str, object]:
    """A workflow that waits for the ``deployed`` event of its commit."""
    wait = {"name": "deployed", "correlationKey": "$.input.sha", "timeoutMs": 30_000}
    step = {"id": "gate", "type": "event", "event": wait, "output": {"env": "$.output.env"}}
    return {"name": "gate", "steps": [step]}


async def waiting(client: Client, execution_id: str) -> None:
    """Until the execution's event step is under way (its wait is then registered)."""

    async def at_gate() -> bool:
        status = await client.get_execution_status(execution_id)
        return [s.step_id for s in status.current_steps] == ["gate"]

    await eventually(at_gate)


async def post(
    c: Coordinator, path: str, body: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    assert c.http is not None
    async with httpx.AsyncClient(base_url=c.http.url) as http:
        return await http.post(path, content=body, headers=headers or {})


async def test_a_signed_request_wakes_the_waiting_step(coordinator: Coordinator) -> None:
    async with Client(coordinator.address, timeout=10) as client:
        await client.define_workflow("gate", deploy_gate())
        started = await client.start_workflow("gate", {"sha": "abc123"})
        await waiting(client, started.id)

        body = json.dumps({"env": "prod"}).encode()
        wrong = sign_event("not-the-key-at-all-0000", body)
        stale = sign_event(KEY, body, now=time.time() - 3600)
        refused = [
            ({}, "missing AgentMesh-Signature header"),
            ({"AgentMesh-Signature": "v1=abc"}, "malformed AgentMesh-Signature header"),
            ({"AgentMesh-Signature": wrong}, "signature does not match"),
            ({"AgentMesh-Signature": stale}, "outside the 300 s replay window"),
        ]
        for headers, why in refused:
            answer = await post(
                coordinator, "/v1/events/deployed?correlation_key=abc123", body, headers
            )
            assert answer.status_code == 401 and why in answer.json()["error"], answer.text
        # the right key for another namespace does not sign this one's events
        answer = await post(
            coordinator,
            "/v1/events/deployed?correlation_key=abc123&namespace=team-a",
            body,
            {"AgentMesh-Signature": sign_event(KEY, body)},
        )
        assert answer.status_code == 401
        assert (await client.get_execution_status(started.id)).status == "running"

        good = {"AgentMesh-Signature": sign_event(KEY, body)}
        answer = await post(coordinator, "/v1/events/deployed?correlation_key=abc123", body, good)
        assert answer.status_code == 202 and answer.json() == {"delivered": 1, "started": []}
        done = await client.wait_execution(started.id, timeout=10)
        assert done.status == "completed" and done.variables == {"env": "prod"}


async def test_github_signatures_and_bad_bodies(coordinator: Coordinator) -> None:
    async with Client(coordinator.address, timeout=10) as client:
        await client.define_workflow("gate", deploy_gate())
        started = await client.start_workflow("gate", {"sha": "f00d"})
        await waiting(client, started.id)
        body = json.dumps({"env": "staging", "ref": "main"}).encode()
        digest = hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
        bad = {"X-Hub-Signature-256": "sha256=" + "0" * 64}
        answer = await post(coordinator, "/v1/events/deployed?correlation_key=f00d", body, bad)
        assert answer.status_code == 401
        github = {"X-Hub-Signature-256": f"sha256={digest}"}
        answer = await post(coordinator, "/v1/events/deployed?correlation_key=f00d", body, github)
        assert answer.status_code == 202 and answer.json() == {"delivered": 1, "started": []}
        done = await client.wait_execution(started.id, timeout=10)
        assert done.variables == {"env": "staging"}

    for raw, why in ((b"[1, 2]", "must be a JSON object"), (b"{nope", "is not JSON")):
        signed = {"AgentMesh-Signature": sign_event(KEY, raw)}
        answer = await post(coordinator, "/v1/events/deployed", raw, signed)
        assert answer.status_code == 400 and why in answer.json()["error"]
    empty = {"AgentMesh-Signature": sign_event(KEY, b"")}
    answer = await post(coordinator, "/v1/events/nobody-waits", b"", empty)
    assert answer.status_code == 202 and answer.json() == {"delivered": 0, "started": []}
    team = {"AgentMesh-Signature": sign_event(TEAM_KEY, b"{}")}
    answer = await post(coordinator, "/v1/events/x?namespace=team-a", b"{}", team)
    assert answer.status_code == 202
    assert (await post(coordinator, "/v1/events/x", b"{}", {})).status_code == 401
    too_big = b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    assert (await post(coordinator, "/v1/events/x", too_big, {})).status_code == 413
