"""Leader election with fencing, following etcd's concurrency recipe.

    ElectionError        (coordinator.errors, where the whole tree is drawn)
    ├── NotCampaigning   an operation needs an election key we do not hold
    └── Fenced           a write guarded by our election key was refused: a newer
                         leader exists (or our lease expired); step down at once

``Session`` holds a lease and keeps it alive; ``session.done`` is set when the
lease can no longer be trusted: etcd said the lease is gone (``LeaseNotFound``,
or a keepalive answered with no TTL left), or the lease's TTL ran out on our
monotonic clock (minus a margin) without a successful keepalive - a process
paused past its TTL must assume it lost everything (a lease is not a lock).

A short etcd outage (a keepalive raising ``KVUnavailable`` or timing out: lost
quorum, a member failing over, a network blip) does *not* end the session: the
keepalive is retried every ``min(0.5 s, ttl / 6)`` for as long as the lease is
still trusted on our clock, and only when that trust runs out is ``done`` set.
Meanwhile ``session.reachable`` is False and ``session.last_error`` says why,
so a replica can report NOT_SERVING without giving up its leadership.  Trust
is measured from when the last *successful* keepalive was sent, so an outage
never extends it: a lease that etcd may have expired is never treated as held.

``Election.campaign`` creates ``<prefix>/<lease id>`` only if absent,
orders candidates by create revision and waits only for its predecessor.
Leadership is proven to etcd on every write by ``fence()``: a compare that our
election key still exists with the create revision we campaigned with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from coordinator.errors import ElectionError, Fenced, NotCampaigning
from coordinator.kv._api import (
    KV,
    Compare,
    Delete,
    KeyValue,
    KVError,
    KVUnavailable,
    LeaseNotFound,
    Put,
    Range,
)

log = logging.getLogger(__name__)

__all__ = ["Election", "ElectionError", "Fenced", "NotCampaigning", "Session"]


class Session:
    """A lease kept alive in the background. Use as ``async with Session(kv, ttl)``.

    A keepalive is sent every ``ttl / 3`` seconds.  ``done`` is set when the lease is
    lost (``LeaseNotFound``, no TTL left, or any other ``KVError`` but
    ``KVUnavailable``) or can no longer be trusted: the last successful keepalive was
    sent more than ``ttl * (1 - margin)`` seconds ago on ``clock``.  A keepalive that
    raises ``KVUnavailable`` or times out is retried every ``min(0.5 s, ttl / 6)``
    until then; ``reachable`` is False (and ``last_error`` set) from such a failure
    until the next keepalive succeeds.  Cancelling the keepalive (``close()``)
    revokes the lease.
    """

    def __init__(
        self,
        kv: KV,
        ttl: int = 10,
        *,
        margin: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 2:
            raise ValueError("a session TTL under 2 s leaves no time to keep it alive")
        self.kv = kv
        self.ttl = ttl
        self.lease = 0
        self.done = asyncio.Event()
        self._margin = margin
        self._clock = clock
        self._valid_until = 0.0
        self._task: asyncio.Task[None] | None = None
        self._last_error = ""

    async def __aenter__(self) -> Session:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        started = self._clock()
        self.lease = await self.kv.grant(self.ttl)
        self._valid_until = started + self.ttl * (1 - self._margin)
        self._task = asyncio.create_task(self._keepalive(), name=f"lease-{self.lease:x}")

    @property
    def alive(self) -> bool:
        """True while the lease is known to be held (checked on the monotonic clock)."""
        return not self.done.is_set() and self._clock() < self._valid_until

    @property
    def reachable(self) -> bool:
        """False from a keepalive that failed as unavailable (or timed out) until the
        next one succeeds. The lease may still be trusted meanwhile (see ``alive``)."""
        return not self._last_error

    @property
    def last_error(self) -> str:
        """Why the last keepalive failed; "" while ``reachable``."""
        return self._last_error

    async def _keepalive(self) -> None:
        period = self.ttl / 3
        retry = min(0.5, self.ttl / 6)
        delay = period
        try:
            while True:
                # Never sleep past the end of the trust window: done must be set then.
                await asyncio.sleep(max(0.0, min(delay, self._valid_until - self._clock())))
                sent = self._clock()
                if sent >= self._valid_until:
                    why = f"; etcd unreachable: {self._last_error}" if self._last_error else ""
                    raise LeaseNotFound(f"lease outlived its TTL without a keepalive{why}")
                try:
                    # Bounded by the trust left too: a late answer cannot help.
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                    # cancellation that races the inner call's completion.
                    async with asyncio.timeout(min(period, self._valid_until - sent)):
                        remaining = await self.kv.keepalive(self.lease)
                except (KVUnavailable, TimeoutError) as e:
                    self._unreachable(e)
                    delay = retry
                    continue
                if remaining <= 0:
                    raise LeaseNotFound(f"lease {self.lease:x} expired")
                self._valid_until = sent + remaining * (1 - self._margin)
                self._reachable()
                delay = period
        except asyncio.CancelledError:
            raise
        except KVError as e:
            log.warning("session lease %x lost: %s", self.lease, e)
            self.done.set()

    def _unreachable(self, error: BaseException) -> None:
        message = str(error) or type(error).__name__
        if not self._last_error:
            log.warning(
                "session lease %x: etcd unreachable (%s); retrying, lease trusted for %.1f s",
                self.lease,
                message,
                max(0.0, self._valid_until - self._clock()),
            )
        self._last_error = message

    def _reachable(self) -> None:
        if self._last_error:
            log.info("session lease %x: etcd reachable again", self.lease)
        self._last_error = ""

    async def close(self) -> None:
        """Stop the keepalive and revoke the lease (best effort). Safe twice."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.lease and not self.done.is_set():
            with contextlib.suppress(KVError, TimeoutError):
                async with asyncio.timeout(2.0):
                    await self.kv.revoke(self.lease)
        self.done.set()


