"""Domain errors -> gRPC status codes, in one place.

Every status the coordinator sends is chosen here: servicers raise the domain errors of
``coordinator.errors`` (or let the store's errors through), and ``mapped`` (unary
methods) or ``abort`` (anywhere with a context) turns them into a status, a message and,
for ``NotLeader``, the redirect metadata of ``agentmesh.protocol``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc

from agentmesh.protocol import ELECTION_METADATA, ELECTION_PENDING, LEADER_METADATA
from coordinator import errors
from coordinator.errors import Fenced, StoreError, StoreUnavailable

log = logging.getLogger(__name__)

CODES: dict[type[errors.MeshError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}

R = TypeVar("R")
Handler = Callable[..., Awaitable[R]]


def code_for(error: errors.MeshError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in CODES:
            return CODES[cls]
    return grpc.StatusCode.INTERNAL


def trailers(error: errors.MeshError) -> tuple[tuple[str, str], ...]:
    """The trailing metadata that goes with ``error``: a follower names the leader (or
    says an election is pending), which the SDK and CLI follow."""
    if isinstance(error, errors.NotLeader):
        if error.leader_address:
            return ((LEADER_METADATA, error.leader_address),)
        return ((ELECTION_METADATA, ELECTION_PENDING),)
    return ()


async def abort(context: grpc.aio.ServicerContext, error: errors.MeshError) -> NoReturn:
    """End the call with ``error``'s status, message and trailers."""
    metadata = trailers(error)
    if metadata:
        context.set_trailing_metadata(metadata)
    await context.abort(code_for(error), str(error))
    raise AssertionError("unreachable")  # context.abort always raises


def mapped(fn: Handler[R]) -> Handler[R]:
    """Decorate a unary servicer method: domain errors abort with their code,
    anything unexpected aborts INTERNAL (logged) instead of killing the call."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await fn(self, request, context)
        except errors.MeshError as e:
            await abort(context, e)
        except (Fenced, StoreUnavailable) as e:
            # Deposed, or etcd unreachable past the store's patience: nothing was
            # written; the caller should retry (at the leader).
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
        except StoreError as e:
            log.error("store error in %s: %s", fn.__qualname__, e)
            await context.abort(grpc.StatusCode.INTERNAL, f"store error: {e}")
        except (grpc.aio.AbortError, grpc.RpcError):
            raise
        except Exception:
            log.exception("unexpected error in %s", fn.__qualname__)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {fn.__name__}")
        raise AssertionError("unreachable")  # context.abort always raises

    return wrapper
