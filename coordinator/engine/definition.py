"""Parse workflow definitions, written in the seed's schema as JSON or YAML, into ``model``.

    ValueError
    └── DefinitionError   the definition is malformed; ``.issues`` lists every problem

Parsing checks structure: field names (camelCase or snake_case, unknown ones refused
with a suggestion), JSON types, enums and ranges. It collects every problem before
raising. What needs the whole graph (targets, reachability, expressions, required
parts of each step type) is ``validate.validate_definition``'s job.

Locations are written as paths into the document as written, with list indices:
``steps[5].parallel.branches[1].steps[0].capability``.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml

from coordinator.engine.model import (
    STEP_TYPES,
    Branch,
    CompensateSpec,
    DecisionSpec,
    ErrorAction,
    ErrorActionKind,
    ErrorHandlerSpec,
    EventSpec,
    MapSpec,
    ParallelSpec,
    RetrySpec,
    Step,
    StepType,
    SubworkflowSpec,
    WaitSpec,
    WorkflowDefinition,
)
from coordinator.retry import RetryStrategy

# Every object of the format and the fields it takes, in the documented camelCase
# spelling; the snake_case spelling of each is accepted too. workflow.schema.json
# lists the same keys (a test compares them).
FIELDS: Mapping[str, tuple[str, ...]] = {
    "definition": (
        *("$schema", "id", "name", "description", "version", "input", "output", "steps"),
        *("errorHandlers", "timeoutMs", "tags", "parameters"),
    ),
    "step": (
        *("id", "name", "type", "agent", "capability", "input", "output", "condition"),
        *("retry", "timeout", "next", "parallel", "decision", "wait", "event"),
        *("subworkflow", "workflow", "map", "compensate", "onError"),
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
}
ERROR_ACTIONS: tuple[str, ...] = get_args(ErrorActionKind)
_BLOCK_FIELDS = ("parallel", "decision", "wait", "event", "subworkflow", "map")
_BLOCKS = {**{b: b for b in _BLOCK_FIELDS}, "workflow": "subworkflow"}  # field -> its step type
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_REQUIRED = object()


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in a definition: where (a path such as ``steps[3].next``) and what."""

    location: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class DefinitionError(ValueError):
    """A definition cannot be used; ``issues`` holds every problem found, not only the
    first. ``str()`` lists them as ``location: message``, one per line."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(map(str, self.issues)))


def snake_case(name: str) -> str:
    """``onError`` -> ``on_error``: the alternative spelling accepted for a field."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def accepted_keys(kind: str) -> frozenset[str]:
    """Every key an object of ``kind`` (a key of ``FIELDS``) accepts, both spellings."""
    return frozenset(k for f in FIELDS[kind] for k in (f, snake_case(f)))


