"""The step table: what a run of each step type does when it starts.

``STEPS`` maps a definition's ``type`` to its ``begin(ex, run, step, scope)``. A begin
function starts the run (dispatch a task, call a service, start a timer, await an event, start a child
or branches) through the core's step-facing methods (``emit``, ``journal``,
``wait_on``, ``set_timeout``, ``evaluate``, ``complete``, ``fail``, ``start_step``,
``new_frame``); the inputs that follow (``TaskCompleted``, ``TimerFired``,
``EventReceived``, ``ChildFinished``) finish it in the core, the same for every type.
Like the core, this module reads no clock and no randomness: ``ex.now()`` is the time
of the input being applied.

Adding a step type: its block's spec in ``model.py`` (and its name in ``STEP_TYPES``),
its parsing in ``definition.py``, its checks in ``validate.py``, and a row here
(``tests/unit/test_engine_core.py`` checks the table covers ``STEP_TYPES``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from coordinator.engine import events as ev
from coordinator.engine.events import Data, StepError
from coordinator.engine.expr import compile_expression, has_interpolation, is_expression
from coordinator.engine.model import Step

if TYPE_CHECKING:
    from coordinator.engine.core import Execution, Run

NO_BRANCH = "NoMatchingBranch"
BAD_ITEMS = "MapItemsNotAList"
BAD_PARAMS = "ServiceParamsNotAnObject"

Begin = Callable[["Execution", "Run", Step, Data], None]


def task(ex: Execution, run: Run, step: Step, scope: Data) -> None:
    task_input = ex.evaluate(step.input, scope, "task input")
    gates = gates_of(ex, step, scope)
    key = f"{run.key}.t{run.attempt}"
    timeout = step.timeout_ms or ex.defaults.task_timeout_ms
    ex.wait_on(run, key)
    ex.metrics.task_count += 1
    ex.emit(
        ev.DispatchTask(
            key,
            step.id,
            step.capability,
            task_input,
            step.agent,
            timeout,
            f"{ex.id}/{key}",
            gates,
            fallback=step.fallback is not None,
        )
    )
    ex.journal("task.dispatched", step.id, data={"key": key, "capability": step.capability})


def service(ex: Execution, run: Run, step: Step, scope: Data) -> None:
    params = ex.evaluate(step.input, scope, "service input")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        message = f"a service step's input must be an object of params; got {type(params).__name__}"
        ex.fail(run, StepError(BAD_PARAMS, message))
        return
    gates = gates_of(ex, step, scope)
    key = f"{run.key}.t{run.attempt}"
    ex.wait_on(run, key)
    call = (step.service, step.operation, params, step.timeout_ms or 0, gates)
    ex.emit(ev.CallService(key, step.id, *call))
    data = {"key": key, "service": step.service, "operation": step.operation}
    ex.journal("service.called", step.id, data=data)


def gates_of(ex: Execution, step: Step, scope: Data) -> tuple[ev.Gate, ...]:
    """The step's flow-control gates, their keys evaluated on ``scope``."""
    group = f"{ex.defn.name}/{step.id}"
    gates = []
    if step.concurrency is not None:
        c = step.concurrency
        gates.append(ev.Gate(c.group or group, gate_key(ex, c.key, scope), limit=c.limit))
    if step.rate_limit is not None:
        r = step.rate_limit
        key = gate_key(ex, r.key, scope)
        gates.append(ev.Gate(r.group or group, key, per_second=r.per_second, burst=r.burst))
    if step.type == "task":
        gates += ex.defaults.capability_gates.get(step.capability, ())
    return tuple(gates)


def gate_key(ex: Execution, key: str, scope: Data) -> str:
    """A gate's key as text: an expression's (or template's) value, or the literal."""
    if not key or not (is_expression(key) or has_interpolation(key)):
        return key
    value = ex.evaluate(key, scope, "gate key")
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def decision(ex: Execution, run: Run, step: Step, scope: Data) -> None:
    assert step.decision is not None
    value = compile_expression(step.decision.expression).evaluate(scope)
    label = branch_label(value)
    target = step.decision.branches.get(label) or step.decision.default
    if not target:
        ex.fail(
            run,
            StepError(
                NO_BRANCH, f"decision '{step.id}': no branch for value {label!r} and no default"
            ),
        )
        return
    ex.journal(
        "decision.taken",
        step.id,
        message=f"{label} -> {target}",
        data={"value": label, "next": target},
    )
    ex.complete(run, step, {"branch": label, "next": target}, goto=target)


