"""The dashboard: a static single-page app, shipped in the package (``server/ui/``), at ``/``.

No build step and no third-party script: plain ES modules that call the API over the
Connect protocol and follow ``GET /v1/events`` (``server.connect``, ``server.sse``) on the
same origin, so the API's auth applies to everything the page shows or does. The assets
themselves are public (code, no data), served with a strict Content-Security-Policy
(same-origin scripts, styles and connections only), ``no-cache`` (revalidated by ETag, so
an upgrade shows at once) and ``nosniff``.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Final

from aiohttp import hdrs, web

#: What each asset's suffix is served as.
TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    hdrs.CACHE_CONTROL: "no-cache",
}


def assets() -> dict[str, tuple[bytes, str]]:
    """Every asset by name: (its bytes, its ETag)."""
    out: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files("coordinator.server").joinpath("ui").iterdir():
        if entry.is_file() and any(entry.name.endswith(s) for s in TYPES):
            data = entry.read_bytes()
            out[entry.name] = (data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"')
    return out


def dashboard_routes() -> list[web.RouteDef]:
    """``GET /`` (the page) and ``GET /ui/{name}`` (its scripts and styles)."""
    files = assets()

    def serve(name: str, request: web.Request) -> web.StreamResponse:
        found = files.get(name)
        if found is None:
            return web.Response(status=404, text="not found\n")
        data, etag = found
        headers = {**SECURITY_HEADERS, hdrs.ETAG: etag}
        if request.headers.get(hdrs.IF_NONE_MATCH) == etag:
            return web.Response(status=304, headers=headers)
        suffix = name[name.rfind(".") :]
        return web.Response(body=data, headers={**headers, hdrs.CONTENT_TYPE: TYPES[suffix]})

    async def page(request: web.Request) -> web.StreamResponse:
        return serve("index.html", request)

    async def asset(request: web.Request) -> web.StreamResponse:
        return serve(request.match_info["name"], request)

    return [web.get("/", page), web.get("/ui/{name}", asset)]
