"""The in-memory store: dicts behind the same interface, for unit tests of the engine."""

from __future__ import annotations

import bisect
from collections.abc import Collection, Sequence
from typing import Any

from coordinator.domain import DEFAULT_NAMESPACE

from . import _codec as codec
from ._api import (
    EVERY,
    DocumentRecord,
    ExecutionRecord,
    ExecutionWhere,
    StoredEvent,
    StoreLifecycle,
    WorkflowRecord,
)
from ._errors import StoreError


class MemoryStore(StoreLifecycle):
    """A ``Store`` in dicts: nothing survives the process.

    It keeps the rows SQLite would keep, so it reads back the same values and rejects
    the same writes as ``SqliteStore``. Every method runs without awaiting anything,
    which makes each call atomic with respect to other tasks on the loop.
    """

    def __init__(self) -> None:
        self._opened = False
        self._closed = False
        self._events: dict[str, list[codec.EventRow]] = {}
        self._executions: dict[str, codec.ExecutionRow] = {}
        # (namespace, idempotency key) -> execution id (the first)
        self._by_key: dict[tuple[str, str], str] = {}
        self._children: dict[tuple[str, str], str] = {}  # (parent id, key) -> the first child
        # (namespace, name, version) -> row
        self._workflows: dict[tuple[str, str, str], codec.WorkflowRow] = {}
        # (kind, namespace, name) -> row
        self._documents: dict[tuple[str, str, str], codec.DocumentRow] = {}
        # The global log: rows by position (parallel lists, sorted), and its floor.
        self._positions: list[int] = []
        self._log: list[codec.EventRow] = []
        self._floor = 0

    async def open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")
        self._opened = True

    async def close(self) -> None:
        self._closed = True

    async def commit(
        self, events: Sequence[StoredEvent], executions: Sequence[ExecutionRecord] = ()
    ) -> None:
        self._check()
        rows = codec.encode_events(events)
        records = codec.encode_executions(executions)
        codec.check_seqs(rows, self._last_seq)
        # Everything is validated above: from here on nothing can fail half-way.
        for row in rows:
            self._events.setdefault(row[0], []).append(row)
            if row[5]:  # commits arrive in position order but need not: keep it sorted
                at = bisect.bisect_right(self._positions, row[5])
                self._positions.insert(at, row[5])
                self._log.insert(at, row)
                self._floor = max(self._floor, row[5])
        for record in records:
            self._executions[record[0]] = record
            if record[7]:
                self._by_key.setdefault((record[9], record[7]), record[0])
            if record[6]:
                self._children.setdefault((record[6], record[8]), record[0])

    async def load_events(self, execution_id: str, after_seq: int = 0) -> list[StoredEvent]:
        self._check()
        # seqs are 1..n, so seq s sits at index s - 1.
        rows = self._events.get(execution_id, [])[max(after_seq, 0) :]
        return [codec.decode_event(r) for r in rows]

    async def read_log(self, after: int, limit: int = 1000) -> list[StoredEvent]:
        self._check()
        start = bisect.bisect_right(self._positions, after)
        return [codec.decode_event(row) for row in self._log[start : start + max(limit, 1)]]

    async def log_floor(self) -> int:
        self._check()
        return self._floor

    async def reserve_positions(self, upto: int) -> None:
        self._check()
        self._floor = max(self._floor, upto)

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        self._check()
        row = self._executions.get(execution_id)
        return None if row is None else self._decode_execution(row)

    async def find_execution(
        self, idempotency_key: str, namespace: str = DEFAULT_NAMESPACE
    ) -> ExecutionRecord | None:
        self._check()
        key = (namespace, idempotency_key)
        execution_id = self._by_key.get(key) if idempotency_key else None
        return None if execution_id is None else await self.get_execution(execution_id)

    async def find_child(self, parent_id: str, parent_key: str) -> ExecutionRecord | None:
        self._check()
        execution_id = self._children.get((parent_id, parent_key)) if parent_id else None
        return None if execution_id is None else await self.get_execution(execution_id)

    async def list_executions(
        self,
        statuses: Collection[str] | None = None,
        workflow_name: str = "",
        limit: int = 1000,
        namespace: str | None = None,
        where: ExecutionWhere = EVERY,
    ) -> list[ExecutionRecord]:
        self._check()
        if limit <= 0:
            return []
        wanted = None if statuses is None else set(statuses)
        rows = [
            r
            for r in self._executions.values()
            if (wanted is None or r[3] in wanted)
            and (not workflow_name or r[1] == workflow_name)
            and (namespace is None or r[9] == namespace)
        ]
        rows.sort(key=lambda r: (r[4], r[0]), reverse=True)
        found: list[ExecutionRecord] = []
        for row in rows:
            record = self._decode_execution(row)
            if where.admits(record) and where.finds(record, self._started(row[0])):
                found.append(record)
                if len(found) == limit:
                    break
        return found

    async def put_workflow(self, record: WorkflowRecord) -> None:
        self._check()
        row = codec.encode_workflow(record)
        key = (row[4], row[0], row[1])
        if codec.check_workflow(self._workflows.get(key), row):
            self._workflows[key] = row

    async def get_workflow(
        self, name: str, version: str = "", namespace: str = DEFAULT_NAMESPACE
    ) -> WorkflowRecord | None:
        self._check()
        if version:
            row = self._workflows.get((namespace, name, version))
        else:
            rows = [r for k, r in self._workflows.items() if k[:2] == (namespace, name)]
            row = max(rows, key=lambda r: (r[3], r[1]), default=None)
        return None if row is None else codec.decode_workflow(row)

    async def list_workflows(self, namespace: str | None = None) -> list[WorkflowRecord]:
        self._check()
        rows = sorted(
            (r for r in self._workflows.values() if namespace is None or r[4] == namespace),
            key=lambda r: (r[4], r[0], r[3], r[1]),
        )
        return [codec.decode_workflow(r) for r in rows]

    async def delete_workflow(
        self, name: str, version: str = "", namespace: str = DEFAULT_NAMESPACE
    ) -> int:
        self._check()
        keys = [
            k
            for k in self._workflows
            if k[:2] == (namespace, name) and (not version or k[2] == version)
        ]
        for k in keys:
            del self._workflows[k]
        return len(keys)

    async def put_document(self, record: DocumentRecord) -> None:
        self._check()
        row = codec.encode_document(record)
        self._documents[row[:3]] = row

    async def get_document(
        self, kind: str, name: str, namespace: str = DEFAULT_NAMESPACE
    ) -> DocumentRecord | None:
        self._check()
        row = self._documents.get((kind, namespace, name))
        return None if row is None else codec.decode_document(row)

    async def list_documents(self, kind: str, namespace: str | None = None) -> list[DocumentRecord]:
        self._check()
        rows = sorted(
            r
            for k, r in self._documents.items()
            if k[0] == kind and (namespace is None or k[1] == namespace)
        )
        return [codec.decode_document(r) for r in rows]

    async def delete_document(
        self, kind: str, name: str, namespace: str = DEFAULT_NAMESPACE
    ) -> bool:
        self._check()
        return self._documents.pop((kind, namespace, name), None) is not None

    @property
    def max_batch_ops(self) -> int:
        return 0  # unbounded

    def size_bytes(self) -> int:
        return 0

    def _check(self) -> None:
        if self._closed:
            raise StoreError("store is closed")
        if not self._opened:
            raise StoreError("store is not open: await open() first")

    def _last_seq(self, execution_id: str) -> int:
        return len(self._events.get(execution_id, ()))

    def _started(self, execution_id: str) -> dict[str, Any] | None:
        events = self._events.get(execution_id)
        return codec.started_data(events[0][2], events[0][4]) if events else None

    def _decode_execution(self, row: codec.ExecutionRow) -> ExecutionRecord:
        return codec.decode_execution((*row, self._last_seq(row[0])))
