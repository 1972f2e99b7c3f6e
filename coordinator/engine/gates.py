"""Flow control for workflow steps: concurrency keys and rate limits.

A task or service step with ``concurrency: {key, limit}`` or ``rateLimit: {key,
perSecond, burst}`` carries its ``Gate``s on its command (the core evaluated the key). Before
the task is dispatched (or the call made), ``Gates.admit`` takes a slot of each gate; when
one is full the dispatch waits in one FIFO queue, never dropped, and its history says why
(``TaskWaiting``). A slot comes back when the task ends (``release``), and a rate limit's
token with time, and the queue is scanned in order: a waiting task of another key is not
held up by a full one. Counts are per (namespace, group, key value) and live in memory:
after a restart, recovery dispatches the outstanding tasks again through the same gates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from coordinator.engine import events as ev

Owner = tuple[str, str]  # (execution id, task or call key)
Slot = tuple[str, str, str]  # (namespace, group, key value)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass(slots=True)
class _Waiting:
    owner: Owner
    namespace: str
    gates: tuple[ev.Gate, ...]
    go: Callable[[], None]
    held: list[Slot] = field(default_factory=list)


class Gates:
    """Every gate's state, and the dispatches waiting for one (module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._running: dict[Slot, int] = {}
        self._buckets: dict[Slot, _Bucket] = {}
        self._queue: list[_Waiting] = []
        self._held: dict[Owner, list[Slot]] = {}
        self._timer: asyncio.TimerHandle | None = None

    @property
    def queued(self) -> int:
        """Dispatches waiting for a gate."""
        return len(self._queue)

    def running(self, namespace: str, group: str, key: str) -> int:
        """Tasks holding a concurrency slot of (namespace, group, key)."""
        return self._running.get((namespace, group, key), 0)

    def admit(
        self, owner: Owner, namespace: str, gates: tuple[ev.Gate, ...], go: Callable[[], None]
    ) -> str:
        """Call ``go()`` now if every gate has room (and take it), and return ""; else
        queue it (``go()`` runs when they have) and return why it waits."""
        waiting = _Waiting(owner, namespace, gates, go)
        why = self._blocked(waiting)
        if why:
            self._queue.append(waiting)
            self._arm()
            return why
        self._take(waiting)
        go()
        return ""

    def release(self, owner: Owner) -> None:
        """``owner``'s task ended (or was cancelled): give its slots back, or drop it
        from the queue; then admit what now fits."""
        slots = self._held.pop(owner, None)
        if slots is None:
            before = len(self._queue)
            self._queue = [w for w in self._queue if w.owner != owner]
            if len(self._queue) == before:
                return
        else:
            for slot in slots:
                left = self._running.get(slot, 0) - 1
                if left > 0:
                    self._running[slot] = left
                else:
                    self._running.pop(slot, None)
        self._pump()

    def clear(self) -> None:
        """Forget everything (the runtime stopped; recovery dispatches again)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self._held.clear()
        self._running.clear()
        self._buckets.clear()

    def _slot(self, namespace: str, gate: ev.Gate) -> Slot:
        return (namespace, gate.group, gate.key)

    def _bucket(self, slot: Slot, gate: ev.Gate) -> _Bucket:
        now = self._clock()
        b = self._buckets.get(slot)
        if b is None:
            b = self._buckets[slot] = _Bucket(float(gate.burst), now)
        b.tokens = min(float(gate.burst), b.tokens + (now - b.at) * gate.per_second)
        b.at = now
        return b

    def _blocked(self, w: _Waiting) -> str:
        for gate in w.gates:
            slot = self._slot(w.namespace, gate)
            if gate.limit and self._running.get(slot, 0) >= gate.limit:
                return (
                    f"concurrency limit {gate.limit} of {gate.group!r} reached for key {gate.key!r}"
                )
            if gate.per_second and self._bucket(slot, gate).tokens < 1.0:
                return f"rate limit {gate.per_second:g}/s of {gate.group!r} for key {gate.key!r}"
        return ""

    def _take(self, w: _Waiting) -> None:
        held: list[Slot] = []
        for gate in w.gates:
            slot = self._slot(w.namespace, gate)
            if gate.limit:
                self._running[slot] = self._running.get(slot, 0) + 1
                held.append(slot)
            if gate.per_second:
                self._bucket(slot, gate).tokens -= 1.0
        self._held[w.owner] = held

    def _pump(self) -> None:
        ready = []
        for w in list(self._queue):
            if not self._blocked(w):
                self._queue.remove(w)
                self._take(w)
                ready.append(w)
        for w in ready:
            w.go()
        self._arm()

    def _arm(self) -> None:
        """Wake up when the first rate-limited waiter's token is due."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        delays = []
        for w in self._queue:
            for gate in w.gates:
                if gate.per_second:
                    b = self._bucket(self._slot(w.namespace, gate), gate)
                    if b.tokens < 1.0:
                        delays.append((1.0 - b.tokens) / gate.per_second)
        if delays:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.001, min(delays)), self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._pump()
