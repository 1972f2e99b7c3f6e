"""Semantic checks of a parsed definition, and a small JSON Schema validator for inputs.

``validate_definition`` reports what parsing cannot see: duplicate ids, targets that
do not exist or leave their sequence, unreachable steps, loops with no way out,
expressions that do not compile or read outside the scope, missing parts of each
step type, and (as warnings) capabilities or workflows nobody provides. It never
raises; callers decide what to do with errors and warnings.

Locations are paths into the definition as written, with the list indices of where
each step is written: ``steps[6].parallel.branches[1].steps[0].input.path``.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from coordinator.engine.definition import Issue, did_you_mean
from coordinator.engine.expr import (
    ExpressionError,
    compile_expression,
    compile_template,
    has_interpolation,
    is_expression,
)
from coordinator.engine.model import DecisionSpec, Step, WorkflowDefinition

# What an expression may read (``$`` alone: the whole scope or a computed key).
SCOPE_ROOTS = frozenset(
    {"input", "variables", "output", "error", "workflowName", "executionId", "stepId"}
    | {"item", "index", "$"}
)
_ROOT_LIST = ", ".join(f"$.{r}" for r in sorted(SCOPE_ROOTS - {"$"}))
# A scope path written in literal text, where nothing evaluates it.
_LITERAL_PATH = re.compile(rf"\$\.(?:{'|'.join(sorted(SCOPE_ROOTS - {'$'}))})\b[\w.]*")


@dataclass(frozen=True, slots=True)
class _Placed:
    """A step and where it is written."""

    step: Step
    loc: str  # steps[5].parallel.branches[1].steps[0]
    seq: str  # steps[5].parallel.branches[1].steps: the sequence it belongs to
    in_map: bool  # inside some map step's body: $.item and $.index are defined


def _place(steps: tuple[Step, ...], seq: str, in_map: bool) -> Iterator[_Placed]:
    for i, step in enumerate(steps):
        loc = f"{seq}[{i}]"
        yield _Placed(step, loc, seq, in_map)
        for label, inner in step.children():
            yield from _place(inner, f"{loc}.{label}.steps", in_map or label == "map")


def validate_definition(
    defn: WorkflowDefinition,
    *,
    known_capabilities: Collection[str] | None = None,
    known_workflows: Collection[str] | None = None,
) -> list[Issue]:
    """Every semantic problem in ``defn``, errors and warnings, in document order.

    With ``known_capabilities``, a capability no agent advertises is a warning; with
    ``known_workflows``, so is a subworkflow or error handler naming an unknown
    workflow. A definition with no ``error`` issue can be run.
    """
    return _Checker(defn, known_capabilities, known_workflows).run()


class _Checker:
    def __init__(
        self,
        defn: WorkflowDefinition,
        capabilities: Collection[str] | None,
        workflows: Collection[str] | None,
    ) -> None:
        self.defn = defn
        self.capabilities = capabilities
        self.workflows = workflows
        self.issues: list[Issue] = []
        self.placed = list(_place(defn.steps, "steps", False))
        self.where: dict[str, _Placed] = {}  # step id -> its first occurrence
        self.edges: dict[str, list[str]] = {}  # step id -> valid targets in its sequence

    def error(self, loc: str, message: str) -> None:
        self.issues.append(Issue(loc, message))

    def warn(self, loc: str, message: str) -> None:
        self.issues.append(Issue(loc, message, "warning"))

    def run(self) -> list[Issue]:
        if not self.defn.name:
            self.error("definition", "a workflow needs a name")
        if not self.defn.steps:
            self.error("steps", "a workflow needs at least one step")
        for p in self.placed:
            if not p.step.id:
                self.error(f"{p.loc}.id", "a step needs an id")
            elif p.step.id in self.where:
                first = self.where[p.step.id].loc
                self.error(f"{p.loc}.id", f"duplicate step id '{p.step.id}' (first at {first})")
            else:
                self.where[p.step.id] = p
        for p in self.placed:
            self.step_parts(p)
            self.targets(p)
            self.expressions(p)
            self.references(p)
        self.control_flow()
        for i, h in enumerate(self.defn.error_handlers):
            self.workflow_ref(f"errorHandlers[{i}].handler", h.handler)
        for field, schema in (
            ("input", self.defn.input_schema),
            ("output", self.defn.output_schema),
        ):
            if schema is not None:
                self.issues.extend(check_schema(schema, field))
        order = {p.loc: i for i, p in enumerate(self.placed)}
        return sorted(self.issues, key=lambda i: _document_order(i.location, order))

    # --- the parts each step type needs -------------------------------------------------

    def step_parts(self, p: _Placed) -> None:
        s, loc = p.step, p.loc
        if s.type == "task" and not s.capability and not s.agent:
            self.error(loc, "a task step needs a capability or an agent")
        elif s.type == "decision":
            if s.decision is None:
                self.error(loc, "a decision step needs decision.expression and at least one branch")
            else:
                if not s.decision.expression:
                    self.error(f"{loc}.decision.expression", "a decision step needs an expression")
                if not s.decision.branches:
                    self.error(f"{loc}.decision.branches", "a decision needs at least one branch")
            if s.next or s.next_decision is not None:
                message = "a decision step goes where its branches say; use decision.default"
                self.error(f"{loc}.next", message)
        elif s.type == "parallel":
            if s.parallel is None or not s.parallel.branches:
                self.error(f"{loc}.parallel.branches", "a parallel step needs at least one branch")
            else:
                for i, b in enumerate(s.parallel.branches):
                    if not b.steps:
                        where = f"{loc}.parallel.branches[{i}].steps"
                        self.error(where, "a branch needs at least one step")
        elif s.type == "wait":
            if s.wait is None or (s.wait.duration_ms is None) == (not s.wait.until):
                self.error(f"{loc}.wait", "give exactly one of durationMs (or seconds) and until")
        elif s.type == "event" and (s.event is None or not s.event.name):
            self.error(f"{loc}.event.name", "an event step needs the event's name")
        elif s.type == "subworkflow" and (s.subworkflow is None or not s.subworkflow.workflow):
            self.error(
                f"{loc}.subworkflow.workflow", "a subworkflow step needs the workflow to run"
            )
        elif s.type == "map":
            if s.map is None:
                self.error(loc, "a map step needs map.items and map.steps")
                return
            if not s.map.items:
                self.error(f"{loc}.map.items", "a map step needs items (an expression)")
            if not s.map.steps:
                self.error(f"{loc}.map.steps", "a map step needs at least one step")
            if s.map.concurrency < 1:
                self.error(f"{loc}.map.concurrency", "must be an integer >= 1")

    # --- control flow ----------------------------------------------------------------

    def targets(self, p: _Placed) -> None:
        s, loc = p.step, p.loc
        found: list[tuple[str, str]] = []  # (location, target)
        if s.type != "decision":  # a decision's next is reported, never followed
            if s.next:
                found.append((f"{loc}.next", s.next))
            if s.next_decision is not None:
                found += _decision_targets(f"{loc}.next", s.next_decision)
        if s.decision is not None:
            found += _decision_targets(f"{loc}.decision", s.decision)
        if s.on_error is not None and s.on_error.action == "goto":
            found.append((f"{loc}.onError", s.on_error.next))
        # A duplicate id (already an error) gets no edges of its own: the graph is by id.
        edges = self.edges.setdefault(s.id, []) if self.where.get(s.id) is p else []
        for where, target in found:
            other = self.where.get(target)
            if other is None:
                hint = did_you_mean(target, list(self.where))
                self.error(where, f"unknown step '{target}'{hint}")
            elif other.seq != p.seq:
                # The engine starts a target in the frame of the step that jumps, so a
                # jump into or out of a branch or map body would run it in the wrong one.
                self.error(
                    where,
                    f"step '{target}' is at {other.loc}, outside this sequence ({p.seq}); "
                    "a step can only go to steps of its own sequence",
                )
            else:
                edges.append(target)

    def control_flow(self) -> None:
        sequences: dict[str, list[_Placed]] = {}
        for p in self.placed:
            if self.where.get(p.step.id) is p:
                sequences.setdefault(p.seq, []).append(p)
        for members in sequences.values():
            first = members[0].step.id
            reached = _reach(first, self.edges)
            for p in members:
                if p.step.id not in reached:
                    self.error(p.loc, f"step '{p.step.id}' is unreachable from '{first}'")
            self.dead_loops([p for p in members if p.step.id in reached])

    def dead_loops(self, members: list[_Placed]) -> None:
        """Report each cycle that nothing leaves and in which no step ends the sequence.

        Only "bottom" cycles (no edge leaves them) are reported: a cycle whose way out
        leads into such a one is not the cycle to fix.
        """
        reach = {p.step.id: _reach(p.step.id, self.edges, include_start=False) for p in members}
        seen: set[str] = set()
        for p in members:
            sid = p.step.id
            if sid in seen or sid not in reach[sid]:
                continue  # not on a cycle
            cycle = [q for q in members if q.step.id in reach[sid] and sid in reach[q.step.id]]
            ids = {q.step.id for q in cycle}
            seen |= ids
            leaves = any(t not in ids for i in ids for t in self.edges.get(i, ()))
            if not leaves and not any(_can_end(q.step) for q in cycle):
                names = ", ".join(f"'{i}'" for i in [q.step.id for q in cycle])
                self.error(
                    p.loc,
                    f"loop with no exit through {names}: no step in it ends the sequence "
                    "and no decision or onError leads out of it",
                )

    # --- expressions -------------------------------------------------------------------

    def expressions(self, p: _Placed) -> None:
        s, loc = p.step, p.loc

        def check(where: str, source: str, *, output: bool = False) -> None:
            self.expression(where, source, p.in_map, output)

        self.mapping(f"{loc}.input", s.input, p.in_map, output=False)
        if s.output is not None:
            self.mapping(f"{loc}.output", s.output, p.in_map, output=True)
        if s.condition:
            check(f"{loc}.condition", s.condition)
        if s.decision is not None and s.decision.expression:
            check(f"{loc}.decision.expression", s.decision.expression)
        if s.next_decision is not None:
            # _advance evaluates it with the step's output in scope.
            check(f"{loc}.next.expression", s.next_decision.expression, output=True)
        if s.map is not None and s.map.items:
            check(f"{loc}.map.items", s.map.items)
        if s.wait is not None and s.wait.until:
            if is_expression(s.wait.until):
                check(f"{loc}.wait.until", s.wait.until)
            elif not _is_timestamp(s.wait.until):
                message = f"'{s.wait.until}' is neither an ISO-8601 timestamp nor an expression"
                self.error(f"{loc}.wait.until", message)
        if s.event is not None and s.event.correlation_key:
            self.mapping(f"{loc}.event.correlationKey", s.event.correlation_key, p.in_map, False)
        if s.compensate is not None:  # it sees the step's recorded output
            self.mapping(f"{loc}.compensate.input", s.compensate.input, p.in_map, output=True)

    def mapping(self, loc: str, value: Any, in_map: bool, output: bool) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                self.mapping(f"{loc}.{k}", v, in_map, output)
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                self.mapping(f"{loc}[{i}]", v, in_map, output)
        elif isinstance(value, str):
            if is_expression(value):
                self.expression(loc, value, in_map, output)
            elif has_interpolation(value):
                self.expression(loc, value, in_map, output, template=True)
            else:
                self.literal(loc, value)

    def expression(
        self, loc: str, source: str, in_map: bool, output: bool, template: bool = False
    ) -> None:
        try:
            if template:
                compiled = compile_template(source)
                roots = compiled.roots
                for part in compiled.parts:
                    if isinstance(part, str):
                        self.literal(loc, part)
            else:
                roots = compile_expression(source).roots
        except ExpressionError as e:
            self.error(loc, str(e))
            return
        for root in sorted(roots):
            if root not in SCOPE_ROOTS:
                hint = did_you_mean(f"$.{root}", [f"$.{r}" for r in sorted(SCOPE_ROOTS - {"$"})])
                self.error(loc, f"unknown root '$.{root}'{hint}; expressions read {_ROOT_LIST}")
            elif root == "output" and not output:
                self.warn(
                    loc,
                    "$.output is only set in an output mapping, a next expression and "
                    "compensate.input; here it is null",
                )
            elif root in ("item", "index") and not in_map:
                self.error(loc, f"$.{root} is only defined inside a map step's steps")

    def literal(self, loc: str, text: str) -> None:
        for found in _LITERAL_PATH.findall(text):
            self.warn(loc, f"'{found}' in literal text is not evaluated; write '${{{found}}}'")

    # --- references outside the definition ---------------------------------------------

    def references(self, p: _Placed) -> None:
        s, loc = p.step, p.loc
        for where, capability in (
            (f"{loc}.capability", s.capability if s.type == "task" else ""),
            (f"{loc}.compensate.capability", s.compensate.capability if s.compensate else ""),
        ):
            if capability and self.capabilities is not None and capability not in self.capabilities:
                self.warn(where, f"no connected agent advertises '{capability}'")
        if s.subworkflow is not None and s.subworkflow.workflow:
            self.workflow_ref(f"{loc}.subworkflow.workflow", s.subworkflow.workflow)

    def workflow_ref(self, loc: str, name: str) -> None:
        if not name:
            self.error(loc, "must name a workflow")
        elif self.workflows is not None and name not in self.workflows:
            hint = did_you_mean(name, sorted(self.workflows))
            self.warn(loc, f"no workflow named '{name}' is defined{hint}")


def _decision_targets(loc: str, decision: DecisionSpec) -> list[tuple[str, str]]:
    found = [(f"{loc}.branches.{k}", t) for k, t in decision.branches.items()]
    return [*found, (f"{loc}.default", decision.default)] if decision.default else found


def _can_end(step: Step) -> bool:
    """Whether the sequence can end after ``step`` (without a failure)."""
    if step.type == "decision":
        # No matching branch and no default fails the step; it never ends quietly.
        return step.decision is None
    if step.next:
        return False
    return step.next_decision is None or not step.next_decision.default


def _reach(start: str, edges: Mapping[str, list[str]], include_start: bool = True) -> set[str]:
    seen: set[str] = {start} if include_start else set()
    todo = list(edges.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return seen


def _is_timestamp(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _document_order(location: str, order: Mapping[str, int]) -> tuple[int, int]:
    """Sort key: issues of a step in the order its steps are written, the rest after."""
    step = re.match(
        r"(steps\[\d+\](?:\.(?:parallel\.branches\[\d+\]|map)\.steps\[\d+\])*)", location
    )
    if step and step.group(1) in order:
        return (0, order[step.group(1)])
    return (1, 0)


# --- JSON Schema, the subset input schemas need -----------------------------------------

_TYPE_NAMES = {
    "null": "null",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "an array",
    "object": "an object",
}


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: _is_number(v) and (isinstance(v, int) or float(v).is_integer()),
    "number": _is_number,
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list | tuple),
    "object": lambda v: isinstance(v, Mapping),
}


def validate_input(defn: WorkflowDefinition, input: Any) -> list[Issue]:
    """Problems with ``input`` against the definition's ``input`` JSON Schema, located
    like ``input.priority``; ``[]`` when there is no schema. ``None`` is checked as
    ``{}`` (a workflow started without input)."""
    if defn.input_schema is None:
        return []
    return validate_json_schema({} if input is None else input, defn.input_schema, "input")


def validate_json_schema(instance: Any, schema: Any, location: str = "input") -> list[Issue]:
    """Check ``instance`` against a JSON Schema (draft 2020-12 subset).

    Supported: ``type`` (with ``integer``), ``enum``, ``const``, ``properties``,
    ``required``, ``additionalProperties``, ``items``, ``minItems``/``maxItems``,
    ``minimum``/``maximum`` and their exclusive forms, ``minLength``/``maxLength``,
    ``pattern``, ``anyOf``/``oneOf``/``allOf`` and local ``$ref`` (``#/$defs/x``).
    Other keywords are ignored, as JSON Schema does with unknown ones.
    """
    out: list[Issue] = []
    _check(instance, schema, location, schema, out)
    return out


def _check(value: Any, schema: Any, loc: str, root: Any, out: list[Issue]) -> None:
    if schema is False:
        out.append(Issue(loc, "is not allowed"))
    if not isinstance(schema, Mapping):
        return
    if "$ref" in schema:
        target = _resolve(root, schema["$ref"])
        if target is None:
            out.append(Issue(loc, f"schema error: cannot resolve $ref '{schema['$ref']}'"))
        else:
            _check(value, target, loc, root, out)
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_TYPE_CHECKS.get(t, lambda v: False)(value) for t in names):
            out.append(Issue(loc, f"must be {' or '.join(_TYPE_NAMES.get(t, t) for t in names)}"))
            return  # the other keywords would only repeat the mismatch
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        out.append(Issue(loc, f"must be one of {list(schema['enum'])!r}"))
    if "const" in schema and not _same(value, schema["const"]):
        out.append(Issue(loc, f"must be {schema['const']!r}"))
    if _is_number(value):
        _bounds(value, schema, loc, out)
    elif isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            out.append(Issue(loc, f"must be at least {schema['minLength']} characters long"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(Issue(loc, f"must be at most {schema['maxLength']} characters long"))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(Issue(loc, f"must match the pattern '{schema['pattern']}'"))
    elif isinstance(value, list | tuple):
        if len(value) < schema.get("minItems", 0):
            out.append(Issue(loc, f"must have at least {schema['minItems']} item(s)"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(Issue(loc, f"must have at most {schema['maxItems']} item(s)"))
        if "items" in schema:
            for i, item in enumerate(value):
                _check(item, schema["items"], f"{loc}[{i}]", root, out)
    elif isinstance(value, Mapping):
        _object(value, schema, loc, root, out)
    for sub in schema.get("allOf", ()):
        _check(value, sub, loc, root, out)
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            _alternatives(value, schema[keyword], keyword, loc, root, out)


def _bounds(value: float, schema: Mapping[str, Any], loc: str, out: list[Issue]) -> None:
    checks: tuple[tuple[str, Callable[[float, float], bool], str], ...] = (
        ("minimum", operator.ge, ">="),
        ("maximum", operator.le, "<="),
        ("exclusiveMinimum", operator.gt, ">"),
        ("exclusiveMaximum", operator.lt, "<"),
    )
    for keyword, ok, symbol in checks:
        if keyword in schema and not ok(value, schema[keyword]):
            out.append(Issue(loc, f"must be {symbol} {schema[keyword]}"))


def _object(
    value: Mapping[str, Any], schema: Mapping[str, Any], loc: str, root: Any, out: list[Issue]
) -> None:
    properties = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            out.append(Issue(f"{loc}.{name}", "is required"))
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            _check(item, properties[key], f"{loc}.{key}", root, out)
        elif extra is False:
            hint = did_you_mean(str(key), list(properties))
            out.append(Issue(f"{loc}.{key}", f"unknown property{hint}"))
        else:
            _check(item, extra, f"{loc}.{key}", root, out)


def _alternatives(
    value: Any, options: list[Any], keyword: str, loc: str, root: Any, out: list[Issue]
) -> None:
    results = [_validate_at(value, o, loc, root) for o in options]
    passed = sum(1 for r in results if not r)
    if keyword == "oneOf" and passed > 1:
        out.append(Issue(loc, "matches more than one of the allowed forms"))
    if passed:
        return
    # Report the form whose type fits (fewest issues); else list the types allowed.
    fitting = [r for o, r in zip(options, results, strict=True) if _type_fits(value, o, root)]
    if fitting:
        best: list[Issue] = min(fitting, key=len)
        out.extend(best)
    else:
        out.append(Issue(loc, "does not match any of the allowed forms"))


def _validate_at(value: Any, schema: Any, loc: str, root: Any) -> list[Issue]:
    out: list[Issue] = []
    _check(value, schema, loc, root, out)
    return out


def _type_fits(value: Any, schema: Any, root: Any) -> bool:
    while isinstance(schema, Mapping) and "$ref" in schema and "type" not in schema:
        schema = _resolve(root, schema["$ref"])
    if not isinstance(schema, Mapping) or "type" not in schema:
        return True
    types = schema["type"]
    names = [types] if isinstance(types, str) else list(types)
    return any(_TYPE_CHECKS.get(t, lambda v: False)(value) for t in names)


def _resolve(root: Any, ref: Any) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    node = root
    for raw in filter(None, ref[1:].split("/")):
        part = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``True`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def check_schema(schema: Any, location: str) -> list[Issue]:
    """Mistakes in a JSON Schema itself (unknown type names, malformed keywords), so a
    definition's ``input`` schema fails at definition time, not at the first start."""
    out: list[Issue] = []
    if isinstance(schema, bool):
        return out
    if not isinstance(schema, Mapping):
        return [Issue(location, "a JSON Schema must be an object")]
    types = schema.get("type")
    for t in [types] if isinstance(types, str) else (types or []):
        if t not in _TYPE_NAMES:
            hint = did_you_mean(str(t), list(_TYPE_NAMES))
            out.append(Issue(f"{location}.type", f"unknown type '{t}'{hint}"))
    for keyword in ("properties", "$defs"):
        sub = schema.get(keyword, {})
        if not isinstance(sub, Mapping):
            out.append(Issue(f"{location}.{keyword}", "must be an object"))
            continue
        for name, inner in sub.items():
            out += check_schema(inner, f"{location}.{keyword}.{name}")
    for keyword in ("items", "additionalProperties"):
        if keyword in schema:
            out += check_schema(schema[keyword], f"{location}.{keyword}")
    for keyword in ("required", "enum", "anyOf", "oneOf", "allOf"):
        if keyword in schema and not isinstance(schema[keyword], list):
            out.append(Issue(f"{location}.{keyword}", "must be a list"))
    if isinstance(schema.get("pattern"), str):
        try:
            re.compile(schema["pattern"])
        except re.error as e:
            out.append(Issue(f"{location}.pattern", f"not a valid regular expression: {e}"))
    return out


__all__ = [
    "SCOPE_ROOTS",
    "check_schema",
    "validate_definition",
    "validate_input",
    "validate_json_schema",
]
