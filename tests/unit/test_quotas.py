"""Per-namespace quotas: settings (defaults, per-namespace overrides, bad entries), the
checks and their refusals, and the event rate's token bucket on a fake clock."""

from __future__ import annotations

import pytest

from coordinator.config import load_settings
from coordinator.errors import ConfigError, ResourceExhausted
from coordinator.quotas import MAX_BUCKETS, Quotas


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def quotas(clock: Clock | None = None, **overrides: object) -> Quotas:
    settings = load_settings(overrides=dict(overrides), environ={})
    return Quotas(settings, clock or Clock())


def test_no_quota_is_the_default_and_checks_nothing() -> None:
    q = quotas()
    assert not q.enabled
    q.check_queued_tasks("a", 10**9)
    q.check_running_executions("a", 10**9)
    for _ in range(1000):
        q.take_event("a")


def test_a_namespace_entry_overrides_the_defaults_it_names() -> None:
    q = quotas(
        quota_queued_tasks=10,
        quota_running_executions=3,
        namespace_quotas={"big": {"queuedTasks": 100}, "calm": {"events_per_second": 2}},
    )
    assert (q.of("other").queued_tasks, q.of("other").running_executions) == (10, 3)
    assert (q.of("big").queued_tasks, q.of("big").running_executions) == (100, 3)
    assert q.of("calm").events_per_second == 2 and q.of("calm").queued_tasks == 10


def test_the_environment_gives_namespace_quotas_as_json() -> None:
    settings = load_settings(
        environ={"AGENTMESH_NAMESPACE_QUOTAS": '{"a": {"runningExecutions": 1}}'}
    )
    assert settings.quota("a").running_executions == 1
    with pytest.raises(ConfigError, match="expected a JSON object"):
        load_settings(environ={"AGENTMESH_NAMESPACE_QUOTAS": "{not json"})


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"queuedTask": 1}, "queuedTask: Extra inputs are not permitted"),
        ({"queuedTasks": -1}, "greater than or equal to 0"),
        ({"runningExecutions": 1.5}, "runningExecutions"),
    ],
)
def test_a_bad_entry_names_the_namespace_and_the_field(
    entry: dict[str, float], problem: str
) -> None:
    with pytest.raises(ConfigError, match=r"namespace_quotas\.team-a: ") as caught:
        load_settings(overrides={"namespace_quotas": {"team-a": entry}}, environ={})
    assert problem in str(caught.value)


def test_queued_tasks_refuse_past_the_quota_naming_it() -> None:
    q = quotas(namespace_quotas={"a": {"queuedTasks": 3}})
    q.check_queued_tasks("a", 2)
    q.check_queued_tasks("b", 10**6)  # another namespace: no quota
    with pytest.raises(ResourceExhausted, match=r"namespace 'a' has 3 tasks queued .* is 3"):
        q.check_queued_tasks("a", 3)
    with pytest.raises(ResourceExhausted):
        q.check_queued_tasks("a", 1, extra=3)  # a batch that would go past it


def test_running_executions_refuse_at_the_quota() -> None:
    q = quotas(quota_running_executions=2)
    q.check_running_executions("a", 1)
    with pytest.raises(ResourceExhausted, match=r"2 unfinished executions .* is 2"):
        q.check_running_executions("a", 2)


def test_events_pass_a_burst_of_one_seconds_worth_then_the_rate() -> None:
    clock = Clock()
    q = quotas(clock, namespace_quotas={"a": {"eventsPerSecond": 4}})
    for _ in range(4):
        q.take_event("a")
    with pytest.raises(ResourceExhausted, match=r"events_per_second 4; retry in 0\.25s"):
        q.take_event("a")
    q.take_event("b")  # its own bucket (no quota)
    clock.now += 0.25
    q.take_event("a")
    with pytest.raises(ResourceExhausted):
        q.take_event("a")
    clock.now += 10  # refills to one second's worth, not more
    for _ in range(4):
        q.take_event("a")
    with pytest.raises(ResourceExhausted):
        q.take_event("a")


def test_a_slow_rate_still_lets_one_event_through() -> None:
    clock = Clock()
    q = quotas(clock, quota_events_per_second=0.5)
    q.take_event("a")
    with pytest.raises(ResourceExhausted, match=r"retry in 2\.00s"):
        q.take_event("a")
    clock.now += 2
    q.take_event("a")


def test_idle_buckets_are_dropped_so_many_namespaces_cannot_grow_memory() -> None:
    clock = Clock()
    q = quotas(clock, quota_events_per_second=1)
    for i in range(MAX_BUCKETS):
        q.take_event(f"n{i}")
    clock.now += 2  # every bucket refilled: forgetting them changes nothing
    q.take_event("one-more")
    assert len(q._buckets) == 1


def test_tasks_per_second_take_a_batch_at_once_with_when_to_retry() -> None:
    clock = Clock()
    q = quotas(clock, namespace_quotas={"a": {"tasksPerSecond": 10}})
    q.take_tasks("a", 8)
    with pytest.raises(ResourceExhausted, match="tasks_per_second 10") as caught:
        q.take_tasks("a", 3)
    assert getattr(caught.value, "retry_after", 0) == pytest.approx(0.1)
    q.take_event("a")  # another quota's bucket (and no event quota here)
    clock.now += 0.11
    q.take_tasks("a", 3)
    q.take_tasks("b", 1000)  # no quota
