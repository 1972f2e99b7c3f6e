"""Parsing workflow definitions: the seed's four workflows, both spellings, every
structural error with its location, files, templates, and the editor schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from coordinator.engine.definition import (
    FIELDS,
    DefinitionError,
    Issue,
    accepted_keys,
    dump_definition,
    load_definition_file,
    parse_definition,
    read_definition_file,
)
from coordinator.engine.model import ErrorAction, RetrySpec, WorkflowDefinition
from coordinator.engine.templates import instantiate_template
from coordinator.engine.validate import validate_json_schema
from coordinator.retry import RetryStrategy

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
SCHEMA = ROOT / "coordinator" / "engine" / "workflow.schema.json"
T = TypeVar("T")
SEEDS = ("project_setup", "implement_feature", "data_processing", "global_error_handler")


def load(name: str) -> WorkflowDefinition:
    return load_definition_file(WORKFLOWS / f"{name}.yaml")


def raw(name: str) -> dict[str, Any]:
    return read_definition_file(WORKFLOWS / f"{name}.yaml")


def chain(defn: WorkflowDefinition) -> list[tuple[str, str, str, str]]:
    """(id, type, capability, next) of each top-level step, in order."""
    return [(s.id, s.type, s.capability, s.next) for s in defn.steps]


def errors(data: Any, name: str | None = None) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(data, name)
    assert all(i.severity == "error" for i in caught.value.issues)
    return [str(i) for i in caught.value.issues]


def some(value: T | None) -> T:
    assert value is not None
    return value


def task(id: str, **fields: Any) -> dict[str, Any]:
    return {"id": id, "type": "task", "capability": "cap", **fields}


# --- the seed's workflows, as transcribed ----------------------------------------------


def test_project_setup() -> None:
    d = load("project_setup")
    assert d.name == "project_setup"
    assert d.source["name"] == "Project Setup Workflow"  # the display name stays in source
    assert (d.version, d.description) == (
        "1.0.0",
        "Sets up a new project from requirements to deployment",
    )
    assert chain(d) == [
        ("analyze_requirements", "task", "project_analysis", "create_plan"),
        ("create_plan", "task", "task_planning", "document_plan"),
        ("document_plan", "task", "page_operations", "setup_decisions"),
        ("setup_decisions", "decision", "", ""),
        ("scaffold_project", "task", "project_scaffolding", "setup_repository"),
        ("setup_repository", "task", "git_operations", "generate_components"),
        ("generate_components", "parallel", "", "review_code"),
        ("review_code", "task", "code_linting", "handle_review_results"),
        ("handle_review_results", "decision", "", ""),
        ("fix_issues", "task", "code_transformation", "run_tests"),
        ("run_tests", "task", "test_execution", "check_test_results"),
        ("check_test_results", "decision", "", ""),
        ("fix_test_failures", "task", "code_transformation", "optimize_performance"),
        ("optimize_performance", "task", "performance_optimization", "document_project"),
        ("document_project", "task", "documentation_review", "deploy_project"),
        ("deploy_project", "task", "deployment", ""),
    ]
    assert len(d.all_steps) == 18
    decisions = {s.id: s.decision for s in d.steps if s.decision is not None}
    assert {k: (v.expression, dict(v.branches), v.default) for k, v in decisions.items()} == {
        "setup_decisions": (
            "$.variables.plan.requiresScaffolding",
            {"true": "scaffold_project", "false": "setup_repository"},
            "",
        ),
        "handle_review_results": (
            "$.variables.issues.length > 0",
            {"true": "fix_issues", "false": "run_tests"},
            "",
        ),
        "check_test_results": (
            "$.variables.testResults.passed",
            {"true": "optimize_performance", "false": "fix_test_failures"},
            "",
        ),
    }
    parallel = d.step("generate_components").parallel
    assert parallel is not None and parallel.policy == "all"
    assert [(b.name, [s.id for s in b.steps]) for b in parallel.branches] == [
        ("Core Components", ["generate_core"]),
        ("Utility Components", ["generate_utils"]),
    ]
    assert d.step("generate_utils").input == {
        "components": "$.variables.plan.utilityComponents",
        "path": "$.variables.projectPath || $.input.projectPath",
    }
    assert d.step("setup_repository").input == {
        "path": "$.variables.projectPath || $.input.projectPath",
        "initialize": True,
    }
    assert d.step("analyze_requirements").output == {"analysis": "$.output"}
    assert d.step("run_tests").input == {
        "path": "$.variables.projectPath || $.input.projectPath",
        "testPattern": "**/*.test.{js,ts}",
    }
    (handler,) = d.error_handlers
    assert (handler.error, handler.handler) == ("*", "log_error_to_notion")
    assert handler.retry == RetrySpec(max_attempts=3, interval_ms=1000, backoff_rate=2.0)
    assert d.input_schema is not None
    assert d.input_schema["required"] == ["requirements"]
    assert d.input_schema["properties"]["priority"]["enum"] == ["low", "medium", "high"]


def test_implement_feature() -> None:
    d = load("implement_feature")
    assert (d.name, d.version, d.source["name"]) == (
        "implement_feature",
        "1",
        "Feature Implementation Workflow",
    )
    assert [s.id for s in d.steps] == [
        "plan_feature",
        "document_specs",
        "implement_components",
        "review_implementation",
        "optimize_implementation",
        "run_tests",
        "commit_changes",
    ]
    assert [s.next for s in d.steps] == [
        "document_specs",
        "implement_components",
        "review_implementation",
        "optimize_implementation",
        "run_tests",
        "commit_changes",
        "",
    ]
    parallel = d.step("implement_components").parallel
    assert parallel is not None
    assert [(b.name, [(s.id, s.capability) for s in b.steps]) for b in parallel.branches] == [
        ("UI Components", [("create_ui_components", "component_generation")]),
        ("Data Services", [("create_data_services", "component_generation")]),
        ("Unit Tests", [("create_tests", "test_execution")]),
    ]
    assert d.step("create_tests").input == {
        "specifications": "$.variables.specifications",
        "path": '$.input.projectPath + "/tests"',
    }
    assert d.step("review_implementation").input == {
        "files": [
            '$.input.projectPath + "/src/components"',
            '$.input.projectPath + "/src/services"',
        ]
    }
    assert d.step("plan_feature").output == {
        "tasks": "$.output.tasks",
        "specifications": "$.output.specifications",
    }
    assert d.step("commit_changes").input == {
        "path": "$.input.projectPath",
        "commitMessage": "Feature: ${$.input.feature}",  # the seed's template literal
        "files": "all",
    }
    assert d.error_handlers == ()


def test_data_processing() -> None:
    d = load("data_processing")
    assert chain(d) == [
        ("fetch_data", "task", "command_execution", "transform_data"),
        ("handle_fetch_error", "task", "page_operations", "use_backup_data"),
        ("use_backup_data", "task", "command_execution", "transform_data"),
        ("transform_data", "task", "component_generation", "save_results"),
        ("log_transform_error", "task", "page_operations", "use_simple_transform"),
        ("use_simple_transform", "task", "component_generation", "save_results"),
        ("save_results", "task", "file_operations", "send_notification"),
        ("handle_save_error", "task", "command_execution", "send_error_notification"),
        ("send_notification", "task", "command_execution", ""),
        ("send_error_notification", "task", "command_execution", ""),
    ]
    fetch = d.step("fetch_data")
    assert fetch.retry == RetrySpec(max_attempts=5, interval_ms=1000, backoff_rate=2.0)
    assert fetch.retry.strategy is RetryStrategy.EXPONENTIAL
    on_error = {s.id: s.on_error for s in d.steps if s.on_error is not None}
    assert on_error == {
        "fetch_data": ErrorAction("goto", "handle_fetch_error"),
        "transform_data": ErrorAction("goto", "log_transform_error"),
        "save_results": ErrorAction("goto", "handle_save_error"),
    }
    assert d.step("handle_fetch_error").input == {
        "error": "$.error",
        "step": "fetch_data",
        "severity": "high",
    }
    assert d.step("handle_save_error").input == {
        "command": 'mkdir -p $(dirname ${$.input.outputPath}) && echo "Error saving data" '
        "> ${$.input.outputPath}.error.log"
    }
    assert d.step("send_notification").input == {
        "command": 'echo "Data processing completed successfully" | mail -s "Success" '
        "$.input.notificationEmail"
    }
    assert [(h.error, h.handler, h.retry) for h in d.error_handlers] == [
        ("*", "global_error_handler", None)
    ]


def test_global_error_handler() -> None:
    d = load("global_error_handler")
    assert chain(d) == [
        ("log_error", "task", "page_operations", "notify_admin"),
        ("notify_admin", "task", "command_execution", ""),
    ]
    assert d.step("log_error").input == {
        "error": "$.error",
        "workflow": "$.workflowName",
        "execution": "$.executionId",
        "step": "$.stepId",
        "severity": "high",
    }
    assert d.step("notify_admin").input == {
        "command": 'echo "Critical error in workflow ${$.workflowName} at step ${$.stepId}: '
        '${$.error.message}" | mail -s "Critical Workflow Error" admin@example.com'
    }


@pytest.mark.parametrize("name", SEEDS)
def test_every_seed_file_has_an_id_matching_its_file_name(name: str) -> None:
    assert raw(name)["id"] == name
    assert load(name).name == name


# --- names, versions, spellings -------------------------------------------------------


def test_the_name_argument_wins_then_id_then_display_name() -> None:
    steps = [task("a")]
    assert parse_definition({"name": "Display", "steps": steps}, "given").name == "given"
    assert parse_definition({"id": "ident", "name": "Display", "steps": steps}).name == "ident"
    assert parse_definition({"name": "Display", "steps": steps}).name == "Display"
    assert errors({"id": "other", "steps": steps}, "given") == [
        "id: 'other' differs from the name 'given' given for it"
    ]
    assert errors({"steps": steps}) == ["definition: missing required field 'id' (or 'name')"]


@pytest.mark.parametrize(
    ("written", "expected"), [(None, "1"), (2, "2"), (1.5, "1.5"), ("2.1.0", "2.1.0")]
)
def test_version_is_text_and_defaults_to_1(written: Any, expected: str) -> None:
    data: dict[str, Any] = {"id": "w", "steps": [task("a")]}
    if written is not None:
        data["version"] = written
    assert parse_definition(data).version == expected


def test_snake_case_spellings_parse_to_the_same_steps() -> None:
    retry = {"maxAttempts": 4, "backoffRate": 3, "maxIntervalMs": 500, "interval": 10}
    camel = {
        "id": "w",
        "timeoutMs": 9000,
        "errorHandlers": [{"handler": "h", "retry": {"maxAttempts": 2}}],
        "steps": [
            task("a", retry=retry, onError="b", timeout=50, next="c"),
            task("b", next="c"),
            {
                "id": "c",
                "type": "event",
                "event": {"name": "go", "correlationKey": "$.input.k", "timeoutMs": 5},
            },
            {"id": "d", "type": "wait", "wait": {"durationMs": 10}},
        ],
    }
    snake = json.loads(
        json.dumps(camel)
        .replace("maxAttempts", "max_attempts")
        .replace("backoffRate", "backoff_rate")
        .replace("maxIntervalMs", "max_interval_ms")
        .replace("onError", "on_error")
        .replace("timeoutMs", "timeout_ms")
        .replace("errorHandlers", "error_handlers")
        .replace("correlationKey", "correlation_key")
        .replace("durationMs", "duration_ms")
    )
    a, b = parse_definition(camel), parse_definition(snake)
    assert (a.steps, a.error_handlers, a.timeout_ms) == (b.steps, b.error_handlers, b.timeout_ms)
    assert a.steps[0].retry == RetrySpec(
        max_attempts=4, interval_ms=10, backoff_rate=3.0, max_interval_ms=500
    )
    assert some(a.step("c").event).correlation_key == "$.input.k"
    assert a.timeout_ms == 9000 and a.error_handlers[0].retry == RetrySpec(max_attempts=2)


def test_both_spellings_of_one_field_is_an_error() -> None:
    assert errors({"id": "w", "steps": [task("a", onError="a", on_error="a")]}) == [
        "steps[0]: 'onError' and 'on_error' are the same field"
    ]


def test_every_part_of_a_step_is_read() -> None:
    d = parse_definition(
        {
            "id": "w",
            "description": "all parts",
            "tags": ["x", "y"],
            "output": {"type": "object"},
            "steps": [
                task(
                    "t",
                    agent="agent-1",
                    condition="$.input.go",
                    next={
                        "expression": "$.output.n",
                        "branches": {2: "m", True: "s"},
                        "default": "w",
                    },
                    compensate={"capability": "undo", "input": {"id": "$.output.id"}, "timeout": 5},
                    onError={"action": "continue"},
                    retry={"strategy": "linear", "jitter": 0.5, "interval": 0},
                ),
                {"id": "s", "type": "subworkflow", "workflow": "child", "input": {"a": 1}},
                {
                    "id": "s2",
                    "type": "subworkflow",
                    "subworkflow": {"workflow": "child", "version": 3},
                },
                {
                    "id": "m",
                    "type": "map",
                    "map": {"items": "$.input.list", "concurrency": 2, "steps": [task("each")]},
                },
                {"id": "w", "type": "wait", "wait": {"seconds": 1.5}},
                {"id": "w2", "type": "wait", "wait": {"until": "2030-01-01T00:00:00Z"}},
                {
                    "id": "p",
                    "type": "parallel",
                    "parallel": {"policy": "partial", "branches": [{"steps": [task("in")]}]},
                },
            ],
        }
    )
    t = d.step("t")
    assert (d.description, d.tags, d.output_schema) == ("all parts", ("x", "y"), {"type": "object"})
    assert (t.agent, t.condition, t.name) == ("agent-1", "$.input.go", "t")
    assert t.next_decision is not None
    assert dict(t.next_decision.branches) == {"2": "m", "true": "s"}  # JS String() of keys
    assert t.compensate is not None and t.compensate.timeout_ms == 5
    assert t.compensate.input == {"id": "$.output.id"}
    assert t.on_error == ErrorAction("continue")
    assert t.retry == RetrySpec(strategy=RetryStrategy.LINEAR, jitter=0.5, interval_ms=0)
    assert some(d.step("s").subworkflow).workflow == "child"
    s2 = d.step("s2").subworkflow
    assert s2 is not None and (s2.workflow, s2.version) == ("child", "3")
    m = d.step("m").map
    assert m is not None and (m.items, m.concurrency, m.steps[0].id) == ("$.input.list", 2, "each")
    assert some(d.step("w").wait).duration_ms == 1500
    assert some(d.step("w2").wait).until == "2030-01-01T00:00:00Z"
    p = d.step("p").parallel
    assert p is not None and (p.policy, p.branches[0].name) == ("partial", "branches[0]")
    assert d.has_step("in") and d.has_step("each")


def test_on_error_forms() -> None:
    def on_error(value: Any) -> ErrorAction | None:
        return (
            parse_definition({"id": "w", "steps": [task("a", onError=value), task("b")]})
            .steps[0]
            .on_error
        )

    assert on_error("b") == ErrorAction("goto", "b")
    assert on_error({"next": "b"}) == ErrorAction("goto", "b")
    assert on_error({"action": "compensate"}) == ErrorAction("compensate")
    assert on_error(None) is None  # YAML `onError:` with no value


def test_the_source_is_a_copy_of_the_document() -> None:
    data = raw("data_processing")
    d = parse_definition(data)
    assert d.source == data and d.source is not data
    data["steps"][0]["input"]["command"] = "changed"
    assert d.step("fetch_data").input == {"command": "$.input.fetchCommand"}


# --- structural errors, with their locations ------------------------------------------


def project_setup_with(change: Any) -> list[str]:
    data = raw("project_setup")
    change(data)
    return errors(data)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["steps"][2].update(type="tsk"),
            "steps[2]: type must be one of task, service, subworkflow, parallel, decision, wait, event, map; got 'tsk'",
        ),
        (
            lambda d: d["steps"][0].update(retry={"maxAttempts": 0}),
            "steps[0].retry.maxAttempts: must be an integer >= 1",
        ),
        (
            lambda d: d["steps"][4].pop("capability"),
            "steps[4]: a task step needs a capability or an agent",
        ),
        (
            lambda d: d["steps"][1].update(nxt=d["steps"][1].pop("next")),
            "steps[1]: unknown field 'nxt' (did you mean 'next'?)",
        ),
        (
            lambda d: d["steps"][6]["parallel"]["branches"][1]["steps"][0].update(capability=7),
            "steps[6].parallel.branches[1].steps[0].capability: must be a string",
        ),
        (
            lambda d: d["steps"][3]["decision"]["branches"].update({"true": ""}),
            "steps[3].decision.branches.true: must be a step id",
        ),
        (
            lambda d: d["steps"][5].pop("type"),
            "steps[5]: missing required field 'type' (one of task, service, subworkflow, parallel, decision, wait, event, map)",
        ),
        (lambda d: d["steps"][5].pop("id"), "steps[5]: missing required field 'id'"),
        (lambda d: d["steps"][5].update(id=""), "steps[5].id: must be a non-empty string"),
        (lambda d: d["steps"].append("oops"), "steps[16]: must be an object"),
        (lambda d: d.update(stpes=[]), "definition: unknown field 'stpes' (did you mean 'steps'?)"),
        (lambda d: d.pop("steps"), "definition: missing required field 'steps'"),
        (lambda d: d.update(steps={}), "steps: must be a list"),
        (lambda d: d.update(tags=["a", 1]), "tags: must be a list of strings"),
        (lambda d: d.update(timeoutMs=0), "timeoutMs: must be an integer >= 1"),
        (lambda d: d.update(version=True), "version: must be a string"),
        (lambda d: d.update(input="schema"), "input: must be an object"),
        (
            lambda d: d.update(parameters={"x": {}}),
            "parameters: a template: call instantiate_template() first",
        ),
        (
            lambda d: d["errorHandlers"][0].pop("handler"),
            "errorHandlers[0]: missing required field 'handler'",
        ),
        (
            lambda d: d["errorHandlers"][0]["retry"].update(backoffRate=0.5),
            "errorHandlers[0].retry.backoffRate: must be a number >= 1",
        ),
        (
            lambda d: d["steps"][0].update(retry={"strategy": "fibonacci"}),
            "steps[0].retry.strategy: must be one of none, linear, exponential; got 'fibonacci'",
        ),
        (
            lambda d: d["steps"][0].update(retry={"jitter": 2}),
            "steps[0].retry.jitter: must be a number between 0 and 1",
        ),
        (lambda d: d["steps"][0].update(timeout=-1), "steps[0].timeout: must be an integer >= 1"),
        (lambda d: d["steps"][0].update(output="x"), "steps[0].output: must be an object"),
        (
            lambda d: d["steps"][0].update(next=3),
            "steps[0].next: must be a step id or an object {expression, branches}",
        ),
        (
            lambda d: d["steps"][0].update(next={"expresion": "$.x"}),
            "steps[0].next: unknown field 'expresion' (did you mean 'expression'?)",
        ),
        (
            lambda d: d["steps"][0].update(parallel={"branches": []}),
            "steps[0].parallel: only a parallel step takes 'parallel'; this is a task",
        ),
        (
            lambda d: d["steps"][0].update(workflow="x"),
            "steps[0].workflow: only a subworkflow step takes 'workflow'; this is a task",
        ),
        (
            lambda d: d["steps"][6]["parallel"].update(policy="some"),
            "steps[6].parallel.policy: must be one of all, partial; got 'some'",
        ),
        (
            lambda d: d["steps"][6]["parallel"]["branches"].append({"name": "x", "step": []}),
            "steps[6].parallel.branches[2]: unknown field 'step' (did you mean 'steps'?)",
        ),
        (
            lambda d: d["steps"][0].update(onError=""),
            "steps[0].onError: must be a step id or an object {action, next}",
        ),
        (
            lambda d: d["steps"][0].update(onError={"action": "goto"}),
            "steps[0].onError: action 'goto' needs next (the step to go to)",
        ),
        (
            lambda d: d["steps"][0].update(onError={"action": "fail", "next": "x"}),
            "steps[0].onError.next: only action 'goto' takes next; this is 'fail'",
        ),
        (
            lambda d: d["steps"][0].update(onError={"action": "skip"}),
            "steps[0].onError.action: must be one of goto, retry, continue, fail, compensate; got 'skip'",
        ),
        (
            lambda d: d["steps"][0].update(compensate={"input": {}}),
            "steps[0].compensate: needs a capability or an agent",
        ),
        (
            lambda d: d["steps"][0].update(operation="GET /x"),
            "steps[0].operation: only a service step takes 'operation'; this is a task",
        ),
        (
            lambda d: d["steps"][0].update(type="service", service="gh"),
            "steps[0]: a service step needs 'operation'",
        ),
        (
            lambda d: d["steps"][0].update(concurrency={"key": "$.input.repo"}),
            "steps[0].concurrency: needs limit (tasks at once per key)",
        ),
        (
            lambda d: d["steps"][0].update(rateLimit={"perSecond": 0}),
            "steps[0].rateLimit.perSecond: must be a number between 0.001 and 100000",
        ),
        (
            lambda d: d["steps"][0].update(fallback={"capability": "a", "workflow": "b"}),
            "steps[0].fallback: a fallback names exactly one of 'capability' or 'workflow'",
        ),
        (
            lambda d: d["steps"][6].update(fallback={"capability": "a"}),
            "steps[6].fallback: only a task step takes 'fallback'; this is a parallel",
        ),
        (
            lambda d: d["steps"][6].update(concurrency={"limit": 1}),
            "steps[6].concurrency: only a task or service step takes 'concurrency'; this is a parallel",
        ),
    ],
)
def test_structural_error(change: Any, expected: str) -> None:
    assert project_setup_with(change) == [expected]


def test_every_problem_is_reported_at_once() -> None:
    def change(d: dict[str, Any]) -> None:
        d["steps"][2]["type"] = "tsk"
        d["steps"][0]["retry"] = {"maxAttempts": 0, "interval": -5}
        d["steps"][4].pop("capability")
        d["steps"][1]["nxt"] = "x"

    assert project_setup_with(change) == [
        "steps[0].retry.maxAttempts: must be an integer >= 1",
        "steps[0].retry.interval: must be an integer >= 0",
        "steps[1]: unknown field 'nxt' (did you mean 'next'?)",
        "steps[2]: type must be one of task, service, subworkflow, parallel, decision, wait, event, map; got 'tsk'",
        "steps[4]: a task step needs a capability or an agent",
    ]


def test_type_specific_blocks_of_other_steps() -> None:
    def step(**fields: Any) -> list[str]:
        return errors({"id": "w", "steps": [{"id": "s", **fields}]})

    assert step(type="wait", wait={"durationMs": 1, "seconds": 1}) == [
        "steps[0].wait: give durationMs or seconds, not both"
    ]
    assert step(type="subworkflow", workflow="a", subworkflow={"workflow": "a"}) == [
        "steps[0]: give subworkflow or workflow, not both"
    ]
    assert step(
        type="map",
        map={"items": "$.input.x", "steps": [{"id": "e", "type": "task"}], "concurrency": 0},
    ) == [
        "steps[0].map.steps[0]: a task step needs a capability or an agent",
        "steps[0].map.concurrency: must be an integer >= 1",
    ]
    assert step(type="event", event={"name": "e", "timeoutMs": "soon"}) == [
        "steps[0].event.timeoutMs: must be an integer >= 1"
    ]


def test_not_an_object() -> None:
    assert errors([]) == ["definition: must be an object"]


def test_definition_error_lists_issues_one_per_line() -> None:
    e = DefinitionError([Issue("steps[0]", "bad"), Issue("steps[1].next", "worse")])
    assert str(e) == "steps[0]: bad\nsteps[1].next: worse"
    assert isinstance(e, ValueError)


# --- files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "text", "expected"),
    [
        (
            "bad.yaml",
            "id: x\nsteps:\n  - id: a\n    type: task: x\n",
            # libyaml's wording ("in this context"), else the pure-Python parser's ("here")
            "bad.yaml: line 4 column 15: mapping values are not allowed in this context",
        ),
        ("dup.yml", "id: x\nid: y\nsteps: []\n", "dup.yml: line 2 column 1: duplicate key 'id'"),
        ("bad.json", '{"id": "x",\n "steps": [}\n', "bad.json: line 2 column 12: Expecting value"),
        ("list.yaml", "- id: x\n", "list.yaml: a workflow definition must be an object"),
        ("w.txt", "id: x", "w.txt: unsupported file type '.txt' (use .json, .yaml or .yml)"),
        (
            "w.yaml",
            "id: w\nsteps:\n  - id: a\n    type: tsk\n",
            "w.yaml: steps[0]: type must be one of task, service, subworkflow, parallel, decision, wait, event, map; got 'tsk'",
        ),
    ],
)
def test_file_errors_name_the_file(tmp_path: Path, file: str, text: str, expected: str) -> None:
    (tmp_path / file).write_text(text)
    with pytest.raises(DefinitionError) as caught:
        load_definition_file(tmp_path / file)
    assert str(caught.value) in (expected, expected.replace("in this context", "here"))


def test_json_and_yaml_files_load_alike(tmp_path: Path) -> None:
    (tmp_path / "global_error_handler.json").write_text(json.dumps(raw("global_error_handler")))
    from_json = load_definition_file(tmp_path / "global_error_handler.json")
    assert from_json.steps == load("global_error_handler").steps


def test_unquoted_yaml_booleans_as_branch_keys(tmp_path: Path) -> None:
    text = (
        (WORKFLOWS / "project_setup.yaml")
        .read_text()
        .replace("'true':", "true:")
        .replace("'false':", "false:")
    )
    (tmp_path / "p.yaml").write_text(text)
    decision = load_definition_file(tmp_path / "p.yaml").step("setup_decisions").decision
    assert decision is not None
    assert dict(decision.branches) == {"true": "scaffold_project", "false": "setup_repository"}


def test_dump_round_trips_through_yaml(tmp_path: Path) -> None:
    d = load("implement_feature")
    assert dump_definition(d) == raw("implement_feature")
    (tmp_path / "again.yaml").write_text(yaml.safe_dump(dump_definition(d), sort_keys=False))
    again = load_definition_file(tmp_path / "again.yaml")
    assert (again.name, again.steps, again.input_schema) == (d.name, d.steps, d.input_schema)


def test_dump_adds_the_id_a_definition_was_defined_under() -> None:
    d = parse_definition({"name": "Display", "steps": [task("a")]}, "given")
    assert dump_definition(d) == {"id": "given", "name": "Display", "steps": [task("a")]}
    assert "id" not in d.source  # the document as written is untouched
    assert parse_definition(dump_definition(d)).name == "given"


# --- templates -------------------------------------------------------------------------

TEMPLATE: dict[str, Any] = {
    "id": "deploy_{{ env }}",
    "parameters": {
        "env": {"description": "target environment"},
        "replicas": {"default": 2},
        "notify": {"default": True},
        "services": {"default": ["api", "web"]},
    },
    "steps": [
        task(
            "deploy",
            capability="deployment",
            input={
                "environment": "{{ env }}",
                "replicas": "{{replicas}}",
                "services": "{{ services }}",
                "label": "{{ env }}-x{{ replicas }} {{ services }}",
                "path": "${$.input.root}/{{ env }}",
                "format": "{{.Id}}",
                "flags": ["{{ notify }}"],
                "{{ env }}_key": "$.input.key",
            },
        )
    ],
}


def test_template_placeholders_keep_types_or_render_as_text() -> None:
    before = copy.deepcopy(TEMPLATE)
    concrete = instantiate_template(TEMPLATE, {"env": "prod", "replicas": 3})
    assert before == TEMPLATE
    assert "parameters" not in concrete and concrete["id"] == "deploy_prod"
    assert concrete["steps"][0]["input"] == {
        "environment": "prod",
        "replicas": 3,  # a whole-string placeholder keeps the parameter's JSON type
        "services": ["api", "web"],
        "label": 'prod-x3 ["api", "web"]',
        "path": "${$.input.root}/prod",  # ${...} expressions are not placeholders
        "format": "{{.Id}}",  # nor is anything that is not {{ identifier }}
        "flags": [True],
        "prod_key": "$.input.key",
    }
    assert parse_definition(concrete).name == "deploy_prod"


def test_template_parameters_as_a_list_are_required() -> None:
    template = {"id": "{{ a }}", "parameters": ["a", "b"], "steps": [task("{{ b }}")]}
    concrete = instantiate_template(template, {"a": "w", "b": "s"})
    assert parse_definition(concrete).steps[0].id == "s"


def test_template_errors() -> None:
    template = {
        "id": "t",
        "parameters": {"env": None, "region": {"default": "eu", "type": "string"}, "bad-name": {}},
        "steps": [task("a", input={"x": "{{ evn }}", "y": ["{{ regoin }}"]})],
    }
    with pytest.raises(DefinitionError) as caught:
        instantiate_template(template, {"regions": "us"})
    assert [str(i) for i in caught.value.issues] == [
        "parameters.region: unknown field 'type'",
        "parameters: 'bad-name' is not a valid parameter name",
        "parameters: unknown parameter 'regions' (did you mean 'region'?)",
        "parameters.env: required parameter has no value",
        "steps[0].input.x: unknown parameter 'evn' (did you mean 'env'?)",
        "steps[0].input.y[0]: unknown parameter 'regoin' (did you mean 'region'?)",
    ]


def test_a_missing_parameter_used_in_text_is_reported_not_crashed_on() -> None:
    template = {"id": "w_{{ env }}", "parameters": ["env"], "steps": [task("a", input="{{ env }}")]}
    with pytest.raises(DefinitionError) as caught:
        instantiate_template(template, {})
    assert str(caught.value) == "parameters.env: required parameter has no value"
    with pytest.raises(DefinitionError, match="parameters: must be an object or a list of names"):
        instantiate_template({"id": "w", "parameters": [{"a": 1}], "steps": []}, {})


def test_a_template_without_parameters_takes_none() -> None:
    assert instantiate_template({"id": "w", "steps": []}, {}) == {"id": "w", "steps": []}
    with pytest.raises(DefinitionError, match="parameters: unknown parameter 'x'"):
        instantiate_template({"id": "w", "steps": []}, {"x": 1})
    with pytest.raises(DefinitionError, match="parameters: must be an object or a list of names"):
        instantiate_template({"id": "w", "parameters": "x", "steps": []}, {})


def test_a_template_file(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(TEMPLATE))
    concrete = instantiate_template(read_definition_file(tmp_path / "t.yaml"), {"env": "dev"})
    assert parse_definition(concrete).name == "deploy_dev"


# --- the editor schema never drifts from the parser --------------------------------------


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text())
    return loaded


def test_schema_is_draft_2020_12_with_a_described_step() -> None:
    s = schema()
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    step = s["$defs"]["step"]["properties"]
    assert step["type"]["enum"] == [
        "task",
        "service",
        "subworkflow",
        "parallel",
        "decision",
        "wait",
        "event",
        "map",
    ]
    assert all("description" in field or "$ref" in field for field in step.values())
    assert s["$defs"]["onError"]["properties"]["action"]["enum"] == [
        "goto",
        "retry",
        "continue",
        "fail",
        "compensate",
    ]
    assert s["$defs"]["retry"]["properties"]["strategy"]["enum"] == [
        "none",
        "linear",
        "exponential",
    ]
    assert s["$defs"]["parallel"]["properties"]["policy"]["enum"] == ["all", "partial"]


@pytest.mark.parametrize("kind", sorted(FIELDS))
def test_schema_lists_exactly_the_fields_the_parser_accepts(kind: str) -> None:
    s = schema()
    node = s if kind == "definition" else s["$defs"][kind]
    assert set(node["properties"]) == accepted_keys(kind)
    assert node["additionalProperties"] is False


@pytest.mark.parametrize("name", SEEDS)
def test_seed_files_are_valid_against_the_schema(name: str) -> None:
    assert validate_json_schema(raw(name), schema(), name) == []


def test_schema_rejects_what_the_parser_rejects() -> None:
    data = raw("project_setup")
    data["steps"][2]["type"] = "tsk"
    data["steps"][1]["nxt"] = "x"
    data["steps"][0]["retry"] = {"maxAttempts": 0}
    assert [str(i) for i in validate_json_schema(data, schema(), "doc")] == [
        "doc.steps[0].retry.maxAttempts: must be >= 1",
        "doc.steps[1].nxt: unknown property (did you mean 'next'?)",
        "doc.steps[2].type: must be one of "
        "['task', 'service', 'subworkflow', 'parallel', 'decision', 'wait', 'event', 'map']",
    ]
