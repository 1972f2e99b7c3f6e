"""Metrics from the event log and finished tasks (rates, durations, steps, agents,
namespaces, the sliding window on a fake clock, the eviction bound, unmatched events),
the health rules, and the process's resources and event-loop lag."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from coordinator.domain import JsonObject, MeshEvent, Task, TaskStatus
from coordinator.monitor.metrics import Metrics, StepSnapshot
from coordinator.monitor.resources import LoopLag, NetworkCounter, Resources, health

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


_position = 0


def ev(
    type: str,
    execution: str,
    ms: float = 0.0,
    *,
    step: str = "",
    ns: str = "a",
    workflow: str = "build",
    durable: bool = True,
    **data: object,
) -> MeshEvent:
    global _position
    _position += 1
    payload: JsonObject = {k: v for k, v in data.items() if isinstance(v, (str, int))}
    return MeshEvent(
        position=_position,
        type=type,
        time=at(ms),
        namespace=ns,
        execution_id=execution,
        workflow_name=workflow,
        step_id=step,
        data=payload,
        durable=durable,
    )


def task(
    status: TaskStatus, latency_ms: float | None = 100.0, *, ns: str = "a", execution: str = ""
) -> Task:
    return Task(
        id="t",
        name="",
        capability="build",
        input={},
        timeout_ms=0,
        idempotency_key="",
        max_retries=0,
        priority=0,
        labels={},
        execution_id=execution,
        step_id="",
        pinned_agent="",
        created_at=T0,
        seq=0,
        status=status,
        agent_id="agent-1",
        ended_at=None if latency_ms is None else at(latency_ms),
        namespace=ns,
    )


def feed(m: Metrics, *events: MeshEvent) -> Metrics:
    for e in events:
        m.observe(e)
    return m


# ---------------------------------------------------------------- executions


def test_execution_rates_and_durations() -> None:
    m = feed(
        Metrics(),
        ev("execution.started", "e1", 0),
        ev("execution.completed", "e1", 1000),
        ev("execution.started", "e2", 0),
        ev("execution.completed", "e2", 3000),
        ev("execution.started", "e3", 500),
        ev("execution.failed", "e3", 1500),
        ev("execution.queued", "e4", 0),
        ev("execution.cancelled", "e4", 9000),  # cancelled while queued: no duration
        ev("execution.queued", "e5", 0),
        ev("execution.started", "e5", 100),  # the same execution, counted once
        ev("execution.paused", "e5", 200),
        ev("execution.resumed", "e5", 300),
    )
    w = m.workflow("a", "build")
    assert (w.total_executions, w.active_executions) == (5, 1)
    assert (w.completed_executions, w.failed_executions, w.cancelled_executions) == (2, 1, 1)
    assert w.success_rate == pytest.approx(2 / 4)
    assert w.error_rate == pytest.approx(1 / 4)  # cancelled: neither success nor error
    assert w.average_duration_ms == pytest.approx((1000 + 3000 + 1000) / 3)
    assert m.workflows("a") == ["build"]
    assert m.system("a").active_workflows == 1


def test_an_unknown_workflow_is_all_zero() -> None:
    w = Metrics().workflow("a", "nope")
    assert (w.total_executions, w.success_rate, w.error_rate, w.average_duration_ms) == (
        0,
        0.0,
        0.0,
        0.0,
    )
    assert w.step_metrics == {} and w.agent_utilization == {}


# ---------------------------------------------------------------- steps


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [("step.started", 0, 1), ("step.completed", 400, 1)],
            StepSnapshot(count=1, average_duration_ms=400.0),
            id="one attempt",
        ),
        pytest.param(
            [
                ("step.started", 0, 1),
                ("step.retrying", 100, 2),
                ("step.retrying", 300, 3),
                ("step.completed", 900, 3),
            ],
            StepSnapshot(count=3, average_duration_ms=900.0, retry_rate=2 / 3),
            id="two retries then success",
        ),
        pytest.param(
            [
                ("step.started", 0, 1),
                ("step.retrying", 100, 2),
                ("step.started", 200, 2),  # a retry's own start: not a new attempt
                ("step.failed", 500, 2),
            ],
            StepSnapshot(count=2, average_duration_ms=500.0, error_rate=0.5, retry_rate=0.5),
            id="retried then failed",
        ),
        pytest.param(
            [("step.started", 0, 1), ("step.skipped", 0, 1)],
            StepSnapshot(count=0),
            id="skipped",
        ),
        pytest.param(
            [
                ("step.started", 0, 1),
                ("step.started", 100, 1),
                ("step.completed", 600, 1),  # the second item ends first
                ("step.completed", 1000, 1),
            ],
            StepSnapshot(count=2, average_duration_ms=(600 - 100 + 1000 - 0) / 2),
            id="map items in parallel",
        ),
    ],
)
def test_step_metrics(events: list[tuple[str, float, int]], expected: StepSnapshot) -> None:
    m = feed(Metrics(), ev("execution.started", "e1", 0))
    for type, ms, attempt in events:
        m.observe(ev(type, "e1", ms, step="s", attempt=attempt))
    got = m.workflow("a", "build").step_metrics["s"]
    assert got.count == expected.count
    assert got.average_duration_ms == pytest.approx(expected.average_duration_ms)
    assert got.error_rate == pytest.approx(expected.error_rate)
    assert got.retry_rate == pytest.approx(expected.retry_rate)


def test_unmatched_events_count_without_durations_or_negatives() -> None:
    m = feed(
        Metrics(),
        ev("step.completed", "ghost", 500, step="s", attempt=1),
        ev("step.skipped", "ghost", 500, step="s"),
        ev("step.failed", "ghost", 600, step="t", attempt=1),
        ev("execution.completed", "ghost", 700),
        ev("execution.failed", "other", 700, workflow=""),  # no name: nothing to count
    )
    w = m.workflow("a", "build")
    assert (w.total_executions, w.active_executions, w.completed_executions) == (0, 0, 1)
    assert w.success_rate == 1.0 and w.average_duration_ms == 0.0
    assert w.step_metrics["s"] == StepSnapshot(count=0)
    assert w.step_metrics["t"].count == 0 and w.step_metrics["t"].average_duration_ms == 0.0
    assert m.system("a").active_workflows == 0


def test_live_events_and_other_types_are_ignored() -> None:
    m = feed(
        Metrics(),
        ev("execution.started", "e1", 0, durable=False),
        ev("agent.joined", "e1", 0),
        ev("task.completed", "", 0, key="k", agent="x"),  # standalone: no execution
    )
    assert m.workflows("a") == []


def test_agent_utilization_is_each_agents_share() -> None:
    m = feed(
        Metrics(),
        ev("execution.started", "e1", 0),
        ev("task.completed", "e1", 10, step="s", key="k1", agent="x"),
        ev("task.completed", "e1", 20, step="s", key="k2", agent="x"),
        ev("task.failed", "e1", 30, step="s", key="k3", agent="y", error="boom"),
        ev("task.completed", "e1", 40, step="s", key="k4", agent="z"),
        ev("task.failed", "e1", 50, step="s", key="k5", agent="", error="no agent"),
    )
    shares = m.workflow("a", "build").agent_utilization
    assert shares == pytest.approx({"x": 0.5, "y": 0.25, "z": 0.25})
    assert sum(shares.values()) == pytest.approx(1.0)


# ---------------------------------------------------------------- namespaces


def test_namespaces_never_see_each_other() -> None:
    m = feed(
        Metrics(),
        ev("execution.started", "e1", 0, ns="a"),
        ev("execution.completed", "e1", 100, ns="a"),
        ev("execution.started", "e1", 0, ns="b"),  # the same id in another namespace
        ev("execution.started", "e2", 0, ns="b"),
        ev("execution.failed", "e2", 300, ns="b"),
        ev("execution.started", "e3", 0, ns="b", workflow="deploy"),
    )
    m.task_finished(task(TaskStatus.COMPLETED, ns="a"))
    m.task_finished(task(TaskStatus.FAILED, ns="b"))
    m.task_finished(task(TaskStatus.FAILED, ns="b"))
    a, b = m.workflow("a", "build"), m.workflow("b", "build")
    assert (a.total_executions, a.active_executions, a.success_rate) == (1, 0, 1.0)
    assert (b.total_executions, b.active_executions, b.error_rate) == (2, 1, 1.0)
    assert m.workflows("a") == ["build"] and m.workflows("b") == ["build", "deploy"]
    assert m.workflow("a", "deploy").total_executions == 0
    sa, sb, every = m.system("a"), m.system("b"), m.system(None)
    assert (sa.active_workflows, sa.total_tasks_processed, sa.error_rate) == (0, 1, 0.0)
    assert (sb.active_workflows, sb.total_tasks_processed, sb.error_rate) == (2, 2, 1.0)
    assert (every.active_workflows, every.total_tasks_processed) == (2, 3)
    assert every.error_rate == pytest.approx(2 / 3)
    assert m.system("c").total_tasks_processed == 0


# ---------------------------------------------------------------- the window


def test_the_sliding_window_ages_tasks_out() -> None:
    clock = Clock(1000.0)
    m = Metrics(window_s=60, clock=clock)
    clock.now = 1000.5
    m.task_finished(task(TaskStatus.COMPLETED, 100.0))
    m.task_finished(task(TaskStatus.COMPLETED, 300.0))
    m.task_finished(task(TaskStatus.CANCELLED, None))  # no end time: no latency
    m.task_finished(task(TaskStatus.RUNNING))  # not finished: ignored
    clock.now = 1010.2
    m.task_finished(task(TaskStatus.FAILED, 500.0))

    s = m.system("a", 1030.0)  # uptime 30 s < window
    assert s.total_tasks_processed == 4
    assert s.tasks_per_second == pytest.approx(4 / 30)
    assert s.error_rate == pytest.approx(1 / 4)
    assert s.avg_task_latency_ms == pytest.approx(300.0)

    s = m.system("a", 1065.0)  # the 1000 s bucket is out, the 1010 s one in
    assert s.tasks_per_second == pytest.approx(1 / 60)
    assert (s.error_rate, s.avg_task_latency_ms) == (1.0, 500.0)

    clock.now = 1070.0  # reuses the 1010 s bucket's slot: the old counts are gone
    m.task_finished(task(TaskStatus.COMPLETED, 50.0))
    s = m.system("a", 1070.5)
    assert s.tasks_per_second == pytest.approx(1 / 60)
    assert (s.error_rate, s.avg_task_latency_ms) == (0.0, 50.0)

    s = m.system("a", 2000.0)
    assert (s.total_tasks_processed, s.tasks_per_second, s.error_rate) == (5, 0.0, 0.0)
    assert s.avg_task_latency_ms == 0.0


def test_the_window_divides_by_at_least_one_second() -> None:
    clock = Clock(5.0)
    m = Metrics(clock=clock)
    m.task_finished(task(TaskStatus.COMPLETED))
    m.task_finished(task(TaskStatus.COMPLETED))
    assert m.system(None).tasks_per_second == pytest.approx(2.0)


@pytest.mark.parametrize("kwargs", [{"window_s": 0.5}, {"max_executions": 0}])
def test_bad_bounds_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Metrics(**kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the bound


def test_unfinished_executions_are_bounded_oldest_evicted() -> None:
    m = Metrics(max_executions=2)
    for i in range(1, 4):
        m.observe(ev("execution.started", f"e{i}", 0))
        m.observe(ev("step.started", f"e{i}", 0, step="s", attempt=1))
    assert m.evictions == 1
    w = m.workflow("a", "build")
    assert (w.total_executions, w.active_executions) == (3, 2)

    feed(  # e1 was evicted: its ends count, with no duration and no negative active
        m,
        ev("step.completed", "e1", 100, step="s", attempt=1),
        ev("execution.completed", "e1", 100),
        ev("step.completed", "e3", 200, step="s", attempt=1),
        ev("execution.completed", "e3", 200),
    )
    w = m.workflow("a", "build")
    assert (w.active_executions, w.completed_executions) == (1, 2)
    assert w.average_duration_ms == pytest.approx(200.0)
    assert w.step_metrics["s"].count == 3
    assert w.step_metrics["s"].average_duration_ms == pytest.approx(200.0)
    assert m.system("a").active_workflows == 1


# ---------------------------------------------------------------- health


@pytest.mark.parametrize(
    ("facts", "status", "reasons"),
    [
        ({}, "healthy", []),
        ({"store_ok": False}, "unhealthy", ["the store is unavailable"]),
        ({"engine_ok": False}, "unhealthy", ["the workflow engine is stopped"]),
        (
            {"loop_lag_ms": 2000.0},
            "unhealthy",
            ["event-loop lag is 2000 ms (unhealthy from 2000 ms)"],
        ),
        (
            {"loop_lag_ms": 250.0},
            "degraded",
            ["event-loop lag is 250 ms (degraded from 250 ms)"],
        ),
        ({"loop_lag_ms": 249.0}, "healthy", []),
        (
            {"starved": ["build", "test", "build"]},
            "degraded",
            [
                "no live agent for queued capability 'build'",
                "no live agent for queued capability 'test'",
            ],
        ),
        (
            {"error_rate": 0.5},
            "degraded",
            ["task error rate is 50% over the metrics window (degraded from 50%)"],
        ),
        ({"error_rate": 0.49}, "healthy", []),
        (
            {"store_ok": False, "starved": ["build"]},
            "unhealthy",
            ["the store is unavailable", "no live agent for queued capability 'build'"],
        ),
        (
            {"loop_lag_ms": 120.0, "lag_degraded_ms": 100.0},
            "degraded",
            ["event-loop lag is 120 ms (degraded from 100 ms)"],
        ),
    ],
)
def test_health_rules(facts: dict[str, object], status: str, reasons: list[str]) -> None:
    args: dict[str, object] = {
        "store_ok": True,
        "engine_ok": True,
        "loop_lag_ms": 0.0,
        "starved": [],
        "error_rate": 0.0,
        **facts,
    }
    assert health(**args) == (status, reasons)  # type: ignore[arg-type]


# ---------------------------------------------------------------- resources


def test_cpu_percent_and_memory() -> None:
    r = Resources()
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    busy = r.cpu_percent()
    assert isinstance(busy, float) and busy > 0.0
    assert r.cpu_percent() >= 0.0
    assert r.memory_bytes() > 1024 * 1024


def test_network_counter() -> None:
    n = NetworkCounter()
    n.received(100)
    n.received(20)
    n.sent(7)
    assert (n.bytes_in, n.bytes_out) == (120, 7)
    with pytest.raises(ValueError):
        n.sent(-1)
    assert Resources().network.bytes_in == 0


@pytest.mark.timeout(5)
async def test_loop_lag_sees_a_blocked_loop() -> None:
    lag = LoopLag(interval=0.05)
    lag.start()
    lag.start()  # already started: no second task
    try:
        await asyncio.wait_for(lag.next_sample(), 1.0)
        time.sleep(0.3)  # noqa: ASYNC251 - blocking the loop is the point
        for _ in range(3):  # the first sample after the block is the late one
            if await asyncio.wait_for(lag.next_sample(), 1.0) >= 200.0:
                break
        assert lag.lag_ms >= 200.0 and lag.max_recent_ms >= 200.0
    finally:
        await lag.stop()
        await lag.stop()
    assert await lag.next_sample() == lag.lag_ms  # stopped: the latest, no wait
