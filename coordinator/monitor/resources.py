"""The process's own resources and health, for SystemMetrics.

``Resources`` samples CPU and memory and carries the network byte counters the gRPC
layer bumps per message; ``LoopLag`` measures how late the event loop runs its
callbacks; ``health`` turns those and the caller's facts into a status and its reasons.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

HEALTHY: Final = "healthy"
DEGRADED: Final = "degraded"
UNHEALTHY: Final = "unhealthy"


class NetworkCounter:
    """Bytes received and sent, counted by whoever moves them (plain counters)."""

    __slots__ = ("_in", "_out")

    def __init__(self) -> None:
        self._in = 0
        self._out = 0

    def received(self, n: int) -> None:
        """Count ``n`` bytes received; ValueError when negative."""
        if n < 0:
            raise ValueError(f"negative byte count {n}")
        self._in += n

    def sent(self, n: int) -> None:
        """Count ``n`` bytes sent; ValueError when negative."""
        if n < 0:
            raise ValueError(f"negative byte count {n}")
        self._out += n

    @property
    def bytes_in(self) -> int:
        """Bytes received since construction."""
        return self._in

    @property
    def bytes_out(self) -> int:
        """Bytes sent since construction."""
        return self._out


class Resources:
    """CPU and memory of this process, and its ``network`` counters."""

    def __init__(self) -> None:
        self.network = NetworkCounter()
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def cpu_percent(self) -> float:
        """Percent of one core this process used since the previous call (the first call:
        since construction); above 100 when it used more than one core."""
        cpu, wall = time.process_time(), time.monotonic()
        used, elapsed = cpu - self._cpu, wall - self._wall
        self._cpu, self._wall = cpu, wall
        if elapsed <= 0:
            return 0.0
        return max(0.0, used / elapsed * 100.0)

    @staticmethod
    def memory_bytes() -> int:
        """Resident set size in bytes: ``/proc/self/statm``, or, where there is no /proc,
        the peak resident size ``getrusage`` reports."""
        try:
            with open("/proc/self/statm", encoding="ascii") as f:
                resident_pages = int(f.read().split()[1])
            return resident_pages * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class LoopLag:
    """Event-loop lag: every ``interval`` seconds a task sleeps and records how late it
    woke up. ``lag_ms`` is the latest sample, ``max_recent_ms`` the largest of the last
    ``samples``. ``start()`` in the loop to measure; ``await stop()`` (safe twice)."""

    def __init__(self, interval: float = 0.25, samples: int = 10) -> None:
        if interval <= 0 or samples < 1:
            raise ValueError("interval must be > 0 and samples >= 1")
        self.interval = interval
        self._recent: deque[float] = deque(maxlen=samples)
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[asyncio.Future[float]] = []

    @property
    def lag_ms(self) -> float:
        """The latest sample, in milliseconds (0.0 before the first)."""
        return self._recent[-1] if self._recent else 0.0

    @property
    def max_recent_ms(self) -> float:
        """The largest of the recent samples, in milliseconds (0.0 before the first)."""
        return max(self._recent, default=0.0)

    def start(self) -> None:
        """Start measuring in the running loop (RuntimeError without one); no-op when
        already started."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        """Stop measuring and wait for the task to end; safe to call twice, or after the
        loop cancelled the task. Cancelling ``stop`` still cancels the task."""
        task, self._task = self._task, None
        self._wake()
        if task is None or task.done():
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our caller is being cancelled too: let it be

    async def next_sample(self) -> float:
        """Wait for the next sample and return it, in milliseconds (the latest one if the
        measurement stops first). Cancelling it only stops the wait."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        if self._task is None:
            self._wake()
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                before = loop.time()
                await asyncio.sleep(self.interval)
                late = loop.time() - before - self.interval
                self._recent.append(max(0.0, late * 1000.0))
                self._wake()
        finally:
            self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(self.lag_ms)


def health(
    *,
    store_ok: bool,
    engine_ok: bool,
    loop_lag_ms: float,
    starved: Sequence[str],
    error_rate: float,
    lag_degraded_ms: float = 250.0,
    lag_unhealthy_ms: float = 2000.0,
    error_degraded: float = 0.5,
) -> tuple[str, list[str]]:
    """The coordinator's health status ("healthy", "degraded" or "unhealthy") and the
    reasons for it, one short sentence each (every rule that holds, worst first).

    - unhealthy when the store is unavailable (``store_ok`` false), the workflow engine is
      stopped (``engine_ok`` false), or the event-loop lag is at least
      ``lag_unhealthy_ms`` (default 2000 ms);
    - degraded when a capability with queued tasks has no live agent (``starved`` names
      them), the event-loop lag is at least ``lag_degraded_ms`` (default 250 ms), or the
      task error rate over the metrics window is at least ``error_degraded`` (default 0.5);
    - healthy otherwise (no reasons).
    """
    bad: list[str] = []
    if not store_ok:
        bad.append("the store is unavailable")
    if not engine_ok:
        bad.append("the workflow engine is stopped")
    if loop_lag_ms >= lag_unhealthy_ms:
        bad.append(
            f"event-loop lag is {loop_lag_ms:.0f} ms (unhealthy from {lag_unhealthy_ms:.0f} ms)"
        )
    poor: list[str] = []
    for capability in dict.fromkeys(starved):
        poor.append(f"no live agent for queued capability {capability!r}")
    if lag_degraded_ms <= loop_lag_ms < lag_unhealthy_ms:
        poor.append(
            f"event-loop lag is {loop_lag_ms:.0f} ms (degraded from {lag_degraded_ms:.0f} ms)"
        )
    if error_rate >= error_degraded:
        poor.append(
            f"task error rate is {error_rate:.0%} over the metrics window"
            f" (degraded from {error_degraded:.0%})"
        )
    if bad:
        return UNHEALTHY, bad + poor
    return (DEGRADED, poor) if poor else (HEALTHY, [])


@dataclass(frozen=True, slots=True)
class Sample:
    """The process's resource use, sampled every ``metrics_interval``."""

    cpu_percent: float = 0.0
    memory_bytes: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    storage_bytes: int = 0
    loop_lag_ms: float = 0.0
