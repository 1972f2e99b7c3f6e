"""Cluster-mode settings: validation with errors that name the setting, and defaults."""

from __future__ import annotations

import pytest

from coordinator.config import load_settings
from coordinator.errors import ConfigError
from coordinator.server import Coordinator
from coordinator.server.replica import ClusterNode


def test_etcd_mode_reads_endpoints_from_env_flags_or_the_seed_name() -> None:
    s = load_settings(
        environ={"AGENTMESH_STATE_PERSISTENCE": "etcd", "AGENTMESH_ETCD_ENDPOINTS": "a:1, b:2"}
    )
    assert s.clustered and s.store_kind == "etcd" and s.endpoints == ["a:1", "b:2"]
    assert s.etcd_prefix == "/agentmesh" and s.lease_ttl_s == 10
    # the seed's agentRegistry names the etcd endpoints too (http:// tolerated)
    seed = load_settings(overrides={"state_persistence": "etcd", "agent_registry": "http://e:2379"})
    assert seed.endpoints == ["e:2379"]
    flags = load_settings(overrides={"state_persistence": "etcd", "etcd_endpoints": "x:9"})
    assert flags.endpoints == ["x:9"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "etcd_endpoints: state_persistence etcd needs at least one etcd endpoint"),
        ({"etcd_endpoints": "nohost"}, "etcd_endpoints: expected host:port, got 'nohost'"),
        ({"etcd_endpoints": "e:1", "etcd_prefix": "agentmesh"}, "etcd_prefix: expected an"),
        ({"etcd_endpoints": "e:1", "etcd_prefix": "/"}, "etcd_prefix: expected an"),
        ({"etcd_endpoints": "e:1", "lease_ttl_s": 1}, "lease_ttl_s: Input should be greater"),
        ({"etcd_endpoints": "e:1", "etcd_cert": "c.pem"}, "etcd_cert and etcd_key go together"),
        ({"etcd_endpoints": "e:1", "etcd_user": "u"}, "etcd_user and etcd_password go together"),
        (
            {"etcd_endpoints": "e:1", "advertise_address": "10.0.0.1"},
            "advertise_address: expected host:port, got '10.0.0.1'",
        ),
    ],
)
def test_bad_cluster_settings_are_named(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_settings(overrides={"state_persistence": "etcd", **overrides})


def test_prefix_is_normalised_and_standalone_ignores_cluster_checks() -> None:
    s = load_settings(
        overrides={"state_persistence": "etcd", "etcd_endpoints": "e:1", "etcd_prefix": "/m/"}
    )
    assert s.etcd_prefix == "/m"
    standalone = load_settings(overrides={"state_persistence": "memory", "etcd_cert": "c"})
    assert not standalone.clustered and standalone.store_kind == "memory"


def test_advertised_address_defaults_sensibly() -> None:
    explicit = load_settings(
        overrides={
            "state_persistence": "etcd",
            "etcd_endpoints": "127.0.0.1:2379",
            "advertise_address": "pod-1.mesh:50051",
        }
    )
    assert ClusterNode(Coordinator(explicit), explicit).address == "pod-1.mesh:50051"
    loopback = load_settings(
        overrides={
            "state_persistence": "etcd",
            "etcd_endpoints": "127.0.0.1:2379",
            "listen": "127.0.0.1:7000",
        }
    )
    assert ClusterNode(Coordinator(loopback), loopback).address == "127.0.0.1:0"  # not bound
    wildcard = load_settings(
        overrides={
            "state_persistence": "etcd",
            "etcd_endpoints": "127.0.0.1:2379",
            "listen": "0.0.0.0:7000",
        }
    )
    # the local address on the route to etcd, not 0.0.0.0
    assert ClusterNode(Coordinator(wildcard), wildcard).address == "127.0.0.1:0"
