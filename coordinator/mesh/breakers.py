"""Circuit breakers per agent: an agent whose recent results mostly fail is taken out of
routing for a cool-down, then probed.

Each agent keeps its last ``window`` results (``agent_breaker_window``; 0 turns breakers
off). When at least half a window of them is known and the failures among them reach
``failure_rate``, the breaker **opens**: the agent's status is ``error``, it is not routed
to (its queued tasks go to other capable agents, or wait for one), and it keeps what it
holds. After ``cooldown`` seconds it is **half-open**: routable again, and its next result
decides: a success closes the breaker (and forgets the failures), a failure opens it again
for another cool-down. Each change is a live event, ``agent.breaker`` ``{from, to}``.

A capability's breaker follows its agents': it is open while agents advertise it and
every connected one has its breaker open; a change that a breaker caused is a
``capability.breaker`` event ``{capability, from, to}``, and a task step's ``fallback``
(another capability, or a workflow) runs instead while it is open.
Results are the agent's own reports: a success, or a failure it marks retryable (its
trouble: a timeout, a dependency down, ``RetryableTaskError``). A non-retryable failure
says the task is wrong, not the agent, and a task lost with the agent is liveness, not
health: neither counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from coordinator import domain as d


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When breakers open and for how long (the ``agent_breaker_*`` settings)."""

    window: int = 10
    failure_rate: float = 0.5
    cooldown_s: float = 30.0


def record(agent: d.Agent, ok: bool, now: float, policy: BreakerPolicy) -> str:
    """Count one result of ``agent`` at ``now`` (monotonic); the breaker's new state
    when it changed, else ""."""
    if policy.window <= 0:
        return ""
    if agent.breaker == "half-open":
        agent.outcomes.clear()
        if ok:
            agent.breaker = "closed"
            return "closed"
        return _open(agent, now, policy)
    agent.outcomes.append(ok)
    del agent.outcomes[: -policy.window]
    failures = agent.outcomes.count(False)
    enough = len(agent.outcomes) >= max(1, (policy.window + 1) // 2)
    if (
        agent.breaker == "closed"
        and enough
        and failures >= policy.failure_rate * len(agent.outcomes)
    ):
        return _open(agent, now, policy)
    return ""


def cooled(agent: d.Agent, now: float) -> bool:
    """Move an open breaker whose cool-down is over to half-open; whether it did."""
    if agent.breaker == "open" and now >= agent.breaker_until:
        agent.breaker = "half-open"
        return True
    return False


def _open(agent: d.Agent, now: float, policy: BreakerPolicy) -> str:
    agent.breaker = "open"
    agent.breaker_until = now + policy.cooldown_s
    return "open"


def capability_open(agents: Iterable[d.Agent]) -> bool:
    """A capability's breaker, from its connected agents': open when there are some and
    every one has its breaker open (a step's ``fallback`` then takes over)."""
    states = [a.breaker for a in agents]
    return bool(states) and all(s == "open" for s in states)
