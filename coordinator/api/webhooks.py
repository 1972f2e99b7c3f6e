"""``IntegrationService``'s webhook methods (register, get, list, delete, dead letters,
redeliver) over the outbox, in the caller's namespace; a mixin of the servicer in
``integrations.py``."""

from __future__ import annotations

import json

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from agentmesh import wire
from agentmesh.v1 import integration_pb2
from coordinator import errors
from coordinator.api.scope import namespace_of
from coordinator.api.status import mapped
from coordinator.integrations.outbox import Outbox, WebhookInfo
from coordinator.integrations.webhooks import Delivery


def webhook_msg(info: WebhookInfo) -> integration_pb2.Webhook:
    """A webhook as the protocol shows it (never its secret)."""
    c = info.config
    created = Timestamp()
    created.FromDatetime(info.created)
    return integration_pb2.Webhook(
        webhook_id=c.id,
        event=c.event,
        url=c.url,
        secret_ref=c.secret_ref,
        has_secret=bool(c.sealed_secret),
        description=c.description,
        max_attempts=c.max_attempts,
        created=created,
        pending=info.pending,
        dead_letters=info.dead,
        delivered=info.delivered,
        last_error=info.last_error,
        namespace=info.namespace,
    )


def dead_letter_msg(d: Delivery) -> integration_pb2.DeadLetter:
    msg = integration_pb2.DeadLetter(
        delivery_id=d.id,
        webhook_id=d.webhook_id,
        event_type=d.event_type,
        position=d.position,
        attempts=d.attempts,
        last_error=d.last_error,
        body=wire.to_struct(json.loads(d.body)),
    )
    if d.failed_at is not None:
        msg.failed_at.FromDatetime(d.failed_at)
    return msg


def _webhook_id(webhook_id: str) -> str:
    if not webhook_id.strip():
        raise errors.InvalidArgument("webhook_id is required")
    return webhook_id.strip()


class WebhookMethods:
    """The webhook RPCs; the servicer sets ``_outbox``."""

    _outbox: Outbox

    @mapped
    async def RegisterWebhook(
        self, request: integration_pb2.RegisterWebhookRequest, context: grpc.aio.ServicerContext
    ) -> integration_pb2.RegisterWebhookResponse:
        """Check, seal and store a webhook; its id and how it stands."""
        data = {
            "event": request.event,
            "url": request.url,
            "secret_ref": request.secret_ref.strip(),
            "description": request.description,
            "max_attempts": request.max_attempts,
        }
        info = await self._outbox.register(namespace_of(context), data, request.secret)
        return integration_pb2.RegisterWebhookResponse(
            webhook_id=info.config.id, webhook=webhook_msg(info)
        )

    @mapped
    async def GetWebhook(
        self, request: integration_pb2.GetWebhookRequest, context: grpc.aio.ServicerContext
    ) -> integration_pb2.GetWebhookResponse:
        """One webhook of the namespace, with its outbox counts."""
        info = self._outbox.get(namespace_of(context), _webhook_id(request.webhook_id))
        return integration_pb2.GetWebhookResponse(webhook=webhook_msg(info))

    @mapped
    async def ListWebhooks(
        self, request: integration_pb2.ListWebhooksRequest, context: grpc.aio.ServicerContext
    ) -> integration_pb2.ListWebhooksResponse:
        """The namespace's webhooks, oldest first."""
        infos = self._outbox.webhooks(namespace_of(context))
        return integration_pb2.ListWebhooksResponse(webhooks=[webhook_msg(i) for i in infos])

    @mapped
    async def DeleteWebhook(
        self, request: integration_pb2.DeleteWebhookRequest, context: grpc.aio.ServicerContext
    ) -> integration_pb2.DeleteWebhookResponse:
        """Delete a webhook, its pending deliveries and its dead letters."""
        await self._outbox.delete(namespace_of(context), _webhook_id(request.webhook_id))
        return integration_pb2.DeleteWebhookResponse()

    @mapped
    async def ListDeadLetters(
        self, request: integration_pb2.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> integration_pb2.ListDeadLettersResponse:
        """The namespace's dead letters (of one webhook when named)."""
        letters = await self._outbox.dead_letters(namespace_of(context), request.webhook_id.strip())
        return integration_pb2.ListDeadLettersResponse(
            dead_letters=[dead_letter_msg(d) for d in letters]
        )

    @mapped
    async def RedeliverDeadLetters(
        self,
        request: integration_pb2.RedeliverDeadLettersRequest,
        context: grpc.aio.ServicerContext,
    ) -> integration_pb2.RedeliverDeadLettersResponse:
        """Put dead letters back in the outbox with a fresh budget."""
        n = await self._outbox.redeliver(
            namespace_of(context), request.webhook_id.strip(), tuple(request.delivery_ids)
        )
        return integration_pb2.RedeliverDeadLettersResponse(redelivered=n)
