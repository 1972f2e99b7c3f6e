"""Webhooks end to end: a real coordinator (SQLite store, a secrets file) delivers its
events to a real HTTP receiver on a loopback port through the durable outbox. Every
delivery is signed and verified by the receiver; a receiver that is down for a while gets
every delivery once it is back, across a coordinator SIGKILL; deliveries that use up their
budget become dead letters and can be redelivered; bad registrations get precise errors."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography.fernet import Fernet

from agent_sdk import (
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    verify_webhook,
)
from coordinator.server import Coordinator
from tests.conftest import (
    ServerProcess,
    eventually,
    fast_settings,
    serving_coordinator,
    stored_bytes,
)
from tests.upstream import Upstream, upstream

__all__ = ["upstream"]

KEY = "whsec-test-signing-key-0123456789"


def down(request: web.Request) -> web.StreamResponse:
    return web.Response(status=503, text="receiver down")


def ok(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


def secrets_file(tmp_path: Path, **extra: str) -> Path:
    path = tmp_path / "secrets.yaml"
    lines = [f"hook-key: {KEY}", *(f"{k}: {v}" for k, v in extra.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def settings_kw(tmp_path: Path) -> dict[str, Any]:
    return {
        "state_persistence": "sqlite",
        "store_path": str(tmp_path / "mesh.db"),
        "secrets_file": str(secrets_file(tmp_path)),
        "webhook_backoff_ms": 20,
        "webhook_max_backoff_ms": 100,
    }


@pytest.fixture
async def coordinator(settings_kw: dict[str, Any]) -> AsyncIterator[Coordinator]:
    async with serving_coordinator(**settings_kw) as c:
        yield c


def quick(name: str) -> dict[str, Any]:
    """A workflow that needs no agent: one short wait."""
    return {"name": name, "steps": [{"id": "pause", "type": "wait", "wait": {"durationMs": 1}}]}


def bodies(up: Upstream) -> list[dict[str, Any]]:
    return [json.loads(s.body) for s in up.seen]


async def test_matching_events_are_delivered_signed_and_verified(
    coordinator: Coordinator, upstream: Upstream, settings_kw: dict[str, Any]
) -> None:
    async with Client(coordinator.address, timeout=10) as client:
        hook = await client.register_webhook(
            "execution.*", f"{upstream.url}/hooks", secret_ref="hook-key", description="ci"
        )
        assert hook.id.startswith("wh-") and hook.event == "execution.*"
        assert hook.secret_ref == "hook-key" and not hook.has_secret
        await client.define_workflow("quick", quick("quick"))
        started = await client.start_workflow("quick")
        await client.wait_execution(started.id, timeout=10)
        await eventually(
            lambda: any(b["event"]["type"] == "execution.completed" for b in bodies(upstream))
        )
        for seen in upstream.seen:
            verify_webhook(seen.headers["AgentMesh-Signature"], KEY, seen.body)
            body = json.loads(seen.body)
            assert seen.path == "/hooks" and seen.method == "POST"
            assert seen.headers["AgentMesh-Delivery"] == body["id"]
            assert seen.headers["AgentMesh-Webhook"] == hook.id == body["webhook"]
            assert seen.headers["AgentMesh-Event"] == body["event"]["type"]
            assert body["event"]["type"].startswith("execution.")
            assert body["event"]["executionId"] == started.id
        with pytest.raises(InvalidArgumentError, match="signature does not match"):
            verify_webhook(upstream.seen[0].headers["AgentMesh-Signature"], "wrong", b"{}")

        async def settled() -> bool:
            got = await client.get_webhook(hook.id)
            return got.delivered == len(upstream.seen) and got.pending == 0

        await eventually(settled)
        assert coordinator.http is not None
        async with httpx.AsyncClient() as http:
            scraped = (await http.get(f"{coordinator.http.url}/metrics")).text
        line = f'agentmesh_webhook_delivered_total{{namespace="default"}} {len(upstream.seen)}.0'
        assert line in scraped
        assert [w.id for w in await client.list_webhooks()] == [hook.id]
        async with Client(coordinator.address, timeout=10, namespace="team-a") as other:
            assert await other.list_webhooks() == []
            with pytest.raises(NotFoundError, match="in namespace 'team-a'"):
                await other.get_webhook(hook.id)
            with pytest.raises(NotFoundError):
                await other.delete_webhook(hook.id)
            before = len(upstream.seen)
            await other.define_workflow("quick", quick("quick"))
            theirs = await other.start_workflow("quick")
            await other.wait_execution(theirs.id, timeout=10)
            mine = await client.start_workflow("quick")  # after theirs, in the log's order
            await client.wait_execution(mine.id, timeout=10)
            await eventually(lambda: any(mine.id in s.body.decode() for s in upstream.seen))
            assert not any(theirs.id in s.body.decode() for s in upstream.seen[before:])
        await client.delete_webhook(hook.id)
        assert await client.list_webhooks() == []
        with pytest.raises(NotFoundError, match=f"no webhook '{hook.id}'"):
            await client.get_webhook(hook.id)
    assert KEY.encode() not in stored_bytes(Path(settings_kw["store_path"]).parent)


async def test_after_its_budget_a_delivery_is_a_dead_letter_and_can_be_redelivered(
    coordinator: Coordinator, upstream: Upstream
) -> None:
    upstream.script = [down]
    async with Client(coordinator.address, timeout=10) as client:
        hook = await client.register_webhook(
            "execution.completed", upstream.url, secret_ref="hook-key", max_attempts=3
        )
        await client.define_workflow("quick", quick("quick"))
        started = await client.start_workflow("quick")
        await client.wait_execution(started.id, timeout=10)

        async def dead() -> bool:
            return bool(await client.list_dead_letters(hook.id))

        await eventually(dead)
        [letter] = await client.list_dead_letters()
        assert len(upstream.seen) == 3  # its budget, no more
        assert letter.webhook_id == hook.id and letter.attempts == 3
        assert letter.event_type == "execution.completed"
        assert letter.last_error == "answered 503: receiver down"
        assert letter.body["event"]["executionId"] == started.id
        info = await client.get_webhook(hook.id)
        assert (info.dead_letters, info.pending) == (1, 0)
        assert info.last_error == "answered 503: receiver down"

        upstream.script = [down, down, down, ok]
        assert await client.redeliver_dead_letters(hook.id, [letter.id]) == 1
        await eventually(lambda: len(upstream.seen) == 4)
        assert json.loads(upstream.seen[-1].body)["id"] == letter.id
        assert await client.list_dead_letters() == []
        with pytest.raises(NotFoundError, match="no dead letter"):
            await client.redeliver_dead_letters(hook.id, ["000000000000001-wh-nope"])


async def test_bad_registrations_get_precise_errors(coordinator: Coordinator) -> None:
    async with Client(coordinator.address, timeout=10) as client:
        with pytest.raises(InvalidArgumentError, match="event is required"):
            await client.register_webhook("", "http://x", secret_ref="hook-key")
        with pytest.raises(InvalidArgumentError, match="is not an event type"):
            await client.register_webhook("step.**", "http://x", secret_ref="hook-key")
        with pytest.raises(InvalidArgumentError, match="must be an http:// or https:// URL"):
            await client.register_webhook("*", "ftp://x", secret_ref="hook-key")
        with pytest.raises(InvalidArgumentError, match="exactly one signing key"):
            await client.register_webhook("*", "http://x")
        with pytest.raises(InvalidArgumentError, match="exactly one signing key"):
            await client.register_webhook("*", "http://x", secret_ref="hook-key", secret=KEY)
        with pytest.raises(FailedPreconditionError, match="secret 'nope' is not defined"):
            await client.register_webhook("*", "http://x", secret_ref="nope")
        with pytest.raises(FailedPreconditionError, match="needs the history key"):
            await client.register_webhook("*", "http://x", secret=KEY)
        with pytest.raises(InvalidArgumentError, match="webhook_id is required"):
            await client.get_webhook("")
        assert await client.list_webhooks() == []


async def test_a_given_secret_is_stored_encrypted(tmp_path: Path, upstream: Upstream) -> None:
    secrets = secrets_file(tmp_path, **{"history-key": Fernet.generate_key().decode()})
    settings = fast_settings(
        state_persistence="sqlite", store_path=str(tmp_path / "mesh.db"), secrets_file=str(secrets)
    )
    c = Coordinator(settings)
    await c.start()
    try:
        async with Client(c.address, timeout=10) as client:
            given = "given-signing-secret-value-42"
            hook = await client.register_webhook("execution.completed", upstream.url, secret=given)
            assert hook.has_secret and hook.secret_ref == ""
            await client.define_workflow("quick", quick("quick"))
            await client.start_workflow("quick")
            await eventually(lambda: upstream.seen)
            seen = upstream.seen[0]
            verify_webhook(seen.headers["AgentMesh-Signature"], given, seen.body)
    finally:
        await c.stop(grace=1.0)
    assert given.encode() not in stored_bytes(tmp_path)


async def test_a_receiver_down_across_a_sigkill_gets_every_delivery(
    tmp_path: Path, upstream: Upstream
) -> None:
    """Deliveries accepted before a SIGKILL are delivered by the next coordinator on the
    store, once the receiver is back: none lost (at least once; each id at least once)."""
    upstream.script = [down]
    args = (
        *("--state-persistence", "sqlite", "--store-path", str(tmp_path / "mesh.db")),
        *("--secrets-file", str(secrets_file(tmp_path)), "--webhook-backoff-ms", "20"),
        *("--webhook-max-backoff-ms", "200", "--http-listen", ""),
    )
    first = ServerProcess(*args, log=tmp_path / "first.log")
    try:
        async with Client(first.address, timeout=10) as client:
            hook = await client.register_webhook(
                "execution.completed", upstream.url, secret_ref="hook-key", max_attempts=100
            )
            await client.define_workflow("quick", quick("quick"))
            ids = [(await client.start_workflow("quick")).id for _ in range(20)]
            for exec_id in ids:
                await client.wait_execution(exec_id, timeout=10)

            async def all_accepted() -> bool:
                return (await client.get_webhook(hook.id)).pending == len(ids)

            await eventually(all_accepted)
            await eventually(lambda: len(upstream.seen) >= len(ids))  # each tried once
    finally:
        first.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.stop)
    assert first.proc.returncode == -signal.SIGKILL
    upstream.script = [ok]
    before = len(upstream.seen)
    second = ServerProcess(*args, log=tmp_path / "second.log")
    try:

        def delivered() -> set[str]:
            return {json.loads(s.body)["event"]["executionId"] for s in upstream.seen[before:]}

        await eventually(lambda: delivered() >= set(ids), timeout=20)
        for seen in upstream.seen[before:]:
            verify_webhook(seen.headers["AgentMesh-Signature"], KEY, seen.body)
        async with Client(second.address, timeout=10) as client:

            async def drained() -> bool:
                return (await client.get_webhook(hook.id)).pending == 0

            await eventually(drained)
    finally:
        second.stop()


async def test_the_cli_registers_lists_shows_dead_letters_and_redelivers(
    coordinator: Coordinator, upstream: Upstream
) -> None:
    from tests.integration.test_cli import aam, shown

    c = ("-c", coordinator.address)
    upstream.script = [down]
    r = await aam(
        "webhook", "register", "execution.completed", upstream.url, *c,
        "--secret-ref", "hook-key", "--max-attempts", "1",
    )  # fmt: skip
    assert r.returncode == 0 and r.stdout.startswith("registered webhook wh-"), shown(r)
    hook_id = r.stdout.split()[2]
    r = await aam("webhook", "list", *c)
    assert r.returncode == 0 and hook_id in r.stdout and "execution.completed" in r.stdout
    async with Client(coordinator.address, timeout=10) as client:
        await client.define_workflow("quick", quick("quick"))
        await client.start_workflow("quick")

        async def dead() -> bool:
            return bool(await client.list_dead_letters())

        await eventually(dead)
    r = await aam("webhook", "dead-letters", hook_id, *c)
    assert r.returncode == 0 and "answered 503: receiver down" in r.stdout, shown(r)
    upstream.script = [down, ok]
    r = await aam("webhook", "redeliver", hook_id, *c)
    assert r.returncode == 0 and r.stdout == "redelivering 1 dead letter(s)\n", shown(r)
    await eventually(lambda: len(upstream.seen) == 2)
    r = await aam("webhook", "show", hook_id, *c)
    assert r.returncode == 0 and json.loads(r.stdout)["dead_letters"] == 0, shown(r)
    r = await aam("webhook", "register", "*", upstream.url, *c, "--secret-env", "NOPE_UNSET")
    assert r.returncode == 2 and "the variable is not set" in r.stderr, shown(r)
    r = await aam("webhook", "delete", hook_id, *c)
    assert r.returncode == 0 and r.stdout == f"deleted webhook {hook_id}\n", shown(r)
    r = await aam("webhook", "show", hook_id, *c)
    assert r.returncode != 0 and f"no webhook '{hook_id}'" in r.stderr, shown(r)
