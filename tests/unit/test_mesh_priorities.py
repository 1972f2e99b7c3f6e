"""Priorities with aging, on a manual clock: the most urgent queued task goes first, and a
low-priority task that has waited long enough is not starved by newer urgent ones."""

from __future__ import annotations

from coordinator import domain as d
from coordinator.mesh import Mesh
from tests.conftest import fast_settings
from tests.unit.test_mesh import ManualClock, Recorder, spec


def run_in_order(mesh: Mesh, clock: ManualClock, submit: list[tuple[str, int, float]]) -> list[str]:
    """Queue ``(name, priority, seconds after the previous)`` behind a busy agent, then
    let it take them one by one: the names in the order it got them."""
    sink = Recorder()
    agent = mesh.join(spec("a", ["x"], credits=1), sink, "stream")
    blocker = mesh.submit(d.TaskSpec("x", {"name": "blocker"}))
    names = {}
    for name, priority, later in submit:
        clock.advance(later)
        names[mesh.submit(d.TaskSpec("x", {"name": name}, priority=priority)).id] = name
    order = []
    last = blocker.id
    for _ in submit:
        mesh.on_result(agent, last, 1, output=None)
        last = sink.sent[-1][0]
        order.append(names[last])
    return order


def test_without_aging_priority_is_strict() -> None:
    clock = ManualClock()
    mesh = Mesh(fast_settings(priority_aging_ms=0), clock)
    order = run_in_order(mesh, clock, [("old-low", 0, 0), ("new-high", 5, 3600)])
    assert order == ["new-high", "old-low"]


def test_a_task_that_waited_long_enough_goes_before_newer_urgent_ones() -> None:
    clock = ManualClock()
    mesh = Mesh(fast_settings(priority_aging_ms=10_000), clock)  # 10 s: one level
    order = run_in_order(
        mesh,
        clock,
        [("old-low", 0, 0), ("high-soon", 5, 1), ("high-late", 5, 60), ("mid", 2, 0)],
    )
    # old-low waited 61 s (6 levels) by the time high-late came: it beats that one,
    # not high-soon (which came 1 s after it, 5 levels up)
    assert order == ["high-soon", "old-low", "high-late", "mid"]
