"""The mesh core on its own: no network, no event loop, a sink that records what it
is told and a clock that moves only when the test says so."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import pytest

import coordinator.mesh
from coordinator import domain as d
from coordinator.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from coordinator.mesh import Mesh
from tests.conftest import fast_settings


@dataclass(order=True)
class _Timer:
    when: float
    seq: int
    fn: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A ``coordinator.mesh.Clock`` that moves only on ``advance``."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._timers: list[_Timer] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, fn: Callable[[], None]) -> _Timer:
        timer = _Timer(self._now + max(0.0, delay), next(self._seq), fn)
        heapq.heappush(self._timers, timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, firing every timer that falls due on the way
        (in order; one set while firing fires too if it is due by then)."""
        end = self._now + seconds
        while self._timers and self._timers[0].when <= end:
            timer = heapq.heappop(self._timers)
            self._now = timer.when
            if not timer.cancelled:
                timer.fn()
        self._now = end

    @property
    def armed(self) -> int:
        """How many timers are set and not cancelled."""
        return sum(not t.cancelled for t in self._timers)


@dataclass
class Recorder:
    sent: list[tuple[str, int]] = field(default_factory=list)
    cancels: list[tuple[str, int]] = field(default_factory=list)
    batches: int = 0
    closed: str = ""
    drained: bool = False

    def send_tasks(self, tasks: Sequence[d.Task]) -> None:
        self.batches += 1
        self.sent.extend((t.id, t.attempt) for t in tasks)

    def send_cancel(self, task_id: str, attempt: int, reason: str) -> None:
        self.cancels.append((task_id, attempt))

    def send_drain(self, reason: str) -> None:
        self.drained = True

    def close(self, reason: str) -> None:
        self.closed = reason


