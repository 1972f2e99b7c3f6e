"""Group commit: one thread owns the SQLite write connection and batches every write.

``submit()`` queues a write (a function of the connection's cursor) with an asyncio
future and waits. The thread takes everything queued at that moment and runs it in ONE
transaction, each write inside its own SAVEPOINT: a write that fails (a seq conflict)
is rolled back to its savepoint and fails alone, the others commit together. Futures
are resolved only after COMMIT returns, so an acknowledged write is durable.

No timer fills a group: the thread writes what is ready, and writes that arrive during
a transaction form the next group. Under load, groups grow by themselves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from ._errors import StoreError

T = TypeVar("T")


@dataclass(slots=True)
class _Write(Generic[T]):
    apply: Callable[[sqlite3.Cursor], T]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]


# (write, result, error): error is None on success.
_Outcome: TypeAlias = tuple[_Write[Any], Any, BaseException | None]


class _Poisoned(Exception):
    """A write failed and SQLite rolled back the whole transaction with it."""

    def __init__(self, index: int, error: StoreError) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


class Writer:
    """The writer thread. ``connect`` runs on that thread and returns its connection."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], name: str) -> None:
        self._connect = connect
        self._name = name
        # None asks the thread to stop once everything queued before it is written.
        self._queue: queue.SimpleQueue[_Write[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.transactions = 0
        """Write transactions committed so far (a group counts once)."""

    async def start(self) -> None:
        """Start the thread and connect; raises what ``connect`` raised."""
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        # A daemon, so a store nobody closed cannot hang interpreter exit; what it had
        # not acknowledged is lost exactly as in a crash.
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=self._name, daemon=True
        )
        self._thread.start()
        try:
            await asyncio.wrap_future(ready)
        except BaseException:
            await self.stop()
            raise

    async def submit(self, apply: Callable[[sqlite3.Cursor], T]) -> T:
        """Run ``apply`` in the next group transaction; its result once committed.

        Cancelling the wait does not withdraw the write.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Write(apply, loop, future))
        return await future

    async def stop(self) -> None:
        """Write everything queued so far, then stop the thread and close the connection."""
        if self._thread is None:
            return
        self._queue.put(None)
        await asyncio.wrap_future(self._stopped)
        self._thread.join()  # it has returned from _run already: this does not block

    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        try:
            try:
                conn = self._connect()
            except BaseException as exc:
                ready.set_exception(exc)
                return
            ready.set_result(None)
            try:
                self._serve(conn)
            finally:
                conn.close()
            # Only a write racing close() from another loop or thread can be here.
            late: list[_Write[Any]] = []
            self._drain(late, None)
            self._settle([(w, None, StoreError("store is closed")) for w in late])
        finally:
            self._stopped.set_result(None)

    def _serve(self, conn: sqlite3.Connection) -> None:
        # One cursor for everything: conn.execute() makes a cursor per statement, which
        # cost about a fifth of a small commit's time here.
        cur = conn.cursor()
        while True:
            writes: list[_Write[Any]] = []
            stop = self._drain(writes, self._queue.get())
            if writes:
                try:
                    outcomes = self._write_group(cur, writes)
                except Exception as exc:  # a bug here must not hang every caller
                    outcomes = [(w, None, _store_error("write failed", exc)) for w in writes]
                self._settle(outcomes)
            if stop:
                return

    def _drain(self, into: list[_Write[Any]], first: _Write[Any] | None) -> bool:
        """Move ``first`` and everything queued now into ``into``; True if asked to stop."""
        stop = first is None
        if first is not None:
            into.append(first)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return stop
            if item is None:
                stop = True
            else:
                into.append(item)

    def _write_group(self, cur: sqlite3.Cursor, writes: list[_Write[Any]]) -> list[_Outcome]:
        failed: list[_Outcome] = []
        pending = list(writes)
        while pending:
            try:
                outcomes = self._transaction(cur, pending)
            except _Poisoned as p:
                # Some errors (disk full, I/O) make SQLite roll back the whole
                # transaction: fail the write that hit it and write the others again.
                failed.append((pending.pop(p.index), None, p.error))
                continue
            except Exception as exc:  # BEGIN or COMMIT failed: nothing was written
                return failed + [
                    (w, None, _store_error("write transaction failed", exc)) for w in pending
                ]
            self.transactions += 1
            return failed + outcomes
        return failed

    @staticmethod
    def _transaction(cur: sqlite3.Cursor, writes: list[_Write[Any]]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        # IMMEDIATE takes the write lock now, so another process holding it is met
        # (and waited for, up to busy_timeout) before any work is done.
        cur.execute("BEGIN IMMEDIATE")
        try:
            for i, w in enumerate(writes):
                cur.execute("SAVEPOINT write")
                try:
                    result = w.apply(cur)
                except Exception as exc:
                    error = (
                        exc if isinstance(exc, StoreError) else _store_error("write failed", exc)
                    )
                    try:
                        cur.execute("ROLLBACK TO write")
                    except sqlite3.Error:
                        raise _Poisoned(i, error) from exc
                    outcomes.append((w, None, error))
                else:
                    outcomes.append((w, result, None))
                cur.execute("RELEASE write")
            cur.execute("COMMIT")
        except BaseException:
            if cur.connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    cur.execute("ROLLBACK")
            raise
        return outcomes

    @staticmethod
    def _settle(outcomes: list[_Outcome]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for o in outcomes:
            by_loop.setdefault(o[0].loop, []).append(o)
        for loop, items in by_loop.items():
            # One wake-up per loop and group, not one per write.
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, items)


def _resolve(outcomes: list[_Outcome]) -> None:
    for w, result, error in outcomes:
        if w.future.done():  # the caller stopped waiting; the write stands regardless
            continue
        if error is None:
            w.future.set_result(result)
        else:
            w.future.set_exception(error)


def _store_error(what: str, exc: BaseException) -> StoreError:
    error = StoreError(f"{what}: {exc}")
    error.__cause__ = exc
    return error
