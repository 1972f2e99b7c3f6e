"""The whole ``agentmesh.v1`` API over HTTP: the Connect protocol, built from the descriptors.

Every method of every service the gRPC server registers is served at
``POST /agentmesh.v1.<Service>/<Method>`` on the HTTP listener, with no code per method:

* **unary** methods as Connect unary calls: the body is the request as JSON (the proto3
  JSON mapping; ``Content-Type: application/json``, an empty body is ``{}``) or binary
  (``application/proto``); the answer, ``200`` with the response in the same encoding.
  ``Connect-Timeout-Ms`` is the call's deadline; ``Content-Encoding: gzip`` (or
  ``deflate``) is accepted.
* **server streams** (``EventService.Subscribe``, ``SubscribeBatches``) as Connect server
  streams (``application/connect+json`` or ``+proto``): one enveloped request, enveloped
  responses, then the end-of-stream message carrying the status and trailers.
* client and bidirectional streams (``AgentService.Connect``) need HTTP/2 end to end: they
  answer ``unimplemented`` (use gRPC).

A call is not served here but forwarded, as it is, to the coordinator's own gRPC server
over a private loopback socket (``loopback_target``): the guard authenticates and
authorizes it (``Authorization: Bearer``, ``AgentMesh-Namespace``), the router sends it to
the current term or refuses it on a follower, and the status it ends with is the gRPC
path's own, mapped to the Connect code and HTTP status (``CONNECT_CODES``) with the JSON
error body ``{"code", "message", "details"}``; trailing metadata comes back as
``Trailer-*`` headers (a follower's ``trailer-agentmesh-leader``). A new RPC is therefore
on HTTP the moment it is on gRPC, with the same auth, namespaces and errors. What the
gateway itself refuses (an unknown encoding, a body that is not the request's JSON, a
body over ``max_message_bytes``) is refused the same way, before anything is forwarded.

Forwarded as metadata: ``Authorization``, every ``AgentMesh-*`` header, and the trace
context (``traceparent``, ``tracestate``, ``baggage``). Client certificates are not: on
HTTP, credentials are bearer tokens. The audit log records the HTTP client's address as
the peer (``http:<address>``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import grpc
from aiohttp import hdrs, web
from aiohttp.web_protocol import RequestPayloadError
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from agentmesh.protocol import HTTP_PEER_METADATA
from coordinator import errors
from coordinator.api.status import code_for

log = logging.getLogger("coordinator.http")

#: gRPC status -> (Connect code, HTTP status): the Connect protocol's table.
CONNECT_CODES: Final[dict[grpc.StatusCode, tuple[str, int]]] = {
    grpc.StatusCode.CANCELLED: ("canceled", 499),
    grpc.StatusCode.UNKNOWN: ("unknown", 500),
    grpc.StatusCode.INVALID_ARGUMENT: ("invalid_argument", 400),
    grpc.StatusCode.DEADLINE_EXCEEDED: ("deadline_exceeded", 504),
    grpc.StatusCode.NOT_FOUND: ("not_found", 404),
    grpc.StatusCode.ALREADY_EXISTS: ("already_exists", 409),
    grpc.StatusCode.PERMISSION_DENIED: ("permission_denied", 403),
    grpc.StatusCode.RESOURCE_EXHAUSTED: ("resource_exhausted", 429),
    grpc.StatusCode.FAILED_PRECONDITION: ("failed_precondition", 400),
    grpc.StatusCode.ABORTED: ("aborted", 409),
    grpc.StatusCode.OUT_OF_RANGE: ("out_of_range", 400),
    grpc.StatusCode.UNIMPLEMENTED: ("unimplemented", 501),
    grpc.StatusCode.INTERNAL: ("internal", 500),
    grpc.StatusCode.UNAVAILABLE: ("unavailable", 503),
    grpc.StatusCode.DATA_LOSS: ("data_loss", 500),
    grpc.StatusCode.UNAUTHENTICATED: ("unauthenticated", 401),
}
#: Request headers forwarded as metadata (besides every ``agentmesh-*`` one).
FORWARDED: Final = frozenset({"authorization", "traceparent", "tracestate", "baggage"})
#: Metadata never copied back as response headers (the transport's own).
_HIDDEN: Final = frozenset({"content-type", "grpc-status-details-bin", "grpc-accept-encoding"})
JSON: Final = "json"
PROTO: Final = "proto"
_ENVELOPE = struct.Struct(">BI")
_COMPRESSED, _END_STREAM = 0x01, 0x02


@dataclass(frozen=True, slots=True)
class Method:
    """One RPC as the gateway serves it: its path and its message classes."""

    path: str
    request: type[Message]
    response: type[Message]
    client_streaming: bool
    server_streaming: bool

    @classmethod
    def of(cls, service: ServiceDescriptor, method: MethodDescriptor) -> Method:
        return cls(
            f"/{service.full_name}/{method.name}",
            message_factory.GetMessageClass(method.input_type),
            message_factory.GetMessageClass(method.output_type),
            method.client_streaming,
            method.server_streaming,
        )


def methods(services: Iterable[ServiceDescriptor]) -> list[Method]:
    """Every method of ``services``, in declaration order."""
    return [Method.of(s, m) for s in services for m in s.methods]


def metadata_of(request: web.Request) -> list[tuple[str, str]]:
    """The request headers forwarded to the gRPC call (module docstring), and the
    client's address for the audit log (``HTTP_PEER_METADATA``, never the client's own)."""
    out: list[tuple[str, str]] = []
    for key, value in request.headers.items():
        name = key.lower()
        wanted = name in FORWARDED or (name.startswith("agentmesh-") and name != HTTP_PEER_METADATA)
        if wanted and value.isprintable():
            out.append((name, value))
    out.append((HTTP_PEER_METADATA, request.remote or "unknown"))
    return out


def error_body(code: grpc.StatusCode, message: str) -> dict[str, Any]:
    """The Connect error object for ``code``."""
    return {"code": CONNECT_CODES.get(code, ("unknown", 500))[0], "message": message}


def error_response(
    code: grpc.StatusCode, message: str, trailers: Iterable[tuple[str, Any]] = ()
) -> web.Response:
    """A Connect unary error: the HTTP status for ``code``, the JSON error body, the
    trailers as ``Trailer-*`` headers."""
    status = CONNECT_CODES.get(code, ("unknown", 500))[1]
    headers = {f"trailer-{k}": str(v) for k, v in trailers if _shown(k, v)}
    return web.json_response(error_body(code, message), status=status, headers=headers)


def _shown(key: str, value: Any) -> bool:
    return key not in _HIDDEN and not key.endswith("-bin") and isinstance(value, str)


def rpc_error(e: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str]:
    """The status a forwarded call ended with; the loopback's own failure (the server is
    stopping) as ``UNAVAILABLE``."""
    code = e.code()
    message = e.details() or ""
    if code is grpc.StatusCode.UNAVAILABLE and "unix:" in message:
        message = "the coordinator is shutting down"
    return code, message


def codec_of(content_type: str, streaming: bool) -> str | None:
    """``JSON`` or ``PROTO`` for the request's media type (None: not Connect's)."""
    media = content_type.split(";", 1)[0].strip().lower()
    prefix = "application/connect+" if streaming else "application/"
    if not media.startswith(prefix):
        return None
    kind = media.removeprefix(prefix)
    return kind if kind in (JSON, PROTO) else None


def timeout_of(headers: Any) -> float | None:
    """``Connect-Timeout-Ms`` in seconds (None: no deadline)."""
    raw = headers.get("Connect-Timeout-Ms")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise errors.InvalidArgument(
            f"Connect-Timeout-Ms must be a positive integer of at most 10 digits, got {raw!r}",
        )
    return max(int(raw), 1) / 1000


#: The request body encodings accepted (aiohttp's parser inflates them as it reads).
BODY_ENCODINGS: Final = ("", "identity", "gzip", "deflate")


def decompress(data: bytes, encoding: str, limit: int) -> bytes:
    """A stream message ``data`` decoded from ``encoding`` (``Connect-Content-Encoding``:
    identity or gzip), at most ``limit`` bytes."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding != "gzip":
        raise unsupported_encoding(encoding)
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = inflater.decompress(data, limit + 1)
    except zlib.error as e:
        raise errors.InvalidArgument(f"bad gzip message: {e}") from None
    if len(out) > limit:
        raise too_large(limit)
    return out


