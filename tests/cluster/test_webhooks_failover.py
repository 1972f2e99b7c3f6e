"""Webhook deliveries outlive their leader: deliveries accepted into the outbox (etcd
documents, fenced) while the receiver is down are delivered by the replica that takes over
after a SIGKILL of the leader, once the receiver is back, each signed and none lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web

from agent_sdk import Client, verify_webhook
from tests.cluster.etcd_server import EtcdCluster
from tests.cluster.replicas import ReplicaProcess, unique_prefix, wait_leader
from tests.conftest import eventually
from tests.upstream import Upstream, upstream

__all__ = ["upstream"]

pytestmark = pytest.mark.timeout(120)

KEY = "failover-webhook-signing-key-01"
QUICK = {"name": "quick", "steps": [{"id": "w", "type": "wait", "wait": {"durationMs": 1}}]}


def down(request: web.Request) -> web.StreamResponse:
    return web.Response(status=503, text="receiver down")


def ok(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


async def test_accepted_deliveries_survive_a_leader_sigkill(
    etcd: EtcdCluster, tmp_path: Path, upstream: Upstream
) -> None:
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(f"hook-key: {KEY}\n")
    flags = [
        *("--secrets-file", str(secrets)),
        *("--webhook-backoff-ms", "50", "--webhook-max-backoff-ms", "300"),
    ]
    prefix = unique_prefix()
    replicas = [ReplicaProcess(f"r{i}", etcd.endpoints, prefix, tmp_path, *flags) for i in range(2)]
    upstream.script = [down]
    try:
        leader = await wait_leader(replicas)
        async with Client(",".join(r.address for r in replicas), timeout=30) as client:
            hook = await client.register_webhook(
                "execution.completed", upstream.url, secret_ref="hook-key", max_attempts=100
            )
            await client.define_workflow("quick", QUICK)
            ids = [(await client.start_workflow("quick")).id for _ in range(10)]
            for exec_id in ids:
                await client.wait_execution(exec_id, timeout=20)

            async def accepted() -> bool:
                return (await client.get_webhook(hook.id)).pending == len(ids)

            await eventually(accepted, timeout=20)
            leader.kill()  # SIGKILL, with every delivery in the outbox and none taken
            before = len(upstream.seen)
            upstream.script = [ok]

            def delivered() -> set[str]:
                bodies = [json.loads(s.body) for s in upstream.seen[before:]]
                return {b["event"]["executionId"] for b in bodies}

            await eventually(lambda: delivered() >= set(ids), timeout=60)
            for seen in upstream.seen[before:]:
                verify_webhook(seen.headers["AgentMesh-Signature"], KEY, seen.body)

            async def drained() -> bool:
                return (await client.get_webhook(hook.id)).pending == 0

            await eventually(drained, timeout=20)
    finally:
        for r in replicas:
            r.stop()
