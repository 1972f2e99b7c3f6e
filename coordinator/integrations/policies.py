"""What protects a service and the mesh from each other: a circuit breaker, a token
bucket and a response cache. Each keeps its state in memory on the leader (a new leader
starts them afresh: closed, full, empty) and reads time from ``clock`` (monotonic
seconds), so tests can drive them."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Clock = Callable[[], float]
BreakerState = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """Closed: calls go through, and ``failures`` failures in a row open it. Open: calls
    are refused for ``open_s`` seconds. Then half-open: one probe goes through; its
    success closes the breaker, its failure opens it again. ``on_change(old, new)`` is
    told of every change (metrics, events)."""

    def __init__(
        self,
        failures: int,
        open_s: float,
        *,
        clock: Clock = time.monotonic,
        on_change: Callable[[BreakerState, BreakerState], None] | None = None,
    ) -> None:
        self.failures = failures
        self.open_s = open_s
        self._clock = clock
        self._on_change = on_change
        self._state: BreakerState = "closed"
        self._streak = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """``closed``, ``open`` or ``half-open`` (an open one turns half-open in time)."""
        if self._state == "open" and self._clock() - self._opened_at >= self.open_s:
            self._set("half-open")
        return self._state

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a probe through (0 unless open)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self.open_s - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Whether a call may go now (half-open: only the one probe)."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._probing:
            self._probing = True
            return True
        return False

    def succeeded(self) -> None:
        """A call went through: the streak ends, a half-open breaker closes."""
        self._streak = 0
        self._probing = False
        if self._state != "closed":
            self._set("closed")

    def failed(self) -> None:
        """A call failed: a streak of ``failures``, or a failed probe, opens it."""
        self._probing = False
        self._streak += 1
        if self._state == "half-open" or (
            self._state == "closed" and self._streak >= self.failures
        ):
            self._opened_at = self._clock()
            self._set("open")

    def _set(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        if self._on_change is not None and old != new:
            self._on_change(old, new)


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up (at least one). ``take``
    waits for a token, in arrival order: calls over the rate are delayed, never
    dropped, unless they would wait past ``max_wait`` seconds (then False)."""

    def __init__(self, rate: float, burst: int = 0, *, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._tokens = float(self.burst)
        self._at = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    async def take(self, max_wait: float) -> bool:
        """Wait for a token (True), or say at once that none comes within ``max_wait``."""
        async with self._lock:  # one waiter at a time: arrival order
            self._refill()
            wait = (1.0 - self._tokens) / self.rate if self._tokens < 1.0 else 0.0
            if wait > max_wait:
                return False
            if wait > 0:
                await asyncio.sleep(wait)
                self._refill()
            self._tokens -= 1.0
            return True


@dataclass(frozen=True, slots=True)
class Cached:
    """A cached answer: its status and value, and when it expires (clock time)."""

    status: int
    value: Any
    expires: float


class ResponseCache:
    """Answers of idempotent operations by key, for ``ttl`` seconds (a response's
    ``Cache-Control: max-age`` lowers it, ``no-store``/``no-cache``/``private`` keep it
    out), at most ``entries`` of them (the least recently used go first)."""

    def __init__(self, ttl: float, entries: int, *, clock: Clock = time.monotonic) -> None:
        self.ttl = ttl
        self.entries = entries
        self._clock = clock
        self._items: OrderedDict[str, Cached] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Cached | None:
        found = self._items.get(key)
        if found is not None and found.expires > self._clock():
            self._items.move_to_end(key)
            self.hits += 1
            return found
        if found is not None:
            del self._items[key]
        self.misses += 1
        return None

    def put(self, key: str, status: int, value: Any, cache_control: str = "") -> None:
        ttl = _ttl(self.ttl, cache_control)
        if ttl <= 0:
            return
        self._items[key] = Cached(status, value, self._clock() + ttl)
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def _ttl(ttl: float, cache_control: str) -> float:
    """``ttl`` as the response's ``Cache-Control`` allows."""
    for directive in (d.strip().lower() for d in cache_control.split(",")):
        if directive in ("no-store", "no-cache", "private"):
            return 0.0
        if directive.startswith(("max-age=", "s-maxage=")):
            try:
                ttl = min(ttl, float(directive.partition("=")[2]))
            except ValueError:
                return 0.0
    return ttl
