"""The workflow expression language: every form the seed workflows use, then the edges."""

from __future__ import annotations

import math
from typing import Any

import pytest

from coordinator.engine.expr import (
    Expression,
    Template,
    compile_expression,
    compile_template,
    evaluate_mapping,
    has_interpolation,
    is_expression,
    truthy,
)
from coordinator.errors import EvaluationError, ExpressionError

SCOPE: dict[str, Any] = {
    "input": {
        "requirements": "A dashboard",
        "projectPath": "/srv/dashboard",
        "feature": "login page",
        "outputPath": "/data/out.json",
        "constraints": ["react", "no-ssr"],
    },
    "variables": {
        "projectPath": "",  # set but empty: || must fall through to the input
        "plan": {"requiresScaffolding": True, "coreComponents": ["Header", "Nav"]},
        "issues": [{"file": "a.ts"}, {"file": "b.ts"}],
        "testResults": {"passed": False, "failed": 3},
    },
    "output": {"url": "https://docs/1", "path": "/srv/new", "hash": "abc123"},
    "error": {"type": "TIMEOUT", "message": "step timed out"},
    "workflowName": "project_setup",
    "executionId": "exec-42",
    "stepId": "run_tests",
}


def ev(source: str, scope: dict[str, Any] = SCOPE) -> Any:
    return compile_expression(source).evaluate(scope)


# --- the seed's expressions, exactly as written -------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("$.input.requirements", "A dashboard"),
        ("$.variables.plan.requiresScaffolding", True),
        ("$.variables.projectPath || $.input.projectPath", "/srv/dashboard"),
        ("$.variables.issues.length > 0", True),
        ("$.variables.testResults.passed", False),
        ('$.input.projectPath + "/src/components"', "/srv/dashboard/src/components"),
        ('$.variables.projectPath + "/**/*.{js,ts,jsx,tsx}"', "/**/*.{js,ts,jsx,tsx}"),
        ("$.output.url", "https://docs/1"),
        ("$.output", SCOPE["output"]),
        ("$.error", SCOPE["error"]),
        ("$.error.message", "step timed out"),
        ("$.workflowName", "project_setup"),
        ("$.executionId", "exec-42"),
        ("$.stepId", "run_tests"),
        ("$.input.notInScope", None),
    ],
)
def test_seed_expressions(source: str, expected: Any) -> None:
    assert is_expression(source)
    assert ev(source) == expected


def test_output_is_the_scope_value_itself() -> None:
    assert ev("$.output") is SCOPE["output"]  # evaluate does not copy; evaluate_mapping does


def test_issues_length_when_issues_are_missing_is_false_not_an_error() -> None:
    scope: dict[str, Any] = {"variables": {}}
    assert ev("$.variables.issues.length", scope) is None
    assert ev("$.variables.issues.length > 0", scope) is False  # None > 0: mismatch
    assert ev("$.variables.issues.length > 0", {"variables": {"issues": []}}) is False


