"""Friendly ``GET`` paths for the calls people type, mapped onto the Connect API.

``GET /v1/executions/{id}`` is ``ExecutionService/GetExecutionStatus`` with
``{"executionId": id}``: a table (``ROUTES``) says which method a path calls and which
request field each path segment fills; query parameters fill the other fields by their
proto or JSON name (``?statuses=failed&limit=20``; repeat one for a repeated field, which
also answers to its singular, ``?status=failed&status=cancelled``; an enum value may drop
its prefix: ``failed`` is ``EXECUTION_STATUS_FAILED``). The call then goes
the gateway's way (``Gateway.forward``): the same forwarding, auth, namespaces and errors as
``POST /agentmesh.v1.<Service>/<Method>``, so this is a second spelling of those routes,
not a second API. The answer is the response as JSON.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from coordinator import errors
from coordinator.api.status import code_for
from coordinator.server.connect import Codec, Gateway, error_response

#: (path, the method's path, the request fields the path's {segments} fill, in order)
ROUTES: Final = (
    ("/v1/executions", "/agentmesh.v1.ExecutionService/ListExecutions", ()),
    ("/v1/executions/{a}", "/agentmesh.v1.ExecutionService/GetExecutionStatus", ("execution_id",)),
    (
        "/v1/executions/{a}/history",
        "/agentmesh.v1.ExecutionService/GetExecutionHistory",
        ("execution_id",),
    ),
    ("/v1/workflows", "/agentmesh.v1.WorkflowService/ListWorkflows", ()),
    ("/v1/workflows/{a}", "/agentmesh.v1.WorkflowService/GetWorkflow", ("name",)),
    ("/v1/agents", "/agentmesh.v1.RegistryService/ListAgents", ()),
    ("/v1/agents/{a}", "/agentmesh.v1.RegistryService/GetAgent", ("agent_id",)),
    ("/v1/metrics", "/agentmesh.v1.MetricsService/GetSystemMetrics", ()),
    (
        "/v1/metrics/workflows/{a}",
        "/agentmesh.v1.MetricsService/GetWorkflowMetrics",
        ("workflow_name",),
    ),
)


def request_of(descriptor: Any, segments: dict[str, str], query: Any) -> dict[str, Any]:
    """The request, as the proto3 JSON ``ParseDict`` reads, from the path's ``segments``
    (field name -> value) and the ``query`` (a multidict). Raises ``InvalidArgument``
    for a parameter the request has no field for."""
    out: dict[str, Any] = dict(segments)
    by_name = {f.name: f for f in descriptor.fields}
    by_name.update({f.json_name: f for f in descriptor.fields})
    # A repeated field also answers to its singular: ?status=failed&status=cancelled.
    for f in descriptor.fields:
        if f.is_repeated and f.name.endswith("s"):
            by_name.setdefault(f.name[:-2] if f.name.endswith("ses") else f.name[:-1], f)
    for key in dict.fromkeys(query.keys()):
        field = by_name.get(key)
        if field is None or field.name in segments:
            known = ", ".join(sorted(f.name for f in descriptor.fields if f.name not in segments))
            raise errors.InvalidArgument(
                f"unknown query parameter {key!r} for {descriptor.full_name} (known: {known})"
            )
        values = [_value(field, v) for v in query.getall(key)]
        out[field.name] = values if field.is_repeated else values[-1]
    return out


def _value(field: FieldDescriptor, text: str) -> Any:
    if field.type == FieldDescriptor.TYPE_BOOL:
        return text.lower() in ("1", "true", "yes")
    if field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        names = field.enum_type.values_by_name
        if text.upper() not in names:
            prefix = field.enum_type.values[0].name.rsplit("_", 1)[0]  # EXECUTION_STATUS
            if f"{prefix}_{text.upper()}" in names:
                return f"{prefix}_{text.upper()}"
        return text
    return text


def friendly_routes(gateway: Gateway) -> list[web.RouteDef]:
    """One ``GET`` route per ``ROUTES`` row."""
    by_path = {m.path: m for m in gateway.methods}
    out = []
    for path, rpc, fields in ROUTES:
        codec = Codec(by_path[rpc])
        out.append(web.get(path, _handler(gateway, codec, fields)))
    return out


def _handler(gateway: Gateway, codec: Codec, fields: tuple[str, ...]) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        segments = dict(zip(fields, request.match_info.values(), strict=True))
        message = codec.method.request()
        try:
            body = request_of(message.DESCRIPTOR, segments, request.query)
            json_format.ParseDict(body, message)
        except json_format.ParseError as e:
            return error_response(code_for(errors.InvalidArgument(str(e))), str(e))
        except errors.MeshError as e:
            return error_response(code_for(e), str(e))
        return await gateway.forward(codec, "json", message.SerializeToString(), request, None)

    return handle
