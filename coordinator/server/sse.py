"""``GET /v1/events``: the event log as Server-Sent Events, for browsers and ``curl -N``.

The query is a ``SubscribeRequest``: ``execution``, ``workflow``, ``agent``, ``types``
(comma-separated, exact types or prefixes ending in ``*``), ``from`` (resume after that
sequence, or ``start`` for the whole log; default: from now) and ``stop_at_head`` (``1``:
end once the log's present head is sent). ``Last-Event-ID`` (what ``EventSource`` sends
when it reconnects) takes the place of ``from``, so a browser resumes with no gap and no
duplicate. The namespace is ``AgentMesh-Namespace`` or ``?namespace=``; credentials are
``Authorization: Bearer`` or, for ``EventSource`` (which cannot set headers),
``?access_token=`` (it then sits in URLs: prefer the header where a client can set it).

The stream is ``EventService.SubscribeBatches`` (``Subscribe``'s events, order, resume
points and ends, in batches) called through the Connect gateway's loopback channel: the
same auth, filters and refusals. A subscriber that keeps up gets each event as it comes; one
that falls behind gets what piled up in one write, so 200 browsers cost the coordinator a
message per wake-up each, not one per event. A refusal before the
first event is an HTTP error with the Connect error body (``401``, ``403``, ``404`` for an
unknown execution, ``429`` over ``max_subscribers``, ``503`` on a follower); then:

* ``retry: 1000`` and ``: head <sequence>`` (the log's head when the stream started);
* one message per event: ``id: <sequence>``, ``data: <the Event as proto3 JSON>``
  (``type`` is in it; all are ``message`` events, so ``onmessage`` sees every one);
* ``: keepalive`` after ``KEEPALIVE_S`` without an event (proxies keep the connection);
* at the end, ``event: end`` with ``data: {}`` (``stop_at_head``) or the Connect error
  object (``{"code": "resource_exhausted", ...}`` for a subscriber that fell behind:
  reconnect with ``Last-Event-ID``; ``unavailable`` when the coordinator stops).

A frame is encoded once for all the subscribers it goes to (``FRAME_CACHE`` recent ones,
keyed by the event's bytes: the coordinator encodes an event once for everyone). Live
subscribers ("from now") with the same credentials and filter share one upstream call
(``server.fanout``); each is still checked by a call of its own first.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Any, Final

import grpc
from aiohttp import hdrs, web
from google.protobuf import json_format

from agentmesh.protocol import EVENT_HEAD_METADATA, HTTP_PEER_METADATA
from agentmesh.v1 import monitoring_pb2, workflow_pb2
from coordinator import errors
from coordinator.api.status import code_for
from coordinator.server.connect import (
    Gateway,
    error_body,
    error_response,
    metadata_of,
    rpc_error,
)
from coordinator.server.fanout import Hub

Metadata = list[tuple[str, str]]

SUBSCRIBE: Final = "/agentmesh.v1.EventService/SubscribeBatches"
#: How long the coordinator waits for more events once one is queued for a stream: a
#: busy one then costs a message per 10 ms, not one per event, for at most 10 ms more on
#: a quiet one (bench/web.py, 200 subscribers at 50 events/s each through the shared
#: upstream: p50 lag 20 ms, p99 33 ms; 35 and 47 ms at 25).
BATCH_DELAY_MS: Final = 10
#: Seconds without an event before a keepalive comment.
KEEPALIVE_S: Final = 15.0
#: Encoded frames kept for the other subscribers of the same event.
FRAME_CACHE: Final = 4096


def subscribe_request(query: Any, headers: Any) -> monitoring_pb2.SubscribeRequest:
    """The ``SubscribeRequest`` a query asks for; ``errors.InvalidArgument`` when it is not one."""
    request = monitoring_pb2.SubscribeRequest(
        filter=monitoring_pb2.EventFilter(
            execution_id=query.get("execution", ""),
            workflow_name=query.get("workflow", ""),
            agent_id=query.get("agent", ""),
            types=[t.strip() for t in query.get("types", "").split(",") if t.strip()],
        ),
        stop_at_head=query.get("stop_at_head", "") in ("1", "true"),
    )
    start = headers.get("Last-Event-ID") or query.get("from", "")
    if start == "start":
        request.from_start = True
    elif start:
        if not start.isdigit() or len(start) > 19:
            raise errors.InvalidArgument(
                f"from (or Last-Event-ID) must be an event sequence or 'start', got {start!r}",
            )
        request.from_sequence = int(start)
    return request


def entries(batch: bytes) -> list[bytes]:
    """The encoded events of a ``SubscribeBatchesResponse`` (field 1, repeated), sliced
    out without decoding them."""
    out: list[bytes] = []
    at, end = 0, len(batch)
    while at < end:
        if batch[at] != 0x0A:  # not field 1, length-delimited: the server sends no other
            raise ValueError(f"unexpected tag {batch[at]:#x} in a batch of events")
        at += 1
        size = shift = 0
        while True:
            byte = batch[at]
            at += 1
            size |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        out.append(batch[at : at + size])
        at += size
    return out


class EventStream:
    """The route (module docstring), subscribing through ``gateway``; live subscribers
    share upstream calls (``server.fanout``) up to ``max_subscribers``, each ended once
    ``buffer`` events behind."""

    def __init__(
        self,
        gateway: Gateway,
        keepalive_s: float = KEEPALIVE_S,
        *,
        buffer: int = 2_000,
        max_subscribers: int = 1_000,
    ) -> None:
        self.gateway = gateway
        self.keepalive_s = keepalive_s
        self._frames: OrderedDict[bytes, bytes] = OrderedDict()
        self.hub = Hub(self.frames_of, buffer, max_subscribers)

    def routes(self) -> list[web.RouteDef]:
        """``GET /v1/events``."""
        return [web.get("/v1/events", self.handle)]

    def frame(self, data: bytes) -> bytes:
        """The SSE message for the Event ``data`` (binary)."""
        found = self._frames.get(data)
        if found is not None:
            return found
        event = workflow_pb2.Event.FromString(data)
        body = json.dumps(json_format.MessageToDict(event), separators=(",", ":"))
        found = f"id: {event.sequence}\ndata: {body}\n\n".encode()
        self._frames[data] = found
        if len(self._frames) > FRAME_CACHE:
            self._frames.popitem(last=False)
        return found

    def frames_of(self, batch: bytes) -> list[bytes]:
        """The SSE messages of a ``SubscribeBatchesResponse``."""
        return [self.frame(e) for e in entries(batch)]

    def _call(self, subscription: monitoring_pb2.SubscribeRequest, metadata: Metadata) -> Any:
        batches = monitoring_pb2.SubscribeBatchesRequest(
            subscription=subscription, max_delay_ms=BATCH_DELAY_MS
        )
        return self.gateway.callable(SUBSCRIBE, streaming=True)(
            batches.SerializeToString(), metadata=metadata
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one subscriber until its stream ends or it goes away. Cancelling it (the
        client went away) cancels the subscription."""
        try:
            subscription = subscribe_request(request.query, request.headers)
        except errors.MeshError as e:
            return error_response(code_for(e), str(e))
        metadata = metadata_of(request)
        names = {k for k, _ in metadata}
        token = request.query.get("access_token")
        if token and "authorization" not in names:
            metadata.append(("authorization", f"Bearer {token}"))
        namespace = request.query.get("namespace")
        if namespace and "agentmesh-namespace" not in names:
            metadata.append(("agentmesh-namespace", namespace))
        live = not (
            subscription.from_start or subscription.from_sequence or subscription.stop_at_head
        )
        if live:
            return await self._shared(request, subscription, metadata)
        rpc = self._call(subscription, metadata)
        response = web.StreamResponse()
        try:
            head = await _head(rpc)
            if isinstance(head, web.Response):
                return head
            response = await self._prepare(request, head)
            end: dict[str, Any] = {}
            pending: asyncio.Future[Any] | None = None
            try:
                while True:
                    if pending is None:
                        pending = asyncio.ensure_future(rpc.read())
                    done, _ = await asyncio.wait((pending,), timeout=self.keepalive_s)
                    if not done:
                        await response.write(b": keepalive\n\n")
                        continue
                    try:
                        data = pending.result()
                    except grpc.aio.AioRpcError as e:
                        end = error_body(*rpc_error(e))
                        break
                    pending = None
                    if data is grpc.aio.EOF:
                        break
                    await response.write(b"".join(map(self.frame, entries(data))))
            finally:
                if pending is not None:
                    pending.cancel()
            return await _end(response, end)
        except ConnectionResetError:  # the browser went away mid-write: nothing to say
            return response
        finally:
            rpc.cancel()

    async def _shared(
        self,
        request: web.Request,
        subscription: monitoring_pb2.SubscribeRequest,
        metadata: Metadata,
    ) -> web.StreamResponse:
        """A live subscriber: checked by its own short call, then fed by the hub."""
        if self.hub.full():
            e = errors.ResourceExhausted(
                f"{self.hub.count} event streams are open over HTTP (max_subscribers "
                f"{self.hub.limit}); retry later"
            )
            return error_response(code_for(e), str(e))
        check = monitoring_pb2.SubscribeRequest()
        check.CopyFrom(subscription)
        check.stop_at_head = True
        rpc = self._call(check, metadata)
        try:
            head = await _head(rpc)
            if isinstance(head, web.Response):
                return head
        finally:
            rpc.cancel()
        shared = tuple(sorted(kv for kv in metadata if kv[0] != HTTP_PEER_METADATA))
        key = (shared, subscription.SerializeToString(deterministic=True))
        sub = await self.hub.join(key, lambda: self._call(subscription, metadata))
        response = web.StreamResponse()
        try:
            response = await self._prepare(request, head)
            while True:
                data = await sub.next(self.keepalive_s)
                if data is None:
                    break
                await response.write(data or b": keepalive\n\n")
            return await _end(response, sub.end or {})
        except ConnectionResetError:
            return response
        finally:
            self.hub.leave(sub)

    async def _prepare(self, request: web.Request, head: str) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                hdrs.CONTENT_TYPE: "text/event-stream",
                hdrs.CACHE_CONTROL: "no-cache",
                "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
            }
        )
        await response.prepare(request)
        await response.write(f"retry: 1000\n: head {head}\n\n".encode())
        return response


async def _head(rpc: Any) -> str | web.Response:
    """The log's head the call subscribed at, or the refusal as an HTTP error response."""
    try:
        head = dict(await rpc.initial_metadata() or ()).get(EVENT_HEAD_METADATA)
        if head is None:  # refused: Subscribe says the head once it subscribed
            await rpc.read()  # raises the refusal
            raise errors.Unavailable("the stream ended at once")
        return str(head)
    except grpc.aio.AioRpcError as e:
        return error_response(*rpc_error(e), e.trailing_metadata() or ())
    except errors.MeshError as e:
        return error_response(code_for(e), str(e))


async def _end(response: web.StreamResponse, end: dict[str, Any]) -> web.StreamResponse:
    await response.write(f"event: end\ndata: {json.dumps(end)}\n\n".encode())
    await response.write_eof()
    return response
