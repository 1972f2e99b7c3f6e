"""The Kubernetes manifests configure the coordinator with settings that exist and load."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordinator.config import ENV_PREFIX, Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def containers(path: Path, name: str) -> list[dict[str, Any]]:
    out = []
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc["kind"] in ("Deployment", "StatefulSet"):
            out += [c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return out


def environment(container: dict[str, Any]) -> dict[str, str]:
    """The container's AGENTMESH_ variables, with $(VAR) references filled with samples."""
    samples = {"POD_NAME": "agentmesh-coordinator-0", "POD_IP": "10.1.2.3"}
    env = {}
    for item in container.get("env", []):
        if item["name"].startswith(ENV_PREFIX) and "value" in item:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: samples[m[1]], item["value"])
    return env


@pytest.mark.parametrize("manifest", ["coordinator.yaml", "cluster.yaml"])
def test_coordinator_environment_is_valid_settings(manifest: str) -> None:
    (coordinator,) = containers(DEPLOY / manifest, "coordinator")
    env = environment(coordinator)
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    assert set(env) <= known, set(env) - known
    settings = load_settings(environ=env)
    if manifest == "cluster.yaml":
        assert settings.clustered
        assert settings.endpoints == ["etcd-0.etcd:2379", "etcd-1.etcd:2379", "etcd-2.etcd:2379"]
        assert settings.advertise_address == "10.1.2.3:50051"
        assert settings.coordinator_id == "agentmesh-coordinator-0"


def test_cluster_probes_select_the_leader_and_survive_etcd_outages() -> None:
    (coordinator,) = containers(DEPLOY / "cluster.yaml", "coordinator")
    assert coordinator["readinessProbe"]["grpc"]["service"] == "agentmesh.v1.AgentService"
    assert coordinator["livenessProbe"]["grpc"]["service"] == "liveness"