def did_you_mean(word: str, candidates: Sequence[str] | frozenset[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def plain(value: Any) -> Any:
    """A deep copy of JSON-like data as dicts and lists (YAML and callers may hand us
    other Mappings and tuples)."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
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

    def __init__(self, issues: list[Issue], raw: Mapping[Any, Any], loc: str, kind: str) -> None:
        self.loc = loc  # "" for the document itself, whose fields are located by name alone
        here = loc or "definition"
        self.values: dict[str, Any] = {}
        self.written: dict[str, str] = {}
        spelled = {k: f for f in FIELDS[kind] for k in (f, snake_case(f))}
        for key, value in raw.items():
            name = spelled.get(key) if isinstance(key, str) else None
            if name is None:
                hint = did_you_mean(str(key), FIELDS[kind])
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

    def error(self, loc: str, message: str) -> None:
        self.issues.append(Issue(loc or "definition", message))

    def obj(self, raw: Any, loc: str, kind: str) -> _Obj | None:
        if not isinstance(raw, Mapping):
            self.error(loc, "must be an object")
            return None
        return _Obj(self.issues, raw, loc, kind)

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

    def integer(self, o: _Obj, name: str, minimum: int) -> int | None:
        value = o.values.get(name)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.error(o.at(name), f"must be an integer >= {minimum}")
            return None
        return value

    def number(self, o: _Obj, name: str, low: float, high: float | None = None) -> float | None:
        value = o.values.get(name)
        if value is None:
            return None
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= low
        if not ok or (high is not None and value > high):
            bound = f">= {low:g}" if high is None else f"between {low:g} and {high:g}"
            self.error(o.at(name), f"must be a number {bound}")
            return None
        return float(value)

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
            timeout_ms=self.integer(o, "timeoutMs", 1),
            tags=tuple(str(t) for t in tags),
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
        return Step(
            id=step_id,
            name=self.text(o, "name") or step_id,
            type=cast("StepType", type_ or "task"),
            agent=agent,
            capability=capability,
            input=plain(o.values.get("input")),
            output=plain(self.mapping(o, "output")),
            condition=self.text(o, "condition"),
            retry=self.retry(o),
            timeout_ms=self.integer(o, "timeout", 1),
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
        )

    # --- parts of a step --------------------------------------------------------------

    def retry(self, parent: _Obj) -> RetrySpec | None:
        o = self.child(parent, "retry")
        if o is None:
            return None
        base = RetrySpec()
        strategies = [s.value for s in RetryStrategy]
        strategy = self.choice(o, "strategy", strategies, base.strategy.value)
        attempts = self.integer(o, "maxAttempts", 1)
        interval = self.integer(o, "interval", 0)
        max_interval = self.integer(o, "maxIntervalMs", 0)
        backoff = self.number(o, "backoffRate", 1.0)
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
        duration = self.integer(o, "durationMs", 0)
        if o.has("seconds"):
            seconds = self.number(o, "seconds", 0.0)
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
            self.text(o, "name"), self.text(o, "correlationKey"), self.integer(o, "timeoutMs", 1)
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
        timeout = self.integer(o, "timeout", 1)
        return CompensateSpec(capability, agent, plain(o.values.get("input")), timeout)

    def on_error(self, parent: _Obj) -> ErrorAction | None:
        value = parent.values.get("onError")
        if value is None:
            return None
        if isinstance(value, str) and value:
            return ErrorAction("goto", value)  # the seed's `onError: 'handle_fetch_error'`
        if not isinstance(value, Mapping):
            self.error(parent.at("onError"), "must be a step id or an object {action, next}")
            return None
        o = _Obj(self.issues, value, parent.at("onError"), "onError")
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
    copied, as ``source``. Raises ``DefinitionError`` listing every structural problem.
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


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which PyYAML would silently collapse."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            key = loader.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_definition_file(path: str | Path) -> dict[str, Any]:
    """The document in a ``.json``, ``.yaml`` or ``.yml`` file, not yet parsed (for
    templates). Raises ``DefinitionError`` located at ``<file name>: line L column C``
    for syntax errors, ``OSError`` when the file cannot be read."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    suffix = p.suffix.lower()
    data: Any
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
        else:
            message = f"unsupported file type '{p.suffix}' (use .json, .yaml or .yml)"
            raise DefinitionError([Issue(p.name, message)])
    except json.JSONDecodeError as e:
        raise DefinitionError(
            [Issue(f"{p.name}: line {e.lineno} column {e.colno}", e.msg)]
        ) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{p.name}: line {mark.line + 1} column {mark.column + 1}" if mark else p.name
        raise DefinitionError([Issue(where, e.problem or e.context or str(e))]) from None
    except yaml.YAMLError as e:
        raise DefinitionError([Issue(p.name, str(e))]) from None
    if not isinstance(data, dict):
        raise DefinitionError([Issue(p.name, "a workflow definition must be an object")])
    return data


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


# --- templates --------------------------------------------------------------------------


def instantiate_template(template: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A concrete definition from a template: ``{{ name }}`` placeholders replaced.

    The template declares ``parameters`` as ``{name: {default, description}}`` (no
    default: required) or as a list of required names. A string that is exactly one
    placeholder takes the parameter's value with its JSON type; a placeholder inside
    longer text is rendered as text (strings as they are, other values as JSON).
    Only ``{{ identifier }}`` is a placeholder: ``{{.Id}}`` and ``${...}`` stay as
    written. Raises ``DefinitionError`` for a missing or unknown parameter and for a
    placeholder naming an undeclared one. The result has no ``parameters`` key.
    """
    issues: list[Issue] = []
    values = _declared_parameters(template.get("parameters"), issues)
    for key in params:
        if key not in values:
            hint = did_you_mean(str(key), list(values))
            issues.append(Issue("parameters", f"unknown parameter '{key}'{hint}"))
    for key, default in values.items():
        if key in params:
            values[key] = params[key]
        elif default is _REQUIRED:
            issues.append(Issue(f"parameters.{key}", "required parameter has no value"))
            values[key] = None  # rendered only to find further issues, then discarded
    body = {k: v for k, v in template.items() if k != "parameters"}
    result = _render(body, "", values, issues)
    if issues:
        raise DefinitionError(issues)
    return cast("dict[str, Any]", result)


def _declared_parameters(raw: Any, issues: list[Issue]) -> dict[str, Any]:
    declared: dict[str, Any] = {}
    if raw is None:
        return declared
    if isinstance(raw, list) and all(isinstance(k, str) for k in raw):
        raw = dict.fromkeys(raw)
    if not isinstance(raw, Mapping):
        issues.append(Issue("parameters", "must be an object or a list of names"))
        return declared
    for key, spec in raw.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            issues.append(Issue("parameters", f"'{key}' is not a valid parameter name"))
        elif spec is not None and not isinstance(spec, Mapping):
            issues.append(Issue(f"parameters.{key}", "must be an object {default, description}"))
        else:
            fields = spec or {}
            for extra in sorted(set(fields) - {"default", "description"}, key=str):
                issues.append(Issue(f"parameters.{key}", f"unknown field '{extra}'"))
            declared[key] = plain(fields["default"]) if "default" in fields else _REQUIRED
    return declared


def _render(value: Any, loc: str, values: Mapping[str, Any], issues: list[Issue]) -> Any:
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            here = f"{loc}.{k}" if loc else str(k)
            key = _render_text(k, here, values, issues) if isinstance(k, str) else k
            out[key] = _render(v, here, values, issues)
        return out
    if isinstance(value, list | tuple):
        return [_render(v, f"{loc}[{i}]", values, issues) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return plain(value)
    whole = _PLACEHOLDER.fullmatch(value.strip())
    if whole and whole.group(1) in values:
        return plain(values[whole.group(1)])  # keeps the parameter's JSON type
    return _render_text(value, loc, values, issues)


def _render_text(value: str, loc: str, values: Mapping[str, Any], issues: list[Issue]) -> str:
    def text(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            hint = did_you_mean(name, list(values))
            issues.append(Issue(loc or "definition", f"unknown parameter '{name}'{hint}"))
            return m.group(0)
        v = values[name]
        return v if isinstance(v, str) else json.dumps(v, default=str)

    return _PLACEHOLDER.sub(text, value)


__all__ = [
    "FIELDS",
    "DefinitionError",
    "Issue",
    "accepted_keys",
    "dump_definition",
    "instantiate_template",
    "load_definition_file",
    "parse_definition",
    "read_definition_file",
]
