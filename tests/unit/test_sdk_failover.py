"""The SDK's redirect/failover state machine (``agent_sdk._failover``), without I/O:
each case feeds outcomes, with the time, and checks every decision."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from agent_sdk._discovery import CoordinatorAddress
from agent_sdk._errors import AgentMeshError, AgentRejectedError, RpcError, UnavailableError
from agent_sdk._failover import (
    AGENT_ELECTION_RETRIES,
    CALL_ELECTION_RETRIES,
    ELECTION_RETRY_S,
    Decision,
    Done,
    Failover,
    GiveUp,
    Outcome,
    Result,
    Retry,
    Route,
)

PACE = ELECTION_RETRY_S  # a call's pace; an agent's, with TopJitter, too
SEEDS = ("a:1", "b:1", "c:1")


class TopJitter(random.Random):
    """Jitter that always picks the top of its range: delays become exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


def agent(*seeds: str, etcd: bool = False) -> Failover:
    address = CoordinatorAddress(etcd=("e:2379",)) if etcd else CoordinatorAddress(seeds=seeds)
    return Failover.reconnect(Route(address), 0.1, 2.0, TopJitter())


def call(*seeds: str, timeout: float | None = 10.0, etcd: bool = False) -> Failover:
    address = CoordinatorAddress(etcd=("e:2379",)) if etcd else CoordinatorAddress(seeds=seeds)
    return Failover.call(Route(address), "ListAgents", 0.0, timeout)


def leader(target: str, named: str) -> Outcome:
    reason = f"{target} is not the leader"
    return Outcome(Result.LEADER, target, reason, named, UnavailableError(reason))


def pending(target: str) -> Outcome:
    reason = "no leader elected yet"
    return Outcome(Result.ELECTION, target, reason, error=UnavailableError(reason))


def down(target: str) -> Outcome:
    return Outcome(Result.UNAVAILABLE, target, "refused", error=UnavailableError("refused"))


def closed(target: str) -> Outcome:
    return Outcome(Result.CLOSED, target, "closed", welcomed=True)


def fatal(target: str, error: AgentMeshError) -> Outcome:
    return Outcome(Result.FATAL, target, str(error), error=error)


def no_leader() -> Outcome:
    error = UnavailableError("no coordinator leader registered in etcd")
    return Outcome(Result.NO_LEADER, "", error.message, error=error)


def redirect(to: str) -> Retry:
    return Retry(to, 0.0, "redirect")


def election(to: str | None, delay: float = PACE) -> Retry:
    return Retry(to, delay, "election")


def failover(to: str | None, delay: float = 0.0) -> Retry:
    return Retry(to, delay, "failover")


def backoff(to: str | None, delay: float) -> Retry:
    return Retry(to, delay, "backoff")


#: What a step expects: a decision, or the text of the error given up with.
Expected = Decision | str
Case = tuple[Callable[[], Failover], list[tuple[Outcome, float, Expected]]]

