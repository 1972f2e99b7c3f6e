"""The Prometheus exposition: counters and histograms from events and finished tasks, the
scrape-time gauges (and a callback that raises), bounded labels, no ids in any label,
separate registries per exporter. Read back with prometheus_client's own parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from coordinator.domain import JsonObject, MeshEvent, Task, TaskStatus
from coordinator.monitor.prometheus import (
    DISPATCH_BUCKETS,
    OVERFLOW,
    GaugeValues,
    PrometheusExporter,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


_position = 0


def ev(
    type: str,
    execution: str = "exec-1",
    s: float = 0.0,
    *,
    step: str = "",
    ns: str = "a",
    workflow: str = "w",
    durable: bool = True,
    **data: str | int,
) -> MeshEvent:
    global _position
    _position += 1
    payload: JsonObject = dict(data)
    return MeshEvent(
        position=_position,
        type=type,
        time=at(s),
        namespace=ns,
        execution_id=execution,
        workflow_name=workflow,
        step_id=step,
        task_id="task-9",
        agent_id="agent-7",
        data=payload,
        durable=durable,
    )


def task(
    status: TaskStatus,
    *,
    capability: str = "build",
    ns: str = "a",
    assigned: float | None = 0.002,
    started: float | None = 0.5,
    ended: float | None = 3.0,
) -> Task:
    return Task(
        id="task-1",
        name="",
        capability=capability,
        input={},
        timeout_ms=0,
        idempotency_key="",
        max_retries=0,
        priority=0,
        labels={},
        execution_id="exec-1",
        step_id="s",
        pinned_agent="",
        created_at=T0,
        seq=0,
        status=status,
        agent_id="agent-1",
        assigned_at=None if assigned is None else at(assigned),
        started_at=None if started is None else at(started),
        ended_at=None if ended is None else at(ended),
        namespace=ns,
    )


def scrape(exporter: PrometheusExporter) -> list[Sample]:
    body, content_type = exporter.render()
    assert content_type == CONTENT_TYPE_LATEST
    return [s for f in text_string_to_metric_families(body.decode()) for s in f.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    """The value of the one sample ``name`` whose labels are exactly ``labels``."""
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) <= 1
    return found[0] if found else None


def agentmesh(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if s.name.startswith("agentmesh_")]


def feed(exporter: PrometheusExporter, *events: MeshEvent) -> PrometheusExporter:
    for e in events:
        exporter.observe(e)
    return exporter


# ---------------------------------------------------------------- executions and steps


def test_executions_by_workflow_and_outcome() -> None:
    m = feed(
        PrometheusExporter(),
        ev("execution.started", "e1"),
        ev("execution.completed", "e1", 1),
        ev("execution.started", "e2"),
        ev("execution.completed", "e2", 2),
        ev("execution.started", "e3"),
        ev("execution.failed", "e3", 3),
        ev("execution.cancelled", "e4", 4, workflow="other", ns="b"),
    )
    got = scrape(m)
    total = "agentmesh_executions_total"
    assert value(got, total, namespace="a", workflow="w", outcome="completed") == 2
    assert value(got, total, namespace="a", workflow="w", outcome="failed") == 1
    assert value(got, total, namespace="a", workflow="w", outcome="cancelled") is None
    assert value(got, total, namespace="b", workflow="other", outcome="cancelled") == 1
    assert value(got, "agentmesh_executions_started_total", namespace="a", workflow="w") == 3
    assert value(got, "agentmesh_executions_started_total", namespace="b", workflow="other") is None


def test_step_outcomes_and_durations() -> None:
    m = feed(
        PrometheusExporter(),
        ev("execution.started", "e1"),
        ev("step.started", "e1", 0, step="fetch"),
        ev("step.completed", "e1", 0.2, step="fetch"),
        ev("step.started", "e1", 1, step="build", attempt=1),
        ev("step.retrying", "e1", 2, step="build"),
        ev("step.started", "e1", 3, step="build", attempt=2),  # still timed from 1
        ev("step.failed", "e1", 41, step="build"),
        ev("step.started", "e1", 50, step="maybe"),
        ev("step.skipped", "e1", 50, step="maybe"),
        ev("step.completed", "e1", 60, step="never-started"),  # counted, not timed
    )
    got = scrape(m)
    steps = "agentmesh_steps_total"
    assert value(got, steps, namespace="a", workflow="w", outcome="completed") == 2
    assert value(got, steps, namespace="a", workflow="w", outcome="failed") == 1
    assert value(got, steps, namespace="a", workflow="w", outcome="retrying") == 1
    assert value(got, steps, namespace="a", workflow="w", outcome="skipped") == 1
    duration = "agentmesh_step_duration_seconds"
    assert value(got, duration + "_count", namespace="a", workflow="w") == 2
    assert value(got, duration + "_sum", namespace="a", workflow="w") == pytest.approx(40.2)
    assert value(got, duration + "_bucket", namespace="a", workflow="w", le="0.25") == 1
    assert value(got, duration + "_bucket", namespace="a", workflow="w", le="30.0") == 1
    assert value(got, duration + "_bucket", namespace="a", workflow="w", le="60.0") == 2


def test_parallel_items_of_one_step_are_matched_first_in_first_out() -> None:
    m = feed(
        PrometheusExporter(),
        ev("step.started", "e1", 0, step="each"),
        ev("step.started", "e1", 1, step="each"),
        ev("step.completed", "e1", 4, step="each"),
        ev("step.completed", "e1", 5, step="each"),
    )
    got = scrape(m)
    assert value(got, "agentmesh_step_duration_seconds_sum", namespace="a", workflow="w") == 8


def test_a_step_event_without_a_workflow_name_takes_its_executions() -> None:
    m = feed(
        PrometheusExporter(),
        ev("execution.started", "e1", workflow="deploy"),
        ev("step.started", "e1", 0, step="s", workflow=""),
        ev("step.completed", "e1", 1, step="s", workflow=""),
    )
    got = scrape(m)
    labels = {"namespace": "a", "workflow": "deploy"}
    assert value(got, "agentmesh_steps_total", **labels, outcome="completed") == 1
    assert value(got, "agentmesh_step_duration_seconds_count", **labels) == 1


def test_pending_starts_are_dropped_when_the_execution_ends() -> None:
    m = feed(
        PrometheusExporter(),
        ev("step.started", "e1", 0, step="s"),
        ev("execution.cancelled", "e1", 1),
        ev("step.completed", "e1", 2, step="s"),  # late: its start is forgotten
    )
    assert m._runs == {}
    got = scrape(m)
    assert value(got, "agentmesh_step_duration_seconds_count", namespace="a", workflow="w") is None


def test_unfinished_executions_tracked_are_bounded() -> None:
    m = PrometheusExporter(max_executions=2)
    for i in range(5):
        m.observe(ev("step.started", f"e{i}", 0, step="s"))
    assert len(m._runs) == 2
    m.observe(ev("step.completed", "e0", 1, step="s"))  # evicted: counted, not timed
    m.observe(ev("step.completed", "e4", 1, step="s"))
    got = scrape(m)
    assert (
        value(got, "agentmesh_steps_total", namespace="a", workflow="w", outcome="completed") == 2
    )
    assert value(got, "agentmesh_step_duration_seconds_count", namespace="a", workflow="w") == 1


def test_every_event_counts_by_type_but_live_ones_leave_executions_alone() -> None:
    m = feed(
        PrometheusExporter(),
        ev("agent.joined", execution="", durable=False),
        ev("agent.joined", execution="", durable=False),
        ev("execution.completed", "e1", durable=False),
        ev("execution.completed", "e2"),
    )
    got = scrape(m)
    assert value(got, "agentmesh_events_total", type="agent.joined") == 2
    assert value(got, "agentmesh_events_total", type="execution.completed") == 2
    total = "agentmesh_executions_total"
    assert value(got, total, namespace="a", workflow="w", outcome="completed") == 1


# ---------------------------------------------------------------- tasks, commits, lag


def test_finished_tasks_durations_and_dispatch_latency() -> None:
    m = PrometheusExporter()
    m.task_finished(task(TaskStatus.COMPLETED))
    m.task_finished(task(TaskStatus.COMPLETED, started=None, assigned=1.0, ended=2.0))
    m.task_finished(task(TaskStatus.FAILED))
    m.task_finished(task(TaskStatus.CANCELLED, assigned=None, started=None, ended=1.0))
    m.task_finished(task(TaskStatus.RUNNING))  # not finished: ignored
    got = scrape(m)
    tasks = "agentmesh_tasks_total"
    assert value(got, tasks, namespace="a", capability="build", outcome="completed") == 2
    assert value(got, tasks, namespace="a", capability="build", outcome="failed") == 1
    assert value(got, tasks, namespace="a", capability="build", outcome="cancelled") == 1
    duration = "agentmesh_task_duration_seconds"
    assert value(got, duration + "_count", capability="build") == 3  # never assigned: untimed
    assert value(got, duration + "_sum", capability="build") == pytest.approx(2.5 + 1.0 + 2.5)
    latency = "agentmesh_dispatch_latency_seconds"
    assert value(got, latency + "_count", capability="build") == 3
    assert value(got, latency + "_bucket", capability="build", le="0.0025") == 2
    assert value(got, latency + "_sum", capability="build") == pytest.approx(1.004)
    assert min(DISPATCH_BUCKETS) < 0.001  # sub-millisecond dispatch is resolved


def test_store_commits_and_loop_lag() -> None:
    m = PrometheusExporter()
    m.observe_commit(0.0003)
    m.observe_commit(0.02)
    m.set_loop_lag(0.125)
    got = scrape(m)
    assert value(got, "agentmesh_store_commit_seconds_count") == 2
    assert value(got, "agentmesh_store_commit_seconds_bucket", le="0.0005") == 1
    assert value(got, "agentmesh_event_loop_lag_seconds") == 0.125


# ---------------------------------------------------------------- scrape-time gauges


def test_gauges_are_read_from_the_callback_at_each_scrape() -> None:
    values = GaugeValues(
        queue_depth={("a", "build"): 3, ("b", "lint"): 0},
        agents={("a", "online"): 2, ("a", "busy"): 1},
        active_executions={"a": 4},
        subscribers=5,
    )
    current = [values]
    m = PrometheusExporter(gauges=lambda: current[0])
    got = scrape(m)
    assert value(got, "agentmesh_queue_depth", namespace="a", capability="build") == 3
    assert value(got, "agentmesh_queue_depth", namespace="b", capability="lint") == 0
    assert value(got, "agentmesh_agents", namespace="a", status="online") == 2
    assert value(got, "agentmesh_agents", namespace="a", status="busy") == 1
    assert value(got, "agentmesh_active_executions", namespace="a") == 4
    assert value(got, "agentmesh_event_subscribers") == 5
    current[0] = GaugeValues(subscribers=1)
    got = scrape(m)
    assert value(got, "agentmesh_event_subscribers") == 1
    assert value(got, "agentmesh_queue_depth", namespace="a", capability="build") is None


def test_integrations_and_gates_are_scraped() -> None:
    values = GaugeValues(
        gated=7,
        services={("a", "github"): ("open", 12, 5, 7)},
        webhooks={"a": (3, 1, 40)},
    )
    got = scrape(PrometheusExporter(gauges=lambda: values))
    assert value(got, "agentmesh_gated_tasks") == 7
    states = {
        s: value(got, "agentmesh_service_breaker", namespace="a", service="github", state=s)
        for s in ("closed", "half-open", "open")
    }
    assert states == {"closed": 0, "half-open": 0, "open": 1}
    assert value(got, "agentmesh_service_calls_total", namespace="a", service="github") == 12
    cache = "agentmesh_service_cache_total"
    assert value(got, cache, namespace="a", service="github", result="hit") == 5
    assert value(got, cache, namespace="a", service="github", result="miss") == 7
    assert value(got, "agentmesh_webhook_pending", namespace="a") == 3
    assert value(got, "agentmesh_webhook_dead_letters", namespace="a") == 1
    assert value(got, "agentmesh_webhook_delivered_total", namespace="a") == 40


def test_a_raising_callback_costs_its_gauges_not_the_scrape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> GaugeValues:
        raise RuntimeError("registry is gone")

    m = PrometheusExporter(gauges=broken)
    m.task_finished(task(TaskStatus.COMPLETED))
    got = scrape(m)
    assert (
        value(got, "agentmesh_tasks_total", namespace="a", capability="build", outcome="completed")
        == 1
    )
    assert value(got, "agentmesh_event_subscribers") is None
    assert value(got, "agentmesh_metrics_callback_errors_total") == 1
    assert "registry is gone" in caplog.text


# ---------------------------------------------------------------- labels and registries


def test_no_label_carries_an_id() -> None:
    m = feed(
        PrometheusExporter(gauges=GaugeValues),
        ev("execution.started", "exec-1"),
        ev("step.started", "exec-1", 0, step="s"),
        ev("step.completed", "exec-1", 1, step="s"),
        ev("task.completed", "exec-1", 1, step="s"),
        ev("execution.completed", "exec-1", 2),
    )
    m.task_finished(task(TaskStatus.COMPLETED))
    samples = agentmesh(scrape(m))
    assert samples
    ids = {"exec-1", "task-1", "task-9", "agent-1", "agent-7", "s"}
    allowed = {"namespace", "workflow", "outcome", "capability", "status", "type", "le"}
    for s in samples:
        assert set(s.labels) <= allowed, s
        assert not ids & set(s.labels.values()), s


def test_label_values_are_bounded() -> None:
    m = PrometheusExporter(max_label_values=2)
    for capability in ("a", "b", "c", "d"):
        m.task_finished(task(TaskStatus.COMPLETED, capability=capability))
    got = scrape(m)
    tasks = "agentmesh_tasks_total"
    assert value(got, tasks, namespace="a", capability="a", outcome="completed") == 1
    assert value(got, tasks, namespace="a", capability="b", outcome="completed") == 1
    assert value(got, tasks, namespace="a", capability=OVERFLOW, outcome="completed") == 2


def test_two_exporters_share_nothing() -> None:
    one, two = PrometheusExporter(), PrometheusExporter()
    one.observe(ev("execution.completed", "e1"))
    one.set_loop_lag(1.0)
    assert one.registry is not two.registry
    first, second = scrape(one), scrape(two)
    labels = {"namespace": "a", "workflow": "w", "outcome": "completed"}
    assert value(first, "agentmesh_executions_total", **labels) == 1
    assert value(second, "agentmesh_executions_total", **labels) is None
    assert value(second, "agentmesh_event_loop_lag_seconds") == 0


def test_process_metrics_can_be_left_out() -> None:
    assert not [
        s for s in scrape(PrometheusExporter(process_metrics=False)) if s.name.startswith("python_")
    ]
    assert [s for s in scrape(PrometheusExporter()) if s.name == "python_info"]


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        PrometheusExporter(max_executions=0)
