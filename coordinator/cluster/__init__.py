"""Cluster mode: the KV protocol over etcd, election with fencing, replica membership.

Import the implementations from their modules: ``coordinator.cluster.etcd_kv`` pulls in
grpc and aetcd, which unit tests of the election logic do not need.
"""

from coordinator.cluster.kv import (
    KV,
    Compacted,
    Compare,
    Delete,
    KeyValue,
    KVError,
    KVUnavailable,
    LeaseNotFound,
    Op,
    Put,
    Range,
    TxnResult,
    WatchEvent,
    prefix_end,
)
from coordinator.cluster.memory_kv import MemoryKV

__all__ = [  # noqa: RUF022 -- grouped by kind, not alphabetised
    # protocol and values
    "KV",
    "Compare",
    "Delete",
    "KeyValue",
    "Op",
    "Put",
    "Range",
    "TxnResult",
    "WatchEvent",
    "prefix_end",
    # errors
    "Compacted",
    "KVError",
    "KVUnavailable",
    "LeaseNotFound",
    # implementations
    "MemoryKV",
]
