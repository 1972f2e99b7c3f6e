"""The leader's agent registry, mirrored into etcd so every replica sees the mesh.

``<prefix>/agents/<agent id>`` holds the agent's ``AgentInfo`` (protobuf JSON, written
by the ``encode`` the assembly passes in: this package knows no protobuf) under a lease
of its own. The leader keeps the lease alive while the agent is connected
and revokes it when the agent leaves or goes silent, which deletes the key. When the
leader itself dies nobody keeps the leases alive: the entries vanish one TTL later
unless the agents reconnect to the new leader, which writes them again. Every write
carries the leader's fence.

What is mirrored is the registration (identity, capabilities, status), written when
an agent joins, leaves or changes status - not its moment-to-moment load, which
would cost an etcd write per task. Followers answer ``ListAgents`` and ``GetAgent``
from the mirror (``coordinator.api.follower`` decodes it); the leader answers from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from urllib.parse import quote

from coordinator import domain as d
from coordinator.cluster.membership import cluster_key
from coordinator.kv import KV, Compare, Delete, KVError, Put

log = logging.getLogger(__name__)

AGENTS = "agents/"
SYNC_PERIOD_S = 0.25


class AgentDirectory:
    """Mirror the connected agents (``agents()``, e.g. ``Mesh.list_agents``) under
    ``prefix`` while this replica leads; ``encode`` turns one into the stored value."""

    def __init__(
        self,
        kv: KV,
        prefix: str,
        agents: Callable[[], list[d.Agent]],
        ttl: int,
        fence: Callable[[], Compare],
        encode: Callable[[d.Agent], bytes],
    ) -> None:
        self.kv = kv
        self._agents = agents
        self._encode = encode
        self.ttl = ttl
        self._root = cluster_key(prefix, AGENTS)
        self._fence = fence
        self._written: dict[str, tuple[str, str]] = {}  # agent id -> (session, state)
        self._leases: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def _key(self, agent_id: str) -> bytes:
        return self._root + quote(agent_id, safe="").encode()

    def start(self) -> None:
        """Start mirroring in the background (``stop`` ends it)."""
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
        connected = {a.id: a for a in self._agents() if a.connected}
        for agent in connected.values():
            # Not agent.status: it flips between busy and online with every task.
            current[agent.id] = (agent.session_id, f"{agent.draining}/{agent.healthy}")
        for agent_id in [a for a in self._written if a not in current]:
            await self._remove(agent_id)
        for agent_id, state in current.items():
            if self._written.get(agent_id) != state:
                await self._write(connected[agent_id], state)

    async def _write(self, agent: d.Agent, state: tuple[str, str]) -> None:
        agent_id = agent.id
        lease = self._leases.get(agent_id)
        if lease is None:
            lease = self._leases[agent_id] = await self.kv.grant(self.ttl)
        value = self._encode(agent)
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


async def mirrored_agents(kv: KV, prefix: str) -> list[bytes]:
    """The mirror's stored values, in key (agent id) order. Raises ``KVError``."""
    kvs, _ = await kv.range(cluster_key(prefix, AGENTS), prefix=True)
    return [item.value for item in kvs]
