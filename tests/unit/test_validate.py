"""Semantic validation: each rule with a minimal bad definition and its exact message,
the seed workflows (clean), and the JSON Schema subset used for inputs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from coordinator.engine.definition import (
    Issue,
    load_definition_file,
    parse_definition,
    read_definition_file,
)
from coordinator.engine.model import MapSpec, Step, WorkflowDefinition
from coordinator.engine.validate import (
    SCOPE_ROOTS,
    check_schema,
    validate_definition,
    validate_input,
    validate_json_schema,
)

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
SEEDS = (
    "project_setup",
    "implement_feature",
    "data_processing",
    "global_error_handler",
    "log_error_to_notion",
)
# Every capability the seed's registerAgents() advertises.
SEED_CAPABILITIES = {
    *("project_analysis", "task_planning", "timeline_creation", "specification_generation"),
    *("command_execution", "git_operations", "deployment", "system_monitoring"),
    *("page_operations", "database_operations", "content_extraction", "template_management"),
    *("project_scaffolding", "component_generation", "file_operations", "code_generation"),
    *("code_linting", "test_execution", "documentation_review", "security_scanning"),
    *("code_analysis", "code_transformation", "performance_optimization", "modernization"),
}
ROOTS = (
    "$.error, $.executionId, $.index, $.input, $.item, $.output, $.stepId, $.variables, "
    "$.workflowName"
)


def load(name: str) -> WorkflowDefinition:
    return load_definition_file(WORKFLOWS / f"{name}.yaml")


def task(id: str, **fields: Any) -> dict[str, Any]:
    return {"id": id, "type": "task", "capability": "cap", **fields}


def check(steps: list[dict[str, Any]] | WorkflowDefinition, **kw: Any) -> list[str]:
    """Every issue, as 'error: location: message' or 'warning: ...'."""
    defn = (
        steps
        if isinstance(steps, WorkflowDefinition)
        else parse_definition({"id": "w", "steps": steps})
    )
    return [f"{i.severity}: {i}" for i in validate_definition(defn, **kw)]


# --- the seed workflows -----------------------------------------------------------------


@pytest.mark.parametrize("name", SEEDS)
def test_seed_workflows_have_no_errors(name: str) -> None:
    for kw in ({}, {"known_capabilities": SEED_CAPABILITIES, "known_workflows": SEEDS}):
        assert [i for i in validate_definition(load(name), **kw) if i.severity == "error"] == []


def test_project_setup_warns_only_when_its_error_handler_is_not_defined() -> None:
    # The seed names log_error_to_notion but never defines it; we ship one.
    assert "log_error_to_notion" in SEEDS
    kw = {"known_capabilities": SEED_CAPABILITIES}
    assert validate_definition(load("project_setup"), known_workflows=SEEDS, **kw) == []
    others = [s for s in SEEDS if s != "log_error_to_notion"]
    assert validate_definition(load("project_setup"), known_workflows=others, **kw) == [
        Issue(
            "errorHandlers[0].handler",
            "no workflow named 'log_error_to_notion' is defined",
            "warning",
        )
    ]
    assert validate_definition(load("project_setup")) == []  # nothing known: nothing to warn


def test_data_processing_warns_that_its_notification_email_is_literal_text() -> None:
    # As in the seed, '... | mail -s "Success" $.input.notificationEmail' is a plain string.
    assert check(load("data_processing"), known_workflows=SEEDS) == [
        "warning: steps[8].input.command: '$.input.notificationEmail' in literal text is not "
        "evaluated; write '${$.input.notificationEmail}'",
        "warning: steps[9].input.command: '$.input.notificationEmail' in literal text is not "
        "evaluated; write '${$.input.notificationEmail}'",
    ]


@pytest.mark.parametrize("name", ["implement_feature", "global_error_handler"])
def test_other_seeds_are_clean(name: str) -> None:
    assert check(load(name), known_capabilities=SEED_CAPABILITIES, known_workflows=SEEDS) == []


# --- targets ----------------------------------------------------------------------------


def test_a_misspelled_decision_branch_in_project_setup() -> None:
    data = read_definition_file(WORKFLOWS / "project_setup.yaml")
    index = next(i for i, s in enumerate(data["steps"]) if s["id"] == "setup_decisions")
    scaffold = next(i for i, s in enumerate(data["steps"]) if s["id"] == "scaffold_project")
    data["steps"][index]["decision"]["branches"]["true"] = "scafold_project"
    assert check(parse_definition(data)) == [
        f"error: steps[{index}].decision.branches.true: unknown step 'scafold_project' "
        "(did you mean 'scaffold_project'?)",
        f"error: steps[{scaffold}]: step 'scaffold_project' is unreachable from 'analyze_requirements'",
    ]


def test_unknown_targets_everywhere() -> None:
    steps = [
        task("a", next="bb", onError="handel"),
        task("b", next={"expression": "$.output.x", "branches": {"1": "c"}, "default": "zzz"}),
        {
            "id": "d",
            "type": "decision",
            "decision": {"expression": "$.input.x", "branches": {"x": "b"}, "default": "handle"},
        },
        task("handle"),
    ]
    assert check(steps) == [
        "error: steps[0].next: unknown step 'bb' (did you mean 'b'?)",
        "error: steps[0].onError: unknown step 'handel' (did you mean 'handle'?)",
        "error: steps[1].next.branches.1: unknown step 'c'",
        "error: steps[1].next.default: unknown step 'zzz'",
        "error: steps[1]: step 'b' is unreachable from 'a'",
        "error: steps[2]: step 'd' is unreachable from 'a'",
        "error: steps[3]: step 'handle' is unreachable from 'a'",
    ]


def parallel(id: str, *branches: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "id": id,
        "type": "parallel",
        "parallel": {"branches": [{"name": f"b{i}", "steps": s} for i, s in enumerate(branches)]},
        **fields,
    }


def test_targets_must_stay_in_their_sequence() -> None:
    steps = [
        task("a", next="inner"),
        parallel("p", [task("inner", next="after")], [task("other", onError="a")]),
        task("after"),
    ]
    assert check(steps) == [
        "error: steps[0].next: step 'inner' is at steps[1].parallel.branches[0].steps[0], "
        "outside this sequence (steps); a step can only go to steps of its own sequence",
        "error: steps[1]: step 'p' is unreachable from 'a'",
        "error: steps[1].parallel.branches[0].steps[0].next: step 'after' is at steps[2], outside "
        "this sequence (steps[1].parallel.branches[0].steps); a step can only go to steps of its "
        "own sequence",
        "error: steps[1].parallel.branches[1].steps[0].onError: step 'a' is at steps[0], outside "
        "this sequence (steps[1].parallel.branches[1].steps); a step can only go to steps of its "
        "own sequence",
        "error: steps[2]: step 'after' is unreachable from 'a'",
    ]


def test_map_bodies_are_sequences_too() -> None:
    steps = [
        {
            "id": "m",
            "type": "map",
            "map": {"items": "$.input.list", "steps": [task("each", next="m")]},
        },
    ]
    assert check(steps) == [
        "error: steps[0].map.steps[0].next: step 'm' is at steps[0], outside this sequence "
        "(steps[0].map.steps); a step can only go to steps of its own sequence"
    ]


def test_duplicate_step_ids_anywhere() -> None:
    steps = [task("a", next="p"), parallel("p", [task("a")], [task("x"), task("p")])]
    assert check(steps) == [
        "error: steps[1].parallel.branches[0].steps[0].id: duplicate step id 'a' (first at steps[0])",
        "error: steps[1].parallel.branches[1].steps[1].id: duplicate step id 'p' (first at steps[1])",
    ]


def test_unreachable_steps_in_a_branch() -> None:
    steps = [parallel("p", [task("x"), task("y")])]
    assert check(steps) == [
        "error: steps[0].parallel.branches[0].steps[1]: step 'y' is unreachable from 'x'"
    ]


def test_a_decision_step_has_no_next() -> None:
    steps = [
        {
            "id": "d",
            "type": "decision",
            "decision": {"expression": "$.input.x", "branches": {"a": "t"}},
            "next": "t",
        },
        task("t"),
    ]
    assert check(steps) == [
        "error: steps[0].next: a decision step goes where its branches say; use decision.default"
    ]


# --- loops --------------------------------------------------------------------------------


def test_a_loop_with_no_exit() -> None:
    assert check([task("a", next="b"), task("b", next="a")]) == [
        "error: steps[0]: loop with no exit through 'a', 'b': no step in it ends the sequence "
        "and no decision or onError leads out of it"
    ]
    assert check([task("a", next="a")]) == [
        "error: steps[0]: loop with no exit through 'a': no step in it ends the sequence "
        "and no decision or onError leads out of it"
    ]


def decision(id: str, branches: dict[str, str], default: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"expression": "$.variables.ok", "branches": branches}
    if default:
        spec["default"] = default
    return {"id": id, "type": "decision", "decision": spec}


@pytest.mark.parametrize(
    "steps",
    [
        # retry-until: the decision leads out
        [task("a", next="check"), decision("check", {"false": "a", "true": "done"}), task("done")],
        # onError leads out of an otherwise endless loop
        [task("a", next="b", onError="done"), task("b", next="a"), task("done")],
        # a next expression without default ends the sequence when nothing matches
        [task("a", next={"expression": "$.output", "branches": {"x": "b"}}), task("b", next="a")],
    ],
)
def test_loops_with_an_exit_are_fine(steps: list[dict[str, Any]]) -> None:
    assert check(steps) == []


def test_a_decision_without_default_inside_a_loop_only_fails() -> None:
    # No match and no default fails the decision: that is not a way out.
    assert check([task("a", next="d"), decision("d", {"x": "a"})]) == [
        "error: steps[0]: loop with no exit through 'a', 'd': no step in it ends the sequence "
        "and no decision or onError leads out of it"
    ]


def test_only_the_loop_that_nothing_leaves_is_reported() -> None:
    steps = [
        task("a", next="b", onError="c"),
        task("b", next="a"),
        task("c", next="d"),
        task("d", next="c"),
    ]
    assert check(steps) == [
        "error: steps[2]: loop with no exit through 'c', 'd': no step in it ends the sequence "
        "and no decision or onError leads out of it"
    ]


def test_a_loop_inside_a_branch() -> None:
    steps = [parallel("p", [task("x", next="y"), task("y", next="x")])]
    assert check(steps) == [
        "error: steps[0].parallel.branches[0].steps[0]: loop with no exit through 'x', 'y': "
        "no step in it ends the sequence and no decision or onError leads out of it"
    ]


# --- expressions ------------------------------------------------------------------------


def test_expression_syntax_errors_with_positions() -> None:
    steps = [
        task(
            "a",
            input={"x": "$.input.a +", "y": "x ${$.input.} y", "files": ["$.input.ok", "$.("]},
            condition="input.go",
            output={"v": "$.output["},
            next={"expression": "$.output ==", "branches": {"1": "b"}},
            compensate={"capability": "undo", "input": {"id": "$.output.)"}},
        ),
        {
            "id": "b",
            "type": "event",
            "event": {"name": "e", "correlationKey": "$.input.k +"},
            "next": "c",
        },
        {"id": "c", "type": "wait", "wait": {"until": "$.input.when ||"}, "next": "m"},
        {
            "id": "m",
            "type": "map",
            "map": {"items": "$.input.list[", "steps": [task("e")]},
            "next": "d",
        },
        {
            "id": "d",
            "type": "decision",
            "decision": {"expression": "$.input.x)", "branches": {"x": "a"}, "default": "f"},
        },
        task("f"),
    ]
    assert check(steps) == [
        "error: steps[0].input.x: unexpected end of expression at position 11 in '$.input.a +'",
        "error: steps[0].input.y: expected a property name after '.' at position 12 in 'x ${$.input.} y'",
        "error: steps[0].input.files[1]: expected a property name after '.' at position 2 in '$.('",
        "error: steps[0].output.v: unexpected end of expression at position 9 in '$.output['",
        "error: steps[0].condition: unknown identifier 'input' (paths start with $) at position 0 "
        "in 'input.go'",
        "error: steps[0].next.expression: unexpected end of expression at position 11 in '$.output =='",
        "error: steps[0].compensate.input.id: expected a property name after '.' at position 9 "
        "in '$.output.)'",
        "error: steps[1].event.correlationKey: unexpected end of expression at position 11 in "
        "'$.input.k +'",
        "error: steps[2].wait.until: unexpected end of expression at position 15 in '$.input.when ||'",
        "error: steps[3].map.items: unexpected end of expression at position 13 in '$.input.list['",
        "error: steps[4].decision.expression: unexpected token ')' at position 9 in '$.input.x)'",
    ]


def test_expressions_read_only_the_scope() -> None:
    steps = [
        task(
            "a",
            input={"x": "$.inptu.x", "y": "${$.env.HOME}", "z": "$[$.input.k]", "w": '$["input"]'},
        )
    ]
    assert check(steps) == [
        f"error: steps[0].input.x: unknown root '$.inptu' (did you mean '$.input'?); expressions read {ROOTS}",
        f"error: steps[0].input.y: unknown root '$.env'; expressions read {ROOTS}",
    ]
    assert {"input", "variables", "$"} <= SCOPE_ROOTS


def test_output_is_only_set_where_a_step_has_finished() -> None:
    steps = [
        task(
            "a",
            input={"x": "$.output.url"},
            condition="$.output",
            output={"url": "$.output.url", "text": "url: ${$.output.url}"},
            next={"expression": "$.output.status", "branches": {"ok": "b"}},
            compensate={"capability": "undo", "input": {"url": "$.output.url"}},
        ),
        task("b"),
    ]
    message = (
        "$.output is only set in an output mapping, a next expression and compensate.input; "
        "here it is null"
    )
    assert check(steps) == [
        f"warning: steps[0].input.x: {message}",
        f"warning: steps[0].condition: {message}",
    ]


def test_item_and_index_only_inside_a_map() -> None:
    steps = [
        task("a", input={"i": "$.item"}, next="m"),
        {
            "id": "m",
            "type": "map",
            "map": {
                "items": "$.index",
                "steps": [
                    task("each", input={"item": "$.item", "at": "${$.index}"}, next="inner"),
                    parallel("inner", [task("deep", input={"item": "$.item.name"})]),
                ],
            },
        },
    ]
    assert check(steps) == [
        "error: steps[0].input.i: $.item is only defined inside a map step's steps",
        "error: steps[1].map.items: $.index is only defined inside a map step's steps",
    ]


def test_wait_until_is_a_timestamp_or_an_expression() -> None:
    def wait(until: str) -> list[str]:
        return check([{"id": "w", "type": "wait", "wait": {"until": until}}])

    assert wait("2030-01-01T09:00:00+00:00") == []
    assert wait("$.input.when") == []
    assert wait("next tuesday") == [
        "error: steps[0].wait.until: 'next tuesday' is neither an ISO-8601 timestamp nor an expression"
    ]


# --- what each step type needs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (
            {"type": "decision"},
            ["steps[0]: a decision step needs decision.expression and at least one branch"],
        ),
        (
            {"type": "decision", "decision": {"branches": {}}},
            [
                "steps[0].decision.expression: a decision step needs an expression",
                "steps[0].decision.branches: a decision needs at least one branch",
            ],
        ),
        (
            {"type": "parallel"},
            ["steps[0].parallel.branches: a parallel step needs at least one branch"],
        ),
        (
            {"type": "parallel", "parallel": {"branches": []}},
            ["steps[0].parallel.branches: a parallel step needs at least one branch"],
        ),
        (
            {"type": "parallel", "parallel": {"branches": [{"name": "x", "steps": []}]}},
            ["steps[0].parallel.branches[0].steps: a branch needs at least one step"],
        ),
        (
            {"type": "wait"},
            ["steps[0].wait: give exactly one of durationMs (or seconds) and until"],
        ),
        (
            {"type": "wait", "wait": {}},
            ["steps[0].wait: give exactly one of durationMs (or seconds) and until"],
        ),
        (
            {"type": "wait", "wait": {"durationMs": 5, "until": "$.input.t"}},
            ["steps[0].wait: give exactly one of durationMs (or seconds) and until"],
        ),
        (
            {"type": "event", "event": {"timeoutMs": 5}},
            ["steps[0].event.name: an event step needs the event's name"],
        ),
        (
            {"type": "subworkflow"},
            ["steps[0].subworkflow.workflow: a subworkflow step needs the workflow to run"],
        ),
        ({"type": "map"}, ["steps[0]: a map step needs map.items and map.steps"]),
        (
            {"type": "map", "map": {"steps": []}},
            [
                "steps[0].map.items: a map step needs items (an expression)",
                "steps[0].map.steps: a map step needs at least one step",
            ],
        ),
    ],
)
def test_required_parts_of_each_step_type(step: dict[str, Any], expected: list[str]) -> None:
    assert check([{"id": "s", **step}]) == [f"error: {e}" for e in expected]


def test_model_values_built_in_code_are_checked_too() -> None:
    body = (Step(id="e", name="e", type="task", capability="c"),)
    m = Step(id="m", name="m", type="map", map=MapSpec("$.input.list", body, concurrency=0))
    bare = Step(id="t", name="t", type="task")
    defn = WorkflowDefinition(name="", steps=(dataclasses.replace(m, next="t"), bare))
    assert check(defn) == [
        "error: steps[0].map.concurrency: must be an integer >= 1",
        "error: steps[1]: a task step needs a capability or an agent",
        "error: definition: a workflow needs a name",
    ]
    assert check(WorkflowDefinition(name="w", steps=())) == [
        "error: steps: a workflow needs at least one step"
    ]


# --- references to things outside the definition --------------------------------------


def test_capabilities_and_workflows_nobody_provides_are_warnings() -> None:
    data = {
        "id": "w",
        "errorHandlers": [{"handler": "global_error_handler"}, {"handler": "audit_log"}],
        "steps": [
            task("a", capability="known", next="b"),
            {"id": "b", "type": "subworkflow", "workflow": "implement_featur", "next": "c"},
            task("c", capability="x", compensate={"capability": "undo_x"}),
        ],
    }
    defn = parse_definition(data)
    assert check(defn, known_capabilities={"known"}, known_workflows=SEEDS) == [
        "warning: steps[1].subworkflow.workflow: no workflow named 'implement_featur' is defined "
        "(did you mean 'implement_feature'?)",
        "warning: steps[2].capability: no connected agent advertises 'x'",
        "warning: steps[2].compensate.capability: no connected agent advertises 'undo_x'",
        "warning: errorHandlers[1].handler: no workflow named 'audit_log' is defined",
    ]
    assert check(defn) == []


def test_a_bad_input_schema_is_reported_at_definition_time() -> None:
    schema = {
        "type": "objct",
        "properties": {"n": {"type": "integr"}},
        "required": "n",
        "pattern": "(",
    }
    issues = check(parse_definition({"id": "w", "input": schema, "steps": [task("a")]}))
    assert issues[:3] == [
        "error: input.type: unknown type 'objct' (did you mean 'object'?)",
        "error: input.properties.n.type: unknown type 'integr' (did you mean 'integer'?)",
        "error: input.required: must be a list",
    ]
    assert issues[3].startswith("error: input.pattern: not a valid regular expression: ")
    assert check_schema(True, "input") == []
    assert [str(i) for i in check_schema([], "output")] == [
        "output: a JSON Schema must be an object"
    ]


# --- inputs --------------------------------------------------------------------------------


def test_project_setup_input() -> None:
    defn = load("project_setup")
    example = {
        "requirements": "Build a React dashboard application with TypeScript",
        "constraints": "Must use React 18 and TypeScript 4.5+",
        "priority": "high",
        "projectName": "dashboard-app",
    }
    assert validate_input(defn, example) == []
    assert [str(i) for i in validate_input(defn, {**example, "priority": "urgent"})] == [
        "input.priority: must be one of ['low', 'medium', 'high']"
    ]
    assert [str(i) for i in validate_input(defn, {"requirements": 5})] == [
        "input.requirements: must be a string"
    ]
    assert [str(i) for i in validate_input(defn, None)] == ["input.requirements: is required"]
    assert [str(i) for i in validate_input(defn, "text")] == ["input: must be an object"]


def test_the_other_seed_inputs() -> None:
    feature = {
        "feature": "User Authentication",
        "constraints": {
            "authorization": "JWT",
            "storage": "Local storage",
            "framework": "React with hooks",
        },
        "projectPath": "/path/to/project",
    }
    assert validate_input(load("implement_feature"), feature) == []
    data = {"fetchCommand": "cat in.json", "outputPath": "/tmp/out", "notificationEmail": "nobody"}
    assert [str(i) for i in validate_input(load("data_processing"), data)] == [
        "input.notificationEmail: must match the pattern '^[^@\\s]+@[^@\\s]+$'"
    ]
    context = {
        "error": {"type": "X"},
        "workflowName": "w",
        "executionId": "e",
        "stepId": "",
        "errorHandler": True,
    }
    assert validate_input(load("global_error_handler"), context) == []
    assert validate_input(WorkflowDefinition(name="w", steps=()), 42) == []  # no schema


def messages(instance: Any, schema: Any) -> list[str]:
    return [str(i) for i in validate_json_schema(instance, schema, "x")]


@pytest.mark.parametrize(
    ("instance", "schema", "expected"),
    [
        (3, {"type": "integer"}, []),
        (3.0, {"type": "integer"}, []),
        (3.5, {"type": "integer"}, ["x: must be an integer"]),
        (True, {"type": "integer"}, ["x: must be an integer"]),
        (True, {"type": "number"}, ["x: must be a number"]),
        (1, {"type": ["string", "null"]}, ["x: must be a string or null"]),
        (True, {"enum": [1, "a"]}, ["x: must be one of [1, 'a']"]),
        (1.0, {"enum": [1]}, []),
        ("b", {"const": "a"}, ["x: must be 'a'"]),
        (0, {"minimum": 1}, ["x: must be >= 1"]),
        (11, {"maximum": 10}, ["x: must be <= 10"]),
        (1, {"exclusiveMinimum": 1}, ["x: must be > 1"]),
        (10, {"exclusiveMaximum": 10}, ["x: must be < 10"]),
        ("ab", {"minLength": 3}, ["x: must be at least 3 characters long"]),
        ("abcd", {"maxLength": 3}, ["x: must be at most 3 characters long"]),
        ("abc", {"pattern": "^b"}, ["x: must match the pattern '^b'"]),
        ([], {"minItems": 1}, ["x: must have at least 1 item(s)"]),
        ([1, 2], {"maxItems": 1}, ["x: must have at most 1 item(s)"]),
        ([1, "a"], {"items": {"type": "integer"}}, ["x[1]: must be an integer"]),
        (
            {"nmae": 1},
            {"properties": {"name": {}}, "additionalProperties": False},
            ["x.nmae: unknown property (did you mean 'name'?)"],
        ),
        ({"a": 1}, {"additionalProperties": {"type": "string"}}, ["x.a: must be a string"]),
        ({}, {"required": ["a", "b"]}, ["x.a: is required", "x.b: is required"]),
        (1, False, ["x: is not allowed"]),
        (
            {"n": "1"},
            {"$defs": {"n": {"type": "integer"}}, "properties": {"n": {"$ref": "#/$defs/n"}}},
            ["x.n: must be an integer"],
        ),
        (
            1,
            {"$ref": "#/$defs/missing"},
            ["x: schema error: cannot resolve $ref '#/$defs/missing'"],
        ),
        (
            5,
            {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 6}]},
            ["x: must be >= 6"],
        ),
        (
            None,
            {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            ["x: does not match any of the allowed forms"],
        ),
        (
            5,
            {"oneOf": [{"type": "integer"}, {"minimum": 1}]},
            ["x: matches more than one of the allowed forms"],
        ),
        (5, {"allOf": [{"minimum": 6}, {"maximum": 4}]}, ["x: must be >= 6", "x: must be <= 4"]),
        (
            {"a": {"b": [{"c": 0}]}},
            {
                "properties": {
                    "a": {"properties": {"b": {"items": {"properties": {"c": {"minimum": 1}}}}}}
                }
            },
            ["x.a.b[0].c: must be >= 1"],
        ),
        ("anything", {"format": "email", "title": "unknown keywords are ignored"}, []),
    ],
)
def test_json_schema_subset(instance: Any, schema: Any, expected: list[str]) -> None:
    assert messages(instance, schema) == expected
