"""Semantic checks of a parsed definition; the JSON Schema subset for inputs is in
``schema`` (re-exported here).

``validate_definition`` reports what parsing cannot see: duplicate ids, targets that
do not exist or leave their sequence, unreachable steps, loops with no way out,
expressions that do not compile or read outside the scope, missing parts of each
step type, and (as warnings) capabilities or workflows nobody provides. It never
raises; callers decide what to do with errors and warnings.

Every check is linear in the definition: step ids are indexed once, reachability and
loops come from one Tarjan pass per sequence, "did you mean" is computed for the first
``MAX_SUGGESTIONS`` words only, and issues are sorted by a key recorded when they are
found. A definition over ``MAX_STEPS`` or ``MAX_NESTING`` (built in code, so
``limits.check_document`` never saw it) gets that one issue and no further checks; one
whose expressions pass ``MAX_EXPRESSION_TOTAL`` is not compiled.

Locations are paths into the definition as written, with the list indices of where
each step is written: ``steps[6].parallel.branches[1].steps[0].input.path``.

One piece, though long: one pass over a parsed definition whose checks share the
placed-steps table and the order issues are reported in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from coordinator.engine.expr import (
    compile_expression,
    compile_template,
    has_interpolation,
    is_expression,
)
from coordinator.engine.issues import Hints, Issue
from coordinator.engine.limits import (
    MAX_EXPRESSION_TOTAL,
    MAX_NESTING,
    MAX_STEPS,
    MAX_SUGGESTIONS,
)
from coordinator.engine.model import DecisionSpec, Step, WorkflowDefinition
from coordinator.engine.schema import check_schema, validate_json_schema
from coordinator.errors import ExpressionError

# What an expression may read (``$`` alone: the whole scope or a computed key).
SCOPE_ROOTS = frozenset(
    {"input", "variables", "output", "error", "workflowName", "executionId", "stepId"}
    | {"item", "index", "$"}
)
_ROOTS = sorted(f"$.{r}" for r in SCOPE_ROOTS - {"$"})
_ROOT_LIST = ", ".join(_ROOTS)
# A scope path written in literal text, where nothing evaluates it.
_LITERAL_PATH = re.compile(rf"\$\.(?:{'|'.join(sorted(SCOPE_ROOTS - {'$'}))})\b[\w.]*")
_SCALARS = frozenset({str, int, float, bool, type(None)})
# Step ids a "loop with no exit" message names before "and N more".
_NAMED_IN_LOOP = 10


@dataclass(frozen=True, slots=True)
class _Placed:
    """A step and where it is written."""

    step: Step
    loc: str  # steps[5].parallel.branches[1].steps[0]
    seq: str  # steps[5].parallel.branches[1].steps: the sequence it belongs to
    in_map: bool  # inside some map step's body: $.item and $.index are defined
    nesting: int  # parallel and map steps around it
    order: int  # its index in document order


def _place(steps: tuple[Step, ...], limit: int) -> list[_Placed]:
    """Every step in document order (depth first), nested ones included; at most
    ``limit + 1`` of them, which is enough to tell that there are too many. Iterative:
    a model built in code may nest deeper than Python's stack."""
    out: list[_Placed] = []
    stack: list[tuple[Iterator[tuple[int, Step]], str, bool, int]] = [
        (enumerate(steps), "steps", False, 0)
    ]
    while stack and len(out) <= limit:
        items, seq, in_map, nesting = stack[-1]
        found = next(items, None)
        if found is None:
            stack.pop()
            continue
        i, step = found
        loc = f"{seq}[{i}]"
        out.append(_Placed(step, loc, seq, in_map, nesting, len(out)))
        # Pushed last-first so the first nested sequence is walked first.
        for label, inner in reversed(list(step.children())):
            stack.append(
                (enumerate(inner), f"{loc}.{label}.steps", in_map or label == "map", nesting + 1)
            )
    return out


def validate_definition(
    defn: WorkflowDefinition,
    *,
    known_capabilities: Collection[str] | None = None,
    known_workflows: Collection[str] | None = None,
) -> list[Issue]:
    """Every semantic problem in ``defn``, errors and warnings, in document order.

    With ``known_capabilities``, a capability no agent advertises is a warning; with
    ``known_workflows``, so is a subworkflow or error handler naming an unknown
    workflow. A definition with no ``error`` issue can be run. Linear in the
    definition; never raises.
    """
    return _Checker(defn, known_capabilities, known_workflows).run()


