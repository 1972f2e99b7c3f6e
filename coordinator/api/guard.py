"""The gRPC face of ``coordinator.auth``: every call authenticated, authorized, audited.

``Guard`` is a server interceptor. For each call it reads the credentials (the
``authorization`` metadata, and on mutual TLS the client certificate), the namespace
(``agentmesh-namespace`` metadata, default ``default``), asks the authenticator for the
principal and the policy for a decision, and only then runs the method, as that principal
(``coordinator.auth.current()``). A call without valid credentials ends
``UNAUTHENTICATED``, one the policy refuses ``PERMISSION_DENIED`` with the decision's
reason (the permission it lacks); both before the request is even decoded. Health is
always open (probes), reflection when ``auth_open_reflection`` is on (otherwise any
principal may use it). Writes and refusals go to the audit log.

A stream is decided again while it lasts (``coordinator.auth.streams``): each open one is
registered in ``streams`` with a way to end it, and when its credentials are revoked
(its token removed from the tokens file, its grant narrowed, its JWT expired, its
certificate's entry removed) it ends ``UNAUTHENTICATED`` or ``PERMISSION_DENIED`` with a
message saying it was revoked, and the audit record of its end says so. Ending it from
outside: the handler's task is cancelled while it awaits the servicer's next message
(the wrapper takes the cancellation back and aborts the call with the revocation, from
within the call's own task), or, while gRPC is writing a message, the wrapper aborts
before asking for the next one; a call still not ended ``FORCE_END_S`` later (a client
that does not read) is dropped.

Wrapping costs one coroutine per call: handlers are wrapped once per method and cached,
and the client certificate is read only when a call has no bearer token. A stream costs
two attribute writes per message more (where its handler is), nothing else.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from agentmesh.protocol import AUTHORIZATION_METADATA, HTTP_PEER_METADATA
from coordinator.auth import (
    READ_ONLY,
    AuditLog,
    AuditRecord,
    Authenticator,
    Credentials,
    OpenStream,
    OpenStreams,
)
from coordinator.auth import current as current_principal
from coordinator.auth.permissions import HEALTH, is_reflection
from coordinator.auth.principal import Principal, act_as
from coordinator.errors import MeshError, PermissionDenied

from . import scope
from .status import abort, code_for

log = logging.getLogger(__name__)

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


#: Seconds a revoked stream's handler has to end as above; one still held up after them
#: (gRPC writing to a client that does not read) is dropped: see ``_Handle``.
FORCE_END_S = 5.0

# The open stream the current call is (None: not a guarded stream), for check_capabilities.
_STREAM: ContextVar[OpenStream | None] = ContextVar("agentmesh_stream", default=None)


def check_capabilities(capabilities: list[str]) -> None:
    """Refuse (``PermissionDenied``) an agent that offers capabilities outside the
    caller's grant; the message names them and the principal. On a guarded stream, the
    capabilities are noted, and checked again whenever its grant may have changed."""
    refusal = current_principal().serving_refusal(capabilities)
    if refusal:
        raise PermissionDenied(refusal)
    stream = _STREAM.get()
    if stream is not None:
        stream.serves(capabilities)


def revocation() -> str:
    """Why the current call's stream was revoked ("" when it was not, or is no guarded
    stream): what a servicer ending because of it may say."""
    stream = _STREAM.get()
    return str(stream.revoked) if stream is not None and stream.revoked is not None else ""


@dataclass(frozen=True, slots=True)
class _Admitted:
    principal: Principal
    namespace: str
    audited: bool
    peer: str
    credentials: Credentials
    until: float  # when the credentials stop proving the principal (inf: never)


class _Handle:
    """One guarded stream's handler, as a revocation sees it (``end`` is its
    ``OpenStreams`` callback). ``awaiting``: it waits for the servicer's next message;
    cancelling its task then lands in the wrapper, which aborts the call with the
    revocation. Otherwise it is suspended while gRPC writes a message, and the wrapper
    aborts before asking for the next one; if gRPC stays held up (a client that does not
    read), after ``FORCE_END_S`` the servicer's generator is closed (its cleanup: an agent
    leaves the mesh) and the task cancelled: no status can reach that client anyway.
    ``finish`` (the registry and the audit record of the end) runs once however it ends."""

    __slots__ = ("awaiting", "closing", "finish", "finished", "responses", "task")

    def __init__(self, task: asyncio.Task[Any], responses: AsyncGenerator[Any, None]) -> None:
        self.task = task
        self.responses = responses
        self.awaiting = False
        self.finished = False
        self.finish: Callable[[], None] = lambda: None
        self.closing: asyncio.Task[None] | None = None

    def end(self, stream: OpenStream) -> None:
        if self.task.done():
            return
        if self.awaiting:
            self.task.cancel()
        asyncio.get_running_loop().call_later(FORCE_END_S, self._force)  # the backstop

    def finish_once(self) -> None:
        if not self.finished:
            self.finished = True
            self.finish()

    def _force(self) -> None:
        if self.task.done():
            return
        log.warning("a revoked stream's client does not read it: dropping the call")
        self.finish_once()
        self.task.cancel()
        self.closing = asyncio.create_task(self._close())

    async def _close(self) -> None:
        try:
            await self.responses.aclose()
        except Exception:  # e.g. it is closing already
            log.debug("closing a dropped stream's servicer", exc_info=True)


class Guard(grpc.aio.ServerInterceptor):
    """Authentication, authorization and audit for every call (module docstring).
    ``mutual``: the listener asks for client certificates (read them as credentials)."""

    def __init__(
        self,
        authenticator: Authenticator,
        audit: AuditLog,
        *,
        open_reflection: bool = True,
        mutual: bool = False,
    ) -> None:
        self.authenticator = authenticator
        self.audit = audit
        self.open_reflection = open_reflection
        self.mutual = mutual
        # Every open guarded stream, decided again while it lasts (``streams.watch()``
        # is the server's task that does it).
        self.streams = OpenStreams(authenticator)
        # method -> (the handler as served, the same handler guarded)
        self._guarded: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        """The method's handler, guarded (health and open reflection as they are)."""
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method in HEALTH:
            return handler
        reflection = is_reflection(method)
        if reflection and self.open_reflection:
            return handler
        cached = self._guarded.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        guarded = self._guard(method, handler, needs_permission=not reflection)
        self._guarded[method] = (handler, guarded)
        return guarded

    # ---------------------------------------------------------------- decisions

    def _credentials(self, context: grpc.aio.ServicerContext) -> tuple[Credentials, str, str]:
        """The call's credentials, namespace and peer (an HTTP client's, for a call the
        gateway forwards over its Unix socket)."""
        authorization: str | None = None
        metadata = context.invocation_metadata() or ()
        namespace = scope.requested(metadata)
        peer = context.peer() or ""  # read while the call is alive (see _ended)
        for key, value in metadata:
            if key == AUTHORIZATION_METADATA:
                authorization = value if isinstance(value, str) else None
            elif key == HTTP_PEER_METADATA and peer.startswith("unix:"):
                peer = f"http:{value}"
        if authorization is None and self.mutual:
            auth = context.auth_context()
            spiffe = auth.get("peer_spiffe_id") or ()
            common = auth.get("x509_common_name") or ()
            return (
                Credentials(
                    spiffe=spiffe[0].decode() if spiffe else None,
                    common_name=common[0].decode() if common else None,
                ),
                namespace,
                peer,
            )
        return Credentials(authorization=authorization), namespace, peer

    async def _admit(
        self, method: str, context: grpc.aio.ServicerContext, needs_permission: bool
    ) -> _Admitted:
        """The principal, the namespace, whether the call is to be audited, the peer,
        the credentials and until when they hold; or the call aborted with the refusal
        (audited)."""
        credentials, namespace, peer = self._credentials(context)
        principal: Principal | None = None
        try:
            scope.check(namespace)
            principal, until = await self.authenticator.authenticate_until(credentials)
            if not needs_permission:
                return _Admitted(principal, namespace, False, peer, credentials, until)
            decision = self.authenticator.policy.decide(principal, method, namespace)
            if not decision.allowed:
                raise PermissionDenied(decision.reason)
        except MeshError as e:  # Unauthenticated, PermissionDenied, InvalidArgument, ...
            self._record(principal, method, namespace, peer, code_for(e).name, str(e))
            await abort(context, e)
        audited = decision.permission not in READ_ONLY
        return _Admitted(principal, namespace, audited, peer, credentials, until)

    def _record(
        self,
        principal: Principal | None,
        method: str,
        namespace: str,
        peer: str,
        outcome: str,
        detail: str = "",
    ) -> None:
        self.audit.record(
            AuditRecord(
                principal=principal.name if principal else "",
                via=principal.via if principal else "",
                roles=tuple(sorted(principal.roles)) if principal else (),
                method=method,
                namespace=namespace,
                peer=peer,
                outcome=outcome,
                detail=detail,
            )
        )

    def _ended(
        self,
        principal: Principal,
        method: str,
        namespace: str,
        peer: str,
        context: grpc.aio.ServicerContext,
        error: BaseException | None,
    ) -> None:
        if isinstance(error, GeneratorExit | asyncio.CancelledError):
            # The call is gone (a stream abandoned, a cancelled call): its context must
            # not be touched any more (gRPC may have freed it), and there is no status.
            self._record(principal, method, namespace, peer, "CANCELLED")
            return
        if context.cancelled():  # the client went away; the handler may have ended quietly
            self._record(principal, method, namespace, peer, "CANCELLED")
            return
        code = context.code()
        if code is None or code == 0:
            code = grpc.StatusCode.UNKNOWN if error is not None else grpc.StatusCode.OK
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        details = context.details()
        detail = details.decode() if isinstance(details, bytes) else (details or "")
        self._record(principal, method, namespace, peer, name, detail)

    # ---------------------------------------------------------------- wrapping

    def _guard(
        self, method: str, handler: grpc.RpcMethodHandler, *, needs_permission: bool
    ) -> grpc.RpcMethodHandler:
        admit = self._admit
        ended = self._ended
        record = self._record
        streams = self.streams
        deserialize, serialize = handler.request_deserializer, handler.response_serializer

        def unary(inner: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                admitted = await admit(method, context, needs_permission)
                principal, namespace, peer = admitted.principal, admitted.namespace, admitted.peer
                act_as(principal)
                error: BaseException | None = None
                try:
                    return await inner(request, context)
                except BaseException as e:
                    error = e
                    raise
                finally:
                    if admitted.audited:
                        ended(principal, method, namespace, peer, context, error)

            return call

        def streaming(inner: Callable[..., AsyncGenerator[Any, None]]) -> Callable[..., Any]:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                generation = streams.generation()  # before admitting: see OpenStreams
                admitted = await admit(method, context, needs_permission)
                principal, namespace, peer = admitted.principal, admitted.namespace, admitted.peer
                audited = admitted.audited
                if audited:  # a stream may last for hours: say when it began, too
                    record(principal, method, namespace, peer, "STARTED")
                act_as(principal)
                task = asyncio.current_task()
                assert task is not None
                responses = inner(request, context)
                handle = _Handle(task, responses)
                stream = streams.open(
                    admitted.credentials,
                    principal,
                    method,
                    namespace,
                    until=admitted.until,
                    generation=generation,
                    end=handle.end,
                    needs_permission=needs_permission,
                )

                def finish() -> None:  # a revoked stream's end: once, however it ends
                    streams.close(stream)
                    revoked = stream.revoked
                    assert revoked is not None
                    record(principal, method, namespace, peer, code_for(revoked).name, str(revoked))

                handle.finish = finish
                _STREAM.set(stream)
                error: BaseException | None = None
                try:
                    while stream.revoked is None:
                        handle.awaiting = True
                        try:
                            response = await anext(responses)
                        except StopAsyncIteration:
                            break
                        finally:
                            handle.awaiting = False
                        yield response
                except asyncio.CancelledError as e:
                    if stream.revoked is None or handle.finished:
                        error = e
                        raise
                    task.uncancel()  # our own cancellation: end it with the revocation
                except BaseException as e:
                    error = e
                    raise
                finally:
                    streams.close(stream)
                    if error is not None:
                        if stream.revoked is not None and not isinstance(
                            error, grpc.aio.AbortError
                        ):
                            handle.finish_once()
                        elif audited:
                            ended(principal, method, namespace, peer, context, error)
                revoked = stream.revoked
                if revoked is not None:
                    try:
                        await responses.aclose()  # the servicer's own cleanup (an agent leaves)
                    except Exception:
                        log.exception("closing the revoked stream %s failed", method)
                    handle.finish_once()
                    await abort(context, revoked)
                if audited:
                    # Ended quietly: a client that cancelled may not be seen as such
                    # until the call terminates, so decide the outcome then.
                    context.add_done_callback(
                        lambda done: ended(principal, method, namespace, peer, done, None)
                    )

            return call

        def pick(inner: Any) -> Any:
            return streaming(inner) if inspect.isasyncgenfunction(inner) else unary(inner)

        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                unary(handler.unary_unary), deserialize, serialize
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                pick(handler.unary_stream), deserialize, serialize
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                unary(handler.stream_unary), deserialize, serialize
            )
        return grpc.stream_stream_rpc_method_handler(
            pick(handler.stream_stream), deserialize, serialize
        )
