"""What a handler works with: the ``Task`` it receives, the agent's ``AgentStats``, and
the helpers that turn results and errors into bounded protocol messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from agentmesh import payload, wire
from agentmesh.v1 import agent_pb2


class _Updates(Protocol):
    """Where a task's progress goes (the agent's outbox; any thread may call it)."""

    def push_threadsafe(self, update: agent_pb2.TaskUpdate) -> None: ...


class _Done:
    """An already-finished awaitable, so ``task.progress()`` works with or without await."""

    __slots__ = ()

    def __await__(self) -> Any:
        return
        yield


@dataclass(frozen=True, slots=True)
class Dispatch:
    task_id: str
    attempt: int


class Task:
    """What a capability handler receives: the task's input and its context.

    Attributes: ``id``, ``attempt`` (1 for the first delivery), ``capability``,
    ``input`` (a dict), ``deadline`` (aware datetime or None), ``idempotency_key``
    (the same for every attempt: use it to make side effects idempotent),
    ``name``, ``execution_id``, ``step_id``, ``labels``, and ``traceparent`` (the W3C
    Trace Context of the coordinator's span of this attempt, "" when it does not trace;
    the handler already runs in a child span of it, see ``Agent``).
    """

    __slots__ = (
        "_updates",
        "attempt",
        "capability",
        "deadline",
        "execution_id",
        "id",
        "idempotency_key",
        "input",
        "labels",
        "name",
        "step_id",
        "traceparent",
    )

    def __init__(self, updates: _Updates, d: agent_pb2.TaskDispatch) -> None:
        self._updates = updates
        self.id: str = d.task_id
        self.attempt: int = d.attempt
        self.capability: str = d.capability
        self.input: dict[str, Any] = wire.from_struct(d.input)
        self.deadline: datetime | None = wire.from_timestamp(d.deadline)
        self.idempotency_key: str = d.idempotency_key
        self.name: str = d.name
        self.execution_id: str = d.execution_id
        self.step_id: str = d.step_id
        self.labels: dict[str, str] = dict(d.labels)
        self.traceparent: str = d.traceparent

    def progress(self, fraction: float, message: str = "") -> _Done:
        """Report progress (``fraction`` from 0 to 1, and a ``message``) to the
        coordinator, without blocking.  Safe from async handlers (``await``
        it or not: it is queued at once) and from sync handlers running in a thread.
        Queued while the stream is down and sent with the next session."""
        update = agent_pb2.TaskUpdate(
            task_id=self.id,
            attempt=self.attempt,
            progress=agent_pb2.TaskProgress(fraction=fraction, message=message),
        )
        self._updates.push_threadsafe(update)
        return _Done()

    def stream(self, chunk: str) -> _Done:
        """Stream partial output (an LLM's tokens) while the task runs: subscribers see
        each chunk as a ``task.output`` event, in order, with its offset in this
        attempt's output.  Like ``progress``: queued at once (``await`` it or not),
        safe from threads, sent with the next session if the stream is down.  The
        chunks are not the result: return that as usual."""
        if not isinstance(chunk, str):
            raise TypeError(f"stream() takes text, not {type(chunk).__name__}")
        if chunk:
            update = agent_pb2.TaskUpdate(
                task_id=self.id, attempt=self.attempt, output=agent_pb2.TaskOutput(chunk=chunk)
            )
            self._updates.push_threadsafe(update)
        return _Done()

    def __repr__(self) -> str:
        return f"Task(id={self.id!r}, capability={self.capability!r}, attempt={self.attempt})"


@dataclass(slots=True)
class AgentStats:
    """Counters of one ``Agent`` (``agent.stats``): tasks received, completed, failed
    and cancelled, running now (``in_flight``) and at most (``peak_in_flight``), and
    sessions (Welcomes) so far."""

    received: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    sessions: int = 0


MAX_TEXT = 16_384  # an error's message or stack beyond this is cut


def clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " ... (cut)"


def safe_struct(details: dict[str, Any] | None, limit_bytes: int) -> Any:
    if not details:
        return None
    try:
        payload.check(details, "error details", limit_bytes)
        return wire.to_struct(details)
    except payload.PayloadError:
        return wire.to_struct({"repr": clip(repr(details))})


def packed(updates: list[agent_pb2.TaskUpdate], limit: int) -> list[list[agent_pb2.TaskUpdate]]:
    """``updates`` in order, in messages of at most ``limit`` bytes (a larger single
    update goes alone). Only results can be large; acks and progress count as small."""
    parts: list[list[agent_pb2.TaskUpdate]] = []
    size = limit + 1
    for u in updates:
        n = u.ByteSize() if u.HasField("result") else 64
        if size + n > limit:
            parts.append([])
            size = 0
        parts[-1].append(u)
        size += n
    return parts
