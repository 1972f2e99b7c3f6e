"""The HTTP API on a cluster: a follower refuses a write as it does on gRPC, with
``unavailable`` and the leader's address in ``trailer-agentmesh-leader``, which is where
the same call then succeeds."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.cluster.etcd_server import EtcdCluster
from tests.cluster.replicas import ReplicaProcess, unique_prefix, wait_leader
from tests.conftest import free_port

pytestmark = pytest.mark.timeout(120)

QUICK = {"name": "quick", "steps": [{"id": "w", "type": "wait", "wait": {"durationMs": 1}}]}


async def test_a_follower_names_the_leader_over_http(etcd: EtcdCluster, tmp_path: Path) -> None:
    prefix = unique_prefix()
    ports = [free_port(), free_port()]
    replicas = [
        ReplicaProcess(
            f"h{i}", etcd.endpoints, prefix, tmp_path, "--http-listen", f"127.0.0.1:{ports[i]}"
        )
        for i in range(2)
    ]
    try:
        leader = await wait_leader(replicas)
        follower = next(r for r in replicas if r is not leader)
        urls = {r.address: f"http://127.0.0.1:{ports[replicas.index(r)]}" for r in replicas}
        define = "/agentmesh.v1.WorkflowService/DefineWorkflow"
        body = {"name": "quick", "definition": QUICK}
        async with httpx.AsyncClient(timeout=10) as http:
            refused = await http.post(urls[follower.address] + define, json=body)
            assert (refused.status_code, refused.json()["code"]) == (503, "unavailable")
            assert refused.headers["trailer-agentmesh-leader"] == leader.address
            done = await http.post(
                urls[refused.headers["trailer-agentmesh-leader"]] + define, json=body
            )
            assert done.status_code == 200 and done.json()["name"] == "quick"
    finally:
        for replica in replicas:
            replica.stop()
