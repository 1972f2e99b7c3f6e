"""The HTTP listener over real sockets on loopback: /metrics (read back with the Prometheus
parser), the liveness and readiness probes, 404 and 405, the credentials check on
/metrics only, HTTPS with certificates from ``agentmesh dev certs``, bind failures, and
routes added before start."""

from __future__ import annotations

import io
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from agentmesh.cli._certs import make_certs
from coordinator.errors import ConfigError, HttpListenError, ListenError
from coordinator.monitor.prometheus import GaugeValues, PrometheusExporter
from coordinator.server.http import CLIENT_MAX_SIZE, HttpListener, server_ssl_context

pytestmark = pytest.mark.timeout(30)

TOKEN = "Bearer s3cret"


class Ready:
    def __init__(self) -> None:
        self.ready = True

    def __call__(self) -> bool:
        return self.ready


async def allow_token(header: str | None) -> str | None:
    if header is None:
        return "/metrics needs 'Authorization: Bearer <token>'"
    return None if header == TOKEN else "the bearer token is not valid"


def exporter() -> PrometheusExporter:
    m = PrometheusExporter(gauges=lambda: GaugeValues(subscribers=3))
    m.set_loop_lag(0.5)
    return m


@pytest.fixture
async def started() -> AsyncIterator[Callable[..., HttpListener]]:
    """Make listeners on 127.0.0.1:0 (``make(...)``, then ``await l.start()``), all
    stopped at the end."""
    made: list[HttpListener] = []

    def make(**kw: object) -> HttpListener:
        kw.setdefault("metrics", exporter().render)
        kw.setdefault("health", Ready())
        listener = HttpListener("127.0.0.1:0", **kw)  # type: ignore[arg-type]
        made.append(listener)
        return listener

    try:
        yield make
    finally:
        for listener in made:
            await listener.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def test_metrics_are_served_in_the_exposition_format(
    started: Callable[..., HttpListener], http: aiohttp.ClientSession
) -> None:
    listener = started()
    port = await listener.start()
    assert port > 0 and listener.port == port
    assert listener.url == f"http://127.0.0.1:{port}"
    async with http.get(listener.url + "/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        text = await r.text()
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["agentmesh_event_subscribers"] == 3
    assert samples["agentmesh_event_loop_lag_seconds"] == 0.5
    async with http.head(listener.url + "/metrics") as r:
        assert r.status == 200


async def test_liveness_and_readiness(
    started: Callable[..., HttpListener], http: aiohttp.ClientSession
) -> None:
    ready = Ready()
    listener = started(health=ready)
    await listener.start()
    for _ in range(2):
        async with http.get(listener.url + "/healthz") as r:
            assert (r.status, await r.text()) == (200, "ok\n")
        async with http.get(listener.url + "/readyz") as r:
            assert (r.status, await r.text()) == (
                200 if ready.ready else 503,
                "ready\n" if ready.ready else "not ready\n",
            )
        ready.ready = False


async def test_a_raising_readiness_callback_is_not_ready(
    started: Callable[..., HttpListener], http: aiohttp.ClientSession
) -> None:
    def broken() -> bool:
        raise RuntimeError("no term")

    listener = started(health=broken)
    await listener.start()
    async with http.get(listener.url + "/readyz") as r:
        assert (r.status, await r.text()) == (503, "not ready\n")
    async with http.get(listener.url + "/healthz") as r:
        assert r.status == 200


async def test_unknown_paths_and_wrong_methods(
    started: Callable[..., HttpListener], http: aiohttp.ClientSession
) -> None:
    listener = started()
    await listener.start()
    async with http.get(listener.url + "/nope") as r:
        assert (r.status, await r.text()) == (404, "not found\n")
        assert r.content_type == "text/plain"
    async with http.post(listener.url + "/metrics", data=b"x") as r:
        assert (r.status, await r.text()) == (405, "method not allowed\n")
        assert "GET" in r.headers["Allow"]


async def test_request_bodies_are_capped(
    started: Callable[..., HttpListener], http: aiohttp.ClientSession
) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    listener = started()
    listener.add_routes([web.post("/echo", echo)])
    await listener.start()
    async with http.post(listener.url + "/echo", data=b"x" * 1024) as r:
        assert (r.status, len(await r.read())) == (200, 1024)
    async with http.post(
        listener.url + "/echo", data=io.BytesIO(b"x" * (CLIENT_MAX_SIZE + 1))
    ) as r:
        assert r.status == 413
    with pytest.raises(RuntimeError):
        listener.add_routes([web.get("/late", echo)])


async def test_metrics_need_credentials_but_probes_never_do(
    started: Callable[..., HttpListener], http: aiohttp.ClientSession
) -> None:
    listener = started(authorize=allow_token)
    await listener.start()
    url = listener.url + "/metrics"
    async with http.get(url) as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert "needs 'Authorization: Bearer <token>'" in await r.text()
    async with http.get(url, headers={"Authorization": "Bearer wrong"}) as r:
        assert r.status == 403
        assert "WWW-Authenticate" not in r.headers
        assert await r.text() == "the bearer token is not valid\n"
    async with http.get(url, headers={"Authorization": TOKEN}) as r:
        assert r.status == 200
        assert "agentmesh_event_subscribers" in await r.text()
    for probe in ("/healthz", "/readyz"):
        async with http.get(listener.url + probe) as r:
            assert r.status == 200


async def test_an_authorizer_that_raises_refuses(
    started: Callable[..., HttpListener], http: aiohttp.ClientSession
) -> None:
    async def broken(header: str | None) -> str | None:
        raise RuntimeError("policy file unreadable")

    listener = started(authorize=broken)
    await listener.start()
    async with http.get(listener.url + "/metrics", headers={"Authorization": TOKEN}) as r:
        assert r.status == 500
        assert "agentmesh_" not in await r.text()


async def test_https_with_the_dev_certificates(
    started: Callable[..., HttpListener], http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    certs = make_certs(tmp_path / "pki")
    listener = started(ssl_context=server_ssl_context(certs["server"], certs["server_key"]))
    port = await listener.start()
    assert listener.url == f"https://127.0.0.1:{port}"
    trusting = ssl.create_default_context(cafile=str(certs["ca"]))
    async with http.get(listener.url + "/healthz", ssl=trusting) as r:
        assert (r.status, await r.text()) == (200, "ok\n")
    async with http.get(listener.url + "/metrics", ssl=trusting) as r:
        assert r.status == 200
    other = make_certs(tmp_path / "other")
    untrusting = ssl.create_default_context(cafile=str(other["ca"]))
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await http.get(listener.url + "/healthz", ssl=untrusting)
    with pytest.raises(aiohttp.ClientError):  # plaintext to a TLS port
        await http.get(f"http://127.0.0.1:{port}/healthz")


def test_unusable_tls_files_are_a_config_error(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "pki")
    with pytest.raises(ConfigError):
        server_ssl_context(certs["server"], certs["ca_key"])  # not the certificate's key


async def test_a_port_in_use_is_a_listen_error_naming_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        listener = HttpListener(address, metrics=exporter().render, health=Ready())
        with pytest.raises(HttpListenError) as e:
            await listener.start()
    assert isinstance(e.value, ListenError)
    assert address in str(e.value) and "in use" in str(e.value)
    assert listener.port == 0
    await listener.stop()


async def test_a_malformed_address_is_a_listen_error() -> None:
    listener = HttpListener("localhost", metrics=exporter().render, health=Ready())
    with pytest.raises(HttpListenError, match="expected host:port"):
        await listener.start()


async def test_stop_is_idempotent_and_releases_the_port(
    started: Callable[..., HttpListener], http: aiohttp.ClientSession
) -> None:
    listener = started()
    port = await listener.start()
    with pytest.raises(RuntimeError):
        await listener.start()
    await listener.stop()
    await listener.stop()
    with pytest.raises(aiohttp.ClientConnectorError):
        await http.get(f"http://127.0.0.1:{port}/healthz")
    again = HttpListener(f"127.0.0.1:{port}", metrics=exporter().render, health=Ready())
    assert await again.start() == port
    await again.stop()
