"""The engine's one error shape, and its persisted form (unchanged from the dicts it
replaced, so histories written before it replay the same)."""

from __future__ import annotations

from datetime import UTC, datetime

from coordinator.engine import events as ev

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_to_data_is_the_shape_expressions_and_histories_see() -> None:
    e = ev.StepError("TIMEOUT", "step 'a' timed out", True)
    assert e.to_data() == {"type": "TIMEOUT", "message": "step 'a' timed out", "retryable": True}
    at = e.at("a")
    assert at.step_id == "a" and e.step_id == ""  # frozen: at() is a copy
    assert ev.StepError("X", "m", details={"k": 1}).at("s").to_data() == {
        "type": "X",
        "message": "m",
        "retryable": False,
        "details": {"k": 1},
        "stepId": "s",
    }


def test_from_data_round_trips_and_tolerates_odd_values() -> None:
    e = ev.StepError("X", "m", True, {"k": [1]}, "s")
    assert ev.StepError.from_data(e.to_data()) == e
    odd = ev.StepError.from_data({"type": 7, "retryable": 1, "extra": "ignored"})
    assert odd == ev.StepError("7", "", True)
    assert ev.StepError.from_data(None) == ev.StepError("")


def test_a_failed_task_persists_as_it_always_did() -> None:
    old = {"key": "t1", "error": {"type": "AGENT_LOST", "message": "gone", "retryable": True}}
    event = ev.input_from_data("TaskFailed", T0, {**old, "agent_id": "a-1"})
    assert isinstance(event, ev.TaskFailed)
    assert event.error == ev.StepError("AGENT_LOST", "gone", True)
    assert ev.input_to_data(event) == {**old, "agent_id": "a-1"}
    child = ev.input_from_data("ChildFinished", T0, {"key": "c", "status": "completed"})
    assert isinstance(child, ev.ChildFinished) and child.error is None
    failed = ev.input_from_data(
        "ChildFinished", T0, {"key": "c", "status": "failed", "error": {"message": "x"}}
    )
    assert isinstance(failed, ev.ChildFinished) and failed.error == ev.StepError("", "x")