def spec(name: str, caps: Sequence[str], credits: int = 1, agent_id: str = "") -> d.AgentSpec:
    return d.AgentSpec(
        name=name,
        type=name,
        capabilities=tuple(d.CapabilitySpec(c) for c in caps),
        max_concurrency=credits,
        agent_id=agent_id,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def mesh(clock: ManualClock) -> Mesh:
    return Mesh(fast_settings(retry_interval_ms=0, max_redeliveries=2), clock)


def test_join_validates(mesh: Mesh) -> None:
    with pytest.raises(InvalidArgument, match="max_concurrency must be between 1 and 10000"):
        mesh.join(spec("a", ["x"], credits=0), Recorder(), "stream")
    with pytest.raises(InvalidArgument, match="max_concurrency must be between 1 and 10000"):
        mesh.join(spec("a", ["x"], credits=10_001), Recorder(), "stream")
    with pytest.raises(InvalidArgument, match="empty capability name"):
        mesh.join(spec("a", [""]), Recorder(), "stream")


def test_credits_bound_what_an_agent_holds(mesh: Mesh) -> None:
    sink = Recorder()
    agent = mesh.join(spec("a", ["x"], credits=2), sink, "stream")
    tasks = [mesh.submit(d.TaskSpec("x", {"i": i})) for i in range(5)]
    assert [s[0] for s in sink.sent] == [tasks[0].id, tasks[1].id]
    assert mesh.pending_count == 3 and agent.status is d.AgentStatus.BUSY
    mesh.on_result(agent, tasks[0].id, 1, output=1)
    assert [s[0] for s in sink.sent][-1] == tasks[2].id and len(agent.in_flight) == 2
    # raising credits hands out queued work at once, in one batch
    batches = sink.batches
    mesh.set_credits(agent, 4)
    assert sink.batches == batches + 1 and len(agent.in_flight) == 4
    assert mesh.pending_count == 0


def test_timeout_keeps_slot_until_agent_reports(mesh: Mesh, clock: ManualClock) -> None:
    sink = Recorder()
    agent = mesh.join(spec("a", ["x"]), sink, "stream")
    task = mesh.submit(d.TaskSpec("x", timeout_ms=30, max_retries=1))
    clock.advance(0.029)
    assert sink.cancels == [] and task.status is d.TaskStatus.ASSIGNED
    clock.advance(0.001)
    assert sink.cancels == [(task.id, 1)]
    # retried, but the only credit is still held by the timed-out attempt
    assert task.status is d.TaskStatus.PENDING and task.retry_count == 1
    assert len(agent.in_flight) == 1
    mesh.on_result(agent, task.id, 1, failure=d.TaskFailure("CANCELLED", "", True))
    assert task.attempt == 2 and sink.sent[-1] == (task.id, 2)
    assert mesh.on_result(agent, task.id, 2, output="ok")
    assert task.status is d.TaskStatus.COMPLETED


def test_results_are_idempotent(mesh: Mesh) -> None:
    agent = mesh.join(spec("a", ["x"]), Recorder(), "stream")
    task = mesh.submit(d.TaskSpec("x"))
    assert mesh.on_result(agent, task.id, 1, output="first")
    assert not mesh.on_result(agent, task.id, 1, output="second")
    assert not mesh.on_result(None, task.id, 0, failure=d.TaskFailure("E", "late"))
    assert task.result == "first" and mesh.counters.duplicate_results == 2
    assert not mesh.on_result(agent, "unknown", 1, output=1)


def test_agent_loss_redispatches_with_new_attempt(mesh: Mesh) -> None:
    s1, s2 = Recorder(), Recorder()
    a1 = mesh.join(spec("a1", ["x"]), s1, "stream")
    task = mesh.submit(d.TaskSpec("x"))
    assert task.agent_id == a1.id
    a2 = mesh.join(spec("a2", ["x"]), s2, "stream")
    assert mesh.leave(a1.id, "gone") == 1
    assert s2.sent == [(task.id, 2)] and task.agent_id == a2.id
    # the lost agent's late success for attempt 1 is still accepted, once
    assert mesh.on_result(a1, task.id, 1, output="late but fine")
    assert task.status is d.TaskStatus.COMPLETED and s2.cancels == [(task.id, 2)]
    assert not mesh.on_result(a2, task.id, 2, output="dup")
    assert task.result == "late but fine"


def test_redelivery_limit_fails_poison_task(mesh: Mesh) -> None:
    task = None
    for i in range(4):
        agent = mesh.join(spec(f"a{i}", ["x"]), Recorder(), "stream")
        if task is None:
            task = mesh.submit(d.TaskSpec("x"))
        mesh.leave(agent.id, "crashed")
    assert task is not None and task.status is d.TaskStatus.FAILED
    assert task.error is not None and task.error.type == d.TOO_MANY_REDELIVERIES


def test_reconnect_with_same_id_replaces_session(mesh: Mesh) -> None:
    old_sink = Recorder()
    old = mesh.join(spec("a", ["x"], agent_id="agent-1"), old_sink, "stream")
    task = mesh.submit(d.TaskSpec("x"))
    new_sink = Recorder()
    with pytest.raises(PermissionDenied, match="belongs to another session"):
        mesh.join(spec("a", ["x"], agent_id="agent-1"), Recorder(), "stream")
    assert old.connected and not old_sink.closed
    proof = replace(spec("a", ["x"], agent_id="agent-1"), session_secret=old.session_secret)
    new = mesh.join(proof, new_sink, "stream")
    assert new.session_secret != old.session_secret
    assert old_sink.closed and not old.connected and new.connected
    assert new_sink.sent == [(task.id, 2)]
    assert mesh.agents["agent-1"] is new


def test_submission_errors(mesh: Mesh) -> None:
    with pytest.raises(FailedPrecondition, match="no live agent advertises capability 'x'"):
        mesh.submit(d.TaskSpec("x"))
    queued = mesh.submit(d.TaskSpec("x"), wait_for_agent=True)
    assert queued.status is d.TaskStatus.PENDING
    small = Mesh(fast_settings(max_pending_tasks=1), ManualClock())
    small.submit(d.TaskSpec("x"), wait_for_agent=True)
    with pytest.raises(ResourceExhausted, match="1 tasks pending"):
        small.submit(d.TaskSpec("x"), wait_for_agent=True)
    mesh.begin_shutdown()
    with pytest.raises(Unavailable, match="shutting down"):
        mesh.submit(d.TaskSpec("x"), wait_for_agent=True)
    assert mesh.abandon_all("bye") == 1 and queued.status is d.TaskStatus.FAILED
    assert queued.error is not None and queued.error.retryable


def test_liveness_takes_silent_agents_offline(clock: ManualClock) -> None:
    mesh = Mesh(fast_settings(heartbeat_timeout_ms=100), clock)
    sink, quiet_sink, poll_sink = Recorder(), Recorder(), Recorder()
    agent = mesh.join(spec("a", ["x"]), sink, "stream")
    mesh.heartbeat(agent)  # from now on it is judged by its heartbeats
    quiet = mesh.join(spec("q", ["y"]), quiet_sink, "stream")  # never sends one
    poller = mesh.join(spec("p", ["z"]), poll_sink, "poll")
    mesh.submit(d.TaskSpec("x"))
    clock.advance(0.09)  # silent, but not for long enough
    assert mesh.check_liveness() == []
    clock.advance(0.05)
    assert sorted(mesh.check_liveness()) == sorted([agent.id, poller.id])
    assert agent.status is d.AgentStatus.OFFLINE and sink.closed == "heartbeat timeout"
    assert mesh.pending_count == 1
    # Heartbeats are optional on a stream: its transport (keepalive) judges it instead.
    assert quiet.connected and not quiet_sink.closed


def test_a_draining_agent_may_resume_with_no_credits(mesh: Mesh) -> None:
    """A draining agent whose stream broke reconnects only to deliver what it holds:
    max_concurrency 0 resumes it as draining, and it is sent nothing new."""
    old = mesh.join(spec("a", ["x"], agent_id="agent-1"), Recorder(), "stream")
    mesh.leave(old.id, "stream broke")
    task = mesh.submit(d.TaskSpec("x"), wait_for_agent=True)
    back = replace(
        spec("a", ["x"], credits=0, agent_id="agent-1"), session_secret=old.session_secret
    )
    sink = Recorder()
    agent = mesh.join(back, sink, "stream")
    assert agent.connected and agent.status is d.AgentStatus.DRAINING
    assert sink.sent == [] and task.status is d.TaskStatus.PENDING
    with pytest.raises(InvalidArgument, match="0 is only for resuming a known agent id"):
        mesh.join(spec("b", ["x"], credits=0), Recorder(), "stream")


def test_cancel_pending_and_running(mesh: Mesh) -> None:
    sink = Recorder()
    agent = mesh.join(spec("a", ["x"]), sink, "stream")
    running = mesh.submit(d.TaskSpec("x"))
    pending = mesh.submit(d.TaskSpec("x"))
    mesh.cancel(pending.id)
    mesh.cancel(running.id, "stop")
    assert sink.cancels == [(running.id, 1)]
    assert running.status is d.TaskStatus.CANCELLED and pending.status is d.TaskStatus.CANCELLED
    # the cancelled attempt still holds its slot until the agent answers
    assert len(agent.in_flight) == 1
    mesh.on_result(agent, running.id, 1, failure=d.TaskFailure("CANCELLED", ""))
    assert agent.in_flight == {} and sink.sent == [(running.id, 1)]
    assert mesh.active_count == 0


def test_finished_tasks_are_evicted_past_retention(clock: ManualClock) -> None:
    mesh = Mesh(fast_settings(task_retention=3), clock)
    agent = mesh.join(spec("a", ["x"], credits=10), Recorder(), "stream")
    tasks = [mesh.submit(d.TaskSpec("x", idempotency_key=f"k{i}")) for i in range(5)]
    for t in tasks:
        mesh.on_result(agent, t.id, 1, output=None)
    assert set(mesh.tasks) == {t.id for t in tasks[2:]}
    again = mesh.submit(d.TaskSpec("x", idempotency_key="k0"))
    assert again.id != tasks[0].id


def test_a_retry_waits_for_its_backoff_timer(clock: ManualClock) -> None:
    mesh = Mesh(fast_settings(retry_interval_ms=100, retry_jitter=0.0), clock)
    sink = Recorder()
    agent = mesh.join(spec("a", ["x"]), sink, "stream")
    task = mesh.submit(d.TaskSpec("x", max_retries=2))
    mesh.on_result(agent, task.id, 1, failure=d.TaskFailure("E", "flaky", retryable=True))
    assert task.status is d.TaskStatus.PENDING and mesh.pending_count == 0
    clock.advance(0.099)
    assert sink.sent == [(task.id, 1)]
    clock.advance(0.001)
    assert sink.sent == [(task.id, 1), (task.id, 2)] and task.status is d.TaskStatus.ASSIGNED
    # a task cancelled during its backoff never comes back
    mesh.on_result(agent, task.id, 2, failure=d.TaskFailure("E", "flaky", retryable=True))
    assert clock.armed == 1
    mesh.cancel(task.id)
    assert clock.armed == 0
    clock.advance(1.0)
    assert sink.sent[-1] == (task.id, 2) and task.status is d.TaskStatus.CANCELLED


def test_a_timeout_frees_no_credit_until_the_agent_reports(mesh: Mesh, clock: ManualClock) -> None:
    sink = Recorder()
    agent = mesh.join(spec("a", ["x"]), sink, "stream")
    first = mesh.submit(d.TaskSpec("x", timeout_ms=50, max_retries=0))
    second = mesh.submit(d.TaskSpec("x"))
    clock.advance(0.05)
    assert first.status is d.TaskStatus.FAILED and first.error is not None
    assert first.error.type == d.TIMEOUT and sink.cancels == [(first.id, 1)]
    # No longer active (wait_idle is not held up by it), but its slot is still taken.
    assert mesh.active_count == 0 and second.status is d.TaskStatus.PENDING
    clock.advance(60)
    assert sink.sent == [(first.id, 1)]
    assert not mesh.on_result(agent, first.id, 1, failure=d.TaskFailure("CANCELLED", ""))
    assert sink.sent == [(first.id, 1), (second.id, 1)] and mesh.active_count == 1


def test_latency_is_measured_on_the_mesh_clock(mesh: Mesh, clock: ManualClock) -> None:
    agent = mesh.join(spec("a", ["x"]), Recorder(), "stream")
    task = mesh.submit(d.TaskSpec("x"))
    clock.advance(0.25)
    assert mesh.on_result(agent, task.id, 1, output="ok")
    assert mesh.counters.total_latency_ms == pytest.approx(250)


def test_long_offline_agents_are_forgotten_unless_tasks_wait_for_them(
    clock: ManualClock,
) -> None:
    mesh = Mesh(fast_settings(offline_agent_retention_s=10), clock)
    gone = mesh.join(spec("gone", ["x"]), Recorder(), "stream")
    awaited = mesh.join(spec("awaited", ["x"]), Recorder(), "stream")
    mesh.leave(gone.id, "crashed")
    mesh.leave(awaited.id, "crashed")
    pinned = mesh.submit(d.TaskSpec("x", agent_id=awaited.id), wait_for_agent=True)
    clock.advance(10)
    mesh.check_liveness()
    assert mesh.get_agent(gone.id) is gone
    clock.advance(0.5)
    assert mesh.check_liveness() == []
    with pytest.raises(NotFound):
        mesh.get_agent(gone.id)
    assert mesh.get_agent(awaited.id) is awaited and pinned.status is d.TaskStatus.PENDING


def test_is_current_tells_a_replaced_or_unregistered_session(mesh: Mesh) -> None:
    old = mesh.join(spec("a", ["x"], agent_id="agent-1"), Recorder(), "stream")
    assert mesh.is_current(old)
    new = mesh.join(
        replace(spec("a", ["x"], agent_id="agent-1"), session_secret=old.session_secret),
        Recorder(),
        "stream",
    )
    assert not mesh.is_current(old) and mesh.is_current(new)
    mesh.leave(new.id, "stream closed")
    assert mesh.is_current(new)  # offline, but still the session of its id
    mesh.unregister(new.id)
    assert not mesh.is_current(new)


def test_stop_accepting_refuses_newcomers_but_not_completions(mesh: Mesh) -> None:
    sink = Recorder()
    agent = mesh.join(spec("a", ["x"]), sink, "stream")
    task = mesh.submit(d.TaskSpec("x"))
    mesh.stop_accepting()
    assert not mesh.accepting and not sink.drained
    with pytest.raises(Unavailable, match="shutting down"):
        mesh.join(spec("b", ["x"]), Recorder(), "stream")
    with pytest.raises(Unavailable, match="shutting down"):
        mesh.submit(d.TaskSpec("x"))
    assert mesh.on_result(agent, task.id, 1, output="done")


def test_the_default_clock_is_the_running_loops() -> None:
    with pytest.raises(RuntimeError):
        Mesh(fast_settings())  # no running loop, and no clock given


def test_the_public_surface_is_pinned() -> None:
    assert sorted(coordinator.mesh.__all__) == [
        "Clock",
        "Handle",
        "LoopClock",
        "MAX_CONCURRENCY",
        "MAX_ID_CHARS",
        "Mesh",
        "MeshCounters",
        "TaskListener",
    ]
