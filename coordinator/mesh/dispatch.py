"""Routing and flow control: which agent gets a task, and the queues it waits in.

``Dispatch`` owns the pending queues (a heap per ``(namespace, capability)`` and one
per ``(namespace, pinned agent)``, most urgent first: priority, aged by the time waited
(``priority_aging_ms``), then submission order), the count of queued tasks, and the book of queued tasks no live agent can take
(``coordinator.waits``). Namespaces partition all of it: a task goes only to an agent
of its own namespace, and an agent takes only from its namespace's queues. A new task
goes to the least loaded routable agent of its namespace and capability with a free
credit (ties: success rate, then speed), or to its pinned agent, or into its queue; an
agent with a free credit takes the most urgent tasks it can run, in one batch.

Assigning an attempt takes a credit on the agent (``Agent.in_flight``) and tells
``on_assign``, which times the attempt. Agents come from the ``Registry``; tasks are
only routed and queued here, never finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections import deque
from collections.abc import Callable, Iterable
from datetime import timedelta

from coordinator import domain as d
from coordinator.errors import InvalidArgument
from coordinator.mesh.clock import Clock
from coordinator.mesh.registry import MAX_CONCURRENCY, CapKey, Registry, in_namespace
from coordinator.waits import WaitListener, Waits

Entry = tuple[float, int, d.Task]  # (urgency, seq, task): a heap entry, lowest first


def score(agent: d.Agent) -> tuple[float, float, float]:
    """How good a routing candidate ``agent`` is: lower is better."""
    return (agent.load_factor, -agent.success_rate, agent.average_task_duration_ms)


class Dispatch:
    """The queues, and the routing of tasks to agents (see the module docstring).

    ``accepting()`` false means shutting down: waits are no longer reported (agents
    leave because asked to)."""

    def __init__(
        self,
        registry: Registry,
        clock: Clock,
        accepting: Callable[[], bool],
        on_assign: Callable[[d.Task], None],
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._accepting = accepting
        self._on_assign = on_assign
        self._queues: dict[CapKey, list[Entry]] = {}  # (namespace, capability) -> heap
        self._pinned: dict[tuple[str, str], list[Entry]] = {}  # (namespace, agent id) -> heap
        self._pending = 0
        self._queued_in: dict[str, int] = {}  # namespace -> its queued tasks (when > 0)
        # (namespace, capability) -> its queued tasks, pinned ones included (when > 0)
        self._queued_by: dict[CapKey, int] = {}
        # namespace -> calls waiting for one of its queued tasks to be taken (quota)
        self._room_waiters: dict[str, deque[asyncio.Future[None]]] = {}
        self._waits = Waits()  # pending tasks no live agent can take (coordinator/waits.py)
        #: Seconds of waiting worth one priority level (``priority_aging_ms``; 0: strict).
        self.aging_s = 0.0

    def _urgency(self, task: d.Task) -> float:
        """The task's place in its queue, lowest first. With aging, its enqueue time
        less ``priority * aging_s``: a task that waited ``aging_s`` longer than another
        counts as one priority level higher, so low priorities are never starved,
        without ever re-sorting a queue."""
        if self.aging_s <= 0:
            return -float(task.priority)
        return self._clock.now() - task.priority * self.aging_s

    @property
    def pending(self) -> int:
        """How many tasks are queued."""
        return self._pending

    # --------------------------------------------------------------- routing

    def find_agents(self, capability: str, include_offline: bool, namespace: str) -> list[d.Agent]:
        """Agents of ``namespace`` advertising ``capability``, best routing candidate
        first."""
        found = self._registry.having(capability, include_offline, namespace)
        return sorted(found, key=lambda a: (not a.routable, *score(a)))

    def pinned_agent(self, capability: str, ref: str, namespace: str) -> str:
        """The id of the best routable agent of ``namespace`` with ``capability`` whose
        name, type or id is ``ref``, or "" when none is connected."""
        for a in self.find_agents(capability, False, namespace):
            if a.routable and ref in (a.name, a.type, a.id):
                return a.id
        return ""

    def route(self, task: d.Task) -> None:
        """Send the new ``task`` to the best agent of its namespace with a free credit,
        or queue it."""
        if task.pinned_agent:
            agent = self._registry.get(task.pinned_agent)
            if (
                agent is not None
                and agent.namespace == task.namespace
                and agent.routable
                and agent.free_credits > 0
            ):
                self._send(agent, [self._assign(task, agent)])
            else:
                self.enqueue(task)
            return
        key = (task.namespace, task.capability)
        queue = self._queues.get(key)
        if queue:  # others are waiting already: keep the order
            self.enqueue(task)
            return
        # Hot path: compare load factors inline; the full score only breaks ties.
        best: d.Agent | None = None
        best_load = 2.0
        for agent in self._registry.live(key):
            held, credits = len(agent.in_flight), agent.credits
            if held >= credits or not agent.routable:
                continue
            load = held / credits
            if load < best_load or (
                load == best_load and best is not None and score(agent) < score(best)
            ):
                best, best_load = agent, load
        if best is None:
            self.enqueue(task)
        else:
            self._send(best, [self._assign(task, best)])

    def set_credits(self, agent: d.Agent, credits: int) -> None:
        """The agent can now hold ``credits`` attempts; hand it queued work that fits.
        Raises InvalidArgument out of range."""
        if not 0 <= credits <= MAX_CONCURRENCY:
            raise InvalidArgument(f"credits must be between 0 and {MAX_CONCURRENCY}, got {credits}")
        agent.credits = credits
        self.fill(agent)

    def fill(self, agent: d.Agent) -> None:
        """Hand a routable ``agent`` the most urgent queued tasks its free credits allow."""
        if not agent.routable:
            return
        batch = []
        while agent.free_credits > 0:
            task = self._next_for(agent)
            if task is None:
                break
            batch.append(self._assign(task, agent))
        if batch:
            self._send(agent, batch)

    # ---------------------------------------------------------------- queues

    def enqueue(self, task: d.Task, check_wait: bool = True) -> None:
        """Queue ``task`` as pending (once), and hand it over at once if an agent has a
        free credit. ``check_wait``: note whether nobody live can take it."""
        task.status = d.TaskStatus.PENDING
        task.agent_id = ""
        if task.queued:
            return
        task.queued = True
        self._pending += 1
        self._queued_in[task.namespace] = self._queued_in.get(task.namespace, 0) + 1
        by = (task.namespace, task.capability)
        self._queued_by[by] = self._queued_by.get(by, 0) + 1
        pinned_id = task.pinned_agent
        key = (task.namespace, pinned_id or task.capability)
        heap = (self._pinned if pinned_id else self._queues).setdefault(key, [])
        heapq.heappush(heap, (self._urgency(task), task.seq, task))
        if not pinned_id:
            # An agent may have a free credit right now (e.g. a retry after backoff).
            for agent in self._registry.live(key):
                if agent.routable and agent.free_credits > 0:
                    self.fill(agent)
                    break
        else:
            pinned = self._registry.get(pinned_id)
            if (
                pinned is not None
                and pinned.namespace == task.namespace
                and pinned.routable
                and pinned.free_credits > 0
            ):
                self.fill(pinned)
        if check_wait:
            self._check_waiting(task)

    def withdraw(self, task: d.Task) -> None:
        """A pending task ends where it is: it no longer counts as queued (its heap
        entry is dropped when it comes up)."""
        if task.queued:
            self._unqueue(task)

    def drop_pinned(self, agent: d.Agent, fail: Callable[[d.Task], None]) -> None:
        """Empty the queue of tasks pinned to ``agent``, calling ``fail(task)`` for
        each that is still pending."""
        for _, _, task in self._pinned.pop((agent.namespace, agent.id), []):
            if task.status is d.TaskStatus.PENDING and task.queued:
                self._unqueue(task)
                fail(task)

    def _unqueue(self, task: d.Task) -> None:
        task.queued = False
        self._pending -= 1
        left = self._queued_in[task.namespace] - 1
        if left:
            self._queued_in[task.namespace] = left
        else:
            del self._queued_in[task.namespace]
        by = (task.namespace, task.capability)
        if self._queued_by[by] > 1:
            self._queued_by[by] -= 1
        else:
            del self._queued_by[by]
        if self._room_waiters:
            waiters = self._room_waiters.get(task.namespace)
            while waiters:  # one freed slot, one waiter (the oldest still waiting)
                fut = waiters.popleft()
                if not fut.done():
                    fut.set_result(None)
                    break

    async def wait_for_room(self, namespace: str, timeout: float) -> bool:
        """Wait until a queued task of ``namespace`` is taken (or ends), at most
        ``timeout`` seconds; True when one was. Waiters are woken one per freed slot,
        oldest first."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._room_waiters.setdefault(namespace, deque()).append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._room_waiters.get(namespace)
            if waiters is not None:
                if not fut.done():  # timed out or cancelled: no longer waiting
                    with contextlib.suppress(ValueError):
                        waiters.remove(fut)
                if not waiters:
                    del self._room_waiters[namespace]

    def queue_sizes(self, namespace: str | None) -> dict[CapKey, int]:
        """Queued tasks per (namespace, capability) of ``namespace`` (None: all)."""
        if namespace is None:
            return dict(self._queued_by)
        return {k: n for k, n in self._queued_by.items() if k[0] == namespace}

    def queued_in(self, namespace: str) -> int:
        """How many tasks of ``namespace`` are queued (its ``queued_tasks`` quota)."""
        return self._queued_in.get(namespace, 0)

    def holds_pinned(self, agent: d.Agent) -> bool:
        """Whether tasks are queued for ``agent`` alone."""
        return bool(self._pinned.get((agent.namespace, agent.id)))

    def _next_for(self, agent: d.Agent) -> d.Task | None:
        """Pop the most urgent pending task this agent can run (of its namespace)."""
        ns = agent.namespace
        heaps: Iterable[list[Entry]] = [
            h
            for h in (
                self._pinned.get((ns, agent.id)),
                *(self._queues.get((ns, c)) for c in agent.capability_names),
            )
            if h
        ]
        while True:
            best: list[Entry] | None = None
            for heap in heaps:
                while heap and heap[0][2].status is not d.TaskStatus.PENDING:
                    heapq.heappop(heap)[2].queued = False  # finished while queued
                if heap and (best is None or heap[0][:2] < best[0][:2]):
                    best = heap
            if best is None:
                return None
            task = heapq.heappop(best)[2]
            self._unqueue(task)
            if task.status is d.TaskStatus.PENDING:
                return task

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
        task.dispatched_mono = self._clock.now()
        if self._waits:
            self._waits.forget(task, agent.id)
        agent.in_flight[(task.id, task.attempt)] = task
        self._on_assign(task)
        return task

    def send_cancel(self, task: d.Task, reason: str) -> None:
        """Tell the agent holding ``task``'s current attempt, if connected, to stop it."""
        agent = self._registry.get(task.agent_id)
        if agent is not None and agent.sink is not None and agent.connected:
            agent.sink.send_cancel(task.id, task.attempt, reason)

    def _send(self, agent: d.Agent, batch: list[d.Task]) -> None:
        if agent.sink is not None:
            agent.sink.send_tasks(batch)

    # ----------------------------------------------------------------- waits

    def waiting_reason(self, task_id: str) -> str:
        """Why the pending task ``task_id`` waits for an agent, or ""."""
        return self._waits.reason(task_id)

    def add_wait_listener(self, listener: WaitListener) -> None:
        """Call ``listener(change)`` when a task starts or stops waiting for an agent."""
        self._waits.add_listener(listener)

    def joined(self, agent: d.Agent) -> None:
        """``agent`` joined: what waited for its capabilities in its namespace, or for it,
        waits no more."""
        if self._waits:
            ns = agent.namespace
            for name in sorted(agent.capability_names):
                self._waits.unblock(("capability", ns, name), agent.id)
            self._waits.unblock(("agent", ns, agent.id), agent.id)

    def check_lost(self, agent: d.Agent) -> None:
        """What is queued for ``agent``'s capabilities in its namespace, or pinned to it,
        may now have no live agent left to take it."""
        if not self._accepting():
            return
        ns = agent.namespace
        for name in sorted(agent.capability_names):
            key = (ns, name)
            if not self._registry.has_live(key):
                for _, _, task in self._queues.get(key, ()):
                    self._check_waiting(task)
        for _, _, task in self._pinned.get((ns, agent.id), ()):
            self._check_waiting(task)

    def forget(self, task: d.Task) -> None:
        """``task`` finished: it waits for nothing any more."""
        if self._waits:
            self._waits.forget(task)

    def _check_waiting(self, task: d.Task) -> None:
        """Note that the queued ``task`` waits for an agent, if nobody live can take it."""
        if not self._accepting() or task.status is not d.TaskStatus.PENDING or not task.queued:
            return
        if task.id in self._waits:
            return
        if task.pinned_agent:
            agent = self._registry.get(task.pinned_agent)
            if agent is not None and agent.connected and agent.namespace == task.namespace:
                return
            reason = f"agent '{task.pinned_agent}' is not connected"
        elif self._registry.has_live((task.namespace, task.capability)):
            return
        else:
            reason = f"no live agent advertises '{task.capability}'{in_namespace(task.namespace)}"
        self._waits.start(task, reason)
