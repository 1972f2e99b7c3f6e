"""The status a stream ended with, as the coordinator sent it.

grpc.aio reports a write that races the end of a call (the coordinator ended the stream
while the agent was writing a heartbeat) as ``INTERNAL: Internal error from Core``, and
puts that status in place of the one the coordinator sent when the failed write is
processed after it (grpc/grpc#36066). The coordinator's status is what the agent must act
on: a revoked credential's ``UNAUTHENTICATED`` is fatal, a lost leader's
``UNAVAILABLE`` names the next one. ``EndStatus`` reads the status the moment the call is
done, before a racing write can replace it, and ``real`` gives it back in place of such
an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc

T = TypeVar("T")

#: What grpc.aio says when a write failed in Core (the call ended under it).
_CORE_FAILED = "Internal error from Core"
#: How long ``real`` waits for the coordinator's status when the race's came first.
_SETTLE_S = 1.0


def write_race(error: BaseException | None) -> bool:
    """Whether ``error`` is grpc.aio's report of a write that raced the end of the call."""
    return (
        isinstance(error, grpc.aio.AioRpcError)
        and error.code() == grpc.StatusCode.INTERNAL
        and error.details() == _CORE_FAILED
    )


class _Waits(Exception):
    """A coroutine that was to complete at once would wait."""


def _now(coroutine: Coroutine[Any, Any, T]) -> T:
    """The value of a coroutine that completes without waiting (a done call's status
    parts), read from a plain callback; ``_Waits`` if it would wait."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise _Waits


def _settled(call: grpc.aio.Call) -> grpc.aio.AioRpcError | None:
    """The done ``call``'s status as an error (code OK included); None if not done."""
    if not call.done():
        return None
    try:
        return grpc.aio.AioRpcError(
            _now(call.code()),
            _now(call.initial_metadata()),
            _now(call.trailing_metadata()),
            _now(call.details()),
            _now(call.debug_error_string()),
        )
    except _Waits:
        return None


class EndStatus:
    """The first status ``call`` ended with, read as it ends (see the module docstring)."""

    def __init__(self, call: grpc.aio.Call) -> None:
        self.first: grpc.aio.AioRpcError | None = None
        call.add_done_callback(self._done)

    def _done(self, call: Any) -> None:
        self.first = _settled(call)

    async def real(
        self, call: grpc.aio.Call, error: grpc.aio.AioRpcError
    ) -> grpc.aio.AioRpcError | None:
        """The coordinator's status in place of a write race's ``error`` (None: it ended
        the stream OK); any other error as it is. When the race's status came first,
        the coordinator's replaces it as it arrives: wait up to ``_SETTLE_S`` for it."""
        if not write_race(error):
            return error
        status = self.first
        deadline = asyncio.get_running_loop().time() + _SETTLE_S
        while status is None or write_race(status):
            if asyncio.get_running_loop().time() >= deadline:
                return error
            await asyncio.sleep(0.01)
            status = _settled(call)
        return None if status.code() == grpc.StatusCode.OK else status
