"""The mesh: agents, liveness, routing, flow control and the life of a task.

One ``Mesh`` per coordinator, driven from the event loop (never from threads).
It does no network I/O itself: it hands tasks to each agent's ``AgentSink``,
which must not block, and it uses the loop only for timers.

Invariants:

- An agent never holds more unfinished attempts than its credits: a slot is
  taken when an attempt is sent and freed only when the agent reports on that
  attempt (result) or goes away. A timed-out attempt keeps its slot until then.
- A task finishes once. Results for finished tasks, for unknown attempts and
  failures from superseded attempts change nothing (at-least-once delivery,
  idempotent completion); a success from an earlier attempt is accepted.
- Completions are never refused; only new submissions are (queue full,
  shutting down).
"""

from __future__ import annotations

import asyncio
import heapq
import hmac
import itertools
import logging
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from agentmesh import payload
from coordinator import domain as d
from coordinator.config import Settings
from coordinator.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from coordinator.retry import RetryStrategy
from coordinator.waits import WaitListener, Waits

log = logging.getLogger(__name__)

MAX_CONCURRENCY = 10_000
MAX_ID_CHARS = 128  # agent ids and names: they travel in every listing and log line
TaskListener = Callable[[d.Task], None]


@dataclass(slots=True)
class MeshCounters:
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    retried: int = 0
    redelivered: int = 0
    duplicate_results: int = 0
    total_latency_ms: float = 0.0


