"""Services declared in the protocol whose implementation lands in later
releases. Every method answers UNIMPLEMENTED with a message naming it."""

from __future__ import annotations

from typing import Any

import grpc

from agentmesh.v1 import monitoring_pb2_grpc
from coordinator.api.status import abort
from coordinator.errors import Unimplemented

DECLARED: list[tuple[Any, str, str]] = [
    (monitoring_pb2_grpc, "EventService", "event subscriptions"),
    (monitoring_pb2_grpc, "MetricsService", "metrics"),
]


def _unimplemented(service: str, method: str, feature: str) -> Any:
    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await abort(
            context,
            Unimplemented(
                f"agentmesh.v1.{service}/{method} is part of the protocol but not "
                f"implemented by this coordinator version yet ({feature})"
            ),
        )

    handler.__name__ = method
    return handler


def add_declared_services(server: grpc.aio.Server) -> None:
    """Register every declared-only service on ``server``."""
    for module, service, feature in DECLARED:
        base = getattr(module, f"{service}Servicer")
        methods = {
            name: _unimplemented(service, name, feature)
            for name in vars(base)
            if not name.startswith("_") and callable(getattr(base, name))
        }
        cls = type(f"Unimplemented{service}", (base,), methods)
        getattr(module, f"add_{service}Servicer_to_server")(cls(), server)
