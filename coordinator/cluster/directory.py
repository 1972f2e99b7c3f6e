"""The leader's agent registry, mirrored into etcd so every replica sees the mesh.

``<prefix>/agents/<agent id>`` holds the agent's ``AgentInfo`` (protobuf JSON) under
a lease of its own. The leader keeps the lease alive while the agent is connected
and revokes it when the agent leaves or goes silent, which deletes the key. When the
leader itself dies nobody keeps the leases alive: the entries vanish one TTL later
unless the agents reconnect to the new leader, which writes them again. Every write
carries the leader's fence.

What is mirrored is the registration (identity, capabilities, status), written when
an agent joins, leaves or changes status - not its moment-to-moment load, which
would cost an etcd write per task. Followers answer ``ListAgents`` and ``GetAgent``
from the mirror; the leader answers from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from urllib.parse import quote

import grpc
from google.protobuf import json_format

from agentmesh.v1 import registry_pb2, types_pb2
from coordinator.api import convert
from coordinator.api.router import Handlers
from coordinator.cluster.membership import cluster_key
from coordinator.kv import KV, Compare, Delete, KVError, Put
from coordinator.mesh import Mesh

log = logging.getLogger(__name__)

AGENTS = "agents/"
SYNC_PERIOD_S = 0.25


class AgentDirectory:
    """Mirror ``mesh``'s agents under ``prefix`` while this replica leads."""

    def __init__(
        self, kv: KV, prefix: str, mesh: Mesh, ttl: int, fence: Callable[[], Compare]
    ) -> None:
        self.kv = kv
        self.mesh = mesh
        self.ttl = ttl
        self._root = cluster_key(prefix, AGENTS)
        self._fence = fence
        self._written: dict[str, tuple[str, str]] = {}  # agent id -> (session, state)
        self._leases: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def _key(self, agent_id: str) -> bytes:
        return self._root + quote(agent_id, safe="").encode()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="agent-directory")

    async def stop(self) -> None:
        """Stop mirroring. Leases are left to expire (a new leader rewrites them)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_keepalive = loop.time() + self.ttl / 3
        while True:
            try:
                await self.sync()
                if loop.time() >= next_keepalive:
                    next_keepalive = loop.time() + self.ttl / 3
                    await self._keepalive()
            except KVError as e:
                log.debug("agent directory: %s", e)
            await asyncio.sleep(SYNC_PERIOD_S)

    async def sync(self) -> None:
        """Write what changed since the last sync; remove agents that left."""
        current: dict[str, tuple[str, str]] = {}
        for agent in self.mesh.agents.values():
            if agent.connected:
                # Not agent.status: it flips between busy and online with every task.
                current[agent.id] = (agent.session_id, f"{agent.draining}/{agent.healthy}")
        for agent_id in [a for a in self._written if a not in current]:
            await self._remove(agent_id)
        for agent_id, state in current.items():
            if self._written.get(agent_id) != state:
                await self._write(agent_id, state)

    async def _write(self, agent_id: str, state: tuple[str, str]) -> None:
        agent = self.mesh.agents.get(agent_id)
        if agent is None:
            return
        lease = self._leases.get(agent_id)
        if lease is None:
            lease = self._leases[agent_id] = await self.kv.grant(self.ttl)
        value = json_format.MessageToJson(convert.agent_info(agent), indent=None).encode()
        result = await self.kv.txn([self._fence()], [Put(self._key(agent_id), value, lease)], [])
        if result.succeeded:
            self._written[agent_id] = state

    async def _remove(self, agent_id: str) -> None:
        self._written.pop(agent_id, None)
        lease = self._leases.pop(agent_id, None)
        if lease is not None:
            await self.kv.revoke(lease)  # deletes the key with it
        else:
            await self.kv.txn([self._fence()], [Delete(self._key(agent_id))], [])

    async def _keepalive(self) -> None:
        for agent_id, lease in list(self._leases.items()):
            if await self.kv.keepalive(lease) <= 0:
                # Expired (we were slow): write it again under a new lease next sync.
                self._leases.pop(agent_id, None)
                self._written.pop(agent_id, None)


async def mirrored_agents(kv: KV, prefix: str) -> list[types_pb2.AgentInfo]:
    """The mirror's agents, sorted by id (entries that do not parse are skipped)."""
    kvs, _ = await kv.range(cluster_key(prefix, AGENTS), prefix=True)
    out = []
    for item in kvs:
        info = types_pb2.AgentInfo()
        try:
            json_format.Parse(item.value, info)
        except json_format.ParseError:
            continue
        out.append(info)
    return sorted(out, key=lambda a: a.id)


def follower_handlers(kv: KV, prefix: str) -> Handlers:
    """``ListAgents`` and ``GetAgent`` answered from the mirror, for followers."""

    async def list_agents(
        request: registry_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListAgentsResponse:
        agents = await _read(kv, prefix, context)
        if request.type:
            agents = [a for a in agents if a.type == request.type]
        return registry_pb2.ListAgentsResponse(agents=agents)

    async def get_agent(
        request: registry_pb2.GetAgentRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.AgentInfo:
        for a in await _read(kv, prefix, context):
            if a.id == request.agent_id:
                return a
        await context.abort(grpc.StatusCode.NOT_FOUND, f"agent {request.agent_id!r} not found")
        raise AssertionError("unreachable")

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


async def _read(
    kv: KV, prefix: str, context: grpc.aio.ServicerContext
) -> list[types_pb2.AgentInfo]:
    try:
        return await mirrored_agents(kv, prefix)
    except KVError as e:
        await context.abort(
            grpc.StatusCode.UNAVAILABLE, f"cannot read the agent directory from etcd: {e}"
        )
        raise AssertionError("unreachable") from e
