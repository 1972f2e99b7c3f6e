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
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
    slots: tuple[Slot, ...] = ()
    done: bool = False  # admitted or dropped: skipped where it is still listed


class Gates:
    """Every gate's state, and the dispatches waiting for one (module docstring).

    The waiters are listed per slot, in arrival order, so a freed slot looks only at
    its own waiters (and stops at the first one it cannot admit for want of itself):
    a release costs what it admits, not the length of every queue."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._running: dict[Slot, int] = {}
        self._buckets: dict[Slot, _Bucket] = {}
        self._waiting: dict[Owner, _Waiting] = {}  # in arrival order
        self._by_slot: dict[Slot, deque[_Waiting]] = {}
        self._held: dict[Owner, list[Slot]] = {}
        self._timer: asyncio.TimerHandle | None = None

    @property
    def queued(self) -> int:
        """Dispatches waiting for a gate."""
        return len(self._waiting)

    def running(self, namespace: str, group: str, key: str) -> int:
        """Tasks holding a concurrency slot of (namespace, group, key)."""
        return self._running.get((namespace, group, key), 0)

    def admit(
        self, owner: Owner, namespace: str, gates: tuple[ev.Gate, ...], go: Callable[[], None]
    ) -> str:
        """Call ``go()`` now if every gate has room (and take it), and return ""; else
        queue it (``go()`` runs when they have) and return why it waits."""
        slots = tuple((namespace, g.group, g.key) for g in gates)
        waiting = _Waiting(owner, namespace, gates, go, slots)
        # Behind others waiting for one of its slots it waits too: arrival order holds.
        queued_before = any(self._by_slot.get(slot) for slot in slots)
        why = self._blocked(waiting) or (
            "behind earlier tasks for the same slot" if queued_before else ""
        )
        if why:
            self._waiting[owner] = waiting
            for slot in slots:
                self._by_slot.setdefault(slot, deque()).append(waiting)
            if queued_before and not self._blocked(waiting):
                self._pump(slots)  # the line's head may be free to go by now
            elif any(g.per_second for g in gates):
                self._arm()
            return why if owner in self._waiting else ""
        self._take(waiting)
        go()
        return ""

    def release(self, owner: Owner) -> None:
        """``owner``'s task ended (or was cancelled): give its slots back, or drop it
        from the queue; then admit what now fits."""
        slots = self._held.pop(owner, None)
        if slots is None:
            waiting = self._waiting.pop(owner, None)
            if waiting is not None:
                waiting.done = True
                self._pump(waiting.slots)
            return
        for slot in slots:
            left = self._running.get(slot, 0) - 1
            if left > 0:
                self._running[slot] = left
            else:
                self._running.pop(slot, None)
        self._pump(slots)

    def clear(self) -> None:
        """Forget everything (the runtime stopped; recovery dispatches again)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting.clear()
        self._by_slot.clear()
        self._held.clear()
        self._running.clear()
        self._buckets.clear()

    def _bucket(self, slot: Slot, gate: ev.Gate) -> _Bucket:
        now = self._clock()
        b = self._buckets.get(slot)
        if b is None:
            b = self._buckets[slot] = _Bucket(float(gate.burst), now)
        b.tokens = min(float(gate.burst), b.tokens + (now - b.at) * gate.per_second)
        b.at = now
        return b

    def _blocked(self, w: _Waiting) -> str:
        for gate, slot in zip(w.gates, w.slots, strict=True):
            if gate.limit and self._running.get(slot, 0) >= gate.limit:
                return (
                    f"concurrency limit {gate.limit} of {gate.group!r} reached for key {gate.key!r}"
                )
            if gate.per_second and self._bucket(slot, gate).tokens < 1.0:
                return f"rate limit {gate.per_second:g}/s of {gate.group!r} for key {gate.key!r}"
        return ""

    def _take(self, w: _Waiting) -> None:
        held: list[Slot] = []
        for gate, slot in zip(w.gates, w.slots, strict=True):
            if gate.limit:
                self._running[slot] = self._running.get(slot, 0) + 1
                held.append(slot)
            if gate.per_second:
                self._bucket(slot, gate).tokens -= 1.0
        self._held[w.owner] = held

    def _pump(self, slots: Iterable[Slot]) -> None:
        """Admit, in arrival order, the waiters of ``slots`` that now fit (and then those
        of the other slots of each one admitted: their lines moved too)."""
        ready: list[_Waiting] = []
        todo = list(dict.fromkeys(slots))
        while todo:
            slot = todo.pop()
            line = self._by_slot.get(slot)
            while line:
                w = line[0]
                if w.done:
                    line.popleft()
                    continue
                if not self._first_everywhere(w) or self._blocked(w):
                    break  # the head cannot go: nobody behind it for this slot may
                line.popleft()
                w.done = True
                del self._waiting[w.owner]
                self._take(w)
                ready.append(w)
                todo += [other for other in w.slots if other != slot]
            if line is not None and not line:
                del self._by_slot[slot]
        for w in ready:
            w.go()
        self._arm()

    def _first_everywhere(self, w: _Waiting) -> bool:
        """Whether ``w`` heads the line of each of its slots (stale heads dropped)."""
        for slot in w.slots:
            line = self._by_slot.get(slot)
            while line and line[0].done:
                line.popleft()
            if line and line[0] is not w:
                return False
        return True

    def _arm(self) -> None:
        """Wake up when the first rate-limited head's token is due."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        delays = []
        for line in self._by_slot.values():
            head = next((w for w in line if not w.done), None)
            if head is None:
                continue
            rated = False
            for gate, slot in zip(head.gates, head.slots, strict=True):
                if gate.per_second:
                    rated = True
                    b = self._bucket(slot, gate)
                    if b.tokens < 1.0:
                        delays.append((1.0 - b.tokens) / gate.per_second)
            if rated and not self._blocked(head):
                delays.append(0.0)  # its token came while nothing pumped: now
        if delays:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.001, min(delays)), self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._pump(list(self._by_slot))
