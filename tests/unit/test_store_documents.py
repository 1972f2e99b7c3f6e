"""Documents (``DocumentRecord``: external services, webhooks, deliveries) against every
store: the memory store, SQLite, and the etcd store on the in-memory KV (real etcd in
tests/cluster). Durable stores keep them across a reopen; the etcd store fences them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from coordinator.kv import Compare
from coordinator.store import DocumentRecord, EtcdStore, Fenced, Store, StoreError
from tests.unit.test_store import T0
from tests.unit.test_store_log import Backend


def doc(
    name: str, kind: str = "service", namespace: str = "default", **data: object
) -> DocumentRecord:
    return DocumentRecord(kind, name, {"name": name, **data}, T0, namespace)


@pytest.fixture(params=["memory", "sqlite", "etcd"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = await Backend(request.param, tmp_path / "store.db").opened()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=["sqlite", "etcd"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, tmp_path / "store.db")


async def test_put_get_replace_delete(store: Store) -> None:
    assert await store.get_document("service", "github") is None
    await store.put_document(doc("github", url="https://api.github.com"))
    got = await store.get_document("service", "github")
    assert got == doc("github", url="https://api.github.com")
    later = DocumentRecord("service", "github", {"url": "https://ghe.local"}, T0 + timedelta(1))
    await store.put_document(later)  # replaces
    assert await store.get_document("service", "github") == later
    assert await store.delete_document("service", "github") is True
    assert await store.get_document("service", "github") is None
    assert await store.delete_document("service", "github") is False


async def test_kinds_and_namespaces_keep_documents_apart(store: Store) -> None:
    await store.put_document(doc("b", namespace="team-a"))
    await store.put_document(doc("a", namespace="team-a"))
    await store.put_document(doc("a", namespace="default"))
    await store.put_document(doc("a", kind="webhook", namespace="team-a"))
    assert [(d.namespace, d.name) for d in await store.list_documents("service")] == [
        ("default", "a"),
        ("team-a", "a"),
        ("team-a", "b"),
    ]
    assert [d.name for d in await store.list_documents("service", "team-a")] == ["a", "b"]
    assert [d.kind for d in await store.list_documents("webhook")] == ["webhook"]
    assert await store.list_documents("service", "team-b") == []
    assert await store.delete_document("service", "a", "team-a") is True
    assert await store.get_document("service", "a", "default") is not None
    assert await store.get_document("webhook", "a", "team-a") is not None


async def test_names_that_look_like_paths_stay_one_document(store: Store) -> None:
    """A name with "/" or "%" is one document; a prefix of it is another."""
    for name in ("a/b", "a", "a%2Fb", "x y"):
        await store.put_document(doc(name))
    assert sorted(d.name for d in await store.list_documents("service")) == sorted(
        ["a/b", "a", "a%2Fb", "x y"]
    )
    assert await store.delete_document("service", "a") is True
    got = await store.get_document("service", "a/b")
    assert got is not None and got.data == {"name": "a/b"}


async def test_bad_documents_are_refused_and_write_nothing(store: Store) -> None:
    with pytest.raises(StoreError, match="data is not JSON-serializable"):
        await store.put_document(DocumentRecord("service", "x", {"at": object()}, T0))
    with pytest.raises(StoreError, match="is not timezone-aware"):
        await store.put_document(DocumentRecord("service", "x", {}, datetime(2026, 1, 1)))
    with pytest.raises(StoreError, match="kind and a name"):
        await store.put_document(DocumentRecord("service", "", {}, T0))
    assert await store.list_documents("service") == []


async def test_documents_outlive_the_store_object(durable: Backend) -> None:
    first = await durable.opened()
    try:
        await store_two(first)
    finally:
        await first.close()
    again = await durable.opened()  # a restart, or another replica
    try:
        assert [d.name for d in await again.list_documents("service")] == ["one", "two"]
        got = await again.get_document("service", "two")
        assert got is not None and got.data == {"name": "two", "n": 2} and got.updated == T0
    finally:
        await again.close()


async def store_two(store: Store) -> None:
    await store.put_document(doc("one", n=1))
    await store.put_document(doc("two", n=2))


async def test_etcd_document_writes_are_fenced() -> None:
    backend = Backend("etcd")
    leader = f"{backend.prefix}/leader".encode()
    fence = Compare(leader, "create", "=", 0)  # holds while the key is absent
    async with EtcdStore(backend.kv, backend.prefix, fence=lambda: fence) as s:
        await s.put_document(doc("kept"))
        await backend.kv.put(leader, b"another coordinator")  # etcd now refuses our fence
        with pytest.raises(Fenced, match="no longer the leader"):
            await s.put_document(doc("lost"))
        with pytest.raises(Fenced, match="no longer the leader"):
            await s.delete_document("service", "kept")
        assert [d.name for d in await s.list_documents("service")] == ["kept"]
