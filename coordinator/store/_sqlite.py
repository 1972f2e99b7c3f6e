"""The SQLite store: one file in WAL mode, group commits on a writer thread.

Durability: with ``synchronous="NORMAL"`` (the default) a commit is in the WAL file when
``commit()`` returns, i.e. in the OS page cache, which survives the process being
killed (SIGKILL, OOM) but not the machine losing power. ``synchronous="FULL"`` also
fsyncs the WAL on every commit, which survives power loss at the cost of one fsync per
group transaction.

Namespaces: ``executions.namespace`` is a column (ids stay the primary key, unique
across namespaces); workflows are keyed by (namespace, name, version). A database of
schema version 3 or older is migrated on open, its rows landing in ``default``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Final, TypeVar

from coordinator.domain import DEFAULT_NAMESPACE

from . import _codec as codec
from . import _sqlite_queries as queries
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
from ._lock import FileLock
from ._sqlite_schema import create_schema
from ._writer import Writer

T = TypeVar("T")

BUSY_TIMEOUT_S: Final = 5.0
# Without a limit the WAL file keeps its peak size on disk after a burst.
JOURNAL_SIZE_LIMIT: Final = 64 * 1024 * 1024

_EVENT_COLUMNS: Final = "execution_id, seq, type, time, data, position"
_EXECUTION_COLUMNS: Final = queries.EXECUTION_COLUMNS
_WORKFLOW_COLUMNS: Final = "name, version, definition, created, namespace"

_INSERT_EVENT: Final = f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
# "position > 0" repeats the partial index's WHERE clause (see below).
_READ_LOG: Final = f"""
    SELECT {_EVENT_COLUMNS} FROM events WHERE position > ? AND position > 0
    ORDER BY position LIMIT ?"""
_LOG_FLOOR: Final = """
    SELECT MAX(COALESCE((SELECT MAX(position) FROM events WHERE position > 0), 0),
               COALESCE((SELECT MAX(floor) FROM log_floor), 0))"""
_UPSERT_EXECUTION: Final = f"""
    INSERT INTO executions ({_EXECUTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET
        workflow_name = excluded.workflow_name,
        workflow_version = excluded.workflow_version,
        status = excluded.status,
        created = excluded.created,
        updated = excluded.updated,
        parent_id = excluded.parent_id,
        idempotency_key = excluded.idempotency_key,
        parent_key = excluded.parent_key,
        namespace = excluded.namespace,
        last_seq = excluded.last_seq"""
_SET_LAST_SEQ: Final = "UPDATE executions SET last_seq = ? WHERE id = ?"
# The "!= ''" terms repeat the partial indexes' WHERE clauses: without them SQLite
# cannot tell the index covers the row, and scans the table.
_FIND_BY_KEY: Final = f"""
    SELECT {_EXECUTION_COLUMNS} FROM executions
    WHERE namespace = ? AND idempotency_key = ? AND idempotency_key != ''
    ORDER BY created, id LIMIT 1"""
_FIND_CHILD: Final = f"""
    SELECT {_EXECUTION_COLUMNS} FROM executions
    WHERE parent_id = ? AND parent_key = ? AND parent_id != ''
    ORDER BY created, id LIMIT 1"""
_LAST_SEQ: Final = "SELECT seq FROM events WHERE execution_id = ? ORDER BY seq DESC LIMIT 1"


class SqliteStore(StoreLifecycle):
    """A ``Store`` in one SQLite file (WAL mode); see the module docstring on durability.

    All writes go through one writer thread that commits whatever is queued in one
    transaction (group commit); ``transactions`` counts those transactions. Reads use a
    second connection on a reader thread, so a replay never waits behind a write and a
    write never waits behind a replay (WAL lets readers and the writer run at once);
    reads see every commit that has returned.

    ``synchronous`` is ``"NORMAL"`` (survives the process being killed) or ``"FULL"``
    (also survives power loss, slower).

    One store object at a time may have a database open: ``open()`` takes an exclusive
    lock (``<path>.lock``, see ``_lock``) and raises ``StoreLocked``, naming the holder,
    when another process or store object has it. ``holder`` is how this one describes
    itself there (default: its pid); ``describe()`` changes it while open.
    """

    def __init__(
        self, path: str | os.PathLike[str], synchronous: str = "NORMAL", holder: str = ""
    ) -> None:
        self.path = os.fspath(path)
        if not self.path:
            raise ValueError("SqliteStore needs a database file path")
        self.holder = holder or f"pid {os.getpid()}"
        self._lock = FileLock(self.path + ".lock")
        self.synchronous = synchronous.upper()
        if self.synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        self._state = "new"  # -> "open" -> "closed"
        self._writer: Writer | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._read_conn: sqlite3.Connection | None = None  # used on the reader thread only
        self._closing: asyncio.Task[None] | None = None

    @property
    def transactions(self) -> int:
        """Write transactions committed so far; a group of many commits counts once."""
        return 0 if self._writer is None else self._writer.transactions

    async def open(self) -> None:
        """Open or create the database; ``StoreError`` if it cannot, or if its schema is
        newer than this code. Cancelling it releases whatever was acquired."""
        if self._state == "open":
            return
        if self._state == "closed":
            raise StoreError("store is closed")
        try:
            self._lock.acquire(self.holder)
        except OSError as exc:
            raise StoreError(f"cannot lock {self.path}: {exc.strerror}") from exc
        try:
            self._writer = Writer(self._connect_writer, "agentmesh-store-writer")
            await self._writer.start()
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="agentmesh-store-reader")
            await asyncio.get_running_loop().run_in_executor(self._reader, self._open_reader)
        except BaseException as exc:
            await self._release()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open {self.path}: {exc}") from exc
            raise
        self._state = "open"

    async def close(self) -> None:
        """Write everything already submitted, stop both threads, close both connections.

        Safe to call twice or concurrently; cancelling it does not stop the shutdown.
        """
        if self._closing is None:
            self._state = "closed"
            self._closing = asyncio.create_task(self._release())
        await asyncio.shield(self._closing)

    async def commit(
        self, events: Sequence[StoredEvent], executions: Sequence[ExecutionRecord] = ()
    ) -> None:
        self._check()
        rows = codec.encode_events(events)
        records = codec.encode_executions(executions)
        if rows or records:
            await self._submit(partial(_commit, rows, records))

    async def load_events(self, execution_id: str, after_seq: int = 0) -> list[StoredEvent]:
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE execution_id = ? AND seq > ? ORDER BY seq"
        return await self._read(
            lambda c: [codec.decode_event(r) for r in c.execute(sql, (execution_id, after_seq))]
        )

    async def read_log(self, after: int, limit: int = 1000) -> list[StoredEvent]:
        params = (after, max(limit, 1))
        return await self._read(
            lambda c: [codec.decode_event(r) for r in c.execute(_READ_LOG, params)]
        )

    async def log_floor(self) -> int:
        return int(await self._read(lambda c: c.execute(_LOG_FLOOR).fetchone()[0]))

    async def reserve_positions(self, upto: int) -> None:
        self._check()
        await self._submit(partial(_reserve, upto))

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        sql = f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE id = ?"
        row = await self._read(lambda c: c.execute(sql, (execution_id,)).fetchone())
        return None if row is None else codec.decode_execution(row)

    async def find_execution(
        self, idempotency_key: str, namespace: str = DEFAULT_NAMESPACE
    ) -> ExecutionRecord | None:
        self._check()
        if not idempotency_key:
            return None
        params = (namespace, idempotency_key)
        row = await self._read(lambda c: c.execute(_FIND_BY_KEY, params).fetchone())
        return None if row is None else codec.decode_execution(row)

    async def find_child(self, parent_id: str, parent_key: str) -> ExecutionRecord | None:
        self._check()
        if not parent_id:
            return None
        params = (parent_id, parent_key)
        row = await self._read(lambda c: c.execute(_FIND_CHILD, params).fetchone())
        return None if row is None else codec.decode_execution(row)

    async def list_executions(
        self,
        statuses: Collection[str] | None = None,
        workflow_name: str = "",
        limit: int = 1000,
        namespace: str | None = None,
        where: ExecutionWhere = EVERY,
    ) -> list[ExecutionRecord]:
        self._check()
        if limit <= 0 or (statuses is not None and not statuses):
            return []
        sql, params = queries.list_executions(statuses, workflow_name, limit, namespace, where)
        if not where.text:
            return await self._read(
                lambda c: [codec.decode_execution(r) for r in c.execute(sql, params)]
            )
        return await self._read(partial(queries.search, sql, params, where, limit))

    async def put_workflow(self, record: WorkflowRecord) -> None:
        self._check()
        await self._submit(partial(_put_workflow, codec.encode_workflow(record)))

    async def get_workflow(
        self, name: str, version: str = "", namespace: str = DEFAULT_NAMESPACE
    ) -> WorkflowRecord | None:
        select = f"SELECT {_WORKFLOW_COLUMNS} FROM workflows WHERE namespace = ? AND name = ?"
        params: tuple[str, ...]
        if version:
            sql, params = f"{select} AND version = ?", (namespace, name, version)
        else:
            sql = f"{select} ORDER BY created DESC, version DESC LIMIT 1"
            params = (namespace, name)
        row = await self._read(lambda c: c.execute(sql, params).fetchone())
        return None if row is None else codec.decode_workflow(row)

    async def list_workflows(self, namespace: str | None = None) -> list[WorkflowRecord]:
        where, params = ("", ()) if namespace is None else ("WHERE namespace = ?", (namespace,))
        sql = (
            f"SELECT {_WORKFLOW_COLUMNS} FROM workflows {where} "
            "ORDER BY namespace, name, created, version"
        )
        return await self._read(
            lambda c: [codec.decode_workflow(r) for r in c.execute(sql, params)]
        )

    async def delete_workflow(
        self, name: str, version: str = "", namespace: str = DEFAULT_NAMESPACE
    ) -> int:
        self._check()
        return await self._submit(partial(_delete_workflow, namespace, name, version))

    async def put_document(self, record: DocumentRecord) -> None:
        self._check()
        row = codec.encode_document(record)
        await self._submit(partial(_put_document, row))

    async def get_document(
        self, kind: str, name: str, namespace: str = DEFAULT_NAMESPACE
    ) -> DocumentRecord | None:
        self._check()
        sql = f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE kind = ? AND namespace = ? AND name = ?"
        row = await self._read(lambda c: c.execute(sql, (kind, namespace, name)).fetchone())
        return None if row is None else codec.decode_document(row)

    async def list_documents(self, kind: str, namespace: str | None = None) -> list[DocumentRecord]:
        self._check()
        where, params = "WHERE kind = ?", [kind]
        if namespace is not None:
            where, params = f"{where} AND namespace = ?", [kind, namespace]
        sql = f"SELECT {_DOCUMENT_COLUMNS} FROM documents {where} ORDER BY namespace, name"
        return await self._read(
            lambda c: [codec.decode_document(r) for r in c.execute(sql, params)]
        )

    async def delete_document(
        self, kind: str, name: str, namespace: str = DEFAULT_NAMESPACE
    ) -> bool:
        self._check()
        return await self._submit(partial(_delete_document, kind, namespace, name))

    def describe(self, holder: str) -> None:
        """What the lock file says of this store's holder (e.g. once its address is known)."""
        self.holder = holder
        self._lock.describe(holder)

    @property
    def max_batch_ops(self) -> int:
        return 0  # unbounded

    def size_bytes(self) -> int:
        total = 0
        for path in (self.path, self.path + "-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(path).st_size
        return total

    def _check(self) -> None:
        if self._state != "open":
            raise StoreError(
                "store is closed"
                if self._state == "closed"
                else "store is not open: await open() first"
            )

    async def _submit(self, write: Callable[[sqlite3.Cursor], T]) -> T:
        assert self._writer is not None  # _check() passed: open() created it
        return await self._writer.submit(write)

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        # Reads run on their own thread and connection rather than the writer's: a
        # replay does not queue behind group commits, nor the commits behind it (WAL
        # readers and the writer do not block each other), and the connection never
        # leaves its thread, so it needs no lock. One reader suffices: reads are short
        # index lookups, and rows are decoded on that thread, off the event loop.
        self._check()
        assert self._reader is not None
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reader, self._on_read_conn, query)
        except sqlite3.Error as exc:
            raise StoreError(f"read from {self.path} failed: {exc}") from exc

    def _on_read_conn(self, query: Callable[[sqlite3.Connection], T]) -> T:
        assert self._read_conn is not None
        return query(self._read_conn)

    async def _release(self) -> None:
        try:
            if self._writer is not None:
                await self._writer.stop()
            if self._reader is not None:
                reader, self._reader = self._reader, None
                # Queued behind any read still in flight, which finishes first.
                await asyncio.get_running_loop().run_in_executor(reader, self._close_reader)
                await asyncio.to_thread(reader.shutdown)
        finally:
            self._lock.release()  # last: nobody else may write while we still do

    # -- on the writer thread --

    def _connect_writer(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: the writer issues BEGIN/SAVEPOINT/COMMIT itself.
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot open {self.path}: WAL journal mode unavailable ({mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = OFF")  # no table references another
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            create_schema(conn, self.path)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open {self.path}: {exc}") from exc
            raise
        return conn

    # -- on the reader thread --

    def _open_reader(self) -> None:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        self._read_conn = conn

    def _close_reader(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None


def _last_seq(cur: sqlite3.Cursor, execution_id: str) -> int:
    row = cur.execute(_LAST_SEQ, (execution_id,)).fetchone()
    return 0 if row is None else int(row[0])


def _commit(
    rows: list[codec.EventRow], records: list[codec.ExecutionRow], cur: sqlite3.Cursor
) -> None:
    last = codec.check_seqs(rows, partial(_last_seq, cur))
    cur.executemany(_INSERT_EVENT, rows)
    for record in records:
        seq = last.get(record[0])
        cur.execute(_UPSERT_EXECUTION, (*record, _last_seq(cur, record[0]) if seq is None else seq))
    upserted = {r[0] for r in records}
    cur.executemany(_SET_LAST_SEQ, [(seq, id_) for id_, seq in last.items() if id_ not in upserted])


def _reserve(upto: int, cur: sqlite3.Cursor) -> None:
    found = cur.execute("SELECT MAX(floor) FROM log_floor").fetchone()[0]
    if found is None:
        cur.execute("INSERT INTO log_floor (floor) VALUES (?)", (upto,))
    elif upto > found:
        cur.execute("UPDATE log_floor SET floor = ?", (upto,))


def _put_workflow(row: codec.WorkflowRow, cur: sqlite3.Cursor) -> None:
    sql = (
        f"SELECT {_WORKFLOW_COLUMNS} FROM workflows "
        "WHERE namespace = ? AND name = ? AND version = ?"
    )
    if codec.check_workflow(cur.execute(sql, (row[4], row[0], row[1])).fetchone(), row):
        cur.execute(f"INSERT INTO workflows ({_WORKFLOW_COLUMNS}) VALUES (?, ?, ?, ?, ?)", row)


def _delete_workflow(namespace: str, name: str, version: str, cur: sqlite3.Cursor) -> int:
    sql = "DELETE FROM workflows WHERE namespace = ? AND name = ?"
    if version:
        cur.execute(f"{sql} AND version = ?", (namespace, name, version))
    else:
        cur.execute(sql, (namespace, name))
    return cur.rowcount


_DOCUMENT_COLUMNS = "kind, namespace, name, data, updated"


def _put_document(row: codec.DocumentRow, cur: sqlite3.Cursor) -> None:
    cur.execute(
        f"INSERT OR REPLACE INTO documents ({_DOCUMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?)", row
    )


def _delete_document(kind: str, namespace: str, name: str, cur: sqlite3.Cursor) -> bool:
    cur.execute(
        "DELETE FROM documents WHERE kind = ? AND namespace = ? AND name = ?",
        (kind, namespace, name),
    )
    return cur.rowcount > 0