@dataclass(frozen=True, slots=True)
class _Compile:
    """An expression or template to compile, and what its scope holds there."""

    order: int
    loc: str
    source: str
    in_map: bool
    output: bool
    template: bool


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
        self.hints = Hints(MAX_SUGGESTIONS)
        # (sort key, issue): the key is the step's document order, or after every step.
        self.found: list[tuple[int, Issue]] = []
        self.placed = _place(defn.steps, MAX_STEPS)
        self.last = len(self.placed)  # the key of issues that belong to no step
        self.where: dict[str, _Placed] = {}  # step id -> its first occurrence
        self.edges: dict[str, list[str]] = {}  # step id -> valid targets in its sequence
        self.compile: list[_Compile] = []

    def error(self, order: int, loc: str, message: str) -> None:
        self.found.append((order, Issue(loc, message)))

    def warn(self, order: int, loc: str, message: str) -> None:
        self.found.append((order, Issue(loc, message, "warning")))

    def run(self) -> list[Issue]:
        if len(self.placed) > MAX_STEPS:
            message = f"the definition has more than {MAX_STEPS} steps, the limit"
            return [Issue("steps", message)]
        deep = next((p for p in self.placed if p.nesting > MAX_NESTING), None)
        if deep is not None:
            message = (
                f"step nested in {deep.nesting} parallel or map steps, more than the "
                f"limit of {MAX_NESTING}"
            )
            return [Issue(deep.loc, message)]
        if not self.defn.name:
            self.error(self.last, "definition", "a workflow needs a name")
        if not self.defn.steps:
            self.error(self.last, "steps", "a workflow needs at least one step")
        for p in self.placed:
            if not p.step.id:
                self.error(p.order, f"{p.loc}.id", "a step needs an id")
            elif p.step.id in self.where:
                first = self.where[p.step.id].loc
                message = f"duplicate step id '{p.step.id}' (first at {first})"
                self.error(p.order, f"{p.loc}.id", message)
            else:
                self.where[p.step.id] = p
        for p in self.placed:
            self.step_parts(p)
            self.targets(p)
            self.expressions(p)
            self.references(p)
        self.compile_all()
        self.control_flow()
        for i, h in enumerate(self.defn.error_handlers):
            self.workflow_ref(self.last, f"errorHandlers[{i}].handler", h.handler)
        for field, schema in (
            ("input", self.defn.input_schema),
            ("output", self.defn.output_schema),
        ):
            if schema is not None:
                self.found += [(self.last, i) for i in check_schema(schema, field)]
        self.found.sort(key=lambda found: found[0])  # stable: in order found within a step
        return [issue for _, issue in self.found]

    # --- the parts each step type needs -------------------------------------------------

    def step_parts(self, p: _Placed) -> None:
        s, loc, n = p.step, p.loc, p.order
        if s.type == "task" and not s.capability and not s.agent:
            self.error(n, loc, "a task step needs a capability or an agent")
        elif s.type == "service":
            for name, value in (("service", s.service), ("operation", s.operation)):
                if not value:
                    self.error(n, loc, f"a service step needs '{name}'")
        elif s.type == "decision":
            if s.decision is None:
                message = "a decision step needs decision.expression and at least one branch"
                self.error(n, loc, message)
            else:
                if not s.decision.expression:
                    message = "a decision step needs an expression"
                    self.error(n, f"{loc}.decision.expression", message)
                if not s.decision.branches:
                    message = "a decision needs at least one branch"
                    self.error(n, f"{loc}.decision.branches", message)
            if s.next or s.next_decision is not None:
                message = "a decision step goes where its branches say; use decision.default"
                self.error(n, f"{loc}.next", message)
        elif s.type == "parallel":
            if s.parallel is None or not s.parallel.branches:
                message = "a parallel step needs at least one branch"
                self.error(n, f"{loc}.parallel.branches", message)
            else:
                for i, b in enumerate(s.parallel.branches):
                    if not b.steps:
                        where = f"{loc}.parallel.branches[{i}].steps"
                        self.error(n, where, "a branch needs at least one step")
        elif s.type == "wait":
            if s.wait is None or (s.wait.duration_ms is None) == (not s.wait.until):
                message = "give exactly one of durationMs (or seconds) and until"
                self.error(n, f"{loc}.wait", message)
        elif s.type == "event" and (s.event is None or not s.event.name):
            self.error(n, f"{loc}.event.name", "an event step needs the event's name")
        elif s.type == "subworkflow" and (s.subworkflow is None or not s.subworkflow.workflow):
            message = "a subworkflow step needs the workflow to run"
            self.error(n, f"{loc}.subworkflow.workflow", message)
        elif s.type == "map":
            if s.map is None:
                self.error(n, loc, "a map step needs map.items and map.steps")
                return
            if not s.map.items:
                self.error(n, f"{loc}.map.items", "a map step needs items (an expression)")
            if not s.map.steps:
                self.error(n, f"{loc}.map.steps", "a map step needs at least one step")
            if s.map.concurrency < 1:
                self.error(n, f"{loc}.map.concurrency", "must be an integer >= 1")

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
                hint = self.hints(target, self.where)
                self.error(p.order, where, f"unknown step '{target}'{hint}")
            elif other.seq != p.seq:
                # The engine starts a target in the frame of the step that jumps, so a
                # jump into or out of a branch or map body would run it in the wrong one.
                self.error(
                    p.order,
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
            components = _components(first, self.edges)
            reached = {sid for component in components for sid in component}
            for p in members:
                if p.step.id not in reached:
                    message = f"step '{p.step.id}' is unreachable from '{first}'"
                    self.error(p.order, p.loc, message)
            for component in components:
                self.dead_loop(component)

    def dead_loop(self, component: list[str]) -> None:
        """Report a strongly connected component that is a cycle nothing leaves and in
        which no step ends the sequence.

        Only "bottom" cycles (no edge leaves them) are reported: a cycle whose way out
        leads into such a one is not the cycle to fix.
        """
        ids = set(component)
        first = component[0]
        if len(component) == 1 and first not in self.edges.get(first, ()):
            return  # a single step that does not jump to itself: no cycle
        if any(t not in ids for i in component for t in self.edges.get(i, ())):
            return
        members = sorted((self.where[i] for i in component), key=lambda p: p.order)
        if any(_can_end(p.step) for p in members):
            return
        names = ", ".join(f"'{p.step.id}'" for p in members[:_NAMED_IN_LOOP])
        if len(members) > _NAMED_IN_LOOP:
            names += f" and {len(members) - _NAMED_IN_LOOP} more"
        self.error(
            members[0].order,
            members[0].loc,
            f"loop with no exit through {names}: no step in it ends the sequence "
            "and no decision or onError leads out of it",
        )

    # --- expressions -------------------------------------------------------------------

    def expressions(self, p: _Placed) -> None:
        """Queue the step's expressions and templates (``compile_all`` compiles them once
        their total size is known); report literal text at once."""
        s, loc = p.step, p.loc

        def queue(where: str, source: str, *, output: bool = False) -> None:
            self.compile.append(_Compile(p.order, where, source, p.in_map, output, False))

        self.mapping(p, f"{loc}.input", s.input, output=False)
        if s.output is not None:
            self.mapping(p, f"{loc}.output", s.output, output=True)
        if s.condition:
            queue(f"{loc}.condition", s.condition)
        if s.decision is not None and s.decision.expression:
            queue(f"{loc}.decision.expression", s.decision.expression)
        if s.next_decision is not None:
            # _advance evaluates it with the step's output in scope.
            queue(f"{loc}.next.expression", s.next_decision.expression, output=True)
        if s.map is not None and s.map.items:
            queue(f"{loc}.map.items", s.map.items)
        if s.wait is not None and s.wait.until:
            if is_expression(s.wait.until):
                queue(f"{loc}.wait.until", s.wait.until)
            elif not _is_timestamp(s.wait.until):
                message = f"'{s.wait.until}' is neither an ISO-8601 timestamp nor an expression"
                self.error(p.order, f"{loc}.wait.until", message)
        if s.event is not None and s.event.correlation_key:
            self.mapping(p, f"{loc}.event.correlationKey", s.event.correlation_key, False)
        if s.compensate is not None:  # it sees the step's recorded output
            self.mapping(p, f"{loc}.compensate.input", s.compensate.input, output=True)

    def mapping(self, p: _Placed, loc: str, value: Any, output: bool) -> None:
        """Queue or check every string in an input/output mapping, in written order."""
        if not _is_container(value):
            self.string(p, loc, value, output)
            return
        # A stack of iterators rather than recursion (a model built in code may nest
        # deeper than Python's stack); only strings and containers get a location.
        stack: list[tuple[str, bool, Iterator[tuple[Any, Any]]]] = [_open(loc, value)]
        while stack:
            here, is_list, items = stack[-1]
            found = next(items, None)
            if found is None:
                stack.pop()
                continue
            key, item = found
            if type(item) is str or _is_container(item):
                at = f"{here}[{key}]" if is_list else f"{here}.{key}"
                if _is_container(item):
                    stack.append(_open(at, item))
                else:
                    self.string(p, at, item, output)

    def string(self, p: _Placed, loc: str, value: Any, output: bool) -> None:
        if not isinstance(value, str):
            return
        if is_expression(value):
            self.compile.append(_Compile(p.order, loc, value, p.in_map, output, False))
        elif has_interpolation(value):
            self.compile.append(_Compile(p.order, loc, value, p.in_map, output, True))
        else:
            self.literal(p.order, loc, value)

    def compile_all(self) -> None:
        # Each distinct source costs its compilation once (compiling is cached), so
        # distinct sources are what the limit counts.
        total = sum(len(source) for source in {c.source for c in self.compile})
        if total > MAX_EXPRESSION_TOTAL:
            message = (
                f"the expressions and templates of the definition are {total} characters "
                f"in all, more than the limit of {MAX_EXPRESSION_TOTAL}; none was compiled"
            )
            self.error(self.last, "steps", message)
            return
        for c in self.compile:
            self.expression(c)

    def expression(self, c: _Compile) -> None:
        try:
            if c.template:
                compiled = compile_template(c.source)
                roots = compiled.roots
                for part in compiled.parts:
                    if isinstance(part, str):
                        self.literal(c.order, c.loc, part)
            else:
                roots = compile_expression(c.source).roots
        except ExpressionError as e:
            self.error(c.order, c.loc, str(e))
            return
        for root in sorted(roots):
            if root not in SCOPE_ROOTS:
                hint = self.hints(f"$.{root}", _ROOTS)
                message = f"unknown root '$.{root}'{hint}; expressions read {_ROOT_LIST}"
                self.error(c.order, c.loc, message)
            elif root == "output" and not c.output:
                self.warn(
                    c.order,
                    c.loc,
                    "$.output is only set in an output mapping, a next expression and "
                    "compensate.input; here it is null",
                )
            elif root in ("item", "index") and not c.in_map:
                message = f"$.{root} is only defined inside a map step's steps"
                self.error(c.order, c.loc, message)

    def literal(self, order: int, loc: str, text: str) -> None:
        if "$." not in text:
            return  # most literals: skip the regular expression
        for found in _LITERAL_PATH.findall(text):
            message = f"'{found}' in literal text is not evaluated; write '${{{found}}}'"
            self.warn(order, loc, message)

    # --- references outside the definition ---------------------------------------------

    def references(self, p: _Placed) -> None:
        s, loc = p.step, p.loc
        for where, capability in (
            (f"{loc}.capability", s.capability if s.type == "task" else ""),
            (f"{loc}.compensate.capability", s.compensate.capability if s.compensate else ""),
        ):
            if capability and self.capabilities is not None and capability not in self.capabilities:
                self.warn(p.order, where, f"no connected agent advertises '{capability}'")
        if s.subworkflow is not None and s.subworkflow.workflow:
            self.workflow_ref(p.order, f"{loc}.subworkflow.workflow", s.subworkflow.workflow)

    def workflow_ref(self, order: int, loc: str, name: str) -> None:
        if not name:
            self.error(order, loc, "must name a workflow")
        elif self.workflows is not None and name not in self.workflows:
            hint = self.hints(name, self.workflows)
            self.warn(order, loc, f"no workflow named '{name}' is defined{hint}")


def _is_container(value: Any) -> bool:
    kind = type(value)
    if kind is dict or kind is list:
        return True
    # Scalars by exact type first: an isinstance against Mapping costs several times more.
    return kind not in _SCALARS and isinstance(value, Mapping | list | tuple)


def _open(loc: str, value: Any) -> tuple[str, bool, Iterator[tuple[Any, Any]]]:
    if isinstance(value, Mapping):
        return loc, False, iter(value.items())
    return loc, True, enumerate(value)


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


def _components(start: str, edges: Mapping[str, list[str]]) -> list[list[str]]:
    """The strongly connected components of the steps reachable from ``start``
    (Tarjan's algorithm, iterative): each step and edge is looked at once, so a 5 000
    step loop costs 5 000 steps, not 5 000 searches."""
    index: dict[str, int] = {start: 0}
    low: dict[str, int] = {start: 0}
    path: list[str] = [start]  # Tarjan's stack of the current candidates
    on_path: set[str] = {start}
    work: list[tuple[str, Iterator[str]]] = [(start, iter(edges.get(start, ())))]
    out: list[list[str]] = []
    while work:
        node, targets = work[-1]
        for target in targets:
            if target not in index:
                index[target] = low[target] = len(index)
                path.append(target)
                on_path.add(target)
                work.append((target, iter(edges.get(target, ()))))
                break
            if target in on_path:
                low[node] = min(low[node], index[target])
        else:  # every edge of node followed
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = path.pop()
                    on_path.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(component)
    return out


def _is_timestamp(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def validate_input(defn: WorkflowDefinition, input: Any) -> list[Issue]:
    """Problems with ``input`` against the definition's ``input`` JSON Schema, located
    like ``input.priority``; ``[]`` when there is no schema. ``None`` is checked as
    ``{}`` (a workflow started without input). Never raises."""
    if defn.input_schema is None:
        return []
    return validate_json_schema({} if input is None else input, defn.input_schema, "input")


__all__ = [
    "SCOPE_ROOTS",
    "check_schema",
    "validate_definition",
    "validate_input",
    "validate_json_schema",
]
