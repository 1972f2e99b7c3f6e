"""The webhook methods of ``Client`` (a mixin), their value types, and what a receiver
needs to check a delivery's signature.

A webhook POSTs every event matching its pattern to a URL, signed with HMAC-SHA256
(``AgentMesh-Signature: t=<unix>,v1=<hex>`` over ``t.body``), through the coordinator's
durable outbox: at least once, retried with backoff, then kept as a dead letter until
redelivered. A receiver checks each request with ``verify_webhook`` and drops duplicates
by ``AgentMesh-Delivery``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent_sdk._errors import InvalidArgumentError
from agentmesh import signing, wire
from agentmesh.v1 import integration_pb2

#: The header a delivery's signature is in.
SIGNATURE_HEADER = signing.HEADER


def verify_webhook(
    signature: str | None, secret: str, body: bytes, *, now: float | None = None
) -> None:
    """Check a delivery's ``AgentMesh-Signature`` header against its raw ``body``, signed
    with ``secret`` within the replay window (five minutes); InvalidArgumentError saying
    what is wrong (missing, malformed, stale, not matching) otherwise."""
    why = signing.check(signature, secret, body, time.time() if now is None else now)
    if why:
        raise InvalidArgumentError(f"webhook signature refused: {why}")


def sign_event(secret: str, body: bytes, *, now: float | None = None) -> str:
    """The ``AgentMesh-Signature`` value for ``body``: what an outside system sends with
    ``POST /v1/events/{event}`` to trigger an event."""
    return signing.sign(secret, body, int(time.time() if now is None else now))


@dataclass(frozen=True, slots=True)
class Webhook:
    """A registered webhook and its outbox: deliveries ``pending``, ``dead_letters``,
    ``delivered`` (since the coordinator led) and how the last failed attempt went."""

    id: str
    event: str
    url: str
    secret_ref: str = ""
    has_secret: bool = False
    description: str = ""
    max_attempts: int = 0
    created: datetime | None = None
    pending: int = 0
    dead_letters: int = 0
    delivered: int = 0
    last_error: str = ""
    namespace: str = ""

    @classmethod
    def from_proto(cls, w: integration_pb2.Webhook) -> Webhook:
        """Read the protocol's ``Webhook``."""
        return cls(
            w.webhook_id,
            w.event,
            w.url,
            w.secret_ref,
            w.has_secret,
            w.description,
            w.max_attempts,
            w.created.ToDatetime() if w.HasField("created") else None,
            w.pending,
            w.dead_letters,
            w.delivered,
            w.last_error,
            w.namespace,
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery that used up its attempts: what it carried (``body``) and why it failed."""

    id: str
    webhook_id: str
    event_type: str
    position: int
    attempts: int
    last_error: str
    failed_at: datetime | None
    body: dict[str, Any]

    @classmethod
    def from_proto(cls, d: integration_pb2.DeadLetter) -> DeadLetter:
        """Read the protocol's ``DeadLetter``."""
        return cls(
            d.delivery_id,
            d.webhook_id,
            d.event_type,
            d.position,
            d.attempts,
            d.last_error,
            d.failed_at.ToDatetime() if d.HasField("failed_at") else None,
            wire.from_struct(d.body),
        )


class WebhookMethods:
    """Mixed into Client: ``self._integration`` and ``self._call`` come from there."""

    _integration: Any

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError

    async def register_webhook(
        self,
        event: str,
        url: str,
        *,
        secret_ref: str = "",
        secret: str = "",
        description: str = "",
        max_attempts: int = 0,
    ) -> Webhook:
        """Deliver the client's namespace's events matching ``event`` (a type, a prefix
        such as ``step.*``, or ``*``; comma-separated) to ``url``. Signed with the secret
        named ``secret_ref`` (recommended: it never leaves the coordinator's secret
        provider) or with ``secret`` (stored encrypted; FailedPreconditionError when the
        coordinator has no history key). Cancelled, it may be registered all the same."""
        req = integration_pb2.RegisterWebhookRequest(
            event=event,
            url=url,
            secret_ref=secret_ref,
            secret=secret,
            description=description,
            max_attempts=max_attempts,
        )
        r = await self._call(self._integration.RegisterWebhook, req)
        return Webhook.from_proto(r.webhook)

    async def get_webhook(self, webhook_id: str) -> Webhook:
        """One webhook and its outbox (NotFoundError if there is none).  Cancelling it
        cancels the call."""
        req = integration_pb2.GetWebhookRequest(webhook_id=webhook_id)
        return Webhook.from_proto((await self._call(self._integration.GetWebhook, req)).webhook)

    async def list_webhooks(self) -> list[Webhook]:
        """The client's namespace's webhooks, oldest first.  Cancelling it cancels the
        call."""
        r = await self._call(self._integration.ListWebhooks, integration_pb2.ListWebhooksRequest())
        return [Webhook.from_proto(w) for w in r.webhooks]

    async def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook, its pending deliveries and its dead letters (NotFoundError if
        there is none).  Cancelled, it may be deleted all the same."""
        req = integration_pb2.DeleteWebhookRequest(webhook_id=webhook_id)
        await self._call(self._integration.DeleteWebhook, req)

    async def list_dead_letters(self, webhook_id: str = "") -> list[DeadLetter]:
        """Deliveries that used up their attempts (of one webhook, or all), oldest first.
        Cancelling it cancels the call."""
        req = integration_pb2.ListDeadLettersRequest(webhook_id=webhook_id)
        r = await self._call(self._integration.ListDeadLetters, req)
        return [DeadLetter.from_proto(d) for d in r.dead_letters]

    async def redeliver_dead_letters(
        self, webhook_id: str = "", delivery_ids: tuple[str, ...] | list[str] = ()
    ) -> int:
        """Put dead letters back in the outbox with a fresh budget (the ones named, else
        all of the webhook, else all); how many. NotFoundError for an unknown id.
        Cancelled, they may be redelivered all the same."""
        req = integration_pb2.RedeliverDeadLettersRequest(
            webhook_id=webhook_id, delivery_ids=list(delivery_ids)
        )
        r = await self._call(self._integration.RedeliverDeadLetters, req)
        return int(r.redelivered)