# --- semantics ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (False, False),
        (0, False),
        (0.0, False),
        (-0.0, False),
        (math.nan, False),
        ("", False),
        (True, True),
        (1, True),
        (-0.5, True),
        ("0", True),
        ("false", True),
        ([], True),
        ({}, True),
    ],
)
def test_truthy_is_javascript_truthiness(value: Any, expected: bool) -> None:
    assert truthy(value) is expected
    assert ev("!$.v", {"v": value}) is (not expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # || and && return an operand, not a boolean, and short-circuit.
        ('"" || "b"', "b"),
        ("0 || null", None),
        ('"a" || $.missing.deeper', "a"),
        ("0 && 1 / 0", 0),  # the right side never runs
        ('1 && "x"', "x"),
        ('null ?? "d"', "d"),
        ('0 ?? "d"', 0),
        ('"" ?? "d"', ""),
        ("$.missing ?? $.input.feature", "login page"),
        # Conditionals nest to the right.
        ('$.variables.plan.requiresScaffolding ? "scaffold" : "repo"', "scaffold"),
        ("0 ? 1 : null ? 2 : 3", 3),
        # Precedence: * over +, + over <, < over ==, == over &&, && over ||.
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("1 + 2 < 4 == true", True),
        ("1 || 0 && 0", 1),
        ("-2 * -3", 6),
        ("!!$.input.feature", True),
        # Arithmetic as in JS, but integral results stay ints.
        ("7 / 2", 3.5),
        ("8 / 2", 4),
        ("-7 % 3", -1),
        ("7 % -3", 1),
        ("2.5 * 2", 5.0),
        ("1e3", 1000.0),
        # + concatenates when either side is a string, rendering the other JS-style.
        ('"a" + null', "anull"),
        ('"a" + undefined', "anull"),
        ('"n=" + 1', "n=1"),
        ('"n=" + 2.0', "n=2"),
        ('"n=" + 2.5', "n=2.5"),
        ('true + "!"', "true!"),
        ("'it\\'s' + \"\\t\\n\\\\\"", "it's\t\n\\"),
        # Equality is strict, except 1 == 1.0 and null == undefined.
        ("1 == 1.0", True),
        ("null == undefined", True),
        ("null === undefined", True),
        ('1 == "1"', False),
        ("true == 1", False),
        ("0 == false", False),
        ("null == 0", False),
        ("[1, [2]] == [1, [2]]", True),
        ("$.output == $.output", True),
        ('"a" != "b"', True),
        ("1 !== 1", False),
        # Comparisons: numbers with numbers, strings with strings; else false.
        ('"abc" < "abd"', True),
        ("2 >= 2", True),
        ('1 < "2"', False),
        ("null < 1", False),
        ("null >= 0", False),
        # Member and index access.
        ("$.variables.issues[1].file", "b.ts"),
        ("$.variables.issues[2]", None),
        ("$.variables.issues[-1]", None),
        ("$.variables.issues[1.0].file", "b.ts"),
        ('$["input"]["projectPath"]', "/srv/dashboard"),
        ('$.variables.plan["core" + "Components"][0]', "Header"),
        ("$.input.feature.length", 10),
        ("$.input.feature[0]", "l"),
        ("$.variables.plan.length", 2),
        ("$.counted.length", 7),  # a real "length" key wins
        ("$.input.feature.missing", None),
        ("$.variables.testResults.failed.x.y", None),
        ("[1, 2, 3][0]", 1),
        ("[]", []),
        ("[1, 2,]", [1, 2]),
        ("[$.stepId, $.executionId]", ["run_tests", "exec-42"]),
        ("$.stepId", "run_tests"),
    ],
)
def test_operators(source: str, expected: Any) -> None:
    scope = {**SCOPE, "counted": {"length": 7, "a": 1}}
    result = ev(source, scope)
    assert result == expected
    assert type(result) is type(expected)  # 4, not 4.0; None, not False


# --- templates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Feature: ${$.input.feature}", "Feature: login page"),
        (
            'mkdir -p $(dirname ${$.input.outputPath}) && echo "Error saving data" > '
            "${$.input.outputPath}.error.log",
            'mkdir -p $(dirname /data/out.json) && echo "Error saving data" > '
            "/data/out.json.error.log",
        ),
        (
            'echo "Critical error in workflow ${$.workflowName} at step ${$.stepId}: '
            '${$.error.message}" | mail -s "Critical Workflow Error" admin@example.com',
            'echo "Critical error in workflow project_setup at step run_tests: '
            'step timed out" | mail -s "Critical Workflow Error" admin@example.com',
        ),
        ("${$.input.projectPath}/src", "/srv/dashboard/src"),
        ("[${$.missing}] [${null}]", "[] []"),
        ("${true}/${false}/${2.0}/${2.5}/${7}", "true/false/2/2.5/7"),
        ("${$.input.constraints} ${$.counts}", '["react","no-ssr"] {"a":1.5,"b":[2]}'),
        ('${$.input["feature"] + "}"}', "login page}"),
        ("cost: ${'$'}5 and ${'${'}literal}", "cost: $5 and ${literal}"),
        ("no interpolation: $.input.feature", "no interpolation: $.input.feature"),
        ("", ""),
    ],
)
def test_templates(source: str, expected: str) -> None:
    scope = {**SCOPE, "counts": {"a": 1.5, "b": [2.0]}}
    assert compile_template(source).render(scope) == expected


