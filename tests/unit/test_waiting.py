"""Waiting for an agent, without a server: when the mesh says a task waits (and stops
waiting), and what the engine core writes and shows for it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from coordinator import domain as d
from coordinator.engine import events as ev
from coordinator.engine.core import EngineDefaults, Execution
from coordinator.engine.model import RetrySpec, Step, WorkflowDefinition
from coordinator.mesh import Mesh
from coordinator.retry import RetryPolicy, RetryStrategy
from coordinator.waits import WaitChange
from tests.conftest import fast_settings
from tests.unit.test_mesh import Recorder, spec

# ------------------------------------------------------------------ the mesh


@pytest.fixture
async def mesh() -> tuple[Mesh, list[tuple[str, str, str]]]:
    m = Mesh(fast_settings(retry_interval_ms=0, max_redeliveries=5))
    changes: list[tuple[str, str, str]] = []

    def note(c: WaitChange) -> None:
        changes.append((c.task.id, c.reason, c.agent_id))

    m.add_wait_listener(note)
    return m, changes


Changes = tuple[Mesh, list[tuple[str, str, str]]]
NO_X = "no live agent advertises 'x'"


async def test_a_task_nobody_can_take_waits_until_an_agent_joins(mesh: Changes) -> None:
    m, changes = mesh
    t1 = m.submit(d.TaskSpec("x"), wait_for_agent=True)
    t2 = m.submit(d.TaskSpec("x"), wait_for_agent=True)
    assert changes == [(t1.id, NO_X, ""), (t2.id, NO_X, "")]
    assert m.waiting_reason(t1.id) == NO_X
    sink = Recorder()
    agent = m.join(spec("a", ["x", "y"], credits=1), sink, "stream")
    # Both stop waiting for an agent at once; the second now only waits for a credit.
    assert changes[2:] == [(t1.id, "", agent.id), (t2.id, "", agent.id)]
    assert sink.sent == [(t1.id, 1)] and m.waiting_reason(t2.id) == ""
    m.on_result(agent, t1.id, 1, output=1)
    m.on_result(agent, t2.id, 1, output=2)
    assert len(changes) == 4


async def test_queued_behind_a_busy_agent_is_not_waiting_until_the_agent_goes(
    mesh: Changes,
) -> None:
    m, changes = mesh
    agent = m.join(spec("a", ["x"], credits=1), Recorder(), "stream")
    held = m.submit(d.TaskSpec("x"))
    queued = m.submit(d.TaskSpec("x"))
    assert m.pending_count == 1 and changes == []
    m.leave(agent.id, "stream broken")
    # What it held and what was queued behind it: nobody is left to take them.
    assert sorted(changes) == sorted([(held.id, NO_X, ""), (queued.id, NO_X, "")])
    again = m.join(spec("b", ["x"], credits=2), Recorder(), "stream")
    assert sorted(changes[2:]) == sorted([(held.id, "", again.id), (queued.id, "", again.id)])


async def test_a_task_pinned_to_an_absent_agent_waits_for_it(mesh: Changes) -> None:
    m, changes = mesh
    agent = m.join(spec("a", ["x"], agent_id="a-1"), Recorder(), "stream")
    secret = agent.session_secret
    m.leave(agent.id, "stream broken")
    task = m.submit(d.TaskSpec("x", agent_id="a-1"))
    assert changes == [(task.id, "agent 'a-1' is not connected", "")]
    # Another agent with the capability does not help a pinned task.
    m.join(spec("b", ["x"]), Recorder(), "stream")
    assert len(changes) == 1
    sink = Recorder()
    m.join(
        d.AgentSpec("a", "a", (d.CapabilitySpec("x"),), 1, agent_id="a-1", session_secret=secret),
        sink,
        "stream",
    )
    assert changes[1:] == [(task.id, "", "a-1")] and sink.sent == [(task.id, 1)]


async def test_a_cancelled_wait_and_a_shutdown_say_nothing_more(mesh: Changes) -> None:
    m, changes = mesh
    task = m.submit(d.TaskSpec("x"), wait_for_agent=True)
    m.cancel(task.id)
    assert m.waiting_reason(task.id) == "" and len(changes) == 1
    agent = m.join(spec("a", ["x"]), Recorder(), "stream")
    assert len(changes) == 1  # nothing waited any more
    m.submit(d.TaskSpec("x"))
    m.begin_shutdown()
    m.disconnect_all("coordinator shutting down")
    assert len(changes) == 1 and not agent.connected


async def test_a_departure_is_info_and_a_loss_a_warning(
    mesh: Changes, caplog: pytest.LogCaptureFixture
) -> None:
    m, _ = mesh
    caplog.set_level(logging.INFO, logger="coordinator.mesh")
    polite = m.join(spec("planner", ["x"]), Recorder(), "stream")
    m.leave(polite.id, "draining", graceful=True)
    rude = m.join(spec("planner", ["x"]), Recorder(), "stream")
    m.leave(rude.id, "stream broken")
    gone = m.join(spec("poller", ["x"]), None, "poll")
    m.unregister(gone.id)
    left = [(r.levelno, r.getMessage()) for r in caplog.records if "joined" not in r.getMessage()]
    assert left == [
        (logging.INFO, f"agent {polite.id} (planner) left: draining"),
        (logging.WARNING, f"agent {rude.id} offline: stream broken (0 task(s) re-dispatched)"),
        (logging.INFO, f"agent {gone.id} (poller) left: unregistered"),
    ]


# ------------------------------------------------------------- the engine core

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULTS = EngineDefaults(retry=RetryPolicy(RetryStrategy.NONE, 0))


def one_step(retry: RetrySpec | None = None) -> Execution:
    step = Step(id="s", name="s", type="task", capability="x", retry=retry)
    return Execution("e1", WorkflowDefinition("w", (step,)), DEFAULTS)


def journal(out: list[ev.Command | ev.Journal]) -> list[tuple[str, str, str]]:
    return [(j.type, j.step_id, j.message) for j in out if isinstance(j, ev.Journal)]


def test_the_core_writes_each_wait_once_and_shows_it_on_the_run() -> None:
    ex = one_step()
    out = ex.apply(ev.Started(T0, "w"))
    key = next(c for c in out if isinstance(c, ev.DispatchTask)).key
    waiting = ev.TaskWaiting(T0, key, NO_X, "t1", "x")
    assert journal(ex.apply(waiting)) == [("task.waiting", "s", NO_X)]
    assert ex.apply(waiting) == []  # told again (e.g. after a restart): nothing new
    [run] = ex.current_runs()
    assert ex.waiting_reason(run.waiting) == NO_X
    unblocked = ev.TaskUnblocked(T0, key, "a-1", "t1", "x")
    assert journal(ex.apply(unblocked)) == [("task.unblocked", "s", "agent a-1 advertises 'x'")]
    assert ex.apply(unblocked) == [] and ex.waiting_reason(run.waiting) == ""
    assert ex.apply(ev.TaskWaiting(T0, "r9.t1", NO_X, "t9", "x")) == []  # stale key
    ex.apply(ev.TaskCompleted(T0, key, {}))
    assert ex.finished and ex.waiting_reason(key) == ""


def test_a_retried_attempt_that_finds_no_agent_waits_afresh_and_replay_remembers() -> None:
    ex = one_step(retry=RetrySpec(max_attempts=2, interval_ms=10))
    inputs: list[ev.Input] = [ev.Started(T0, "w")]
    first = next(c for c in ex.apply(inputs[0]) if isinstance(c, ev.DispatchTask)).key
    retried: tuple[ev.Input, ...] = (
        ev.TaskWaiting(T0, first, NO_X, "t1", "x"),
        ev.TaskUnblocked(T0, first, "a-1", "t1", "x"),
        ev.TaskFailed(T0, first, ev.StepError("AGENT_LOST", "gone", retryable=True)),
    )
    for e in retried:
        inputs.append(e)
        ex.apply(e)
    timer = ex.current_runs()[0].retry_timer
    fired = ev.TimerFired(T0, timer)
    inputs.append(fired)
    second = next(c for c in ex.apply(fired) if isinstance(c, ev.DispatchTask)).key
    assert second != first
    again = ev.TaskWaiting(T0, second, NO_X, "t2", "x")
    inputs.append(again)
    assert journal(ex.apply(again)) == [("task.waiting", "s", NO_X)]
    replayed = one_step(retry=RetrySpec(max_attempts=2, interval_ms=10))
    for e in inputs:
        replayed.apply(e)
    [run] = replayed.current_runs()
    assert run.waiting == second and replayed.waiting_reason(second) == NO_X
