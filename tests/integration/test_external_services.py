"""External services end to end: a real coordinator (SQLite store, a secrets file), the
SDK client, and a real HTTP service on a loopback port. Registered services survive a
restart; their credentials come from the secret named, at each call, and never reach
the store; the breaker's changes are events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agent_sdk import (
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from coordinator.server import Coordinator
from tests.conftest import fast_settings, serving_coordinator, sqlite_with_secrets, stored_bytes
from tests.upstream import TOKEN, Upstream, ok_json, upstream

__all__ = ["upstream"]


@pytest.fixture
def settings_kw(tmp_path: Path) -> dict[str, str]:
    return sqlite_with_secrets(tmp_path, **{"github-token": TOKEN})


@pytest.fixture
async def coordinator(settings_kw: dict[str, str]) -> AsyncIterator[Coordinator]:
    async with serving_coordinator(**settings_kw) as c:
        yield c


async def register(client: Client, upstream: Upstream, **policies: Any) -> str:
    return await client.register_external_service(
        "github",
        upstream.url,
        headers={"Accept": "application/json"},
        operations={"repo": ("GET", "/repos/{owner}/{repo}"), "open-issue": "POST /issues"},
        auth_secret_ref="github-token",
        **policies,
    )


async def test_register_call_list_get_delete(coordinator: Coordinator, upstream: Upstream) -> None:
    async with Client(coordinator.address, timeout=10) as client:
        assert await register(client, upstream, cache_ttl_ms=60_000) == "github"
        result = await client.call_external_service("github", "repo", {"owner": "o", "repo": "r"})
        assert result.http_status == 200 and not result.cached and result.attempts == 1
        assert result.value == {"path": "/repos/o/r", "query": {}}
        seen = upstream.seen[0]
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["Accept"] == "application/json"
        again = await client.call_external_service("github", "repo", {"owner": "o", "repo": "r"})
        assert again.cached and again.attempts == 0 and len(upstream.seen) == 1
        await client.call_external_service("github", "open-issue", {"title": "t"})
        assert upstream.seen[-1].body == b'{"title":"t"}'

        [listed] = await client.list_external_services()
        assert listed.name == "github" and listed.base_url == upstream.url
        assert listed.operations == {
            "repo": ("GET", "/repos/{owner}/{repo}"),
            "open-issue": ("POST", "/issues"),
        }
        assert (
            listed.auth_secret_ref == "github-token" and listed.policies["cache_ttl_ms"] == 60_000
        )
        got = await client.get_external_service("github")
        assert (got.breaker, got.calls, got.cache_hits, got.cache_misses) == ("closed", 2, 1, 1)

        await client.delete_external_service("github")
        assert await client.list_external_services() == []
        with pytest.raises(NotFoundError, match="no external service 'github'"):
            await client.call_external_service("github", "repo", {"owner": "o", "repo": "r"})
        with pytest.raises(NotFoundError):
            await client.delete_external_service("github")


async def test_bad_requests_and_failing_services_get_precise_errors(
    coordinator: Coordinator, upstream: Upstream
) -> None:
    async with Client(coordinator.address, timeout=10) as client:
        with pytest.raises(InvalidArgumentError, match="must be an http:// or https:// URL"):
            await client.register_external_service("bad", "ftp://x")
        with pytest.raises(InvalidArgumentError, match="carries credentials"):
            await client.register_external_service(
                "bad", upstream.url, headers={"Authorization": TOKEN}
            )
        with pytest.raises(InvalidArgumentError, match="unknown service policies"):
            await client.register_external_service("bad", upstream.url, retries=3)
        await register(client, upstream, max_attempts=1)
        with pytest.raises(InvalidArgumentError, match="needs param 'repo'"):
            await client.call_external_service("github", "repo", {"owner": "o"})
        with pytest.raises(InvalidArgumentError, match="neither a declared operation"):
            await client.call_external_service("github", "nope")
        with pytest.raises(InvalidArgumentError, match="service_id is required"):
            await client.call_external_service("", "GET /x")
        upstream.script = [lambda r: web.Response(status=404, text="no such repo")]
        with pytest.raises(FailedPreconditionError, match="answered 404 Not Found: no such repo"):
            await client.call_external_service("github", "GET /repos/x")
        upstream.script = [lambda r: web.Response(status=503, text="down")]
        with pytest.raises(UnavailableError, match="answered 503") as failed:
            await client.call_external_service("github", "GET /repos/x")
        assert TOKEN not in str(failed.value)


async def test_services_survive_a_restart_and_the_secret_never_reaches_the_store(
    settings_kw: dict[str, str], upstream: Upstream, tmp_path: Path
) -> None:
    first = Coordinator(fast_settings(**settings_kw))
    await first.start()
    try:
        async with Client(first.address, timeout=10) as client:
            await register(client, upstream)
            await client.call_external_service("github", "repo", {"owner": "o", "repo": "r"})
    finally:
        await first.stop(grace=1.0)
    again = Coordinator(fast_settings(**settings_kw))
    await again.start()
    try:
        async with Client(again.address, timeout=10) as client:
            [service] = await client.list_external_services()
            assert service.name == "github" and service.calls == 0  # state starts afresh
            result = await client.call_external_service(
                "github", "repo", {"owner": "a", "repo": "b"}
            )
            assert result.http_status == 200
    finally:
        await again.stop(grace=1.0)
    assert upstream.seen[-1].headers["Authorization"] == f"Bearer {TOKEN}"
    stored = stored_bytes(tmp_path)
    assert b"github-token" in stored  # the reference is stored...
    assert TOKEN.encode() not in stored  # ...never the secret


async def test_breaker_changes_are_events(coordinator: Coordinator, upstream: Upstream) -> None:
    upstream.script = [lambda r: web.Response(status=500)] * 2 + [ok_json]
    async with Client(coordinator.address, timeout=10) as client:
        await register(client, upstream, max_attempts=1, breaker_failures=2, breaker_open_ms=1)
        async with client.subscribe_to_events(types=["service.breaker"]) as stream:
            for _ in range(2):
                with pytest.raises(UnavailableError, match="answered 500"):
                    await client.call_external_service("github", "GET /x")
            opened = await asyncio.wait_for(stream.__anext__(), 10)
            assert opened.type == "service.breaker"
            assert opened.data == {"service": "github", "from": "closed", "to": "open"}
            assert opened.namespace == "default"
            # breaker_open_ms=1: the next call is the probe, and it succeeds
            assert (await client.call_external_service("github", "GET /x")).http_status == 200
            changes = [await asyncio.wait_for(stream.__anext__(), 10) for _ in range(2)]
            assert [(e.data["from"], e.data["to"]) for e in changes] == [
                ("open", "half-open"),
                ("half-open", "closed"),
            ]


async def test_the_cli_registers_lists_calls_and_deletes(
    coordinator: Coordinator, upstream: Upstream
) -> None:
    from tests.integration.test_cli import aam, shown

    c = ("-c", coordinator.address)
    r = await aam(
        "service", "register", "github", upstream.url, *c,
        "--operation", "repo=GET /repos/{owner}/{repo}",
        "--header", "Accept=application/json",
        "--auth-secret-ref", "github-token",
        "--policy", "cache_ttl_ms=60000",
    )  # fmt: skip
    assert r.returncode == 0 and r.stdout == "registered service github\n", shown(r)
    r = await aam("service", "list", *c)
    assert r.returncode == 0 and "github" in r.stdout and "closed" in r.stdout, shown(r)
    r = await aam("service", "call", "github", "repo", *c, "--params", '{"owner":"o","repo":"r"}')
    assert r.returncode == 0, shown(r)
    assert json.loads(r.stdout) == {"path": "/repos/o/r", "query": {}}
    assert "HTTP 200 (1 attempt(s))" in r.stderr
    assert upstream.seen[-1].headers["Authorization"] == f"Bearer {TOKEN}"
    r = await aam("service", "show", "github", *c)
    assert r.returncode == 0 and json.loads(r.stdout)["calls"] == 1, shown(r)
    r = await aam("service", "register", "x", upstream.url, *c, "--policy", "retries=3")
    assert r.returncode == 2 and "--policy retries: not one of" in r.stderr, shown(r)
    r = await aam("service", "delete", "github", *c)
    assert r.returncode == 0 and r.stdout == "deleted service github\n", shown(r)
    r = await aam("service", "call", "github", "repo", *c)
    assert r.returncode != 0 and "no external service 'github'" in r.stderr, shown(r)


async def test_a_services_rate_limit_holds_over_five_seconds(
    coordinator: Coordinator, upstream: Upstream
) -> None:
    """101 calls at once to a service limited to 20/s: they are spread, never refused,
    and never more than 10 % over the rate (a loaded machine may run it slower)."""
    async with Client(coordinator.address, timeout=30) as client:
        await register(client, upstream, rate_limit_per_second=20, timeout_ms=20_000)
        results = await asyncio.gather(
            *(client.call_external_service("github", "GET /rate/{i}", {"i": i}) for i in range(101))
        )
    assert {r.http_status for r in results} == {200}
    arrivals = sorted(s.at for s in upstream.seen)
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert 14 <= rate <= 22, f"{rate:.2f}/s"
    busiest = max(sum(1 for t in arrivals if a <= t < a + 1.0) for a in arrivals)
    assert busiest <= 21, f"{busiest} calls within one second"
