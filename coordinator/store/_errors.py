"""Errors raised by the durable store.

    StoreError           the store could not do what was asked; the message says what
    ├── ConflictError    the write contradicts what is stored: an event seq that is not
    │                    exactly last_seq + 1 for its execution, or a workflow version that
    │                    already exists with a different definition
    └── StoreLocked      (from _lock) another process has the SQLite store open

A batch that raises either error wrote nothing.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class ConflictError(StoreError):
    """The write contradicts stored state; retrying the same write cannot succeed."""