CASES: dict[str, Case] = {
    "agent: a redirect chain is capped, then backs off": (
        lambda: agent("a:1"),
        [
            (leader("a:1", "b:1"), 0, redirect("b:1")),
            (leader("b:1", "c:1"), 0, redirect("c:1")),
            (leader("c:1", "d:1"), 0, redirect("d:1")),
            (leader("d:1", "e:1"), 0, backoff("e:1", 0.1)),
            (leader("e:1", "f:1"), 1, backoff("f:1", 0.2)),
            # the leader a redirect named is dead: back to the seeds, quickly
            (down("f:1"), 2, failover("a:1", PACE)),
        ],
    ),
    "agent: a redirect loop backs off ever longer, up to reconnect_max": (
        lambda: agent("a:1"),
        [
            (leader("a:1", "b:1"), 0, redirect("b:1")),
            (leader("b:1", "a:1"), 0, redirect("a:1")),
            (leader("a:1", "b:1"), 0, redirect("b:1")),
            (leader("b:1", "a:1"), 0, backoff("a:1", 0.1)),
            (leader("a:1", "b:1"), 0, backoff("b:1", 0.2)),
            (leader("b:1", "a:1"), 0, backoff("a:1", 0.4)),
            (leader("a:1", "b:1"), 0, backoff("b:1", 0.8)),
            (leader("b:1", "a:1"), 0, backoff("a:1", 1.6)),
            (leader("a:1", "b:1"), 0, backoff("b:1", 2.0)),
        ],
    ),
    "agent: a Welcome resets the redirect count": (
        lambda: agent("a:1"),
        [
            (leader("a:1", "b:1"), 0, redirect("b:1")),
            (leader("b:1", "c:1"), 0, redirect("c:1")),
            (leader("c:1", "d:1"), 0, redirect("d:1")),
            (Outcome(Result.LEADER, "d:1", "x", "e:1", welcomed=True), 9, redirect("e:1")),
        ],
    ),
    "call: a redirect loop gives up after three hops": (
        lambda: call("a:1"),
        [
            (leader("a:1", "b:1"), 0, redirect("b:1")),
            (leader("b:1", "a:1"), 0, redirect("a:1")),
            (leader("a:1", "b:1"), 0, redirect("b:1")),
            (
                leader("b:1", "a:1"),
                0,
                "UNAVAILABLE: ListAgents: gave up after 3 leader redirects "
                "(b:1 names a:1 as the leader): b:1 is not the leader",
            ),
        ],
    ),
    "call: election pending until the deadline": (
        lambda: call("a:1", timeout=1.0),
        [
            (pending("a:1"), 0.0, election("a:1")),
            (pending("a:1"), 0.25, election("a:1")),
            (pending("a:1"), 0.5, election("a:1")),
            # the next retry would start at the deadline: give up now, saying why
            (
                pending("a:1"),
                0.75,
                "UNAVAILABLE: ListAgents: no leader answered within the call's timeout "
                "(1s); last: a:1: no leader elected yet",
            ),
        ],
    ),
    "call: the election ends in a redirect": (
        lambda: call("a:1"),
        [
            (pending("a:1"), 0.0, election("a:1")),
            (leader("a:1", "b:1"), 0.25, redirect("b:1")),
            (Outcome(Result.OK, "b:1"), 0.3, Done()),
        ],
    ),
    "call: a failover past the deadline gives up": (
        lambda: call("a:1", "b:1", timeout=1.0),
        [
            (
                down("a:1"),
                1.0,
                "UNAVAILABLE: ListAgents: no leader answered within the call's timeout "
                "(1s); last: a:1: refused",
            ),
        ],
    ),
    "agent: election pending is asked again, then backs off": (
        lambda: agent("a:1", "b:1"),
        [
            *[(pending("a:1"), 0, election("a:1")) for _ in range(AGENT_ELECTION_RETRIES)],
            (pending("a:1"), 0, backoff("a:1", 0.1)),  # the same replica, after a backoff
        ],
    ),
    "call: election retries are bounded without a deadline, then it fails over": (
        lambda: call("a:1", "b:1", timeout=None),
        [
            *[(pending("a:1"), 0, election("a:1")) for _ in range(CALL_ELECTION_RETRIES)],
            (pending("a:1"), 0, failover("b:1")),
        ],
    ),
    "call: seeds are rotated, once per seed plus one": (
        lambda: call("a:1", "b:1", "c:1"),
        [
            (down("a:1"), 0, failover("b:1")),
            (down("b:1"), 0, failover("c:1")),
            (down("c:1"), 0, failover("a:1")),
            (down("a:1"), 0, "UNAVAILABLE: refused"),
        ],
    ),
    "call: a dead redirected leader falls back to the seeds": (
        lambda: call("a:1", "b:1"),
        [
            (leader("a:1", "x:1"), 0, redirect("x:1")),
            (down("x:1"), 0, failover("b:1")),  # not a:1: it may name x:1 still
        ],
    ),
    "call: one address without a redirect fails at once": (
        lambda: call("a:1"),
        [(down("a:1"), 0, "UNAVAILABLE: refused")],
    ),
    "call: one address that redirected fails over to itself once": (
        lambda: call("a:1"),
        [
            (leader("a:1", "x:1"), 0, redirect("x:1")),
            (down("x:1"), 0, failover("a:1")),
            (down("a:1"), 0, "UNAVAILABLE: refused"),
        ],
    ),
    "agent: seeds are rotated at the election pace, then backs off": (
        lambda: agent("a:1", "b:1", "c:1"),
        [
            *[
                (down(SEEDS[i % 3]), 0, failover(SEEDS[(i + 1) % 3], PACE))
                for i in range(AGENT_ELECTION_RETRIES)
            ],
            (down("a:1"), 0, backoff("b:1", 0.1)),
        ],
    ),
    "agent: one address backs off and never gives up": (
        lambda: agent("a:1"),
        [
            (down("a:1"), 0, backoff("a:1", 0.1)),
            (down("a:1"), 0, backoff("a:1", 0.2)),
            (down("a:1"), 0, backoff("a:1", 0.4)),
            (closed("a:1"), 0, backoff("a:1", 0.1)),  # welcomed: counts start again
        ],
    ),
    "agent: a session that ended moves on, with a backoff": (
        lambda: agent("a:1", "b:1"),
        [(closed("a:1"), 0, backoff("b:1", 0.1))],
    ),
    "agent: with etcd, a failed lookup is asked again quickly": (
        lambda: agent(etcd=True),
        [(no_leader(), 0, failover(None, PACE))],
    ),
    "call: with etcd, a failed lookup gives up": (
        lambda: call(etcd=True),
        [(no_leader(), 0, "UNAVAILABLE: no coordinator leader registered in etcd")],
    ),
    "call: with etcd, a dead leader is looked up again": (
        lambda: call(etcd=True),
        [(down("x:1"), 0, failover(None))],
    ),
    "fatal answers are not retried (agent)": (
        lambda: agent("a:1", "b:1"),
        [(fatal("a:1", AgentRejectedError("bad hello")), 0, "bad hello")],
    ),
    "fatal answers are not retried (call)": (
        lambda: call("a:1", "b:1"),
        [(fatal("a:1", RpcError("no such agent")), 0, "UNKNOWN: no such agent")],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_decisions(name: str) -> None:
    make, steps = CASES[name]
    machine = make()
    for i, (outcome, now, expected) in enumerate(steps):
        decision = machine.next(outcome, now)
        if isinstance(expected, str):
            assert isinstance(decision, GiveUp), (i, decision)
            assert str(decision.error) == expected, i
        else:
            assert decision == expected, i


def test_give_up_raises_the_outcomes_own_error() -> None:
    error = AgentRejectedError("refused")
    decision = agent("a:1").next(fatal("a:1", error), 0)
    assert isinstance(decision, GiveUp) and decision.error is error


def test_giving_up_leaves_the_route_where_it_was() -> None:
    machine = call("a:1", "b:1")
    for _ in range(2):
        machine.next(down(machine.route.target() or ""), 0)
    assert machine.route.target() == "a:1"
    assert isinstance(machine.next(down("a:1"), 0), GiveUp)
    assert machine.route.target() == "a:1"


def test_calls_sharing_a_route_move_it_once() -> None:
    route = Route(CoordinatorAddress(seeds=("a:1", "b:1", "c:1")))
    first, second = (Failover.call(route, "Call", 0.0, 10.0) for _ in range(2))
    assert first.next(down("a:1"), 0) == failover("b:1")
    # The second call failed on a:1 too: the route moved on already, not to c:1.
    assert second.next(down("a:1"), 0) == failover("b:1")
    assert first.next(leader("b:1", "x:1"), 0) == redirect("x:1")
    assert second.next(leader("a:1", "y:1"), 0) == redirect("x:1")  # a stale hint


def test_backoff_is_jittered_between_half_and_all_of_its_delay() -> None:
    route = Route(CoordinatorAddress(seeds=("a:1",)))
    machine = Failover.reconnect(route, 1.0, 8.0, random.Random(7))
    delays = [machine.next(down("a:1"), 0) for _ in range(6)]
    bounds = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    for d, top in zip(delays, bounds, strict=True):
        assert isinstance(d, Retry) and d.step == "backoff" and top / 2 <= d.delay <= top


def test_a_long_outage_never_overflows_the_backoff() -> None:
    machine = agent("a:1")
    for _ in range(5000):
        decision = machine.next(down("a:1"), 0)
    assert decision == backoff("a:1", 2.0)


def test_an_agents_quick_retries_are_jittered() -> None:
    route = Route(CoordinatorAddress(seeds=("a:1", "b:1")))
    machine = Failover.reconnect(route, 0.1, 2.0, random.Random(3))
    decisions = [machine.next(pending("a:1"), 0) for _ in range(20)]
    delays = {d.delay for d in decisions if isinstance(d, Retry) and d.step == "election"}
    assert len(delays) > 1 and all(PACE / 2 <= d <= PACE for d in delays)


def test_remaining_time_and_the_etcd_lookup_bound() -> None:
    machine = call("a:1", timeout=5.0)
    assert machine.remaining(1.0) == 4.0 and machine.remaining(9.0) == 0.0
    assert machine.lookup_timeout(0.0) == 2.0 and machine.lookup_timeout(4.5) == 0.5
    forever = call("a:1", timeout=None)
    assert forever.remaining(100.0) is None and forever.lookup_timeout(100.0) == 2.0


def test_a_route_pins_what_etcd_names_until_it_fails() -> None:
    route = Route(CoordinatorAddress(etcd=("e:2379",)))
    assert route.target() is None
    route.resolved("l:1")
    assert route.target() == "l:1" and not route.is_redirect("l:1")
    route.move_on("l:1")
    assert route.target() is None
