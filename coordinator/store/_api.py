"""The store's value types and the interface the workflow engine is written against."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from coordinator.domain import DEFAULT_NAMESPACE


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One entry of an execution's append-only history.

    ``seq`` is assigned by the engine: 1, 2, 3 ... per execution, with no gaps.
    ``time`` is timezone-aware (read back in UTC); ``data`` must be JSON-serializable.
    ``position`` is the event's place in the coordinator's global log (the event
    stream's order, ``coordinator.monitor``): assigned by the engine, increasing in the
    order batches are committed, not contiguous; 0 keeps the event out of the log.
    """

    execution_id: str
    seq: int
    type: str
    time: datetime
    data: dict[str, Any]
    position: int = 0


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """An execution's index row, kept up to date by the engine.

    ``status`` is one of ``queued``, ``running``, ``paused``, ``completed``, ``failed``,
    ``cancelled``. ``last_seq`` belongs to the store: whatever the engine passes is
    ignored and the highest appended seq is read back. ``namespace`` is the tenant the
    execution runs in: ids are unique across namespaces, idempotency keys per namespace.
    """

    id: str
    workflow_name: str
    workflow_version: str
    status: str
    created: datetime
    updated: datetime
    parent_id: str = ""
    last_seq: int = 0
    # The key the execution was started with (StartWorkflow's idempotency key), "" if
    # none: stores index it, so a restarted or newly elected coordinator finds it.
    idempotency_key: str = ""
    # A child execution's key in its parent (the step attempt that started it), "" for a
    # top-level one: stores index (parent_id, parent_key), so recovery finds a child that
    # finished while its parent was being recovered without scanning finished executions.
    parent_key: str = ""
    namespace: str = DEFAULT_NAMESPACE


@dataclass(frozen=True, slots=True)
class ExecutionWhere:
    """What ``list_executions`` selects beyond status, workflow and namespace.

    ``parent_id``: only the children of that execution (None: any). ``created_after``
    and ``created_before``: an open time range on ``created`` (None: unbounded).
    ``after``: the (``created``, ``id``) of the last row of the previous page; the
    page starts past it in the listing's order. ``text``: a case-insensitive
    substring of the id or of the execution's input as JSON ("" matches all).
    """

    parent_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    after: tuple[datetime, str] | None = None
    text: str = ""

    def admits(self, record: ExecutionRecord) -> bool:
        """Whether ``record`` passes every bound but ``text`` (which needs the input)."""
        if self.parent_id is not None and record.parent_id != self.parent_id:
            return False
        if self.created_after is not None and record.created <= self.created_after:
            return False
        if self.created_before is not None and record.created >= self.created_before:
            return False
        return self.after is None or (record.created, record.id) < self.after

    def finds(self, record: ExecutionRecord, started: dict[str, Any] | None) -> bool:
        """Whether ``text`` is in the id of ``record`` or in its input, the ``input``
        of its ``started`` event's data (None: not known, so only the id counts)."""
        if not self.text:
            return True
        needle = self.text.lower()
        if needle in record.id.lower():
            return True
        if started is None:
            return False
        text = json.dumps(started.get("input"), ensure_ascii=False, separators=(",", ":"))
        return needle in text.lower()


EVERY = ExecutionWhere()


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """A registered workflow version; ``definition`` is the JSON definition as given.

    Workflows are keyed by (``namespace``, ``name``, ``version``): namespaces do not see
    each other's workflows, and may define the same name and version differently.
    """

    name: str
    version: str
    definition: dict[str, Any]
    created: datetime
    namespace: str = DEFAULT_NAMESPACE


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """A named JSON document of one ``kind`` in one namespace: what integrations keep
    (an external service's configuration, a webhook, an outbox delivery). Keyed by
    (``kind``, ``namespace``, ``name``); ``updated`` is when it was last put. Kinds and
    names are the caller's (letters, digits, ``.``, ``_``, ``-``, ``:`` and ``/`` at most;
    the etcd store percent-encodes them)."""

    kind: str
    name: str
    data: dict[str, Any]
    updated: datetime
    namespace: str = DEFAULT_NAMESPACE


