"""MemoryKV specifics (clock, test controls) and the pure helpers around the protocol."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from coordinator import kv as kvpkg
from coordinator.kv import (
    Compacted,
    Compare,
    KVError,
    KVUnavailable,
    LeaseNotFound,
    prefix_end,
)
from coordinator.kv.etcd import _map_error
from coordinator.kv.memory import MemoryKV
from tests.conftest import eventually

pytestmark = pytest.mark.timeout(10)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_exports_are_pinned() -> None:
    assert sorted(kvpkg.__all__) == sorted(
        [
            "KV", "Compare", "Delete", "KeyValue", "Op", "Put", "Range", "TxnResult",
            "WatchEvent", "compare_holds", "prefix_end", "Compacted", "KVError", "KVUnavailable",
            "LeaseNotFound", "MemoryKV",
        ]
    )  # fmt: skip
    assert isinstance(MemoryKV(), kvpkg.KV)


@pytest.mark.parametrize(
    ("prefix", "end"),
    [(b"a/", b"a0"), (b"a\xff", b"b"), (b"\xff\xff", b"\0"), (b"", b"\0")],
)
def test_prefix_end(prefix: bytes, end: bytes) -> None:
    assert prefix_end(prefix) == end


def test_compare_rejects_mismatched_value_type() -> None:
    with pytest.raises(TypeError):
        Compare(b"k", "value", "=", 1)
    with pytest.raises(TypeError):
        Compare(b"k", "create", "=", b"1")


async def test_keepalive_moves_the_deadline_on_the_injected_clock() -> None:
    clock = Clock()
    kv = MemoryKV(clock=clock)
    lease = await kv.grant(10)
    await kv.put(b"k", b"v", lease=lease)
    clock.now = 9.0
    assert await kv.keepalive(lease) == 10
    clock.now = 18.0
    assert kv.expire() == []
    assert await kv.get(b"k") is not None
    clock.now = 19.0
    assert kv.expire() == [lease]
    assert await kv.get(b"k") is None
    with pytest.raises(LeaseNotFound):
        await kv.keepalive(lease)


async def test_expiry_is_one_revision_for_all_the_leases_keys() -> None:
    clock = Clock()
    kv = MemoryKV(clock=clock)
    lease = await kv.grant(1)
    await kv.txn([], [kvpkg.Put(b"a", b"1", lease), kvpkg.Put(b"b", b"2", lease)], [])
    before = kv.revision
    clock.now = 2.0
    kv.expire()
    assert kv.revision == before + 1


async def test_rewriting_a_key_without_lease_detaches_it() -> None:
    clock = Clock()
    kv = MemoryKV(clock=clock)
    lease = await kv.grant(1)
    await kv.put(b"k", b"v", lease=lease)
    await kv.put(b"k", b"w")
    clock.now = 2.0
    kv.expire()
    got = await kv.get(b"k")
    assert got is not None and got.lease == 0


async def test_watch_without_start_revision_sees_only_later_events() -> None:
    kv = MemoryKV()
    await kv.put(b"k", b"old")
    watch = kv.watch(b"k")
    first = asyncio.ensure_future(anext(watch))
    # The watch takes its start revision when it registers: write only after that.
    await eventually(lambda: kv._watchers, timeout=1)
    await kv.put(b"k", b"new")
    async with asyncio.timeout(1):
        ev = await first
    assert ev.kv.value == b"new"
    await watch.aclose()  # type: ignore[attr-defined]


async def test_compact_errors_match_etcd() -> None:
    kv = MemoryKV()
    rev = await kv.put(b"k", b"v")
    with pytest.raises(KVError):
        await kv.compact(rev + 5)
    await kv.compact(rev)
    with pytest.raises(Compacted):
        await kv.compact(rev)


async def test_unavailable_switch() -> None:
    kv = MemoryKV()
    kv.set_unavailable(True)
    with pytest.raises(KVUnavailable):
        await kv.put(b"k", b"v")
    assert (await kv.health())["healthy"] is False
    kv.set_unavailable(False)
    await kv.put(b"k", b"v")


def _rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader", KVUnavailable),
        (grpc.StatusCode.UNAVAILABLE, "etcdserver: request timed out", KVUnavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", KVUnavailable),
        # etcd's own timeout while it has no quorum arrives as UNKNOWN
        (grpc.StatusCode.UNKNOWN, "context deadline exceeded", KVUnavailable),
        (grpc.StatusCode.UNKNOWN, "something else", KVError),
        (grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found", LeaseNotFound),
        (grpc.StatusCode.OUT_OF_RANGE, "mvcc: required revision has been compacted", Compacted),
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            "etcdserver: duplicate key given in txn request",
            KVError,
        ),
        (grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied", KVError),
    ],
)
def test_error_mapping(code: grpc.StatusCode, details: str, expected: type[KVError]) -> None:
    err = _map_error(_rpc_error(code, details))
    assert type(err) is expected
