"""What a cluster follower serves itself: ``ListAgents`` and ``GetAgent`` from the
leader's agent directory in etcd (``coordinator.cluster.directory``), and the encoding
the leader writes there (an ``AgentInfo`` as protobuf JSON)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
from google.protobuf import json_format

from agentmesh.v1 import registry_pb2, types_pb2
from coordinator import domain as d
from coordinator import errors
from coordinator.api import convert
from coordinator.api.router import Handlers
from coordinator.api.scope import namespace_of
from coordinator.api.status import abort
from coordinator.kv import KVError

Read = Callable[[], Awaitable[list[bytes]]]


def encode_agent(agent: d.Agent) -> bytes:
    """The directory's value for ``agent``."""
    return json_format.MessageToJson(convert.agent_info(agent), indent=None).encode()


def decode_agents(values: list[bytes]) -> list[types_pb2.AgentInfo]:
    """The directory's agents, sorted by id; values that do not parse are skipped."""
    out = []
    for value in values:
        info = types_pb2.AgentInfo()
        try:
            json_format.Parse(value, info)
        except json_format.ParseError:
            continue
        out.append(info)
    return sorted(out, key=lambda a: a.id)


def _namespace(agent: types_pb2.AgentInfo) -> str:
    """The agent's namespace (entries a leader wrote before namespaces: the default)."""
    return agent.namespace or d.DEFAULT_NAMESPACE


def follower_handlers(read: Read) -> Handlers:
    """``ListAgents`` and ``GetAgent`` answered from the mirror ``read`` returns."""

    async def list_agents(
        request: registry_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListAgentsResponse:
        namespace = await _namespace_of(context)
        agents = [a for a in await _read(read, context) if _namespace(a) == namespace]
        if request.type:
            agents = [a for a in agents if a.type == request.type]
        return registry_pb2.ListAgentsResponse(agents=agents)

    async def get_agent(
        request: registry_pb2.GetAgentRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.AgentInfo:
        namespace = await _namespace_of(context)
        for a in await _read(read, context):
            if a.id == request.agent_id and _namespace(a) == namespace:
                return a
        await abort(context, errors.NotFound(f"agent {request.agent_id!r} not found"))

    service = "/agentmesh.v1.RegistryService/"
    return {
        service + "ListAgents": grpc.unary_unary_rpc_method_handler(
            list_agents,
            request_deserializer=registry_pb2.ListAgentsRequest.FromString,
            response_serializer=registry_pb2.ListAgentsResponse.SerializeToString,
        ),
        service + "GetAgent": grpc.unary_unary_rpc_method_handler(
            get_agent,
            request_deserializer=registry_pb2.GetAgentRequest.FromString,
            response_serializer=types_pb2.AgentInfo.SerializeToString,
        ),
    }


async def _namespace_of(context: grpc.aio.ServicerContext) -> str:
    try:
        return namespace_of(context)
    except errors.MeshError as e:  # a malformed name
        await abort(context, e)


async def _read(read: Read, context: grpc.aio.ServicerContext) -> list[types_pb2.AgentInfo]:
    try:
        return decode_agents(await read())
    except KVError as e:
        await abort(context, errors.Unavailable(f"cannot read the agent directory from etcd: {e}"))
