"""An agent's task side: run a handler per dispatched task, queue what it reports.

``Outbox`` holds what waits for the session's writer (acks, progress, results, and
control messages such as heartbeats); the agent's loop pushes to it, a sync handler's
thread too (``push_threadsafe``).  ``Runner`` starts a handler per dispatched task,
cancels one on request, and turns what it returns or raises into one bounded
TaskResult.  Both outlive sessions: a result that is ready while the stream is down
waits in the outbox for the next session.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agent_sdk._decode import Undecodable
from agent_sdk._errors import TaskError
from agent_sdk._task import AgentStats, Dispatch, Task, clip, safe_struct
from agent_sdk._tracing import TaskSpans
from agentmesh import payload, wire
from agentmesh.v1 import agent_pb2, types_pb2

log = logging.getLogger("agent_sdk")

Handler = Callable[[Task], Any]


class Outbox:
    """Messages waiting for the writer, in order: control messages first, then task
    updates.  Use it on the agent's loop, except ``push_threadsafe``."""

    def __init__(self) -> None:
        self.updates: list[agent_pb2.TaskUpdate] = []
        self.control: list[agent_pb2.AgentMessage] = []
        self.writing = False  # the writer holds messages it took but has not sent yet
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve a writer on ``loop`` (what is queued stays queued)."""
        if self._loop is not loop or self._wake is None:
            self._loop, self._wake = loop, asyncio.Event()

    def push(self, update: agent_pb2.TaskUpdate) -> None:
        self.updates.append(update)
        self.wake_writer()

    def send(self, message: agent_pb2.AgentMessage) -> None:
        self.control.append(message)
        self.wake_writer()

    def push_threadsafe(self, update: agent_pb2.TaskUpdate) -> None:
        """``push`` from any thread (dropped when no loop would send it: before ``open``,
        or from a sync handler's thread that outlived its agent's loop)."""
        loop = self._loop
        if loop is None:
            return
        if running_loop() is loop:
            self.push(update)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(self.push, update)

    def wake_writer(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def take(self) -> tuple[list[agent_pb2.AgentMessage], list[agent_pb2.TaskUpdate]]:
        """Wait until something is queued, then take all of it (``writing`` is set)."""
        assert self._wake is not None, "open() first"
        await self._wake.wait()
        self._wake.clear()
        control, self.control = self.control, []
        updates, self.updates = self.updates, []
        self.writing = True
        return control, updates

    def put_back(
        self, control: list[agent_pb2.AgentMessage], updates: list[agent_pb2.TaskUpdate]
    ) -> None:
        """Taken messages that are not known to be sent: first in line for the next
        session (heartbeats excepted: a stale one means nothing)."""
        self.writing = False
        self.control[:0] = [m for m in control if m.WhichOneof("body") != "heartbeat"]
        self.updates[:0] = updates

    def take_updates(self) -> list[agent_pb2.TaskUpdate]:
        """Remove and return the queued task updates (``agent_sdk.testing``)."""
        updates, self.updates = self.updates, []
        return updates

    async def flushed(self, timeout: float, connected: Callable[[], bool]) -> None:
        """Wait (at most ``timeout`` s) until everything queued is written, the batch in
        hand included, while ``connected()`` holds."""
        deadline = time.monotonic() + timeout
        while self.updates or self.control or self.writing:
            if not connected() or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.005)


class Runner:
    """The capability handlers of one agent and the tasks running them."""

    def __init__(
        self,
        name: str,
        outbox: Outbox,
        stats: AgentStats,
        max_concurrency: int,
        max_message_bytes: int,
        tracer_provider: Any = None,
    ) -> None:
        self.name = name
        self.spans = TaskSpans(name, tracer_provider)
        self.outbox = outbox
        self.stats = stats
        self.max_concurrency = max_concurrency
        self.handlers: dict[str, tuple[Handler, str]] = {}
        self.running: dict[Dispatch, asyncio.Task[None]] = {}
        # Results over this fail instead (the coordinator's limit, from its Welcome).
        self.payload_limit = payload.max_bytes(max_message_bytes)
        self._executor: ThreadPoolExecutor | None = None

    def add(self, name: str, handler: Handler, description: str) -> None:
        if not name:
            raise ValueError("capability name must not be empty")
        if name in self.handlers:
            raise ValueError(f"capability {name!r} already has a handler")
        self.handlers[name] = (handler, description)

    def open(self, max_concurrency: int) -> None:
        """Make the thread pool that sync handlers run in (once per ``serve``)."""
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix=self.name)

    def close(self) -> None:
        """Cancel every running handler and drop the thread pool (a sync handler's
        thread runs on to its end: threads cannot be stopped)."""
        for t in list(self.running.values()):
            t.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def start(self, d: agent_pb2.TaskDispatch) -> None:
        """Run a dispatched task (a duplicate delivery of a running attempt is ignored)."""
        key = Dispatch(d.task_id, d.attempt)
        if key in self.running:
            return
        self.stats.received += 1
        # Create the handler before queueing the ack: a quick handler then runs
        # before the writer wakes, and its result travels in the ack's message.
        self.running[key] = asyncio.create_task(self._run(key, d), name=f"task-{d.task_id}")
        self.outbox.push(
            agent_pb2.TaskUpdate(task_id=d.task_id, attempt=d.attempt, ack=agent_pb2.TaskAck())
        )
        n = len(self.running)
        self.stats.in_flight = n
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, n)

    def cancel(self, task_id: str, attempt: int, reason: str) -> None:
        t = self.running.get(Dispatch(task_id, attempt))
        if t is not None:
            log.info("task %s cancelled: %s", task_id, reason)
            t.cancel()

    def undecodable(self, msg: Undecodable) -> None:
        """Run what still decoded; fail the tasks that did not (retrying cannot help)."""
        log.error(
            "agent %s: undecodable message from the coordinator (%d task(s) lost to it): %s",
            self.name,
            len(msg.failed),
            msg.error,
        )
        for d in msg.decoded:
            self.start(d)
        for task_id, attempt in msg.failed:
            error = types_pb2.TaskError(
                type="UndecodableTask",
                message=f"the agent could not decode this task: {msg.error}",
            )
            result = agent_pb2.TaskResult(error=error)
            self.outbox.push(agent_pb2.TaskUpdate(task_id=task_id, attempt=attempt, result=result))

    async def run_detached(self, d: agent_pb2.TaskDispatch) -> None:
        """Run one task outside a session (``agent_sdk.testing``)."""
        self.outbox.open(asyncio.get_running_loop())
        if self._executor is None:
            self.open(self.max_concurrency)
        await self._run(Dispatch(d.task_id, d.attempt), d)

    async def _run(self, key: Dispatch, d: agent_pb2.TaskDispatch) -> None:
        started = time.monotonic()
        result = agent_pb2.TaskResult()
        try:
            entry = self.handlers.get(d.capability)
            if entry is None:
                raise TaskError(
                    f"agent {self.name!r} has no handler for capability {d.capability!r}",
                    type="UnknownCapability",
                )
            with self.spans.attempt(d):
                out = await self._call(entry[0], Task(self.outbox, d))
            try:
                payload.check(out, "the handler's output", self.payload_limit)
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
                    details=safe_struct(e.details, self.payload_limit),
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
            self.outbox.push(
                agent_pb2.TaskUpdate(task_id=d.task_id, attempt=d.attempt, result=result)
            )
            self.running.pop(key, None)
            self.stats.in_flight = len(self.running)

    async def _call(self, handler: Handler, task: Task) -> Any:
        if inspect.iscoroutinefunction(handler):
            return await handler(task)
        loop = asyncio.get_running_loop()
        # In this task's context (its current span, for one): executor threads have none.
        call = functools.partial(contextvars.copy_context().run, handler, task)
        out = await loop.run_in_executor(self._executor, call)
        if inspect.isawaitable(out):
            return await out
        return out


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
