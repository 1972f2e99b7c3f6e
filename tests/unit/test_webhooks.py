"""Webhook parts without a coordinator: signatures (made, checked, stale, rotated), event
patterns, the delivery record, and the outbox catching up, after a crash, on events that
were published but never stored (memory store, a real HTTP receiver)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from agentmesh import signing
from coordinator.domain import MeshEvent
from coordinator.errors import InvalidArgument
from coordinator.integrations.outbox import Outbox, Policy
from coordinator.integrations.webhooks import Delivery, WebhookConfig
from coordinator.secrets import Redactor
from coordinator.store import MemoryStore
from tests.conftest import eventually
from tests.upstream import Upstream, upstream

__all__ = ["upstream"]

KEY = "unit-signing-key-0123456789abcdef"
T = 1_764_770_000


def test_a_signature_checks_out_only_for_its_key_body_and_time() -> None:
    header = signing.sign(KEY, b'{"a":1}', T)
    assert header.startswith(f"t={T},v1=")
    assert signing.check(header, KEY, b'{"a":1}', T + 10) == ""
    assert signing.check(header, KEY, b'{"a":2}', T) == "signature does not match"
    assert signing.check(header, "other", b'{"a":1}', T) == "signature does not match"
    assert "replay window" in signing.check(header, KEY, b'{"a":1}', T + 301)
    assert "replay window" in signing.check(header, KEY, b'{"a":1}', T - 301)
    assert "missing" in signing.check(None, KEY, b"", T)
    assert "malformed" in signing.check("t=x,v1=y", KEY, b"", T)
    # a secret being rotated: either v1 may match
    rotated = header + ",v1=" + signing.sign("old-key", b'{"a":1}', T).split("v1=")[1]
    assert signing.check(rotated, KEY, b'{"a":1}', T) == ""
    assert signing.check(rotated, "old-key", b'{"a":1}', T) == ""


def test_event_patterns() -> None:
    hook = WebhookConfig.parse(
        {"event": "execution.completed, step.*", "url": "https://example.com/h"}
    )
    assert hook.event == "execution.completed,step.*" and hook.id.startswith("wh-")
    wanted = [
        t
        for t in (
            "execution.completed",
            "execution.failed",
            "step.started",
            "steps.x",
            "agent.left",
        )
        if hook.wants(t)
    ]
    assert wanted == ["execution.completed", "step.started"]
    assert WebhookConfig.parse({"event": "*", "url": "http://h"}).wants("anything.at.all")
    for bad in ("step.**", "Step", "*.completed", ""):
        with pytest.raises(InvalidArgument):
            WebhookConfig.parse({"event": bad, "url": "http://h"})
    with pytest.raises(InvalidArgument, match="credentials"):
        WebhookConfig.parse({"event": "*", "url": "http://u:p@h"})
    with pytest.raises(InvalidArgument, match="max_attempts"):
        WebhookConfig.parse({"event": "*", "url": "http://h", "max_attempts": 101})


def event(position: int, type_: str = "execution.completed") -> MeshEvent:
    return MeshEvent(
        position, type_, datetime(2026, 12, 3, tzinfo=UTC), execution_id=f"e{position}"
    )


def test_a_delivery_round_trips_and_sorts_in_event_order() -> None:
    hook = WebhookConfig.parse({"event": "*", "url": "http://h"})
    d = Delivery.of(event(42), hook)
    assert d.position == 42 and d.id == f"{42:015d}-{hook.id}"
    assert Delivery.from_data(json.loads(json.dumps(d.to_data()))) == d
    assert json.loads(d.body)["event"]["executionId"] == "e42"
    assert Delivery.of(event(9), hook).id < d.id


async def test_the_outbox_catches_up_on_events_published_but_never_stored(
    upstream: Upstream,
) -> None:
    store = MemoryStore()
    await store.open()
    secret = {"k": KEY}.__getitem__
    first = Outbox(store, secret, Redactor(), Policy(backoff_s=0.01))
    await first.start()
    info = await first.register(
        "default", {"event": "execution.*", "url": upstream.url, "secret_ref": "k"}
    )
    first.offer(event(5))
    await eventually(lambda: len(upstream.seen) == 1)
    await eventually(lambda: first.pending == 0 and first.queued == 0)
    await first.close()  # as if killed after publishing 6 and 7 but before storing them

    second = Outbox(store, secret, Redactor(), Policy(backoff_s=0.01))
    await second.start()

    async def replay(after: int) -> AsyncIterator[MeshEvent]:
        for e in (event(5), event(6), event(7), event(8, "agent.joined")):
            if e.position > after:
                yield e

    assert await second.catch_up(replay) == 3
    await eventually(lambda: len(upstream.seen) == 3)
    got = [json.loads(s.body)["event"]["executionId"] for s in upstream.seen]
    assert got == ["e5", "e6", "e7"]  # 5 was stored (the cursor): not again
    assert second.get("default", info.config.id).delivered == 2
    await second.close()
    await store.close()
