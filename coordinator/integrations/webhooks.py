"""Outbound webhooks: what one is, and what a delivery of an event to it looks like.

A webhook is registered in a namespace: the events it wants (``event``: an exact type
such as ``execution.completed``, a prefix ending in ``*`` such as ``step.*``, or ``*``;
several separated by commas), the ``url`` they are POSTed to, and how they are signed.
The signing key is named (``secret_ref``: a secret of the coordinator's secret provider,
read at each delivery, never stored) or given (``secret``: stored encrypted with the
history key, so a coordinator without one refuses it). Deliveries go out through the
durable outbox (``outbox.py``), signed as ``agentmesh.signing`` says.
"""

from __future__ import annotations

import json
import re
import secrets as random_secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from coordinator.domain import MeshEvent
from coordinator.errors import InvalidArgument

#: Attempts per delivery before it becomes a dead letter, unless the webhook says.
DEFAULT_ATTEMPTS: Final = 8
MAX_ATTEMPTS: Final = 100
_PATTERN = re.compile(r"\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?")


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """One registered webhook (module docstring). ``sealed_secret`` is the stored form
    of a given secret (the history key's token), "" when the secret is named."""

    id: str
    event: str
    url: str
    secret_ref: str = ""
    sealed_secret: str = ""
    description: str = ""
    max_attempts: int = DEFAULT_ATTEMPTS
    patterns: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def parse(cls, data: Mapping[str, Any], *, webhook_id: str = "") -> WebhookConfig:
        """A checked webhook; ``InvalidArgument`` names what is wrong. The secret itself
        is checked (and sealed) by the caller: only its stored form is here."""
        event = str(data.get("event") or "").strip()
        patterns = tuple(p.strip() for p in event.split(",") if p.strip())
        if not patterns:
            raise InvalidArgument(
                "event is required: an event type (execution.completed), a prefix (step.*) or *"
            )
        for p in patterns:
            if not _PATTERN.fullmatch(p):
                raise InvalidArgument(
                    f"event pattern {p[:80]!r} is not an event type, a prefix ending in '.*' or '*'"
                )
        url = str(data.get("url") or "").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument(f"webhook url {url[:200]!r} must be an http:// or https:// URL")
        if parts.username or parts.password:
            raise InvalidArgument("webhook url must not carry credentials")
        attempts = int(data.get("max_attempts") or DEFAULT_ATTEMPTS)
        if not 1 <= attempts <= MAX_ATTEMPTS:
            raise InvalidArgument(f"max_attempts must be 1..{MAX_ATTEMPTS}; got {attempts}")
        return cls(
            id=webhook_id or str(data.get("id") or "") or new_id("wh"),
            event=",".join(patterns),
            url=url,
            secret_ref=str(data.get("secret_ref") or ""),
            sealed_secret=str(data.get("sealed_secret") or ""),
            description=str(data.get("description") or "")[:500],
            max_attempts=attempts,
            patterns=patterns,
        )

    def to_data(self) -> dict[str, Any]:
        """The stored form; ``parse`` reads it back."""
        return {
            "id": self.id,
            "event": self.event,
            "url": self.url,
            "secret_ref": self.secret_ref,
            "sealed_secret": self.sealed_secret,
            "description": self.description,
            "max_attempts": self.max_attempts,
        }

    def wants(self, event_type: str) -> bool:
        """Whether an event of ``event_type`` goes to this webhook."""
        return any(
            p in ("*", event_type) or (p.endswith("*") and event_type.startswith(p[:-1]))
            for p in self.patterns
        )


def new_id(prefix: str) -> str:
    """A fresh random id: ``wh-3f9a...`` (webhooks), ``dl-...``."""
    return f"{prefix}-{random_secrets.token_hex(8)}"


def event_body(event: MeshEvent) -> dict[str, Any]:
    """What a delivery carries of ``event`` (its fields in the API's camelCase)."""
    return {
        "position": event.position,
        "type": event.type,
        "time": event.time.isoformat(),
        "namespace": event.namespace,
        "executionId": event.execution_id,
        "workflowName": event.workflow_name,
        "stepId": event.step_id,
        "taskId": event.task_id,
        "agentId": event.agent_id,
        "message": event.message,
        "data": event.data,
    }


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one webhook: the outbox's record. ``id`` sorts in event
    order (``<position>-<webhook id>``); ``attempts`` made so far, the next one not
    before ``next_at``; ``last_error`` says how the last one went."""

    id: str
    webhook_id: str
    event_type: str
    body: str  # the JSON POSTed, exactly as signed
    attempts: int = 0
    next_at: datetime | None = None
    last_error: str = ""
    failed_at: datetime | None = None

    @classmethod
    def of(cls, event: MeshEvent, webhook: WebhookConfig) -> Delivery:
        """The delivery of ``event`` to ``webhook``."""
        delivery_id = f"{event.position:015d}-{webhook.id}"
        body = {"id": delivery_id, "webhook": webhook.id, "event": event_body(event)}
        text = json.dumps(body, separators=(",", ":"), default=str)
        return cls(delivery_id, webhook.id, event.type, text)

    def to_data(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "id": self.id,
            "webhook_id": self.webhook_id,
            "event_type": self.event_type,
            "body": self.body,
            "attempts": self.attempts,
            "next_at": self.next_at.isoformat() if self.next_at else "",
            "last_error": self.last_error,
            "failed_at": self.failed_at.isoformat() if self.failed_at else "",
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Delivery:
        """Read ``to_data``'s form back."""

        def when(key: str) -> datetime | None:
            raw = data.get(key)
            return datetime.fromisoformat(raw) if raw else None

        return cls(
            str(data["id"]),
            str(data["webhook_id"]),
            str(data.get("event_type") or ""),
            str(data["body"]),
            int(data.get("attempts") or 0),
            when("next_at"),
            str(data.get("last_error") or ""),
            when("failed_at"),
        )

    @property
    def position(self) -> int:
        """The event's position in the event log."""
        return int(self.id.split("-", 1)[0])