def unsupported_encoding(encoding: str) -> errors.MeshError:
    return errors.Unimplemented(
        f"content encoding {encoding!r} is not supported (identity, gzip)",
    )


def too_large(limit: int) -> errors.MeshError:
    return errors.ResourceExhausted(
        f"the request is larger than max_message_bytes ({limit} bytes)",
    )


class Codec:
    """JSON <-> binary for one method's messages."""

    def __init__(self, method: Method) -> None:
        self.method = method

    def request(self, body: bytes, codec: str) -> bytes:
        """The request as binary (what the gRPC server decodes)."""
        if codec == PROTO:
            return body
        message = self.method.request()
        try:
            text = body.decode("utf-8")
            if text.strip():
                json_format.Parse(text, message)
        except (UnicodeDecodeError, json_format.ParseError) as e:
            name = self.method.request.DESCRIPTOR.full_name
            raise errors.InvalidArgument(f"the body is not a valid {name} in JSON: {e}") from None
        return message.SerializeToString()

    def response(self, data: bytes, codec: str) -> bytes:
        """The response in ``codec``."""
        if codec == PROTO:
            return data
        return encode_json(self.method.response, data)


def encode_json(kind: type[Message], data: bytes) -> bytes:
    """The binary message ``data`` of type ``kind`` as compact proto3 JSON."""
    try:
        message = kind.FromString(data)
    except DecodeError:  # the server sent what it declared: this is a bug
        log.exception("the coordinator answered a %s it cannot decode", kind.__name__)
        raise
    return json.dumps(json_format.MessageToDict(message), separators=(",", ":")).encode()


