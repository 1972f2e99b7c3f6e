"""The flow-control gates of workflow steps, on a fake clock: a full key holds its own
waiters only (in order), a queued dispatch can be dropped, a rate limit admits with time."""

from __future__ import annotations

import functools

from coordinator.engine import events as ev
from coordinator.engine.gates import Gates


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_key_holds_only_its_own_waiters_in_order() -> None:
    gates = Gates(Clock())
    went: list[str] = []
    one = (ev.Gate("deploy", "api", limit=1),)
    other = (ev.Gate("deploy", "web", limit=1),)
    assert gates.admit(("e1", "t"), "ns", one, lambda: went.append("e1")) == ""
    assert "concurrency limit 1 of 'deploy' reached for key 'api'" in gates.admit(
        ("e2", "t"), "ns", one, lambda: went.append("e2")
    )
    gates.admit(("e3", "t"), "ns", one, lambda: went.append("e3"))
    assert gates.admit(("e4", "t"), "ns", other, lambda: went.append("e4")) == ""
    assert gates.admit(("e5", "t"), "other-ns", one, lambda: went.append("e5")) == ""
    assert went == ["e1", "e4", "e5"] and gates.queued == 2
    gates.release(("e2", "t"))  # cancelled while it waited: dropped
    assert gates.queued == 1 and gates.running("ns", "deploy", "api") == 1
    gates.release(("e1", "t"))
    assert went[-1] == "e3" and gates.queued == 0
    gates.release(("e3", "t"))
    gates.release(("e3", "t"))  # twice: nothing more
    assert gates.running("ns", "deploy", "api") == 0


async def test_a_rate_limit_admits_with_time() -> None:
    clock = Clock()
    gates = Gates(clock)
    went: list[int] = []
    rate = (ev.Gate("g", "", per_second=2.0, burst=2),)
    for i in range(4):
        gates.admit(("e", str(i)), "ns", rate, functools.partial(went.append, i))
    assert went == [0, 1] and gates.queued == 2  # the burst, then wait
    clock.now += 0.5  # one token back
    gates._tick()
    assert went == [0, 1, 2]
    clock.now += 0.5
    gates._tick()
    assert went == [0, 1, 2, 3] and gates.queued == 0
    gates.clear()


def test_arrival_order_holds_across_slots_and_a_moved_line_is_served() -> None:
    gates = Gates(Clock())
    went: list[str] = []
    a, b, c = ev.Gate("a", "", limit=1), ev.Gate("b", "", limit=2), ev.Gate("c", "", limit=1)
    gates.admit(("hold-c", "t"), "ns", (c,), functools.partial(went.append, "hold-c"))
    gates.admit(("w0", "t"), "ns", (b, c), functools.partial(went.append, "w0"))  # waits on c
    # w1 could take a and b now, but w0 came first on b: it waits its turn there
    why = gates.admit(("w1", "t"), "ns", (a, b), functools.partial(went.append, "w1"))
    assert why == "behind earlier tasks for the same slot" and went == ["hold-c"]
    gates.release(("hold-c", "t"))  # w0 goes; b still has room, so w1 goes with it
    assert went == ["hold-c", "w0", "w1"] and gates.queued == 0
    assert gates.running("ns", "b", "") == 2


async def test_a_token_that_came_while_nothing_pumped_is_not_lost() -> None:
    """The stall this once had: a rate-limited line whose head's token came back before
    its timer, then more arrivals behind it, and no timer left to wake anyone."""
    clock = Clock()
    gates = Gates(clock)
    went: list[int] = []
    rate = (ev.Gate("g", "", per_second=10.0, burst=1),)
    gates.admit(("e", "0"), "ns", rate, functools.partial(went.append, 0))
    gates.admit(("e", "1"), "ns", rate, functools.partial(went.append, 1))  # waits 0.1 s
    clock.now += 0.2  # its token is back; the timer has not fired yet
    assert gates.admit(("e", "2"), "ns", rate, functools.partial(went.append, 2))
    assert went == [0, 1] and gates.queued == 1  # the head went; the newcomer waits its turn
    gates.clear()
