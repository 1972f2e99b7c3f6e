"""The engine splits a turn into store batches that fit the store's limit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from coordinator.engine.batches import split_batch
from coordinator.store import ExecutionRecord, StoredEvent

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def events(spec: list[tuple[str, int]]) -> list[StoredEvent]:
    """``[("a", 3), ("b", 1), ("a", 2)]``: runs of events per execution, seqs contiguous."""
    seq: dict[str, int] = {}
    out = []
    for exec_id, n in spec:
        for _ in range(n):
            seq[exec_id] = seq.get(exec_id, 0) + 1
            out.append(StoredEvent(exec_id, seq[exec_id], "T", NOW, {}))
    return out


def record(exec_id: str, key: str = "", parent: str = "") -> ExecutionRecord:
    return ExecutionRecord(
        exec_id, "wf", "1", "running", NOW, NOW, parent, idempotency_key=key, parent_key="s.c1"
    )


def ops(part: tuple[list[StoredEvent], list[ExecutionRecord]]) -> int:
    """What the store counts: events, heads, index rows, their idempotency and parent
    index entries."""
    evs, recs = part
    indexed = sum(bool(r.idempotency_key) + bool(r.parent_id) for r in recs)
    return len(evs) + len({e.execution_id for e in evs}) + len(recs) + indexed


@pytest.mark.parametrize("limit", [4, 5, 7, 10, 128])
def test_parts_fit_keep_order_and_lose_nothing(limit: int) -> None:
    evs = events([("a", 3), ("b", 1), ("c", 12), ("a", 2), ("d", 1), ("b", 4)])
    recs = {
        k: record(k, key=f"key-{k}" if k in "ac" else "", parent="p" if k in "bd" else "")
        for k in "abcd"
    }
    parts = split_batch(evs, recs, limit)
    assert all(ops(p) <= limit for p in parts)
    assert [e for p in parts for e in p[0]] == evs  # same events, same order
    assert sorted(r.id for p in parts for r in p[1]) == ["a", "b", "c", "d"]


def test_a_record_travels_with_the_last_event_of_its_execution() -> None:
    evs = events([("a", 2), ("b", 2), ("a", 2)])
    parts = split_batch(evs, {"a": record("a"), "b": record("b")}, 5)
    for evs_part, recs in parts:
        for r in recs:
            last_of_r = max(e.seq for e in evs if e.execution_id == r.id)
            assert any(e.execution_id == r.id and e.seq == last_of_r for e in evs_part)


def test_small_turn_is_one_batch() -> None:
    evs = events([("a", 2), ("b", 3)])
    parts = split_batch(evs, {"a": record("a")}, 128)
    assert parts == [(evs, [record("a")])]


def test_records_without_events_are_kept() -> None:
    recs = {"x": record("x", "k"), "y": record("y", parent="p"), "z": record("z", "k2")}
    parts = split_batch([], recs, 4)
    assert [r.id for p in parts for r in p[1]] == ["x", "y", "z"]
    assert all(ops(p) <= 4 for p in parts)


def test_a_keyed_record_with_one_event_fits_the_smallest_limit() -> None:
    parts = split_batch(events([("a", 1), ("b", 1)]), {"a": record("a", "k")}, 4)
    assert all(ops(p) <= 4 for p in parts)
    assert [e.execution_id for p in parts for e in p[0]] == ["a", "b"]


def test_limit_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="must fit"):
        split_batch(events([("a", 1)]), {}, 3)
