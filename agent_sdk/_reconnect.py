"""Where an agent connects next, and how long it waits first.

A ``Route`` holds the parsed coordinator address and the reconnect state: the seed to try
next, a leader some replica named (tried before the seeds), and the counts of failures,
redirects and "election pending" answers in a row. ``delay_after`` turns how an attempt
ended (an ``Outcome``) into the next wait: at once after a redirect (up to
``MAX_QUICK_REDIRECTS`` in a row), every ~``ELECTION_RETRY_S`` while an election is under
way (up to ``MAX_QUICK_ELECTION_RETRIES``), else jittered exponential backoff.
``report_retry`` says so through the agent's status reporter, once per change.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from agent_sdk._discovery import CoordinatorAddress, find_leader
from agent_sdk._status import StatusReporter

# Redirects followed at once before the normal backoff applies again.
MAX_QUICK_REDIRECTS = 3
# While a live replica answers "election pending", ask it again every ~ELECTION_RETRY_S
# (jittered), up to MAX_QUICK_ELECTION_RETRIES times in a row (~15 s), before backing off.
ELECTION_RETRY_S = 0.25
MAX_QUICK_ELECTION_RETRIES = 60
# Bound on one etcd endpoint's answer when resolving the leader.
ETCD_LOOKUP_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one connection attempt, and its session if it was welcomed, ended."""

    target: str  # "" when there was nothing to connect to (etcd named no leader)
    connected: bool  # a Welcome arrived in this attempt
    reason: str  # why it ended, for people
    kind: str  # the reason without what varies between attempts: the status report's key
    ended: bool = False  # the session ended without an error (the stream closed)
    leader: str | None = None  # a replica that is not the leader named this one
    election_pending: bool = False  # a live replica answered that no leader is known yet


class Route:
    """The reconnect state of one agent (see the module docstring)."""

    def __init__(self, address: CoordinatorAddress) -> None:
        self.address = address
        self.seed = 0  # index of the seed to try next
        self.redirect: str | None = None  # a leader named by a replica, tried before seeds
        self.failures = 0
        self.redirects = 0
        self.pending = 0

    async def next_target(self) -> str:
        """Where to connect next: a redirect's leader, else the current seed, else
        the leader etcd names (UnavailableError if etcd cannot say)."""
        if self.redirect is not None:
            return self.redirect
        if self.address.uses_etcd:
            return await find_leader(
                self.address.etcd, self.address.prefix, timeout=ETCD_LOOKUP_TIMEOUT
            )
        return self.address.seeds[self.seed % len(self.address.seeds)]

    def target_failed(self) -> None:
        """The last target failed without naming a leader: drop any redirect (back to
        seeds/etcd) and move on to the next seed (the one that redirected us may
        still name a dead leader)."""
        self.redirect = None
        self.seed = (self.seed + 1) % len(self.address.seeds or ("",))

    def delay_after(
        self, outcome: Outcome, reconnect_min: float, reconnect_max: float
    ) -> tuple[float, bool]:
        """Choose the next target and how long to wait before trying it; True when that
        is a quick retry (a redirect, or an election under way) rather than a backoff."""
        if outcome.ended:
            self.failures = self.redirects = self.pending = 0
        electing = outcome.election_pending
        if outcome.leader is not None:
            self.redirects += 1
            self.redirect = outcome.leader
            if self.redirects <= MAX_QUICK_REDIRECTS:
                return 0.0, True
        elif not electing:
            failed_redirect = outcome.target == self.redirect
            self.target_failed()
            # In a cluster, a replica (or the leader a follower named) that does
            # not answer is most likely a dead leader whose lease has not expired
            # yet: an election follows within the TTL. Keep asking quickly.
            electing = not outcome.ended and (failed_redirect or self.address.replicated)
        if electing and self.pending < MAX_QUICK_ELECTION_RETRIES:
            # Without growing the backoff: the agent reconnects as soon as a new
            # leader is up (a live follower redirects once it knows it).
            self.pending += 1
            return random.uniform(0.5, 1.0) * ELECTION_RETRY_S, True
        self.failures += 1
        delay = min(reconnect_max, reconnect_min * 2 ** (self.failures - 1))
        return random.uniform(delay / 2, delay), False


def report_retry(status: StatusReporter, name: str, o: Outcome, delay: float, quick: bool) -> None:
    """Report why the last attempt ended and when the next one starts.  Quick retries
    (several a second) repeat at DEBUG; backoff retries at INFO."""
    repeat = logging.DEBUG if quick else None
    then = "at once" if delay <= 0 else f"in {round(delay, 2):g}s"
    if o.connected and (o.leader is not None or o.election_pending):
        report_disconnected(status, name, o, "")
    if o.leader is not None:
        status.report(
            o.target,
            f"redirected to {o.leader}",
            "agent %s: %s is not the leader; redirected to %s; reconnecting %s",
            name,
            o.target,
            o.leader,
            then,
            repeat_level=repeat,
        )
    elif o.election_pending:
        status.report(
            o.target,
            "election pending",
            "agent %s: %s knows no leader yet (election under way); retrying %s",
            name,
            o.target,
            then,
            repeat_level=repeat,
        )
    elif o.connected:
        report_disconnected(status, name, o, f"; reconnecting {then}")
    elif o.target:
        status.report(
            o.target,
            f"unreachable: {o.kind}",
            "agent %s: cannot reach %s: %s; retrying %s",
            name,
            o.target,
            o.reason,
            then,
            repeat_level=repeat,
        )
    else:
        status.report(
            "leader lookup",
            o.kind,
            "agent %s: %s; retrying %s",
            name,
            o.reason,
            then,
            repeat_level=repeat,
        )


def report_disconnected(status: StatusReporter, name: str, o: Outcome, then: str) -> None:
    """Report that a welcomed session ended (``then``: what happens next, or "")."""
    status.report(
        "",
        f"disconnected from {o.target}: {o.kind}",
        "agent %s: disconnected from %s: %s%s",
        name,
        o.target,
        o.reason,
        then,
    )
