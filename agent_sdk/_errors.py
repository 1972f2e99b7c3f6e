"""Errors of the AgentMesh SDK.

    AgentMeshError
    ├── RpcError                 a call to the coordinator failed; ``.code`` is the gRPC code
    │   ├── InvalidArgumentError
    │   ├── NotFoundError
    │   ├── FailedPreconditionError   e.g. no live agent advertises the capability
    │   ├── UnauthenticatedError      no valid credentials (token, certificate)
    │   ├── PermissionDeniedError     the caller's roles, namespaces or capabilities do not
    │   │                             allow it; acting as an agent without its secret
    │   ├── ResourceExhaustedError    the coordinator refuses new work for now
    │   ├── UnavailableError          coordinator unreachable or shutting down
    │   └── DeadlineExceededError
    ├── AgentRejectedError       the coordinator refused this agent's Hello (fatal)
    └── TaskError                raise from a handler to fail a task in a structured way
        └── RetryableTaskError   ... and let the coordinator retry it

``rpc_error`` maps a grpc ``AioRpcError`` to the most specific of these, in one place
(and says what to check when a connection failed for TLS: ``_tls.tls_hint``).
"""

from __future__ import annotations

from typing import Any

import grpc

from agent_sdk._tls import tls_hint


class AgentMeshError(Exception):
    """Base class of every error the SDK raises."""


class RpcError(AgentMeshError):
    """A call to the coordinator failed: ``code`` is the gRPC status code, ``message``
    the coordinator's explanation.  Its subclasses name the common codes; another code
    (e.g. ALREADY_EXISTS, INTERNAL) is raised as ``RpcError`` itself."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgumentError(RpcError):
    """The request is malformed or refused as given (INVALID_ARGUMENT)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFoundError(RpcError):
    """No such agent, task, workflow or execution (NOT_FOUND)."""

    code = grpc.StatusCode.NOT_FOUND


class FailedPreconditionError(RpcError):
    """Not possible in the current state, e.g. no live agent advertises the capability
    (FAILED_PRECONDITION)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class UnauthenticatedError(RpcError):
    """The coordinator requires credentials and these are missing, unknown, revoked or
    expired (UNAUTHENTICATED): check the token (``AGENTMESH_TOKEN``) or certificate."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(RpcError):
    """The caller may not do this: a permission its roles lack, a namespace or a
    capability outside its grant, or acting as an agent without its session secret
    (PERMISSION_DENIED); the message names what is missing."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(RpcError):
    """The coordinator takes no new work for now (RESOURCE_EXHAUSTED)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnavailableError(RpcError):
    """No coordinator (or no cluster leader) could serve the call: unreachable,
    starting, stopping, or an election outlasting the call (UNAVAILABLE)."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(RpcError):
    """The coordinator did not answer within the call's timeout (DEADLINE_EXCEEDED)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class AgentRejectedError(AgentMeshError):
    """The coordinator refused the agent's Hello; reconnecting will not help."""


class TaskError(AgentMeshError):
    """Raise from a capability handler to fail the task with a structured error.

    Any other exception fails the task too (type = the exception's class name);
    this class lets you set ``type``, ``details`` and ``retryable`` explicitly.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        details: dict[str, Any] | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type = type or self.__class__.__name__
        self.details = details
        if retryable is not None:
            self.retryable = retryable


class RetryableTaskError(TaskError):
    """A failure that may go away on another attempt (the coordinator retries it)."""

    retryable = True


_BY_CODE: dict[grpc.StatusCode, type[RpcError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        FailedPreconditionError,
        UnauthenticatedError,
        PermissionDeniedError,
        ResourceExhaustedError,
        UnavailableError,
        DeadlineExceededError,
    )
}


def rpc_error(e: grpc.aio.AioRpcError) -> RpcError:
    """The most specific ``RpcError`` for a failed gRPC call."""
    code = e.code()
    cls = _BY_CODE.get(code, RpcError)
    message = e.details() or code.name
    if code == grpc.StatusCode.UNAVAILABLE and (hint := tls_hint(message)):
        message = f"{hint}; gRPC: {message}"
    return cls(message, code)
