"""Replica discovery and cluster status, on the KV protocol.

Layout under the cluster prefix (default ``/agentmesh``):

    replicas/<replica id>   JSON {id, address, started, version}, under the replica's
                            session lease: a dead replica disappears when it expires
    election/<lease hex>    the election candidates (``Election``); the lowest
                            create revision is the leader, and it is the term; the
                            value is JSON {"id", "address"} (SDKs read it to find
                            the leader)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agentmesh.protocol import ELECTION
from coordinator.kv import KV, KVError
from coordinator.kv.election import Election, Session

REPLICAS = "replicas/"


def cluster_key(prefix: str, *parts: str) -> bytes:
    """``<prefix>/<parts...>`` as an etcd key (parts are joined as given)."""
    return (prefix.rstrip("/") + "/" + "".join(parts)).encode()


@dataclass(frozen=True, slots=True)
class Replica:
    """A replica's registration in etcd: id, address, when it started, its version."""

    id: str
    address: str
    started: str
    version: str = ""


async def register(session: Session, prefix: str, replica: Replica) -> None:
    """Publish this replica under its session's lease (re-register after a new session)."""
    value = json.dumps(
        {
            "id": replica.id,
            "address": replica.address,
            "started": replica.started,
            "version": replica.version,
        },
        separators=(",", ":"),
    ).encode()
    await session.kv.put(cluster_key(prefix, REPLICAS, replica.id), value, session.lease)


async def list_replicas(kv: KV, prefix: str) -> list[Replica]:
    kvs, _ = await kv.range(cluster_key(prefix, REPLICAS), prefix=True)
    out = []
    for item in kvs:
        try:
            data = json.loads(item.value)
            out.append(
                Replica(
                    str(data["id"]),
                    str(data["address"]),
                    str(data["started"]),
                    str(data.get("version", "")),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # not ours, or a future format: skip rather than fail the listing
    return sorted(out, key=lambda r: r.id)


def election_for(session: Session, prefix: str) -> Election:
    return Election(session, prefix.rstrip("/") + "/" + ELECTION)


async def cluster_status(kv: KV, prefix: str) -> dict[str, Any]:
    """Replicas, the leader and its term, and etcd's health, as plain data."""
    status: dict[str, Any] = {"prefix": prefix, "time": datetime.now(UTC).isoformat()}
    try:
        status["etcd"] = await kv.health()
    except KVError as e:
        status["etcd"] = {"healthy": False, "error": str(e)}
    try:
        replicas = await list_replicas(kv, prefix)
        kvs, _ = await kv.range(
            cluster_key(prefix, ELECTION, "/"), prefix=True, sort_by_create=True, limit=1
        )
    except KVError as e:
        status.update(replicas=[], leader=None, term=0, error=str(e))
        return status
    leader = kvs[0] if kvs else None
    leader_id, leader_address = leader_of(leader.value) if leader else ("", "")
    status["replicas"] = [
        {
            "id": r.id,
            "address": r.address,
            "started": r.started,
            "version": r.version,
            "leader": leader is not None and leader_id == r.id,
        }
        for r in replicas
    ]
    status["leader"] = leader_id or None
    status["leader_address"] = leader_address or None
    status["term"] = leader.create_revision if leader else 0
    return status


def leader_value(replica_id: str, address: str) -> bytes:
    """The election key's value: who leads and where to reach it."""
    return json.dumps({"id": replica_id, "address": address}, separators=(",", ":")).encode()


def leader_of(value: bytes) -> tuple[str, str]:
    """(id, address) from an election value: JSON {"id", "address"}, or a bare id."""
    try:
        data = json.loads(value)
        return str(data["id"]), str(data.get("address", ""))
    except (ValueError, KeyError, TypeError):
        return value.decode(errors="replace"), ""
