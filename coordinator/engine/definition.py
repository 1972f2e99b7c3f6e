"""Parse workflow definitions, written in the seed's schema as JSON or YAML, into ``model``.

    ValueError
    └── DefinitionError   the definition is malformed; ``.issues`` lists every problem

Parsing checks structure: field names (camelCase or snake_case, unknown ones refused
with a suggestion), JSON types, enums and ranges. It collects every problem before
raising. What needs the whole graph (targets, reachability, expressions, required
parts of each step type) is ``validate.validate_definition``'s job.

Before any of that, ``limits.check_document`` measures the raw document (nesting,
values, bytes, steps), so parsing is linear in a document of bounded size. Numbers
the engine turns into durations are range-checked here (at most ``MAX_DURATION_MS``),
so none can overflow a ``timedelta`` later.

Locations are written as paths into the document as written, with list indices:
``steps[5].parallel.branches[1].steps[0].capability``.

One piece, though long: each block's parser is a method of one ``_Parser``, which
carries the issues and hints of the whole definition; templates are in ``templates.py``.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast, get_args

from coordinator.engine.cron import parse_cron
from coordinator.engine.expr import compile_expression, is_expression
from coordinator.engine.files import read_definition_file
from coordinator.engine.issues import Hints, Issue, did_you_mean
from coordinator.engine.limits import (
    MAX_ATTEMPTS,
    MAX_BACKOFF_RATE,
    MAX_DURATION_MS,
    MAX_SUGGESTIONS,
    check_document,
    shown,
)
from coordinator.engine.model import (
    MISSED_RUNS,
    STEP_TYPES,
    Branch,
    CompensateSpec,
    ConcurrencySpec,
    DecisionSpec,
    ErrorAction,
    ErrorActionKind,
    ErrorHandlerSpec,
    EventSpec,
    FallbackSpec,
    MapSpec,
    MissedRuns,
    ParallelSpec,
    RateLimitSpec,
    RetrySpec,
    Step,
    StepType,
    SubworkflowSpec,
    TriggerSpec,
    WaitSpec,
    WorkflowDefinition,
)
from coordinator.errors import DefinitionError, ExpressionError, InvalidArgument
from coordinator.retry import RetryStrategy

# Every object of the format and the fields it takes, in the documented camelCase
# spelling; the snake_case spelling of each is accepted too. workflow.schema.json
# lists the same keys (a test compares them).
FIELDS: Mapping[str, tuple[str, ...]] = {
    "definition": (
        *("$schema", "id", "name", "description", "version", "input", "output", "steps"),
        *("errorHandlers", "timeoutMs", "tags", "parameters", "triggers"),
    ),
    "step": (
        *("id", "name", "type", "agent", "capability", "service", "operation", "input"),
        *("output", "condition"),
        *("retry", "timeout", "next", "parallel", "decision", "wait", "event"),
        *("subworkflow", "workflow", "map", "compensate", "onError", "concurrency"),
        *("rateLimit", "fallback"),
    ),
    "retry": ("maxAttempts", "interval", "backoffRate", "strategy", "maxIntervalMs", "jitter"),
    "next": ("expression", "branches", "default"),
    "decision": ("expression", "branches", "default"),
    "parallel": ("branches", "policy"),
    "branch": ("name", "steps"),
    "wait": ("durationMs", "seconds", "until"),
    "event": ("name", "correlationKey", "timeoutMs"),
    "subworkflow": ("workflow", "version"),
    "map": ("items", "steps", "concurrency"),
    "compensate": ("capability", "agent", "input", "timeout"),
    "onError": ("action", "next"),
    "errorHandler": ("error", "handler", "retry"),
    "trigger": ("event", "filter", "cron", "input", "missed"),
    "concurrency": ("limit", "key", "group"),
    "fallback": ("capability", "workflow"),
    "rateLimit": ("perSecond", "key", "burst", "group"),
}
ERROR_ACTIONS: tuple[str, ...] = get_args(ErrorActionKind)
_BLOCK_FIELDS = ("parallel", "decision", "wait", "event", "subworkflow", "map")
_BLOCKS = {**{b: b for b in _BLOCK_FIELDS}, "workflow": "subworkflow"}  # field -> its step type
# Scalars that need no copy: everything JSON and YAML give, and then some.
_IMMUTABLE = (str, int, float, bool, type(None), dt.date, dt.datetime, dt.time)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def snake_case(name: str) -> str:
    """``onError`` -> ``on_error``: the alternative spelling accepted for a field."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def accepted_keys(kind: str) -> frozenset[str]:
    """Every key an object of ``kind`` (a key of ``FIELDS``) accepts, both spellings."""
    return frozenset(k for f in FIELDS[kind] for k in (f, snake_case(f)))


