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

Wrapping costs one coroutine per call: handlers are wrapped once per method and cached,
and the client certificate is read only when a call has no bearer token.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from agentmesh.protocol import AUTHORIZATION_METADATA
from coordinator.auth import READ_ONLY, AuditLog, AuditRecord, Authenticator, Credentials
from coordinator.auth import current as current_principal
from coordinator.auth.permissions import HEALTH, is_reflection
from coordinator.auth.principal import Principal, act_as
from coordinator.errors import MeshError, PermissionDenied

from . import scope
from .status import abort, code_for

log = logging.getLogger(__name__)

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


def check_capabilities(capabilities: list[str]) -> None:
    """Refuse (``PermissionDenied``) an agent that offers capabilities outside the
    caller's grant; the message names them and the principal."""
    caller = current_principal()
    refused = caller.refused_capabilities(capabilities)
    if refused:
        allowed = ", ".join(sorted(caller.capabilities)) or "none"
        raise PermissionDenied(
            f"{caller.describe()} may not serve the capabilit"
            f"{'y' if len(refused) == 1 else 'ies'} {', '.join(refused)} "
            f"(its grant: {allowed})"
        )


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

    def _credentials(self, context: grpc.aio.ServicerContext) -> tuple[Credentials, str]:
        authorization: str | None = None
        metadata = context.invocation_metadata() or ()
        namespace = scope.requested(metadata)
        for key, value in metadata:
            if key == AUTHORIZATION_METADATA:
                authorization = value if isinstance(value, str) else None
        if authorization is None and self.mutual:
            auth = context.auth_context()
            spiffe = auth.get("peer_spiffe_id") or ()
            common = auth.get("x509_common_name") or ()
            return Credentials(
                spiffe=spiffe[0].decode() if spiffe else None,
                common_name=common[0].decode() if common else None,
            ), namespace
        return Credentials(authorization=authorization), namespace

    async def _admit(
        self, method: str, context: grpc.aio.ServicerContext, needs_permission: bool
    ) -> tuple[Principal, str, bool, str]:
        """The principal, the namespace, whether the call is to be audited, and the
        peer; or the call aborted with the refusal (audited)."""
        credentials, namespace = self._credentials(context)
        peer = context.peer() or ""  # read while the call is alive (see _ended)
        principal: Principal | None = None
        try:
            scope.check(namespace)
            principal = await self.authenticator.authenticate(credentials)
            if not needs_permission:
                return principal, namespace, False, peer
            decision = self.authenticator.policy.decide(principal, method, namespace)
            if not decision.allowed:
                raise PermissionDenied(decision.reason)
        except MeshError as e:  # Unauthenticated, PermissionDenied, InvalidArgument, ...
            self._record(principal, method, namespace, peer, code_for(e).name, str(e))
            await abort(context, e)
        return principal, namespace, decision.permission not in READ_ONLY, peer

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
        deserialize, serialize = handler.request_deserializer, handler.response_serializer

        def unary(inner: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                principal, namespace, audited, peer = await admit(method, context, needs_permission)
                act_as(principal)
                error: BaseException | None = None
                try:
                    return await inner(request, context)
                except BaseException as e:
                    error = e
                    raise
                finally:
                    if audited:
                        ended(principal, method, namespace, peer, context, error)

            return call

        def streaming(inner: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                principal, namespace, audited, peer = await admit(method, context, needs_permission)
                if audited:  # a stream may last for hours: say when it began, too
                    self._record(principal, method, namespace, peer, "STARTED")
                act_as(principal)
                error: BaseException | None = None
                try:
                    async for response in inner(request, context):
                        yield response
                except BaseException as e:
                    error = e
                    raise
                finally:
                    if audited and error is None:
                        # Ended quietly: a client that cancelled may not be seen as such
                        # until the call terminates, so decide the outcome then.
                        context.add_done_callback(
                            lambda done: ended(principal, method, namespace, peer, done, None)
                        )
                    elif audited:
                        ended(principal, method, namespace, peer, context, error)

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
