"""The workflow definition model: what a parsed, validated definition looks like.

Definitions are written in the seed's schema (camelCase JSON or YAML); ``definition``
parses them into these frozen values. The engine core reads only these types.

Control flow, in one rule: a step continues to its ``next`` (a step id, or a
decision over an expression); a step without ``next`` ends its sequence (the
workflow, a parallel branch, or a map iteration). The first step of a sequence
starts it. Step ids are unique across the whole workflow, nested ones included.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from coordinator.retry import RetryStrategy

StepType = Literal["task", "service", "subworkflow", "parallel", "decision", "wait", "event", "map"]
STEP_TYPES: tuple[StepType, ...] = (
    "task",
    "service",
    "subworkflow",
    "parallel",
    "decision",
    "wait",
    "event",
    "map",
)
ErrorActionKind = Literal["goto", "retry", "continue", "fail", "compensate"]


@dataclass(frozen=True, slots=True)
class RetrySpec:
    """A step's retry policy. ``max_attempts`` counts every attempt, the first included
    (the seed's ``maxAttempts: 5`` runs a step at most five times)."""

    max_attempts: int = 1
    interval_ms: int = 1000
    backoff_rate: float = 2.0
    strategy: RetryStrategy = RetryStrategy.EXPONENTIAL
    max_interval_ms: int = 30_000
    jitter: float = 0.0


@dataclass(frozen=True, slots=True)
class ErrorAction:
    """What to do when a step fails after its retries: ``goto`` a step (the seed's
    ``onError: 'handle_fetch_error'``), ``retry`` once more with the default policy,
    ``continue`` to ``next`` as if it succeeded, ``fail`` the workflow, or
    ``compensate`` (undo completed steps, then fail)."""

    action: ErrorActionKind
    next: str = ""


@dataclass(frozen=True, slots=True)
class DecisionSpec:
    """Evaluate ``expression``; its value, as JavaScript's ``String(value)`` would
    write it (``true``, ``false``, ``3``, ``"x"``), selects a branch; else ``default``."""

    expression: str
    branches: Mapping[str, str]
    default: str = ""


@dataclass(frozen=True, slots=True)
class Branch:
    """One branch of a parallel step: a name and its steps."""

    name: str
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class ParallelSpec:
    """Branches run concurrently and join. ``policy``: ``all`` fails the step when a
    branch fails; ``partial`` keeps what succeeded and reports failures in the output."""

    branches: tuple[Branch, ...]
    policy: Literal["all", "partial"] = "all"


@dataclass(frozen=True, slots=True)
class WaitSpec:
    """Wait ``duration_ms``, or until ``until`` (an ISO-8601 timestamp or an expression
    giving one)."""

    duration_ms: int | None = None
    until: str = ""


@dataclass(frozen=True, slots=True)
class EventSpec:
    """Wait for the named event (``triggerEvent``), matching ``correlation_key`` (an
    expression or literal, empty = any) for at most ``timeout_ms``."""

    name: str
    correlation_key: str = ""
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SubworkflowSpec:
    """The workflow (and version; "" for the latest) a subworkflow step starts."""

    workflow: str
    version: str = ""


@dataclass(frozen=True, slots=True)
class MapSpec:
    """Run ``steps`` once per item of the list ``items`` evaluates to, at most
    ``concurrency`` at a time; iterations see ``$.item`` and ``$.index``. The step's
    output is the list of each iteration's last output, in item order."""

    items: str
    steps: tuple[Step, ...]
    concurrency: int = 4


@dataclass(frozen=True, slots=True)
class CompensateSpec:
    """A task that undoes a completed step (saga). Its input mapping sees the
    step's ``$.output`` as recorded when it completed."""

    capability: str
    agent: str = ""
    input: Any = None
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ConcurrencySpec:
    """At most ``limit`` tasks of this step (of every execution of the namespace) run at
    once per value of ``key`` (an expression, e.g. ``$.input.repo``; "" is one value);
    the others wait, in order. Steps naming the same ``group`` share the limit (default:
    the workflow and step)."""

    limit: int
    key: str = ""
    group: str = ""


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """At most ``per_second`` tasks of this step start per second per value of ``key``
    (bursts of ``burst``); the others wait, in order. ``group`` as for concurrency."""

    per_second: float
    key: str = ""
    burst: int = 1
    group: str = ""


@dataclass(frozen=True, slots=True)
class FallbackSpec:
    """What a task step runs instead while its capability's circuit breaker is open
    (every agent with it failing): another ``capability`` with the same input, or a
    ``workflow`` (a child execution) given the step's input."""

    capability: str = ""
    workflow: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a definition, as parsed: its type's block is the field of that name."""

    id: str
    name: str
    type: StepType
    agent: str = ""
    capability: str = ""
    service: str = ""  # a service step's external service (RegisterExternalService)
    operation: str = ""  # ... and its named operation or "METHOD /path/{param}"
    input: Any = None  # mapping evaluated with evaluate_mapping
    output: Mapping[str, Any] | None = None  # variable -> expression over $.output
    condition: str = ""  # falsy -> the step is skipped
    retry: RetrySpec | None = None
    timeout_ms: int | None = None
    next: str = ""
    next_decision: DecisionSpec | None = None  # the seed's NextExpression form
    parallel: ParallelSpec | None = None
    decision: DecisionSpec | None = None
    wait: WaitSpec | None = None
    event: EventSpec | None = None
    subworkflow: SubworkflowSpec | None = None
    map: MapSpec | None = None
    compensate: CompensateSpec | None = None
    on_error: ErrorAction | None = None
    concurrency: ConcurrencySpec | None = None  # task and service steps
    rate_limit: RateLimitSpec | None = None
    fallback: FallbackSpec | None = None  # task steps

    def children(self) -> Iterator[tuple[str, tuple[Step, ...]]]:
        """Nested sequences: (label, steps) for parallel branches and map bodies."""
        if self.parallel is not None:
            for i, b in enumerate(self.parallel.branches):
                yield f"parallel.branches[{i}]", b.steps
        if self.map is not None:
            yield "map", self.map.steps


@dataclass(frozen=True, slots=True)
class ErrorHandlerSpec:
    """Run workflow ``handler`` when the workflow fails with an error whose type
    matches ``error`` (``*`` matches all), with the error context as its scope."""

    handler: str
    error: str = "*"
    retry: RetrySpec | None = None


MissedRuns = Literal["skip", "once", "all"]
MISSED_RUNS: tuple[MissedRuns, ...] = ("skip", "once", "all")


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """What starts an execution by itself: an ``event`` (``TriggerEvent`` or an inbound
    ``POST /v1/events/{event}``) whose payload passes ``filter`` (an expression over
    ``$.payload`` and ``$.event``; "" passes all), or a ``cron`` schedule (UTC). ``input``
    maps the execution's input from the same scope (None: the payload; ``{}`` for cron).
    ``missed`` says what a schedule does about the times it missed while no coordinator
    ran: ``skip`` them, run ``once`` for the latest, or run ``all`` (at most 100)."""

    event: str = ""
    filter: str = ""
    cron: str = ""
    input: Any = None
    missed: MissedRuns = "once"


@dataclass(frozen=True, slots=True)
class WorkflowDefinition:
    """A parsed, validated workflow: its steps (nested ones reachable by id), schemas,
    timeouts and error handlers. Frozen: executions share it."""

    name: str
    steps: tuple[Step, ...]
    version: str = "1"
    description: str = ""
    input_schema: Mapping[str, Any] | None = None
    output_schema: Mapping[str, Any] | None = None
    error_handlers: tuple[ErrorHandlerSpec, ...] = ()
    timeout_ms: int | None = None
    tags: tuple[str, ...] = ()
    triggers: tuple[TriggerSpec, ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict)  # the definition as written
    _index: Mapping[str, Step] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built here, never passed in: a dataclasses.replace() re-indexes. The first
        # step with an id wins (validation reports duplicates).
        index: dict[str, Step] = {}
        for s in iter_steps(self.steps):
            index.setdefault(s.id, s)
        object.__setattr__(self, "_index", index)

    def step(self, step_id: str) -> Step:
        """The step with this id, at any depth. KeyError if there is none."""
        return self._index[step_id]

    def has_step(self, step_id: str) -> bool:
        """Whether any step (nested ones too) has id ``step_id``."""
        return step_id in self._index

    @property
    def all_steps(self) -> Mapping[str, Step]:
        """Every step by id, nested ones included."""
        return self._index


def iter_steps(steps: tuple[Step, ...]) -> Iterator[Step]:
    """Every step, depth first, nested ones included."""
    for s in steps:
        yield s
        for _, inner in s.children():
            yield from iter_steps(inner)
