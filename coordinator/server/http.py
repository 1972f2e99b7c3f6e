"""The coordinator's HTTP listener, beside its gRPC port (``http_listen``; "" turns it off).

It runs inside the coordinator's own event loop (aiohttp's low-level ``AppRunner`` and
``TCPSite``, no thread, no second loop) and serves:

* ``GET /metrics``: the Prometheus exposition (``monitor.prometheus``), with its content
  type. When ``authorize`` is given it needs credentials: the request's
  ``Authorization`` header goes to ``authorize``, which answers None (allowed) or why not;
  no header is ``401`` with ``WWW-Authenticate: Bearer``, a refused one ``403``.
* ``GET /healthz``: liveness, ``200 ok`` whenever the process answers at all.
* ``GET /readyz``: readiness, ``200 ready`` while ``health()`` is true, else
  ``503 not ready`` (a follower, a draining or failed coordinator).

With ``cors_origins`` (``http_cors_origins``), pages from those origins (``*``: any) may
call it from a browser: their preflights (``OPTIONS`` with ``Access-Control-Request-Method``)
are answered ``204`` with the methods and the headers they asked for, and every answer to
them carries ``Access-Control-Allow-Origin`` and exposes its headers (the Connect
trailers). Other origins get no CORS headers, so browsers keep their pages out.

The probes are never authenticated: the kubelet's HTTP probes send no credentials, and
they say nothing a port scan would not. ``HEAD`` is answered wherever ``GET`` is; an
unknown path is ``404``, a known one with another method ``405`` (with ``Allow``), both
with a one-line text body.

Request bodies read whole are capped at ``CLIENT_MAX_SIZE`` (``413`` beyond: inbound
events); the Connect routes read theirs as a stream, up to ``max_message_bytes``. Header
limits are aiohttp's defaults. A client that disconnects cancels its handler. Access
logging is off unless ``coordinator.http`` logs at DEBUG (aiohttp's own access log, one
INFO line per scrape, is too noisy to keep on).

The other parts (``server.web``: the API, the event stream, the dashboard; inbound events)
add their routes through ``add_routes`` before ``start()``, and may reuse ``refusal`` for
the same credentials check ``/metrics`` uses; aiohttp freezes the routes once the listener
starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Final

from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler, Middleware

from coordinator.errors import ConfigError, HttpListenError

log = logging.getLogger("coordinator.http")

#: The largest request body accepted (an inbound event's payload).
CLIENT_MAX_SIZE: Final = 1024 * 1024
#: How long ``stop`` lets requests in progress finish.
SHUTDOWN_TIMEOUT_S: Final = 2.0

Authorize = Callable[[str | None], Awaitable[str | None]]


class _DebugAccessLog(AbstractAccessLogger):
    """One DEBUG line per request, and no work at all when DEBUG is off."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.debug(
            '%s "%s %s" %d %.4fs',
            request.remote,
            request.method,
            request.path,
            response.status,
            time,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)


def _text(status: int, body: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=body, headers=headers or None)


@web.middleware
async def _plain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's routing refusals as one-line text bodies (its own say ``404: Not Found``)."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as e:
        return _text(405, "method not allowed\n", Allow=", ".join(sorted(e.allowed_methods)))
    except web.HTTPNotFound:
        return _text(404, "not found\n")


def _cors(origins: Iterable[str]) -> tuple[Middleware, Callable[..., Awaitable[None]]]:
    """The preflight middleware and the response hook for ``origins`` (module docstring)."""
    allowed = frozenset(origins)

    def admitted(request: web.BaseRequest) -> str | None:
        origin = request.headers.get(hdrs.ORIGIN)
        return origin if origin and ("*" in allowed or origin in allowed) else None

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = admitted(request)
        if (
            origin is None
            or request.method != hdrs.METH_OPTIONS
            or hdrs.ACCESS_CONTROL_REQUEST_METHOD not in request.headers
        ):
            return await handler(request)
        asked = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS, "")
        return web.Response(
            status=204,
            headers={
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: "GET, POST, HEAD",
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: asked,
                hdrs.ACCESS_CONTROL_MAX_AGE: "7200",
            },
        )

    async def stamp(request: web.BaseRequest, response: web.StreamResponse) -> None:
        origin = admitted(request)
        if origin is not None:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = "*"
            response.headers.add(hdrs.VARY, hdrs.ORIGIN)

    return preflight, stamp


