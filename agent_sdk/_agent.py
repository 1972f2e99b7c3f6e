"""The agent side: connect, say Hello, run capability handlers, report back.

``Agent`` is the public face and the reconnect loop: each attempt is one ``Session``
(``_agent_session``: the stream and its reader, writer and heartbeat loops), the tasks
run in the ``Runner`` (``_agent_runner``), and ``Failover`` (``_failover``) says where
and when the next attempt goes.  When the stream breaks, handlers keep running and
their results are sent on the next session (the coordinator records a result once,
whichever attempt it came from).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from agent_sdk._agent_runner import Handler, Outbox, Runner, running_loop
from agent_sdk._agent_session import Session, channel_options
from agent_sdk._auth import auth_metadata, resolve_token
from agent_sdk._discovery import (
    COORDINATOR_ENV,
    EtcdCredentials,
    election_pending,
    find_leader,
    ignored_environment,
    leader_hint,
    parse_address,
    resolve_address,
)
from agent_sdk._errors import AgentRejectedError, UnavailableError, rpc_error
from agent_sdk._failover import (
    ETCD_LOOKUP_TIMEOUT,
    Failover,
    GiveUp,
    Outcome,
    Result,
    Retry,
    Route,
)
from agent_sdk._namespace import namespace_metadata, resolve_namespace
from agent_sdk._status import StatusReporter, report_retry
from agent_sdk._task import AgentStats
from agent_sdk._tls import TLS
from agentmesh import __version__, payload
from agentmesh.v1 import agent_pb2, types_pb2

# channel_options too: bench/ builds its channels with it.
__all__ = ["PROTOCOL_VERSION", "SDK_VERSION", "Agent", "channel_options"]

log = logging.getLogger("agent_sdk")

SDK_VERSION = __version__
PROTOCOL_VERSION = 1

F = TypeVar("F", bound=Handler)

# Errors from the coordinator that reconnecting cannot fix.
_FATAL = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
}


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
    - ``etcd://h1:2379,h2:2379[/prefix]``: ask etcd for the current leader whenever
      there is no replica to try (prefix default ``/agentmesh``; a secured etcd via the
      ``AGENTMESH_ETCD_CA_CERT/CERT/KEY/USER/PASSWORD`` environment variables).

    A malformed address (or half-given etcd credentials) raises ValueError here, as
    does ``max_concurrency < 1``.  Redirects: a cluster replica that is not the leader
    refuses the stream with UNAVAILABLE and names the leader in trailing metadata
    ``agentmesh-leader``; the agent then reconnects to that address at once (logged at
    INFO).  After ``MAX_REDIRECTS`` (3) redirects in a row without a Welcome it falls
    back to the usual jittered backoff, so replicas that point at each other cannot
    cause a reconnect storm.  When a connection fails without a redirect, the next
    attempt goes to the next seed (seed list) or to a freshly resolved leader (etcd); a
    redirected address that fails is dropped in favour of the seeds/etcd, and in a
    cluster the next attempt comes after ~0.25 s (an election follows a dead leader).
    A replica that answers ``agentmesh-election: pending`` (alive, no leader known yet)
    is asked again every ~0.25 s without growing the backoff, so an agent reconnects
    as soon as a new leader is up.  Otherwise reconnects back off exponentially from
    ``reconnect_min`` to ``reconnect_max`` (0.1 s to 2 s), jittered.  A Welcome resets
    these counts.  ``coordinator`` keeps the configured string; ``connected_to`` is the
    replica of the current session.

    TLS: ``tls`` (an ``agent_sdk.TLS``: the CA, a client certificate for mutual TLS, a
    server name override), else ``TLS.from_env()`` (``AGENTMESH_TLS_*``; none set:
    plain text).  Every replica the agent connects to, redirected or failed over to, is
    dialled with it.  Unreadable or half-given TLS files raise ValueError here; later
    on (a certificate being replaced) they fail that attempt only, which is retried as
    above, and so is a failed handshake (logged with what to check).  The ``tls``
    attribute holds the settings; one assigned to it is used from the next connection.

    Authentication: ``token``, a bearer token sent as ``authorization: Bearer <token>``
    metadata when the Connect stream is opened (every session, to every replica), else
    the environment variable ``AGENTMESH_TOKEN`` (unset or empty: no token);
    ``token=""`` sends none whatever the environment says.  A token with whitespace,
    line breaks or characters outside printable ASCII raises ValueError here.  The token
    is kept out of every message, log line and repr; it is fixed when the agent is made.

    Namespace: ``namespace``, else ``AGENTMESH_NAMESPACE``, else ``default``, sent with
    the Connect stream: the agent joins that namespace and is routed its tasks only.
    A malformed name raises ValueError here.

    Tracing: when the coordinator traces (``otlp_endpoint``), each task carries the
    W3C ``traceparent`` of its attempt (``task.traceparent``) and the handler runs in a
    span ``run <capability>``, its child, made current (sync handlers too), so spans
    the handler opens join the workflow's trace. Spans go to ``tracer_provider`` (an
    OpenTelemetry ``TracerProvider``), else to the global one
    (``opentelemetry.trace.set_tracer_provider``; none set: no-op spans).

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
        tls: TLS | None = None,
        token: str | None = None,
        namespace: str | None = None,
        tracer_provider: Any = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        # The Connect call's metadata, once (a bad token fails here); never logged or shown.
        #: The namespace it acts in (``namespace``, else $AGENTMESH_NAMESPACE, else default).
        self.namespace = resolve_namespace(namespace)
        self._metadata = auth_metadata(resolve_token(token)) + namespace_metadata(self.namespace)
        self.tls = TLS.from_env() if tls is None else tls
        if self.tls is not None:
            self.tls.credentials()  # unreadable files fail here, not at the first connect
        self.name = name
        self.coordinator, source = resolve_address(coordinator)
        address = parse_address(self.coordinator)
        # An explicit argument wins over the environment, but not silently (said at start).
        self._ignored_env = ignored_environment(self.coordinator, source)
        self._status = StatusReporter(log)
        self._shutdown_requested = False  # request_shutdown() was called (maybe before serve)
        if address.uses_etcd:
            EtcdCredentials.from_env()  # half-given etcd credentials fail here, not later
        self._route = Route(address)  # where to connect next
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
        self._outbox = Outbox()
        self._runner = Runner(
            name, self._outbox, self.stats, max_concurrency, max_message_bytes, tracer_provider
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._connected = asyncio.Event()
        self._draining = False
        self._shutdown_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------- public API

    def capability(self, name: str, *, description: str = "") -> Callable[[F], F]:
        """Decorator: the decorated function handles tasks of capability ``name``
        (see ``add_capability``; the function is returned unchanged)."""

        def register(fn: F) -> F:
            self.add_capability(name, fn, description=description)
            return fn

        return register

    def add_capability(self, name: str, handler: Handler, *, description: str = "") -> None:
        """Handle tasks of capability ``name`` with ``handler`` (an async function, or
        a plain one run in the thread pool).  Capabilities are advertised in each Hello:
        one added while serving is advertised from the next session on.  Raises ValueError
        when ``name`` is empty or already has a handler."""
        self._runner.add(name, handler, description)

    @property
    def capabilities(self) -> list[str]:
        """The names of the registered capabilities, in the order they were added."""
        return list(self._runner.handlers)

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
        ``await agent.serve()`` there.  Raises what ``serve()`` raises.
        """
        if running_loop() is not None:
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
        the agent's loop closed, it does nothing.  Never raises.
        """
        self._shutdown_requested = True
        loop = self._loop
        if loop is None:
            return  # serve() sees the flag when it starts
        if running_loop() is loop:
            self._begin_shutdown()
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to stop
            loop.call_soon_threadsafe(self._begin_shutdown)

    def _begin_shutdown(self) -> None:
        """On the agent's loop: start ``shutdown()`` once."""
        if self._loop is not None and self._shutdown_task is None:
            self._shutdown_task = self._loop.create_task(self.shutdown())

    async def wait_connected(self, timeout: float | None = None) -> str:
        """Wait until the coordinator welcomes this agent (at once if it is connected
        now) and return its agent id.  Raises TimeoutError after ``timeout`` seconds (None:
        no limit).  Cancelling it stops the waiting only; the agent serves on."""
        await asyncio.wait_for(self._connected.wait(), timeout)
        return self.agent_id

    async def serve(self) -> None:
        """Connect and serve tasks until ``shutdown()``; reconnect when the stream breaks.

        Runs on the calling event loop (handlers that are plain functions run in a thread
        pool).  Raises ValueError when no capability is registered, AgentRejectedError
        when the coordinator refuses the Hello for good (an invalid Hello, an
        ``agent_id`` that another session holds): reconnecting cannot help.  Every other
        failure is retried (see the class docstring).  Cancelling it drops the
        connection at once (no drain) and cancels running handlers (a sync handler's
        thread runs on to its end: threads cannot be stopped).
        """
        if not self._runner.handlers:
            raise ValueError("register at least one capability before serving")
        loop = self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._outbox.open(loop)
        self._runner.open(self.max_concurrency)
        session = Session(
            self.name,
            self._outbox,
            self._runner,
            self._status,
            self._stop,
            self.max_message_bytes,
            metadata=self._metadata,
        )
        failover = Failover.reconnect(self._route, self.reconnect_min, self.reconnect_max)
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
                outcome = await self._attempt(session)
                self._connected.clear()
                self._connected_to = None
                if self._stop.is_set():
                    break
                if outcome is None:
                    continue  # joining afresh under a new id
                decision = failover.next(outcome, loop.time())
                if isinstance(decision, GiveUp):
                    raise decision.error
                if isinstance(decision, Retry):
                    report_retry(self._status, self.name, outcome, decision)
                    if decision.delay > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._stop.wait(), decision.delay)
            self._status.report("", "stopped", "agent %s: stopped", self.name)
        finally:
            self._runner.close()

    async def shutdown(self, grace: float | None = None) -> None:
        """Drain: take no new tasks, let running ones finish (up to ``grace``
        seconds, default ``drain_timeout``; then they are cancelled), send their
        results, disconnect; ``serve()`` then returns.  Does nothing when the agent is
        not serving or already stopping; never raises.

        Await it on the agent's own loop (from another thread or a signal handler use
        ``request_shutdown()``).  Cancelling it stops the waiting, not the drain it
        announced: the agent keeps serving its running tasks but takes no new ones.
        """
        if self._stop is None or self._stop.is_set():
            return
        grace = self.drain_timeout if grace is None else grace
        self._draining = True
        self._outbox.send(agent_pb2.AgentMessage(goodbye=agent_pb2.Goodbye(reason="draining")))
        running = list(self._runner.running.values())
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
        await self._outbox.flushed(5.0, self._connected.is_set)
        self._stop.set()
        self._outbox.wake_writer()

    # -------------------------------------------------------------- reconnect

    async def _attempt(self, session: Session) -> Outcome | None:
        """Connect once and serve the session until it ends; say how it ended.

        None: try again at once (the coordinator refused to resume our old id, so the
        agent joins afresh).
        """
        sessions = self.stats.sessions
        target = ""

        def ended(result: Result, reason: str, kind: str, **kw: Any) -> Outcome:
            welcomed = self.stats.sessions > sessions
            return Outcome(result, target, reason, welcomed=welcomed, kind=kind, **kw)

        try:
            target = await self._next_target()
            await session.run(target, self.tls, self._hello(), self._welcomed)
            return ended(Result.CLOSED, "the coordinator closed the stream", "closed")
        except grpc.aio.AioRpcError as e:
            # A refusal to resume comes before the Welcome; after it, PERMISSION_DENIED
            # is the coordinator revoking this stream's grant (fatal, as below).
            if self.stats.sessions == sessions and self._resume_refused(e):
                return None
            error = rpc_error(e)
            reason = str(error)  # "CODE: details", with what to check if TLS failed
            if e.code() in _FATAL:
                rejected = AgentRejectedError(f"coordinator refused agent {self.name!r}: {reason}")
                return ended(Result.FATAL, reason, e.code().name, error=rejected)
            return Outcome.refusal(
                target,
                leader_hint(e),
                election_pending(e),
                reason=reason,
                error=error,
                welcomed=self.stats.sessions > sessions,
                kind=e.code().name,
            )
        except UnavailableError as e:
            result = Result.UNAVAILABLE if target else Result.NO_LEADER
            return ended(result, str(e), str(e), error=e)
        except asyncio.InvalidStateError:
            # grpc.aio raises this (not an RpcError) when we write to a
            # stream the coordinator already closed: the stream is gone.
            return ended(Result.UNAVAILABLE, "the coordinator closed the stream", "closed")

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

    async def _next_target(self) -> str:
        """Where to connect next: the route's target, else the leader etcd names
        (UnavailableError when it names none)."""
        target = self._route.target()
        if target is None:
            address = self._route.address
            target = await find_leader(address.etcd, address.prefix, ETCD_LOOKUP_TIMEOUT)
            self._route.resolved(target)
        return target

    def _hello(self) -> agent_pb2.AgentMessage:
        return agent_pb2.AgentMessage(
            hello=agent_pb2.Hello(
                name=self.name,
                type=self.type,
                capabilities=[
                    types_pb2.Capability(name=n, description=desc)
                    for n, (_, desc) in self._runner.handlers.items()
                ],
                # Draining with tasks in flight: rejoin only to report them.
                max_concurrency=0 if self._draining else self.max_concurrency,
                labels=self.labels,
                sdk_version=SDK_VERSION,
                agent_id=self.agent_id,
                protocol_version=PROTOCOL_VERSION,
                session_secret=self._session_secret,
            )
        )

    def _welcomed(self, target: str, welcome: agent_pb2.Welcome) -> None:
        self.agent_id = welcome.agent_id
        self._session_secret = welcome.session_secret
        limit = welcome.max_message_bytes or self.max_message_bytes
        self._runner.payload_limit = payload.max_bytes(limit)
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
