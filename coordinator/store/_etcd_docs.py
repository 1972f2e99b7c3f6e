"""The etcd store's documents (``DocumentRecord``): one key each, put and deleted in
fenced transactions::

    <prefix>/docs/<kind>/<namespace>/<name>    {"updated", "data"}

Kind first, so listing one kind (in one namespace, or in all) is one prefix range that
reads nothing else; every part is percent-encoded, ``/`` included.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote

from coordinator.kv import KV, Compare, Delete, KeyValue, Op, Put, Range

from . import _codec as codec
from ._api import DocumentRecord
from ._errors import Fenced, StoreError

T = TypeVar("T")


class Host(Protocol):
    """What the documents need of ``EtcdStore``."""

    kv: KV
    max_value_bytes: int

    def _key(self, *parts: str) -> bytes: ...

    async def _call(self, request: Awaitable[T]) -> T: ...

    async def _txn(self, guards: list[Compare], ops: Sequence[Op]) -> bool: ...

    def _current_fence(self) -> Compare | None: ...

    def _fenced(self) -> Fenced: ...


def _key(host: Host, kind: str, namespace: str, name: str) -> bytes:
    return host._key("docs", codec.key_part(kind), codec.key_part(namespace), codec.key_part(name))


async def put(host: Host, record: DocumentRecord) -> None:
    row = codec.encode_document(record)
    kind, namespace, name, data, updated = row
    # The data is already JSON text: splice it in.
    value = f'{{"updated":"{updated}","data":{data}}}'.encode()
    if len(value) > host.max_value_bytes:
        raise StoreError(
            f"{codec.describe_document(kind, name, namespace)}: stored value is {len(value)} "
            f"bytes, over the etcd store's {host.max_value_bytes} byte limit per value"
        )
    await host._txn([], [Put(_key(host, kind, namespace, name), value)])


async def get(host: Host, kind: str, name: str, namespace: str) -> DocumentRecord | None:
    kv = await host._call(host.kv.get(_key(host, kind, namespace, name)))
    return None if kv is None else _decode(kv)


async def list_(host: Host, kind: str, namespace: str | None) -> list[DocumentRecord]:
    parts = ["docs", codec.key_part(kind)] + (
        [] if namespace is None else [codec.key_part(namespace)]
    )
    kvs, _ = await host._call(host.kv.range(host._key(*parts, ""), prefix=True))
    records = [_decode(kv) for kv in kvs]
    return sorted(records, key=lambda r: (r.namespace, r.name))


async def delete(host: Host, kind: str, name: str, namespace: str) -> bool:
    key = _key(host, kind, namespace, name)
    # The range runs before the delete inside the transaction: it says whether there
    # was a document to delete.
    fence = host._current_fence()
    compares = [] if fence is None else [fence]
    result = await host._call(host.kv.txn(compares, [Range(key), Delete(key)], []))
    if not result.succeeded:
        raise host._fenced()
    return bool(result.ranges[0])


def _decode(kv: KeyValue) -> DocumentRecord:
    # .../docs/<kind>/<namespace>/<name>: the parts hold no "/" (percent-encoded).
    _, kind, namespace, name = kv.key.decode().rsplit("/", 3)
    obj: dict[str, Any] = json.loads(kv.value)
    data = json.dumps(obj["data"], separators=(",", ":"))
    return codec.decode_document(
        (unquote(kind), unquote(namespace), unquote(name), data, obj["updated"])
    )
