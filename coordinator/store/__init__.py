"""The workflow engine's durable store: per-execution event histories, the execution
index, workflow definitions and integrations' documents (``DocumentRecord``), behind
one ``Store`` interface.

- ``MemoryStore``  dicts, for unit tests; same semantics and errors
- ``SqliteStore``  one SQLite file in WAL mode; group commit on a writer thread
- ``EtcdStore``    etcd (cluster mode): one fenced transaction per batch

``open_store(kind, path)`` builds either from configuration; ``await store.open()``
before use and ``await store.close()`` after.

Namespaces partition what is per tenant: workflows are keyed by (namespace, name,
version) and idempotency keys are per namespace; execution ids stay global keys, each
record carrying its namespace (``default`` for data written before namespaces).
"""

from ._api import (
    DocumentRecord,
    ExecutionRecord,
    ExecutionWhere,
    Store,
    StoredEvent,
    WorkflowRecord,
)
from ._errors import ConflictError, Fenced, StoreError, StoreLocked, StoreUnavailable
from ._etcd import EtcdStore
from ._memory import MemoryStore
from ._sqlite import SqliteStore

__all__ = [  # noqa: RUF022 - grouped by use
    # the interface and its values
    "DocumentRecord",
    "ExecutionRecord",
    "ExecutionWhere",
    "Store",
    "StoredEvent",
    "WorkflowRecord",
    "open_store",
    # errors
    "ConflictError",
    "Fenced",
    "StoreError",
    "StoreLocked",
    "StoreUnavailable",
    # implementations
    "EtcdStore",
    "MemoryStore",
    "SqliteStore",
]


def open_store(kind: str, path: str = "", holder: str = "") -> Store:
    """A new, not yet opened store: ``kind`` is ``"memory"`` or ``"sqlite"``; ``holder``
    is how a SQLite store's lock file names its user (``SqliteStore``).

    Raises ``ValueError`` for another kind, or for ``"sqlite"`` without a path.
    """
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        if not path:
            raise ValueError("the sqlite store needs a database file path")
        return SqliteStore(path, holder=holder)
    if kind == "etcd":
        raise ValueError(
            "open_store() cannot build the etcd store: construct EtcdStore(kv, prefix, "
            "fence=election.fence) with a KV and the leader's fence"
        )
    raise ValueError(f"unknown store kind {kind!r}: expected 'memory' or 'sqlite'")
