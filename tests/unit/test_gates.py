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
