"""Replica discovery and cluster status against a real etcd."""

from __future__ import annotations

import asyncio
import json
import subprocess

from coordinator.cluster.membership import (
    Replica,
    cluster_status,
    election_for,
    list_replicas,
    register,
)
from coordinator.kv.election import Session
from coordinator.kv.etcd import EtcdKV
from tests.cluster.etcd_server import EtcdCluster
from tests.conftest import BIN


async def test_replicas_register_and_status_names_the_leader(etcd: EtcdCluster) -> None:
    kv = EtcdKV(etcd.endpoints, timeout=3.0)
    prefix = "/am-membership"
    try:
        await kv.delete(prefix.encode() + b"/", prefix=True)
        async with Session(kv, ttl=5) as s1, Session(kv, ttl=5) as s2:
            await register(s1, prefix, Replica("r1", "10.0.0.1:50051", "t1", "0.1.0"))
            await register(s2, prefix, Replica("r2", "10.0.0.2:50051", "t2", "0.1.0"))
            assert [r.id for r in await list_replicas(kv, prefix)] == ["r1", "r2"]
            e1 = election_for(s1, prefix)
            await e1.campaign(b"r1")
            e2 = election_for(s2, prefix)
            follower = asyncio.create_task(e2.campaign(b"r2"))
            status = await cluster_status(kv, prefix)
            assert status["leader"] == "r1" and status["term"] > 0
            assert [(r["id"], r["leader"]) for r in status["replicas"]] == [
                ("r1", True),
                ("r2", False),
            ]
            assert status["etcd"]["healthy"] is True
            term = status["term"]
            cli = await asyncio.to_thread(
                subprocess.run,
                [
                    str(BIN / "agentmesh"),
                    "cluster",
                    "status",
                    "--etcd-endpoints",
                    ",".join(etcd.endpoints),
                    "--prefix",
                    prefix,
                    "--json",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert cli.returncode == 0, cli.stderr
            shown = json.loads(cli.stdout)
            assert shown["leader"] == "r1" and shown["term"] == term
            # the leader goes away: its registration and candidacy vanish with its lease
            await e1.resign()
            await s1.close()
            await asyncio.wait_for(follower, 5)
            status = await cluster_status(kv, prefix)
            assert status["leader"] == "r2" and status["term"] > term
            assert [r["id"] for r in status["replicas"]] == ["r2"]
    finally:
        await kv.close()


async def test_status_reports_an_unreachable_etcd() -> None:
    kv = EtcdKV(["127.0.0.1:1"], timeout=0.5, connect_timeout=0.5)
    try:
        status = await asyncio.wait_for(cluster_status(kv, "/x"), 10)
        assert status["etcd"]["healthy"] is False
        assert status["leader"] is None and "error" in status
    finally:
        await kv.close()