# Each accepted key -> its camelCase field, per kind: built once, not per object parsed.
_SPELLED: Mapping[str, Mapping[str, str]] = {
    kind: {k: f for f in fields for k in (f, snake_case(f))} for kind, fields in FIELDS.items()
}


def plain(value: Any) -> Any:
    """A deep copy of JSON-like data as dicts and lists (YAML and callers may hand us
    other Mappings and tuples). Recursive: call it on data ``check_document`` passed."""
    kind = type(value)
    # Scalars by exact type, tested in the comprehensions too: most values are
    # scalars, and a call or an ABC isinstance for each costs several times more.
    if kind in _SCALARS:
        return value
    if kind is dict or isinstance(value, Mapping):
        return {k: v if type(v) in _SCALARS else plain(v) for k, v in value.items()}
    if kind is list or isinstance(value, tuple):
        return [v if type(v) in _SCALARS else plain(v) for v in value]
    if isinstance(value, _IMMUTABLE):
        return value
    return copy.deepcopy(value)


def branch_key(key: Any) -> str:
    """A decision branch label as JavaScript's ``String(key)`` writes it, so an unquoted
    YAML ``true:`` still means the branch ``"true"``."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


class _Obj:
    """One JSON object being parsed: its location and its fields by camelCase name."""

    def __init__(
        self, issues: list[Issue], hints: Hints, raw: Mapping[Any, Any], loc: str, kind: str
    ) -> None:
        self.loc = loc  # "" for the document itself, whose fields are located by name alone
        here = loc or "definition"
        self.values: dict[str, Any] = {}
        self.written: dict[str, str] = {}
        spelled = _SPELLED[kind]
        for key, value in raw.items():
            name = spelled.get(key) if isinstance(key, str) else None
            if name is None:
                hint = hints(str(key), FIELDS[kind])
                issues.append(Issue(here, f"unknown field '{key}'{hint}"))
            elif value is None:
                continue  # `field:` with no value in YAML: treated as absent
            elif name in self.values:
                issues.append(Issue(here, f"'{self.written[name]}' and '{key}' are the same field"))
            else:
                self.values[name] = value
                self.written[name] = key

    def has(self, name: str) -> bool:
        return name in self.values

    def at(self, name: str) -> str:
        """The location of a field, spelled as written."""
        key = self.written.get(name, name)
        return f"{self.loc}.{key}" if self.loc else key


class _Parser:
    def __init__(self) -> None:
        self.issues: list[Issue] = []
        self.hints = Hints(MAX_SUGGESTIONS)

    def error(self, loc: str, message: str) -> None:
        self.issues.append(Issue(loc or "definition", message))

    def obj(self, raw: Any, loc: str, kind: str) -> _Obj | None:
        if not isinstance(raw, Mapping):
            self.error(loc, "must be an object")
            return None
        return _Obj(self.issues, self.hints, raw, loc, kind)

    def child(self, parent: _Obj, name: str, kind: str = "") -> _Obj | None:
        """The nested object ``name``; None when absent or (reported) not an object."""
        if not parent.has(name):
            return None
        return self.obj(parent.values[name], parent.at(name), kind or name)

    def text(self, o: _Obj, name: str, *, required: bool = False) -> str:
        if not o.has(name):
            if required:
                self.error(o.loc, f"missing required field '{name}'")
            return ""
        value = o.values[name]
        if not isinstance(value, str) or (required and not value):
            self.error(o.at(name), "must be a non-empty string" if required else "must be a string")
            return ""
        return value

    def version(self, o: _Obj) -> str:
        value = o.values.get("version")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # YAML reads `version: 1` as a number
        return self.text(o, "version")

    def integer(
        self, o: _Obj, name: str, minimum: int, maximum: int | None = None, limit: str = ""
    ) -> int | None:
        """The field as an integer in ``[minimum, maximum]``; ``limit`` names the
        maximum in the issue (``365 days``)."""
        written = value = o.values.get(name)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 1e308 too: it is then refused as too large
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.error(o.at(name), f"must be an integer >= {minimum}")
            return None
        if maximum is not None and value > maximum:
            self.too_large(o, name, written, maximum, limit)
            return None
        return value

    def duration(self, o: _Obj, name: str, minimum: int) -> int | None:
        """Milliseconds the engine turns into a timedelta: at most ``MAX_DURATION_MS``."""
        return self.integer(o, name, minimum, MAX_DURATION_MS, "365 days, in milliseconds")

    def number(
        self, o: _Obj, name: str, low: float, high: float, *, limit: str = ""
    ) -> float | None:
        """The field as a number in ``[low, high]``. With ``limit`` (what the high end
        is), a value over it is reported as over that limit; without, the field's
        range is simply ``between low and high``."""
        value = o.values.get(name)
        if value is None:
            return None
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not value >= low:  # "not >=": NaN is refused too
            bound = f">= {low:g}" if limit else f"between {low:g} and {high:g}"
            self.error(o.at(name), f"must be a number {bound}")
            return None
        if value > high:
            if limit:
                self.too_large(o, name, value, high, limit)
            else:
                self.error(o.at(name), f"must be a number between {low:g} and {high:g}")
            return None
        return float(value)

    def too_large(self, o: _Obj, name: str, value: Any, maximum: float, limit: str) -> None:
        what = f" ({limit})" if limit else ""
        self.error(o.at(name), f"must be at most {shown(maximum)}{what}; got {shown(value)}")

    def mapping(self, o: _Obj, name: str) -> Mapping[str, Any] | None:
        value = o.values.get(name)
        if value is not None and not isinstance(value, Mapping):
            self.error(o.at(name), "must be an object")
            return None
        return cast("Mapping[str, Any] | None", value)

    def items(self, o: _Obj, name: str) -> list[Any]:
        value = o.values.get(name, [])
        if not isinstance(value, list):
            self.error(o.at(name), "must be a list")
            return []
        return value

    def choice(self, o: _Obj, name: str, options: Sequence[str], default: str) -> str:
        value = o.values.get(name, default)
        if value not in options:
            self.error(o.at(name), f"must be one of {', '.join(options)}; got {value!r}")
            return default
        return cast("str", value)

    # --- the definition -------------------------------------------------------------

    def definition(self, data: Any, name: str | None) -> WorkflowDefinition:
        if over := check_document(data):
            raise DefinitionError(over)  # before any work whose cost they bound
        o = self.obj(data, "", "definition")
        if o is None:
            raise DefinitionError(self.issues)
        if o.has("parameters"):
            self.error(o.at("parameters"), "a template: call instantiate_template() first")
        ident = self.text(o, "id")
        display = self.text(o, "name")
        if name is not None and ident and ident != name:
            self.error(o.at("id"), f"'{ident}' differs from the name '{name}' given for it")
        resolved = name or ident or display
        if not resolved:
            self.error("definition", "missing required field 'id' (or 'name')")
        if not o.has("steps"):
            self.error("definition", "missing required field 'steps'")
        steps = self.steps(o, "steps")
        handlers = []
        for i, raw in enumerate(self.items(o, "errorHandlers")):
            if h := self.obj(raw, f"{o.at('errorHandlers')}[{i}]", "errorHandler"):
                spec = (self.text(h, "handler", required=True), self.text(h, "error") or "*")
                handlers.append(ErrorHandlerSpec(*spec, self.retry(h)))
        triggers = [
            self.trigger(raw, f"{o.at('triggers')}[{i}]")
            for i, raw in enumerate(self.items(o, "triggers"))
        ]
        tags = self.items(o, "tags")
        if not all(isinstance(t, str) for t in tags):
            self.error(o.at("tags"), "must be a list of strings")
        defn = WorkflowDefinition(
            name=resolved,
            steps=steps,
            version=self.version(o) or "1",
            description=self.text(o, "description"),
            input_schema=self.mapping(o, "input"),
            output_schema=self.mapping(o, "output"),
            error_handlers=tuple(handlers),
            timeout_ms=self.duration(o, "timeoutMs", 1),
            tags=tuple(str(t) for t in tags),
            triggers=tuple(t for t in triggers if t is not None),
            source=plain(data),
        )
        if self.issues:
            raise DefinitionError(self.issues)
        return defn

    def steps(self, o: _Obj, name: str) -> tuple[Step, ...]:
        loc = o.at(name)
        return tuple(self.step(raw, f"{loc}[{i}]") for i, raw in enumerate(self.items(o, name)))

    def step(self, raw: Any, loc: str) -> Step:
        o = self.obj(raw, loc, "step")
        if o is None:
            return Step(id="", name="", type="task")
        step_id = self.text(o, "id", required=True)
        type_: Any = o.values.get("type")
        if type_ not in STEP_TYPES:
            if o.has("type"):
                self.error(loc, f"type must be one of {', '.join(STEP_TYPES)}; got {type_!r}")
            else:
                self.error(loc, f"missing required field 'type' (one of {', '.join(STEP_TYPES)})")
            type_ = ""
        for block, owner in _BLOCKS.items():
            if o.has(block) and type_ and type_ != owner:
                self.error(o.at(block), f"only a {owner} step takes '{block}'; this is a {type_}")
        agent, capability = self.text(o, "agent"), self.text(o, "capability")
        if type_ == "task" and not (o.values.get("agent") or o.values.get("capability")):
            self.error(loc, "a task step needs a capability or an agent")
        service, operation = self.text(o, "service"), self.text(o, "operation")
        for name in ("service", "operation"):
            if type_ == "service" and not o.values.get(name):
                self.error(loc, f"a service step needs '{name}'")
            elif type_ and type_ != "service" and o.has(name):
                self.error(o.at(name), f"only a service step takes '{name}'; this is a {type_}")
        return Step(
            id=step_id,
            name=self.text(o, "name") or step_id,
            type=cast("StepType", type_ or "task"),
            agent=agent,
            capability=capability,
            service=service,
            operation=operation,
            input=plain(o.values.get("input")),
            output=plain(self.mapping(o, "output")),
            condition=self.text(o, "condition"),
            retry=self.retry(o),
            timeout_ms=self.duration(o, "timeout", 1),
            next=self.text(o, "next") if isinstance(o.values.get("next"), str) else "",
            next_decision=self.next_decision(o),
            parallel=self.parallel(o),
            decision=self.decision(o, "decision", "decision"),
            wait=self.wait(o),
            event=self.event(o),
            subworkflow=self.subworkflow(o),
            map=self.map(o),
            compensate=self.compensate(o),
            on_error=self.on_error(o),
            concurrency=self.concurrency(o, type_),
            rate_limit=self.rate_limit(o, type_),
            fallback=self.fallback(o, type_),
        )

    def trigger(self, raw: Any, loc: str) -> TriggerSpec | None:
        o = self.obj(raw, loc, "trigger")
        if o is None:
            return None
        event, cron, filter_ = self.text(o, "event"), self.text(o, "cron"), self.text(o, "filter")
        if bool(event) == bool(cron):
            self.error(loc, "a trigger needs exactly one of 'event' (an event name) or 'cron'")
        if cron:
            try:
                parse_cron(cron)
            except InvalidArgument as e:
                self.error(o.at("cron"), str(e))
            if filter_:
                self.error(o.at("filter"), "only an event trigger takes 'filter'")
        if filter_:
            try:
                compile_expression(filter_)
            except ExpressionError as e:
                self.error(o.at("filter"), f"not an expression: {e}")
        missed = self.choice(o, "missed", MISSED_RUNS, "once")
        if o.has("missed") and not cron:
            self.error(o.at("missed"), "only a cron trigger takes 'missed'")
        spec = (event, filter_, cron, plain(o.values.get("input")))
        return TriggerSpec(*spec, cast("MissedRuns", missed))

    # --- parts of a step --------------------------------------------------------------

    def retry(self, parent: _Obj) -> RetrySpec | None:
        o = self.child(parent, "retry")
        if o is None:
            return None
        base = RetrySpec()
        strategies = [s.value for s in RetryStrategy]
        strategy = self.choice(o, "strategy", strategies, base.strategy.value)
        attempts = self.integer(o, "maxAttempts", 1, MAX_ATTEMPTS, "the limit for retries")
        interval = self.duration(o, "interval", 0)
        max_interval = self.duration(o, "maxIntervalMs", 0)
        # interval * backoffRate ** (maxAttempts - 1) must stay a finite float: float
        # ** raises OverflowError where * would give inf.
        backoff = self.number(o, "backoffRate", 1.0, MAX_BACKOFF_RATE, limit="the limit")
        jitter = self.number(o, "jitter", 0.0, 1.0)
        return RetrySpec(
            max_attempts=base.max_attempts if attempts is None else attempts,
            interval_ms=base.interval_ms if interval is None else interval,
            backoff_rate=base.backoff_rate if backoff is None else backoff,
            strategy=RetryStrategy(strategy),
            max_interval_ms=base.max_interval_ms if max_interval is None else max_interval,
            jitter=base.jitter if jitter is None else jitter,
        )

    def decision(self, parent: _Obj, name: str, kind: str) -> DecisionSpec | None:
        o = self.child(parent, name, kind)
        if o is None:
            return None
        branches: dict[str, str] = {}
        raw = self.mapping(o, "branches") or {}
        for key, target in raw.items():
            label = branch_key(key)
            if not isinstance(target, str) or not target:
                self.error(f"{o.at('branches')}.{label}", "must be a step id")
            else:
                branches[label] = target
        return DecisionSpec(self.text(o, "expression"), branches, self.text(o, "default"))

    def next_decision(self, o: _Obj) -> DecisionSpec | None:
        value = o.values.get("next")
        if value is None or isinstance(value, str):
            return None
        if not isinstance(value, Mapping):
            self.error(o.at("next"), "must be a step id or an object {expression, branches}")
            return None
        return self.decision(o, "next", "next")

    def parallel(self, parent: _Obj) -> ParallelSpec | None:
        o = self.child(parent, "parallel")
        if o is None:
            return None
        branches = []
        for i, raw in enumerate(self.items(o, "branches")):
            loc = f"{o.at('branches')}[{i}]"
            b = self.obj(raw, loc, "branch")
            if b is not None:
                branches.append(
                    Branch(self.text(b, "name") or f"branches[{i}]", self.steps(b, "steps"))
                )
        policy = self.choice(o, "policy", ("all", "partial"), "all")
        return ParallelSpec(tuple(branches), cast("Literal['all', 'partial']", policy))

    def wait(self, parent: _Obj) -> WaitSpec | None:
        o = self.child(parent, "wait")
        if o is None:
            return None
        duration = self.duration(o, "durationMs", 0)
        if o.has("seconds"):
            limit = "365 days, in seconds"
            seconds = self.number(o, "seconds", 0.0, MAX_DURATION_MS / 1000, limit=limit)
            if o.has("durationMs"):
                self.error(o.loc, "give durationMs or seconds, not both")
            elif seconds is not None:
                duration = round(seconds * 1000)
        until = o.values.get("until")
        if isinstance(until, dt.datetime | dt.date):
            o.values["until"] = until.isoformat()  # YAML reads an unquoted timestamp
        return WaitSpec(duration, self.text(o, "until"))

    def event(self, parent: _Obj) -> EventSpec | None:
        o = self.child(parent, "event")
        if o is None:
            return None
        return EventSpec(
            self.text(o, "name"), self.text(o, "correlationKey"), self.duration(o, "timeoutMs", 1)
        )

    def subworkflow(self, parent: _Obj) -> SubworkflowSpec | None:
        if parent.has("workflow"):
            if parent.has("subworkflow"):
                self.error(parent.loc, "give subworkflow or workflow, not both")
            return SubworkflowSpec(self.text(parent, "workflow"))
        o = self.child(parent, "subworkflow")
        if o is None:
            return None
        return SubworkflowSpec(self.text(o, "workflow"), self.version(o))

    def map(self, parent: _Obj) -> MapSpec | None:
        o = self.child(parent, "map")
        if o is None:
            return None
        items, steps = self.text(o, "items"), self.steps(o, "steps")
        return MapSpec(items, steps, self.integer(o, "concurrency", 1) or 4)

    def compensate(self, parent: _Obj) -> CompensateSpec | None:
        o = self.child(parent, "compensate")
        if o is None:
            return None
        capability, agent = self.text(o, "capability"), self.text(o, "agent")
        if not capability and not agent:
            self.error(o.loc, "needs a capability or an agent")
        timeout = self.duration(o, "timeout", 1)
        return CompensateSpec(capability, agent, plain(o.values.get("input")), timeout)

    def concurrency(self, parent: _Obj, type_: str) -> ConcurrencySpec | None:
        o = self.child(parent, "concurrency")
        if o is None:
            return None
        self.gated(o, type_, "concurrency")
        limit = self.integer(o, "limit", 1, 100_000)
        if limit is None:
            if not o.has("limit"):
                self.error(o.loc, "needs limit (tasks at once per key)")
            limit = 1
        return ConcurrencySpec(limit, self.gate_key(o), self.text(o, "group"))

    def rate_limit(self, parent: _Obj, type_: str) -> RateLimitSpec | None:
        o = self.child(parent, "rateLimit")
        if o is None:
            return None
        self.gated(o, type_, "rateLimit")
        rate = self.number(o, "perSecond", 0.001, 100_000.0)
        if rate is None and not o.has("perSecond"):
            self.error(o.loc, "needs perSecond (tasks started per second per key)")
        burst = self.integer(o, "burst", 1, 100_000)
        return RateLimitSpec(rate or 1.0, self.gate_key(o), burst or 1, self.text(o, "group"))

    def fallback(self, parent: _Obj, type_: str) -> FallbackSpec | None:
        o = self.child(parent, "fallback")
        if o is None:
            return None
        if type_ and type_ != "task":
            self.error(o.loc, f"only a task step takes 'fallback'; this is a {type_}")
        capability, workflow = self.text(o, "capability"), self.text(o, "workflow")
        if bool(capability) == bool(workflow):
            self.error(o.loc, "a fallback names exactly one of 'capability' or 'workflow'")
        return FallbackSpec(capability, workflow)

    def gated(self, o: _Obj, type_: str, name: str) -> None:
        if type_ and type_ not in ("task", "service"):
            self.error(o.loc, f"only a task or service step takes '{name}'; this is a {type_}")

    def gate_key(self, o: _Obj) -> str:
        key = self.text(o, "key")
        if key and is_expression(key):
            try:
                compile_expression(key)
            except ExpressionError as e:
                self.error(o.at("key"), f"not an expression: {e}")
        return key

    def on_error(self, parent: _Obj) -> ErrorAction | None:
        value = parent.values.get("onError")
        if value is None:
            return None
        if isinstance(value, str) and value:
            return ErrorAction("goto", value)  # the seed's `onError: 'handle_fetch_error'`
        if not isinstance(value, Mapping):
            self.error(parent.at("onError"), "must be a step id or an object {action, next}")
            return None
        o = _Obj(self.issues, self.hints, value, parent.at("onError"), "onError")
        target = self.text(o, "next")
        default = "goto" if target else "fail"
        action = self.choice(o, "action", ERROR_ACTIONS, default)
        if action == "goto" and not target:
            self.error(o.loc, "action 'goto' needs next (the step to go to)")
        elif action != "goto" and target:
            self.error(o.at("next"), f"only action 'goto' takes next; this is '{action}'")
        return ErrorAction(cast("ErrorActionKind", action), target)


def parse_definition(data: Mapping[str, Any], name: str | None = None) -> WorkflowDefinition:
    """Parse a definition written in the seed's schema into a ``WorkflowDefinition``.

    ``name`` is the name the workflow is defined under (``defineWorkflow(name, ...)``);
    without it the document's ``id`` is used, else its ``name``. The document is kept,
    copied, as ``source``. Raises ``DefinitionError`` listing every structural problem,
    or only the limits of ``limits.check_document`` the document passes (then nothing
    else is looked at).
    """
    return _Parser().definition(data, name)


def dump_definition(defn: WorkflowDefinition) -> dict[str, Any]:
    """The definition as written (``source``), ready to save as JSON or YAML.

    ``id`` is set to the definition's name when the document lacks it, so loading the
    saved file gives the same name back.
    """
    out = plain(defn.source)
    if out.get("id") != defn.name:
        out = {"id": defn.name, **{k: v for k, v in out.items() if k != "id"}}
    return cast("dict[str, Any]", out)


# --- files ------------------------------------------------------------------------------


def load_definition_file(path: str | Path) -> WorkflowDefinition:
    """Read and parse a definition file. Every issue's location starts with the file's
    name (``project_setup.yaml: steps[2]``). Raises ``DefinitionError`` or ``OSError``."""
    data = read_definition_file(path)
    try:
        return parse_definition(data)
    except DefinitionError as e:
        label = Path(path).name
        issues = [dataclasses.replace(i, location=f"{label}: {i.location}") for i in e.issues]
        raise DefinitionError(issues) from None


__all__ = [
    "FIELDS",
    "DefinitionError",
    "Hints",
    "Issue",
    "accepted_keys",
    "did_you_mean",
    "dump_definition",
    "load_definition_file",
    "parse_definition",
    "read_definition_file",
]
