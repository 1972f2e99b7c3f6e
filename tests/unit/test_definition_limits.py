"""The limits of a definition and the cost of checking one.

Every check must be linear and every document bounded before the work starts. These
tests assert on *work* (how many suggestions were computed, how many schema checks
ran, that a limit refused a document before parsing) and on outcomes that the old
quadratic or recursive code could not reach (an issue instead of a RecursionError or
an OverflowError), never on time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import coordinator.engine.schema as schema_module
from coordinator.engine import definition, limits
from coordinator.engine.definition import (
    DefinitionError,
    Issue,
    load_definition_file,
    parse_definition,
    read_definition_file,
)
from coordinator.engine.issues import MAX_ISSUE_TEXT, cap_issues, issues_text
from coordinator.engine.limits import (
    MAX_DEFINITION_BYTES,
    MAX_DOCUMENT_VALUES,
    MAX_EXPRESSION_TOTAL,
    MAX_JSON_DEPTH,
    MAX_NESTING,
    MAX_STEPS,
    MAX_SUGGESTIONS,
    check_document,
)
from coordinator.engine.model import Step, WorkflowDefinition
from coordinator.engine.templates import instantiate_template
from coordinator.engine.validate import check_schema, validate_definition, validate_json_schema

ROOT = Path(__file__).resolve().parents[2]


def task(id: str, **fields: Any) -> dict[str, Any]:
    return {"id": id, "type": "task", "capability": "cap", **fields}


def model_task(id: str, next: str = "", input: Any = None) -> Step:
    return Step(id=id, name=id, type="task", capability="cap", next=next, input=input)


def parse_errors(data: Any) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(data)
    return [str(i) for i in caught.value.issues]


def deep_list(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


# --- the pre-parse check: refused before the work starts ---------------------------------


def test_too_many_steps_is_one_issue_before_parsing() -> None:
    # 2 000 steps that each name a missing step: once 4 000 issues and 2 000 scans of
    # every id; now the step count refuses the document before anything is parsed.
    steps = [task(f"s{i}", next=f"missing_{i}", nxt="typo") for i in range(2 * MAX_STEPS)]
    assert parse_errors({"id": "w", "steps": steps}) == [
        f"steps: the definition has more than {MAX_STEPS} steps, the limit"
    ]


def test_nested_steps_count_towards_the_limit() -> None:
    inner = [task(f"i{i}") for i in range(MAX_STEPS)]
    data = {
        "id": "w",
        "steps": [{"id": "m", "type": "map", "map": {"items": "$.x", "steps": inner}}],
    }
    assert parse_errors(data) == [
        f"steps: the definition has more than {MAX_STEPS} steps, the limit"
    ]


def nested_maps(levels: int) -> list[dict[str, Any]]:
    steps = [task("leaf")]
    for i in range(levels):
        steps = [{"id": f"m{i}", "type": "map", "map": {"items": "$.input.xs", "steps": steps}}]
    return steps


def test_step_nesting_is_bounded() -> None:
    assert parse_definition({"id": "w", "steps": nested_maps(MAX_NESTING)})
    (message,) = parse_errors({"id": "w", "steps": nested_maps(MAX_NESTING + 1)})
    assert message.startswith("steps[0].map.steps[0].map.steps[0]")
    assert message.endswith(
        f": step nested in {MAX_NESTING + 1} parallel or map steps, more than the limit of "
        f"{MAX_NESTING}"
    )


def test_a_document_deeper_than_the_stack_is_an_issue_not_a_recursion_error() -> None:
    data = {"id": "w", "steps": [task("a", input={"x": deep_list(100_000)})]}
    assert parse_errors(data) == [
        f"definition: the definition nests objects and lists more than {MAX_JSON_DEPTH} "
        "levels deep, the limit for a definition"
    ]


def test_a_self_containing_document_is_refused() -> None:
    data: dict[str, Any] = {"id": "w", "steps": [task("a")]}
    data["steps"][0]["input"] = data
    assert [str(i) for i in check_document(data)] == [
        f"definition: the definition nests objects and lists more than {MAX_JSON_DEPTH} "
        "levels deep, the limit for a definition"
    ]
    looped: dict[str, Any] = {"id": "w", "steps": []}
    looped["steps"].append({"id": "m", "type": "map", "map": {"steps": looped["steps"]}})
    (issue,) = check_document(looped)
    assert issue.message.startswith("step nested in 9 parallel or map steps")


def test_values_and_bytes_are_bounded() -> None:
    many = {"id": "w", "steps": [task("a", input={"xs": [0] * MAX_DOCUMENT_VALUES})]}
    assert parse_errors(many) == [
        f"definition: the definition has more than {MAX_DOCUMENT_VALUES} values (objects, "
        "lists, strings, numbers), the limit for a definition"
    ]
    big = {"id": "w", "steps": [task("a", input={"x": "é" * (MAX_DEFINITION_BYTES // 2)})]}
    size = len(json.dumps(big, ensure_ascii=False, separators=(",", ":")).encode())
    assert size > MAX_DEFINITION_BYTES
    assert parse_errors(big) == [
        f"definition: the definition is {size} bytes as JSON, more than the limit of "
        f"{MAX_DEFINITION_BYTES} bytes"
    ]


def test_the_seed_workflows_are_far_inside_every_limit() -> None:
    for path in sorted((ROOT / "workflows").glob("*.yaml")):
        data = read_definition_file(path)
        assert check_document(data) == []
        assert limits.json_size(data) < MAX_DEFINITION_BYTES // 100


# --- linear validation ---------------------------------------------------------------------


def test_only_the_first_unknown_targets_get_a_suggestion() -> None:
    # Built in code, so no pre-parse limit applies: the validator itself must be linear.
    steps = tuple(model_task(f"step_{i}", next=f"step_{i}x") for i in range(MAX_STEPS))
    issues = validate_definition(WorkflowDefinition(name="w", steps=steps))
    unknown = [i for i in issues if "unknown step" in i.message]
    assert len(unknown) == MAX_STEPS
    hinted = [i for i in unknown if "did you mean" in i.message]
    assert len(hinted) == MAX_SUGGESTIONS
    assert hinted[0].message == "unknown step 'step_0x' (did you mean 'step_0'?)"


def test_only_the_first_unknown_fields_get_a_suggestion() -> None:
    steps = [task(f"s{i}", nxt="x") for i in range(50)]
    found = parse_errors({"id": "w", "steps": steps})
    assert len(found) == 50
    assert sum("did you mean" in m for m in found) == MAX_SUGGESTIONS


def test_a_model_over_the_step_limit_is_refused_without_further_checks() -> None:
    steps = tuple(model_task(f"s{i}", next="nowhere") for i in range(5 * MAX_STEPS))
    issues = validate_definition(WorkflowDefinition(name="w", steps=steps))
    assert [str(i) for i in issues] == [
        f"steps: the definition has more than {MAX_STEPS} steps, the limit"
    ]


def test_a_long_loop_without_exit_is_one_issue_naming_a_few_steps() -> None:
    n = MAX_STEPS
    steps = tuple(model_task(f"s{i}", next=f"s{(i + 1) % n}") for i in range(n))
    issues = validate_definition(WorkflowDefinition(name="w", steps=steps))
    names = ", ".join(f"'s{i}'" for i in range(10))
    assert [str(i) for i in issues] == [
        f"steps[0]: loop with no exit through {names} and {n - 10} more: no step in it ends "
        "the sequence and no decision or onError leads out of it"
    ]


def test_a_chain_at_the_step_limit_is_valid() -> None:
    steps = [task(f"s{i}", next=f"s{i + 1}") for i in range(MAX_STEPS - 1)]
    defn = parse_definition({"id": "w", "steps": [*steps, task(f"s{MAX_STEPS - 1}")]})
    assert validate_definition(defn) == []


def test_a_deep_input_mapping_in_a_model_is_walked_without_recursion() -> None:
    deep: Any = "$.inptu.x"
    for _ in range(5000):
        deep = {"a": deep}
    issues = validate_definition(WorkflowDefinition(name="w", steps=(model_task("a", input=deep),)))
    assert len(issues) == 1 and issues[0].location.endswith(".a.a")
    assert issues[0].message.startswith("unknown root '$.inptu' (did you mean '$.input'?)")


def expression_chain(count: int) -> WorkflowDefinition:
    """``count`` steps in a chain, each with its own expression of 40 characters or so."""
    steps = tuple(
        model_task(f"s{i}", f"s{i + 1}" if i + 1 < count else "", {"x": f"$.input.a + {i:030}"})
        for i in range(count)
    )
    return WorkflowDefinition(name="w", steps=steps)


def test_expressions_in_all_are_bounded() -> None:
    each = len("$.input.a + ") + 30
    assert validate_definition(expression_chain(MAX_EXPRESSION_TOTAL // each)) == []
    (issue,) = validate_definition(expression_chain(MAX_EXPRESSION_TOTAL // each + 1))
    assert issue.location == "steps"
    assert issue.message.endswith(
        f"characters in all, more than the limit of {MAX_EXPRESSION_TOTAL}; none was compiled"
    )


def test_a_long_expression_is_quoted_in_part() -> None:
    source = "$.input.a + " * 400 + ")"
    (issue,) = validate_definition(
        WorkflowDefinition(name="w", steps=(model_task("a", input={"x": source}),))
    )
    assert "expression too long" in issue.message
    assert len(issue.message) < 300


# --- numbers that become durations ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"type": "wait", "wait": {"seconds": 1e308}},
            "steps[0].wait.seconds: must be at most 31536000 (365 days, in seconds); got 1e+308",
        ),
        (
            {"type": "wait", "wait": {"seconds": float("inf")}},
            "steps[0].wait.seconds: must be at most 31536000 (365 days, in seconds); got inf",
        ),
        (
            {"type": "wait", "wait": {"durationMs": 1e308}},
            "steps[0].wait.durationMs: must be at most 31536000000 (365 days, in milliseconds); "
            "got 1e+308",
        ),
        (
            {"timeout": 10**30},
            "steps[0].timeout: must be at most 31536000000 (365 days, in milliseconds); got "
            "an integer of about 31 digits",
        ),
        (
            {"retry": {"interval": 1e308}},
            "steps[0].retry.interval: must be at most 31536000000 (365 days, in milliseconds); "
            "got 1e+308",
        ),
        (
            {"retry": {"maxIntervalMs": 1e20}},
            "steps[0].retry.maxIntervalMs: must be at most 31536000000 (365 days, in "
            "milliseconds); got 1e+20",
        ),
        (
            {"retry": {"backoffRate": 1e308}},
            "steps[0].retry.backoffRate: must be at most 100 (the limit); got 1e+308",
        ),
        (
            {"retry": {"maxAttempts": 1e9}},
            "steps[0].retry.maxAttempts: must be at most 100 (the limit for retries); got "
            "1000000000",
        ),
        (
            {"type": "event", "event": {"name": "e", "timeoutMs": 1e308}},
            "steps[0].event.timeoutMs: must be at most 31536000000 (365 days, in milliseconds); "
            "got 1e+308",
        ),
        (
            {"compensate": {"capability": "undo", "timeout": 1e308}},
            "steps[0].compensate.timeout: must be at most 31536000000 (365 days, in "
            "milliseconds); got 1e+308",
        ),
    ],
)
def test_durations_are_range_checked_when_parsed(change: dict[str, Any], expected: str) -> None:
    assert parse_errors({"id": "w", "steps": [{**task("a"), **change}]}) == [expected]


def test_the_workflow_timeout_is_range_checked() -> None:
    assert parse_errors({"id": "w", "timeoutMs": 1e308, "steps": [task("a")]}) == [
        "timeoutMs: must be at most 31536000000 (365 days, in milliseconds); got 1e+308"
    ]


def test_durations_at_the_limit_parse() -> None:
    year = limits.MAX_DURATION_MS
    defn = parse_definition(
        {
            "id": "w",
            "timeoutMs": year,
            "steps": [
                {"id": "a", "type": "wait", "wait": {"seconds": year / 1000}, "next": "b"},
                task("b", retry={"maxAttempts": 100, "backoffRate": 100, "interval": year}),
            ],
        }
    )
    wait = defn.step("a").wait
    assert wait is not None and wait.duration_ms == year


# --- templates -----------------------------------------------------------------------------


def test_a_huge_parameter_used_many_times_is_refused_while_rendering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    copies = 0
    original = definition.plain

    def counting(value: Any) -> Any:
        nonlocal copies
        if isinstance(value, list) and len(value) > 1000:
            copies += 1
        return original(value)

    monkeypatch.setattr(definition, "plain", counting)
    big = ["x" * 100] * 9000  # within the value limit, about 1 MB as JSON
    template = {
        "id": "t",
        "parameters": ["p"],
        "steps": [task(f"s{i}", input={"v": "{{ p }}"}) for i in range(100)],
    }
    with pytest.raises(DefinitionError) as caught:
        instantiate_template(template, {"p": big})
    assert [str(i) for i in caught.value.issues] == [
        f"definition: the instantiated definition would be more than {MAX_DEFINITION_BYTES} "
        "bytes as JSON, the limit for a definition"
    ]
    assert copies <= 2  # stopped at the second use, not after building 100 copies


def test_a_huge_text_parameter_is_refused_too() -> None:
    template = {
        "id": "t",
        "parameters": ["p"],
        "steps": [task(f"s{i}", input={"v": "echo {{ p }}"}) for i in range(100)],
    }
    with pytest.raises(DefinitionError, match="would be more than 1048576 bytes"):
        instantiate_template(template, {"p": "x" * 1_000_000})


def test_a_deep_parameter_value_is_an_issue() -> None:
    template = {"id": "t", "parameters": ["p"], "steps": [task("a", input={"v": "{{ p }}"})]}
    with pytest.raises(DefinitionError) as caught:
        instantiate_template(template, {"p": deep_list(100_000)})
    assert [str(i) for i in caught.value.issues] == [
        f"parameters.p: the value nests objects and lists more than {MAX_JSON_DEPTH} levels "
        "deep, the limit for a definition"
    ]


# --- input schemas ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string", "minLength": "3"}, ["input.minLength: must be a non-negative integer"]),
        ({"maxItems": -1}, ["input.maxItems: must be a non-negative integer"]),
        ({"maximum": "3"}, ["input.maximum: must be a finite number"]),
        ({"minimum": True}, ["input.minimum: must be a finite number"]),
        ({"type": 5}, ["input.type: must be a type name or a non-empty list of type names"]),
        ({"required": "x"}, ["input.required: must be a list"]),
        ({"required": [1]}, ["input.required: must be a list of property names (strings)"]),
        ({"enum": "a"}, ["input.enum: must be a list"]),
        ({"anyOf": []}, ["input.anyOf: must be a non-empty list of schemas"]),
        (
            {"allOf": [{"type": "strng"}]},
            ["input.allOf[0].type: unknown type 'strng' (did you mean 'string'?)"],
        ),
        ({"properties": []}, ["input.properties: must be an object"]),
        ({"properties": {"a": 3}}, ["input.properties.a: a JSON Schema must be an object"]),
        ({"pattern": 3}, ["input.pattern: must be a string"]),
        ({"$ref": 3}, ["input.$ref: must be a string"]),
        ({"$ref": "#/$defs/nope"}, ["input.$ref: cannot resolve $ref '#/$defs/nope'"]),
        (
            {"$ref": "#"},
            [
                "input.$ref: leads back to the same schema without reaching into the value "
                "(through $ref, allOf, anyOf or oneOf), which would never end"
            ],
        ),
        (
            {"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/b"}]}, "b": {"$ref": "#/$defs/a"}}},
            [
                "input.$defs.b.$ref: leads back to the same schema without reaching into the "
                "value (through $ref, allOf, anyOf or oneOf), which would never end"
            ],
        ),
        # Recursion through a part of the value is fine: the value's depth bounds it.
        ({"properties": {"child": {"$ref": "#"}}}, []),
        ({"$defs": {"n": {"type": "integer"}}, "items": {"$ref": "#/$defs/n"}}, []),
    ],
)
def test_input_schemas_are_checked_strictly(schema: Any, expected: list[str]) -> None:
    assert [str(i) for i in check_schema(schema, "input")] == expected


def test_malformed_schemas_are_definition_errors() -> None:
    data = {"id": "w", "input": {"type": "string", "minLength": "3"}, "steps": [task("a")]}
    assert [str(i) for i in validate_definition(parse_definition(data))] == [
        "input.minLength: must be a non-negative integer"
    ]


def test_schema_nesting_is_bounded() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(limits.MAX_SCHEMA_DEPTH + 5):
        schema = {"items": schema}
    (issue,) = check_schema(schema, "input")
    assert (
        issue.message == f"schema nested more than {limits.MAX_SCHEMA_DEPTH} levels deep, the limit"
    )


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            {"type": "string", "minLength": "3"},
            ["x: schema error: minLength must be a non-negative integer"],
        ),
        ({"maximum": "3"}, []),  # only numbers are compared with a maximum
        (
            {"type": 5},
            ["x: schema error: type must be a type name or a non-empty list of type names"],
        ),
        ({"$ref": "#"}, ["x: schema error: a $ref cycle applies a schema to itself"]),
        ({"anyOf": [{"$ref": "#"}]}, ["x: schema error: a $ref cycle applies a schema to itself"]),
        (
            {"pattern": "(a)\\1"},
            [
                "x: schema error: pattern uses what the linear-time regular "
                "expression engine (RE2) cannot run, such as backreferences or "
                "lookaround: invalid escape sequence: \\1"
            ],
        ),
    ],
)
def test_unchecked_schemas_give_issues_at_start_never_exceptions(
    schema: Any, expected: list[str]
) -> None:
    assert [str(i) for i in validate_json_schema("ab", schema, "x")] == expected


def test_recursive_ref_over_the_value_multiplies_no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    original = schema_module._Run._keywords

    def counting(self: Any, *args: Any) -> None:
        nonlocal calls
        calls += 1
        original(self, *args)

    monkeypatch.setattr(schema_module._Run, "_keywords", counting)
    # Two branches that both recurse: 2^60 applications without memoisation.
    schema = {"allOf": [{"items": {"$ref": "#"}}, {"items": {"$ref": "#"}}]}
    value = deep_list(60)
    assert validate_json_schema(value, schema, "x") == []
    assert calls < 20 * 60


def test_patterns_run_on_re2(monkeypatch: pytest.MonkeyPatch) -> None:
    def backtracking(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Python's backtracking re must not run input patterns")

    monkeypatch.setattr(re, "search", backtracking)
    monkeypatch.setattr(re, "match", backtracking)
    assert [str(i) for i in validate_json_schema("a" * 27 + "!", {"pattern": "^(a+)+$"}, "x")] == [
        "x: must match the pattern '^(a+)+$'"
    ]
    assert validate_json_schema("a" * 27, {"pattern": "^(a+)+$"}, "x") == []


@pytest.mark.parametrize(
    ("pattern", "start"),
    [
        (
            "(a)\\1",
            "input.pattern: uses what the linear-time regular expression engine (RE2) cannot run",
        ),
        (
            "(?=a)b",
            "input.pattern: uses what the linear-time regular expression engine (RE2) cannot run",
        ),
        (
            "(?<!a)b",
            "input.pattern: uses what the linear-time regular expression engine (RE2) cannot run",
        ),
        ("(", "input.pattern: not a valid regular expression: "),
        (
            "a" * 2000,
            "input.pattern: the pattern is 2000 characters long, more than the limit of 1024",
        ),
    ],
)
def test_patterns_re2_cannot_run_are_definition_issues(pattern: str, start: str) -> None:
    (issue,) = check_schema({"pattern": pattern}, "input")
    assert str(issue).startswith(start)


# --- files -----------------------------------------------------------------------------------

BILLION_LAUGHS = """\
id: w
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
steps: []
"""


@pytest.mark.parametrize(
    ("file", "text", "expected"),
    [
        (
            "bomb.yaml",
            BILLION_LAUGHS,
            f"bomb.yaml: line 6 column 4: the document expands to more than {MAX_DOCUMENT_VALUES} "
            "values (through YAML aliases or otherwise), the limit for a definition",
        ),
        (
            "loop.yaml",
            "id: w\nsteps: &s\n  - id: a\n    type: task\n    input: *s\n",
            "loop.yaml: line 2 column 8: a recursive alias: this node contains itself",
        ),
        (
            "nested.yaml",
            "id: w\nsteps:\n  - id: a\n    type: task\n    input:\n      x: 1\n      x: 2\n",
            "nested.yaml: line 7 column 7: duplicate key 'x'",
        ),
        (
            "dup.json",
            '{"id": "w", "steps": [{"id": "a", "type": "task", "id": "b"}]}',
            "dup.json: duplicate key 'id'",
        ),
        (
            "deep.json",
            '{"id": "w", "x": ' + "[" * 5000 + "]" * 5000 + "}",
            f"deep.json: nested more than {MAX_JSON_DEPTH} levels deep, the limit for a definition",
        ),
    ],
)
def test_files_that_would_cost_without_bound_or_lose_keys(
    tmp_path: Path, file: str, text: str, expected: str
) -> None:
    (tmp_path / file).write_text(text)
    with pytest.raises(DefinitionError) as caught:
        read_definition_file(tmp_path / file)
    assert [str(i) for i in caught.value.issues] == [expected]


def test_aliases_that_stay_small_still_load(tmp_path: Path) -> None:
    text = (
        "id: w\nsteps:\n  - &t {id: a, type: task, capability: c, retry: &r {maxAttempts: 2},"
        " next: b}\n  - {id: b, type: task, capability: c, retry: *r}\n"
    )
    (tmp_path / "w.yaml").write_text(text)
    defn = load_definition_file(tmp_path / "w.yaml")
    assert defn.step("b").retry == defn.step("a").retry


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * limits.MAX_FILE_BYTES + "\nid: w\n")
    with pytest.raises(DefinitionError) as caught:
        read_definition_file(path)
    size = path.stat().st_size
    assert [str(i) for i in caught.value.issues] == [
        f"big.yaml: the file is {size} bytes, more than the limit of {limits.MAX_FILE_BYTES} bytes"
    ]


# --- reporting many issues in bounded space -------------------------------------------------


def test_issue_text_is_bounded_and_counts_the_rest() -> None:
    issues = [Issue(f"steps[{i}].next", f"unknown step 'x{i}' " + "é" * 1000) for i in range(3000)]
    text = issues_text(issues)
    wire = sum(1 if " " <= c <= "~" and c != "%" else 3 * len(c.encode()) for c in text)
    assert wire <= MAX_ISSUE_TEXT
    assert text.startswith("steps[0].next: unknown step 'x0' éé")
    shown = text.count("unknown step")
    assert shown >= 1
    assert text.endswith(f"; ... and {3000 - shown} more issues (3000 in all)")


def test_issue_text_of_a_few_short_issues_is_all_of_them() -> None:
    issues = [Issue("steps[0]", "bad"), Issue("", "no location"), Issue("steps[1].next", "worse")]
    assert issues_text(issues) == "steps[0]: bad; no location; steps[1].next: worse"
    assert issues_text([]) == ""


def test_capped_issue_lists_keep_the_total() -> None:
    issues = [Issue(f"steps[{i}]", "bad") for i in range(250)]
    first, total = cap_issues(issues)
    assert (len(first), total) == (limits.MAX_ISSUES, 250)
    assert first[0] == issues[0]
    assert cap_issues(issues[:3]) == (issues[:3], 3)


# --- the documentation states the limits ------------------------------------------------------


def test_the_limits_table_states_every_limit() -> None:
    text = (ROOT / "docs" / "workflows.md").read_text()
    table = text[text.index("## Limits") :]
    for name in (
        "MAX_STEPS",
        "MAX_NESTING",
        "MAX_DEFINITION_BYTES",
        "MAX_JSON_DEPTH",
        "MAX_DOCUMENT_VALUES",
        "MAX_EXPRESSION_LENGTH",
        "MAX_EXPRESSION_TOTAL",
        "MAX_FILE_BYTES",
        "MAX_DURATION_MS",
        "MAX_ATTEMPTS",
        "MAX_BACKOFF_RATE",
        "MAX_SCHEMA_DEPTH",
        "MAX_PATTERN_LENGTH",
        "MAX_SCHEMA_WORK",
        "MAX_SUGGESTIONS",
        "MAX_ISSUES",
    ):
        value = getattr(limits, name)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        row = next((line for line in table.splitlines() if f"`{name}`" in line), "")
        assert f"{value:,}".replace(",", " ") in row.replace(",", " ").replace("\u202f", " "), name


def test_the_editor_schema_states_the_numeric_limits() -> None:
    s = json.loads((ROOT / "coordinator" / "engine" / "workflow.schema.json").read_text())
    d = s["$defs"]
    year = limits.MAX_DURATION_MS
    assert s["properties"]["timeoutMs"]["maximum"] == year
    assert d["step"]["properties"]["timeout"]["maximum"] == year
    assert d["retry"]["properties"]["maxAttempts"]["maximum"] == limits.MAX_ATTEMPTS
    assert d["retry"]["properties"]["backoffRate"]["maximum"] == limits.MAX_BACKOFF_RATE
    assert d["retry"]["properties"]["interval"]["maximum"] == year
    assert d["retry"]["properties"]["maxIntervalMs"]["maximum"] == year
    assert d["wait"]["properties"]["durationMs"]["maximum"] == year
    assert d["wait"]["properties"]["seconds"]["maximum"] == year // 1000
    assert d["event"]["properties"]["timeoutMs"]["maximum"] == year
    assert d["compensate"]["properties"]["timeout"]["maximum"] == year
