"""The agent registry: which agents the mesh knows, which are connected, and by what.

``Registry`` owns the agents (the connected ones, and offline ones kept for
``offline_agent_retention_s`` so they can resume their id) and an index of the
connected ones by ``(namespace, capability)``: an agent joins one namespace
(``AgentSpec.namespace``) and is found, listed and routed to only within it. Agent ids
are unique across namespaces. It checks a join (the spec, the session secret of an id
it knows, and that a resumed id stays in its namespace), records that an agent is
alive, and judges silence. It neither routes nor finishes tasks: the slots an agent
held when it went are handed back to the caller, whose job it is to re-dispatch them.

Lookups that take ``namespace: str | None`` treat None as "every namespace" (internal
callers); an agent of another namespace is reported exactly as an unknown one.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType

from coordinator import domain as d
from coordinator.config import Settings
from coordinator.domain import DEFAULT_NAMESPACE
from coordinator.errors import InvalidArgument, NotFound, PermissionDenied
from coordinator.mesh import breakers
from coordinator.mesh.clock import Clock

# The whole mesh logs as "coordinator.mesh": operators (and tests) filter on that name.
log = logging.getLogger("coordinator.mesh")

MAX_CONCURRENCY = 10_000
MAX_ID_CHARS = 128  # agent ids and names: they travel in every listing and log line

#: The slots an agent held: (task id, attempt) -> task.
Held = list[tuple[tuple[str, int], d.Task]]

#: What routing matches on: (namespace, capability name).
CapKey = tuple[str, str]


def in_namespace(namespace: str) -> str:
    """How a message about ``namespace`` ends: `` in namespace 'b'``, or "" for the
    default namespace (whose messages read as they did before namespaces)."""
    return "" if namespace == DEFAULT_NAMESPACE else f" in namespace '{namespace}'"


class Registry:
    """The known agents and the (namespace, capability) index of the connected ones."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self.breaker_policy = breakers.BreakerPolicy(
            settings.agent_breaker_window,
            settings.agent_breaker_failure_rate,
            settings.agent_breaker_cooldown_ms / 1000,
        )
        #: Hears each breaker change: (agent, old state, new state).
        self.on_breaker: Callable[[d.Agent, str, str], None] | None = None
        self._agents: dict[str, d.Agent] = {}
        # (namespace, capability) -> connected agents of that namespace advertising it
        # (insertion-ordered)
        self._by_capability: dict[CapKey, dict[str, d.Agent]] = {}

    @property
    def agents(self) -> Mapping[str, d.Agent]:
        """Every known agent by id (a read-only view)."""
        return MappingProxyType(self._agents)

    # ------------------------------------------------------------ join, leave

    def admit(self, spec: d.AgentSpec) -> tuple[str, d.Agent | None]:
        """Check a join: the id the agent gets, and the agent this mesh knows by that
        id (None when it knows none). Changes nothing.

        Raises InvalidArgument (a bad spec) or PermissionDenied (a known id without the
        secret of its last session, or of another namespace than ``spec.namespace``)."""
        if not spec.namespace:
            raise InvalidArgument("agent namespace must not be empty")
        if not spec.name.strip():
            raise InvalidArgument("agent name must not be empty")
        for what, value in (("name", spec.name), ("agent_id", spec.agent_id)):
            if len(value) > MAX_ID_CHARS or not value.isprintable():
                raise InvalidArgument(
                    f"agent {what} must be at most {MAX_ID_CHARS} printable characters"
                )
        if not spec.capabilities:
            raise InvalidArgument(f"agent {spec.name!r} advertises no capabilities")
        if any(not c.name.strip() for c in spec.capabilities):
            raise InvalidArgument(f"agent {spec.name!r} advertises an empty capability name")
        if not 0 <= spec.max_concurrency <= MAX_CONCURRENCY:
            raise InvalidArgument(
                f"max_concurrency must be between 1 and {MAX_CONCURRENCY}, "
                f"got {spec.max_concurrency}"
            )
        agent_id = spec.agent_id or f"{spec.name}-{uuid.uuid4().hex[:10]}"
        old = self._agents.get(agent_id)
        if old is not None and old.namespace != spec.namespace:
            # Checked first, and whatever the secret: an id is never moved between
            # namespaces, and nothing more about the other one (which, its agent's
            # state) is told.
            raise PermissionDenied(
                f"agent id {agent_id!r} belongs to another namespace; join under another id"
            )
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
        return agent_id, old

    def add(
        self,
        spec: d.AgentSpec,
        agent_id: str,
        sink: d.AgentSink | None,
        transport: str,
        old: d.Agent | None,
    ) -> d.Agent:
        """Register a new session of ``agent_id`` (checked by ``admit``; ``old`` is the
        agent it resumes, whose totals it keeps) under a fresh session secret."""
        names = [c.name for c in spec.capabilities]
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
            last_seen=self._clock.now(),
            last_seen_wall=now,
            draining=spec.max_concurrency == 0,
            namespace=spec.namespace,
        )
        if old is not None:
            agent.completed, agent.failed = old.completed, old.failed
            agent.total_duration_ms = old.total_duration_ms
        self._agents[agent_id] = agent
        for name in agent.capability_names:
            self._by_capability.setdefault((agent.namespace, name), {})[agent_id] = agent
        log.info(
            "agent %s joined (%s, namespace %s, capabilities %s)",
            agent_id,
            transport,
            agent.namespace,
            sorted(names),
            extra={"agent_id": agent_id, "namespace": agent.namespace},
        )
        return agent

    def disconnect(self, agent: d.Agent) -> Held:
        """Mark ``agent`` offline (it stays known) and take back every slot it held."""
        agent.connected = False
        agent.last_seen_wall = d.utcnow()
        for name in agent.capability_names:
            members = self._by_capability.get((agent.namespace, name))
            if members is not None and members.get(agent.id) is agent:
                del members[agent.id]
        held = list(agent.in_flight.items())
        agent.in_flight.clear()
        return held

    def release(
        self,
        agent: d.Agent,
        task_id: str,
        attempt: int,
        ok: bool,
        duration_ms: float,
        health: bool | None = None,
    ) -> None:
        """The agent reported on ``attempt`` of the task: free its slot, once, and count
        the outcome in its totals, and ``health`` (None: neither way) in its breaker
        (``on_breaker`` hears a change)."""
        slot = agent.in_flight.pop((task_id, attempt), None)
        if slot is not None:
            if ok:
                agent.completed += 1
            else:
                agent.failed += 1
            agent.total_duration_ms += duration_ms
            old = agent.breaker
            if health is not None and breakers.record(
                agent, health, self._clock.now(), self.breaker_policy
            ):
                self._changed(agent, old)

    def cool(self) -> list[d.Agent]:
        """Open breakers whose cool-down is over become half-open: those agents."""
        now = self._clock.now()
        cooled = [a for a in self._agents.values() if a.connected and breakers.cooled(a, now)]
        for agent in cooled:
            self._changed(agent, "open")
        return cooled

    def _changed(self, agent: d.Agent, old: str) -> None:
        if self.on_breaker is not None:
            self.on_breaker(agent, old, agent.breaker)

    def remove(self, agent_id: str) -> None:
        """Forget the (offline) agent ``agent_id``: its id may then be taken by anyone."""
        del self._agents[agent_id]

    def sweep(self, keep: Callable[[d.Agent], bool]) -> Iterator[tuple[d.Agent, float]]:
        """Yield ``(agent, seconds of silence)`` for each connected agent whose
        heartbeats stopped, for the caller to take offline; forget, as it goes, the
        agents offline for longer than ``offline_agent_retention_s`` unless
        ``keep(agent)``.

        Heartbeats are optional on a stream: a stream agent that has never sent one is
        left to its transport. Once it has sent one, and for polling agents always,
        silence past ``heartbeat_timeout_ms`` counts."""
        now = self._clock.now()
        timeout = self._settings.heartbeat_timeout_ms / 1000
        for agent in list(self._agents.values()):
            judged = agent.heartbeats or agent.transport != "stream"
            if agent.connected and judged and now - agent.last_seen > timeout:
                yield agent, now - agent.last_seen
            elif (
                not agent.connected
                and now - agent.last_seen > self._settings.offline_agent_retention_s
                and not keep(agent)
            ):
                del self._agents[agent.id]

    # ----------------------------------------------------------------- alive

    def touch(self, agent: d.Agent) -> None:
        """Any message from the agent: it is alive."""
        agent.last_seen = self._clock.now()
        agent.last_seen_wall = d.utcnow()

    def heartbeat(self, agent: d.Agent, healthy: bool) -> bool:
        """A heartbeat: alive, and judged by its heartbeats from now on. True when it
        reports healthy after it had reported unhealthy (it can take tasks again)."""
        agent.heartbeats = True
        agent.last_seen = self._clock.now()
        agent.last_seen_wall = d.utcnow()
        if healthy != agent.healthy:
            agent.healthy = healthy
            return healthy
        return False

    def drain(self, agent: d.Agent) -> None:
        """The agent takes no new tasks; it keeps and finishes what it holds."""
        agent.draining = True

    # --------------------------------------------------------------- lookups

    def get(self, agent_id: str) -> d.Agent | None:
        """The current session of ``agent_id``, connected or not; None if unknown."""
        return self._agents.get(agent_id)

    def require(self, agent_id: str, namespace: str | None = None) -> d.Agent:
        """Like ``get``, but raises NotFound for an unknown id, and (the same NotFound:
        nothing tells that it exists) for an agent of another namespace than
        ``namespace`` (None: any namespace)."""
        agent = self._agents.get(agent_id)
        if agent is None or (namespace is not None and agent.namespace != namespace):
            raise NotFound(f"agent {agent_id!r} not found")
        return agent

    def act_as(self, agent_id: str, session_secret: str) -> d.Agent:
        """The agent for a call made as it: NotFound, or PermissionDenied without the
        secret of its session."""
        agent = self.require(agent_id)
        if not hmac.compare_digest(agent.session_secret.encode(), session_secret.encode()):
            raise PermissionDenied(
                f"calls as agent {agent_id!r} need its session_secret (from RegisterAgent)"
            )
        return agent

    def all(self) -> list[d.Agent]:
        """Every known agent (a copy: safe to change the registry meanwhile)."""
        return list(self._agents.values())

    def listed(self, include_offline: bool, type_: str, namespace: str | None) -> list[d.Agent]:
        """The connected agents (``include_offline``: all), of ``type_`` if given, of
        ``namespace`` (None: of every namespace)."""
        return [
            a
            for a in self._agents.values()
            if (include_offline or a.connected)
            and (not type_ or a.type == type_)
            and (namespace is None or a.namespace == namespace)
        ]

    def having(self, capability: str, include_offline: bool, namespace: str) -> list[d.Agent]:
        """The connected agents (``include_offline``: all) of ``namespace`` advertising
        ``capability``."""
        return [
            a
            for a in self._agents.values()
            if capability in a.capability_names
            and a.namespace == namespace
            and (include_offline or a.connected)
        ]

    def capabilities(self, namespace: str | None) -> set[str]:
        """Every capability a registered agent (connected or not) of ``namespace``
        (None: of any namespace) advertises."""
        return {
            c
            for a in self._agents.values()
            if namespace is None or a.namespace == namespace
            for c in a.capability_names
        }

    def live(self, key: CapKey) -> Iterable[d.Agent]:
        """The connected agents of namespace ``key[0]`` advertising capability
        ``key[1]``, in the order they joined."""
        return self._by_capability.get(key, {}).values()

    def has_live(self, key: CapKey) -> bool:
        """Whether a connected agent of namespace ``key[0]`` advertises ``key[1]``."""
        return bool(self._by_capability.get(key))

    def live_capabilities(self, namespace: str) -> list[str]:
        """The capabilities connected agents of ``namespace`` advertise, sorted."""
        return sorted(c for (ns, c), ids in self._by_capability.items() if ids and ns == namespace)
