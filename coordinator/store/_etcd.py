"""The etcd store: the engine's ``Store`` on a :class:`~coordinator.kv.KV`.

Same semantics and errors as ``MemoryStore`` (validation, seq contiguity, workflow
idempotency all go through ``_codec``), with every write an etcd transaction that also
carries the leader's fence, so a deposed coordinator's write never lands.

Layout under ``prefix`` (ids, names, versions, keys and namespaces are percent-encoded,
``/`` included, so that ``events/a/`` can never match the events of an execution called
``a/b``)::

    <prefix>/events/<execution id>/<seq, 12 digits>  {"type", "time", "data"}
    <prefix>/heads/<execution id>                    last seq, as decimal text
    <prefix>/executions/<execution id>               the index row, with its namespace
                                                     (without last_seq)
    <prefix>/ns/<ns>/workflows/<name>/<version>      {"definition", "created"}
    <prefix>/ns/<ns>/idempotency/<key>               the execution of namespace <ns>
                                                     started with that key
    <prefix>/children/<parent id>/<parent key>       the child started under that key
    <prefix>/log/<first position>, <prefix>/log-floor  the global log (``_etcd_log``)
    <prefix>/docs/<kind>/<ns>/<name>                 documents (``_etcd_docs``)

Execution ids are unique across namespaces, so their keys carry none (an index row
without ``namespace`` reads as ``default``); what is per namespace (workflows,
idempotency keys) lives under ``ns/<ns>/``, a key family of its own because
``workflows/<ns>/<name>/<version>`` could not be told from the old layout.

The layout before namespaces kept workflows under ``<prefix>/workflows/<name>/<version>``
and idempotency keys under ``<prefix>/idempotency/<key>``. ``open()`` moves any such key
into namespace ``default``: a one-time migration, chosen over a read fallback so that
every read and write sees one layout. It reads a batch of old keys (at most
``(max_txn_ops - 1) // 2``, so that the compares fit ``max_txn_ops`` too, and about
``max_txn_bytes``), then in one transaction, fenced like every write and guarded on each
old and new key's ``mod_revision``, puts each new key unless it already exists (a key
the new layout holds wins) and deletes the old one; repeated until no old key is left.
Each key moves atomically, so an interrupted migration (``Fenced`` or
``StoreUnavailable`` out of ``open()``) loses nothing and the next ``open()`` carries
on. Only the leader migrates, since only it passes the fence. Once done, ``open()``
costs one read. (An older coordinator elected meanwhile, in a mixed-version upgrade,
sees none of the moved keys; what it writes in the old layout the next ``open()`` moves.)

``heads/<id>`` is the execution's last seq and its concurrency guard. It is a key of its
own, not a field of ``executions/<id>``, because the contract allows events before (or
without) an index row and reads ``last_seq`` back from whatever was appended. Every
commit reads the heads it appends to, checks contiguity, and writes only if each head's
``mod_revision`` is still what it read (a missing key compares as 0): two writers racing
on one execution cannot both append seq n. Index rows are last-writer-wins, as in the
other stores; the fence is what keeps a second writer out.

There is no status index: ``list_executions`` ranges ``executions/`` and filters in
Python. A status index would cost a read of the old row and a delete plus a put on every
status change, on the hot path, for a query the engine makes on leadership gain and the
CLI makes on demand. Revisit when executions are counted in the hundreds of thousands.

Outages: ``commit`` rides out a short one.  When reading the heads or the transaction
raises ``KVUnavailable``, the commit backs off (0.05 s doubling to 1 s) and tries again,
for up to ``unavailable_timeout`` seconds from the first failure, then raises
``StoreUnavailable``.  Before each retry it asks for the fence again, so a leader that
lost its session meanwhile gets ``Fenced`` instead of retrying on.  A transaction
that raised ``KVUnavailable`` may have been applied: the retry re-reads the heads, and if
every execution of the batch is at exactly the last seq this batch writes, with the
event at that seq holding this batch's value, written in one revision, the batch landed
(the fence makes us the only writer) and the commit succeeds without writing it again.
Otherwise the retry is an ordinary attempt (contiguity check, head guards), so a batch
is never appended twice.  ``available`` turns False once calls have been failing with
``KVUnavailable`` for ``unavailable_grace`` seconds (default 2) with no success between,
and True at the next success: losing one etcd member fails the request in flight on it,
and the retry on the next member succeeds well within the grace, so the coordinator does
not refuse requests (or report NOT_SERVING) for a blip its commits ride out.  The other
operations (reads, workflows) raise ``StoreUnavailable``
at once: they are idempotent or read-only, and their callers decide.

Errors::

    StoreError                  bad input, batch too big, other KV errors
    ├── ConflictError           seq not last_seq + 1; workflow redefined
    └── StoreUnavailable        the KV raised KVUnavailable (no quorum, timeout) - for a
                                commit, for longer than ``unavailable_timeout``: retry;
                                a write that raised it may or may not have been applied
    Fenced                      (an ElectionError) the fence compare failed (or the fence
                                callable refused): we are no longer the leader

(all from ``coordinator.errors``, where the whole tree is drawn)

A batch that raised ``StoreError`` (any kind but ``StoreUnavailable``) wrote nothing in
that call's last attempt; after an in-doubt attempt (``KVUnavailable`` on the
transaction) a ``Fenced`` cannot say whether that attempt landed - irrelevant to
the caller, which steps down, and the next leader reads whatever is stored.

One piece, though long: the commit protocol (heads, guards, fence, in-doubt
resolution, outage retries) is one algorithm over one key layout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from time import monotonic
from typing import Any, TypeVar
from urllib.parse import unquote

from coordinator.domain import DEFAULT_NAMESPACE
from coordinator.kv import (
    KV,
    Compare,
    Delete,
    KeyValue,
    KVError,
    KVUnavailable,
    Op,
    Put,
    Range,
    TxnResult,
    compare_holds,
)

from . import _codec as codec
from . import _etcd_docs as etcd_docs
from . import _etcd_log as etcd_log
from ._api import (
    EVERY,
    DocumentRecord,
    ExecutionRecord,
    ExecutionWhere,
    StoredEvent,
    StoreLifecycle,
    WorkflowRecord,
)
from ._errors import ElectionError, Fenced, StoreError, StoreUnavailable

__all__ = ["EtcdStore"]

T = TypeVar("T")

FENCED_MESSAGE = "write refused: this coordinator is no longer the leader (fencing)"

# A commit re-reads and retries when a head it read moved before its transaction. The
# re-read then nearly always finds a real ConflictError; the bound is only there so a
# pathological stream of racing writers cannot spin a commit forever.
_COMMIT_ATTEMPTS = 5

# Backoff between commit attempts while etcd is unavailable (seconds).
_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 1.0


def _seq_key(seq: int) -> str:
    # Zero-padded so key order (etcd's range order) is seq order.
    return f"{seq:012d}"


# The key families of the layout before namespaces that ``open()`` moves (see above).
_LEGACY_FAMILIES = ("workflows", "idempotency")


class EtcdStore(StoreLifecycle):
    """A ``Store`` whose state lives in etcd, under ``prefix``.

    ``commit`` retries through an etcd outage of up to ``unavailable_timeout`` seconds
    (then ``StoreUnavailable``) and resolves a transaction that may have been applied
    by re-reading the heads, never appending a batch twice (see the module docstring);
    ``available`` is False while etcd has been unreachable for ``unavailable_grace`` s.

    ``fence`` returns the compare every write must carry (``Election.fence``), or None
    to write unfenced (tests, a single coordinator). If it raises ``ElectionError`` (we
    are not campaigning) the write is refused with ``Fenced`` without reaching etcd.
    ``on_fenced`` is called whenever etcd itself refuses the fence: whichever call hit
    it (an engine turn, a workflow definition), the owner learns it was deposed.

    ``commit`` is one etcd transaction. A batch that needs more than ``max_txn_ops``
    operations (etcd's ``--max-txn-ops``, 128 by default) or more than ``max_txn_bytes``
    (etcd's ``--max-request-bytes`` is 1.5 MiB by default) is refused with
    ``StoreError`` and nothing is written: splitting it would silently break the
    contract that a batch is atomic and that a conflicting batch writes nothing. The
    caller splits at turn boundaries, where seq contiguity makes each part safe. One
    event (or index row, or workflow) over ``max_value_bytes`` is refused likewise.

    ``close()`` waits for commits in flight (during an outage, until they land or give
    up after ``unavailable_timeout``) but does not close ``kv``: the caller owns the
    client (the election shares it). ``open()`` migrates keys of the layout before
    namespaces (see the module docstring), fenced, so it raises ``Fenced`` or
    ``StoreUnavailable`` like a write; once nothing is left to move it is one read.
    """

    def __init__(
        self,
        kv: KV,
        prefix: str = "/agentmesh",
        fence: Callable[[], Compare | None] | None = None,
        max_txn_ops: int = 128,
        max_value_bytes: int = 1_000_000,
        *,
        max_txn_bytes: int = 1_500_000,
        unavailable_timeout: float = 30.0,
        unavailable_grace: float = 2.0,
        on_fenced: Callable[[], None] | None = None,
    ) -> None:
        if max_txn_ops < 2:
            raise ValueError("max_txn_ops must allow at least one event and its head")
        if unavailable_timeout < 0:
            raise ValueError("unavailable_timeout must not be negative")
        self.kv = kv
        self.prefix = prefix.rstrip("/")
        self.max_txn_ops = max_txn_ops
        self.max_value_bytes = max_value_bytes
        self.max_txn_bytes = max_txn_bytes
        self.unavailable_timeout = unavailable_timeout
        self.unavailable_grace = unavailable_grace
        self._fence = fence
        self._on_fenced = on_fenced
        # When calls started failing with KVUnavailable (monotonic), None while they succeed.
        self._failing_since: float | None = None
        self._root = self.prefix + "/"
        self._opened = False
        self._closed = False
        # Commits run as tasks the caller's cancellation cannot reach (see commit).
        self._inflight: set[asyncio.Task[None]] = set()
        self._tail: asyncio.Task[None] | None = None  # the last batch submitted

    @property
    def available(self) -> bool:
        """False once calls have failed as unavailable for ``unavailable_grace`` seconds
        with no success between; True again from the next call that succeeds."""
        since = self._failing_since
        return since is None or monotonic() - since < self.unavailable_grace

    @property
    def max_batch_ops(self) -> int:
        """The most etcd operations one ``commit`` may take (``max_txn_ops`` less the
        log entry): one per event, one per distinct execution index row, one per
        distinct execution head."""
        return self.max_txn_ops - 1

    async def open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")
        if not self._opened:
            await self._migrate_layout()
        self._opened = True

    async def _migrate_layout(self) -> None:
        """Move the workflows and idempotency keys of the layout before namespaces into
        namespace ``default``, a bounded batch per transaction (see the module docstring)."""
        # Two compares per key plus the fence; ops: at most a put and a delete per key.
        batch = max(1, (self.max_txn_ops - 1) // 2)
        families = [Range(self._key(f, ""), True, batch) for f in _LEGACY_FAMILIES]
        raced = 0
        while True:
            result = await self._call(self.kv.txn([], families, []))
            old: list[KeyValue] = []
            size = 0
            for kv in (kv for found in result.ranges for kv in found):
                size += 2 * len(kv.key) + len(kv.value)  # about: the new key is longer
                if old and (len(old) == batch or size > self.max_txn_bytes):
                    break
                old.append(kv)
            if not old:
                return
            new_keys = [self._migrated_key(kv.key) for kv in old]
            found = await self._call(self.kv.txn([], [Range(k) for k in new_keys], []))
            guards: list[Compare] = []
            ops: list[Op] = []
            for kv, key, existing in zip(old, new_keys, found.ranges, strict=True):
                guards.append(Compare(kv.key, "mod", "=", kv.mod_revision))
                guards.append(Compare(key, "mod", "=", existing[0].mod_revision if existing else 0))
                if not existing:
                    ops.append(Put(key, kv.value))
                ops.append(Delete(kv.key))
            if not await self._txn(guards, ops):
                raced += 1
                if raced >= _COMMIT_ATTEMPTS:
                    raise StoreError(
                        f"keys under {self.prefix} kept changing while moving them to the "
                        f"namespaced layout ({_COMMIT_ATTEMPTS} attempts); try again"
                    )

    def _migrated_key(self, old: bytes) -> bytes:
        """``<prefix>/<family>/<rest>`` of the old layout as ``<prefix>/ns/default/...``."""
        family, rest = old[len(self._root) :].decode().split("/", 1)
        return self._key("ns", codec.key_part(DEFAULT_NAMESPACE), family, rest)

    async def close(self) -> None:
        self._closed = True
        # "Write everything already submitted": the batches' callers get their outcome.
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        # A caller that was cancelled never sees the outcome; retrieve it here so asyncio
        # does not log "exception was never retrieved" for a refused batch.
        if not task.cancelled():
            task.exception()

    def size_bytes(self) -> int:
        """0: etcd's database size is the cluster's, shared by every prefix and not
        visible through the ``KV`` protocol (it is etcd's maintenance status)."""
        return 0

    # -- keys ------------------------------------------------------------------------

    def _key(self, *parts: str) -> bytes:
        return (self._root + "/".join(parts)).encode()

    def _event_key(self, execution_id: str, seq: int) -> bytes:
        return self._key("events", codec.key_part(execution_id), _seq_key(seq))

    def _head_key(self, execution_id: str) -> bytes:
        return self._key("heads", codec.key_part(execution_id))

    def _execution_key(self, execution_id: str) -> bytes:
        return self._key("executions", codec.key_part(execution_id))

    def _idempotency_key(self, namespace: str, key: str) -> bytes:
        return self._key("ns", codec.key_part(namespace), "idempotency", codec.key_part(key))

    def _child_key(self, parent_id: str, parent_key: str) -> bytes:
        return self._key("children", codec.key_part(parent_id), codec.key_part(parent_key))

    def _workflow_key(self, namespace: str, name: str, version: str) -> bytes:
        return self._key(
            "ns",
            codec.key_part(namespace),
            "workflows",
            codec.key_part(name),
            codec.key_part(version),
        )

    def _versions_prefix(self, namespace: str, name: str) -> bytes:
        """The prefix of every version of one workflow."""
        return self._key("ns", codec.key_part(namespace), "workflows", codec.key_part(name), "")

    # -- writes ----------------------------------------------------------------------

    async def commit(
        self, events: Sequence[StoredEvent], executions: Sequence[ExecutionRecord] = ()
    ) -> None:
        self._check()
        # Validate and encode before the task starts, so bad input fails synchronously
        # with nothing submitted, exactly as in the other stores.
        rows = codec.encode_events(events)
        records = codec.encode_executions(executions)
        puts = self._encode(rows, records)
        # Cancelling the caller must not withdraw the batch (the Store contract): the
        # transaction runs in its own task, and close() waits for it.
        # Batches are applied in call order, as in the other stores: each waits for the
        # one before it (whatever its outcome), so pipelined callers cannot race on a
        # head and see a spurious seq gap.
        task = asyncio.ensure_future(self._commit_after(self._tail, rows, puts))
        self._tail = task
        self._inflight.add(task)
        task.add_done_callback(self._done)
        await asyncio.shield(task)

    async def _commit_after(
        self,
        previous: asyncio.Task[None] | None,
        rows: list[codec.EventRow],
        puts: list[Put],
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        await self._commit(rows, puts)

    def _encode(self, rows: list[codec.EventRow], records: list[codec.ExecutionRow]) -> list[Put]:
        """The puts of a batch, minus the heads (they depend on what is stored)."""
        puts: list[Put] = []
        for event in rows:
            execution_id, seq = event[0], event[1]
            value = etcd_log.event_value(event)
            if len(value) > self.max_value_bytes:
                raise StoreError(
                    f"event {execution_id!r} seq {seq}: stored value is {len(value)} bytes, "
                    f"over the etcd store's {self.max_value_bytes} byte limit per value "
                    "(etcd refuses requests over 1.5 MiB by default); keep large payloads "
                    "out of events"
                )
            puts.append(Put(self._event_key(execution_id, seq), value))
        # One row per id: etcd refuses a transaction that puts the same key twice, and
        # the last row of the batch is the one the other stores keep.
        latest = {r[0]: r for r in records}
        # (namespace, idempotency key) -> execution id (once per key)
        keys: dict[tuple[str, str], str] = {}
        children: dict[tuple[str, str], str] = {}  # (parent id, parent key) -> child id
        for row in latest.values():
            id_, name, version, status, created, updated, parent_id, key, parent_key, ns = row
            if key:
                keys.setdefault((ns, key), id_)
            if parent_id:
                children.setdefault((parent_id, parent_key), id_)
            value = json.dumps(
                {
                    "workflow_name": name,
                    "workflow_version": version,
                    "status": status,
                    "created": created,
                    "updated": updated,
                    "parent_id": parent_id,
                    "idempotency_key": key,
                    "parent_key": parent_key,
                    "namespace": ns,
                },
                separators=(",", ":"),
            ).encode()
            if len(value) > self.max_value_bytes:
                raise StoreError(
                    f"execution {id_!r}: index row is {len(value)} bytes, over the etcd "
                    f"store's {self.max_value_bytes} byte limit per value"
                )
            puts.append(Put(self._execution_key(id_), value))
        puts += [Put(self._idempotency_key(*k), id_.encode()) for k, id_ in keys.items()]
        puts += [Put(self._child_key(*k), id_.encode()) for k, id_ in children.items()]
        entry = etcd_log.log_put(self, rows)
        if entry is not None:  # last: _landed finds the event puts first, in row order
            puts.append(entry)
        heads = len({r[0] for r in rows})
        if len(puts) + heads > self.max_txn_ops:
            raise StoreError(
                f"batch needs {len(puts) + heads} etcd operations ({len(rows)} events, "
                f"{heads} heads, {len(latest)} index rows), over the limit of "
                f"{self.max_txn_ops} per transaction; nothing was written: commit it in "
                "smaller batches"
            )
        size = sum(len(p.key) + len(p.value) for p in puts)
        if size > self.max_txn_bytes:
            raise StoreError(
                f"batch is {size} bytes, over the etcd store's {self.max_txn_bytes} byte "
                "limit per transaction; nothing was written: commit it in smaller batches"
            )
        return puts

    async def _commit(self, rows: list[codec.EventRow], puts: list[Put]) -> None:
        ids = list(dict.fromkeys(r[0] for r in rows))
        loop = asyncio.get_running_loop()
        deadline: float | None = None  # set by the first KVUnavailable
        backoff = _BACKOFF_FIRST
        in_doubt = False  # a transaction of this batch raised KVUnavailable
        raced = 0
        while True:
            try:
                heads = await self._read_heads(ids)
                if in_doubt and await self._landed(rows, puts, heads):
                    return
                stored = {i: 0 if kv is None else int(kv.value) for i, kv in heads.items()}
                new_last = codec.check_seqs(rows, stored.__getitem__)
                # mod_revision unchanged since the read (0 = still absent): nobody
                # appended to these executions in between.
                guards = [
                    Compare(self._head_key(i), "mod", "=", 0 if kv is None else kv.mod_revision)
                    for i, kv in heads.items()
                ]
                guards += etcd_log.guards(self, puts)
                ops: list[Op] = [*puts]
                ops += [Put(self._head_key(i), str(n).encode()) for i, n in new_last.items()]
                try:
                    if await self._txn(guards, ops):
                        return
                except StoreUnavailable:
                    in_doubt = True
                    raise
                raced += 1
                if raced >= _COMMIT_ATTEMPTS:
                    raise StoreError(
                        f"executions {ids!r} kept changing under this commit "
                        f"({_COMMIT_ATTEMPTS} attempts); nothing of the batch was written"
                    )
            except StoreUnavailable as exc:
                now = loop.time()
                if deadline is None:
                    deadline = now + self.unavailable_timeout
                if now >= deadline:
                    outcome = (
                        "the batch may or may not have been applied"
                        if in_doubt
                        else "nothing of the batch was written"
                    )
                    raise StoreUnavailable(
                        f"etcd is unavailable ({exc.__cause__}), still after "
                        f"{self.unavailable_timeout:g} s of retries; {outcome}"
                    ) from exc.__cause__
                await asyncio.sleep(min(backoff, deadline - now))
                backoff = min(2 * backoff, _BACKOFF_MAX)
                # Deposed (or the session was lost) while we waited: stop here.
                self._current_fence()

    async def _landed(
        self, rows: list[codec.EventRow], puts: list[Put], heads: dict[str, KeyValue | None]
    ) -> bool:
        """Whether an in-doubt transaction of this batch was applied: every head at the
        last seq the batch writes for it, the event there holding the batch's value, all
        written in one revision (one transaction)."""
        if not rows:
            return False  # index rows only: writing them again is harmless
        last: dict[str, int] = {}
        for id_, seq, *_ in rows:
            last[id_] = max(seq, last.get(id_, 0))
        revisions = set()
        for id_, seq in last.items():
            head = heads[id_]
            if head is None or int(head.value) != seq:
                return False
            revisions.add(head.mod_revision)
        if len(revisions) != 1:
            return False
        # The event puts come first in ``puts``, in row order (see _encode).
        values = {p.key: p.value for p in puts[: len(rows)]}
        keys = [self._event_key(id_, seq) for id_, seq in last.items()]
        found: list[KeyValue | None] = []
        for start in range(0, len(keys), self.max_txn_ops):
            chunk = keys[start : start + self.max_txn_ops]
            result = await self._call(self.kv.txn([], [Range(k) for k in chunk], []))
            found += [r[0] if r else None for r in result.ranges]
        return all(
            kv is not None and kv.value == values[key] and kv.mod_revision in revisions
            for key, kv in zip(keys, found, strict=True)
        )

    async def _read_heads(self, ids: list[str]) -> dict[str, KeyValue | None]:
        if not ids:
            return {}
        # One transaction of ranges: a consistent snapshot, one round trip. Chunked only
        # to stay under the ops limit; the head guards make a torn read harmless.
        heads: dict[str, KeyValue | None] = {}
        for start in range(0, len(ids), self.max_txn_ops):
            chunk = ids[start : start + self.max_txn_ops]
            result = await self._call(
                self.kv.txn([], [Range(self._head_key(i)) for i in chunk], [])
            )
            for i, found in zip(chunk, result.ranges, strict=True):
                heads[i] = found[0] if found else None
        return heads

    async def _txn(self, guards: list[Compare], ops: Sequence[Op]) -> bool:
        """Run ``ops`` fenced and guarded. False when a guard failed (nothing written);
        ``Fenced`` when the fence did."""
        fence = self._current_fence()
        compares = guards if fence is None else [fence, *guards]
        # On failure, read the fence key back to tell "deposed" from "raced".
        failure: list[Op] = [] if fence is None else [Range(fence.key)]
        result: TxnResult = await self._call(self.kv.txn(compares, ops, failure))
        if result.succeeded:
            return True
        if fence is not None:
            found = result.ranges[0] if result.ranges else []
            if not compare_holds(fence, found[0] if found else None):
                raise self._fenced()
        return False

    def _fenced(self) -> Fenced:
        """etcd refused our fence: tell the owner (it must step down) and say so."""
        if self._on_fenced is not None:
            self._on_fenced()
        return Fenced(FENCED_MESSAGE)

    def _current_fence(self) -> Compare | None:
        if self._fence is None:
            return None
        try:
            return self._fence()
        except ElectionError as exc:
            # Not campaigning (resigned, or the election noticed it was deposed).
            raise Fenced(FENCED_MESSAGE) from exc

    async def put_workflow(self, record: WorkflowRecord) -> None:
        self._check()
        row = codec.encode_workflow(record)
        what = codec.describe_workflow(row[0], row[1], row[4])
        key = self._workflow_key(row[4], row[0], row[1])
        # The definition is already JSON text: splice it in, as for events.
        encoded = f'{{"created":"{row[3]}","definition":{row[2]}}}'.encode()
        if len(encoded) > self.max_value_bytes:
            raise StoreError(
                f"{what}: stored value is {len(encoded)} bytes, over the etcd store's "
                f"{self.max_value_bytes} byte limit per value"
            )
        for _ in range(_COMMIT_ATTEMPTS):
            kv = await self._call(self.kv.get(key))
            existing = None if kv is None else self._workflow_row(kv)
            if not codec.check_workflow(existing, row):
                return
            # Written only if the version is still as read: two replicas registering
            # different definitions at once cannot both win.
            guard = Compare(key, "mod", "=", 0 if kv is None else kv.mod_revision)
            if await self._txn([guard], [Put(key, encoded)]):
                return
        raise StoreError(f"{what} kept changing; not written")

    async def delete_workflow(
        self, name: str, version: str = "", namespace: str = DEFAULT_NAMESPACE
    ) -> int:
        self._check()
        if version:
            target = Range(self._workflow_key(namespace, name, version))
            delete = Delete(target.key)
        else:
            target = Range(self._versions_prefix(namespace, name), prefix=True)
            delete = Delete(target.key, prefix=True)
        # The range runs before the delete inside the transaction, so it counts exactly
        # the rows this delete removes.
        fence = self._current_fence()
        compares = [] if fence is None else [fence]
        result = await self._call(self.kv.txn(compares, [target, delete], []))
        if not result.succeeded:
            raise self._fenced()
        return len(result.ranges[0])

    # -- reads -----------------------------------------------------------------------

    async def load_events(self, execution_id: str, after_seq: int = 0) -> list[StoredEvent]:
        self._check()
        # The KV protocol ranges whole prefixes only (no start key), so the events up to
        # after_seq are read and dropped; replays read from 0 anyway.
        kvs, _ = await self._call(
            self.kv.range(self._key("events", codec.key_part(execution_id)) + b"/", prefix=True)
        )
        events = []
        for kv in kvs:
            seq = int(kv.key.rsplit(b"/", 1)[1])
            if seq > after_seq:
                events.append(etcd_log.decode_event(execution_id, seq, kv.value))
        return events

    async def read_log(self, after: int, limit: int = 1000) -> list[StoredEvent]:
        self._check()
        return await etcd_log.read_log(self, after, limit)

    async def log_floor(self) -> int:
        self._check()
        return await etcd_log.log_floor(self)

    async def reserve_positions(self, upto: int) -> None:
        self._check()
        await etcd_log.reserve(self, upto)

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        self._check()
        result = await self._call(
            self.kv.txn(
                [],
                [Range(self._execution_key(execution_id)), Range(self._head_key(execution_id))],
                [],
            )
        )
        rows, heads = result.ranges
        if not rows:
            return None
        return self._execution(execution_id, rows[0], int(heads[0].value) if heads else 0)

    async def find_execution(
        self, idempotency_key: str, namespace: str = DEFAULT_NAMESPACE
    ) -> ExecutionRecord | None:
        self._check()
        if not idempotency_key:
            return None
        found = await self._call(self.kv.get(self._idempotency_key(namespace, idempotency_key)))
        return None if found is None else await self.get_execution(found.value.decode())

    async def find_child(self, parent_id: str, parent_key: str) -> ExecutionRecord | None:
        self._check()
        if not parent_id:
            return None
        found = await self._call(self.kv.get(self._child_key(parent_id, parent_key)))
        return None if found is None else await self.get_execution(found.value.decode())

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
        # Rows and heads from one snapshot, so each last_seq matches its row.
        result = await self._call(
            self.kv.txn(
                [],
                [Range(self._key("executions", ""), True), Range(self._key("heads", ""), True)],
                [],
            )
        )
        rows, heads = result.ranges
        last = {unquote(kv.key.rsplit(b"/", 1)[1].decode()): int(kv.value) for kv in heads}
        records = []
        for kv in rows:
            id_ = unquote(kv.key.rsplit(b"/", 1)[1].decode())
            record = self._execution(id_, kv, last.get(id_, 0))
            if (
                (wanted is None or record.status in wanted)
                and (not workflow_name or record.workflow_name == workflow_name)
                and (namespace is None or record.namespace == namespace)
                and where.admits(record)
            ):
                records.append(record)
        records.sort(key=lambda r: (r.created, r.id), reverse=True)
        if not where.text:
            return records[:limit]
        return await self._search(records, where, limit)

    async def _search(
        self, records: list[ExecutionRecord], where: ExecutionWhere, limit: int
    ) -> list[ExecutionRecord]:
        """The first ``limit`` of ``records`` whose id or input holds ``where.text``:
        first events are read a transaction's worth at a time, in order, until enough
        have matched."""
        found: list[ExecutionRecord] = []
        step = max(self.max_txn_ops, 1)
        for at in range(0, len(records), step):
            chunk = records[at : at + step]
            result = await self._call(
                self.kv.txn([], [Range(self._event_key(r.id, 1)) for r in chunk], [])
            )
            for record, first in zip(chunk, result.ranges, strict=True):
                started = None
                if first:
                    event = etcd_log.decode_event(record.id, 1, first[0].value)
                    if event.type in (codec.STARTED_TYPE, codec.QUEUED_TYPE):
                        started = event.data
                if where.finds(record, started):
                    found.append(record)
                    if len(found) == limit:
                        return found
        return found

    async def get_workflow(
        self, name: str, version: str = "", namespace: str = DEFAULT_NAMESPACE
    ) -> WorkflowRecord | None:
        self._check()
        if version:
            kv = await self._call(self.kv.get(self._workflow_key(namespace, name, version)))
            return None if kv is None else codec.decode_workflow(self._workflow_row(kv))
        kvs, _ = await self._call(
            self.kv.range(self._versions_prefix(namespace, name), prefix=True)
        )
        rows = [self._workflow_row(kv) for kv in kvs]
        # Times are fixed-width UTC text, so text order is time order (as in _codec).
        row = max(rows, key=lambda r: (r[3], r[1]), default=None)
        return None if row is None else codec.decode_workflow(row)

    async def list_workflows(self, namespace: str | None = None) -> list[WorkflowRecord]:
        self._check()
        if namespace is not None:
            kvs, _ = await self._call(
                self.kv.range(
                    self._key("ns", codec.key_part(namespace), "workflows", ""), prefix=True
                )
            )
        else:
            # Every namespace: ns/ holds the idempotency keys too (the KV protocol ranges
            # whole prefixes only), skipped here. Rare: the engine lists one namespace.
            kvs, _ = await self._call(self.kv.range(self._key("ns", ""), prefix=True))
            start = len(self._key("ns", ""))
            kvs = [kv for kv in kvs if kv.key[start:].split(b"/", 2)[1] == b"workflows"]
        rows = sorted(
            (self._workflow_row(kv) for kv in kvs), key=lambda r: (r[4], r[0], r[3], r[1])
        )
        return [codec.decode_workflow(r) for r in rows]

    # -- documents (``_etcd_docs``) ---------------------------------------------------

    async def put_document(self, record: DocumentRecord) -> None:
        self._check()
        await etcd_docs.put(self, record)

    async def get_document(
        self, kind: str, name: str, namespace: str = DEFAULT_NAMESPACE
    ) -> DocumentRecord | None:
        self._check()
        return await etcd_docs.get(self, kind, name, namespace)

    async def list_documents(self, kind: str, namespace: str | None = None) -> list[DocumentRecord]:
        self._check()
        return await etcd_docs.list_(self, kind, namespace)

    async def delete_document(
        self, kind: str, name: str, namespace: str = DEFAULT_NAMESPACE
    ) -> bool:
        self._check()
        return await etcd_docs.delete(self, kind, name, namespace)

    # -- helpers ---------------------------------------------------------------------

    def _check(self) -> None:
        if self._closed:
            raise StoreError("store is closed")
        if not self._opened:
            raise StoreError("store is not open: await open() first")

    async def _call(self, request: Awaitable[T]) -> T:
        try:
            result = await request
        except KVUnavailable as exc:
            if self._failing_since is None:
                self._failing_since = monotonic()
            raise StoreUnavailable(
                f"etcd is unavailable ({exc}); a write may or may not have been applied"
            ) from exc
        except KVError as exc:
            raise StoreError(f"etcd refused the request: {exc}") from exc
        self._failing_since = None
        return result

    def _execution(self, id_: str, kv: KeyValue, last_seq: int) -> ExecutionRecord:
        obj: dict[str, Any] = json.loads(kv.value)
        return codec.decode_execution(
            (
                id_,
                obj["workflow_name"],
                obj["workflow_version"],
                obj["status"],
                obj["created"],
                obj["updated"],
                obj["parent_id"],
                obj.get("idempotency_key", ""),
                obj.get("parent_key", ""),
                obj.get("namespace", DEFAULT_NAMESPACE),
                last_seq,
            )
        )

    def _workflow_row(self, kv: KeyValue) -> codec.WorkflowRow:
        # .../ns/<ns>/workflows/<name>/<version>: the parts hold no "/" (percent-encoded).
        _, namespace, _, name, version = kv.key.decode().rsplit("/", 4)
        obj: dict[str, Any] = json.loads(kv.value)
        definition = json.dumps(obj["definition"], separators=(",", ":"))
        return (unquote(name), unquote(version), definition, obj["created"], unquote(namespace))
