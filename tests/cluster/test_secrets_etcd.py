"""The planted-secret search of tests/integration/test_secrets.py on a coordinator whose
store is a real etcd: no key and no value under its prefix holds the secrets."""

from __future__ import annotations

import uuid
from pathlib import Path

from coordinator.kv.etcd import EtcdKV
from tests.cluster.etcd_server import EtcdCluster
from tests.conftest import ServerProcess
from tests.integration.test_secrets import history_key, run_scenario

__all__ = ["history_key"]  # the fixture, used by name below


async def test_a_planted_secret_is_nowhere_in_etcd(
    tmp_path: Path, etcd: EtcdCluster, history_key: str
) -> None:
    prefix = f"/secrets-{uuid.uuid4().hex[:8]}"
    logs: list[Path] = []

    def start() -> ServerProcess:
        logs.append(tmp_path / f"coordinator-{len(logs)}.log")
        return ServerProcess(
            "--state-persistence",
            "etcd",
            "--etcd-endpoints",
            ",".join(etcd.endpoints),
            "--etcd-prefix",
            prefix,
            "--lease-ttl-s",
            "2",
            log=logs[-1],
        )

    async def stored() -> list[bytes]:
        kv = EtcdKV(etcd.endpoints, timeout=3.0)
        try:
            kvs, _ = await kv.range(prefix.encode() + b"/", prefix=True)
        finally:
            await kv.close()
        assert kvs, "the store wrote nothing under its prefix"
        return [item.key + b"=" + item.value for item in kvs]

    await run_scenario(start, stored, logs)