def parse_address(address: str) -> tuple[str | None, int]:
    """``host:port`` (``[v6]:port``; an empty host is every interface) as (host, port);
    ``HttpListenError`` when it is not one."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise HttpListenError(f"cannot listen on {address!r} (http_listen): expected host:port")
    host = host.strip("[]")
    return host or None, int(port)


def server_ssl_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or later) serving the PEM ``cert`` (chain) and its
    ``key``; ``ConfigError`` when they cannot be loaded. Not reloaded when the files change
    (the gRPC listener's ``tls.ReloadingCredentials`` is)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError, ValueError) as e:
        raise ConfigError(
            f"http listener TLS: {cert} and {key} are not a certificate and its key ({e})"
        ) from None
    return context


class HttpListener:
    """The HTTP listener at ``address`` (``host:port``; port 0 picks a free one).

    ``metrics`` renders the exposition (body, content type), ``health`` says whether the
    coordinator is ready; both are called per request, in the loop, and must not block.
    With ``ssl_context`` it serves HTTPS only. With ``authorize``, ``/metrics`` needs
    credentials (see the module docstring). ``await start()`` binds and serves;
    ``await stop()`` closes it and is safe to call twice.
    """

    def __init__(
        self,
        address: str,
        *,
        metrics: Callable[[], tuple[bytes, str]],
        health: Callable[[], bool],
        ssl_context: ssl.SSLContext | None = None,
        authorize: Authorize | None = None,
        cors_origins: Iterable[str] = (),
    ) -> None:
        self.address = address
        self._metrics = metrics
        self._health = health
        self._ssl = ssl_context
        self._authorize = authorize
        #: The aiohttp application: add routes to it before ``start()``.
        middlewares: list[Middleware] = [_plain_errors]
        origins = tuple(cors_origins)
        if origins:
            preflight, stamp = _cors(origins)
            middlewares.append(preflight)
        self.app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=middlewares)
        if origins:
            self.app.on_response_prepare.append(stamp)
        self.app.router.add_get("/metrics", self._serve_metrics)
        self.app.router.add_get("/healthz", self._serve_healthz)
        self.app.router.add_get("/readyz", self._serve_readyz)
        self._runner: web.AppRunner | None = None
        self._host: str | None = None
        self._port = 0
        self._stopping: asyncio.Task[None] | None = None

    def add_routes(self, routes: Iterable[web.AbstractRouteDef]) -> None:
        """Serve ``routes`` too (``web.get(...)``, a ``web.RouteTableDef``); before ``start``
        only (RuntimeError after)."""
        if self._runner is not None or self._stopping is not None:
            raise RuntimeError("routes are added before the HTTP listener starts")
        self.app.add_routes(routes)

    @property
    def port(self) -> int:
        """The bound port (0 before ``start``)."""
        return self._port

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of the bound listener (a wildcard host as 127.0.0.1)."""
        host = self._host or "127.0.0.1"
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self._ssl is not None else 'http'}://{host}:{self._port}"

    async def start(self) -> int:
        """Bind and serve; the bound port. ``HttpListenError`` naming the address and the
        reason when it cannot be bound (nothing is left open then); RuntimeError when
        started before. Cancelling it releases whatever it took."""
        if self._runner is not None or self._stopping is not None:
            raise RuntimeError("the HTTP listener was started before")
        host, port = parse_address(self.address)
        runner = web.AppRunner(
            self.app,
            access_log=log,
            access_log_class=_DebugAccessLog,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
            # A client that goes away cancels its handler: its call or stream ends too.
            handler_cancellation=True,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=self._ssl)
        try:
            await site.start()
        except BaseException as e:
            await runner.cleanup()
            if isinstance(e, OSError):
                # asyncio's strerror also repeats the address; the errno's own words do not.
                reason = os.strerror(e.errno) if e.errno else str(e)
                raise HttpListenError(
                    f"cannot listen on {self.address} (http_listen): "
                    f"{reason[:1].lower() + reason[1:]}"
                ) from e
            raise
        self._runner = runner
        self._host = host
        self._port = site.port
        log.info("HTTP listener serving on %s", self.url)
        return self._port

    async def stop(self) -> None:
        """Stop accepting, let requests in progress finish (up to ``SHUTDOWN_TIMEOUT_S``),
        close. Concurrent and repeated calls wait for the same stop."""
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop(), name="http-listener-stop")
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def refusal(self, request: web.Request) -> web.Response | None:
        """None when ``request`` may proceed (or no ``authorize`` was given); else the
        response refusing it: 401 with ``WWW-Authenticate: Bearer`` without an
        ``Authorization`` header, 403 when ``authorize`` refused the one it has, 500 when
        ``authorize`` raised."""
        if self._authorize is None:
            return None
        header = request.headers.get(hdrs.AUTHORIZATION)
        try:
            refused = await self._authorize(header)
        except Exception:
            log.exception("HTTP authorization failed for %s", request.path)
            return _text(500, "authorization failed\n")
        if refused is None:
            return None
        body = refused.rstrip("\n") + "\n"
        if header is None:
            return _text(401, body, **{hdrs.WWW_AUTHENTICATE: "Bearer"})
        return _text(403, body)

    # ------------------------------------------------------------------ routes

    async def _serve_metrics(self, request: web.Request) -> web.StreamResponse:
        refused = await self.refusal(request)
        if refused is not None:
            return refused
        body, content_type = self._metrics()
        # The exposition's type carries a charset, which aiohttp's content_type refuses.
        return web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type})

    async def _serve_healthz(self, request: web.Request) -> web.StreamResponse:
        return _text(200, "ok\n")

    async def _serve_readyz(self, request: web.Request) -> web.StreamResponse:
        try:
            ready = bool(self._health())
        except Exception:
            log.exception("the readiness callback failed; answering not ready")
            ready = False
        return _text(200, "ready\n") if ready else _text(503, "not ready\n")
