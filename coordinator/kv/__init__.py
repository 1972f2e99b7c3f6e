"""The key-value layer under the store and cluster mode: the ``KV`` protocol (etcd v3's
data model: revisions, leases, guarded transactions, watches), ``MemoryKV`` (in-process,
for tests and single-node use), ``EtcdKV`` (a real etcd cluster), and the election
recipe on top of any KV (``coordinator.kv.election``: sessions, campaigns, fencing).

Import ``EtcdKV`` from ``coordinator.kv.etcd``: it pulls in grpc and aetcd, which the
unit tests of the election and store logic do not need.
"""

from coordinator.kv._api import (
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
    compare_holds,
    prefix_end,
)
from coordinator.kv.memory import MemoryKV

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
    "compare_holds",
    "prefix_end",
    # errors
    "Compacted",
    "KVError",
    "KVUnavailable",
    "LeaseNotFound",
    # implementations
    "MemoryKV",
]
