"""``service`` steps end to end: a real coordinator (SQLite store, a secrets file) runs a
workflow whose steps call a registered external service, a real HTTP server on a
loopback port. The step's input maps the params, the answer is its output, its retry
and onError apply as for tasks, a call in flight across a restart is made again, and the
service's credential reaches the service but never the store or the history."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agent_sdk import Client
from coordinator.server import Coordinator
from tests.conftest import fast_settings, serving_coordinator, sqlite_with_secrets, stored_bytes
from tests.upstream import TOKEN, Upstream, upstream

__all__ = ["upstream"]


@pytest.fixture
def settings_kw(tmp_path: Path) -> dict[str, str]:
    return sqlite_with_secrets(tmp_path, **{"github-token": TOKEN})


@pytest.fixture
async def coordinator(settings_kw: dict[str, str]) -> AsyncIterator[Coordinator]:
    async with serving_coordinator(**settings_kw) as c:
        yield c


def repo_report(**step: Any) -> dict[str, Any]:
    """A workflow: fetch a repository (a service step), then shape the report."""
    fetch = {
        "id": "fetch",
        "type": "service",
        "service": "github",
        "operation": "repo",
        "input": {"owner": "$.input.owner", "repo": "$.input.repo", "per_page": 5},
        "output": {"path": "$.output.path", "query": "$.output.query"},
        **step,
    }
    return {"name": "repo-report", "steps": [fetch]}


async def register(client: Client, upstream: Upstream, **policies: Any) -> None:
    await client.register_external_service(
        "github",
        upstream.url,
        operations={"repo": "GET /repos/{owner}/{repo}"},
        auth_secret_ref="github-token",
        **policies,
    )


async def test_a_service_step_calls_the_service_and_its_answer_is_the_output(
    coordinator: Coordinator,
    upstream: Upstream,
    settings_kw: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Client(coordinator.address, timeout=10) as client:
        await register(client, upstream)
        await client.define_workflow("repo-report", repo_report())
        started = await client.start_workflow("repo-report", {"owner": "acme", "repo": "mesh"})
        done = await client.wait_execution(started.id, timeout=10)
        assert done.status == "completed", done.error
        assert done.variables == {"path": "/repos/acme/mesh", "query": {"per_page": "5"}}
        [seen] = upstream.seen
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
        history = await client.get_execution_history(started.id)
        called = next(e for e in history if e.type == "service.called")
        assert called.step_id == "fetch" and called.data["service"] == "github"
        assert TOKEN not in json.dumps([e.data for e in history], default=str)
    assert TOKEN.encode() not in stored_bytes(Path(settings_kw["store_path"]).parent)
    assert caplog.records and TOKEN not in caplog.text  # nor in any log line, DEBUG included


async def test_retry_applies_to_retryable_failures_and_a_refusal_takes_on_error(
    coordinator: Coordinator, upstream: Upstream
) -> None:
    def down(request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="down")

    upstream.script = [down, down, lambda r: web.json_response({"ok": 1})]
    retry = {"maxAttempts": 3, "interval": 10}
    async with Client(coordinator.address, timeout=10) as client:
        await register(client, upstream, max_attempts=1)  # the service's own: no retry
        await client.define_workflow("repo-report", repo_report(retry=retry))
        started = await client.start_workflow("repo-report", {"owner": "a", "repo": "b"})
        done = await client.wait_execution(started.id, timeout=10)
        assert done.status == "completed" and len(upstream.seen) == 3
        assert done.metrics["retryCount"] == 2

        upstream.seen.clear()
        upstream.script = [lambda r: web.Response(status=404, text="no such repo")]
        routed = repo_report(onError="explain")
        routed["steps"][0]["next"] = "ok"
        routed["steps"] += [
            {"id": "explain", "type": "wait", "wait": {"durationMs": 1}},
            {"id": "ok", "type": "wait", "wait": {"durationMs": 1}},
        ]
        routed["steps"][1]["output"] = {"why": "$.error.type", "status": "$.error.details.status"}
        await client.define_workflow("repo-report", routed)
        started = await client.start_workflow("repo-report", {"owner": "a", "repo": "b"})
        done = await client.wait_execution(started.id, timeout=10)
        assert done.status == "completed", done.error
        assert len(upstream.seen) == 1  # not retryable: the default policy leaves it
        assert done.variables["why"] == "ServiceRefused" and done.variables["status"] == 404

        await client.define_workflow("bad-params", repo_report(input="$.input.list"))
        started = await client.start_workflow("bad-params", {"list": [1]})
        done = await client.wait_execution(started.id, timeout=10)
        assert done.status == "failed" and done.error is not None
        assert done.error.type == "ServiceParamsNotAnObject"
        await client.define_workflow("unknown", {**repo_report(service="nope"), "name": "unknown"})
        started = await client.start_workflow("unknown", {"owner": "a", "repo": "b"})
        done = await client.wait_execution(started.id, timeout=10)
        assert done.error is not None and done.error.type == "NotFound"
        assert "no external service 'nope'" in done.error.message


async def test_a_call_in_flight_at_a_restart_is_made_again_after_it(
    upstream: Upstream, settings_kw: dict[str, str]
) -> None:
    arrived, released = asyncio.Event(), asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await released.wait()  # answers only after the coordinator that asked stopped
        return web.json_response({"path": "too late"})

    upstream.script = [hang, lambda r: web.json_response({"path": r.path, "query": {}})]
    first = Coordinator(fast_settings(**settings_kw))
    await first.start()
    try:
        async with Client(first.address, timeout=10) as client:
            await register(client, upstream)
            await client.define_workflow("repo-report", repo_report())
            started = await client.start_workflow("repo-report", {"owner": "a", "repo": "b"})
            await asyncio.wait_for(arrived.wait(), 10)
    finally:
        await first.stop(grace=0.5)
        released.set()
    second = Coordinator(fast_settings(**settings_kw))
    await second.start()
    try:
        async with Client(second.address, timeout=10) as client:
            done = await client.wait_execution(started.id, timeout=10)
        assert done.status == "completed", done.error
        assert done.variables["path"] == "/repos/a/b" and len(upstream.seen) == 2
    finally:
        await second.stop(grace=1.0)
