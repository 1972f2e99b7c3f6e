"""The webhooks' durable outbox: every matching event delivered at least once.

Three stages, none of which the engine waits for:

1. **Accept.** ``offer(event)`` is an event-log listener: it only appends the event's
   deliveries (one per webhook that wants it) to an in-memory queue, so the engine's turn
   never waits on a webhook.
2. **Store.** A writer task puts each delivery in the store (documents of kind
   ``delivery``), then records how far it got in the event log (the ``outbox/cursor``
   document). From then on the delivery is *accepted*: it survives a restart, a SIGKILL
   and a failover (etcd). Events offered but not yet stored when the coordinator died are
   found again at the next start: the durable ones after the cursor are read back from the
   store (``replay``) and offered again. Live events (agents, the cluster) have no history
   to replay, so only their stored deliveries are guaranteed.
3. **Deliver.** A delivery task POSTs each stored delivery, signed (``agentmesh.signing``), at most
   ``concurrency`` at once. A 2xx answer deletes it; anything else (an error status, a
   timeout, no connection, an unreadable secret) schedules the next attempt after a backoff
   doubling from ``backoff`` up to ``max_backoff`` (a ``Retry-After`` header wins) and
   stores that, so the backoff survives a restart too. After the webhook's
   ``max_attempts`` the delivery becomes a **dead letter** (kind ``deadletter``), listed by
   the API and the CLI until it is redelivered.

At least once, not exactly once: a coordinator that dies between a POST and deleting its
record delivers it again. Each delivery carries its id (``AgentMesh-Delivery``, also in
the body) for receivers to drop duplicates. Deliveries are not ordered across attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final

import aiohttp

from agentmesh import signing
from coordinator.domain import DEFAULT_NAMESPACE, MeshEvent
from coordinator.errors import CoordinatorError, FailedPrecondition, InvalidArgument, NotFound
from coordinator.integrations.webhooks import Delivery, WebhookConfig
from coordinator.secrets import Redactor
from coordinator.store import DocumentRecord, Store, StoreError

log = logging.getLogger(__name__)

WEBHOOK: Final = "webhook"
DELIVERY: Final = "delivery"
DEAD: Final = "deadletter"
CURSOR: Final = ("outbox", "cursor")
#: Accepted deliveries waiting for the writer; past this, offers are dropped (and counted).
MAX_QUEUED: Final = 100_000
#: How much of a refusing answer is quoted in ``last_error``.
ANSWER_QUOTED: Final = 200
#: How long the writer waits before trying the store again after it failed.
STORE_RETRY_S: Final = 1.0

Secret = Callable[[str], str]
Replay = Callable[[int], AsyncIterator[MeshEvent]]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class WebhookInfo:
    """A webhook as the API shows it: its configuration, namespace and outbox state."""

    config: WebhookConfig
    namespace: str
    created: datetime
    pending: int = 0
    dead: int = 0
    delivered: int = 0
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class Policy:
    """How deliveries are attempted (the ``webhook_*`` settings)."""

    timeout_s: float = 10.0
    backoff_s: float = 1.0
    max_backoff_s: float = 300.0
    concurrency: int = 16


class Outbox:
    """Webhooks of every namespace and their deliveries (module docstring). ``secret``
    reads a named secret, ``redactor`` seals a given one."""

    def __init__(
        self,
        store: Store,
        secret: Secret,
        redactor: Redactor,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._secret = secret
        self._redactor = redactor
        self.policy = policy or Policy()
        self._clock = clock
        self._hooks: dict[str, tuple[str, WebhookConfig, datetime]] = {}  # id -> (ns, ...)
        # (namespace, event, webhook): encoded by the writer, off the publishing path
        self._queue: list[tuple[str, MeshEvent, WebhookConfig]] = []
        self._queued = asyncio.Event()
        self._seen = 0  # the last position offered
        self._cursor = 0  # every position up to here is in the store
        self._pending: dict[str, tuple[str, Delivery]] = {}  # id -> (namespace, delivery)
        self._due: list[tuple[datetime, str]] = []  # heap of (next attempt, delivery id)
        self._due_at: dict[str, datetime] = {}  # the current entry of each (others: stale)
        self._dead: dict[str, int] = {}  # webhook id -> its dead letters
        self._wake = asyncio.Event()
        self._inflight: set[str] = set()
        self._delivered: dict[str, int] = {}
        self._last_error: dict[str, str] = {}
        self.dropped = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._attempts: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(self.policy.concurrency)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load the webhooks, the stored deliveries and the cursor; offer again the
        durable events after the cursor; start delivering."""
        for doc in await self._store.list_documents(WEBHOOK, None):
            config = WebhookConfig.parse(doc.data, webhook_id=doc.name)
            self._hooks[config.id] = (doc.namespace, config, doc.updated)
        for doc in await self._store.list_documents(DELIVERY, None):
            self._schedule(doc.namespace, Delivery.from_data(doc.data))
        for doc in await self._store.list_documents(DEAD, None):
            hook_id = str(doc.data.get("webhook_id"))
            self._dead[hook_id] = self._dead.get(hook_id, 0) + 1
        cursor = await self._store.get_document(*CURSOR)
        self._cursor = self._seen = int(cursor.data.get("position", 0)) if cursor else 0
        connector = aiohttp.TCPConnector(limit=self.policy.concurrency)
        self._http = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        self._tasks = [
            asyncio.create_task(self._write(), name="outbox-writer"),
            asyncio.create_task(self._deliver(), name="outbox-deliverer"),
        ]

    async def catch_up(self, replay: Replay) -> int:
        """Offer again the durable events after the cursor that ``replay(after)`` yields
        (those published before a crash and never stored); how many. Call it after
        ``start`` and attach ``offer`` as a listener right after it returns, with no
        await between, so no event falls between the two."""
        if not self._hooks or not self._cursor:
            return 0
        n = 0
        async for event in replay(self._cursor):
            self.offer(event)
            n += 1
        return n

    async def close(self) -> None:
        """Stop delivering (what is stored stays for the next coordinator)."""
        tasks, self._tasks = self._tasks + list(self._attempts), []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ------------------------------------------------------------ accept

    def offer(self, event: MeshEvent) -> None:
        """Queue ``event``'s deliveries (an event-log listener: never blocks)."""
        if event.position <= self._seen:
            return  # already offered (a replay overlapping what was published)
        self._seen = event.position
        for hook_id, (namespace, config, _) in self._hooks.items():
            if event.namespace not in (namespace, "") or not config.wants(event.type):
                continue
            if len(self._queue) >= MAX_QUEUED:
                self.dropped += 1
                self._last_error[hook_id] = "outbox full: a delivery was dropped"
                continue
            self._queue.append((namespace, event, config))
        self._queued.set()

    async def _write(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            batch, self._queue = self._queue, []
            seen = self._seen
            try:
                for namespace, event, config in batch:
                    if config.id not in self._hooks:
                        continue  # deleted meanwhile
                    delivery = Delivery.of(event, config)
                    await self._put(DELIVERY, namespace, delivery)
                    self._schedule(namespace, delivery)
                if seen > self._cursor and self._hooks:
                    data = {"position": seen}
                    await self._store.put_document(
                        DocumentRecord(*CURSOR, data, _now(), DEFAULT_NAMESPACE)
                    )
                    self._cursor = seen
            except StoreError as e:
                log.warning("webhook outbox: the store refused a write (%s); retrying", e)
                self._queue[:0] = batch
                self._queued.set()
                await asyncio.sleep(STORE_RETRY_S)

    # ------------------------------------------------------------ deliver

    def _schedule(self, namespace: str, delivery: Delivery) -> None:
        self._pending[delivery.id] = (namespace, delivery)
        self._arm(delivery.id, delivery.next_at or datetime.min.replace(tzinfo=UTC))

    def _arm(self, delivery_id: str, when: datetime) -> None:
        self._due_at[delivery_id] = when
        heapq.heappush(self._due, (when, delivery_id))
        self._wake.set()

    def _forget(self, delivery_id: str) -> None:
        self._pending.pop(delivery_id, None)
        self._due_at.pop(delivery_id, None)

    async def _deliver(self) -> None:
        while True:
            self._wake.clear()
            now = _now()
            while self._due and self._due[0][0] <= now:
                when, delivery_id = heapq.heappop(self._due)
                if self._due_at.get(delivery_id) != when or delivery_id in self._inflight:
                    continue  # rescheduled since, delivered, or under way
                await self._slots.acquire()
                self._inflight.add(delivery_id)
                task = asyncio.create_task(self._attempt(delivery_id))
                self._attempts.add(task)
                task.add_done_callback(self._attempts.discard)
            delay = (self._due[0][0] - _now()).total_seconds() if self._due else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _attempt(self, delivery_id: str) -> None:
        try:
            namespace, delivery = self._pending[delivery_id]
            hook = self._hooks.get(delivery.webhook_id)
            if hook is None:  # deleted: its deliveries go with it
                self._forget(delivery_id)
                return
            config = hook[1]
            error, retry_after = await self._post(config, delivery)
            await self._settle(namespace, config, delivery, error, retry_after)
        except StoreError as e:
            log.warning("webhook outbox: the store refused a write (%s); retrying", e)
            if delivery_id in self._pending:
                self._arm(delivery_id, _now() + timedelta(seconds=STORE_RETRY_S))
        finally:
            self._inflight.discard(delivery_id)
            self._slots.release()
            self._wake.set()

    async def _post(self, config: WebhookConfig, delivery: Delivery) -> tuple[str, float]:
        """Send one attempt: "" when it was taken, else why not (and a Retry-After)."""
        assert self._http is not None
        try:
            key = self.signing_key(config)
        except CoordinatorError as e:
            return f"signing key: {e}", 0.0
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "agentmesh-webhooks",
            signing.HEADER: signing.sign(key, body, int(self._clock())),
            "AgentMesh-Delivery": delivery.id,
            "AgentMesh-Event": delivery.event_type,
            "AgentMesh-Webhook": config.id,
        }
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s)
        try:
            async with self._http.post(
                config.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as answer:
                if 200 <= answer.status < 300:
                    return "", 0.0
                start = (await answer.content.read(ANSWER_QUOTED)).decode("utf-8", "replace")
                snippet = start.strip()
                reason = f"answered {answer.status}" + (f": {snippet}" if snippet else "")
                return reason, _retry_after(answer.headers.get("Retry-After"))
        except TimeoutError:
            return f"no answer within {self.policy.timeout_s:g} s", 0.0
        except (aiohttp.ClientError, OSError) as e:
            return (f"{type(e).__name__}: {e}"[:300]).rstrip(": "), 0.0

    async def _settle(
        self,
        namespace: str,
        config: WebhookConfig,
        delivery: Delivery,
        error: str,
        retry_after: float,
    ) -> None:
        if not error:
            await self._store.delete_document(DELIVERY, delivery.id, namespace)
            self._forget(delivery.id)
            self._delivered[config.id] = self._delivered.get(config.id, 0) + 1
            return
        attempts = delivery.attempts + 1
        self._last_error[config.id] = error
        now = _now()
        if attempts >= config.max_attempts:
            dead = replace(delivery, attempts=attempts, last_error=error, failed_at=now)
            await self._put(DEAD, namespace, dead)
            await self._store.delete_document(DELIVERY, delivery.id, namespace)
            self._forget(delivery.id)
            self._dead[config.id] = self._dead.get(config.id, 0) + 1
            log.warning(
                "webhook %s: delivery %s is a dead letter after %d attempts: %s",
                config.id,
                delivery.id,
                attempts,
                error,
            )
            return
        backoff = min(self.policy.max_backoff_s, self.policy.backoff_s * 2 ** (attempts - 1))
        wait = max(backoff, min(retry_after, self.policy.max_backoff_s))
        later = replace(
            delivery, attempts=attempts, last_error=error, next_at=now + timedelta(seconds=wait)
        )
        await self._put(DELIVERY, namespace, later)
        if delivery.id in self._pending:
            self._schedule(namespace, later)

    async def _put(self, kind: str, namespace: str, delivery: Delivery) -> None:
        record = DocumentRecord(kind, delivery.id, delivery.to_data(), _now(), namespace)
        await self._store.put_document(record)

    def signing_key(self, config: WebhookConfig) -> str:
        """The webhook's HMAC key: its named secret, or its stored one opened."""
        if config.secret_ref:
            return self._secret(config.secret_ref)
        return self._redactor.open_text(config.sealed_secret)

    # ------------------------------------------------------------ the API's side

    async def register(
        self, namespace: str, data: Mapping[str, Any], secret: str = ""
    ) -> WebhookInfo:
        """Check and store a webhook of ``namespace``; ``secret`` (a given signing key) is
        sealed first. ``InvalidArgument`` names what is wrong; ``FailedPrecondition`` when
        a given secret cannot be stored encrypted (no history key)."""
        ref = str(data.get("secret_ref") or "")
        if bool(ref) == bool(secret):
            raise InvalidArgument(
                "a webhook needs exactly one signing key: secret_ref (the name of a secret "
                "of the coordinator, recommended) or secret (stored encrypted)"
            )
        if secret and len(secret) < 16:
            raise InvalidArgument("secret must be at least 16 characters")
        sealed = self._redactor.seal_text(secret) if secret else ""
        config = WebhookConfig.parse({**data, "secret_ref": ref, "sealed_secret": sealed})
        if ref:
            try:
                self._secret(ref)
            except NotFound as e:
                raise FailedPrecondition(f"webhook secret_ref: {e}") from None
        now = _now()
        await self._store.put_document(
            DocumentRecord(WEBHOOK, config.id, config.to_data(), now, namespace)
        )
        self._hooks[config.id] = (namespace, config, now)
        return self._info(config.id)

    async def delete(self, namespace: str, webhook_id: str) -> None:
        """Delete a webhook with its pending deliveries and dead letters."""
        self._own(namespace, webhook_id)
        del self._hooks[webhook_id]
        self._dead.pop(webhook_id, None)
        await self._store.delete_document(WEBHOOK, webhook_id, namespace)
        for kind in (DELIVERY, DEAD):
            for doc in await self._store.list_documents(kind, namespace):
                if doc.data.get("webhook_id") == webhook_id:
                    await self._store.delete_document(kind, doc.name, namespace)
                    self._forget(doc.name)

    def get(self, namespace: str, webhook_id: str) -> WebhookInfo:
        """One webhook of ``namespace`` (``NotFound`` otherwise)."""
        self._own(namespace, webhook_id)
        return self._info(webhook_id)

    def webhooks(self, namespace: str) -> list[WebhookInfo]:
        """The webhooks of ``namespace``, oldest first."""
        mine = [i for i, (ns, _, _) in self._hooks.items() if ns == namespace]
        return sorted((self._info(i) for i in mine), key=lambda w: (w.created, w.config.id))

    async def dead_letters(self, namespace: str, webhook_id: str = "") -> list[Delivery]:
        """The dead letters of ``namespace`` (of one webhook when given), oldest first."""
        if webhook_id:
            self._own(namespace, webhook_id)
        docs = await self._store.list_documents(DEAD, namespace)
        found = [Delivery.from_data(d.data) for d in docs]
        return [d for d in found if not webhook_id or d.webhook_id == webhook_id]

    async def redeliver(
        self, namespace: str, webhook_id: str = "", ids: tuple[str, ...] = ()
    ) -> int:
        """Put dead letters back in the outbox (the ones named, else all of the webhook,
        else all of the namespace) with a fresh budget; how many."""
        letters = await self.dead_letters(namespace, webhook_id)
        if ids:
            unknown = set(ids) - {d.id for d in letters}
            if unknown:
                raise NotFound(f"no dead letter {sorted(unknown)[0]!r} in namespace {namespace!r}")
            letters = [d for d in letters if d.id in ids]
        for d in letters:
            fresh = replace(d, attempts=0, next_at=None, failed_at=None)
            await self._put(DELIVERY, namespace, fresh)
            await self._store.delete_document(DEAD, d.id, namespace)
            self._dead[d.webhook_id] = max(0, self._dead.get(d.webhook_id, 0) - 1)
            self._schedule(namespace, fresh)
        return len(letters)

    def counts(self) -> dict[str, tuple[int, int, int]]:
        """namespace -> (pending deliveries, dead letters, delivered since this
        coordinator led), over its webhooks: what metrics report."""
        out: dict[str, tuple[int, int, int]] = {}
        pending: dict[str, int] = {}
        for ns, _ in self._pending.values():
            pending[ns] = pending.get(ns, 0) + 1
        for hook_id, (ns, _, _) in self._hooks.items():
            p, dead, done = out.get(ns, (pending.get(ns, 0), 0, 0))
            out[ns] = (p, dead + self._dead.get(hook_id, 0), done + self._delivered.get(hook_id, 0))
        return out

    @property
    def pending(self) -> int:
        """Deliveries stored and not yet delivered (or dead)."""
        return len(self._pending)

    @property
    def queued(self) -> int:
        """Deliveries accepted and not yet stored."""
        return len(self._queue)

    def _own(self, namespace: str, webhook_id: str) -> None:
        hook = self._hooks.get(webhook_id)
        if hook is None or hook[0] != namespace:
            raise NotFound(f"no webhook {webhook_id!r} in namespace {namespace!r}")

    def _info(self, webhook_id: str) -> WebhookInfo:
        namespace, config, created = self._hooks[webhook_id]
        pending = sum(1 for _, d in self._pending.values() if d.webhook_id == webhook_id)
        return WebhookInfo(
            config,
            namespace,
            created,
            pending=pending,
            dead=self._dead.get(webhook_id, 0),
            delivered=self._delivered.get(webhook_id, 0),
            last_error=self._last_error.get(webhook_id, ""),
        )


def _retry_after(value: str | None) -> float:
    """Seconds a ``Retry-After`` header asks for (0 when absent or unreadable)."""
    if not value:
        return 0.0
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, (when - _now()).total_seconds())
