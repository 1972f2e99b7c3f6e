"""Coordinator replicas as real processes (``agentmesh serve --store etcd``), for the
cluster scenarios and the failover benchmark."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import BIN, ROOT, free_port

SERVING = health_pb2.HealthCheckResponse.SERVING
LEADER_SERVICE = "agentmesh.v1.AgentService"


def unique_prefix() -> str:
    return f"/agentmesh-test-{uuid.uuid4().hex[:8]}"


class ReplicaProcess:
    """One replica; its log goes to ``<log_dir>/<id>.log`` (a pipe could fill and stall it)."""

    def __init__(
        self,
        replica_id: str,
        etcd_endpoints: Sequence[str],
        prefix: str,
        log_dir: Path,
        *args: str,
        ttl: int = 2,
    ) -> None:
        self.id = replica_id
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{replica_id}.log"
        self._argv = [
            str(BIN / "agentmesh"),
            "serve",
            "--listen",
            self.address,
            "--store",
            "etcd",
            "--etcd-endpoints",
            ",".join(etcd_endpoints),
            "--etcd-prefix",
            prefix,
            "--coordinator-id",
            replica_id,
            "--lease-ttl-s",
            str(ttl),
            "--heartbeat-interval-ms",
            "200",
            "--heartbeat-timeout-ms",
            "2000",
            "--shutdown-grace-s",
            "3",
            *args,
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(
                self._argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("agentmesh coordinator listening on"), (line, self.log())

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no resignation, no drain; its lease must expire."""
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
        self._reap()

    def stop(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)  # in case a test left it paused
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            self.proc.wait(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


async def health(address: str, service: str = "", timeout: float = 1.0) -> int:
    """The health status of ``service`` at ``address`` (-1 when it does not answer)."""
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
            return int(reply.status)
    except grpc.aio.AioRpcError:
        return -1


async def leaders(replicas: Sequence[ReplicaProcess]) -> list[ReplicaProcess]:
    """The replicas whose agentmesh services report SERVING (the leader, or none)."""
    live = [r for r in replicas if r.alive]
    states = await asyncio.gather(*(health(r.address, LEADER_SERVICE) for r in live))
    return [r for r, s in zip(live, states, strict=True) if s == SERVING]


async def wait_leader(replicas: Sequence[ReplicaProcess], timeout: float = 20.0) -> ReplicaProcess:
    """Wait for exactly one leader among ``replicas`` and return it."""
    deadline = time.monotonic() + timeout
    while True:
        found = await leaders(replicas)
        if len(found) == 1:
            return found[0]
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {r.id}\n{r.log()[-3000:]}" for r in replicas)
            raise AssertionError(f"no single leader (found {[r.id for r in found]})\n{logs}")
        await asyncio.sleep(0.02)


def cluster_status(endpoints: Sequence[str], prefix: str, *flags: str) -> dict[str, Any]:
    """``agentmesh cluster status --json`` (``flags``: TLS or auth settings)."""
    out = subprocess.run(
        [str(BIN / "agentmesh"), "cluster", "status", "--etcd-endpoints", ",".join(endpoints),
         "--etcd-prefix", prefix, "--json", *flags],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    status: dict[str, Any] = json.loads(out.stdout)
    return status
