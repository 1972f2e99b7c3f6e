"""Requests are decoded by us, not by grpc, so a malformed one gets a precise status.

grpc's own request deserialization, when it fails, answers ``UNKNOWN: Unexpected
DecodeError`` and logs a full traceback per request, so garbage on the wire would both
mislead the caller and flood the log. ``decoding(handlers)`` returns the same handlers
with grpc handing them raw bytes: each request is decoded inside the call and an
undecodable one is answered ``INVALID_ARGUMENT`` naming the message type, logged at
debug only. On client streams an undecodable message arrives as ``Malformed``, which
the handler refuses (the agent stream ends with that same INVALID_ARGUMENT).

Being where every message is decoded and encoded, it also counts their bytes (``Bytes``:
SystemMetrics' network figures, the messages' own sizes without HTTP/2 framing).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from coordinator.api.status import abort
from coordinator.errors import InvalidArgument

log = logging.getLogger(__name__)

Deserializer = Callable[[bytes], Any]
Serializer = Callable[[Any], bytes]


class Bytes:
    """Bytes of the messages received and sent (plain counters)."""

    __slots__ = ("received", "sent")

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0


def decoding(
    handlers: Mapping[str, grpc.RpcMethodHandler], counted: Bytes | None = None
) -> dict[str, grpc.RpcMethodHandler]:
    """``handlers`` (method path -> handler) decoding their own requests, counting the
    bytes of every message in ``counted`` when given."""
    return {method: _decoding(h, counted) for method, h in handlers.items()}


class _CountingIn:
    """A deserializer that counts what it is given (``owner``: the message class, for
    ``_message_name``)."""

    __slots__ = ("_counted", "_deserialize", "owner")

    def __init__(self, deserialize: Deserializer, counted: Bytes) -> None:
        self._deserialize = deserialize
        self._counted = counted
        self.owner = getattr(deserialize, "__self__", None)

    def __call__(self, raw: bytes) -> Any:
        self._counted.received += len(raw)
        return self._deserialize(raw)


def _counting_out(serialize: Serializer | None, counted: Bytes) -> Serializer | None:
    if serialize is None:
        return None

    def counting(message: Any) -> bytes:
        raw = serialize(message)
        counted.sent += len(raw)
        return raw

    return counting


def _message_name(deserialize: Deserializer) -> str:
    owner = getattr(deserialize, "__self__", None) or getattr(deserialize, "owner", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", "request"))


def _decode(deserialize: Deserializer, raw: bytes) -> Any:
    """The request, or ``InvalidArgument`` saying why it is not one."""
    try:
        return deserialize(raw)
    except Exception as e:  # DecodeError, RecursionError, ... whatever protobuf raises
        log.debug("undecodable %s: %s", _message_name(deserialize), e)
        raise InvalidArgument(
            f"the request is not a valid {_message_name(deserialize)} ({e or type(e).__name__})"
        ) from None


async def _request(deserialize: Deserializer, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
    """The request of a unary-request call, or the call aborted INVALID_ARGUMENT."""
    try:
        return _decode(deserialize, raw)
    except InvalidArgument as e:
        await abort(context, e)


def _decoding(handler: grpc.RpcMethodHandler, counted: Bytes | None) -> grpc.RpcMethodHandler:
    deserialize = handler.request_deserializer
    if deserialize is None:
        return handler
    serialize = handler.response_serializer
    if counted is not None:
        deserialize = _CountingIn(deserialize, counted)
        serialize = _counting_out(serialize, counted)
    if handler.unary_unary is not None:
        unary = handler.unary_unary

        async def unary_unary(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            return await unary(await _request(deserialize, raw, context), context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, None, serialize)
    if handler.unary_stream is not None:
        streaming = handler.unary_stream
        if inspect.isasyncgenfunction(streaming):

            async def unary_stream(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
                request = await _request(deserialize, raw, context)
                async for response in streaming(request, context):
                    yield response

            return grpc.unary_stream_rpc_method_handler(unary_stream, None, serialize)

        async def unary_stream_writing(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            return await streaming(await _request(deserialize, raw, context), context)

        return grpc.unary_stream_rpc_method_handler(unary_stream_writing, None, serialize)

    # Streams keep their handlers as they are (no extra hop per message on the hot
    # path): each message that does not decode arrives as ``Malformed`` instead.
    tolerant = _tolerant(deserialize)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(handler.stream_stream, tolerant, serialize)
    return grpc.stream_unary_rpc_method_handler(handler.stream_unary, tolerant, serialize)


@dataclass(frozen=True, slots=True)
class Malformed:
    """What a client-streaming handler receives for a message that does not decode;
    it must refuse it: ``raise malformed.error()``."""

    message: str

    def error(self) -> InvalidArgument:
        """The InvalidArgument to refuse the stream with."""
        return InvalidArgument(self.message)


def _tolerant(deserialize: Deserializer) -> Callable[[bytes], Any]:
    def tolerant(raw: bytes) -> Any:
        try:
            return _decode(deserialize, raw)
        except InvalidArgument as e:
            return Malformed(str(e))

    return tolerant
