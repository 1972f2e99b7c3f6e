"""Live SSE subscribers share upstream subscriptions (``server.fanout``), on a real
coordinator: one call per distinct credentials and filter, every subscriber gets every
event, each is checked on its own (a bad token is refused while a good one's upstream is
open, a viewer's namespace is its own), the hub's own ``max_subscribers``, and a
subscriber that falls behind ends with ``resource_exhausted`` naming its last event."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_sdk import Client
from coordinator.server.fanout import Subscriber
from tests.conftest import eventually, serving_coordinator
from tests.integration.test_authorization import PRINCIPALS, tokens_yaml
from tests.integration.test_http_api import sse_messages

GATE = {"name": "gate", "steps": [{"id": "hold", "type": "wait", "wait": {"durationMs": 1}}]}


@contextlib.asynccontextmanager
async def follow(
    http: httpx.AsyncClient, params: dict[str, str] | None = None, headers: Any = None
) -> AsyncIterator[tuple[list[str], asyncio.Task[None]]]:
    """A live subscriber: yields once subscribed (its head comment read), with the text
    it has read so far (growing) and its reading task."""
    text: list[str] = []
    subscribed = asyncio.Event()

    async def read() -> None:
        async with http.stream("GET", "/v1/events", params=params, headers=headers) as r:
            assert r.status_code == 200, await r.aread()
            async for chunk in r.aiter_text():
                text.append(chunk)
                if ": head " in "".join(text):
                    subscribed.set()

    task = asyncio.create_task(read())
    done, _ = await asyncio.wait(
        [task, asyncio.ensure_future(subscribed.wait())], return_when=asyncio.FIRST_COMPLETED
    )
    if task in done:
        task.result()  # raises what went wrong
    try:
        yield text, task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def completed(text: list[str]) -> list[str]:
    return [
        m["data"] for m in sse_messages("".join(text)) if "execution.completed" in m.get("data", "")
    ]


async def test_live_subscribers_with_one_filter_share_one_upstream() -> None:
    async with serving_coordinator() as c:
        assert c.http is not None and c.term is not None
        log = c.term.log
        before = log.subscribers
        async with (
            Client(c.address, timeout=10) as client,
            httpx.AsyncClient(base_url=c.http.url, timeout=10) as http,
        ):
            await client.define_workflow("gate", GATE)
            types = {"types": "execution.*"}
            async with (
                follow(http, types) as (a, _),
                follow(http, types) as (b, _),
                follow(http, {"types": "step.*"}) as (other, _),
            ):
                # Two upstreams (one per filter), however many browsers.
                await eventually(lambda: log.subscribers == before + 2)
                started = [(await client.start_workflow("gate", {"n": i})).id for i in range(3)]
                for e in started:
                    await client.wait_execution(e, timeout=10)
                await eventually(lambda: len(completed(a)) == 3 and len(completed(b)) == 3)
                assert completed(a) == completed(b)  # the same frames, in order
                assert all(i in "".join(completed(a)) for i in started)
                await eventually(lambda: "step.completed" in "".join(other))
                assert not completed(other)
            # The last one out closed each upstream.
            await eventually(lambda: log.subscribers == before)


async def test_each_subscriber_is_checked_and_counted_on_its_own(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(tokens_yaml())
    async with serving_coordinator(auth_tokens_file=str(tokens), max_subscribers=3) as c:
        assert c.http is not None
        async with httpx.AsyncClient(base_url=c.http.url, timeout=10) as http:
            viewer = {"Authorization": f"Bearer {PRINCIPALS['viewer']}"}
            async with follow(http, headers=viewer), follow(http, headers=viewer):
                # An upstream for the viewer's credentials is open: others are still checked.
                r = await http.get("/v1/events")
                assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")
                r = await http.get(
                    "/v1/events", headers={"Authorization": "Bearer wrong-token-0000"}
                )
                assert r.status_code == 401
                r = await http.get("/v1/events", params={"execution": "nope"}, headers=viewer)
                assert (r.status_code, r.json()["code"]) == (404, "not_found")
                async with follow(http, headers=viewer):
                    # max_subscribers counts browsers, not upstreams.
                    r = await http.get("/v1/events", headers=viewer)
                    assert (r.status_code, r.json()["code"]) == (429, "resource_exhausted")
                    assert "max_subscribers 3" in r.json()["message"]


def frame(sequence: int) -> bytes:
    return f'id: {sequence}\ndata: {{"sequence": "{sequence}"}}\n\n'.encode()


async def test_a_subscriber_that_falls_behind_is_ended_naming_its_last_event() -> None:
    sub = Subscriber(buffer=10)
    sub.push([frame(1), frame(2)])
    assert await sub.next(1.0) == frame(1) + frame(2)
    assert await sub.next(0.01) == b""  # nothing: time for a keepalive
    sub.push([frame(i) for i in range(3, 10)])
    sub.push([frame(i) for i in range(10, 15)])  # 12 queued > 10: it fell behind
    assert await sub.next(1.0) is None  # what was queued is dropped; it ends
    assert sub.end is not None and sub.end["code"] == "resource_exhausted"
    assert "resume with Last-Event-ID: 2" in sub.end["message"]
    sub.push([frame(99)])  # ended: nothing more is queued
    assert await sub.next(0.01) is None


@pytest.mark.parametrize("stop", ["finish", "push"])
async def test_a_waiting_subscriber_wakes_for_frames_and_for_its_end(stop: str) -> None:
    sub = Subscriber(buffer=10)
    waiting = asyncio.create_task(sub.next(5.0))
    await asyncio.sleep(0)
    if stop == "finish":
        sub.finish({"code": "unavailable", "message": "the coordinator is stopping"})
        assert await waiting is None and sub.end == {
            "code": "unavailable",
            "message": "the coordinator is stopping",
        }
    else:
        sub.push([frame(7)])
        assert await waiting == frame(7)
