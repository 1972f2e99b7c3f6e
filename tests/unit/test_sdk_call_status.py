"""The agent acts on the status the coordinator sent, even when grpc.aio replaces it with
a racing write's ``INTERNAL: Internal error from Core`` (grpc/grpc#36066). A real
grpc.aio server ends a bidirectional stream; the race is reproduced with the very call
grpc.aio makes when a write fails in Core (``set_internal_error``), before and after the
server's status arrives."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from agent_sdk._call_status import EndStatus, write_race

METHOD = "/test.Ends/Stream"
RACE = "Internal error from Core"


class Ending:
    """A server whose stream ends, when ``end`` is set, with ``code`` (OK: cleanly)."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code
        self.end = asyncio.Event()
        self.server = grpc.aio.server()

        async def stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.send_initial_metadata(())
            await self.end.wait()
            if code != grpc.StatusCode.OK:
                await context.abort(code, "stream revoked: the token was removed")

        handler = grpc.stream_stream_rpc_method_handler(stream)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.Ends", {"Stream": handler}),)
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")


async def serve(code: grpc.StatusCode) -> tuple[Ending, grpc.aio.Channel]:
    ending = Ending(code)
    await ending.server.start()
    return ending, grpc.aio.insecure_channel(f"127.0.0.1:{ending.port}")


def race() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.INTERNAL, grpc.aio.Metadata(), grpc.aio.Metadata(), RACE
    )


async def test_the_status_sent_is_kept_when_a_racing_write_replaces_it_afterwards() -> None:
    ending, channel = await serve(grpc.StatusCode.UNAUTHENTICATED)
    try:
        call: Any = channel.stream_stream(METHOD)()
        ended = EndStatus(call)
        ending.end.set()
        assert await call.code() == grpc.StatusCode.UNAUTHENTICATED
        call._cython_call.set_internal_error("a write failed in Core")  # what grpc.aio does
        assert (await call.code(), await call.details()) == (grpc.StatusCode.INTERNAL, RACE)
        real = await ended.real(call, race())
        assert real is not None and real.code() == grpc.StatusCode.UNAUTHENTICATED
        assert real.details() == "stream revoked: the token was removed"
    finally:
        await channel.close()
        await ending.server.stop(None)


async def test_the_status_sent_replaces_a_racing_write_that_came_first() -> None:
    ending, channel = await serve(grpc.StatusCode.PERMISSION_DENIED)
    try:
        call: Any = channel.stream_stream(METHOD)()
        ended = EndStatus(call)
        await call.initial_metadata()  # the server holds the stream open
        call._cython_call.set_internal_error("a write failed in Core")
        assert ended.first is not None and write_race(ended.first)
        waiting = asyncio.create_task(ended.real(call, race()))
        await asyncio.sleep(0)
        assert not waiting.done()  # the coordinator's status has not arrived yet
        ending.end.set()
        real = await asyncio.wait_for(waiting, 5)
        assert real is not None and real.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await channel.close()
        await ending.server.stop(None)


async def test_a_stream_ended_ok_is_no_error_and_other_errors_stay_as_they_are() -> None:
    ending, channel = await serve(grpc.StatusCode.OK)
    try:
        call: Any = channel.stream_stream(METHOD)()
        ended = EndStatus(call)
        ending.end.set()
        assert await call.code() == grpc.StatusCode.OK
        assert await ended.real(call, race()) is None
        other = grpc.aio.AioRpcError(
            grpc.StatusCode.INTERNAL, grpc.aio.Metadata(), grpc.aio.Metadata(), "a bug"
        )
        assert not write_race(other) and await ended.real(call, other) is other
    finally:
        await channel.close()
        await ending.server.stop(None)
