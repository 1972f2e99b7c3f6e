"""The agent side: connect, say Hello, run capability handlers, report back.

An ``Agent`` keeps one bidirectional stream to the coordinator. Three loops
share it per session: the reader starts a handler per task (and cancels on
request), the writer packs every update that is ready into one message, and
the heartbeat loop keeps the agent alive in the registry. When the stream
breaks the agent reconnects with bounded, jittered backoff; handlers keep
running and their results are sent on the next session (the coordinator
records a result once, whichever attempt it came from).

In cluster mode the agent follows the leader: see ``Agent`` for the address forms
and the redirect rules (``agent_sdk._discovery`` parses and resolves addresses).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc

from agent_sdk._decode import Undecodable, decode
from agent_sdk._discovery import (
    COORDINATOR_ENV,
    EtcdCredentials,
    election_pending,
    ignored_environment,
    leader_hint,
    parse_address,
    resolve_address,
)
from agent_sdk._errors import AgentRejectedError, TaskError, UnavailableError
from agent_sdk._reconnect import Outcome, Route, report_retry
from agent_sdk._status import StatusReporter
from agent_sdk._task import AgentStats, Dispatch, Task, clip, packed, safe_struct
from agentmesh import __version__, payload, wire
from agentmesh.protocol import CLIENT_KEEPALIVE_MS, CLIENT_KEEPALIVE_TIMEOUT_MS
from agentmesh.v1 import agent_pb2, types_pb2

log = logging.getLogger("agent_sdk")

SDK_VERSION = __version__
PROTOCOL_VERSION = 1
CONNECT = f"/{agent_pb2.DESCRIPTOR.services_by_name['AgentService'].full_name}/Connect"

Handler = Callable[["Task"], Any]
F = TypeVar("F", bound=Handler)

# Errors from the coordinator that reconnecting cannot fix.
_FATAL = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
}


def channel_options(max_message_bytes: int = 4 * 1024 * 1024) -> list[tuple[str, int]]:
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


class Agent:
    """An agent process's connection to the mesh.

    Register handlers with ``@agent.capability("name")`` (async functions run on
    the loop; plain functions run in a thread pool sized ``max_concurrency``),
    then ``agent.run()`` (blocks; on the main thread SIGTERM/SIGINT drain and stop it) or
    ``await agent.serve()`` (inside an event loop that is already running).
    A handler's return value (JSON-serializable) is the task's output; raising
    fails the task (``RetryableTaskError`` lets the coordinator retry it).

    ``coordinator`` is the argument if given, else the environment variable
    ``AGENTMESH_COORDINATOR``, else ``localhost:50051`` (when the argument overrides a
    different ``AGENTMESH_COORDINATOR``, the agent says so when it starts).  It is one of:

    - ``host:port``: one coordinator;
    - ``h1:p1,h2:p2,h3:p3``: seed replicas of a cluster, tried in turn;
    - ``etcd://h1:2379,h2:2379[/prefix]``: read the current leader from etcd before each
      connection attempt (prefix default ``/agentmesh``; a secured etcd via the
      ``AGENTMESH_ETCD_CA_CERT/CERT/KEY/USER/PASSWORD`` environment variables).

    A malformed address raises ValueError here.  Redirects: a cluster replica that is not
    the leader refuses the stream with UNAVAILABLE and names the leader in trailing
    metadata ``agentmesh-leader``; the agent then reconnects to that address at once
    (logged at INFO).  After ``MAX_QUICK_REDIRECTS`` (3) redirects in a row without a
    Welcome it falls back to the usual jittered backoff, so replicas that point at each
    other cannot cause a reconnect storm.  When a connection fails without a redirect,
    the next attempt goes to the next seed (seed list) or to a freshly resolved leader
    (etcd); a redirected address that fails is dropped in favour of the seeds/etcd.
    A replica that answers ``agentmesh-election: pending`` (alive, no leader known yet)
    is asked again every ~0.25 s without growing the backoff, so an agent reconnects
    as soon as a new leader is up. Otherwise reconnects back off exponentially from
    ``reconnect_min`` to ``reconnect_max`` (0.1 s to 2 s), jittered.
    ``coordinator`` keeps the configured string; ``connected_to`` is the replica of the
    current session.

    Connection state changes (connected, disconnected, reconnect attempts and why,
    redirects, shutdown) are logged at INFO on the ``agent_sdk`` logger; an application
    that configured no logging at all also sees each change once on stderr
    (see ``agent_sdk._status``).
    """

    def __init__(
        self,
        name: str,
        coordinator: str | None = None,
        *,
        type: str | None = None,
        max_concurrency: int = 1,
        labels: dict[str, str] | None = None,
        agent_id: str | None = None,
        reconnect_min: float = 0.1,
        reconnect_max: float = 2.0,
        drain_timeout: float = 30.0,
        max_message_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.name = name
        self.coordinator, source = resolve_address(coordinator)
        self._address = parse_address(self.coordinator)
        # An explicit argument wins over the environment, but not silently (said at start).
        self._ignored_env = ignored_environment(self.coordinator, source)
        self._status = StatusReporter(log)
        self._shutdown_requested = False  # request_shutdown() was called (maybe before serve)
        if self._address.uses_etcd:
            EtcdCredentials.from_env()  # half-given etcd credentials fail here, not later
        self._route = Route(self._address)  # where to connect next, and when
        self._connected_to: str | None = None
        self.type = type or name
        self.max_concurrency = max_concurrency
        self.labels = dict(labels or {})
        self.agent_id = agent_id or ""
        self._configured_id = bool(agent_id)
        self._session_secret = ""  # from the last Welcome: proves agent_id is ours
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.drain_timeout = drain_timeout
        self.max_message_bytes = max_message_bytes
        self.stats = AgentStats()
        self._handlers: dict[str, tuple[Handler, str]] = {}
        self._running: dict[Dispatch, asyncio.Task[None]] = {}
        self._updates: list[agent_pb2.TaskUpdate] = []
        self._control: list[agent_pb2.AgentMessage] = []
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._connected = asyncio.Event()
        self._draining = False
        self._executor: ThreadPoolExecutor | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._last_received = 0.0
        self._writing = False
        # Results over this fail instead (the coordinator's limit, from its Welcome).
        self._payload_limit = payload.max_bytes(max_message_bytes)
        self._message_limit = max_message_bytes

    # ------------------------------------------------------------- public API

    def capability(self, name: str, *, description: str = "") -> Callable[[F], F]:
        """Decorator: handle tasks for capability ``name``."""

        def register(fn: F) -> F:
            self.add_capability(name, fn, description=description)
            return fn

        return register

    def add_capability(self, name: str, handler: Handler, *, description: str = "") -> None:
        if not name:
            raise ValueError("capability name must not be empty")
        if name in self._handlers:
            raise ValueError(f"capability {name!r} already has a handler")
        self._handlers[name] = (handler, description)

    @property
    def capabilities(self) -> list[str]:
        return list(self._handlers)

    @property
    def connected_to(self) -> str | None:
        """The address of the coordinator replica this agent is connected to (None
        between sessions); ``coordinator`` is the address as configured."""
        return self._connected_to

    def run(self) -> None:
        """Serve in a new event loop, blocking this thread, until asked to stop; then
        drain: finish in-flight tasks, report, return.

        On the main thread SIGTERM/SIGINT start that shutdown.  On any other thread no
        signal handlers are installed (Python allows them on the main thread only): stop
        it with ``request_shutdown()``, which is safe from any thread.  Called inside a
        running event loop (Jupyter, an async web app) it raises RuntimeError: use
        ``await agent.serve()`` there.
        """
        if _running_loop() is not None:
            raise RuntimeError(
                f"Agent.run() cannot be called from a running event loop (agent "
                f"{self.name!r}): use `await agent.serve()` instead, and "
                "`await agent.shutdown()` to stop it"
            )
        asyncio.run(self._run_with_signals())

    async def _run_with_signals(self) -> None:
        """``serve()``; on the main thread SIGTERM/SIGINT call ``request_shutdown``."""
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError):  # loops without signals
                    loop.add_signal_handler(sig, self.request_shutdown)
        await self.serve()

    def request_shutdown(self) -> None:
        """Start a graceful shutdown (see ``shutdown``) without waiting for it.

        Safe from a signal handler, from the agent's loop and from any other thread
        (there it hands the request to the loop with ``call_soon_threadsafe``).  Asked
        before ``serve()``/``run()`` starts, they stop as soon as they start; asked after
        the agent's loop closed, it does nothing.
        """
        self._shutdown_requested = True
        loop = self._loop
        if loop is None:
            return  # serve() sees the flag when it starts
        if _running_loop() is loop:
            self._begin_shutdown()
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to stop
            loop.call_soon_threadsafe(self._begin_shutdown)

    def _begin_shutdown(self) -> None:
        """On the agent's loop: start ``shutdown()`` once."""
        if self._loop is not None and self._shutdown_task is None:
            self._shutdown_task = self._loop.create_task(self.shutdown())

    async def wait_connected(self, timeout: float | None = None) -> str:
        """Wait until the coordinator welcomed this agent; return its agent id."""
        await asyncio.wait_for(self._connected.wait(), timeout)
        return self.agent_id

    async def serve(self) -> None:
        """Connect and serve tasks until ``shutdown()``; reconnect when the stream breaks.

        Runs on the calling event loop (handlers that are plain functions run in a thread
        pool).  Raises AgentRejectedError when the coordinator refuses the Hello.
        Cancelling it drops the connection at once (no drain) and cancels running
        handlers (a sync handler's thread runs on to its end: threads cannot be stopped).
        """
        if not self._handlers:
            raise ValueError("register at least one capability before serving")
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix=self.name)
        if self._shutdown_requested:
            self._stop.set()  # request_shutdown() came before serve() started
        if self._ignored_env is not None:
            self._status.report(
                "coordinator",
                "environment ignored",
                "agent %s: using coordinator %s (given in code); %s=%s is ignored",
                self.name,
                self.coordinator,
                COORDINATOR_ENV,
                self._ignored_env,
            )
        try:
            while not self._stop.is_set():
                outcome = await self._attempt()
                self._connected.clear()
                self._connected_to = None
                if self._stop.is_set():
                    break
                if outcome is None:
                    continue  # joining afresh under a new id
                delay, quick = self._route.delay_after(
                    outcome, self.reconnect_min, self.reconnect_max
                )
                report_retry(self._status, self.name, outcome, delay, quick)
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), delay)
            self._status.report("", "stopped", "agent %s: stopped", self.name)
        finally:
            for t in list(self._running.values()):
                t.cancel()
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def shutdown(self, grace: float | None = None) -> None:
        """Drain: take no new tasks, let running ones finish (up to ``grace``
        seconds, default ``drain_timeout``; then they are cancelled), send their
        results, disconnect; ``serve()`` then returns.

        Await it on the agent's own loop (from another thread or a signal handler use
        ``request_shutdown()``).  Cancelling it stops the waiting, not the drain it
        announced: the agent keeps serving its running tasks but takes no new ones.
        """
        if self._stop is None or self._stop.is_set():
            return
        grace = self.drain_timeout if grace is None else grace
        self._draining = True
        self._send_control(agent_pb2.AgentMessage(goodbye=agent_pb2.Goodbye(reason="draining")))
        running = list(self._running.values())
        self._status.report(
            "",
            "shutting down",
            "agent %s: shutting down: finishing %d running task(s) (up to %gs), then disconnecting",
            self.name,
            len(running),
            grace,
        )
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for t in late:
                t.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        # Give the writer a moment to flush the last results.
        await self._flushed(5.0)
        self._stop.set()
        assert self._wake is not None
        self._wake.set()

    async def _flushed(self, timeout: float) -> None:
        """Wait (bounded) until every queued message is written, the one being
        written included, while connected."""
        deadline = time.monotonic() + timeout
        while self._updates or self._control or self._writing:
            if not self._connected.is_set() or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.005)

    # -------------------------------------------------------------- reconnect

    async def _attempt(self) -> Outcome | None:
        """Connect once and serve the session until it ends; say how it ended.

        None: try again at once (the coordinator refused to resume our old id, so the
        agent joins afresh).  Raises AgentRejectedError when reconnecting cannot help.
        """
        sessions = self.stats.sessions
        target = ""

        def ended(reason: str, kind: str, **kw: Any) -> Outcome:
            return Outcome(target, self.stats.sessions > sessions, reason, kind, **kw)

        try:
            target = await self._next_target()
            await self._session(target)
            return ended("the coordinator closed the stream", "closed", ended=True)
        except grpc.aio.AioRpcError as e:
            if self._resume_refused(e):
                return None
            if e.code() in _FATAL:
                raise AgentRejectedError(
                    f"coordinator refused agent {self.name!r}: {e.code().name}: {e.details()}"
                ) from None
            leader = leader_hint(e)
            return ended(
                f"{e.code().name}: {e.details()}",
                e.code().name,
                leader=leader,
                election_pending=leader is None and election_pending(e),
            )
        except UnavailableError as e:
            return ended(str(e), str(e))
        except asyncio.InvalidStateError:
            # grpc.aio raises this (not an RpcError) when we write to a
            # stream the coordinator already closed: the stream is gone.
            return ended("the coordinator closed the stream", "closed")

    def _resume_refused(self, e: grpc.aio.AioRpcError) -> bool:
        """Our old identity is held by another session (we were gone long enough to be
        replaced): forget it, to join afresh under a new id."""
        if (
            e.code() != grpc.StatusCode.PERMISSION_DENIED
            or not self.agent_id
            or self._configured_id
        ):
            return False
        log.warning(
            "agent %s: coordinator refused to resume id %s (%s); joining with a new id",
            self.name,
            self.agent_id,
            e.details(),
        )
        self.agent_id, self._session_secret = "", ""
        return True

    # ---------------------------------------------------------------- session

    async def _next_target(self) -> str:
        """Where to connect next (``Route.next_target``)."""
        return await self._route.next_target()

    def _hello(self) -> agent_pb2.AgentMessage:
        return agent_pb2.AgentMessage(
            hello=agent_pb2.Hello(
                name=self.name,
                type=self.type,
                capabilities=[
                    types_pb2.Capability(name=n, description=desc)
                    for n, (_, desc) in self._handlers.items()
                ],
                max_concurrency=0 if self._draining else self.max_concurrency,
                labels=self.labels,
                sdk_version=SDK_VERSION,
                agent_id=self.agent_id,
                protocol_version=PROTOCOL_VERSION,
                session_secret=self._session_secret,
            )
        )

    async def _session(self, target: str) -> bool:
        """One stream's life. Returns True if the coordinator welcomed us."""
        assert self._stop is not None
        async with grpc.aio.insecure_channel(
            target, options=channel_options(self.max_message_bytes)
        ) as channel:
            call = channel.stream_stream(
                CONNECT,
                request_serializer=agent_pb2.AgentMessage.SerializeToString,
                response_deserializer=decode,  # never raises: see _decode
            )()
            with contextlib.suppress(asyncio.InvalidStateError):
                # A replica that refuses us may end the call before the Hello is
                # written; read() below then raises its status (and metadata).
                await call.write(self._hello())
            first = await call.read()
            if (
                not isinstance(first, agent_pb2.CoordinatorMessage)
                or first.WhichOneof("body") != "welcome"
            ):
                raise UnavailableError("coordinator closed the stream before Welcome")
            welcome = first.welcome
            self.agent_id = welcome.agent_id
            self._session_secret = welcome.session_secret
            coordinator_limit = welcome.max_message_bytes or self.max_message_bytes
            self._message_limit = min(coordinator_limit, self.max_message_bytes)
            self._payload_limit = payload.max_bytes(coordinator_limit)
            self.stats.sessions += 1
            self._connected_to = target
            self._connected.set()
            self._status.reset()  # a later loss or failure is a change again
            self._status.report(
                "",
                f"connected to {target} as {self.agent_id}",
                "agent %s connected to %s as %s",
                self.name,
                target,
                self.agent_id,
            )
            interval = max(0.05, welcome.heartbeat_interval_ms / 1000)
            # More tolerant than the coordinator is of us: a slow answer is not a dead peer.
            silence = max(interval * 3, 1.5 * welcome.heartbeat_timeout_ms / 1000)
            self._last_received = time.monotonic()
            parts = [
                asyncio.create_task(self._read_loop(call), name="reader"),
                asyncio.create_task(self._write_loop(call), name="writer"),
                asyncio.create_task(self._heartbeat_loop(interval, silence), name="heartbeat"),
                asyncio.create_task(self._stop.wait(), name="stop"),
            ]
            reader, writer, heartbeat, stop = parts
            try:
                done, _ = await asyncio.wait(parts, return_when=asyncio.FIRST_COMPLETED)
                if stop in done and not reader.done():
                    # Graceful end: let the writer finish, half-close, and let the
                    # coordinator close the stream, so everything written is read.
                    heartbeat.cancel()
                    await self._flushed(5.0)
                    for p in (writer, heartbeat):
                        p.cancel()
                    await asyncio.gather(writer, heartbeat, return_exceptions=True)
                    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                        await call.done_writing()
                    await asyncio.wait([reader], timeout=5.0)
            finally:
                for p in parts:
                    p.cancel()
                await asyncio.gather(*parts, return_exceptions=True)
                call.cancel()
            errors = [
                exc
                for p in done
                if p is not stop and not p.cancelled() and (exc := p.exception()) is not None
            ]
            if errors:
                # Prefer the call's own status (it may name the leader) to a write
                # that merely found the stream closed.
                rpc = [e for e in errors if isinstance(e, grpc.aio.AioRpcError)]
                raise (rpc or errors)[0]
            return True

    async def _read_loop(self, call: Any) -> None:
        while True:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                return
            self._last_received = time.monotonic()
            if isinstance(msg, Undecodable):
                self._undecodable(msg)
                continue
            kind = msg.WhichOneof("body")
            if kind == "tasks":
                for d in msg.tasks.tasks:
                    self._start(d)
            elif kind == "cancel":
                t = self._running.get(Dispatch(msg.cancel.task_id, msg.cancel.attempt))
                if t is not None:
                    log.info("task %s cancelled: %s", msg.cancel.task_id, msg.cancel.reason)
                    t.cancel()
            elif kind == "drain":
                self._status.report(
                    "drain",
                    msg.drain.reason,
                    "agent %s: the coordinator asks it to drain: %s",
                    self.name,
                    msg.drain.reason,
                )

    def _undecodable(self, msg: Undecodable) -> None:
        """Run what still decoded; fail the tasks that did not (retrying cannot help)."""
        log.error(
            "agent %s: undecodable message from the coordinator (%d task(s) lost to it): %s",
            self.name,
            len(msg.failed),
            msg.error,
        )
        for d in msg.decoded:
            self._start(d)
        for task_id, attempt in msg.failed:
            error = types_pb2.TaskError(
                type="UndecodableTask",
                message=f"the agent could not decode this task: {msg.error}",
            )
            result = agent_pb2.TaskResult(error=error)
            self._push(agent_pb2.TaskUpdate(task_id=task_id, attempt=attempt, result=result))

    async def _write_loop(self, call: Any) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            control, self._control = self._control, []
            updates, self._updates = self._updates, []
            self._writing = True
            try:
                for m in control:
                    await call.write(m)
                for part in packed(updates, self._message_limit // 2):
                    await call.write(
                        agent_pb2.AgentMessage(updates=agent_pb2.TaskUpdates(updates=part))
                    )
                self._writing = False
            except BaseException:
                self._writing = False
                # Not known to be sent: send again on the next session.
                self._control[:0] = [m for m in control if m.WhichOneof("body") != "heartbeat"]
                self._updates[:0] = updates
                raise

    async def _heartbeat_loop(self, interval: float, silence: float) -> None:
        """Send heartbeats; end the session when the coordinator has been silent
        for ``silence`` seconds (it answers every heartbeat), since such a stream
        is half-open or was closed on the other side while we were stalled."""
        while True:
            quiet = time.monotonic() - self._last_received
            if quiet > silence:
                raise UnavailableError(f"no message from the coordinator for {quiet:.1f}s")
            self._send_control(
                agent_pb2.AgentMessage(
                    heartbeat=agent_pb2.Heartbeat(in_flight=len(self._running), healthy=True)
                )
            )
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ tasks

    def _send_control(self, msg: agent_pb2.AgentMessage) -> None:
        self._control.append(msg)
        if self._wake is not None:
            self._wake.set()

    def _push(self, update: agent_pb2.TaskUpdate) -> None:
        self._updates.append(update)
        if self._wake is not None:
            self._wake.set()

    def _push_threadsafe(self, update: agent_pb2.TaskUpdate) -> None:
        loop = self._loop
        if loop is None:
            return
        if _running_loop() is loop:
            self._push(update)
        else:
            loop.call_soon_threadsafe(self._push, update)

    def _start(self, d: agent_pb2.TaskDispatch) -> None:
        key = Dispatch(d.task_id, d.attempt)
        if key in self._running:
            return  # duplicate delivery of an attempt we are running
        self.stats.received += 1
        # Create the handler before queueing the ack: a quick handler then runs
        # before the writer wakes, and its result travels in the ack's message.
        self._running[key] = asyncio.create_task(self._run(key, d), name=f"task-{d.task_id}")
        self._push(
            agent_pb2.TaskUpdate(task_id=d.task_id, attempt=d.attempt, ack=agent_pb2.TaskAck())
        )
        n = len(self._running)
        self.stats.in_flight = n
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, n)

    async def _run(self, key: Dispatch, d: agent_pb2.TaskDispatch) -> None:
        started = time.monotonic()
        result = agent_pb2.TaskResult()
        try:
            entry = self._handlers.get(d.capability)
            if entry is None:
                raise TaskError(
                    f"agent {self.name!r} has no handler for capability {d.capability!r}",
                    type="UnknownCapability",
                )
            out = await self._call(entry[0], Task(self, d))
            try:
                payload.check(out, "the handler's output", self._payload_limit)
            except payload.PayloadError as e:
                raise TaskError(str(e), type="PAYLOAD_TOO_LARGE") from None
            try:
                result.output.CopyFrom(wire.to_value(out))
            except wire.PayloadError as e:
                raise TaskError(f"handler output {e}", type="OutputNotSerializable") from None
            self.stats.completed += 1
        except asyncio.CancelledError:
            self.stats.cancelled += 1
            result.error.CopyFrom(
                types_pb2.TaskError(
                    type="CANCELLED", message="cancelled on the agent", retryable=True
                )
            )
        except TaskError as e:
            self.stats.failed += 1
            result.error.CopyFrom(
                types_pb2.TaskError(
                    type=e.type,
                    message=clip(e.message),
                    retryable=e.retryable,
                    details=safe_struct(e.details, self._payload_limit),
                )
            )
        except Exception as e:
            self.stats.failed += 1
            result.error.CopyFrom(
                types_pb2.TaskError(
                    type=type(e).__name__,
                    message=clip(str(e) or type(e).__name__),
                    retryable=bool(getattr(e, "retryable", False)),
                    stack=clip(traceback.format_exc(limit=20)),
                )
            )
        finally:
            result.duration_ms = int((time.monotonic() - started) * 1000)
            self._push(agent_pb2.TaskUpdate(task_id=d.task_id, attempt=d.attempt, result=result))
            self._running.pop(key, None)
            self.stats.in_flight = len(self._running)

    async def _run_detached(self, key: Dispatch, d: agent_pb2.TaskDispatch) -> None:
        """Run one task outside a session (``agent_sdk.testing``)."""
        self._loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix=self.name)
        await self._run(key, d)

    async def _call(self, handler: Handler, task: Task) -> Any:
        if inspect.iscoroutinefunction(handler):
            return await handler(task)
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(self._executor, handler, task)
        if inspect.isawaitable(out):
            return await out
        return out


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
