"""The coordinator's web face: what the HTTP listener serves beside metrics and probes.

* the whole ``agentmesh.v1`` API over the Connect protocol (``server.connect``);
* ``GET /v1/events``, the event log as Server-Sent Events (``server.sse``);
* ``GET /v1/executions/{id}`` and the other typed paths of ``server.friendly``;
* the dashboard at ``/`` (``server.dashboard``).

The API and the event stream reach the coordinator's own gRPC server through a private
``ports.Loopback`` socket, so every HTTP call is authenticated, authorized, routed and refused
exactly as a gRPC call is.
"""

from __future__ import annotations

from coordinator.api.router import SERVICES
from coordinator.config import Settings
from coordinator.server.connect import Gateway
from coordinator.server.dashboard import dashboard_routes
from coordinator.server.friendly import friendly_routes
from coordinator.server.http import HttpListener
from coordinator.server.sse import EventStream


def add_web(listener: HttpListener, target: str, settings: Settings) -> HttpListener:
    """``listener``, serving the dashboard, and the API and the event stream through the
    gRPC server at ``target``; the gateway's channel closes with the listener."""
    gateway = Gateway(target, SERVICES, settings.max_message_bytes)
    listener.add_routes(gateway.routes())
    listener.add_routes(friendly_routes(gateway))
    stream = EventStream(
        gateway, buffer=settings.subscriber_buffer, max_subscribers=settings.max_subscribers
    )
    listener.add_routes(stream.routes())
    listener.add_routes(dashboard_routes())

    async def close(_: object) -> None:
        stream.hub.close()
        await gateway.close()

    listener.app.on_cleanup.append(close)
    return listener
