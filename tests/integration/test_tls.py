"""TLS and mutual TLS on the coordinator's gRPC listener: real handshakes on loopback,
with certificates made by ``agentmesh dev certs`` (``make_certs``)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_sdk import TLS, Agent, Client, Task, UnavailableError
from agentmesh.cli._certs import make_certs
from coordinator.errors import ConfigError
from coordinator.server import Coordinator
from tests.conftest import fast_settings, running


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Path]:
    return make_certs(tmp_path / "pki", clients=["ops"])


async def started(**tls: Any) -> Coordinator:
    c = Coordinator(fast_settings(**{k: str(v) for k, v in tls.items()}))
    await c.start()
    return c


@pytest.fixture
async def tls_coordinator(certs: dict[str, Path]) -> AsyncIterator[Coordinator]:
    c = await started(tls_cert=certs["server"], tls_key=certs["server_key"])
    try:
        yield c
    finally:
        await c.stop(grace=1.0)


async def test_clients_and_agents_that_trust_its_ca_are_served(
    tls_coordinator: Coordinator, certs: dict[str, Path]
) -> None:
    assert tls_coordinator.tls is not None and not tls_coordinator.tls.mutual
    tls = TLS(ca=certs["ca"])
    agent = Agent("secure", tls_coordinator.address, tls=tls, reconnect_max=0.5)

    @agent.capability("echo")
    async def echo(task: Task) -> Any:
        return task.input

    async with running(agent), Client(tls_coordinator.address, tls=tls, timeout=10) as client:
        assert [a.name for a in await client.list_agents()] == ["secure"]
        done = await client.wait_task((await client.assign_task("echo", {"n": 1})).id, timeout=10)
        assert done.status == "completed" and done.result == {"n": 1}


async def test_plaintext_and_untrusted_clients_are_refused(
    tls_coordinator: Coordinator, tmp_path: Path
) -> None:
    async with Client(tls_coordinator.address, tls=None, timeout=3) as plain:
        with pytest.raises(UnavailableError):
            await plain.list_agents()
    other = make_certs(tmp_path / "other")
    async with Client(tls_coordinator.address, tls=TLS(ca=other["ca"]), timeout=3) as wrong:
        with pytest.raises(UnavailableError) as refused:
            await wrong.list_agents()
    assert "TLS" in str(refused.value) or "handshake" in str(refused.value).lower()


async def test_mutual_tls_requires_a_client_certificate_from_its_ca(
    certs: dict[str, Path],
) -> None:
    c = await started(
        tls_cert=certs["server"], tls_key=certs["server_key"], tls_client_ca=certs["ca"]
    )
    try:
        assert c.tls is not None and c.tls.mutual
        async with Client(c.address, tls=TLS(ca=certs["ca"]), timeout=3) as anonymous:
            with pytest.raises(UnavailableError):
                await anonymous.list_agents()
        ops = TLS(ca=certs["ca"], cert=certs["client:ops"], key=certs["client_key:ops"])
        async with Client(c.address, tls=ops, timeout=10) as client:
            assert await client.list_agents() == []
    finally:
        await c.stop(grace=1.0)


async def test_a_renewed_certificate_is_served_without_a_restart(
    tls_coordinator: Coordinator, certs: dict[str, Path], tmp_path: Path
) -> None:
    renewed = make_certs(tmp_path / "renewed")  # a new CA and server certificate
    async with Client(tls_coordinator.address, tls=TLS(ca=renewed["ca"]), timeout=3) as early:
        with pytest.raises(UnavailableError):
            await early.list_agents()  # not yet: the old certificate is served
    # The files the coordinator was started with are replaced (a rotated secret).
    shutil.copyfile(renewed["server_key"], certs["server_key"])
    shutil.copyfile(renewed["server"], certs["server"])
    async with Client(tls_coordinator.address, tls=TLS(ca=renewed["ca"]), timeout=10) as client:
        assert await client.list_agents() == []
    assert tls_coordinator.tls is not None and tls_coordinator.tls.reloads == 1


async def test_unusable_tls_settings_are_refused_at_start(
    certs: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        fast_settings(tls_cert=str(certs["server"]))
    with pytest.raises(ConfigError, match=r"tls_client_ca \(mutual TLS\) needs tls_cert"):
        fast_settings(tls_client_ca=str(certs["ca"]))
    missing = Coordinator(
        fast_settings(tls_cert=str(tmp_path / "nope.pem"), tls_key=str(certs["server_key"]))
    )
    with pytest.raises(ConfigError, match=r"nope\.pem"):
        await missing.start()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    bad = Coordinator(fast_settings(tls_cert=str(garbage), tls_key=str(certs["server_key"])))
    with pytest.raises(ConfigError, match="not a PEM file"):
        await bad.start()
    other = make_certs(tmp_path / "other")
    mismatched = Coordinator(
        fast_settings(tls_cert=str(certs["server"]), tls_key=str(other["server_key"]))
    )
    with pytest.raises(ConfigError, match="not a certificate and its private key"):
        await mismatched.start()


async def test_a_broken_renewal_keeps_the_last_good_certificate(
    tls_coordinator: Coordinator, certs: dict[str, Path]
) -> None:
    certs["server"].write_text("-----BEGIN half written")  # a renewal caught mid-write
    async with Client(tls_coordinator.address, tls=TLS(ca=certs["ca"]), timeout=10) as client:
        assert await client.list_agents() == []  # still the original certificate
    assert tls_coordinator.tls is not None and tls_coordinator.tls.reloads == 0
