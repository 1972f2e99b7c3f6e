""":class:`EtcdKV`: the :class:`~coordinator.kv.KV` protocol on a real etcd v3 cluster.

Built on ``aetcd``'s generated etcd v3 stubs (``aetcd.rpc``) over our own ``grpc.aio``
channels rather than on ``aetcd.Client``, because the client lacks what cluster mode needs:
TLS (it only opens insecure channels), the ``lease`` compare target, range limits and
sort inside transactions, and several endpoints.  Auth uses etcd's token flow, as
``aetcd.Client`` does.

Endpoints are tried in order.  A call first waits (``connect_timeout``) for a channel to
become ready; if it cannot, nothing was sent and the next endpoint is tried, for reads and
writes alike.  After a request *was* sent and failed as unavailable, reads move on to the
next endpoint, but writes raise ``KVUnavailable``: the write may have been applied, and
only the caller (who knows whether it is idempotent or fenced) can decide to retry.  This
is etcd clientv3's own rule for retrying mutations.  The next call then starts at the
next endpoint, so the caller's resend does not wait on the member that just failed.

All gRPC errors are mapped to the protocol's errors in :func:`_map_error`::

    UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED   -> KVUnavailable
    NOT_FOUND "lease not found"                 -> LeaseNotFound
    OUT_OF_RANGE "compacted"                    -> Compacted
    anything else                               -> KVError

One piece, though long: every KV method goes through the one failover rule
(``_call``) and the one error mapping (``_map_error``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from aetcd import rpc

from coordinator.kv._api import (
    Compacted,
    Compare,
    Delete,
    KeyValue,
    KVError,
    KVUnavailable,
    LeaseNotFound,
    Op,
    Put,
    Range,
    TxnResult,
    WatchEvent,
    prefix_end,
)

__all__ = ["EtcdKV"]

T = TypeVar("T")

_TARGETS = {
    "create": rpc.Compare.CREATE,
    "mod": rpc.Compare.MOD,
    "version": rpc.Compare.VERSION,
    "value": rpc.Compare.VALUE,
    "lease": rpc.Compare.LEASE,
}
_TARGET_FIELD = {
    "create": "create_revision",
    "mod": "mod_revision",
    "version": "version",
    "value": "value",
    "lease": "lease",
}
_OPS = {
    "=": rpc.Compare.EQUAL,
    "!=": rpc.Compare.NOT_EQUAL,
    "<": rpc.Compare.LESS,
    ">": rpc.Compare.GREATER,
}
# Watches and lease keepalives sent with this header fail on a member that has lost its
# leader instead of hanging there silently (clientv3's WithRequireLeader).
_REQUIRE_LEADER = ("hasleader", "true")


def _map_error(e: grpc.aio.AioRpcError) -> KVError:
    """The one place gRPC failures become protocol errors.

    A call cancelled because *our* task is being cancelled re-raises CancelledError:
    grpc.aio may report it as a CANCELLED status, and a retry loop that catches
    ``KVUnavailable`` would otherwise swallow the cancellation and never stop.
    """
    code, details = e.code(), e.details() or ""
    if code == grpc.StatusCode.CANCELLED:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
    if code in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
    ):
        return KVUnavailable(f"{code.name}: {details}")
    if code == grpc.StatusCode.UNKNOWN and "deadline exceeded" in details:
        # etcd's own request timeout while it has no quorum ("context deadline
        # exceeded" as UNKNOWN): the cluster is unavailable, not the request wrong.
        return KVUnavailable(f"{code.name}: {details}")
    if code == grpc.StatusCode.NOT_FOUND and "lease not found" in details:
        return LeaseNotFound(details)
    if code == grpc.StatusCode.OUT_OF_RANGE and "compacted" in details:
        # A read at an old revision; the error text does not say which revision remains.
        return Compacted(0)
    return KVError(f"{code.name}: {details}")


def _kv(m: Any) -> KeyValue:
    return KeyValue(
        key=m.key,
        value=m.value,
        create_revision=m.create_revision,
        mod_revision=m.mod_revision,
        version=m.version,
        lease=m.lease,
    )


def _span(key: bytes, prefix: bool) -> tuple[bytes, bytes]:
    """``(key, range_end)`` for the request; an empty prefix means every key.

    etcd rejects an empty key, so "everything" is spelled ``["\\0", "\\0")`` (``>= "\\0"``),
    as clientv3's ``WithPrefix`` does.
    """
    if not prefix:
        return key, b""
    if not key:
        return b"\0", b"\0"
    return key, prefix_end(key)


def _range_request(op: Range, sort_by_create: bool = False) -> Any:
    key, end = (op.key, op.end) if op.end else _span(op.key, op.prefix)
    req = rpc.RangeRequest(key=key, range_end=end, limit=op.limit)
    if sort_by_create:
        req.sort_target = rpc.RangeRequest.CREATE
        req.sort_order = rpc.RangeRequest.ASCEND
    elif op.reverse:
        req.sort_target = rpc.RangeRequest.KEY
        req.sort_order = rpc.RangeRequest.DESCEND
    return req


def _request_op(op: Op) -> Any:
    if isinstance(op, Put):
        return rpc.RequestOp(request_put=rpc.PutRequest(key=op.key, value=op.value, lease=op.lease))
    if isinstance(op, Delete):
        key, end = _span(op.key, op.prefix)
        req = rpc.DeleteRangeRequest(key=key, range_end=end)
        return rpc.RequestOp(request_delete_range=req)
    return rpc.RequestOp(request_range=_range_request(op))


def _compare(c: Compare) -> Any:
    msg = rpc.Compare(key=c.key, target=_TARGETS[c.target], result=_OPS[c.op])
    setattr(msg, _TARGET_FIELD[c.target], c.value)
    return msg


class _Endpoint:
    def __init__(self, address: str, channel: grpc.aio.Channel) -> None:
        self.address = address
        self.channel = channel
        self.kv = rpc.KVStub(channel)
        self.lease = rpc.LeaseStub(channel)
        self.watch = rpc.WatchStub(channel)
        self.cluster = rpc.ClusterStub(channel)
        self.maintenance = rpc.MaintenanceStub(channel)
        self.auth = rpc.AuthStub(channel)
        self.token: str | None = None


class EtcdKV:
    """The KV protocol on etcd. Create, use, then ``await close()`` (or ``async with``).

    ``endpoints`` are ``"host:port"``; ``timeout`` bounds each request, ``connect_timeout``
    bounds waiting for a connection to one endpoint.  TLS: ``ca_cert`` (verify the server)
    plus optionally ``cert_cert``/``cert_key`` (client certificate).  Auth: ``user`` and
    ``password`` together.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = 5.0,
        connect_timeout: float = 1.0,
        ca_cert: str | Path | None = None,
        cert_key: str | Path | None = None,
        cert_cert: str | Path | None = None,
        user: str | None = None,
        password: str | None = None,
        grpc_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is required")
        if (user is None) != (password is None):
            raise ValueError("user and password go together")
        if (cert_key is None) != (cert_cert is None):
            raise ValueError("cert_key and cert_cert go together")
        self._addresses = list(endpoints)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._user, self._password = user, password
        self._credentials: grpc.ChannelCredentials | None = None
        if ca_cert is not None or cert_key is not None:
            self._credentials = grpc.ssl_channel_credentials(
                root_certificates=Path(ca_cert).read_bytes() if ca_cert else None,
                private_key=Path(cert_key).read_bytes() if cert_key else None,
                certificate_chain=Path(cert_cert).read_bytes() if cert_cert else None,
            )
        self._options = [
            # Detect a vanished member on an idle connection (watches) within seconds.
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
            # etcd's default request limit is 1.5 MiB; allow the response side headroom.
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            *grpc_options,
        ]
        self._endpoints: dict[str, _Endpoint] = {}
        self._current = 0  # index of the endpoint that last worked
        self._closed = False

    async def __aenter__(self) -> EtcdKV:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connection handling -------------------------------------------------

    def _endpoint(self, address: str) -> _Endpoint:
        ep = self._endpoints.get(address)
        if ep is None:
            if self._credentials is not None:
                ch = grpc.aio.secure_channel(address, self._credentials, options=self._options)
            else:
                ch = grpc.aio.insecure_channel(address, options=self._options)
            ep = self._endpoints[address] = _Endpoint(address, ch)
        return ep

    def _order(self) -> list[str]:
        n = len(self._addresses)
        return [self._addresses[(self._current + i) % n] for i in range(n)]

    async def _ready(self, address: str) -> _Endpoint:
        """The endpoint, connected (and authenticated); KVUnavailable if it is not reachable."""
        ep = self._endpoint(address)
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that races the inner await's completion, and a cancelled watcher or
            # retry loop would then never stop.
            async with asyncio.timeout(self._connect_timeout):
                await ep.channel.channel_ready()
        except TimeoutError:
            raise KVUnavailable(f"{address}: not reachable") from None
        if self._user is not None and ep.token is None:
            try:
                resp = await ep.auth.Authenticate(
                    rpc.AuthenticateRequest(name=self._user, password=self._password),
                    timeout=self._timeout,
                )
            except grpc.aio.AioRpcError as e:
                raise _map_error(e) from e
            ep.token = resp.token
        return ep

    def _metadata(self, ep: _Endpoint, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        return ((("token", ep.token),) if ep.token else ()) + extra

    async def _call(self, fn: Callable[[_Endpoint], Awaitable[T]], *, retry_sent: bool) -> T:
        """Run ``fn`` on the first endpoint that works; see the module docstring for failover."""
        if self._closed:
            raise KVError("EtcdKV is closed")
        last: KVError = KVUnavailable("no endpoint tried")
        for address in self._order():
            try:
                ep = await self._ready(address)
            except KVUnavailable as e:
                last = e
                continue
            try:
                result = await fn(ep)
            except grpc.aio.AioRpcError as e:
                err = _map_error(e)
                if isinstance(err, KVError) and "invalid auth token" in str(err):
                    ep.token = None  # tokens expire; the next call re-authenticates
                if isinstance(err, KVUnavailable):
                    if retry_sent:
                        last = err
                        continue
                    # The caller will decide whether to resend; when it does, start at the
                    # next member rather than wait out the connect timeout on this one.
                    self._current = (self._addresses.index(address) + 1) % len(self._addresses)
                raise err from e
            self._current = self._addresses.index(address)
            return result
        # Start from the next endpoint next time rather than re-paying the timeout here.
        self._current = (self._current + 1) % len(self._addresses)
        raise KVUnavailable(f"no etcd endpoint available ({last})")

    # -- KV protocol ---------------------------------------------------------

    async def get(self, key: bytes) -> KeyValue | None:
        kvs, _ = await self.range(key)
        return kvs[0] if kvs else None

    async def range(
        self,
        key: bytes,
        prefix: bool = False,
        limit: int = 0,
        sort_by_create: bool = False,
        *,
        end: bytes = b"",
        reverse: bool = False,
    ) -> tuple[list[KeyValue], int]:
        req = _range_request(Range(key, prefix, limit, end, reverse), sort_by_create)

        async def go(ep: _Endpoint) -> Any:
            return await ep.kv.Range(req, timeout=self._timeout, metadata=self._metadata(ep))

        resp = await self._call(go, retry_sent=True)
        return [_kv(m) for m in resp.kvs], resp.header.revision

    async def txn(
        self, compares: Sequence[Compare], success_ops: Sequence[Op], failure_ops: Sequence[Op]
    ) -> TxnResult:
        req = rpc.TxnRequest(
            compare=[_compare(c) for c in compares],
            success=[_request_op(o) for o in success_ops],
            failure=[_request_op(o) for o in failure_ops],
        )

        async def go(ep: _Endpoint) -> Any:
            return await ep.kv.Txn(req, timeout=self._timeout, metadata=self._metadata(ep))

        # A read-only transaction is safe to resend.
        writes = any(not isinstance(o, Range) for o in (*success_ops, *failure_ops))
        resp = await self._call(go, retry_sent=not writes)
        ranges = [
            [_kv(m) for m in r.response_range.kvs]
            for r in resp.responses
            if r.WhichOneof("response") == "response_range"
        ]
        return TxnResult(resp.succeeded, resp.header.revision, ranges)

    async def put(self, key: bytes, value: bytes, lease: int = 0) -> int:
        req = rpc.PutRequest(key=key, value=value, lease=lease)

        async def go(ep: _Endpoint) -> Any:
            return await ep.kv.Put(req, timeout=self._timeout, metadata=self._metadata(ep))

        resp = await self._call(go, retry_sent=False)
        return int(resp.header.revision)

    async def delete(self, key: bytes, prefix: bool = False) -> int:
        start, end = _span(key, prefix)
        req = rpc.DeleteRangeRequest(key=start, range_end=end)

        async def go(ep: _Endpoint) -> Any:
            return await ep.kv.DeleteRange(req, timeout=self._timeout, metadata=self._metadata(ep))

        resp = await self._call(go, retry_sent=False)
        return int(resp.deleted)

    async def grant(self, ttl: int) -> int:
        async def go(ep: _Endpoint) -> Any:
            return await ep.lease.LeaseGrant(
                rpc.LeaseGrantRequest(TTL=ttl), timeout=self._timeout, metadata=self._metadata(ep)
            )

        resp = await self._call(go, retry_sent=False)
        if resp.error:
            raise KVError(resp.error)
        return int(resp.ID)

    async def keepalive(self, lease_id: int) -> int:
        async def go(ep: _Endpoint) -> Any:
            # One request on etcd's bidirectional keepalive stream, then hang up: the
            # caller's loop decides the cadence, which keeps cancellation trivial.
            call = ep.lease.LeaseKeepAlive(
                timeout=self._timeout, metadata=self._metadata(ep, _REQUIRE_LEADER)
            )
            try:
                await call.write(rpc.LeaseKeepAliveRequest(ID=lease_id))
                resp = await call.read()
            finally:
                call.cancel()
            if resp is grpc.aio.EOF:
                raise KVUnavailable("keepalive stream closed")
            return resp

        # Refreshing twice is harmless, so it may be resent to another member.
        resp = await self._call(go, retry_sent=True)
        if resp.TTL <= 0:
            raise LeaseNotFound(f"lease {lease_id:x} not found")
        return int(resp.TTL)

    async def revoke(self, lease_id: int) -> None:
        async def go(ep: _Endpoint) -> Any:
            return await ep.lease.LeaseRevoke(
                rpc.LeaseRevokeRequest(ID=lease_id),
                timeout=self._timeout,
                metadata=self._metadata(ep),
            )

        await self._call(go, retry_sent=True)

    def watch(
        self, key: bytes, prefix: bool = False, start_revision: int = 0
    ) -> AsyncIterator[WatchEvent]:
        return self._watch(key, prefix, start_revision)

    async def _watch(
        self, key: bytes, prefix: bool, start_revision: int
    ) -> AsyncIterator[WatchEvent]:
        start, end = _span(key, prefix)
        create = rpc.WatchCreateRequest(key=start, range_end=end, start_revision=start_revision)

        async def open_stream(ep: _Endpoint) -> Any:
            call = ep.watch.Watch(metadata=self._metadata(ep, _REQUIRE_LEADER))
            try:
                await call.write(rpc.WatchRequest(create_request=create))
                async with asyncio.timeout(self._timeout):
                    first = await call.read()
            except BaseException:
                call.cancel()
                raise
            return call, first

        try:
            call, resp = await self._call(open_stream, retry_sent=True)
        except TimeoutError:
            raise KVUnavailable("watch was not created in time") from None
        try:
            while True:
                if resp is grpc.aio.EOF:
                    raise KVUnavailable("watch stream closed")
                if resp.compact_revision:
                    raise Compacted(resp.compact_revision)
                if resp.canceled:
                    raise KVUnavailable(f"watch canceled: {resp.cancel_reason}")
                for ev in resp.events:
                    kv = _kv(ev.kv)
                    if ev.type == rpc.Event.DELETE:
                        yield WatchEvent("delete", kv, kv.mod_revision)
                    else:
                        yield WatchEvent("put", kv, kv.mod_revision)
                try:
                    resp = await call.read()
                except grpc.aio.AioRpcError as e:
                    raise _map_error(e) from e
        finally:
            call.cancel()

    async def compact(self, revision: int) -> None:
        async def go(ep: _Endpoint) -> Any:
            return await ep.kv.Compact(
                rpc.CompactionRequest(revision=revision),
                timeout=self._timeout,
                metadata=self._metadata(ep),
            )

        await self._call(go, retry_sent=True)

    async def health(self) -> dict[str, Any]:
        """Ask every endpoint for its status; healthy iff a linearizable read succeeds."""
        timeout = min(self._timeout, 2.0)

        async def status(address: str) -> dict[str, Any]:
            try:
                ep = await self._ready(address)
                s = await ep.maintenance.Status(
                    rpc.StatusRequest(), timeout=timeout, metadata=self._metadata(ep)
                )
            except KVError as e:
                return {"reachable": False, "error": str(e)}
            except grpc.aio.AioRpcError as e:
                return {"reachable": False, "error": str(_map_error(e))}
            return {
                "reachable": True,
                "member_id": s.header.member_id,
                "leader": s.leader or None,
                "raft_term": s.raftTerm,
                "version": s.version,
                "db_size": s.dbSize,
            }

        results = await asyncio.gather(*(status(a) for a in self._addresses))
        endpoints = dict(zip(self._addresses, results, strict=True))
        members: list[dict[str, Any]] = []
        with contextlib.suppress(KVError):

            async def member_list(ep: _Endpoint) -> Any:
                return await ep.cluster.MemberList(
                    rpc.MemberListRequest(), timeout=timeout, metadata=self._metadata(ep)
                )

            resp = await self._call(member_list, retry_sent=True)
            members = [
                {"id": m.ID, "name": m.name, "client_urls": list(m.clientURLs)}
                for m in resp.members
            ]
        healthy = True
        try:
            # Status answers from a member's local state even without quorum; only a
            # linearizable read proves the cluster can serve.
            async with asyncio.timeout(timeout):
                await self.range(b"\0agentmesh-health")
        except (KVError, TimeoutError):
            healthy = False
        leaders = {r["leader"] for r in results if r.get("leader")}
        return {
            "healthy": healthy,
            "leader": next(iter(leaders)) if len(leaders) == 1 else None,
            "members": members,
            "endpoints": endpoints,
        }

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        endpoints, self._endpoints = list(self._endpoints.values()), {}
        await asyncio.gather(*(ep.channel.close() for ep in endpoints))
