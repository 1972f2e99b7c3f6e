"""The mesh: agents, liveness, routing, flow control and the life of a task.

One ``Mesh`` per coordinator, driven from the event loop (never from threads).
It does no network I/O itself: it hands tasks to each agent's ``AgentSink``,
which must not block, and it reads the time and sets timers only through its
``Clock`` (by default the running loop's).

``Mesh`` is the facade; each part owns its own state:

- ``registry``  the agents: join checks, sessions, liveness, lookups;
- ``dispatch``  routing and scoring, credits, the pending queues (pinned ones too)
  and the tasks no live agent can take;
- ``tasks``     task life: results, retries, timeouts, redelivery, retention,
  counters; ``admission`` checks a submission and makes its task;
- ``clock``     ``Clock`` (``now``, ``call_later``) and ``LoopClock``.

The facade joins them where one event concerns several (an agent that goes takes
its slots out of the registry, and its tasks back to the queues).

Namespaces partition the mesh: an agent joins one (``AgentSpec.namespace``) and a task
is submitted into one (``TaskSpec.namespace``); the capability index, the pending
queues and the waits are keyed by ``(namespace, capability)``, so an agent is only ever
routed tasks of its own namespace, and a task waits for an agent of its namespace even
while another namespace has one with the capability. Idempotency keys are per
namespace. Agent and task ids are unique across namespaces; the lookups that take
``namespace`` answer for an id of another namespace exactly as for an unknown one
(NotFound, the same text), and ``namespace=None`` means every namespace (for internal
callers and tests: the API always passes the caller's).

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

import logging
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence

from coordinator import domain as d
from coordinator.config import Settings
from coordinator.domain import DEFAULT_NAMESPACE
from coordinator.errors import Unavailable
from coordinator.mesh import breakers
from coordinator.mesh.clock import Clock, Handle, LoopClock
from coordinator.mesh.completions import completions
from coordinator.mesh.dispatch import Dispatch
from coordinator.mesh.registry import MAX_CONCURRENCY, MAX_ID_CHARS, Registry
from coordinator.mesh.tasks import MeshCounters, TaskListener, Tasks
from coordinator.waits import WaitListener

__all__ = [
    "MAX_CONCURRENCY",
    "MAX_ID_CHARS",
    "Clock",
    "Handle",
    "LoopClock",
    "Mesh",
    "MeshCounters",
    "TaskListener",
]

log = logging.getLogger(__name__)  # "coordinator.mesh", as in registry.py


class Mesh:
    """The coordinator's agents and tasks (see the module docstring).

    ``clock``: where the time and timers come from; by default the running loop's
    (so, without one, it must be built inside a running loop)."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        clock = clock or LoopClock()
        self._accepting = True
        self._registry = Registry(settings, clock)
        self._registry.on_breaker = self._breaker_changed
        self._open_capabilities: set[tuple[str, str]] = set()  # (namespace, capability)
        self._dispatch = Dispatch(
            self._registry,
            clock,
            accepting=lambda: self._accepting,
            on_assign=lambda task: self._tasks.started(task),  # noqa: PLW0108 (not built yet)
        )
        self._dispatch.aging_s = settings.priority_aging_ms / 1000
        self._tasks = Tasks(
            settings, clock, self._registry, self._dispatch, accepting=lambda: self._accepting
        )
        #: The largest task input or output, in bytes of JSON, the mesh accepts.
        self.payload_bytes = self._tasks.payload_bytes
        self._events: d.EventSink | None = None

    def observe(self, sink: d.EventSink) -> None:
        """Report agent and task events to ``sink`` (the event log) from now on."""
        self._events = sink
        self._tasks.reports.sink = sink

    def trace_tasks(self, standalone: Callable[[str], d.TraceParent] | None) -> None:
        """With tracing on: a task outside workflows gets ``standalone(task_id)``."""
        self._tasks.admission.trace_standalone = standalone

    def _breaker_changed(self, agent: d.Agent, old: str, new: str) -> None:
        log.log(
            logging.WARNING if new == "open" else logging.INFO,
            "agent %s (%s): circuit breaker %s -> %s (%d of its last %d results failed)",
            agent.id,
            agent.name,
            old,
            new,
            agent.outcomes.count(False),
            len(agent.outcomes),
            extra={"agent_id": agent.id, "namespace": agent.namespace},
        )
        self._agent_event("agent.breaker", agent, **{"from": old, "to": new})
        for name in sorted(agent.capability_names):
            key = (agent.namespace, name)
            now_open = self.capability_open(name, agent.namespace)
            if now_open != (key in self._open_capabilities):
                self._open_capabilities ^= {key}
                if self._events is not None:
                    change = ("closed", "open") if now_open else ("open", "closed")
                    data: d.JsonObject = {"capability": name, "from": change[0], "to": change[1]}
                    self._events.emit("capability.breaker", namespace=agent.namespace, data=data)

    def _agent_event(self, type_: str, agent: d.Agent, **data: d.Json) -> None:
        if self._events is not None:
            self._events.emit(type_, namespace=agent.namespace, agent_id=agent.id, data=data)

    # ---------------------------------------------------------------- agents

    def join(self, spec: d.AgentSpec, sink: d.AgentSink | None, transport: str) -> d.Agent:
        """Admit an agent under a new session secret.

        A ``spec.agent_id`` this mesh knows (connected, or offline and retained) is
        resumed only with the secret of that agent's last session, and then replaces a
        still-open older session (whose tasks are re-dispatched); without it the join is
        refused (PermissionDenied), so nobody can take over another agent's identity
        and the tasks addressed to it. An id the mesh does not know (e.g. after a
        restart) is granted as asked. A known id is never resumed into another
        namespace than its agent's (PermissionDenied). Also raises InvalidArgument (a
        bad spec) and Unavailable (shutting down)."""
        if not self._accepting:
            raise Unavailable("coordinator is shutting down; connect to another replica or retry")
        agent_id, old = self._registry.admit(spec)
        if old is not None and old.connected:
            # No waits for what the old session held: the new one is about to take it.
            self._lose(old, f"replaced by a new session of agent {agent_id}", check_waits=False)
            if old.sink is not None:
                old.sink.close("replaced by a new session")
        agent = self._registry.add(spec, agent_id, sink, transport, old)
        self._dispatch.joined(agent)
        if old is not None:
            self._dispatch.check_lost(old)  # capabilities the new session no longer advertises
        self._dispatch.fill(agent)
        if self._events is not None:
            self._agent_event(
                "agent.joined",
                agent,
                name=agent.name,
                type=agent.type,
                capabilities=sorted(c.name for c in agent.capabilities),
                transport=transport,
                resumed=old is not None,
            )
        return agent

    def leave(self, agent_id: str, reason: str, graceful: bool = False) -> int:
        """Mark an agent offline and re-dispatch what it held. Returns that count.

        ``graceful``: the agent said goodbye before it went (logged as a departure,
        not as a fault)."""
        agent = self._registry.get(agent_id)
        if agent is None or not agent.connected:
            return 0
        return self._lose(agent, reason, graceful)

    def unregister(self, agent_id: str, namespace: str | None = None) -> int:
        """Forget the agent ``agent_id`` (NotFound if unknown, or of another namespace
        than ``namespace``; None: any): its stream is closed, what it held is
        re-dispatched (returns that count) and the tasks pinned to it fail."""
        agent = self._registry.require(agent_id, namespace)
        moved = 0
        if agent.connected:
            moved = self._lose(agent, "unregistered", graceful=True, check_waits=False)
        if agent.sink is not None:
            agent.sink.close("unregistered")
        lost = d.TaskFailure(d.AGENT_LOST, f"agent {agent_id} was unregistered")
        self._dispatch.drop_pinned(agent, lambda task: self._tasks.fail(task, lost))
        self._registry.remove(agent_id)
        self._dispatch.check_lost(agent)  # what is queued for its capabilities (pinned ones failed)
        return moved

    def touch(self, agent: d.Agent) -> None:
        """Any message from the agent: it is alive."""
        self._registry.touch(agent)

    def heartbeat(self, agent: d.Agent, healthy: bool = True) -> None:
        """A Heartbeat (or a polling agent's Heartbeat call): alive, and from now on
        expected to keep sending them (see ``check_liveness``)."""
        if self._registry.heartbeat(agent, healthy):
            self._dispatch.fill(agent)

    def set_credits(self, agent: d.Agent, credits: int) -> None:
        """The agent can hold ``credits`` attempts (InvalidArgument out of range)."""
        self._dispatch.set_credits(agent, credits)

    def drain_agent(self, agent: d.Agent) -> None:
        """The agent takes no new tasks; it keeps and finishes what it holds."""
        self._registry.drain(agent)
        self._agent_event("agent.draining", agent)

    def get_agent(self, agent_id: str, namespace: str | None = None) -> d.Agent:
        """The agent ``agent_id``, connected or not (NotFound if unknown, or of another
        namespace than ``namespace``; None: any)."""
        return self._registry.require(agent_id, namespace)

    def is_current(self, agent: d.Agent) -> bool:
        """Whether ``agent`` is still its id's session: not replaced by a newer one,
        not unregistered, nor forgotten while offline (it may be offline)."""
        return self._registry.get(agent.id) is agent

    def act_as(self, agent_id: str, session_secret: str) -> d.Agent:
        """The agent ``agent_id`` for a call made as that agent (a polling agent's
        heartbeat or poll): NotFound, or PermissionDenied without its secret. The
        secret is proof enough: no namespace is asked for."""
        return self._registry.act_as(agent_id, session_secret)

    def list_agents(
        self, include_offline: bool = False, type_: str = "", namespace: str | None = None
    ) -> list[d.Agent]:
        """The connected agents (``include_offline``: all known), of ``type_`` if given,
        of ``namespace`` (None: of every namespace)."""
        return self._registry.listed(include_offline, type_, namespace)

    def capabilities(self, namespace: str | None = None) -> set[str]:
        """Every capability a registered agent (connected or not) of ``namespace``
        (None: of any) advertises."""
        return self._registry.capabilities(namespace)

    def capability_open(self, capability: str, namespace: str = DEFAULT_NAMESPACE) -> bool:
        """Whether ``capability``'s breaker is open in ``namespace``: agents advertise it,
        and every connected one has its own breaker open (``breakers.py``)."""
        return breakers.capability_open(self._registry.live((namespace, capability)))

    def pinned_agent(self, capability: str, ref: str, namespace: str = DEFAULT_NAMESPACE) -> str:
        """The id of the best routable agent of ``namespace`` with ``capability`` whose
        name, type or id is ``ref`` (a workflow step's ``agent``), or "" when none is
        connected."""
        return self._dispatch.pinned_agent(capability, ref, namespace)

    def find_agents(
        self, capability: str, include_offline: bool = False, namespace: str = DEFAULT_NAMESPACE
    ) -> list[d.Agent]:
        """Agents of ``namespace`` advertising ``capability``, best routing candidate
        first."""
        return self._dispatch.find_agents(capability, include_offline, namespace)

    def check_liveness(self) -> list[str]:
        """Take agents whose heartbeats stopped offline (returns their ids); prune
        long-offline ones that nothing is pinned to.

        Heartbeats are optional on a stream: a stream agent that has never sent one is
        left to its transport (HTTP/2 keepalive ends a dead peer's stream, and the
        stream's end takes the agent offline). Once it has sent one, and for polling
        agents always, silence past ``heartbeat_timeout_ms`` takes it offline."""
        for agent in self._registry.cool():
            self._dispatch.fill(agent)  # half-open: a probe may go
        lost = []
        for agent, silence in self._registry.sweep(keep=self._dispatch.holds_pinned):
            lost.append(agent.id)
            self._lose(agent, f"no heartbeat for {silence:.1f}s")
            if agent.sink is not None:
                agent.sink.close("heartbeat timeout")
        return lost

    def _lose(
        self, agent: d.Agent, reason: str, graceful: bool = False, check_waits: bool = True
    ) -> int:
        held = self._registry.disconnect(agent)
        moved = self._tasks.redeliver(held, reason, check_waits)
        ids = {"agent_id": agent.id, "namespace": agent.namespace}
        if graceful:
            log.info(
                "agent %s (%s) left: %s%s",
                agent.id,
                agent.name,
                reason,
                f" ({moved} unfinished task(s) re-dispatched)" if moved else "",
                extra=ids,
            )
        else:
            log.warning(
                "agent %s offline: %s (%d task(s) re-dispatched)",
                agent.id,
                reason,
                moved,
                extra=ids,
            )
        if check_waits:
            self._dispatch.check_lost(agent)
        self._agent_event(
            "agent.left" if graceful else "agent.offline", agent, reason=reason, redispatched=moved
        )
        return moved

    # ----------------------------------------------------------------- tasks

    def submit(self, spec: d.TaskSpec, wait_for_agent: bool = False) -> d.Task:
        """Accept a task into ``spec.namespace`` and route it to an agent of that
        namespace (or queue it until a credit frees up). An ``idempotency_key`` known in
        that namespace returns the task it named.

        Raises InvalidArgument, NotFound (pinned agent: unknown, or of another
        namespace), FailedPrecondition (no live agent of the namespace advertises the
        capability and ``wait_for_agent`` is false),
        ResourceExhausted (too many pending tasks) or Unavailable (shutting down).
        """
        return self._tasks.submit(spec, wait_for_agent)

    def submit_many(
        self, specs: Sequence[d.TaskSpec], wait_for_agent: bool = False
    ) -> list[d.Task]:
        """Validate every spec first, so a bad one rejects the whole batch (its error
        names it: ``tasks[i]: ...``)."""
        return self._tasks.submit_many(specs, wait_for_agent)

    async def wait_for_room(self, namespace: str, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until a queued task of ``namespace`` is taken:
        a call refused by its ``queued_tasks`` quota may then try again (backpressure:
        a flooding tenant waits instead of spinning on refusals). True when one was."""
        return await self._dispatch.wait_for_room(namespace, timeout)

    def get_task(self, task_id: str, namespace: str | None = None) -> d.Task:
        """The task ``task_id`` (NotFound when unknown, evicted, or of another namespace
        than ``namespace``; None: any)."""
        return self._tasks.get(task_id, namespace)

    def list_tasks(
        self,
        status: d.TaskStatus | None = None,
        agent_id: str = "",
        limit: int = 100,
        namespace: str | None = None,
    ) -> list[d.Task]:
        """Newest first, at most ``limit``, filtered by status, agent and namespace
        (None: every namespace) when given."""
        return self._tasks.listed(status, agent_id, limit, namespace)

    async def wait(
        self, task_id: str, timeout: float | None = None, namespace: str | None = None
    ) -> d.Task:
        """Wait until the task finishes or ``timeout`` seconds pass; return it (NotFound
        as ``get_task``). Cancelling the wait leaves the task alone."""
        return await self._tasks.wait(task_id, timeout, namespace)

    def completions(
        self, task_ids: Sequence[str], timeout: float | None, namespace: str | None = None
    ) -> AsyncGenerator[list[d.Task], None]:
        """The tasks in batches as they finish (``mesh.completions``); NotFound, before
        anything is waited for, for an unknown id (as ``get_task``)."""
        return completions([self._tasks.get(i, namespace) for i in task_ids], timeout)

    def cancel(
        self, task_id: str, reason: str = "cancelled by request", namespace: str | None = None
    ) -> d.Task:
        """Cancel a task (NotFound as ``get_task``; a finished one is left as it is).
        The agent holding it is told, and keeps its slot until it reports."""
        return self._tasks.cancel(task_id, reason, namespace)

    def on_ack(self, task_id: str, attempt: int) -> None:
        """The agent started ``attempt`` of the task."""
        self._tasks.on_ack(task_id, attempt)

    def on_progress(self, task_id: str, attempt: int, fraction: float, message: str) -> None:
        """The agent reports progress on ``attempt`` of the task."""
        self._tasks.on_progress(task_id, attempt, fraction, message)

    def on_output(self, task_id: str, attempt: int, chunk: str) -> None:
        """The agent streams partial output of ``attempt`` of the task."""
        self._tasks.on_output(task_id, attempt, chunk)

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
        return self._tasks.on_result(agent, task_id, attempt, output, failure, duration_ms)

    def waiting_reason(self, task_id: str) -> str:
        """Why the pending task ``task_id`` waits for an agent: no live agent of its
        namespace advertises its capability, or the agent it is pinned to is not connected.
        "" when it does not (it runs, finished, or waits only for a free credit)."""
        return self._dispatch.waiting_reason(task_id)

    def add_wait_listener(self, listener: WaitListener) -> None:
        """Call ``listener(change)`` when a pending task starts waiting for an agent
        and when that wait ends (an agent that can take it joined), once per change
        (from the loop). Not while shutting down: agents leave because asked to."""
        self._dispatch.add_wait_listener(listener)

    def add_listener(self, listener: TaskListener) -> None:
        """Call ``listener(task)`` whenever a task finishes (from the loop)."""
        self._tasks.add_listener(listener)

    # ------------------------------------------------------ state, for tests

    @property
    def agents(self) -> Mapping[str, d.Agent]:
        """Every known agent by id (read-only; for tests and debugging)."""
        return self._registry.agents

    @property
    def tasks(self) -> Mapping[str, d.Task]:
        """Every retained task by id (read-only; for tests and debugging)."""
        return self._tasks.tasks

    @property
    def counters(self) -> MeshCounters:
        """What happened to tasks since the mesh started."""
        return self._tasks.counters

    @property
    def accepting(self) -> bool:
        """False once shutting down: joins and submissions are refused."""
        return self._accepting

    @property
    def pending_count(self) -> int:
        """How many tasks are queued for an agent."""
        return self._dispatch.pending

    @property
    def active_count(self) -> int:
        """How many tasks an agent holds (assigned or running)."""
        return self._tasks.active

    def queue_sizes(self, namespace: str | None = None) -> dict[tuple[str, str], int]:
        """Queued tasks per (namespace, capability) of ``namespace`` (None: all)."""
        return self._dispatch.queue_sizes(namespace)

    def starved(self, namespace: str | None = None) -> list[tuple[str, str]]:
        """The (namespace, capability) pairs with queued tasks and no live agent."""
        return [k for k in self.queue_sizes(namespace) if not self._registry.has_live(k)]

    def counts(self, namespace: str) -> tuple[int, int]:
        """``(pending_count, active_count)`` of ``namespace`` alone: its tasks queued
        for an agent, and its tasks an agent holds. O(retained tasks): for metrics,
        not for a hot path."""
        return self._tasks.counts(namespace)

    # -------------------------------------------------------------- shutdown

    def stop_accepting(self) -> None:
        """Refuse new agents and tasks from now on (agents are not asked to drain)."""
        self._accepting = False

    def begin_shutdown(self, reason: str = "coordinator shutting down") -> None:
        """Refuse new tasks and ask every agent to drain."""
        self.stop_accepting()
        for agent in self._registry.all():
            if agent.connected and agent.sink is not None:
                agent.sink.send_drain(reason)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no task is held by an agent. True when idle in time."""
        return await self._tasks.wait_idle(timeout)

    def disconnect_all(self, reason: str) -> None:
        """Close every agent's stream (after a drain), so the server stops at once."""
        for agent in self._registry.all():
            if agent.connected:
                self._lose(agent, reason, graceful=True)
                if agent.sink is not None:
                    agent.sink.close(reason)

    def abandon_all(self, reason: str) -> int:
        """Fail every unfinished task (retryable) so waiting clients hear of it."""
        return self._tasks.abandon_all(reason)