def test_template_parts_and_paths() -> None:
    t = compile_template("a ${$.input.x} b ${$.variables.y || $.input.x}")
    assert t.parts[0] == "a " and t.parts[2] == " b "
    assert isinstance(t.parts[1], Expression) and t.parts[1].source == "$.input.x"
    assert t.paths == (("input", "x"), ("variables", "y"))
    assert t.roots == {"input", "variables"}


@pytest.mark.parametrize(
    ("value", "expression", "interpolation"),
    [
        ("$.input.x", True, False),
        ("  $.input.x", True, False),
        ("$", True, False),
        ("${$.input.x}/src", False, True),  # a template, though it starts with "$"
        ("Feature: ${$.input.feature}", False, True),
        ("project_plan_template", False, False),
        ("mail -s x $.input.notificationEmail", False, False),  # bare $. stays literal
        ("**/*.test.{js,ts}", False, False),
    ],
)
def test_expression_or_literal(value: str, expression: bool, interpolation: bool) -> None:
    assert is_expression(value) is expression
    assert has_interpolation(value) is interpolation


def test_evaluate_mapping_over_a_seed_step_input() -> None:
    mapping = {
        "path": "$.variables.projectPath || $.input.projectPath",
        "initialize": True,
        "templateId": "project_plan_template",
        "components": "$.variables.plan.coreComponents",
        "commitMessage": "Feature: ${$.input.feature}",
        "files": ['$.input.projectPath + "/src/components"', "literal", 3],
        "nested": {"issues": "$.variables.issues.length", "none": None},
    }
    result = evaluate_mapping(mapping, SCOPE)
    assert result == {
        "path": "/srv/dashboard",
        "initialize": True,
        "templateId": "project_plan_template",
        "components": ["Header", "Nav"],
        "commitMessage": "Feature: login page",
        "files": ["/srv/dashboard/src/components", "literal", 3],
        "nested": {"issues": 2, "none": None},
    }
    # Nothing mutable is shared with the scope or the definition.
    assert result["components"] is not SCOPE["variables"]["plan"]["coreComponents"]
    assert result["nested"] is not mapping["nested"]


# --- static analysis ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "roots", "paths"),
    [
        (
            "$.variables.projectPath || $.input.projectPath",
            {"variables", "input"},
            (("variables", "projectPath"), ("input", "projectPath")),
        ),
        ("$.variables.issues.length > 0", {"variables"}, (("variables", "issues", "length"),)),
        ("$.output", {"output"}, (("output",),)),
        ("$", {"$"}, ()),
        ('$["input"].a', {"input"}, (("input", "a"),)),
        ("$.input.items[0].name", {"input"}, (("input", "items"),)),
        ("$[$.variables.key]", {"$", "variables"}, (("variables", "key"),)),
        ("$.a.b + $.a.b + $.a", {"a"}, (("a", "b"), ("a",))),
        ('"literal" + 1', set(), ()),
    ],
)
def test_roots_and_paths(source: str, roots: set[str], paths: tuple[tuple[str, ...]]) -> None:
    expression = compile_expression(source)
    assert expression.roots == roots
    assert expression.paths == paths


def test_compiling_is_cached_and_expressions_are_values() -> None:
    assert compile_expression("$.input.x") is compile_expression("$.input.x")
    assert compile_template("a ${$.b}") is compile_template("a ${$.b}")
    assert Expression("$.input.x") == compile_expression("$.input.x")
    assert hash(Expression("$.input.x")) == hash(compile_expression("$.input.x"))
    assert Template("a ${$.b}") == compile_template("a ${$.b}")


