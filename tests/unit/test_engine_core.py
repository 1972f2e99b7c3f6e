"""The engine core, step type by step type, with no event loop and no server."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from coordinator.engine import events as ev
from coordinator.engine.core import EngineDefaults, Execution
from coordinator.engine.model import (
    Branch,
    CompensateSpec,
    DecisionSpec,
    ErrorAction,
    ErrorHandlerSpec,
    EventSpec,
    MapSpec,
    ParallelSpec,
    RetrySpec,
    Step,
    SubworkflowSpec,
    WaitSpec,
    WorkflowDefinition,
)
from coordinator.retry import RetryPolicy, RetryStrategy

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NO_RETRY = EngineDefaults(retry=RetryPolicy(RetryStrategy.NONE, 0))


def task(id: str, cap: str = "work", **kw: Any) -> Step:
    return Step(id=id, name=id, type="task", capability=cap, **kw)


@dataclass
class Driver:
    """Feeds inputs to an Execution and keeps what came out."""

    ex: Execution
    now: datetime = T0
    out: list[ev.Command | ev.Journal] = field(default_factory=list)
    inputs: list[ev.Input] = field(default_factory=list)

    def feed(self, event: ev.Input) -> list[ev.Command | ev.Journal]:
        self.inputs.append(event)
        got = self.ex.apply(event)
        self.out.extend(got)
        return got

    def start(self, input: Any = None, context: dict[str, Any] | None = None) -> list[Any]:
        return self.feed(ev.Started(self.now, self.ex.defn.name, "1", input, context or {}))

    def tick(self, ms: int) -> None:
        self.now += timedelta(milliseconds=ms)

    def dispatched(self) -> list[ev.DispatchTask]:
        return [c for c in self.out if isinstance(c, ev.DispatchTask)]

    def last_dispatch(self) -> ev.DispatchTask:
        return self.dispatched()[-1]

    def complete(self, output: Any = None, key: str = "") -> list[Any]:
        return self.feed(ev.TaskCompleted(self.now, key or self.last_dispatch().key, output))

    def fail(
        self,
        message: str = "boom",
        key: str = "",
        retryable: bool = False,
        type_: str = "ValueError",
    ) -> list[Any]:
        err = ev.StepError(type_, message, retryable)
        return self.feed(ev.TaskFailed(self.now, key or self.last_dispatch().key, err))

    def fire(self, cmd: ev.StartTimer) -> list[Any]:
        self.now = cmd.fire_at
        return self.feed(ev.TimerFired(self.now, cmd.key))

    def timers(self) -> list[ev.StartTimer]:
        return [c for c in self.out if isinstance(c, ev.StartTimer)]

    def journal(self) -> list[str]:
        return [c.type for c in self.out if isinstance(c, ev.Journal)]

    def finished(self) -> ev.Finished:
        done = [c for c in self.out if isinstance(c, ev.Finished)]
        assert len(done) == 1, done
        return done[0]


def run(*steps: Step, defaults: EngineDefaults = NO_RETRY, **kw: Any) -> Driver:
    return Driver(Execution("ex1", WorkflowDefinition(name="wf", steps=steps, **kw), defaults))


def test_sequence_maps_inputs_and_outputs_into_variables() -> None:
    d = run(
        task(
            "a",
            input={"req": "$.input.requirements", "fixed": "tpl"},
            output={"analysis": "$.output"},
            next="b",
        ),
        task(
            "b",
            input={"analysis": "$.variables.analysis", "msg": "Feature: ${$.input.name}"},
            output={"plan": "$.output.plan"},
        ),
    )
    d.start({"requirements": "dashboard", "name": "auth"})
    first = d.last_dispatch()
    assert (first.step_id, first.capability, first.input) == (
        "a",
        "work",
        {"req": "dashboard", "fixed": "tpl"},
    )
    assert first.idempotency_key == f"ex1/{first.key}"
    d.complete({"kind": "web"})
    second = d.last_dispatch()
    assert second.input == {"analysis": {"kind": "web"}, "msg": "Feature: auth"}
    d.complete({"plan": ["x"]})
    done = d.finished()
    assert done.status == "completed"
    assert done.output == {"analysis": {"kind": "web"}, "plan": ["x"]}
    assert d.ex.metrics.completed_steps == 2 and d.ex.metrics.task_count == 2


def test_decision_branches_and_default() -> None:
    steps = (
        Step(
            id="d",
            name="d",
            type="decision",
            decision=DecisionSpec("$.input.flag", {"true": "yes", "false": "no"}),
        ),
        task("yes", output={"went": "$.output"}),
        task("no", output={"went": "$.output"}),
    )
    for flag, expected in ((True, "yes"), (False, "no")):
        d = run(*steps)
        d.start({"flag": flag})
        assert d.last_dispatch().step_id == expected
    d = run(*steps)
    d.start({"flag": "maybe"})
    done = d.finished()
    assert done.status == "failed" and done.error is not None
    assert done.error.type == "NoMatchingBranch"
    assert "no branch for value 'maybe'" in done.error.message


def test_condition_false_skips_the_step() -> None:
    d = run(task("a", condition="$.input.n > 1", next="b"), task("b"))
    d.start({"n": 0})
    assert d.last_dispatch().step_id == "b"
    assert "step.skipped" in d.journal()


def test_explicit_retry_then_on_error_route_with_error_in_scope() -> None:
    d = run(
        task(
            "fetch",
            retry=RetrySpec(max_attempts=3, interval_ms=1000, backoff_rate=2),
            on_error=ErrorAction("goto", "recover"),
            next="never",
        ),
        task("recover", input={"error": "$.error", "step": "$.error.stepId"}),
        task("never"),
    )
    d.start({})
    d.fail("exit 1")  # explicit retry applies to non-retryable errors too
    t1 = d.timers()[-1]
    assert t1.fire_at == T0 + timedelta(milliseconds=1000)
    d.fire(t1)
    assert d.last_dispatch().key.endswith(".t2")
    d.fail("exit 1")
    t2 = d.timers()[-1]
    assert t2.fire_at - t1.fire_at == timedelta(milliseconds=2000)
    d.fire(t2)
    d.fail("exit 3")
    rec = d.last_dispatch()
    assert rec.step_id == "recover"
    assert rec.input["step"] == "fetch" and rec.input["error"]["message"] == "exit 3"
    assert d.ex.metrics.retry_count == 2


def test_default_policy_retries_only_retryable_errors() -> None:
    defaults = EngineDefaults(retry=RetryPolicy(RetryStrategy.LINEAR, 2, 100, jitter=0))
    d = run(task("a"), defaults=defaults)
    d.start()
    d.fail("permanent")
    assert d.finished().status == "failed"
    d = run(task("a"), defaults=defaults)
    d.start()
    d.fail("flaky", retryable=True)
    d.fire(d.timers()[-1])
    d.complete("ok")
    assert d.finished().status == "completed"


def test_on_error_continue_and_stale_results_are_ignored() -> None:
    d = run(task("a", on_error=ErrorAction("continue"), next="b"), task("b"))
    d.start()
    first = d.last_dispatch()
    d.fail()
    assert d.last_dispatch().step_id == "b"
    assert d.complete("late", key=first.key) == [], (
        "a result for a finished attempt changes nothing"
    )
    d.complete("done")
    d.complete("duplicate")
    assert d.finished().status == "completed"


def test_parallel_joins_and_all_policy_cancels_siblings() -> None:
    par = Step(
        id="p",
        name="p",
        type="parallel",
        output={"joined": "$.output.branches"},
        parallel=ParallelSpec((Branch("A", (task("a1"),)), Branch("B", (task("b1"),)))),
    )
    d = run(par)
    d.start()
    a, b = d.dispatched()
    d.complete("B!", key=b.key)
    d.complete("A!", key=a.key)
    assert d.finished().output == {"joined": ["A!", "B!"]}

    d = run(par)
    d.start()
    a, b = d.dispatched()
    d.fail("bad", key=a.key)
    cancels = [c for c in d.out if isinstance(c, ev.CancelTask)]
    assert [c.key for c in cancels] == [b.key]
    done = d.finished()
    assert done.status == "failed" and done.error is not None
    assert done.error.message == "branch 'A' failed: bad"


def test_parallel_partial_keeps_successes() -> None:
    par = Step(
        id="p",
        name="p",
        type="parallel",
        output={"r": "$.output"},
        parallel=ParallelSpec(
            (Branch("A", (task("a1"),)), Branch("B", (task("b1"),))), policy="partial"
        ),
    )
    d = run(par)
    d.start()
    a, b = d.dispatched()
    d.fail("bad", key=a.key)
    d.complete("fine", key=b.key)
    out = d.finished().output
    assert out == {
        "r": {
            "branches": [None, "fine"],
            "failed": [
                {
                    "branch": "A",
                    "error": {
                        "type": "ValueError",
                        "message": "bad",
                        "retryable": False,
                        "stepId": "a1",
                    },
                }
            ],
        }
    }


def test_map_bounds_concurrency_and_keeps_item_order() -> None:
    m = Step(
        id="m",
        name="m",
        type="map",
        output={"squares": "$.output"},
        map=MapSpec(
            "$.input.xs", (task("sq", input={"x": "$.item", "i": "$.index"}),), concurrency=2
        ),
    )
    d = run(m)
    d.start({"xs": [3, 1, 2]})
    first, second = d.dispatched()
    assert [first.input, second.input] == [{"x": 3, "i": 0}, {"x": 1, "i": 1}]
    d.complete(1, key=second.key)
    third = d.last_dispatch()
    assert third.input == {"x": 2, "i": 2}
    d.complete(4, key=third.key)
    d.complete(9, key=first.key)
    assert d.finished().output == {"squares": [9, 1, 4]}


def test_wait_and_event_steps() -> None:
    d = run(
        Step(id="w", name="w", type="wait", wait=WaitSpec(duration_ms=5000), next="e"),
        Step(
            id="e",
            name="e",
            type="event",
            output={"approved": "$.output.ok"},
            event=EventSpec("approval", "$.input.order", timeout_ms=60_000),
        ),
    )
    d.start({"order": "o-7"})
    timer = d.timers()[-1]
    assert timer.fire_at == T0 + timedelta(seconds=5)
    d.fire(timer)
    wait = [c for c in d.out if isinstance(c, ev.AwaitEvent)][-1]
    assert (wait.name, wait.correlation_key) == ("approval", "o-7")
    d.feed(ev.EventReceived(d.now, wait.key, "approval", {"ok": True}))
    assert d.finished().output == {"approved": True}
    # the event's timeout timer was cancelled
    assert any(isinstance(c, ev.CancelTimer) for c in d.out)


def test_event_timeout_fails_the_step() -> None:
    d = run(Step(id="e", name="e", type="event", event=EventSpec("x", timeout_ms=1000)))
    d.start()
    d.fire(d.timers()[-1])
    done = d.finished()
    assert done.error is not None and done.error.type == "TIMEOUT"


def service(id: str, **kw: Any) -> Step:
    return Step(id=id, name=id, type="service", service="gh", operation="GET /repos/{owner}", **kw)


def calls(d: Driver) -> list[ev.CallService]:
    return [c for c in d.out if isinstance(c, ev.CallService)]


def test_service_step_calls_with_mapped_params_and_its_answer_is_the_output() -> None:
    d = run(
        service("s", input={"owner": "$.input.org"}, timeout_ms=900, output={"n": "$.output.n"})
    )
    d.start({"org": "acme"})
    (call,) = calls(d)
    assert (call.service, call.operation, call.params, call.timeout_ms) == (
        "gh",
        "GET /repos/{owner}",
        {"owner": "acme"},
        900,
    )
    assert "service.called" in d.journal()
    d.feed(ev.TaskCompleted(d.now, call.key, {"n": 3}))
    assert d.finished().output == {"n": 3}


def test_service_step_retries_a_retryable_failure_and_routes_a_refusal() -> None:
    retry = RetrySpec(max_attempts=2, interval_ms=10)
    d = run(
        service("s", retry=retry, on_error=ErrorAction("goto", "h")),
        task("h", input={"why": "$.error.type"}),
    )
    d.start()
    busy = ev.StepError("ServiceUnavailable", "503", True, {"status": 503})
    d.feed(ev.TaskFailed(d.now, calls(d)[-1].key, busy))
    d.fire(d.timers()[-1])
    assert len(calls(d)) == 2 and calls(d)[0].key != calls(d)[1].key
    refused = ev.StepError("ServiceRefused", "404", False, {"status": 404})
    d.feed(ev.TaskFailed(d.now, calls(d)[-1].key, refused))
    assert d.last_dispatch().input == {"why": "ServiceRefused"}


def test_service_step_params_must_be_an_object_and_a_stop_abandons_the_call() -> None:
    bad = run(service("s", input="$.input"))
    bad.start([1, 2])
    error = bad.finished().error
    assert error is not None and error.type == "ServiceParamsNotAnObject"
    assert calls(bad) == []
    d = run(service("s"))
    d.start()
    key = calls(d)[0].key
    d.feed(ev.StopRequested(d.now, "operator"))
    assert [c.key for c in d.out if isinstance(c, ev.CancelServiceCall)] == [key]
    assert d.finished().status == "cancelled"


def test_subworkflow_output_maps_back() -> None:
    d = run(
        Step(
            id="s",
            name="s",
            type="subworkflow",
            subworkflow=SubworkflowSpec("child"),
            input={"n": "$.input.n"},
            output={"child": "$.output.result"},
        )
    )
    d.start({"n": 2})
    start = [c for c in d.out if isinstance(c, ev.StartChild)][-1]
    assert (start.workflow, start.input, start.context["parentId"]) == ("child", {"n": 2}, "ex1")
    d.feed(ev.ChildFinished(d.now, start.key, "c1", "completed", {"result": 4}))
    assert d.finished().output == {"child": 4}


def test_compensation_runs_in_reverse_then_error_handler_runs() -> None:
    d = run(
        task("a", compensate=CompensateSpec("undo", input={"what": "$.output.id"}), next="b"),
        task("b", compensate=CompensateSpec("undo", input={"what": "$.output.id"}), next="c"),
        task("c"),
        error_handlers=(ErrorHandlerSpec("on_error", retry=RetrySpec(max_attempts=2)),),
    )
    d.start()
    d.complete({"id": "A"})
    d.complete({"id": "B"})
    d.fail("c broke")
    undo_b = d.last_dispatch()
    assert (undo_b.capability, undo_b.input) == ("undo", {"what": "B"})
    d.complete(None, key=undo_b.key)
    undo_a = d.last_dispatch()
    assert undo_a.input == {"what": "A"}
    d.fail("undo failed too", key=undo_a.key)  # recorded, compensation goes on
    handler = [c for c in d.out if isinstance(c, ev.StartChild)][-1]
    assert handler.workflow == "on_error"
    assert handler.context["stepId"] == "c" and handler.context["error"]["message"] == "c broke"
    d.feed(ev.ChildFinished(d.now, handler.key, "h1", "failed", None, ev.StepError("", "x")))
    retry = [c for c in d.out if isinstance(c, ev.StartChild)][-1]
    assert retry.key != handler.key
    d.feed(ev.ChildFinished(d.now, retry.key, "h2", "completed", {}))
    done = d.finished()
    assert done.status == "failed" and done.error is not None
    assert done.error.step_id == "c"
    assert d.journal().count("compensation.step") == 2
    assert "compensation.failed" in d.journal()


def test_pause_holds_new_steps_and_resume_continues_with_input() -> None:
    d = run(task("a", next="b"), task("b", input={"extra": "$.variables.extra"}))
    d.start()
    d.feed(ev.PauseRequested(d.now))
    assert d.ex.status == "paused"
    d.complete("a done")
    assert [x.step_id for x in d.dispatched()] == ["a"], "no new step starts while paused"
    d.feed(ev.ResumeRequested(d.now, {"extra": 42}))
    assert d.last_dispatch().input == {"extra": 42}


def test_stop_cancels_running_work() -> None:
    d = run(task("a"))
    d.start()
    key = d.last_dispatch().key
    d.feed(ev.StopRequested(d.now, "operator"))
    assert [c.key for c in d.out if isinstance(c, ev.CancelTask)] == [key]
    assert d.finished().status == "cancelled"
    assert d.complete("late", key=key) == []


def test_workflow_timeout_fails_the_execution() -> None:
    d = run(task("a"), timeout_ms=10_000)
    d.start()
    wf_timer = next(t for t in d.timers() if t.key == "workflow.timeout")
    d.fire(wf_timer)
    done = d.finished()
    assert done.error is not None and done.error.type == "TIMEOUT"


def test_expression_errors_fail_the_step_not_the_engine() -> None:
    d = run(task("a", input={"x": "$.input.n - 'a'"}))
    d.start({"n": 1})
    done = d.finished()
    assert done.error is not None and done.error.type == "ExpressionError"
    assert "step 'a' task" in done.error.message


def test_replay_rebuilds_the_same_state() -> None:
    d = run(
        task("a", retry=RetrySpec(max_attempts=3, jitter=0.5), next="p"),
        Step(
            id="p",
            name="p",
            type="parallel",
            parallel=ParallelSpec((Branch("A", (task("a1"),)), Branch("B", (task("b1"),)))),
        ),
    )
    d.start({"k": 1})
    d.fail()
    d.fire(d.timers()[-1])
    d.complete("a")
    x, y = d.dispatched()[-2:]
    d.complete("x", key=x.key)
    replay = Execution("ex1", d.ex.defn, NO_RETRY)
    replayed: list[Any] = []
    for e in d.inputs:
        replayed.extend(replay.apply(e))
    assert replayed == d.out
    assert replay.variables == d.ex.variables and set(replay.runs) == set(d.ex.runs)
    replay.apply(ev.TaskCompleted(d.now, y.key, "y"))
    assert replay.status == "completed"


def test_the_step_table_covers_every_step_type() -> None:
    from coordinator.engine.model import STEP_TYPES
    from coordinator.engine.steps import STEPS

    assert sorted(STEPS) == sorted(STEP_TYPES)
