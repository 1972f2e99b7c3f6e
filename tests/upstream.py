"""A real HTTP service on a loopback port (aiohttp) for the tests of what the coordinator
calls or delivers to: it records every request and answers from a script, so a test can
make it slow, fail, rate-limit or check signatures."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

#: The secret the tests' services expect as their credential.
TOKEN = "s3cret-api-token-value"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float


#: How the service answers one request: at once, or after awaiting something.
Answer = Callable[[web.Request], web.StreamResponse | Awaitable[web.StreamResponse]]


@dataclass
class Upstream:
    """The service: answers from ``script`` (one per request, the last repeats)."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)


def ok_json(request: web.Request) -> web.StreamResponse:
    return web.json_response({"path": request.path, "query": dict(request.query)})


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    """A service on a loopback port, answering ``ok_json`` until a test scripts it."""
    async with serving() as up:
        yield up


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[Upstream]:
    """An ``Upstream`` served for the block (for a test that needs more than one)."""
    up = Upstream(script=[ok_json])

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        up.seen.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                body,
                time.monotonic(),
            )
        )
        answer = up.script[min(len(up.seen), len(up.script)) - 1]
        result = answer(request)
        return await result if isinstance(result, Awaitable) else result

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    up.url = f"http://127.0.0.1:{port}"
    try:
        yield up
    finally:
        await runner.cleanup()
