"""docs/integrations.md's worked example, as written: a signed GitHub-style inbound event
starts the release-notes workflow (its definition read from the doc), whose service step
calls a local service shaped like api.github.com with the token from the coordinator's
secrets; the execution's result reaches a webhook receiver, signed. The redelivered event
starts nothing twice, and an event the filter refuses starts nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web

from agent_sdk import Client, verify_webhook
from coordinator.server import Coordinator
from tests.conftest import ROOT, eventually, serving_coordinator, sqlite_with_secrets
from tests.upstream import Upstream, serving, upstream

__all__ = ["upstream"]

GITHUB_TOKEN = "ghp-worked-example-token-000"
INBOUND = "worked-example-inbound-key-0001"
CHAT = "worked-example-chat-hook-key-02"


def documented_workflow() -> dict[str, Any]:
    doc = (ROOT / "docs" / "integrations.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- worked-example: workflow -->\n```yaml\n(.*?)```", doc, re.S)
    assert found, "docs/integrations.md lost its worked example"
    loaded: dict[str, Any] = yaml.safe_load(found.group(1))
    return loaded


@pytest.fixture
async def coordinator(tmp_path: Path) -> AsyncIterator[Coordinator]:
    keys = {"github-token": GITHUB_TOKEN, "inbound-events": INBOUND, "chat-hook-key": CHAT}
    async with serving_coordinator(**sqlite_with_secrets(tmp_path, **keys)) as c:
        yield c


@pytest.fixture
async def chat() -> AsyncIterator[Upstream]:
    """The chat bot's webhook receiver (a second local server)."""
    async with serving() as receiver:
        receiver.script = [lambda r: web.Response(status=204)]
        yield receiver


def github_repo(request: web.Request) -> web.StreamResponse:
    owner, repo = request.match_info["tail"].split("/")[1:3]
    body = {"full_name": f"{owner}/{repo}", "stargazers_count": 42}
    return web.json_response({**body, "description": "the agent mesh"})


def release(action: str) -> bytes:
    event = {
        "action": action,
        "release": {"tag_name": "v1.2.0"},
        "repository": {"name": "mesh", "owner": {"login": "acme"}},
    }
    return json.dumps(event).encode()


async def test_the_worked_example_runs_as_documented(
    coordinator: Coordinator, upstream: Upstream, chat: Upstream
) -> None:
    upstream.script = [github_repo]
    async with Client(coordinator.address, timeout=10) as client:
        await client.register_external_service(
            "github",
            upstream.url,
            operations={"repo": "GET /repos/{owner}/{repo}"},
            auth_secret_ref="github-token",
            headers={"Accept": "application/vnd.github+json"},
            cache_ttl_ms=60_000,
        )
        await client.register_webhook(
            "execution.completed", f"{chat.url}/hooks/mesh", secret_ref="chat-hook-key"
        )
        await client.define_workflow("release-notes", documented_workflow())

        assert coordinator.http is not None
        async with httpx.AsyncClient(base_url=coordinator.http.url) as http:

            async def github_sends(body: bytes, delivery: str) -> dict[str, Any]:
                digest = hmac.new(INBOUND.encode(), body, hashlib.sha256).hexdigest()
                headers = {
                    "X-Hub-Signature-256": f"sha256={digest}",
                    "X-GitHub-Delivery": delivery,
                    "Content-Type": "application/json",
                }
                answer = await http.post("/v1/events/github-release", content=body, headers=headers)
                assert answer.status_code == 202, answer.text
                got: dict[str, Any] = answer.json()
                return got

            first = await github_sends(release("published"), "d-1")
            again = await github_sends(release("published"), "d-1")  # GitHub redelivers
            other = await github_sends(release("edited"), "d-2")
        assert len(first["started"]) == 1 and again["started"] == first["started"]
        assert other["started"] == []
        done = await client.wait_execution(first["started"][0], timeout=10)
        assert done.status == "completed", done.error
        assert done.output == {"stars": 42, "note": "mesh v1.2.0 is out (the agent mesh)"}
        [call] = upstream.seen
        assert call.path == "/repos/acme/mesh"
        assert call.headers["Authorization"] == f"Bearer {GITHUB_TOKEN}"

        await eventually(lambda: chat.seen)
        [delivery] = chat.seen
        assert delivery.path == "/hooks/mesh"
        verify_webhook(delivery.headers["AgentMesh-Signature"], CHAT, delivery.body)
        event = json.loads(delivery.body)["event"]
        assert event["type"] == "execution.completed" and event["executionId"] == done.id
        assert event["data"]["output"] == done.output
