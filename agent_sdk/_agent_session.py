"""One session of an agent: a Connect stream, from its Hello to its end.

``Session.run(target, hello)`` opens a channel, writes the Hello and waits for the
Welcome; then three loops share the stream until one of them ends or ``stop`` is set:
the reader starts and cancels tasks (``Runner``), the writer sends what the ``Outbox``
holds, packed into as few messages as fit, and the heartbeat loop keeps the agent alive
in the registry and ends a session whose coordinator went silent.  On ``stop`` the
session ends gracefully: flush, half-close, and let the coordinator close the stream,
so that everything written is read.  Errors propagate; the agent turns them into an
``Outcome`` for ``Failover``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import grpc

from agent_sdk._agent_runner import Outbox, Runner
from agent_sdk._auth import Metadata
from agent_sdk._call_status import EndStatus, write_race
from agent_sdk._decode import Undecodable, decode
from agent_sdk._errors import UnavailableError
from agent_sdk._status import StatusReporter
from agent_sdk._task import packed
from agent_sdk._tls import TLS, open_channel
from agentmesh.protocol import CLIENT_KEEPALIVE_MS, CLIENT_KEEPALIVE_TIMEOUT_MS
from agentmesh.v1 import agent_pb2

CONNECT = f"/{agent_pb2.DESCRIPTOR.services_by_name['AgentService'].full_name}/Connect"


def channel_options(max_message_bytes: int = 4 * 1024 * 1024) -> list[tuple[str, int]]:
    """The gRPC channel options of every SDK channel."""
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Keepalive is off by default: without it a vanished host can hang a stream.
        ("grpc.keepalive_time_ms", CLIENT_KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", CLIENT_KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # We drive reconnects ourselves; grpc's own backoff can reach minutes.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]


class Session:
    """The stream side of one agent; ``run`` is one session, called once per attempt."""

    def __init__(
        self,
        name: str,
        outbox: Outbox,
        runner: Runner,
        status: StatusReporter,
        stop: asyncio.Event,
        max_message_bytes: int,
        *,
        metadata: Metadata = (),
    ) -> None:
        self.name = name
        self._metadata = metadata  # sent with each Connect call (the bearer token, if any)
        self.outbox = outbox
        self.runner = runner
        self.status = status
        self.stop = stop
        self.max_message_bytes = max_message_bytes
        self.message_limit = max_message_bytes  # lowered to the coordinator's (Welcome)
        self.live = False  # between the Welcome and the end of the session
        self._last_received = 0.0

    async def run(
        self,
        target: str,
        tls: TLS | None,
        hello: agent_pb2.AgentMessage,
        welcomed: Callable[[str, agent_pb2.Welcome], None],
    ) -> None:
        """Connect to ``target`` (over TLS unless ``tls`` is None) and serve until the
        stream ends or ``stop`` is set; ``welcomed(target, welcome)`` is called before
        serving starts.  Raises the call's error (``grpc.aio.AioRpcError``: it may name
        the leader), or UnavailableError when a TLS file cannot be read or the stream
        ended before its Welcome or went silent.  The call carries ``metadata`` (the
        agent's bearer token, if any)."""
        try:
            channel = open_channel(target, tls, channel_options(self.max_message_bytes))
        except ValueError as e:  # e.g. a certificate being replaced: try again later
            raise UnavailableError(f"cannot connect to {target}: {e}") from None
        async with channel:
            call = channel.stream_stream(
                CONNECT,
                request_serializer=agent_pb2.AgentMessage.SerializeToString,
                response_deserializer=decode,  # never raises: see _decode
            )(metadata=self._metadata)
            ended = EndStatus(call)
            try:
                with contextlib.suppress(asyncio.InvalidStateError):
                    # A replica that refuses us may end the call before the Hello is
                    # written; read() below then raises its status (and metadata).
                    await call.write(hello)
                first = await call.read()
                if (
                    not isinstance(first, agent_pb2.CoordinatorMessage)
                    or first.WhichOneof("body") != "welcome"
                ):
                    raise UnavailableError("coordinator closed the stream before Welcome")
                welcome = first.welcome
                limit = welcome.max_message_bytes or self.max_message_bytes
                self.message_limit = min(limit, self.max_message_bytes)
                self.live = True
                welcomed(target, welcome)
                await self._serve(call, welcome)
            except grpc.aio.AioRpcError as e:
                status = await ended.real(call, e)  # not a write's report of the end
                if status is None:
                    return  # the coordinator ended the stream OK
                if status is e:
                    raise
                raise status from None
            finally:
                self.live = False
                call.cancel()

    async def _serve(self, call: Any, welcome: agent_pb2.Welcome) -> None:
        interval = max(0.05, welcome.heartbeat_interval_ms / 1000)
        # More tolerant than the coordinator is of us: a slow answer is not a dead peer.
        silence = max(interval * 3, 1.5 * welcome.heartbeat_timeout_ms / 1000)
        self._last_received = time.monotonic()
        parts = [
            asyncio.create_task(self._read_loop(call), name="reader"),
            asyncio.create_task(self._write_loop(call), name="writer"),
            asyncio.create_task(self._heartbeat_loop(interval, silence), name="heartbeat"),
            asyncio.create_task(self.stop.wait(), name="stop"),
        ]
        reader, writer, heartbeat, stop = parts
        try:
            done, _ = await asyncio.wait(parts, return_when=asyncio.FIRST_COMPLETED)
            if stop in done and not reader.done():
                # Graceful end: let the writer finish, half-close, and let the
                # coordinator close the stream, so everything written is read.
                heartbeat.cancel()
                await self.outbox.flushed(5.0, lambda: self.live)
                for p in (writer, heartbeat):
                    p.cancel()
                await asyncio.gather(writer, heartbeat, return_exceptions=True)
                with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                    await call.done_writing()
                await asyncio.wait([reader], timeout=5.0)
            elif reader not in done and any(_found_closed(p) for p in done):
                # A write found the stream closed by the coordinator: the reader is
                # about to raise why (the call's status, e.g. a revoked credential's),
                # which says more than the write (and may be fatal).
                done |= (await asyncio.wait([reader], timeout=1.0))[0]
        finally:
            for p in parts:
                p.cancel()
            await asyncio.gather(*parts, return_exceptions=True)
        errors = [
            exc
            for p in done
            if p is not stop and not p.cancelled() and (exc := p.exception()) is not None
        ]
        if errors:
            # Prefer the call's own status (it may name the leader) to a write that
            # merely found the stream closed.
            rpc = [e for e in errors if isinstance(e, grpc.aio.AioRpcError)]
            sent = [e for e in rpc if not write_race(e)]
            raise (sent or rpc or errors)[0]

    async def _read_loop(self, call: Any) -> None:
        while True:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                return
            self._last_received = time.monotonic()
            if isinstance(msg, Undecodable):
                self.runner.undecodable(msg)
                continue
            kind = msg.WhichOneof("body")
            if kind == "tasks":
                for d in msg.tasks.tasks:
                    self.runner.start(d)
            elif kind == "cancel":
                self.runner.cancel(msg.cancel.task_id, msg.cancel.attempt, msg.cancel.reason)
            elif kind == "drain":
                self.status.report(
                    "drain",
                    msg.drain.reason,
                    "agent %s: the coordinator asks it to drain: %s",
                    self.name,
                    msg.drain.reason,
                )

    async def _write_loop(self, call: Any) -> None:
        while True:
            control, updates = await self.outbox.take()
            try:
                for m in control:
                    await call.write(m)
                for part in packed(updates, self.message_limit // 2):
                    await call.write(
                        agent_pb2.AgentMessage(updates=agent_pb2.TaskUpdates(updates=part))
                    )
                self.outbox.writing = False
            except BaseException:
                self.outbox.put_back(control, updates)  # not known to be sent
                raise

    async def _heartbeat_loop(self, interval: float, silence: float) -> None:
        """Send heartbeats; end the session when the coordinator has been silent
        for ``silence`` seconds (it answers every heartbeat), since such a stream
        is half-open or was closed on the other side while we were stalled."""
        while True:
            quiet = time.monotonic() - self._last_received
            if quiet > silence:
                raise UnavailableError(f"no message from the coordinator for {quiet:.1f}s")
            heartbeat = agent_pb2.Heartbeat(in_flight=len(self.runner.running), healthy=True)
            self.outbox.send(agent_pb2.AgentMessage(heartbeat=heartbeat))
            await asyncio.sleep(interval)


def _found_closed(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` failed writing to a call that had already ended (or was ending)."""
    if task.cancelled():
        return False
    error = task.exception()
    return isinstance(error, asyncio.InvalidStateError) or write_race(error)