# --- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message", "position"),
    [
        ("$.input.projectPath + )", "unexpected token ')'", 22),
        ("$.a + ", "unexpected end of expression", 6),
        ("$.a $.b", "unexpected token '$'", 4),
        ("", "empty expression", 0),
        ("   ", "empty expression", 0),
        ("foo", "unknown identifier 'foo' (paths start with $)", 0),
        ("$.a || input.projectPath", "unknown identifier 'input' (paths start with $)", 7),
        ("__import__('os')", "unknown identifier '__import__' (paths start with $)", 0),
        ('$.a + "abc', "unterminated string", 6),
        ("'abc\\", "unterminated string", 0),
        ("'\\q'", "invalid escape sequence '\\q'", 1),
        ("$.a ? 1", "expected ':' in conditional", 7),
        ("$.a ? 1 , 2", "expected ':' in conditional", 8),
        ("($.a", "expected ')'", 4),
        ("$.a[0", "expected ']'", 5),
        ("[1 2]", "expected ',' or ']' in array", 3),
        ("$.", "expected a property name after '.'", 2),
        ("$.1", "expected a property name after '.'", 2),
        ("$.a = 1", "unexpected character '='", 4),
        ("$.a & $.b", "unexpected character '&'", 4),
        ("$.a # x", "unexpected character '#'", 4),
        ("1e", "invalid number '1e'", 0),
        ("$.a + 2px", "invalid number '2px'", 6),
        ("1e999", "number out of range '1e999'", 0),
        ("$HOME/x", "unexpected token 'HOME'", 1),
    ],
)
def test_syntax_errors(source: str, message: str, position: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert (caught.value.message, caught.value.position) == (message, position)
    assert caught.value.source == source
    assert str(caught.value) == f"{message} at position {position} in '{source}'"


@pytest.mark.parametrize(
    ("source", "message", "position"),
    [
        ("a ${$.a + } b", "unexpected end of expression", 10),
        ("x ${$.input.feature", "unterminated interpolation", 2),
        ("x ${'}", "unterminated interpolation", 2),
        ("x ${}", "empty expression", 4),
        ("x ${ foo }", "unknown identifier 'foo' (paths start with $)", 5),
    ],
)
def test_template_errors_point_into_the_template(source: str, message: str, position: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_template(source)
    assert (caught.value.message, caught.value.position) == (message, position)
    assert caught.value.source == source


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('"a" - 1', "cannot apply '-' to string and number"),
        ("$.missing * 2", "cannot apply '*' to null and number"),
        ("true + 1", "cannot apply '+' to boolean and number"),
        ("[1] + [2]", "cannot apply '+' to array and array"),
        ('"a" + [1]', "cannot apply '+' to string and array"),
        ('$.output + "x"', "cannot apply '+' to object and string"),
        ('-"a"', "cannot apply unary '-' to string"),
        ("+null", "cannot apply unary '+' to null"),
        ("1 / 0", "division by zero"),
        ("1 % 0.0", "division by zero"),
        ("1e308 * 10", "number out of range"),
        ("$.big * $.big", "number out of range"),
    ],
)
def test_evaluation_errors(source: str, message: str) -> None:
    with pytest.raises(EvaluationError) as caught:
        ev(source, {**SCOPE, "big": 2**600})
    assert caught.value.message == message
    assert caught.value.source == source
    assert str(caught.value) == f"{message} in '{source}'"


def test_errors_are_value_errors() -> None:
    assert issubclass(ExpressionError, ValueError)
    assert issubclass(EvaluationError, ValueError)


# --- bounded cost -------------------------------------------------------------------


def test_source_length_is_bounded() -> None:
    compile_expression("$.a + " + " " * 4000 + "1")  # 4007 characters: fine
    with pytest.raises(ExpressionError, match=r"^expression too long \(4097 characters"):
        compile_expression("$." + "a" * 4095)


def test_template_length_is_bounded() -> None:
    compile_template("${$.input.a} " + "x" * 4000)  # 4014 characters: fine
    with pytest.raises(
        ExpressionError, match=r"^template too long \(4097 characters, limit 4096\)"
    ):
        compile_template("${$.a}" + "x" * 4091)


