"""Where the next attempt goes and when, or why there is none: one state machine for
the ``Agent``'s reconnects and each ``Client`` call.

A cluster replica that is not the leader refuses with UNAVAILABLE and either names
the leader (``Result.LEADER``) or says an election is under way (``ELECTION``); a
coordinator that is down, starting or stopping is UNAVAILABLE with no hint
(``UNAVAILABLE``; gRPC does not tell a refused connection from a refusing server).
``Failover.next(outcome, now)`` turns how an attempt ended into a ``Decision``:
``Retry(target, delay)`` (``target`` None: ask etcd for the leader first) or
``GiveUp(error)``.  It moves the shared ``Route`` as it decides.

=============  =========================================  ====================================
outcome        agent (``Failover.reconnect``)             client call (``Failover.call``)
=============  =========================================  ====================================
LEADER         go there at once, 3 in a row; then back    go there at once, 3 per call; then
               off (replicas naming each other)           give up
ELECTION       same target every ~0.25 s (jittered), 60   same target every 0.25 s, 120 per
               in a row; then back off                    call; then as UNAVAILABLE
UNAVAILABLE    next seed (or etcd again); in a cluster    in a cluster: next seed (or etcd
               after ~0.25 s (an election follows a dead  again) at once, once per replica
               leader; the same 60), else back off        plus one; else give up
NO_LEADER      as UNAVAILABLE                             give up
CLOSED         next seed (or etcd again), back off        as UNAVAILABLE
FATAL          give up                                    give up
OK, welcomed   reset the counts                           done
=============  =========================================  ====================================

The numbers are ``MAX_REDIRECTS``, ``ELECTION_RETRY_S``, ``AGENT_ELECTION_RETRIES`` and
``CALL_ELECTION_RETRIES``.  "In a cluster": the address lists several seeds or is
``etcd://``, or the failed target came from a redirect (a dead leader whose lease has
not expired yet).  Backoff is exponential from ``first`` to ``longest``, jittered; an
agent's quick retries are jittered too (many agents reconnect at once when a leader
dies), a call's are not.  A call never retries past its deadline: it gives up with
UnavailableError instead.  Giving up leaves the route where it was.

Pure: no I/O, no clock (``now`` is passed in), randomness only from ``rng``.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Literal, TypeAlias

from agent_sdk._discovery import CoordinatorAddress
from agent_sdk._errors import AgentMeshError, UnavailableError

#: Leader redirects followed at once, in a row: then an agent backs off, a call gives up.
MAX_REDIRECTS = 3
#: While a live replica answers "election pending", ask it again this often.
ELECTION_RETRY_S = 0.25
#: Quick retries an agent makes in a row (~15 s) before it backs off.
AGENT_ELECTION_RETRIES = 60
#: "Election pending" retries of one call (~30 s; a call's deadline usually ends it first).
CALL_ELECTION_RETRIES = 120
#: Bound on one etcd endpoint's answer when resolving the leader.
ETCD_LOOKUP_TIMEOUT = 2.0
# Backoff doubles this many times at most (2**n of a huge n overflows a float).
_MAX_DOUBLINGS = 32


class Result(enum.Enum):
    """How one attempt ended."""

    OK = "ok"  # the call returned
    CLOSED = "closed"  # a welcomed stream ended without an error
    LEADER = "leader"  # refused by a replica that named the leader
    ELECTION = "election"  # refused by a live replica that knows no leader yet
    UNAVAILABLE = "unavailable"  # no answer, or UNAVAILABLE without a hint
    NO_LEADER = "no leader"  # etcd named no leader (or could not be read)
    FATAL = "fatal"  # an answer that trying again cannot change


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended, as the drivers report it to ``Failover.next``."""

    result: Result
    target: str = ""  # the address tried ("" when the etcd lookup failed)
    reason: str = ""  # why, for people (a call's give-up message quotes it)
    leader: str | None = None  # LEADER: the address named
    error: AgentMeshError | None = None  # raised if this outcome ends the run
    welcomed: bool = False  # an agent's session was welcomed before it ended
    kind: str = ""  # the reason without what varies between attempts (a status key)

    @classmethod
    def refusal(
        cls,
        target: str,
        leader: str | None,
        electing: bool,
        *,
        reason: str,
        error: AgentMeshError,
        welcomed: bool = False,
        kind: str = "",
    ) -> Outcome:
        """An UNAVAILABLE answer: LEADER if it named one, else ELECTION if an election
        is pending, else UNAVAILABLE."""
        result = (
            Result.LEADER
            if leader is not None
            else Result.ELECTION
            if electing
            else Result.UNAVAILABLE
        )
        return cls(result, target, reason, leader, error, welcomed, kind)


