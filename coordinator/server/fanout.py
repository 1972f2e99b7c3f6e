"""Live SSE subscribers share upstream subscriptions: one ``SubscribeBatches`` call per
distinct (credentials, namespace, filter), its batches fanned out to every browser that
asked for the same thing.

Without it, 200 browsers following the overview are 200 gRPC streams through the loopback
socket, each encoding and decoding every batch: bench/web.py measured that hop as most of
the coordinator's CPU at 10 000 deliveries/s. With it, a batch crosses the hop once and is
written to each subscriber's socket.

What stays per subscriber: the check. Each one first makes its own short subscription
(``stop_at_head``, from now), so authentication, authorization, the filter's execution
lookup and ``max_subscribers`` are decided by the gRPC path for each browser, as before;
only the data path is shared. The hub counts its subscribers against ``max_subscribers``
too, since the coordinator sees one subscription per upstream. Only live subscriptions
("from now") share: one that resumes (``from``, ``Last-Event-ID``) or stops at the head
needs its own replay and keeps its own call.

A subscriber that falls ``buffer`` events behind (its browser reads slower than events
come) is ended with ``resource_exhausted`` naming the last event it was sent, as the
coordinator ends a slow gRPC subscriber; it resumes with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

import grpc

from coordinator.server.connect import error_body, rpc_error

#: The identity of an upstream: the forwarded metadata (credentials, namespace) and the
#: serialized SubscribeRequest.
Key = tuple[tuple[tuple[str, str], ...], bytes]


class Subscriber:
    """One browser's queue of frames: filled by its upstream, drained by its handler."""

    def __init__(self, buffer: int) -> None:
        self.buffer = buffer
        self.end: dict[str, Any] | None = None  # set once: how the stream ends
        self._frames: deque[bytes] = deque()
        self._events = 0  # events queued, not yet written
        self._last = ""  # the sequence of the last event handed to the writer
        self._wake = asyncio.Event()
        # Where the hub attached it.
        self.key: Key = ((), b"")
        self.upstream: Upstream | None = None

    def push(self, frames: list[bytes]) -> None:
        """Queue a batch's frames (each ``id: <sequence>\\n...``); past ``buffer`` queued
        events, end the subscriber instead."""
        if self.end is not None:
            return
        if self._events + len(frames) > self.buffer:
            self._frames.clear()
            self.finish(
                error_body(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"this subscriber fell {self.buffer} events behind (subscriber_buffer); "
                    f"resume with Last-Event-ID: {self._last or 'the last id you saw'}",
                )
            )
            return
        self._frames.extend(frames)
        self._events += len(frames)
        self._wake.set()

    def finish(self, end: dict[str, Any]) -> None:
        """End the stream (after what is queued) with ``end`` as the end event's data."""
        if self.end is None:
            self.end = end
        self._wake.set()

    async def next(self, timeout: float) -> bytes | None:
        """What to write next: the queued frames joined, ``b""`` after ``timeout``
        seconds with nothing (time for a keepalive), None once it ended and is drained."""
        if not self._frames and self.end is None:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
        if self._frames:
            frames = list(self._frames)
            self._frames.clear()
            self._events = 0
            last = frames[-1]
            self._last = last[4 : last.index(b"\n")].decode()
            return b"".join(frames)
        return None if self.end is not None else b""


class Upstream:
    """One live ``SubscribeBatches`` call and the subscribers it feeds."""

    def __init__(self, call: Any, frames: Callable[[bytes], list[bytes]]) -> None:
        self.subscribers: set[Subscriber] = set()
        self._call = call
        self._frames = frames
        self.ready = asyncio.Event()  # set once subscribed (or failed)
        self.task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        end: dict[str, Any] = {}
        try:
            await self._call.initial_metadata()
            self.ready.set()
            async for data in self._call:
                frames = self._frames(data)
                for sub in tuple(self.subscribers):
                    sub.push(frames)
        except grpc.aio.AioRpcError as e:
            end = error_body(*rpc_error(e))
        finally:
            self.ready.set()
            for sub in self.subscribers:
                sub.finish(end)

    def close(self) -> None:
        """Cancel the call."""
        self._call.cancel()
        self.task.cancel()


class Hub:
    """The shared upstreams by key; ``open(key)`` makes the call of a new one."""

    def __init__(self, frames: Callable[[bytes], list[bytes]], buffer: int, limit: int) -> None:
        self.frames = frames
        self.buffer = buffer
        self.limit = limit
        self.count = 0  # subscribers across every upstream
        self._upstreams: dict[Key, Upstream] = {}

    def full(self) -> bool:
        """Whether ``limit`` subscribers are attached already."""
        return self.count >= self.limit

    async def join(self, key: Key, open_call: Callable[[], Any]) -> Subscriber:
        """A new subscriber of the upstream for ``key`` (opened now if there is none),
        once that upstream subscribed: what is published from then on reaches it.
        Detach it with ``leave`` (cancelled here, it is detached already)."""
        upstream = self._upstreams.get(key)
        if upstream is None or upstream.task.done():
            upstream = Upstream(open_call(), self.frames)
            self._upstreams[key] = upstream
        sub = Subscriber(self.buffer)
        sub.key, sub.upstream = key, upstream
        upstream.subscribers.add(sub)
        self.count += 1
        try:
            await upstream.ready.wait()
        except BaseException:
            self.leave(sub)
            raise
        return sub

    def leave(self, sub: Subscriber) -> None:
        """Detach ``sub`` (again: a no-op); the last one out closes its upstream."""
        upstream = sub.upstream
        if upstream is None or sub not in upstream.subscribers:
            return
        upstream.subscribers.discard(sub)
        self.count -= 1
        if not upstream.subscribers:
            upstream.close()
            if self._upstreams.get(sub.key) is upstream:
                del self._upstreams[sub.key]

    def close(self) -> None:
        """Cancel every upstream (the listener stops)."""
        for upstream in self._upstreams.values():
            upstream.close()
        self._upstreams.clear()
