"""Inbound events: ``POST /v1/events/{event}`` on the HTTP listener becomes a
``TriggerEvent``, so an outside system (GitHub, a CI, a form) can wake ``event`` steps.

The request must be signed (``agentmesh.signing``): ``AgentMesh-Signature`` (HMAC-SHA256
over ``t.body``, within the replay window) or GitHub's ``X-Hub-Signature-256``, with the
namespace's inbound secret: ``inbound_events_secret`` (default ``inbound-events``) for the
default namespace, ``<that>.<namespace>`` for another one (``?namespace=``), read from the
secret provider at each request. Nothing else authenticates it: the signature is the
credential, so the endpoint needs no bearer token even when auth is on.

The body is the event's payload: a JSON object (empty: ``{}``). ``?correlation_key=``
matches waits with that key; ``AgentMesh-Event-Id`` (or GitHub's ``X-GitHub-Delivery``) is
the event's id, so a sender's retry starts no second execution of a triggered workflow.
The answer is ``202 {"delivered": n, "started": [ids]}`` (the waits it woke, the executions
its triggers started; ``refused`` lists triggers that could not start); ``401`` for a missing, malformed, stale or wrong signature or an undefined
secret, ``400`` for a body that is not a JSON object, ``413`` over the listener's body
limit, ``429`` over the namespace's event quota, ``503`` on a follower (no term) or while
the store is unavailable. A refused request changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from agentmesh import signing
from coordinator import errors
from coordinator.config import Settings
from coordinator.domain import DEFAULT_NAMESPACE
from coordinator.engine.runtime import EventOutcome, WorkflowRuntime
from coordinator.secrets import provider_for
from coordinator.server.http import HttpListener

log = logging.getLogger("coordinator.http")

#: ``trigger(event, payload, correlation_key, namespace, event_id)``, as TriggerEvent.
Trigger = Callable[[str, Any, str, str, str], Awaitable[EventOutcome]]
#: Where a sender names the event's id (triggers start once per id), in order.
EVENT_ID_HEADERS = ("AgentMesh-Event-Id", "X-GitHub-Delivery")


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


def secret_name(base: str, namespace: str) -> str:
    """The secret signing ``namespace``'s inbound events."""
    return base if namespace == DEFAULT_NAMESPACE else f"{base}.{namespace}"


def inbound_routes(
    trigger: Callable[[], Trigger | None],
    secret: Callable[[str], str],
    secret_base: str,
    clock: Callable[[], float] = time.time,
) -> list[web.RouteDef]:
    """The route (see the module docstring). ``trigger()`` gives the current term's
    ``trigger_event`` (None on a follower); ``secret(name)`` reads a secret."""

    async def receive(request: web.Request) -> web.StreamResponse:
        event = request.match_info["event"]
        namespace = request.query.get("namespace") or DEFAULT_NAMESPACE
        body = await request.read()
        try:
            key = secret(secret_name(secret_base, namespace))
        except errors.CoordinatorError:
            # Same answer as a bad signature: which namespaces take events is not told.
            return _json(401, {"error": "unauthenticated: the request is not signed for it"})
        if signing.HEADER in request.headers or signing.GITHUB_HEADER not in request.headers:
            why = signing.check(request.headers.get(signing.HEADER), key, body, clock())
        else:
            why = signing.check_github(request.headers.get(signing.GITHUB_HEADER), key, body)
        if why:
            return _json(401, {"error": f"unauthenticated: {why}"})
        try:
            payload = json.loads(body) if body.strip() else {}
        except (UnicodeDecodeError, ValueError) as e:
            return _json(400, {"error": f"the body is not JSON: {e}"})
        if not isinstance(payload, dict):
            return _json(400, {"error": "the body must be a JSON object (the event's payload)"})
        run = trigger()
        if run is None:
            return _json(503, {"error": "this coordinator does not lead: send it to the leader"})
        corr = request.query.get("correlation_key", "")
        event_id = next((request.headers[h] for h in EVENT_ID_HEADERS if h in request.headers), "")
        try:
            # Shielded: a sender that hangs up does not cut an accepted event in half.
            started = asyncio.ensure_future(run(event, payload, corr, namespace, event_id[:200]))
            outcome = await asyncio.shield(started)
        except errors.InvalidArgument as e:
            return _json(400, {"error": str(e)})
        except errors.ResourceExhausted as e:
            return _json(429, {"error": str(e)})
        except errors.Unavailable as e:
            return _json(503, {"error": str(e)})
        answer = {"delivered": outcome.delivered, "started": outcome.started}
        if outcome.refused:
            answer["refused"] = outcome.refused
        return _json(202, answer)

    return [web.post("/v1/events/{event}", receive)]


def add_inbound(
    listener: HttpListener, settings: Settings, runtime: Callable[[], WorkflowRuntime | None]
) -> HttpListener:
    """``listener``, serving inbound events unless ``inbound_events_secret`` is "";
    ``runtime()`` is the current term's workflow runtime (None on a follower)."""
    if settings.inbound_events_secret:

        def trigger() -> Trigger | None:
            rt = runtime()
            return None if rt is None else rt.trigger_event

        secret = provider_for(settings).get
        listener.add_routes(inbound_routes(trigger, secret, settings.inbound_events_secret))
    return listener