def test_error_text_quotes_a_long_source_in_part() -> None:
    source = '$.input.a == "' + "x" * 300 + '" )'
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert caught.value.source == source  # the attribute keeps it whole
    assert caught.value.position == len(source) - 1
    quoted = str(caught.value).split(" in '", 1)[1]
    assert quoted.startswith("…x") and quoted.endswith("x\" )'")
    assert len(quoted) == 1 + 160 + 1  # an ellipsis, 160 characters and the quote


def test_tokens_read_in_one_pass_keep_every_form() -> None:
    assert ev("$['a\\'b'] + \"x\" + 1.5e3", {"a'b": "q"}) == "qx1500"
    assert ev("'it\\'s' + \"\\t\"") == "it's\t"
    assert ev("\t 1 \n +\r 2 ") == 3
    assert ev("$.c_d === 1 && $.c_d !== 2", {"c_d": 1}) is True


def test_node_count_is_bounded() -> None:
    assert ev("+".join(["1"] * 32) + "+" + "+".join(["1"] * 32)) == 64  # depth 63, 127 nodes
    many = "[" + ",".join(["1"] * 501) + "]"
    with pytest.raises(ExpressionError) as caught:
        compile_expression(many)
    assert caught.value.message == "expression too complex (more than 500 nodes)"
    assert caught.value.position == many.rindex("1")


@pytest.mark.parametrize(
    ("too_deep", "deepest_allowed"),
    [
        ("(" * 64 + "1" + ")" * 64, "(" * 63 + "1" + ")" * 63),
        ("!" * 64 + "1", "!" * 63 + "1"),
        ("1" + " + 1" * 64, "1" + " + 1" * 63),  # a flat chain is a deep tree
        ("$" + ".a" * 64, "$" + ".a" * 63),
        ("[" * 65 + "]" * 65, "[" * 64 + "]" * 64),
    ],
)
def test_nesting_is_bounded(too_deep: str, deepest_allowed: str) -> None:
    with pytest.raises(ExpressionError, match=r"^expression nested too deeply \(more than 64"):
        compile_expression(too_deep)
    compile_expression(deepest_allowed).evaluate({})


def test_built_strings_are_bounded() -> None:
    half = {"s": "x" * (1 << 19)}
    assert len(ev("$.s + $.s", half)) == 1 << 20
    with pytest.raises(EvaluationError, match=r"^string result too large"):
        ev("$.s + $.s + 'y'", half)
    with pytest.raises(EvaluationError, match=r"^string result too large"):
        compile_template("${$.s}${$.s}!").render(half)


# --- security -----------------------------------------------------------------------


class _Secret:
    token = "hunter2"


@pytest.mark.parametrize(
    "source",
    [
        "$.__class__",
        "$.input.__dict__",
        "$.input.__class__.__mro__",
        '$["__class__"]',
        "$.input.feature.__len__",
        "$.input.feature.upper",
        "$.obj.token",
        "$.obj.__class__.__init__.__globals__",
        "$.input.constraints.append",
    ],
)
def test_members_are_data_lookups_never_attributes(source: str) -> None:
    assert ev(source, {**SCOPE, "obj": _Secret()}) is None


def test_a_failed_compile_is_cached_too() -> None:
    """A definition may repeat one bad expression in every step: it is compiled once."""
    from coordinator.engine import expr

    bad = "$.input.a || " + "1 + " * 300 + "("

    def depth(tb: Any) -> int:
        n = 0
        while tb is not None:
            n, tb = n + 1, tb.tb_next
        return n

    before = expr._expressions.cache_info()  # type: ignore[attr-defined]
    depths = set()
    for _ in range(50):
        with pytest.raises(ExpressionError) as failed:
            compile_expression(bad)
        depths.add(depth(failed.value.__traceback__))
    assert len(depths) == 1  # raised afresh each time: the traceback does not pile up
    after = expr._expressions.cache_info()  # type: ignore[attr-defined]
    assert after.misses - before.misses == 1 and after.hits - before.hits == 49
