"""The SDK finds the leader in a real etcd: the election key with the lowest create revision."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent_sdk import Agent, Client, Task, UnavailableError
from agent_sdk._discovery import find_leader
from coordinator.kv.etcd import EtcdKV
from coordinator.server import Coordinator
from tests.cluster.etcd_server import EtcdCluster
from tests.conftest import free_port, running


@pytest.fixture
async def prefix(etcd: EtcdCluster) -> AsyncIterator[str]:
    """A fresh cluster prefix, removed afterwards."""
    name = f"/sdk-test/{uuid.uuid4().hex}"
    yield name
    async with EtcdKV(etcd.endpoints, timeout=3.0) as kv:
        await kv.delete(name.encode() + b"/", prefix=True)


async def campaign(
    etcd: EtcdCluster, prefix: str, lease_hex: str, replica: str, address: str
) -> None:
    """Write a candidate's election key as a coordinator replica does."""
    value = json.dumps({"id": replica, "address": address}).encode()
    async with EtcdKV(etcd.endpoints, timeout=3.0) as kv:
        await kv.put(f"{prefix}/election/{lease_hex}".encode(), value)


async def test_the_first_candidate_is_the_leader(etcd: EtcdCluster, prefix: str) -> None:
    # The first candidate's key sorts *after* the second's: only the create revision
    # (not the key order) says who leads.
    await campaign(etcd, prefix, "7f00000000000002", "c1", "10.0.0.1:50061")
    await campaign(etcd, prefix, "0000000000000001", "c2", "10.0.0.2:50062")
    async with EtcdKV(etcd.endpoints, timeout=3.0) as kv:
        # Keys beside the election (replicas, a look-alike prefix) do not count.
        await kv.put(f"{prefix}/replicas/c3".encode(), b'{"id": "c3", "address": "x:1"}')
        await kv.put(f"{prefix}/electionx/0".encode(), b'{"id": "c4", "address": "y:1"}')
    assert await find_leader(etcd.endpoints, prefix) == "10.0.0.1:50061"
    assert await find_leader(etcd.endpoints, prefix + "/") == "10.0.0.1:50061"
    # A dead endpoint first: the next one answers.
    dead = f"127.0.0.1:{free_port()}"
    assert await find_leader([dead, *etcd.endpoints], prefix, timeout=0.5) == "10.0.0.1:50061"
    # The leader resigns: the second candidate leads.
    async with EtcdKV(etcd.endpoints, timeout=3.0) as kv:
        await kv.delete(f"{prefix}/election/7f00000000000002".encode())
    assert await find_leader(etcd.endpoints, prefix) == "10.0.0.2:50062"


async def test_no_leader_registered_is_unavailable(etcd: EtcdCluster, prefix: str) -> None:
    with pytest.raises(UnavailableError, match="no coordinator leader registered") as info:
        await find_leader(etcd.endpoints, prefix)
    assert etcd.endpoints[0] in str(info.value) and f"{prefix}/election/" in str(info.value)


async def test_a_malformed_leader_record_is_unavailable(etcd: EtcdCluster, prefix: str) -> None:
    async with EtcdKV(etcd.endpoints, timeout=3.0) as kv:
        await kv.put(f"{prefix}/election/1".encode(), b"not json")
    with pytest.raises(UnavailableError, match="malformed leader record"):
        await find_leader(etcd.endpoints, prefix)


async def test_unreachable_etcd_is_unavailable() -> None:
    dead = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    with pytest.raises(UnavailableError, match="etcd unreachable") as info:
        await find_leader(dead, timeout=0.3)
    assert all(d in str(info.value) for d in dead)
    async with Client(f"etcd://{','.join(dead)}", timeout=2) as client:
        with pytest.raises(UnavailableError, match="etcd unreachable"):
            await client.list_agents()


async def test_client_and_agent_reach_the_leader_etcd_names(
    etcd: EtcdCluster, prefix: str, coordinator: Coordinator
) -> None:
    await campaign(etcd, prefix, "1", "c1", coordinator.address)
    address = f"etcd://{','.join(etcd.endpoints)}{prefix}"
    agent = Agent("doubler", address, reconnect_max=0.5)

    @agent.capability("double")
    async def double(task: Task) -> dict[str, Any]:
        return {"value": task.input["value"] * 2}

    async with Client(address, timeout=10) as client:
        assert client.address == address, "unresolved until the first call"
        async with running(agent):
            assert agent.coordinator == address
            assert agent.connected_to == coordinator.address
            t = await client.assign_task("double", {"value": 4})
            assert client.address == coordinator.address
            done = await client.wait_task(t.id, timeout=10)
            assert done.status == "completed" and done.result == {"value": 8}


async def test_client_re_resolves_when_the_leader_it_used_is_gone(
    etcd: EtcdCluster, prefix: str, coordinator: Coordinator
) -> None:
    """etcd names a dead replica, then the real leader: client and agent follow."""
    dead = f"127.0.0.1:{free_port()}"
    await campaign(etcd, prefix, "1", "gone", dead)
    address = f"etcd://{','.join(etcd.endpoints)}{prefix}"
    agent = Agent("idle", address, reconnect_min=0.05, reconnect_max=0.2)
    agent.add_capability("idle", lambda t: None)
    serving = asyncio.create_task(agent.serve())
    try:
        async with Client(address, timeout=10) as client:
            with pytest.raises(UnavailableError):
                await client.list_agents()  # etcd keeps naming the dead replica
            assert client.address == dead
            assert agent.connected_to is None
            async with EtcdKV(etcd.endpoints, timeout=3.0) as kv:
                await kv.delete(f"{prefix}/election/1".encode())
            await campaign(etcd, prefix, "2", "c1", coordinator.address)
            await agent.wait_connected(10)
            assert agent.connected_to == coordinator.address
            assert [a.id for a in await client.list_agents()] == [agent.agent_id]
            assert client.address == coordinator.address
    finally:
        await agent.shutdown(grace=0.5)
        await asyncio.wait_for(serving, 5)