@dataclass(frozen=True, slots=True)
class Leader:
    """The current leader's election key, its value (who and where) and create revision."""

    key: bytes
    value: bytes
    create_revision: int


class Election:
    """Campaign for ``prefix`` within ``session``; at most one leader at a time."""

    def __init__(self, session: Session, prefix: str) -> None:
        self.session = session
        self.kv = session.kv
        self.prefix = prefix.rstrip("/").encode() + b"/"
        self.key = b""
        self.revision = 0

    @property
    def leading(self) -> bool:
        """Whether we hold the election key and our session is still trusted."""
        return bool(self.key) and self.session.alive

    def fence(self) -> Compare:
        """The compare every leader write carries: our key, our create revision."""
        if not self.key:
            raise NotCampaigning("not campaigning")
        return Compare(self.key, "create", "=", self.revision)

    async def campaign(self, value: bytes) -> None:
        """Become leader; returns once elected. Cancelling it withdraws the candidacy."""
        key = self.prefix + f"{self.session.lease:x}".encode()
        result = await self.kv.txn(
            [Compare(key, "create", "=", 0)],
            [Put(key, value, self.session.lease)],
            [Range(key)],
        )
        if result.succeeded:
            revision = result.revision
        else:  # re-campaign with the same lease: keep our place, refresh the value
            existing = result.ranges[0][0]
            revision = existing.create_revision
            await self.kv.put(key, value, self.session.lease)
        self.key, self.revision = key, revision
        try:
            await self._wait_predecessors()
        except BaseException:
            await self._withdraw()
            raise
        if not self.session.alive:
            self.key = b""
            raise ElectionError("session lost while campaigning")

    async def _wait_predecessors(self) -> None:
        while True:
            kvs, header = await self.kv.range(self.prefix, prefix=True, sort_by_create=True)
            before = [kv for kv in kvs if kv.create_revision < self.revision]
            if not before:
                return
            predecessor = before[-1]
            # Wait only for the one right before us (no herd on the leader's key).
            async for event in self.kv.watch(predecessor.key, start_revision=header + 1):
                if event.type == "delete":
                    break
            if self.session.done.is_set():
                raise ElectionError("session lost while campaigning")

    async def proclaim(self, value: bytes) -> None:
        """Change the leader's value without an election. Raises Fenced if deposed."""
        result = await self.kv.txn([self.fence()], [Put(self.key, value, self.session.lease)], [])
        if not result.succeeded:
            self.key = b""
            raise Fenced("leadership lost: the election key changed")

    async def resign(self) -> None:
        """Give up leadership (and the candidacy). Safe when not leading."""
        await self._withdraw()

    async def _withdraw(self) -> None:
        if self.key:
            with contextlib.suppress(KVError):
                await self.kv.txn([self.fence()], [Delete(self.key)], [])
            self.key = b""

    async def leader(self) -> Leader | None:
        """The current leader (the oldest candidate), or None. Raises ``KVError``."""
        kvs, _ = await self.kv.range(self.prefix, prefix=True, sort_by_create=True, limit=1)
        return _leader(kvs[0]) if kvs else None

    async def observe(self) -> AsyncIterator[Leader | None]:
        """Yield the leader now and each time it changes (None while there is none)."""
        current = await self.leader()
        yield current
        _, header = await self.kv.range(self.prefix, prefix=True, limit=1)
        async for _ in self.kv.watch(self.prefix, prefix=True, start_revision=header + 1):
            now = await self.leader()
            if now != current:
                current = now
                yield current


def _leader(kv: KeyValue) -> Leader:
    return Leader(kv.key, kv.value, kv.create_revision)
