"""Session through etcd outages, on MemoryKV with a stepped clock (no real etcd).

Lease trust is measured on the injected clock, which only moves when a test moves it;
the keepalive cadence (``ttl / 3``, retries every ``min(0.5, ttl / 6)``) is real time.
With the minimum TTL of 2 s that is a keepalive every 0.67 s and a retry every 0.33 s.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from coordinator.kv import KVUnavailable
from coordinator.kv.election import Session
from coordinator.kv.memory import MemoryKV

pytestmark = pytest.mark.timeout(20)

TTL = 2
PERIOD = TTL / 3
RETRY = TTL / 6


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingKV(MemoryKV):
    """A MemoryKV that counts the keepalives it refused as unavailable."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock=clock)
        self.refused = 0

    async def keepalive(self, lease_id: int) -> int:
        try:
            return await super().keepalive(lease_id)
        except KVUnavailable:
            self.refused += 1
            raise


async def wait_until(predicate: object, within: float) -> None:
    assert callable(predicate)
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_a_short_outage_does_not_end_the_session(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    kv = CountingKV(clock)
    caplog.set_level(logging.INFO, logger="coordinator.kv.election")
    async with Session(kv, ttl=TTL, clock=clock) as session:
        assert session.reachable and session.last_error == ""
        kv.set_unavailable(True)
        await wait_until(lambda: not session.reachable, PERIOD + 1)
        assert "unavailable" in session.last_error
        # Several retries fail; time passes, but less than the trust window (1.5 s).
        clock.now += 1.0
        refused = kv.refused
        await wait_until(lambda: session.done.is_set() or kv.refused >= refused + 2, 3 * RETRY + 1)
        assert not session.done.is_set() and session.alive and not session.reachable
        kv.set_unavailable(False)
        await wait_until(lambda: session.reachable, RETRY + 1)
        assert session.last_error == "" and session.alive and not session.done.is_set()
        # The lease was refreshed in etcd too: it outlives the original deadline.
        clock.now += 1.0
        assert kv.expire() == []
        assert session.alive
    records = [r for r in caplog.records if r.name == "coordinator.kv.election"]
    warnings = [r for r in records if r.levelno == logging.WARNING]
    infos = [r for r in records if r.levelno == logging.INFO]
    # One line each way, however many retries failed in between.
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
    assert len(infos) == 1 and "reachable again" in infos[0].getMessage()


async def test_an_outage_past_the_trust_window_ends_the_session() -> None:
    clock = Clock()
    kv = MemoryKV(clock=clock)
    session = Session(kv, ttl=TTL, clock=clock)
    await session.open()
    try:
        kv.set_unavailable(True)
        await wait_until(lambda: not session.reachable, PERIOD + 1)
        assert not session.done.is_set()
        clock.now += TTL * 0.75  # the whole trust window (ttl * (1 - margin))
        assert not session.alive
        await asyncio.wait_for(session.done.wait(), RETRY + 1)
        assert not session.reachable and "unavailable" in session.last_error
        # etcd coming back does not revive a session that gave up: its keepalive loop
        # ended when it set ``done``, so no later keepalive can refresh the lease.
        kv.set_unavailable(False)
        assert session._task is not None and session._task.done()
        assert session.done.is_set() and not session.alive
    finally:
        await session.close()


async def test_lease_not_found_ends_the_session_at_once() -> None:
    clock = Clock()
    kv = MemoryKV(clock=clock)
    session = Session(kv, ttl=TTL, clock=clock)
    await session.open()
    try:
        await kv.revoke(session.lease)
        # The next keepalive (one period) learns it: no retries, no waiting for trust.
        await asyncio.wait_for(session.done.wait(), PERIOD + 0.5)
        assert session.reachable, "etcd answered: this was not an outage"
    finally:
        await session.close()


async def test_lease_expired_during_an_outage_ends_the_session_when_etcd_answers() -> None:
    clock = Clock()
    kv = MemoryKV(clock=clock)
    session = Session(kv, ttl=TTL, clock=clock)
    await session.open()
    try:
        kv.set_unavailable(True)
        await wait_until(lambda: not session.reachable, PERIOD + 1)
        # etcd expired the lease meanwhile (its clock, not ours, decides).
        kv.set_unavailable(False)
        clock.now += TTL
        assert kv.expire() == [session.lease]
        clock.now -= TTL  # our clock still trusts it
        await asyncio.wait_for(session.done.wait(), RETRY + 1)
    finally:
        await session.close()


async def test_a_keepalive_that_hangs_is_retried_as_an_outage() -> None:
    clock = Clock()
    kv = MemoryKV(clock=clock)
    hang = asyncio.Event()
    real_keepalive = kv.keepalive

    async def keepalive(lease_id: int) -> int:
        if hang.is_set():
            await asyncio.sleep(3600)
        return await real_keepalive(lease_id)

    kv.keepalive = keepalive  # type: ignore[method-assign]
    async with Session(kv, ttl=TTL, clock=clock) as session:
        hang.set()
        # The attempt times out after one period: unreachable, not done.
        await wait_until(lambda: not session.reachable, 2 * PERIOD + 1)
        assert session.last_error == "TimeoutError" and not session.done.is_set()
        hang.clear()
        await wait_until(lambda: session.reachable, PERIOD + RETRY + 1)
        assert not session.done.is_set()
