"""Route ``agentmesh.v1`` calls to the current term's servicers, or refuse them.

A standalone coordinator has one term for its whole life. A cluster replica has a
term only while it leads: a follower refuses every call with ``UNAVAILABLE`` and
the trailing metadata ``agentmesh-leader: <host:port>`` (when the leader is known),
which the SDK and CLI follow, or ``agentmesh-election: pending`` (while none is), on
which they retry shortly. Health and reflection are registered on the server
directly and are never routed here.

A leader whose etcd is unreachable keeps serving reads and agent streams from
memory, and refuses the calls that must persist something with ``UNAVAILABLE``
and a message that says why: nothing is accepted that could not be written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import grpc

from agentmesh.v1 import (
    agent_pb2,
    integration_pb2,
    monitoring_pb2,
    registry_pb2,
    task_pb2,
    workflow_pb2,
)
from coordinator import errors
from coordinator.api.decoding import Bytes, decoding
from coordinator.api.status import abort

log = logging.getLogger(__name__)


SERVICES = [
    agent_pb2.DESCRIPTOR.services_by_name["AgentService"],
    registry_pb2.DESCRIPTOR.services_by_name["RegistryService"],
    task_pb2.DESCRIPTOR.services_by_name["TaskService"],
    workflow_pb2.DESCRIPTOR.services_by_name["WorkflowService"],
    workflow_pb2.DESCRIPTOR.services_by_name["ExecutionService"],
    monitoring_pb2.DESCRIPTOR.services_by_name["EventService"],
    monitoring_pb2.DESCRIPTOR.services_by_name["MetricsService"],
    integration_pb2.DESCRIPTOR.services_by_name["IntegrationService"],
]
SERVICE_NAMES = [s.full_name for s in SERVICES]

# method path -> (client streaming, server streaming)
KINDS: dict[str, tuple[bool, bool]] = {
    f"/{s.full_name}/{m.name}": (m.client_streaming, m.server_streaming)
    for s in SERVICES
    for m in s.methods
}

# Calls that write to the store. While etcd is unreachable a leader refuses these
# (everything else is served from memory or touches only the in-memory mesh).
PERSISTING = frozenset(
    f"/agentmesh.v1.{name}"
    for name in [
        "WorkflowService/DefineWorkflow",
        "WorkflowService/LoadWorkflow",
        "WorkflowService/DeleteWorkflow",
        "ExecutionService/StartWorkflow",
        "ExecutionService/ResumeWorkflow",
        "ExecutionService/PauseWorkflow",
        "ExecutionService/StopWorkflow",
        "IntegrationService/TriggerEvent",
        "IntegrationService/RegisterExternalService",
        "IntegrationService/DeleteExternalService",
        "IntegrationService/RegisterWebhook",
        "IntegrationService/DeleteWebhook",
        "IntegrationService/RedeliverDeadLetters",
    ]
)

Handlers = dict[str, grpc.RpcMethodHandler]


class _Capture:
    """Stands in for a server so generated ``add_*_to_server`` functions hand us
    their method handlers instead of registering them."""

    def __init__(self) -> None:
        self.handlers: Handlers = {}

    def add_generic_rpc_handlers(self, handlers: Iterable[Any]) -> None:
        pass  # the same handlers arrive through add_registered_method_handlers

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]
    ) -> None:
        for method, handler in handlers.items():
            self.handlers[f"/{service}/{method}"] = handler


def capture(*registrations: Callable[[Any], None], counted: Bytes | None = None) -> Handlers:
    """Run ``add_XServicer_to_server``-style callables and collect their handlers,
    each decoding its own requests (see ``decoding``; ``counted``: their bytes)."""
    sink = _Capture()
    for register in registrations:
        register(sink)
    return decoding(sink.handlers, counted)


class Static(grpc.GenericRpcHandler):
    """A fixed table of handlers (method path -> handler), e.g. ``capture``'s."""

    def __init__(self, handlers: Handlers) -> None:
        self.handlers = handlers

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        return self.handlers.get(handler_call_details.method)


def _refusing(kind: tuple[bool, bool], refusal: errors.MeshError) -> grpc.RpcMethodHandler:
    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await abort(context, refusal)

    client_streaming, server_streaming = kind
    if client_streaming and server_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if client_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if server_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)


class Router(grpc.GenericRpcHandler):
    """The server's handler for every ``agentmesh.v1`` method.

    ``handlers`` is the current term's table (None: no term, i.e. a follower or a
    replica between terms); ``refusal()`` is the error to answer without one (e.g.
    ``NotLeader``), and ``persist_refusal()`` the error while persisting calls must be
    refused (None: they are not). ``coordinator.api.status`` picks the status codes.
    """

    def __init__(
        self,
        refusal: Callable[[], errors.MeshError],
        persist_refusal: Callable[[], errors.MeshError | None] = lambda: None,
        extra: Handlers | None = None,
    ) -> None:
        self.handlers: Handlers | None = None
        self._refusal = refusal
        self._persist_refusal = persist_refusal
        self.extra = dict(extra or {})  # served when there is no term

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        method: str = handler_call_details.method
        kind = KINDS.get(method)
        if kind is None:
            return None  # not ours: UNIMPLEMENTED
        handlers = self.handlers
        if handlers is None:
            extra = self.extra.get(method)
            return extra if extra is not None else _refusing(kind, self._refusal())
        if method in PERSISTING:
            refused = self._persist_refusal()
            if refused is not None:
                return _refusing(kind, refused)
        return handlers.get(method)