def envelope(flags: int, payload: bytes) -> bytes:
    return _ENVELOPE.pack(flags, len(payload)) + payload


class Gateway:
    """Connect routes for ``services`` forwarding to the gRPC server at ``target``
    (module docstring). ``max_bytes`` caps a request as ``max_message_bytes`` does on
    gRPC. The channel opens with the first call; ``close()`` closes it."""

    def __init__(self, target: str, services: Sequence[ServiceDescriptor], max_bytes: int) -> None:
        self.target = target
        self.methods = methods(services)
        self.max_bytes = max_bytes
        self._channel: grpc.aio.Channel | None = None
        self._calls: dict[str, Any] = {}

    @property
    def channel(self) -> grpc.aio.Channel:
        """The loopback channel (opened on first use, in the serving loop)."""
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                self.target,
                options=[
                    ("grpc.max_receive_message_length", -1),
                    ("grpc.max_send_message_length", self.max_bytes),
                ],
            )
        return self._channel

    async def close(self) -> None:
        """Close the channel (calls in progress end ``CANCELLED``)."""
        channel, self._channel = self._channel, None
        self._calls.clear()
        if channel is not None:
            await channel.close(grace=None)

    def routes(self) -> list[web.RouteDef]:
        """One ``POST`` route per method (module docstring)."""
        out: list[web.RouteDef] = []
        for m in self.methods:
            if m.client_streaming:
                out.append(web.post(m.path, self._refuse_stream(m)))
            elif m.server_streaming:
                out.append(web.post(m.path, self._server_stream(m)))
            else:
                out.append(web.post(m.path, self._unary(m)))
        return out

    async def read(self, request: web.Request) -> bytes:
        """The request's body, decoded (``Content-Encoding``), at most ``max_bytes``
        (``RESOURCE_EXHAUSTED`` beyond, counted after decoding)."""
        encoding = request.headers.get(hdrs.CONTENT_ENCODING, "").strip().lower()
        if encoding not in BODY_ENCODINGS:
            raise unsupported_encoding(encoding)
        if not encoding and (request.content_length or 0) > self.max_bytes:
            raise too_large(self.max_bytes)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > self.max_bytes:
                    raise too_large(self.max_bytes)
                chunks.append(chunk)
        except RequestPayloadError as e:  # a body that does not inflate
            raise errors.InvalidArgument(f"the body cannot be read: {e.__cause__ or e}") from None
        return b"".join(chunks)

    def _unary(self, method: Method) -> Any:
        codec = Codec(method)

        async def handle(request: web.Request) -> web.StreamResponse:
            decoded = await self._decode(request, codec, streaming=False)
            if isinstance(decoded, web.Response):
                return decoded
            kind, payload, timeout = decoded
            return await self.forward(codec, kind, payload, request, timeout)

        return handle

    async def forward(
        self, codec: Codec, kind: str, payload: bytes, request: web.Request, timeout: float | None
    ) -> web.Response:
        """Call ``codec``'s method with the binary request ``payload`` and the metadata
        of ``request``: the answer in ``kind`` (JSON or proto), or the Connect error."""
        rpc = self.callable(codec.method.path, streaming=False)(
            payload, metadata=metadata_of(request), timeout=timeout
        )
        try:
            answer: bytes = await rpc
            headers = [*(await rpc.initial_metadata() or ())]
            trailers = [*(await rpc.trailing_metadata() or ())]
        except grpc.aio.AioRpcError as e:
            code, message = rpc_error(e)
            return error_response(code, message, e.trailing_metadata() or ())
        out = {k: str(v) for k, v in headers if _shown(k, v)}
        out.update({f"trailer-{k}": str(v) for k, v in trailers if _shown(k, v)})
        return web.Response(
            body=codec.response(answer, kind), content_type=f"application/{kind}", headers=out
        )

    async def _decode(
        self, request: web.Request, codec: Codec, *, streaming: bool
    ) -> tuple[str, bytes, float | None] | web.Response:
        """(the encoding, the request as binary, the deadline) of a call, or the answer
        refusing it: what unary calls and server streams check alike."""
        kind = codec_of(request.content_type, streaming=streaming)
        if kind is None:
            accepted = (
                "application/connect+json, application/connect+proto"
                if streaming
                else "application/json, application/proto"
            )
            return _unsupported(request.content_type, accepted)
        try:
            _check_version(request)
            timeout = timeout_of(request.headers)
            body = await (self._envelope(request) if streaming else self.read(request))
            return kind, codec.request(body, kind), timeout
        except errors.MeshError as e:
            return error_response(code_for(e), str(e))

    def callable(self, path: str, *, streaming: bool) -> Any:
        """The multicallable for ``path`` (bytes in, bytes out) on the channel, which the
        first call opens, inside the serving loop."""
        found = self._calls.get(path)
        if found is None:
            channel = self.channel
            found = (channel.unary_stream if streaming else channel.unary_unary)(path)
            self._calls[path] = found
        return found

    def _server_stream(self, method: Method) -> Any:
        codec = Codec(method)

        async def handle(request: web.Request) -> web.StreamResponse:
            decoded = await self._decode(request, codec, streaming=True)
            if isinstance(decoded, web.Response):
                return decoded
            kind, payload, timeout = decoded
            rpc = self.callable(method.path, streaming=True)(
                payload, metadata=metadata_of(request), timeout=timeout
            )
            response = web.StreamResponse(
                headers={hdrs.CONTENT_TYPE: f"application/connect+{kind}"}
            )
            end: dict[str, Any] = {}
            try:
                try:
                    headers = await rpc.initial_metadata() or ()
                    response.headers.update({k: str(v) for k, v in headers if _shown(k, v)})
                    await response.prepare(request)
                    async for answer in rpc:
                        await response.write(envelope(0, codec.response(answer, kind)))
                    trailers = await rpc.trailing_metadata() or ()
                except grpc.aio.AioRpcError as e:
                    end["error"] = error_body(*rpc_error(e))
                    trailers = e.trailing_metadata() or ()
                    if not response.prepared:
                        await response.prepare(request)
                shown = {k: [str(v)] for k, v in trailers if _shown(k, v)}
                if shown:
                    end["metadata"] = shown
                await response.write(envelope(_END_STREAM, json.dumps(end).encode()))
                await response.write_eof()
            except asyncio.CancelledError:
                rpc.cancel()  # the client went away
                raise
            except ConnectionResetError:  # it went away mid-write: nothing to say
                rpc.cancel()
            return response

        return handle

    async def _envelope(self, request: web.Request) -> bytes:
        """The one enveloped message a server stream's request carries."""
        data = await self.read(request)
        if len(data) < _ENVELOPE.size:
            raise errors.InvalidArgument("the body is not an enveloped Connect message")
        flags, size = _ENVELOPE.unpack_from(data)
        payload = data[_ENVELOPE.size :]
        if size != len(payload):
            raise errors.InvalidArgument(
                f"the envelope says {size} bytes, the body carries {len(payload)}",
            )
        if flags & _COMPRESSED:
            encoding = request.headers.get("Connect-Content-Encoding", "")
            if encoding.strip().lower() in ("", "identity"):
                raise errors.InvalidArgument(
                    "a compressed message without Connect-Content-Encoding",
                )
            payload = decompress(payload, encoding, self.max_bytes)
        return payload

    def _refuse_stream(self, method: Method) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            return error_response(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{method.path.lstrip('/')} is a client or bidirectional stream: call it over "
                "gRPC (HTTP/2), not HTTP/1.1",
            )

        return handle


def _check_version(request: web.Request) -> None:
    version = request.headers.get("Connect-Protocol-Version")
    if version is not None and version.strip() != "1":
        raise errors.InvalidArgument(
            f"Connect-Protocol-Version {version!r} is not supported (1)",
        )


def _unsupported(content_type: str, accepted: str) -> web.Response:
    return web.Response(
        status=415,
        text=f"content type {content_type or '(none)'!r} is not supported: {accepted}\n",
        headers={"Accept-Post": accepted},
    )


__all__ = [
    "CONNECT_CODES",
    "Gateway",
    "Method",
    "envelope",
    "error_body",
    "error_response",
    "methods",
]