def wait(ex: Execution, run: Run, step: Step, scope: Data) -> None:
    assert step.wait is not None
    if step.wait.duration_ms is not None:
        fire_at = ex.now() + timedelta(milliseconds=step.wait.duration_ms)
    else:
        until = step.wait.until
        raw = compile_expression(until).evaluate(scope) if is_expression(until) else until
        try:
            fire_at = datetime.fromisoformat(str(raw))
        except ValueError:
            ex.fail(run, StepError("BadTimestamp", f"wait.until {raw!r} is not ISO-8601"))
            return
        if fire_at.tzinfo is None:
            fire_at = fire_at.replace(tzinfo=ex.now().tzinfo)
    key = f"{run.key}.w"
    ex.wait_on(run, key)
    ex.emit(ev.StartTimer(key, fire_at))
    ex.journal("wait.started", step.id, data={"until": fire_at.isoformat()})


def event(ex: Execution, run: Run, step: Step, scope: Data) -> None:
    assert step.event is not None
    corr = step.event.correlation_key
    if corr and (is_expression(corr) or has_interpolation(corr)):
        corr = str(ex.evaluate(corr, scope, "correlation key"))
    key = f"{run.key}.e{run.attempt}"
    ex.wait_on(run, key)
    ex.emit(ev.AwaitEvent(key, step.event.name, corr))
    timeout = step.event.timeout_ms or step.timeout_ms
    if timeout:
        ex.set_timeout(run, timeout)
    ex.journal("event.waiting", step.id, data={"name": step.event.name, "correlationKey": corr})


def subworkflow(ex: Execution, run: Run, step: Step, scope: Data) -> None:
    assert step.subworkflow is not None
    child_input = ex.evaluate(step.input, scope, "subworkflow input")
    key = f"{run.key}.c{run.attempt}"
    ex.wait_on(run, key)
    ex.emit(
        ev.StartChild(
            key,
            step.subworkflow.workflow,
            step.subworkflow.version,
            child_input,
            {"parentId": ex.id, "parentStep": step.id},
        )
    )
    if step.timeout_ms:
        ex.set_timeout(run, step.timeout_ms)
    ex.journal("subworkflow.started", step.id, data={"workflow": step.subworkflow.workflow})


def parallel(ex: Execution, run: Run, step: Step, scope: Data) -> None:
    assert step.parallel is not None
    run.frames = []
    for _ in step.parallel.branches:
        frame = ex.new_frame(run.key, ex.frames[run.frame].extra)
        run.frames.append(frame.key)
    for frame_key, branch in zip(run.frames, step.parallel.branches, strict=True):
        ex.start_step(frame_key, branch.steps[0].id, 1)


def map_(ex: Execution, run: Run, step: Step, scope: Data) -> None:
    assert step.map is not None
    items = compile_expression(step.map.items).evaluate(scope)
    if not isinstance(items, list):
        ex.fail(run, StepError(BAD_ITEMS, f"map.items gave {type(items).__name__}, not a list"))
        return
    run.items = items
    run.frames = []
    run.results = {}
    run.failures = {}
    run.pending_items = list(range(len(items)))
    if not items:
        ex.complete(run, step, [])
        return
    for _ in range(min(max(1, step.map.concurrency), len(items))):
        next_item(ex, run, step)


def next_item(ex: Execution, run: Run, step: Step) -> None:
    assert step.map is not None
    index = run.pending_items.pop(0)
    frame = ex.new_frame(run.key, {"item": run.items[index], "index": index})
    run.frames.append(frame.key)
    ex.start_step(frame.key, step.map.steps[0].id, 1)


def branch_label(value: Any) -> str:
    """JavaScript's String(value) for the values decisions switch on."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, sort_keys=True)


STEPS: dict[str, Begin] = {
    "task": task,
    "service": service,
    "decision": decision,
    "wait": wait,
    "event": event,
    "subworkflow": subworkflow,
    "parallel": parallel,
    "map": map_,
}
