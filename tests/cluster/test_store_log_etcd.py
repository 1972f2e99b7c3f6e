"""The global event log on a real etcd member: the tests of tests/unit/test_store_log.py
collected again, their store fixtures resolved here against ``EtcdStore`` on ``EtcdKV``.

This is where the KV's ``Range.end``/``Range.reverse`` meet etcd's own range_end and
DESCEND sort (the forward lookup of the entry holding ``after``, ``log_floor``), and
where a batch of ``max_batch_ops`` operations plus its log entry meets etcd's real
``--max-txn-ops`` (128).

Every test gets a fresh prefix, so tests share the module's etcd member but never a key.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coordinator.kv.etcd import EtcdKV
from coordinator.store import Store
from tests.cluster.etcd_server import EtcdCluster

# Collected again here: pytest resolves their fixtures (``store``, ``backend``,
# ``durable``, ``kv_backend``) in this module, i.e. against a real etcd member.
from tests.unit.test_store_log import (
    Backend,
    test_a_reservation_before_any_event,
    test_bad_positions_are_refused_and_nothing_written,
    test_batches_committed_out_of_position_order,
    test_etcd_a_batch_of_max_batch_ops_commits_with_its_log_entry,
    test_etcd_a_turn_split_by_split_batch_commits_in_order,
    test_etcd_forward_lookup_finds_the_entry_holding_after,
    test_etcd_log_layout,
    test_etcd_read_log_reads_many_events_in_bounded_transactions,
    test_etcd_reserve_positions_is_fenced,
    test_events_without_a_position_stay_out_of_the_log,
    test_load_events_returns_the_stored_position,
    test_log_floor_and_positions_survive_a_restart,
    test_log_floor_and_reservations,
    test_read_log_limit_and_paging_walk_the_log_once,
    test_read_log_returns_every_execution_in_position_order,
    test_read_log_starts_after_the_given_position,
)

__all__ = [
    "test_a_reservation_before_any_event",
    "test_bad_positions_are_refused_and_nothing_written",
    "test_batches_committed_out_of_position_order",
    "test_etcd_a_batch_of_max_batch_ops_commits_with_its_log_entry",
    "test_etcd_a_turn_split_by_split_batch_commits_in_order",
    "test_etcd_forward_lookup_finds_the_entry_holding_after",
    "test_etcd_log_layout",
    "test_etcd_read_log_reads_many_events_in_bounded_transactions",
    "test_etcd_reserve_positions_is_fenced",
    "test_events_without_a_position_stay_out_of_the_log",
    "test_load_events_returns_the_stored_position",
    "test_log_floor_and_positions_survive_a_restart",
    "test_log_floor_and_reservations",
    "test_read_log_limit_and_paging_walk_the_log_once",
    "test_read_log_returns_every_execution_in_position_order",
    "test_read_log_starts_after_the_given_position",
]

# Each test is bounded well under the suite's 120 s default: a hang is a failure here.
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def kv_backend(etcd: EtcdCluster) -> AsyncIterator[Backend]:
    prefix = f"/test-store-log/{uuid.uuid4().hex}"
    kv = EtcdKV(etcd.endpoints, timeout=3.0)
    try:
        yield Backend("etcd", Path(), kv, prefix)
    finally:
        await kv.delete(prefix.encode() + b"/", prefix=True)
        await kv.close()


@pytest.fixture
def backend(kv_backend: Backend) -> Backend:
    return kv_backend


@pytest.fixture
def durable(kv_backend: Backend) -> Backend:
    return kv_backend


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    s = await backend.opened()
    try:
        yield s
    finally:
        await s.close()
