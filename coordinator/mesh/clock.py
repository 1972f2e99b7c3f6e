"""The mesh's time: a monotonic ``now()`` and one-shot timers on it.

The mesh reads the time (liveness, latency) and sets its timers (attempt timeouts,
retry backoff) only through a ``Clock``, so its unit tests can move time by hand
instead of sleeping. ``LoopClock``, the default, is the running asyncio loop's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class Handle(Protocol):
    """A timer that was set."""

    def cancel(self) -> None:
        """Keep the timer from firing; nothing happens if it has fired already."""
        ...


class Clock(Protocol):
    """Monotonic seconds and timers on them, used from one thread (the loop's)."""

    def now(self) -> float:
        """Seconds on a monotonic clock: only differences mean anything."""
        ...

    def call_later(self, delay: float, fn: Callable[[], None]) -> Handle:
        """Call ``fn()`` once, ``delay`` seconds from now, never from within this call."""
        ...


class LoopClock:
    """The asyncio loop's clock: ``loop.time()`` and ``loop.call_later``.

    Raises RuntimeError when built outside a running loop and given none."""

    __slots__ = ("_loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()

    def now(self) -> float:
        """The running loop's monotonic time."""
        return self._loop.time()

    def call_later(self, delay: float, fn: Callable[[], None]) -> Handle:
        """``loop.call_later``: ``fn`` runs on the loop after ``delay`` seconds."""
        return self._loop.call_later(delay, fn)