Step = Literal["redirect", "election", "failover", "backoff"]


@dataclass(frozen=True, slots=True)
class Retry:
    """Wait ``delay`` seconds, then try ``target`` (None: ask etcd for the leader)."""

    target: str | None
    delay: float
    step: Step  # why: it says how to report the retry

    @property
    def quick(self) -> bool:
        """A redirect or an election-paced retry rather than a backoff."""
        return self.step != "backoff"


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop: raise ``error``."""

    error: AgentMeshError


@dataclass(frozen=True, slots=True)
class Done:
    """The attempt succeeded: nothing to retry."""


Decision: TypeAlias = Retry | GiveUp | Done


class Route:
    """Where to connect: an address pinned by a redirect (or named by etcd), else the
    current seed; None with ``etcd://`` and nothing pinned (ask etcd).  One per agent
    or client; every call of a client shares it."""

    def __init__(self, address: CoordinatorAddress) -> None:
        self.address = address
        self.seed = 0  # index into address.seeds
        self.pinned: str | None = None
        self.redirected = False  # ``pinned`` is a leader some replica named

    def target(self) -> str | None:
        """The address to try next (None: resolve the leader in etcd first)."""
        if self.pinned is not None:
            return self.pinned
        if self.address.uses_etcd:
            return None
        return self.address.seeds[self.seed]

    def resolved(self, leader: str) -> None:
        """etcd named ``leader``: use it until it fails."""
        self.pinned, self.redirected = leader, False

    def is_redirect(self, target: str) -> bool:
        """Whether ``target`` is the leader a redirect named."""
        return self.redirected and self.pinned == target

    def redirect(self, source: str, leader: str) -> None:
        """``source`` named ``leader``: go there (unless another call moved on already)."""
        if self.target() in (source, None):
            self.pinned, self.redirected = leader, True

    def move_on(self, source: str) -> None:
        """``source`` failed without naming a leader: drop the pin and go to the next
        seed, after a redirect too (the seed that named a dead leader may name it
        still); etcd is asked again.  Nothing moves if another call moved on already."""
        if self.target() not in (source, None):
            return
        self.pinned, self.redirected = None, False
        self.seed = (self.seed + 1) % max(1, len(self.address.seeds))


class Failover:
    """One run of attempts over a ``Route``: an agent's whole life (``reconnect``) or
    one client call (``call``).  Not thread-safe; one run per caller."""

    def __init__(
        self,
        route: Route,
        *,
        backoff: tuple[float, float] | None,
        label: str,
        deadline: float | None,
        timeout: float | None,
        rng: random.Random | None,
    ) -> None:
        self.route = route
        self._backoff = backoff  # None: a call, which gives up instead of backing off
        self._label = label
        self._deadline = deadline
        self._timeout = timeout
        self._rng = rng or random.Random()
        self._election_retries = (
            CALL_ELECTION_RETRIES if backoff is None else AGENT_ELECTION_RETRIES
        )
        address = route.address
        self._max_failovers = (len(address.etcd) if address.uses_etcd else len(address.seeds)) + 1
        self._redirects = self._elections = self._failures = self._failovers = 0

    @classmethod
    def reconnect(
        cls, route: Route, first: float, longest: float, rng: random.Random | None = None
    ) -> Failover:
        """An agent's reconnects: never gives up but on a FATAL outcome."""
        return cls(route, backoff=(first, longest), label="", deadline=None, timeout=None, rng=rng)

    @classmethod
    def call(cls, route: Route, label: str, now: float, timeout: float | None) -> Failover:
        """One call named ``label``, started at ``now``, given ``timeout`` seconds
        (None: no deadline)."""
        deadline = None if timeout is None else now + timeout
        return cls(route, backoff=None, label=label, deadline=deadline, timeout=timeout, rng=None)

    def remaining(self, now: float) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self._deadline is None else max(0.0, self._deadline - now)

    def lookup_timeout(self, now: float) -> float:
        """How long one etcd endpoint may take to name the leader."""
        left = self.remaining(now)
        return ETCD_LOOKUP_TIMEOUT if left is None else min(ETCD_LOOKUP_TIMEOUT, left)

    def next(self, o: Outcome, now: float) -> Decision:
        """What to do after ``o`` (see the module docstring); moves the route."""
        if o.welcomed or o.result is Result.OK:
            self._redirects = self._elections = self._failures = self._failovers = 0
        if o.result is Result.OK:
            return Done()
        if o.result is Result.FATAL:
            return GiveUp(o.error or UnavailableError(o.reason))
        if o.result is Result.LEADER and o.leader is not None:
            return self._redirect(o, o.leader, now)
        if o.result is Result.ELECTION:
            if self._elections < self._election_retries:
                self._elections += 1
                return self._retry(o, self.route.target(), self._pace(), "election", now)
            if self._backoff is not None:
                return self._back_off()  # and ask the same replica again
        if self._backoff is not None:
            return self._reconnect_elsewhere(o)
        return self._fail_over(o, now)

    # ------------------------------------------------------------------ steps

    def _redirect(self, o: Outcome, leader: str, now: float) -> Decision:
        self._redirects += 1
        if self._redirects > MAX_REDIRECTS and self._backoff is None:
            return GiveUp(
                UnavailableError(
                    f"{self._label}: gave up after {MAX_REDIRECTS} leader redirects "
                    f"({o.target} names {leader} as the leader): {o.reason}"
                )
            )
        self.route.redirect(o.target, leader)
        if self._redirects > MAX_REDIRECTS:
            return self._back_off()  # replicas that name each other: no storm
        return self._retry(o, self.route.target(), 0.0, "redirect", now)

    def _reconnect_elsewhere(self, o: Outcome) -> Decision:
        """An agent's attempt failed without a hint (or its session ended)."""
        in_cluster = self._in_cluster(o.target)
        self.route.move_on(o.target)
        if (
            in_cluster
            and o.result is not Result.CLOSED
            and self._elections < self._election_retries
        ):
            # Most likely a dead leader whose lease has not expired yet: an election
            # follows within the TTL, and a live follower redirects once it knows.
            self._elections += 1
            return Retry(self.route.target(), self._pace(), "failover")
        return self._back_off()

    def _fail_over(self, o: Outcome, now: float) -> Decision:
        """A call's attempt failed without a hint (or the election outlasted its budget)."""
        if o.result is Result.NO_LEADER:
            return GiveUp(o.error or UnavailableError(o.reason))
        self._failovers += 1
        if not self._in_cluster(o.target) or self._failovers >= self._max_failovers:
            return GiveUp(o.error or UnavailableError(o.reason))
        if self._out_of_time(now, 0.0):
            return self._timed_out(o)
        self.route.move_on(o.target)
        return Retry(self.route.target(), 0.0, "failover")

    def _retry(
        self, o: Outcome, target: str | None, delay: float, step: Step, now: float
    ) -> Decision:
        if self._out_of_time(now, delay):
            return self._timed_out(o)
        return Retry(target, delay, step)

    def _back_off(self) -> Retry:
        assert self._backoff is not None
        first, longest = self._backoff
        self._failures += 1
        delay = min(longest, first * 2.0 ** min(self._failures - 1, _MAX_DOUBLINGS))
        return Retry(self.route.target(), self._rng.uniform(delay / 2, delay), "backoff")

    def _pace(self) -> float:
        if self._backoff is None:
            return ELECTION_RETRY_S
        return self._rng.uniform(0.5, 1.0) * ELECTION_RETRY_S

    def _in_cluster(self, target: str) -> bool:
        """Whether another replica may answer where ``target`` did not."""
        return self.route.address.replicated or self.route.is_redirect(target)

    def _out_of_time(self, now: float, delay: float) -> bool:
        """Whether a retry after ``delay`` would start at or past the deadline."""
        return self._deadline is not None and now + delay >= self._deadline

    def _timed_out(self, o: Outcome) -> GiveUp:
        where = o.target or "etcd"
        return GiveUp(
            UnavailableError(
                f"{self._label}: no leader answered within the call's timeout "
                f"({self._timeout:g}s); last: {where}: {o.reason}"
            )
        )