class Store(Protocol):
    """The engine's durable store: event histories, the execution index, workflows,
    partitioned by namespace where the records say so (see each method).

    Call ``open()`` before anything else. Every async method raises ``StoreError``
    before ``open()`` and after ``close()``. Values read back are fresh copies: mutating
    them changes nothing stored. Cancelling a read just abandons it; cancelling a write
    does not withdraw it (see ``commit``).
    """

    @property
    def max_batch_ops(self) -> int:
        """Operations one ``commit`` may carry (an event, an execution's head and an
        index row count one each); 0 means unbounded. Bigger batches are refused."""
        ...

    async def open(self) -> None:
        """Make the store usable (create, check or migrate the schema). A no-op when open."""
        ...

    async def close(self) -> None:
        """Write everything already submitted, then release resources. Safe to repeat."""
        ...

    async def commit(
        self, events: Sequence[StoredEvent], executions: Sequence[ExecutionRecord] = ()
    ) -> None:
        """Append ``events`` and upsert ``executions`` in one atomic transaction.

        Each event's seq must be exactly its execution's last seq + 1, counting the
        events before it in the same batch; otherwise ``ConflictError`` and nothing of
        the batch is written. Invalid data (naive times, data that is not JSON or over
        the size limit) raises ``StoreError``, also writing nothing. Once this returns
        the batch is durable. Cancelling the call does not withdraw the batch: it is
        still written, or rejected, as if the caller had waited.
        """
        ...

    async def load_events(self, execution_id: str, after_seq: int = 0) -> list[StoredEvent]:
        """The execution's events with seq > ``after_seq``, in seq order."""
        ...

    async def read_log(self, after: int, limit: int = 1000) -> list[StoredEvent]:
        """The global log: events of every execution with ``position > after``, in
        position order, at most ``limit`` (``limit >= 1``)."""
        ...

    async def log_floor(self) -> int:
        """No position at or below this may be handed out again: the highest
        position stored, or reserved (``reserve_positions``), whichever is higher."""
        ...

    async def reserve_positions(self, upto: int) -> None:
        """Record durably that positions up to ``upto`` may have been handed out
        (to events that were never stored), so ``log_floor`` covers them after a
        restart or a failover. Lower than the current reservation: a no-op. Fenced
        like every write."""
        ...

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        """The index row of ``execution_id``, or None."""
        ...

    async def list_executions(
        self,
        statuses: Collection[str] | None = None,
        workflow_name: str = "",
        limit: int = 1000,
        namespace: str | None = None,
        where: ExecutionWhere = EVERY,
    ) -> list[ExecutionRecord]:
        """Index rows, newest ``created`` first (ties by id, descending), at most ``limit``.

        ``statuses=None`` means any status; an empty collection matches nothing.
        ``workflow_name=""`` means any workflow; ``namespace=None`` any namespace;
        ``where`` narrows further (a parent, a time range, a page, a text search).
        """
        ...

    async def find_execution(
        self, idempotency_key: str, namespace: str = DEFAULT_NAMESPACE
    ) -> ExecutionRecord | None:
        """The execution of ``namespace`` started with ``idempotency_key`` (the earliest
        if several), or None. Keys are per namespace: the same key in two namespaces
        names two executions."""
        ...

    async def find_child(self, parent_id: str, parent_key: str) -> ExecutionRecord | None:
        """The child execution ``parent_id`` started under ``parent_key`` (the earliest
        if several), or None. An index lookup, whatever the number of executions."""
        ...

    async def put_workflow(self, record: WorkflowRecord) -> None:
        """Store a workflow version in ``record.namespace``.

        Storing the same definition again is a no-op (the first ``created`` is kept);
        a different definition under an existing (namespace, name, version) raises
        ``ConflictError``.
        """
        ...

    async def get_workflow(
        self, name: str, version: str = "", namespace: str = DEFAULT_NAMESPACE
    ) -> WorkflowRecord | None:
        """One version of ``namespace``'s workflow, or with ``version=""`` the latest by
        ``created`` (ties: the greater version string). None when there is none."""
        ...

    async def list_workflows(self, namespace: str | None = None) -> list[WorkflowRecord]:
        """Every version of every workflow of ``namespace`` (None: of every namespace),
        by namespace, then name, then created, then version."""
        ...

    async def delete_workflow(
        self, name: str, version: str = "", namespace: str = DEFAULT_NAMESPACE
    ) -> int:
        """Delete one version of ``namespace``'s workflow, or all its versions with
        ``version=""``; returns rows deleted. Other namespaces are untouched."""
        ...

    async def put_document(self, record: DocumentRecord) -> None:
        """Store ``record``, replacing the document of the same (kind, namespace, name).
        Invalid data (not JSON, over the size limit, a naive time) raises ``StoreError``
        and writes nothing. Fenced like every write."""
        ...

    async def get_document(
        self, kind: str, name: str, namespace: str = DEFAULT_NAMESPACE
    ) -> DocumentRecord | None:
        """One document, or None."""
        ...

    async def list_documents(self, kind: str, namespace: str | None = None) -> list[DocumentRecord]:
        """Every document of ``kind`` in ``namespace`` (None: in every namespace), by
        namespace, then name."""
        ...

    async def delete_document(
        self, kind: str, name: str, namespace: str = DEFAULT_NAMESPACE
    ) -> bool:
        """Delete one document; whether there was one. Fenced like every write."""
        ...

    def size_bytes(self) -> int:
        """Bytes the store occupies on disk (database and WAL files); 0 in memory."""
        ...


class StoreLifecycle:
    """``async with store:`` for every implementation: ``open()`` on entry,
    ``close()`` on exit."""

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
