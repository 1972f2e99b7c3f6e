"""External service calls against a real HTTP server on a loopback port (aiohttp): the
request built from the operation, credentials from the secret provider (and never in an
error), retries on 429/5xx honouring Retry-After, no retry of a POST that reached the
service, refusals, timeouts, the circuit breaker and the cache. Time-driven policies read
a fake clock."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from coordinator.errors import InvalidArgument, NotFound, ServiceRefused, ServiceUnavailable
from coordinator.integrations import ServiceClient, ServiceConfig, TokenBucket
from coordinator.secrets import SecretProvider
from tests.upstream import TOKEN, Upstream, ok_json, upstream

__all__ = ["upstream"]


def service(url: str, **extra: Any) -> ServiceConfig:
    return ServiceConfig.parse({"name": "github", "base_url": url, **extra})


SECRETS = SecretProvider(environ={"AGENTMESH_SECRET_GITHUB_TOKEN": TOKEN})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def make(upstream: Upstream) -> AsyncIterator[Callable[..., ServiceClient]]:
    clients: list[ServiceClient] = []

    def build(config: ServiceConfig | None = None, **kw: Any) -> ServiceClient:
        client = ServiceClient(config or service(upstream.url), SECRETS.get, **kw)
        clients.append(client)
        return client

    yield build
    for c in clients:
        await c.close()


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"name": "Bad Name"}, "service name 'Bad Name'"),
        ({"base_url": "ftp://x"}, "must be an http:// or https:// URL"),
        ({"base_url": "https://u:p@x"}, "must not carry a query, a fragment or credentials"),
        ({"headers": {"Authorization": "Bearer x"}}, "carries credentials"),
        ({"headers": {"bad header": "x"}}, "header name 'bad header' is not valid"),
        ({"auth_scheme": "basic"}, "auth_scheme needs auth_secret_ref"),
        ({"auth_secret_ref": "t", "auth_scheme": "digest"}, "must be bearer, basic or header"),
        ({"operations": {"x": {"method": "BREW", "path": "/"}}}, "method 'BREW' is not one of"),
        ({"operations": {"x": {"path": "repos"}}}, "must start with '/'"),
        ({"timeout_ms": 10**9}, "timeout_ms must be within"),
        ({"max_attempts": "3"}, "max_attempts must be a number"),
    ],
)
def test_bad_configurations_name_the_field(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace("?", r"\?")):
        ServiceConfig.parse({"name": "github", "base_url": "https://api.example", **extra})


def test_the_stored_form_reads_back_the_same() -> None:
    config = service(
        "https://api.example/v3/",
        headers={"Accept": "application/json"},
        auth_secret_ref="github-token",
        auth_scheme="header:X-Api-Key",
        operations={"repo": {"method": "get", "path": "/repos/{owner}/{repo}"}},
        timeout_ms=2500,
        rate_limit_per_second=5,
        rate_limit_burst=10,
        cache_ttl_ms=60_000,
    )
    assert config.base_url == "https://api.example/v3"
    assert ServiceConfig.parse(config.to_data()) == config
    assert config.resolve("repo").placeholders == ("owner", "repo")
    assert config.resolve("POST /issues").method == "POST"
    with pytest.raises(InvalidArgument, match=r"neither a declared operation \(repo\)"):
        config.resolve("nope")


# -- calls -----------------------------------------------------------------------------


async def test_a_get_fills_the_path_and_sends_the_rest_as_query(
    upstream: Upstream, make: Callable[..., ServiceClient]
) -> None:
    client = make(service(upstream.url, operations={"repo": {"path": "/repos/{owner}/{repo}"}}))
    result = await client.call("repo", {"owner": "a b", "repo": "x/y", "page": 2, "all": True})
    assert result.status == 200 and not result.cached and result.attempts == 1
    assert upstream.seen[0].path == "/repos/a b/x/y"  # decoded by the server: sent encoded
    assert upstream.seen[0].query == {"page": "2", "all": "true"}
    assert result.value == {"path": "/repos/a b/x/y", "query": {"page": "2", "all": "true"}}
    with pytest.raises(InvalidArgument, match="needs param 'repo'"):
        await client.call("repo", {"owner": "a"})


async def test_a_post_sends_json_and_the_secret_as_the_scheme_says(
    upstream: Upstream, make: Callable[..., ServiceClient]
) -> None:
    for scheme, header, expected in [
        ("bearer", "Authorization", f"Bearer {TOKEN}"),
        ("basic", "Authorization", "Basic " + base64.b64encode(TOKEN.encode()).decode()),
        ("header:X-Api-Key", "X-Api-Key", TOKEN),
    ]:
        config = service(upstream.url, auth_secret_ref="github-token", auth_scheme=scheme)
        await make(config).call("POST /issues", {"title": "t", "labels": ["bug"]})
        seen = upstream.seen[-1]
        assert seen.method == "POST" and seen.headers[header] == expected
        assert seen.body == b'{"title":"t","labels":["bug"]}'


async def test_a_missing_secret_is_named_and_nothing_is_sent(
    upstream: Upstream, make: Callable[..., ServiceClient]
) -> None:
    client = make(service(upstream.url, auth_secret_ref="absent"))
    with pytest.raises(NotFound, match="secret 'absent' is not defined"):
        await client.call("GET /x", {})
    assert upstream.seen == []


async def test_5xx_and_429_are_retried_honouring_retry_after(
    upstream: Upstream, make: Callable[..., ServiceClient]
) -> None:
    upstream.script = [
        lambda r: web.Response(status=503, text="busy"),
        lambda r: web.Response(status=429, headers={"Retry-After": "0.3"}),
        ok_json,
    ]
    client = make(service(upstream.url, backoff_ms=10))
    result = await client.call("GET /x", {})
    assert result.status == 200 and result.attempts == 3
    gaps = [b.at - a.at for a, b in zip(upstream.seen, upstream.seen[1:], strict=False)]
    assert gaps[1] >= 0.28, gaps  # waited for Retry-After, not the 20 ms backoff


async def test_a_post_that_reached_the_service_is_not_retried(
    upstream: Upstream, make: Callable[..., ServiceClient]
) -> None:
    upstream.script = [lambda r: web.Response(status=502, text="bad gateway")]
    client = make(service(upstream.url, backoff_ms=1))
    with pytest.raises(ServiceUnavailable, match="answered 502 Bad Gateway: bad gateway") as e:
        await client.call("POST /charge", {"amount": 1})
    assert e.value.status == 502 and len(upstream.seen) == 1


async def test_a_4xx_is_refused_at_once_and_never_quotes_the_secret(
    upstream: Upstream, make: Callable[..., ServiceClient]
) -> None:
    upstream.script = [lambda r: web.Response(status=404, text="no such repo")]
    client = make(service(upstream.url, auth_secret_ref="github-token"))
    with pytest.raises(ServiceRefused, match="answered 404 Not Found: no such repo") as e:
        await client.call("GET /repos/x", {})
    assert e.value.status == 404 and len(upstream.seen) == 1
    assert TOKEN not in str(e.value)
    assert client.breaker.state == "closed"  # it answered: no strike


async def test_a_slow_service_times_out_within_the_call_deadline(
    upstream: Upstream, make: Callable[..., ServiceClient]
) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(text="late")

    upstream.script = [slow]
    client = make(service(upstream.url, max_attempts=1))
    try:
        with pytest.raises(ServiceUnavailable, match="timed out"):
            await client.call("GET /slow", {}, timeout_ms=200)
    finally:
        release.set()


async def test_the_breaker_opens_refuses_then_lets_one_probe_close_it(
    upstream: Upstream, make: Callable[..., ServiceClient]
) -> None:
    clock = FakeClock()
    changes: list[tuple[str, str, str]] = []
    upstream.script = [lambda r: web.Response(status=500)] * 3 + [ok_json]
    config = service(upstream.url, max_attempts=1, breaker_failures=3, breaker_open_ms=5000)
    client = make(config, clock=clock, on_breaker=lambda *c: changes.append(c))
    for _ in range(3):
        with pytest.raises(ServiceUnavailable, match="answered 500"):
            await client.call("GET /x", {})
    assert client.breaker.state == "open" and changes == [("github", "closed", "open")]
    with pytest.raises(ServiceUnavailable, match="circuit breaker open") as refused:
        await client.call("GET /x", {})
    assert len(upstream.seen) == 3 and refused.value.retry_after == 5.0
    clock.now += 5.0
    assert client.breaker.state == "half-open"
    assert (await client.call("GET /x", {})).status == 200  # the probe
    assert client.breaker.state == "closed"
    assert changes[1:] == [("github", "open", "half-open"), ("github", "half-open", "closed")]


async def test_idempotent_answers_are_cached_as_cache_control_allows(
    upstream: Upstream, make: Callable[..., ServiceClient]
) -> None:
    clock = FakeClock()
    client = make(service(upstream.url, cache_ttl_ms=60_000), clock=clock)
    first = await client.call("GET /a", {"q": 1})
    again = await client.call("GET /a", {"q": 1})
    assert (first.cached, again.cached) == (False, True) and again.value == first.value
    await client.call("GET /a", {"q": 2})  # other params: another key
    assert len(upstream.seen) == 2
    clock.now += 61
    assert not (await client.call("GET /a", {"q": 1})).cached  # expired
    upstream.script = [lambda r: web.json_response({}, headers={"Cache-Control": "no-store"})]
    await client.call("GET /b", {})
    await client.call("GET /b", {})
    await client.call("POST /a", {"q": 1})  # never cached
    assert len(upstream.seen) == 6
    assert client.cache is not None and (client.cache.hits, client.cache.misses) == (1, 5)


async def test_the_token_bucket_saves_a_burst_and_refuses_past_the_wait() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, burst=3, clock=clock)
    assert [await bucket.take(0) for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back at 2/s
    assert await bucket.take(0) is True
    assert await bucket.take(0.1) is False  # the next is 0.5 s away
