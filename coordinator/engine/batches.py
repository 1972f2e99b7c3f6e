"""One engine turn's history, cut into store batches the store can take."""

from __future__ import annotations

from coordinator.store import ExecutionRecord, StoredEvent


def split_batch(
    events: list[StoredEvent], records: dict[str, ExecutionRecord], limit: int
) -> list[tuple[list[StoredEvent], list[ExecutionRecord]]]:
    """Split one turn's history into ordered store batches of at most ``limit``
    operations: an event, an execution's head and its index row count one each, and
    an index row with an idempotency key or a parent one more each (the store indexes
    them).

    Parts break between runs of one execution's events where possible, and an
    execution's index row travels with its last event, so a crash between parts
    never leaves an index row ahead of the history it summarises.
    """
    if limit < 4:
        raise ValueError("a store batch must fit an event, its head and a keyed index row")
    last = {e.execution_id: i for i, e in enumerate(events)}
    parts: list[tuple[list[StoredEvent], list[ExecutionRecord]]] = []
    cur: list[StoredEvent] = []
    cur_records: list[ExecutionRecord] = []
    heads: set[str] = set()
    ops = 0

    def flush() -> None:
        nonlocal cur, cur_records, heads, ops
        if cur or cur_records:
            parts.append((cur, cur_records))
        cur, cur_records, heads, ops = [], [], set(), 0

    def record_ops(exec_id: str) -> int:
        record = records[exec_id]
        return 1 + bool(record.idempotency_key) + bool(record.parent_id)

    runs: list[list[int]] = []
    for i, e in enumerate(events):
        if runs and events[runs[-1][-1]].execution_id == e.execution_id:
            runs[-1].append(i)
        else:
            runs.append([i])
    for whole in runs:
        run = whole
        exec_id = events[run[0]].execution_id
        own = last[exec_id] == run[-1] and exec_id in records
        with_record = record_ops(exec_id) if own else 0
        if cur and ops + len(run) + (exec_id not in heads) + with_record > limit:
            flush()
        # A run that alone exceeds the limit is cut into pieces, the record last.
        while len(run) + 1 + with_record > limit:
            cut = min(limit - 1, len(run) - 1)  # leave the record an event to go with
            piece, run = run[:cut], run[cut:]
            if cur:
                flush()
            cur = [events[i] for i in piece]
            flush()
        cur.extend(events[i] for i in run)
        ops += len(run) + (exec_id not in heads) + with_record
        heads.add(exec_id)
        if own:
            cur_records.append(records[exec_id])
    for k, r in records.items():
        if k not in last:  # an index row without events this turn
            if ops + record_ops(k) > limit:
                flush()
            cur_records.append(r)
            ops += record_ops(k)
    flush()
    return parts
