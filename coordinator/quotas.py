"""Per-namespace quotas (``Settings.quota``): the checks the mesh and the engine make
before they take on more for a namespace, and the event rate's token buckets.

A refusal is ``QuotaExceeded`` (a ``ResourceExhausted``) naming the namespace, the quota and what it holds, so
a tenant over its quota is told so at once and cheaply, and nothing another namespace
does is held back: the counts are per namespace, and so is every bucket. Without any
quota configured every check is one attribute test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from coordinator.config import NamespaceQuota, Settings
from coordinator.errors import QuotaExceeded

#: Event buckets kept before full ones (idle namespaces) are dropped.
MAX_BUCKETS = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class Quotas:
    """The quotas of every namespace, read once from ``settings``."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._default = settings.quota("")  # no namespace is named "": the quota_* fields
        self._named = {ns: settings.quota(ns) for ns in settings.namespace_quotas}
        quotas = [self._default, *self._named.values()]
        #: Whether any quota is set at all (if not, every check returns at once).
        self.enabled = any(
            q.running_executions or q.queued_tasks or q.events_per_second or q.tasks_per_second
            for q in quotas
        )
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}  # (quota, namespace) -> bucket

    def of(self, namespace: str) -> NamespaceQuota:
        """The quota of ``namespace``."""
        return self._named.get(namespace, self._default)

    def check_queued_tasks(self, namespace: str, queued: int, extra: int = 1) -> None:
        """Refuse ``extra`` more queued tasks when ``queued`` already fill the quota."""
        if not self.enabled:
            return
        limit = self.of(namespace).queued_tasks
        if limit and queued + extra > limit:
            raise QuotaExceeded(
                f"namespace {namespace!r} has {queued} tasks queued for an agent and its "
                f"quota queued_tasks is {limit}; retry once some are taken",
                namespace,
            )

    def check_running_executions(self, namespace: str, unfinished: int) -> None:
        """Refuse another top-level execution when ``unfinished`` fill the quota."""
        if not self.enabled:
            return
        limit = self.of(namespace).running_executions
        if limit and unfinished >= limit:
            raise QuotaExceeded(
                f"namespace {namespace!r} has {unfinished} unfinished executions and its "
                f"quota running_executions is {limit}; retry once some finish",
                namespace,
            )

    def take_event(self, namespace: str) -> None:
        """One event of ``namespace`` against its ``events_per_second`` (a token bucket
        holding one second's worth: a burst of that many passes, then the steady rate),
        or QuotaExceeded saying when to retry."""
        if self.enabled:
            self._take("events_per_second", namespace, 1)

    def take_tasks(self, namespace: str, n: int = 1) -> None:
        """``n`` task submissions of ``namespace`` against its ``tasks_per_second``
        (the same kind of bucket), or QuotaExceeded with ``retry_after``."""
        if self.enabled:
            self._take("tasks_per_second", namespace, n)

    def _take(self, kind: str, namespace: str, n: int) -> None:
        rate = float(getattr(self.of(namespace), kind))
        if not rate:
            return
        now = self._clock()
        capacity = max(rate, 1.0)
        bucket = self._buckets.get((kind, namespace))
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._prune(now)
            bucket = self._buckets[(kind, namespace)] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        need = min(float(n), capacity)  # a batch bigger than a burst waits for a full one
        if bucket.tokens < need:
            wait = (need - bucket.tokens) / rate
            raise QuotaExceeded(
                f"namespace {namespace!r} is over its quota {kind} {rate:g}; retry in {wait:.2f}s",
                namespace,
                retry_after=wait,
            )
        bucket.tokens -= need

    def _prune(self, now: float) -> None:
        """Drop the buckets that have refilled (forgetting them changes nothing)."""
        for key, b in list(self._buckets.items()):
            kind, namespace = key
            rate = float(getattr(self.of(namespace), kind))
            if b.tokens + (now - b.stamp) * rate >= max(rate, 1.0):
                del self._buckets[key]
