"""Errors raised by the durable store (defined, with the whole tree, in
``coordinator.errors``).

    StoreError           the store could not do what was asked; the message says what
    ├── ConflictError    the write contradicts what is stored: an event seq that is not
    │                    exactly last_seq + 1 for its execution, or a workflow version that
    │                    already exists with a different definition
    ├── StoreLocked      another process has the SQLite store open
    └── StoreUnavailable etcd could not be reached or had no quorum
    Fenced               (an ElectionError) an etcd write whose fence no longer holds

A batch that raises ConflictError or StoreLocked wrote nothing.
"""

from __future__ import annotations

from coordinator.errors import (
    ConflictError,
    ElectionError,
    Fenced,
    StoreError,
    StoreLocked,
    StoreUnavailable,
)

__all__ = [
    "ConflictError",
    "ElectionError",
    "Fenced",
    "StoreError",
    "StoreLocked",
    "StoreUnavailable",
]
