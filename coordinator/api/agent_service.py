"""AgentService.Connect: one bidirectional stream per agent.

The handler reads agent messages in a task of its own and writes coordinator
messages from the agent's outbound queue, packing every task that is ready
into one TaskBatch (never waiting on a timer to fill a batch).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

import grpc

from agentmesh.v1 import agent_pb2, agent_pb2_grpc
from coordinator import domain as d
from coordinator.api import convert
from coordinator.api.decoding import Malformed
from coordinator.api.guard import check_capabilities, revocation
from coordinator.api.scope import namespace_of
from coordinator.api.status import abort
from coordinator.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, MeshError
from coordinator.mesh import Mesh

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10.0
PROTOCOL_VERSION = 1

_CLOSE = object()
# How the stream of an agent that said goodbye may end and still be a departure (not
# a fault): the agent closed it, its call ended (cancelled: ""), or broke off.
_CLOSED_BY_AGENT = "agent closed its stream"
_BROKEN = "stream broken"
_DEPARTURES = ("", _CLOSED_BY_AGENT, _BROKEN)


class StreamSink:
    """The mesh's handle on one agent stream. Methods only enqueue."""

    __slots__ = ("closed", "goodbye", "queue", "reason")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.closed = False
        self.reason = ""
        self.goodbye = ""  # the agent's Goodbye reason, once it said goodbye

    def send_tasks(self, tasks: Sequence[d.Task]) -> None:
        if not self.closed:
            self.queue.put_nowait([convert.dispatch(t) for t in tasks])

    def send_cancel(self, task_id: str, attempt: int, reason: str) -> None:
        if not self.closed:
            msg = agent_pb2.CancelTask(task_id=task_id, attempt=attempt, reason=reason)
            self.queue.put_nowait(agent_pb2.CoordinatorMessage(cancel=msg))

    def send_drain(self, reason: str) -> None:
        if not self.closed:
            self.queue.put_nowait(
                agent_pb2.CoordinatorMessage(drain=agent_pb2.Drain(reason=reason))
            )

    def close(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.reason = reason
            self.queue.put_nowait(_CLOSE)


class AgentService(agent_pb2_grpc.AgentServiceServicer):
    """``AgentService.Connect``: one agent's stream. Reads the Hello (INVALID_ARGUMENT,
    DEADLINE_EXCEEDED or FAILED_PRECONDITION when it is missing, malformed or too new),
    joins the mesh, then relays tasks down and updates up until either side ends it.
    When the stream ends, however it ends, the agent leaves the mesh and what it held is
    dispatched again."""

    def __init__(self, mesh: Mesh, coordinator_id: str) -> None:
        self._mesh = mesh
        self._coordinator_id = coordinator_id

    async def Connect(
        self,
        request_iterator: AsyncIterator[agent_pb2.AgentMessage | Malformed],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[agent_pb2.CoordinatorMessage]:
        try:
            first = await asyncio.wait_for(anext(request_iterator), HELLO_TIMEOUT_S)
        except StopAsyncIteration:
            return
        except TimeoutError:
            await abort(
                context,
                DeadlineExceeded(f"no Hello within {HELLO_TIMEOUT_S:.0f}s of opening the stream"),
            )
        if isinstance(first, Malformed):
            await abort(context, InvalidArgument(first.message))
        if first.WhichOneof("body") != "hello":
            await abort(
                context,
                InvalidArgument(
                    f"the first message on an agent stream must be hello, got "
                    f"{first.WhichOneof('body') or 'an empty message'}"
                ),
            )
        hello = first.hello
        if hello.protocol_version > PROTOCOL_VERSION:
            await abort(
                context,
                FailedPrecondition(
                    f"protocol version {hello.protocol_version} is newer than this "
                    f"coordinator's ({PROTOCOL_VERSION})"
                ),
            )
        sink = StreamSink()
        try:
            spec = convert.agent_spec(hello, namespace_of(context))
            check_capabilities([c.name for c in spec.capabilities])
            agent = self._mesh.join(spec, sink, "stream")
        except MeshError as e:
            await abort(context, e)
        settings = self._mesh.settings
        yield agent_pb2.CoordinatorMessage(
            welcome=agent_pb2.Welcome(
                agent_id=agent.id,
                session_id=agent.session_id,
                heartbeat_interval_ms=settings.heartbeat_interval_ms,
                heartbeat_timeout_ms=settings.heartbeat_timeout_ms,
                max_message_bytes=settings.max_message_bytes,
                coordinator_id=self._coordinator_id,
                session_secret=agent.session_secret,
            )
        )
        reader = asyncio.create_task(self._read(agent, request_iterator, sink))
        queue = sink.queue
        batch = agent_pb2.CoordinatorMessage
        # Half the message limit: a payload is at most a quarter (agentmesh.payload),
        # so a batch always fits, and one big task simply travels alone.
        limit = settings.max_message_bytes // 2
        try:
            # Written inline, not through a nested generator: this is the hot path.
            while True:
                item = await queue.get()
                if isinstance(item, list):
                    # Pack every task that is ready into one batch, up to the limit.
                    dispatches = item
                    nxt: object = None
                    while not queue.empty():
                        nxt = queue.get_nowait()
                        if not isinstance(nxt, list):
                            break
                        dispatches.extend(nxt)
                        nxt = None
                    part: list[agent_pb2.TaskDispatch] = []
                    size = 0
                    for dispatch in dispatches:
                        n = dispatch.ByteSize()
                        if part and size + n > limit:
                            yield batch(tasks=agent_pb2.TaskBatch(tasks=part))
                            part, size = [], 0
                        part.append(dispatch)
                        size += n
                    yield batch(tasks=agent_pb2.TaskBatch(tasks=part))
                    item = nxt
                    if item is None:
                        continue
                if item is _CLOSE:
                    break
                assert isinstance(item, agent_pb2.CoordinatorMessage)
                yield item
        finally:
            reader.cancel()
            if self._mesh.is_current(agent):  # not replaced by a newer session
                if sink.goodbye and sink.reason in _DEPARTURES:
                    # It said goodbye, then its stream ended (however): a departure.
                    self._mesh.leave(agent.id, sink.goodbye, graceful=True)
                else:
                    self._mesh.leave(agent.id, sink.reason or revocation() or "stream closed")
        if isinstance(reader_error := _exception(reader), MeshError):
            await abort(context, reader_error)

    async def _read(
        self,
        agent: d.Agent,
        requests: AsyncIterator[agent_pb2.AgentMessage | Malformed],
        sink: StreamSink,
    ) -> None:
        mesh = self._mesh
        try:
            async for msg in requests:
                if isinstance(msg, Malformed):
                    raise msg.error()
                mesh.touch(agent)
                kind = msg.WhichOneof("body")
                if kind == "updates":
                    for u in msg.updates.updates:
                        self._update(agent, u)
                elif kind == "heartbeat":
                    mesh.heartbeat(agent, msg.heartbeat.healthy)
                    sink.queue.put_nowait(
                        agent_pb2.CoordinatorMessage(
                            heartbeat_ack=agent_pb2.HeartbeatAck(server_time=convert.ts(d.utcnow()))
                        )
                    )
                elif kind == "flow":
                    mesh.set_credits(agent, msg.flow.credits)
                elif kind == "goodbye":
                    sink.goodbye = msg.goodbye.reason or "said goodbye"
                    mesh.drain_agent(agent)
                elif kind == "hello":
                    raise InvalidArgument("hello may only be sent once per stream")
                else:
                    raise InvalidArgument("empty agent message (no body set)")
            sink.close(_CLOSED_BY_AGENT)
        except asyncio.CancelledError:
            raise
        except MeshError as e:
            sink.close(f"protocol error: {e}")
            raise
        except grpc.RpcError:
            sink.close(_BROKEN)
        except Exception:
            log.exception(
                "agent %s: unexpected error reading stream",
                agent.id,
                extra={"agent_id": agent.id, "namespace": agent.namespace},
            )
            sink.close("internal error")
            raise

    def _update(self, agent: d.Agent, u: agent_pb2.TaskUpdate) -> None:
        kind = u.WhichOneof("kind")
        if kind == "result":
            r = u.result
            if r.WhichOneof("outcome") == "error":
                self._mesh.on_result(
                    agent,
                    u.task_id,
                    u.attempt,
                    failure=convert.from_failure(r.error),
                    duration_ms=r.duration_ms,
                )
            else:
                self._mesh.on_result(
                    agent,
                    u.task_id,
                    u.attempt,
                    output=convert.from_value(r.output),
                    duration_ms=r.duration_ms,
                )
        elif kind == "ack":
            self._mesh.on_ack(u.task_id, u.attempt)
        elif kind == "progress":
            self._mesh.on_progress(u.task_id, u.attempt, u.progress.fraction, u.progress.message)
        elif kind == "output":
            self._mesh.on_output(u.task_id, u.attempt, u.output.chunk)
        else:
            raise InvalidArgument(
                f"task update for {u.task_id!r} has no ack, progress, output or result"
            )


def _exception(task: asyncio.Task[None]) -> BaseException | None:
    if not task.done() or task.cancelled():
        return None
    return task.exception()