class Mesh:
    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.settings = settings
        self._loop = loop or asyncio.get_running_loop()
        self._policy = settings.retry_policy
        self.payload_bytes = payload.max_bytes(settings.max_message_bytes)
        self.agents: dict[str, d.Agent] = {}
        # capability -> connected agents advertising it (insertion-ordered)
        self._by_capability: dict[str, dict[str, d.Agent]] = {}
        self._queues: dict[str, list[tuple[int, int, d.Task]]] = {}
        self._pinned: dict[str, list[tuple[int, int, d.Task]]] = {}
        self.tasks: dict[str, d.Task] = {}
        self._by_idempotency: dict[str, str] = {}
        self._finished: deque[str] = deque()
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._id_prefix = uuid.uuid4().hex[:16]
        self._pending = 0
        self.accepting = True
        self.counters = MeshCounters()
        self._listeners: list[TaskListener] = []
        self._waits = Waits()  # pending tasks no live agent can take (coordinator/waits.py)
        self._idle = asyncio.Event()
        self._idle.set()
        self._active = 0  # tasks assigned or running

    # ---------------------------------------------------------------- agents

    def join(self, spec: d.AgentSpec, sink: d.AgentSink | None, transport: str) -> d.Agent:
        """Admit an agent under a new session secret.

        A ``spec.agent_id`` this mesh knows (connected, or offline and retained) is
        resumed only with the secret of that agent's last session, and then replaces a
        still-open older session (whose tasks are re-dispatched); without it the join is
        refused (PermissionDenied), so nobody can take over another agent's identity
        and the tasks addressed to it. An id the mesh does not know (e.g. after a
        restart) is granted as asked."""
        if not self.accepting:
            raise Unavailable("coordinator is shutting down; connect to another replica or retry")
        if not spec.name.strip():
            raise InvalidArgument("agent name must not be empty")
        for what, value in (("name", spec.name), ("agent_id", spec.agent_id)):
            if len(value) > MAX_ID_CHARS or not value.isprintable():
                raise InvalidArgument(
                    f"agent {what} must be at most {MAX_ID_CHARS} printable characters"
                )
        if not spec.capabilities:
            raise InvalidArgument(f"agent {spec.name!r} advertises no capabilities")
        names = [c.name for c in spec.capabilities]
        if any(not n.strip() for n in names):
            raise InvalidArgument(f"agent {spec.name!r} advertises an empty capability name")
        if not 0 <= spec.max_concurrency <= MAX_CONCURRENCY:
            raise InvalidArgument(
                f"max_concurrency must be between 1 and {MAX_CONCURRENCY}, "
                f"got {spec.max_concurrency}"
            )
        agent_id = spec.agent_id or f"{spec.name}-{uuid.uuid4().hex[:10]}"
        old = self.agents.get(agent_id)
        if old is not None and not hmac.compare_digest(
            old.session_secret.encode(), spec.session_secret.encode()
        ):
            state = "connected" if old.connected else "offline, and still known"
            raise PermissionDenied(
                f"agent id {agent_id!r} belongs to another session ({state}); resuming it "
                "needs the session_secret of that session's Welcome"
            )
        if spec.max_concurrency == 0 and old is None:
            # 0 means "resuming only to finish what I hold": a draining agent whose
            # stream broke. A new agent that takes nothing has no reason to join.
            raise InvalidArgument(
                f"max_concurrency must be between 1 and {MAX_CONCURRENCY}, got 0 "
                "(0 is only for resuming a known agent id while it drains)"
            )
        if old is not None and old.connected:
            # No waits for what the old session held: the new one is about to take it.
            self._lose(old, f"replaced by a new session of agent {agent_id}", check_waits=False)
            if old.sink is not None:
                old.sink.close("replaced by a new session")
        now = d.utcnow()
        agent = d.Agent(
            id=agent_id,
            name=spec.name,
            type=spec.type or spec.name,
            capabilities=spec.capabilities,
            capability_names=frozenset(names),
            max_concurrency=spec.max_concurrency,
            labels=dict(spec.labels),
            sdk_version=spec.sdk_version,
            transport=transport,
            session_id=uuid.uuid4().hex,
            session_secret=secrets.token_urlsafe(24),
            sink=sink,
            credits=spec.max_concurrency,
            connected_at=now,
            last_seen=self._loop.time(),
            last_seen_wall=now,
            draining=spec.max_concurrency == 0,
        )
        if old is not None:
            agent.completed, agent.failed = old.completed, old.failed
            agent.total_duration_ms = old.total_duration_ms
        self.agents[agent_id] = agent
        for name in agent.capability_names:
            self._by_capability.setdefault(name, {})[agent_id] = agent
        log.info("agent %s joined (%s, capabilities %s)", agent_id, transport, sorted(names))
        if self._waits:
            for name in sorted(agent.capability_names):
                self._waits.unblock(("capability", name), agent.id)
            self._waits.unblock(("agent", agent_id), agent.id)
        if old is not None:
            self._check_lost(old)  # capabilities the new session no longer advertises
        self._fill(agent)
        return agent

    def leave(self, agent_id: str, reason: str, graceful: bool = False) -> int:
        """Mark an agent offline and re-dispatch what it held. Returns that count.

        ``graceful``: the agent said goodbye before it went (logged as a departure,
        not as a fault)."""
        agent = self.agents.get(agent_id)
        if agent is None or not agent.connected:
            return 0
        return self._lose(agent, reason, graceful)

    def unregister(self, agent_id: str) -> int:
        agent = self.get_agent(agent_id)
        moved = 0
        if agent.connected:
            moved = self._lose(agent, "unregistered", graceful=True, check_waits=False)
        if agent.sink is not None:
            agent.sink.close("unregistered")
        for _, _, task in self._pinned.pop(agent_id, []):
            if task.status is d.TaskStatus.PENDING:
                self._pending -= 1
                self._finish(
                    task,
                    d.TaskStatus.FAILED,
                    error=d.TaskFailure(d.AGENT_LOST, f"agent {agent_id} was unregistered"),
                )
        del self.agents[agent_id]
        self._check_lost(agent)  # what is queued for its capabilities (pinned ones failed)
        return moved

    def touch(self, agent: d.Agent) -> None:
        """Any message from the agent: it is alive."""
        agent.last_seen = self._loop.time()
        agent.last_seen_wall = d.utcnow()

    def heartbeat(self, agent: d.Agent, healthy: bool = True) -> None:
        """A Heartbeat (or a polling agent's Heartbeat call): alive, and from now on
        expected to keep sending them (see ``check_liveness``)."""
        agent.heartbeats = True
        agent.last_seen = self._loop.time()
        agent.last_seen_wall = d.utcnow()
        if healthy != agent.healthy:
            agent.healthy = healthy
            if healthy:
                self._fill(agent)

    def set_credits(self, agent: d.Agent, credits: int) -> None:
        if not 0 <= credits <= MAX_CONCURRENCY:
            raise InvalidArgument(f"credits must be between 0 and {MAX_CONCURRENCY}, got {credits}")
        agent.credits = credits
        self._fill(agent)

    def drain_agent(self, agent: d.Agent) -> None:
        """The agent takes no new tasks; it keeps and finishes what it holds."""
        agent.draining = True

    def get_agent(self, agent_id: str) -> d.Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id!r} not found")
        return agent

    def act_as(self, agent_id: str, session_secret: str) -> d.Agent:
        """The agent ``agent_id`` for a call made as that agent (a polling agent's
        heartbeat or poll): NotFound, or PermissionDenied without its secret."""
        agent = self.get_agent(agent_id)
        if not hmac.compare_digest(agent.session_secret.encode(), session_secret.encode()):
            raise PermissionDenied(
                f"calls as agent {agent_id!r} need its session_secret (from RegisterAgent)"
            )
        return agent

    def list_agents(self, include_offline: bool = False, type_: str = "") -> list[d.Agent]:
        return [
            a
            for a in self.agents.values()
            if (include_offline or a.connected) and (not type_ or a.type == type_)
        ]

    def capabilities(self) -> set[str]:
        """Every capability a registered agent (connected or not) advertises."""
        return {c for a in self.agents.values() for c in a.capability_names}

    def pinned_agent(self, capability: str, ref: str) -> str:
        """The id of the best routable agent with ``capability`` whose name, type or id
        is ``ref`` (a workflow step's ``agent``), or "" when none is connected."""
        for a in self.find_agents(capability):
            if a.routable and ref in (a.name, a.type, a.id):
                return a.id
        return ""

    def find_agents(self, capability: str, include_offline: bool = False) -> list[d.Agent]:
        """Agents advertising ``capability``, best routing candidate first."""
        found = [
            a
            for a in self.agents.values()
            if capability in a.capability_names and (include_offline or a.connected)
        ]
        return sorted(found, key=lambda a: (not a.routable, *self._score(a)))

    def check_liveness(self) -> list[str]:
        """Take agents whose heartbeats stopped offline; prune long-offline ones.

        Heartbeats are optional on a stream: a stream agent that has never sent one is
        left to its transport (HTTP/2 keepalive ends a dead peer's stream, and the
        stream's end takes the agent offline). Once it has sent one, and for polling
        agents always, silence past ``heartbeat_timeout_ms`` takes it offline."""
        now = self._loop.time()
        timeout = self.settings.heartbeat_timeout_ms / 1000
        lost = []
        for agent in list(self.agents.values()):
            judged = agent.heartbeats or agent.transport != "stream"
            if agent.connected and judged and now - agent.last_seen > timeout:
                lost.append(agent.id)
                self._lose(agent, f"no heartbeat for {now - agent.last_seen:.1f}s")
                if agent.sink is not None:
                    agent.sink.close("heartbeat timeout")
            elif (
                not agent.connected
                and now - agent.last_seen > self.settings.offline_agent_retention_s
                and not self._pinned.get(agent.id)
            ):
                del self.agents[agent.id]
        return lost

    def _lose(
        self, agent: d.Agent, reason: str, graceful: bool = False, check_waits: bool = True
    ) -> int:
        agent.connected = False
        agent.last_seen_wall = d.utcnow()
        for name in agent.capability_names:
            members = self._by_capability.get(name)
            if members is not None and members.get(agent.id) is agent:
                del members[agent.id]
        held = list(agent.in_flight.items())
        agent.in_flight.clear()
        moved = 0
        for (_, attempt), task in held:
            if task.attempt != attempt or task.status.finished:
                continue
            self._active_dec()
            moved += 1
            task.redeliveries += 1
            self.counters.redelivered += 1
            if task.redeliveries > self.settings.max_redeliveries:
                self._finish(
                    task,
                    d.TaskStatus.FAILED,
                    error=d.TaskFailure(
                        d.TOO_MANY_REDELIVERIES,
                        f"agent lost {task.redeliveries} times; last: {reason}",
                    ),
                )
            else:
                self._cancel_timer(task)
                self._enqueue(task, check_wait=check_waits)
        if graceful:
            log.info(
                "agent %s (%s) left: %s%s",
                agent.id,
                agent.name,
                reason,
                f" ({moved} unfinished task(s) re-dispatched)" if moved else "",
            )
        else:
            log.warning("agent %s offline: %s (%d task(s) re-dispatched)", agent.id, reason, moved)
        if check_waits:
            self._check_lost(agent)
        return moved

    def _check_lost(self, agent: d.Agent) -> None:
        """What is queued for ``agent``'s capabilities, or pinned to it, may now have
        no live agent left to take it."""
        if not self.accepting:
            return
        for name in sorted(agent.capability_names):
            if not self._by_capability.get(name):
                for _, _, task in self._queues.get(name, ()):
                    self._check_waiting(task)
        for _, _, task in self._pinned.get(agent.id, ()):
            self._check_waiting(task)

    # ----------------------------------------------------------------- tasks

    def submit(self, spec: d.TaskSpec, wait_for_agent: bool = False) -> d.Task:
        """Accept a task and route it (or queue it until a credit frees up).

        Raises InvalidArgument, NotFound (pinned agent), FailedPrecondition (no
        live agent advertises the capability and ``wait_for_agent`` is false),
        ResourceExhausted (too many pending tasks) or Unavailable (shutting down).
        """
        if spec.idempotency_key:
            existing = self._by_idempotency.get(spec.idempotency_key)
            if existing is not None and existing in self.tasks:
                return self.tasks[existing]
        task = self._prepare(spec, wait_for_agent)
        self._admit(task)
        self._route(task)
        return task

    def submit_many(
        self, specs: Sequence[d.TaskSpec], wait_for_agent: bool = False
    ) -> list[d.Task]:
        """Validate every spec first, so a bad one rejects the whole batch."""
        fresh: list[d.Task | None] = []
        for i, spec in enumerate(specs):
            key = spec.idempotency_key
            if key and self._by_idempotency.get(key) in self.tasks:
                fresh.append(None)
                continue
            try:
                fresh.append(self._prepare(spec, wait_for_agent, extra=len(fresh)))
            except (InvalidArgument, NotFound, FailedPrecondition, ResourceExhausted) as e:
                raise type(e)(f"tasks[{i}]: {e}") from None
        out = []
        for spec, task in zip(specs, fresh, strict=True):
            if task is None:
                out.append(self.tasks[self._by_idempotency[spec.idempotency_key]])
                continue
            if spec.idempotency_key in self._by_idempotency:  # duplicate within the batch
                out.append(self.tasks[self._by_idempotency[spec.idempotency_key]])
                continue
            self._admit(task)
            self._route(task)
            out.append(task)
        return out

    def _prepare(self, spec: d.TaskSpec, wait_for_agent: bool, extra: int = 0) -> d.Task:
        if not self.accepting:
            raise Unavailable("coordinator is shutting down; submit to another replica or retry")
        capability = spec.capability.strip()
        if spec.agent_id:
            agent = self.get_agent(spec.agent_id)
            if not capability:
                if len(agent.capability_names) != 1:
                    raise InvalidArgument(
                        f"task needs a capability: agent {agent.id!r} has "
                        f"{sorted(agent.capability_names)}"
                    )
                capability = next(iter(agent.capability_names))
            elif capability not in agent.capability_names:
                raise FailedPrecondition(
                    f"agent {agent.id!r} does not advertise capability {capability!r} "
                    f"(it has {sorted(agent.capability_names)})"
                )
        elif not capability:
            raise InvalidArgument("task.capability is required when no agent_id is given")
        elif not wait_for_agent and not self._by_capability.get(capability):
            known = sorted(c for c, ids in self._by_capability.items() if ids)
            raise FailedPrecondition(
                f"no live agent advertises capability {capability!r}; "
                f"available: {known or 'none'} (set wait_for_agent to queue it anyway)"
            )
        if spec.timeout_ms < 0:
            raise InvalidArgument(f"timeout_ms must not be negative, got {spec.timeout_ms}")
        try:
            if not spec.input_checked:
                payload.check(spec.input, "task input", self.payload_bytes)
        except payload.PayloadError as e:
            raise InvalidArgument(str(e)) from None
        if spec.max_retries is not None and not 0 <= spec.max_retries <= 100:
            raise InvalidArgument(f"max_retries must be between 0 and 100, got {spec.max_retries}")
        if self._pending + extra >= self.settings.max_pending_tasks:
            raise ResourceExhausted(
                f"{self._pending} tasks pending (limit {self.settings.max_pending_tasks}); "
                "retry later"
            )
        if spec.max_retries is not None:
            max_retries = spec.max_retries
        elif self._policy.strategy is RetryStrategy.NONE:
            max_retries = 0
        else:
            max_retries = self._policy.max_retries
        # Unique across restarts (random prefix) and cheap per task (a counter).
        task_id = f"{self._id_prefix}{next(self._ids):08x}"
        return d.Task(
            id=task_id,
            name=spec.name or capability,
            capability=capability,
            input=spec.input,
            timeout_ms=spec.timeout_ms or self.settings.default_timeout_ms,
            idempotency_key=spec.idempotency_key or task_id,
            max_retries=max_retries,
            priority=spec.priority,
            labels=dict(spec.labels),
            execution_id=spec.execution_id,
            step_id=spec.step_id,
            pinned_agent=spec.agent_id,
            created_at=d.utcnow(),
            seq=next(self._seq),
        )

    def _admit(self, task: d.Task) -> None:
        self.tasks[task.id] = task
        self._by_idempotency[task.idempotency_key] = task.id
        self.counters.submitted += 1

    def get_task(self, task_id: str) -> d.Task:
        task = self.tasks.get(task_id)
        if task is None:
            raise NotFound(f"task {task_id!r} not found (unknown, or finished long ago)")
        return task

    def list_tasks(
        self, status: d.TaskStatus | None = None, agent_id: str = "", limit: int = 100
    ) -> list[d.Task]:
        out = []
        for task in reversed(self.tasks.values()):
            if (status is None or task.status is status) and (
                not agent_id or task.agent_id == agent_id
            ):
                out.append(task)
                if len(out) >= limit:
                    break
        return out

    async def wait(self, task_id: str, timeout: float | None = None) -> d.Task:
        """Wait until the task finishes or ``timeout`` seconds pass; return it.
        Cancelling the wait leaves the task alone."""
        task = self.get_task(task_id)
        if task.status.finished:
            return task
        fut: asyncio.Future[None] = self._loop.create_future()
        task.waiters.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            pass
        finally:
            if fut in task.waiters:
                task.waiters.remove(fut)
        return task

    def cancel(self, task_id: str, reason: str = "cancelled by request") -> d.Task:
        task = self.get_task(task_id)
        if task.status.finished:
            return task
        if task.status is d.TaskStatus.PENDING:
            self._pending -= task.queued
            task.queued = False
        else:
            self._send_cancel(task, reason)
        self._finish(task, d.TaskStatus.CANCELLED, error=d.TaskFailure(d.CANCELLED, reason))
        return task

    def on_ack(self, task_id: str, attempt: int) -> None:
        task = self.tasks.get(task_id)
        if task is not None and task.attempt == attempt and task.status is d.TaskStatus.ASSIGNED:
            task.status = d.TaskStatus.RUNNING
            task.started_at = d.utcnow()

    def on_progress(self, task_id: str, attempt: int, fraction: float, message: str) -> None:
        task = self.tasks.get(task_id)
        if task is not None and task.attempt == attempt and not task.status.finished:
            task.progress = min(1.0, max(0.0, fraction))
            task.progress_message = message
            if task.status is d.TaskStatus.ASSIGNED:
                task.status = d.TaskStatus.RUNNING
                task.started_at = d.utcnow()

    def on_result(
        self,
        agent: d.Agent | None,
        task_id: str,
        attempt: int,
        output: d.Json = None,
        failure: d.TaskFailure | None = None,
        duration_ms: float = 0.0,
    ) -> bool:
        """Record an agent's outcome for one attempt. Returns True when it
        changed the task (False for duplicates and superseded failures).

        An output (or failure details) over the payload limits could not travel on
        (to waiting clients, into a workflow): it is recorded as a failure instead."""
        try:
            payload.check(output, "the task's output", self.payload_bytes)
            if failure is not None and failure.details:
                payload.check(failure.details, "the task's error details", self.payload_bytes)
        except payload.PayloadError as e:
            output, failure = None, d.TaskFailure(d.PAYLOAD_TOO_LARGE, str(e))
        task = self.tasks.get(task_id)
        if agent is None and task is not None:
            agent = self.agents.get(task.agent_id)
            if attempt == 0:
                attempt = task.attempt
        if agent is not None:
            slot = agent.in_flight.pop((task_id, attempt), None)
            if slot is not None:
                if failure is None:
                    agent.completed += 1
                else:
                    agent.failed += 1
                agent.total_duration_ms += duration_ms
        recorded = self._record(task, attempt, output, failure)
        if agent is not None and agent.connected:
            self._fill(agent)
        return recorded

    def _record(
        self, task: d.Task | None, attempt: int, output: d.Json, failure: d.TaskFailure | None
    ) -> bool:
        if task is None or task.status.finished:
            self.counters.duplicate_results += 1
            return False
        current = attempt == task.attempt and task.status in (
            d.TaskStatus.ASSIGNED,
            d.TaskStatus.RUNNING,
        )
        if not current:
            if failure is not None or attempt > task.attempt or attempt <= 0:
                return False
            # A success from a superseded attempt is as good as any: keep it.
            if task.status is d.TaskStatus.PENDING:
                self._pending -= task.queued
                task.queued = False
            else:
                self._send_cancel(task, "completed by an earlier attempt")
        if current:
            self._active_dec()
        if failure is None:
            self._finish(task, d.TaskStatus.COMPLETED, result=output)
        else:
            self._fail_attempt(task, failure)
        return True

    # --------------------------------------------------------------- routing

    def _score(self, agent: d.Agent) -> tuple[float, float, float]:
        return (agent.load_factor, -agent.success_rate, agent.average_task_duration_ms)

    def _route(self, task: d.Task) -> None:
        if task.pinned_agent:
            agent = self.agents.get(task.pinned_agent)
            if agent is not None and agent.routable and agent.free_credits > 0:
                self._dispatch(agent, [self._assign(task, agent)])
            else:
                self._enqueue(task)
            return
        queue = self._queues.get(task.capability)
        if queue:  # others are waiting already: keep the order
            self._enqueue(task)
            return
        # Hot path: compare load factors inline; the full score only breaks ties.
        best: d.Agent | None = None
        best_load = 2.0
        for agent in self._by_capability.get(task.capability, {}).values():
            held, credits = len(agent.in_flight), agent.credits
            if held >= credits or not agent.routable:
                continue
            load = held / credits
            if load < best_load or (
                load == best_load and best is not None and self._score(agent) < self._score(best)
            ):
                best, best_load = agent, load
        if best is None:
            self._enqueue(task)
        else:
            self._dispatch(best, [self._assign(task, best)])

    def waiting_reason(self, task_id: str) -> str:
        """Why the pending task ``task_id`` waits for an agent: no live agent
        advertises its capability, or the agent it is pinned to is not connected.
        "" when it does not (it runs, finished, or waits only for a free credit)."""
        return self._waits.reason(task_id)

    def add_wait_listener(self, listener: WaitListener) -> None:
        """Call ``listener(change)`` when a pending task starts waiting for an agent
        and when that wait ends (an agent that can take it joined), once per change
        (from the loop). Not while shutting down: agents leave because asked to."""
        self._waits.add_listener(listener)

    def _check_waiting(self, task: d.Task) -> None:
        """Note that the queued ``task`` waits for an agent, if nobody live can take it."""
        if not self.accepting or task.status is not d.TaskStatus.PENDING or not task.queued:
            return
        if task.id in self._waits:
            return
        if task.pinned_agent:
            agent = self.agents.get(task.pinned_agent)
            if agent is not None and agent.connected:
                return
            reason = f"agent '{task.pinned_agent}' is not connected"
        elif self._by_capability.get(task.capability):
            return
        else:
            reason = f"no live agent advertises '{task.capability}'"
        self._waits.start(task, reason)

    def _enqueue(self, task: d.Task, check_wait: bool = True) -> None:
        task.status = d.TaskStatus.PENDING
        task.agent_id = ""
        if task.queued:
            return
        task.queued = True
        self._pending += 1
        key = task.pinned_agent
        heap = (
            self._pinned.setdefault(key, [])
            if key
            else self._queues.setdefault(task.capability, [])
        )
        heapq.heappush(heap, (-task.priority, task.seq, task))
        if not key:
            # An agent may have a free credit right now (e.g. a retry after backoff).
            for agent in self._by_capability.get(task.capability, {}).values():
                if agent.routable and agent.free_credits > 0:
                    self._fill(agent)
                    break
        else:
            pinned = self.agents.get(key)
            if pinned is not None and pinned.routable and pinned.free_credits > 0:
                self._fill(pinned)
        if check_wait:
            self._check_waiting(task)

    def _next_for(self, agent: d.Agent) -> d.Task | None:
        """Pop the most urgent pending task this agent can run."""
        heaps: Iterable[list[tuple[int, int, d.Task]]] = [
            h
            for h in (
                self._pinned.get(agent.id),
                *(self._queues.get(c) for c in agent.capability_names),
            )
            if h
        ]
        while True:
            best: list[tuple[int, int, d.Task]] | None = None
            for heap in heaps:
                while heap and heap[0][2].status is not d.TaskStatus.PENDING:
                    heapq.heappop(heap)[2].queued = False  # finished while queued
                if heap and (best is None or heap[0][:2] < best[0][:2]):
                    best = heap
            if best is None:
                return None
            task = heapq.heappop(best)[2]
            task.queued = False
            self._pending -= 1
            if task.status is d.TaskStatus.PENDING:
                return task

    def _fill(self, agent: d.Agent) -> None:
        if not agent.routable:
            return
        batch = []
        while agent.free_credits > 0:
            task = self._next_for(agent)
            if task is None:
                break
            batch.append(self._assign(task, agent))
        if batch:
            self._dispatch(agent, batch)

    def _assign(self, task: d.Task, agent: d.Agent) -> d.Task:
        now = d.utcnow()
        task.attempt += 1
        task.status = d.TaskStatus.ASSIGNED
        task.agent_id = agent.id
        task.assigned_at = now
        task.started_at = None
        task.progress = 0.0
        task.progress_message = ""
        task.deadline = now + timedelta(milliseconds=task.timeout_ms)
        task.dispatched_mono = self._loop.time()
        if self._waits:
            self._waits.forget(task, agent.id)
        agent.in_flight[(task.id, task.attempt)] = task
        task.timer = self._loop.call_later(
            task.timeout_ms / 1000, self._on_timeout, task, task.attempt
        )
        self._active += 1
        self._idle.clear()
        return task

    def _dispatch(self, agent: d.Agent, batch: list[d.Task]) -> None:
        if agent.sink is not None:
            agent.sink.send_tasks(batch)

    # ------------------------------------------------------- failure & finish

    def _on_timeout(self, task: d.Task, attempt: int) -> None:
        if task.attempt != attempt or task.status.finished or task.status is d.TaskStatus.PENDING:
            return
        task.timer = None
        self._send_cancel(task, f"timed out after {task.timeout_ms} ms")
        self._active_dec()
        self._fail_attempt(
            task,
            d.TaskFailure(
                d.TIMEOUT, f"attempt {attempt} timed out after {task.timeout_ms} ms", retryable=True
            ),
        )

    def _fail_attempt(self, task: d.Task, failure: d.TaskFailure) -> None:
        if failure.retryable and task.retry_count < task.max_retries:
            task.retry_count += 1
            self.counters.retried += 1
            task.error = failure
            self._cancel_timer(task)
            task.status = d.TaskStatus.PENDING
            task.agent_id = ""
            delay = self._policy.delay_ms(task.retry_count) / 1000
            if delay <= 0:
                self._enqueue(task)
            else:
                task.timer = self._loop.call_later(delay, self._retry_now, task)
            return
        self._finish(task, d.TaskStatus.FAILED, error=failure)

    def _retry_now(self, task: d.Task) -> None:
        task.timer = None
        if task.status is d.TaskStatus.PENDING and not task.queued:
            self._enqueue(task)

    def _send_cancel(self, task: d.Task, reason: str) -> None:
        agent = self.agents.get(task.agent_id)
        if agent is not None and agent.sink is not None and agent.connected:
            agent.sink.send_cancel(task.id, task.attempt, reason)

    def _cancel_timer(self, task: d.Task) -> None:
        if task.timer is not None:
            task.timer.cancel()
            task.timer = None

    def _active_dec(self) -> None:
        self._active -= 1
        if self._active <= 0:
            self._active = 0
            self._idle.set()

    def _finish(
        self,
        task: d.Task,
        status: d.TaskStatus,
        result: d.Json = None,
        error: d.TaskFailure | None = None,
    ) -> None:
        if task.status in (d.TaskStatus.ASSIGNED, d.TaskStatus.RUNNING) and status in (
            d.TaskStatus.CANCELLED,
            d.TaskStatus.FAILED,
        ):
            # Cancelled or abandoned while an agent held it: no longer active.
            self._active_dec()
        self._cancel_timer(task)
        if self._waits:
            self._waits.forget(task)
        task.status = status
        task.result = result
        task.error = error if status is not d.TaskStatus.COMPLETED else None
        task.ended_at = d.utcnow()
        c = self.counters
        if status is d.TaskStatus.COMPLETED:
            c.completed += 1
            if task.dispatched_mono:
                c.total_latency_ms += (self._loop.time() - task.dispatched_mono) * 1000
        elif status is d.TaskStatus.FAILED:
            c.failed += 1
        else:
            c.cancelled += 1
        for fut in task.waiters:
            if not fut.done():
                fut.set_result(None)
        task.waiters.clear()
        for listener in self._listeners:
            listener(task)
        self._finished.append(task.id)
        while len(self._finished) > self.settings.task_retention:
            old = self.tasks.pop(self._finished.popleft(), None)
            if old is not None:
                self._by_idempotency.pop(old.idempotency_key, None)

    def add_listener(self, listener: TaskListener) -> None:
        """Call ``listener(task)`` whenever a task finishes (from the loop)."""
        self._listeners.append(listener)

    # -------------------------------------------------------------- shutdown

    @property
    def pending_count(self) -> int:
        return self._pending

    @property
    def active_count(self) -> int:
        return self._active

    def queue_sizes(self) -> dict[str, int]:
        return {
            cap: sum(1 for _, _, t in heap if t.status is d.TaskStatus.PENDING)
            for cap, heap in self._queues.items()
        }

    def begin_shutdown(self, reason: str = "coordinator shutting down") -> None:
        """Refuse new tasks and ask every agent to drain."""
        self.accepting = False
        for agent in self.agents.values():
            if agent.connected and agent.sink is not None:
                agent.sink.send_drain(reason)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no task is held by an agent. True when idle in time."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def disconnect_all(self, reason: str) -> None:
        """Close every agent's stream (after a drain), so the server stops at once."""
        for agent in list(self.agents.values()):
            if agent.connected:
                self._lose(agent, reason, graceful=True)
                if agent.sink is not None:
                    agent.sink.close(reason)

    def abandon_all(self, reason: str) -> int:
        """Fail every unfinished task (retryable) so waiting clients hear of it."""
        n = 0
        for task in list(self.tasks.values()):
            if not task.status.finished:
                if task.status is d.TaskStatus.PENDING:
                    self._pending -= task.queued
                    task.queued = False
                self._finish(
                    task, d.TaskStatus.FAILED, error=d.TaskFailure(d.SHUTDOWN, reason, True)
                )
                n += 1
        return n
