"""``probe_listen``: a second, plaintext listener for probes that cannot do TLS (the
kubelet's native gRPC probes). It serves ``grpc.health.v1.Health`` only, from the main
server's own health servicer (the same states, the same service names), never the
AgentMesh services or reflection; it starts and stops with the coordinator. A real
coordinator with mutual TLS and auth on, certificates from ``agentmesh dev certs``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agentmesh.cli._certs import make_certs
from coordinator.api.router import SERVICE_NAMES
from coordinator.config import load_settings
from coordinator.errors import ConfigError, ListenError
from coordinator.server import Coordinator
from tests.conftest import eventually, fast_settings, free_port

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
HEALTH_NAMES = ["", "liveness", *SERVICE_NAMES]
TOKENS = """\
tokens:
  - name: ops
    spiffe: spiffe://agentmesh/ops
    roles: [operator]
"""


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Path]:
    return make_certs(tmp_path / "pki", clients=["ops"])


def secure_settings(certs: dict[str, Path], tmp_path: Path, **more: object) -> dict[str, object]:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(TOKENS, encoding="utf-8")
    return {
        "tls_cert": str(certs["server"]),
        "tls_key": str(certs["server_key"]),
        "tls_client_ca": str(certs["ca"]),
        "auth_tokens_file": str(tokens),
        "probe_listen": "127.0.0.1:0",
        **more,
    }


@pytest.fixture
async def probed(certs: dict[str, Path], tmp_path: Path) -> AsyncIterator[Coordinator]:
    c = Coordinator(fast_settings(**secure_settings(certs, tmp_path)))
    await c.start()
    try:
        yield c
    finally:
        await c.stop(grace=1.0)


def probe_channel(coordinator: Coordinator) -> grpc.aio.Channel:
    assert coordinator.probe_port not in (0, coordinator.port)
    return grpc.aio.insecure_channel(f"127.0.0.1:{coordinator.probe_port}")


def mutual_channel(coordinator: Coordinator, certs: dict[str, Path]) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=certs["ca"].read_bytes(),
        private_key=certs["client_key:ops"].read_bytes(),
        certificate_chain=certs["client:ops"].read_bytes(),
    )
    return grpc.aio.secure_channel(coordinator.address, credentials)


async def statuses(channel: grpc.aio.Channel) -> dict[str, int]:
    stub = health_pb2_grpc.HealthStub(channel)
    out = {}
    for name in HEALTH_NAMES:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        out[name] = reply.status
    return out


async def code_of(channel: grpc.aio.Channel, method: str, *, streaming: bool = False) -> str:
    try:
        if streaming:
            call = channel.stream_stream(method)(iter(()), timeout=5)
            async for _ in call:
                pass
        else:
            await channel.unary_unary(method)(b"", timeout=5)
    except grpc.aio.AioRpcError as e:
        return str(e.code().name)
    return "OK"


async def test_the_probe_port_answers_health_in_plaintext_as_the_main_port_does(
    probed: Coordinator, certs: dict[str, Path]
) -> None:
    async with probe_channel(probed) as probe, mutual_channel(probed, certs) as main:
        on_probe = await statuses(probe)
        assert on_probe == {name: SERVING for name in HEALTH_NAMES}
        assert await statuses(main) == on_probe
        # An unknown service is NOT_FOUND on both, as the servicer says.
        for channel in (probe, main):
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service="nope"), timeout=5
                )
            assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_probe_port_serves_nothing_but_health(probed: Coordinator) -> None:
    async with probe_channel(probed) as probe:
        for method in (
            "/agentmesh.v1.RegistryService/ListAgents",
            "/agentmesh.v1.RegistryService/RegisterAgent",
            "/agentmesh.v1.ExecutionService/StopWorkflow",
        ):
            assert await code_of(probe, method) == "UNIMPLEMENTED", method
        connect = "/agentmesh.v1.AgentService/Connect"
        assert await code_of(probe, connect, streaming=True) == "UNIMPLEMENTED"
        reflection = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        assert await code_of(probe, reflection, streaming=True) == "UNIMPLEMENTED"
        assert await code_of(probe, "/grpc.health.v1.Health/Check") == "OK"  # b"": service ""


async def test_the_main_port_still_refuses_plaintext(probed: Coordinator) -> None:
    async with grpc.aio.insecure_channel(probed.address) as plain:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(plain).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_health_goes_not_serving_on_both_ports_at_shutdown_then_the_probe_port_closes(
    certs: dict[str, Path], tmp_path: Path
) -> None:
    c = Coordinator(fast_settings(**secure_settings(certs, tmp_path, readiness_drain_s=3)))
    await c.start()
    async with probe_channel(c) as probe, mutual_channel(c, certs) as main:
        assert (await statuses(probe))[""] == SERVING
        stopping = asyncio.create_task(c.stop(grace=1.0))  # first NOT_SERVING, then waits

        async def not_serving(channel: grpc.aio.Channel) -> bool:
            return set((await statuses(channel)).values()) == {NOT_SERVING}

        await eventually(lambda: not_serving(probe), timeout=10)
        assert await not_serving(main)  # one servicer: the same states on both ports
        assert not stopping.done()  # still draining: the probes see NOT_SERVING meanwhile
        await stopping
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await health_pb2_grpc.HealthStub(probe).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
    assert gone.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_probe_address_in_use_stops_the_start_naming_the_setting(
    certs: dict[str, Path], tmp_path: Path
) -> None:
    first = Coordinator(fast_settings(**secure_settings(certs, tmp_path)))
    await first.start()
    try:
        taken = f"127.0.0.1:{first.probe_port}"
        second = Coordinator(fast_settings(**secure_settings(certs, tmp_path, probe_listen=taken)))
        with pytest.raises(ListenError) as refused:
            await second.start()
        assert "probe_listen" in str(refused.value) and taken in str(refused.value)
    finally:
        await first.stop(grace=1.0)


def test_the_setting_is_validated_like_listen() -> None:
    port = free_port()
    env = {"AGENTMESH_PROBE_LISTEN": f"0.0.0.0:{port}"}
    assert load_settings(environ=env).probe_listen == f"0.0.0.0:{port}"
    assert load_settings(environ={}).probe_listen == ""
    assert load_settings(overrides={"probeListen": "[::]:8081"}, environ={}).probe_listen
    for bad in ("8081", "localhost:", ":8081", "host:http", "host:70000"):
        with pytest.raises(ConfigError) as refused:
            load_settings(overrides={"probe_listen": bad}, environ={})
        assert "probe_listen" in str(refused.value), bad
