"""The seed's workflows on a real coordinator with SDK agents, every branch and error route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from agent_sdk import (
    Agent,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    Task,
    TaskError,
)
from agentmesh.v1 import workflow_pb2, workflow_pb2_grpc
from coordinator.server import Coordinator
from tests.conftest import eventually, fast_settings

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"

SETUP_INPUT = {
    "requirements": "Build a React dashboard application with TypeScript",
    "constraints": "Must use React 18 and TypeScript 4.5+",
    "priority": "high",
    "projectName": "dashboard-app",
}


@dataclass
class Script:
    """What the scripted agents answer; every call is recorded."""

    requires_scaffolding: bool = True
    issues: list[str] = field(default_factory=list)
    tests_pass: bool = True
    fail: dict[str, int] = field(default_factory=dict)  # capability -> failures before success
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def count(self, capability: str) -> int:
        return sum(1 for c, _ in self.calls if c == capability)


def seed_agent(address: str, script: Script) -> Agent:
    agent = Agent("seed", address, max_concurrency=8, reconnect_max=0.5)

    def handler(cap: str, result: Any) -> None:
        async def run(task: Task) -> Any:
            script.calls.append((cap, task.input))
            left = script.fail.get(cap, 0)
            if left:
                script.fail[cap] = left - 1
                raise TaskError(f"{cap} failed on purpose", type="CommandFailed")
            return result(task) if callable(result) else result

        agent.add_capability(cap, run)

    handler("project_analysis", lambda t: {"summary": t.input["requirements"]})
    handler(
        "task_planning",
        lambda t: {
            "requiresScaffolding": script.requires_scaffolding,
            "projectType": "react-typescript",
            "scaffoldingOptions": {"typescript": True},
            "coreComponents": ["Dashboard"],
            "utilityComponents": ["format"],
            "tasks": ["a", "b"],
            "specifications": {"uiComponents": ["Login"], "dataServices": ["AuthService"]},
        },
    )
    handler("page_operations", lambda t: {"url": f"file:///pages/{len(script.calls)}.md"})
    handler("project_scaffolding", lambda t: {"path": f"/tmp/{t.input['name']}"})
    handler("git_operations", lambda t: {"url": "file:///repo.git", "hash": "abc123"})
    handler(
        "component_generation",
        lambda t: {
            "files": t.input.get("components"),
            "result": {"transformed": t.input.get("data")},
        },
    )
    handler("code_linting", lambda t: {"issues": list(script.issues)})
    handler("code_transformation", {"fixed": True})
    handler("test_execution", lambda t: {"passed": script.tests_pass, "total": 3})
    handler("performance_optimization", {"optimizations": []})
    handler("documentation_review", {"ok": True})
    handler("deployment", {"url": "file:///deploy/dev"})
    handler(
        "command_execution", lambda t: {"result": f"ran {t.input.get('command')}", "exitCode": 0}
    )
    handler("file_operations", lambda t: {"path": t.input.get("path")})

    async def slow(task: Task) -> None:
        script.calls.append(("slow", task.input))
        await asyncio.sleep(30)

    agent.add_capability("slow", slow)
    return agent


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[tuple[Coordinator, Client, Script]]:
    c = Coordinator(fast_settings(state_persistence="sqlite", store_path=str(tmp_path / "am.db")))
    await c.start()
    script = Script()
    agent = seed_agent(c.address, script)
    serving = asyncio.create_task(agent.serve())
    await agent.wait_connected(10)
    client = Client(c.address, timeout=10)
    try:
        for f in sorted(WORKFLOWS.glob("*.yaml")):
            await client.load_workflow(f)
        yield c, client, script
    finally:
        await client.close()
        await agent.shutdown(grace=1)
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        await c.stop(grace=1)


async def steps_taken(client: Client, execution_id: str) -> list[str]:
    return [
        e.step_id
        for e in await client.get_execution_history(execution_id)
        if e.type == "step.completed"
    ]


@pytest.mark.parametrize(
    ("scaffold", "issues", "passed", "expected"),
    [
        (
            True,
            [],
            True,
            [
                "analyze_requirements",
                "create_plan",
                "document_plan",
                "setup_decisions",
                "scaffold_project",
                "setup_repository",
                "generate_core",
                "generate_utils",
                "generate_components",
                "review_code",
                "handle_review_results",
                "run_tests",
                "check_test_results",
                "optimize_performance",
                "document_project",
                "deploy_project",
            ],
        ),
        (
            False,
            ["E501"],
            False,
            [
                "analyze_requirements",
                "create_plan",
                "document_plan",
                "setup_decisions",
                "setup_repository",
                "generate_core",
                "generate_utils",
                "generate_components",
                "review_code",
                "handle_review_results",
                "fix_issues",
                "run_tests",
                "check_test_results",
                "fix_test_failures",
                "optimize_performance",
                "document_project",
                "deploy_project",
            ],
        ),
    ],
)
async def test_project_setup_takes_the_branches_the_plan_implies(
    mesh: tuple[Coordinator, Client, Script],
    scaffold: bool,
    issues: list[str],
    passed: bool,
    expected: list[str],
) -> None:
    _, client, script = mesh
    script.requires_scaffolding, script.issues, script.tests_pass = scaffold, issues, passed
    e = await client.start_workflow("project_setup", {**SETUP_INPUT, "projectPath": "/srv/app"})
    done = await client.wait_execution(e.id, timeout=30)
    assert done.status == "completed", done.error
    taken = await steps_taken(client, e.id)
    # parallel branches finish in either order
    assert sorted(taken) == sorted(expected)
    assert taken.index("generate_components") > max(
        taken.index("generate_core"), taken.index("generate_utils")
    )
    assert done.variables["deploymentUrl"] == "file:///deploy/dev"
    assert done.variables["documentUrl"].startswith("file:///pages/")
    repo_input = next(i for c, i in script.calls if c == "git_operations")
    # `$.variables.projectPath || $.input.projectPath`
    assert repo_input["path"] == ("/tmp/dashboard-app" if scaffold else "/srv/app")
    assert repo_input["initialize"] is True
    assert done.metrics["completedSteps"] == len(expected)


async def test_implement_feature_runs_branches_in_parallel(
    mesh: tuple[Coordinator, Client, Script],
) -> None:
    _, client, script = mesh
    e = await client.start_workflow(
        "implement_feature",
        {
            "feature": "User Authentication",
            "projectPath": "/srv/app",
            "constraints": {"authorization": "JWT"},
        },
    )
    done = await client.wait_execution(e.id, timeout=30)
    assert done.status == "completed", done.error
    gen = [i for c, i in script.calls if c == "component_generation"]
    assert sorted(i["path"] for i in gen) == ["/srv/app/src/components", "/srv/app/src/services"]
    commit = next(i for c, i in script.calls if c == "git_operations")
    assert commit["commitMessage"] == "Feature: User Authentication"
    assert done.variables["commitHash"] == "abc123"


async def _data_processing(client: Client, **overrides: Any) -> Any:
    base = yaml.safe_load((WORKFLOWS / "data_processing.yaml").read_text())
    for step in base["steps"]:
        if step.get("retry"):
            step["retry"]["interval"] = 10  # the seed's 1 s backoff, scaled for the test
    base["id"] = "data_processing_fast"
    await client.define_workflow("data_processing_fast", base)
    return await client.start_workflow(
        "data_processing_fast",
        {
            "fetchCommand": "cat data.csv",
            "backupFetchCommand": "cat backup.csv",
            "transformations": ["upper"],
            "fallbackTransformations": ["noop"],
            "outputPath": "/tmp/out.json",
            "notificationEmail": "ops@example.com",
            **overrides,
        },
    )


async def test_data_processing_happy_path(mesh: tuple[Coordinator, Client, Script]) -> None:
    _, client, script = mesh
    e = await _data_processing(client)
    done = await client.wait_execution(e.id, timeout=30)
    assert done.status == "completed"
    assert await steps_taken(client, e.id) == [
        "fetch_data",
        "transform_data",
        "save_results",
        "send_notification",
    ]
    assert script.count("command_execution") == 2


async def test_fetch_failing_past_its_retries_uses_the_backup(
    mesh: tuple[Coordinator, Client, Script],
) -> None:
    _, client, script = mesh
    script.fail["command_execution"] = 5  # every one of fetch_data's 5 attempts
    e = await _data_processing(client)
    done = await client.wait_execution(e.id, timeout=30)
    assert done.status == "completed"
    taken = await steps_taken(client, e.id)
    assert taken[:3] == ["handle_fetch_error", "use_backup_data", "transform_data"]
    assert done.metrics["retryCount"] == 4
    report = next(i for c, i in script.calls if c == "page_operations")
    assert report["step"] == "fetch_data" and report["error"]["type"] == "CommandFailed"
    assert report["error"]["stepId"] == "fetch_data"


async def test_transform_and_save_failures_take_their_routes(
    mesh: tuple[Coordinator, Client, Script],
) -> None:
    _, client, script = mesh
    script.fail["component_generation"] = 1
    script.fail["file_operations"] = 1
    e = await _data_processing(client)
    done = await client.wait_execution(e.id, timeout=30)
    assert done.status == "completed"
    assert await steps_taken(client, e.id) == [
        "fetch_data",
        "log_transform_error",
        "use_simple_transform",
        "handle_save_error",
        "send_error_notification",
    ]
    save_error = [i for c, i in script.calls if c == "command_execution"][-2]
    assert save_error["command"].endswith("> /tmp/out.json.error.log")


async def test_unhandled_failure_runs_the_global_error_handler(
    mesh: tuple[Coordinator, Client, Script],
) -> None:
    _, client, script = mesh
    script.fail["command_execution"] = 6  # fetch (5 attempts) and then the backup fetch
    e = await _data_processing(client)
    done = await client.wait_execution(e.id, timeout=30)
    assert done.status == "failed" and done.error is not None
    assert done.error.type == "CommandFailed"
    history = await client.get_execution_history(e.id)
    handler = next(x for x in history if x.type == "errorhandler.started")
    assert handler.data["workflow"] == "global_error_handler"
    log_call = [i for c, i in script.calls if c == "page_operations"][-1]
    assert log_call["workflow"] == "data_processing_fast"
    assert log_call["execution"] == e.id and log_call["step"] == "use_backup_data"
    notify = [i for c, i in script.calls if c == "command_execution"][-1]
    assert (
        "Critical error in workflow data_processing_fast at step use_backup_data"
        in (notify["command"])
    )


async def test_project_setup_failures_are_logged_by_the_shipped_log_error_to_notion(
    mesh: tuple[Coordinator, Client, Script],
) -> None:
    """The seed names log_error_to_notion as project_setup's error handler but never
    defines it; the shipped one logs the error as a page, once (no retries of a handler
    that does not exist)."""
    _, client, script = mesh
    script.fail["project_analysis"] = 1_000
    e = await client.start_workflow("project_setup", SETUP_INPUT)
    done = await client.wait_execution(e.id, timeout=30)
    assert done.status == "failed" and done.error is not None
    history = await client.get_execution_history(e.id)
    handlers = [x for x in history if x.type == "errorhandler.started"]
    assert [h.data["workflow"] for h in handlers] == ["log_error_to_notion"]
    logged = [i for c, i in script.calls if c == "page_operations" and "error" in i]
    assert len(logged) == 1, logged
    assert logged[0]["workflow"] == "project_setup" and logged[0]["execution"] == e.id
    assert logged[0]["step"] == "analyze_requirements" and logged[0]["severity"] == "high"
    assert logged[0]["error"]["type"] == "CommandFailed"
    [ran] = await client.list_executions("log_error_to_notion")
    finished = await client.wait_execution(ran.id, timeout=10)
    assert finished.status == "completed" and finished.variables["errorPage"]["url"]


async def test_pause_resume_and_stop(mesh: tuple[Coordinator, Client, Script]) -> None:
    _, client, script = mesh
    await client.define_workflow(
        "approval",
        {
            "steps": [
                {
                    "id": "ask",
                    "name": "ask",
                    "type": "event",
                    "event": {"name": "approved", "correlationKey": "$.input.order"},
                    "output": {"by": "$.output.by"},
                    "next": "ship",
                },
                {"id": "ship", "name": "ship", "type": "task", "capability": "deployment"},
            ]
        },
    )
    e = await client.start_workflow("approval", {"order": "o-1"})
    assert (
        await client.trigger_event("approved", {"by": "x"}, correlation_key="o-2")
    ).delivered == 0
    paused = await client.pause_workflow(e.id)
    assert paused.status == "paused"
    assert (
        await client.trigger_event("approved", {"by": "ana"}, correlation_key="o-1")
    ).delivered == 1
    # trigger_event returns once the event's turn is applied and committed: that turn
    # completed "ask" and, paused, did not start "ship" (it would be in the same turn).
    history = [(x.type, x.step_id) for x in await client.get_execution_history(e.id)]
    assert ("step.completed", "ask") in history, history
    assert ("step.started", "ship") not in history, "no new step starts while paused"
    assert script.count("deployment") == 0
    await client.resume_workflow(e.id, {"note": "go"})
    done = await client.wait_execution(e.id, timeout=10)
    assert done.status == "completed" and done.variables == {"by": "ana", "note": "go"}

    e2 = await client.start_workflow("approval", {"order": "o-3"})
    stopped = await client.stop_workflow(e2.id, "not needed")
    assert stopped.status == "cancelled"
    assert (await client.trigger_event("approved", {}, correlation_key="o-3")).delivered == 0
    active = await client.list_active_executions()
    assert e2.id not in [a["id"] for a in active]


async def test_bad_definitions_and_inputs_are_refused_precisely(
    mesh: tuple[Coordinator, Client, Script],
) -> None:
    _, client, _ = mesh
    bad = yaml.safe_load((WORKFLOWS / "project_setup.yaml").read_text())
    bad["id"] = "broken"
    bad["steps"][3]["decision"]["branches"]["true"] = "scafold_project"
    with pytest.raises(InvalidArgumentError) as info:
        await client.define_workflow("broken", bad)
    assert "steps[3].decision.branches.true: unknown step 'scafold_project'" in str(info.value)
    result = await client.validate_workflow(bad)
    assert not result.valid
    assert any(i.location == "steps[3].decision.branches.true" for i in result.issues)
    with pytest.raises(InvalidArgumentError, match="input"):
        await client.start_workflow("project_setup", {"priority": "urgent"})
    with pytest.raises(NotFoundError, match="workflow 'nope' is not defined"):
        await client.start_workflow("nope", {})
    with pytest.raises(NotFoundError):
        await client.get_execution_status("missing")


async def test_versions_keep_running_executions_on_their_definition(
    mesh: tuple[Coordinator, Client, Script],
) -> None:
    _, client, _ = mesh
    v1 = {
        "steps": [
            {"id": "wait", "name": "w", "type": "event", "event": {"name": "go"}, "next": "a"},
            {"id": "a", "name": "a", "type": "task", "capability": "deployment"},
        ]
    }
    info1 = await client.define_workflow("versioned", v1)
    e = await client.start_workflow("versioned", {})
    v2 = {
        "steps": [
            {"id": "wait", "name": "w", "type": "event", "event": {"name": "go"}, "next": "b"},
            {"id": "b", "name": "b", "type": "task", "capability": "documentation_review"},
        ]
    }
    info2 = await client.define_workflow("versioned", v2)
    assert (info1.version, info2.version) == ("1", "2")
    await client.trigger_event("go")
    done = await client.wait_execution(e.id, timeout=10)
    assert done.workflow_version == "1"
    assert await steps_taken(client, e.id) == ["wait", "a"]
    listed = {w.name: w for w in await client.list_workflows()}
    assert listed["versioned"].versions == ["1", "2"]


async def test_concurrency_limit_queues_executions_in_order(tmp_path: Path) -> None:
    c = Coordinator(fast_settings(concurrency_limit=1))
    await c.start()
    try:
        async with Client(c.address) as client:
            await client.define_workflow(
                "gate",
                {"steps": [{"id": "g", "name": "g", "type": "event", "event": {"name": "open"}}]},
            )
            first = await client.start_workflow("gate", {})
            second = await client.start_workflow("gate", {})
            assert (first.status, second.status) == ("running", "queued")
            assert (await client.trigger_event("open")).delivered == 1
            await client.wait_execution(first.id, timeout=5)
            await eventually(lambda: _status(client, second.id, "running"), timeout=5)
            assert (await client.trigger_event("open")).delivered == 1
            assert (await client.wait_execution(second.id, timeout=5)).status == "completed"
    finally:
        await c.stop(grace=1)


async def test_start_workflow_has_backpressure(tmp_path: Path) -> None:
    """Beyond maxQueuedExecutions StartWorkflow is refused, while control calls and
    events are always served."""
    c = Coordinator(fast_settings(concurrency_limit=1, max_queued_executions=2))
    await c.start()
    try:
        async with Client(c.address) as client:
            gate = {"steps": [{"id": "g", "type": "event", "event": {"name": "open"}}]}
            await client.define_workflow("gate", gate)
            flood = await asyncio.gather(
                *(client.start_workflow("gate", {}) for _ in range(50)), return_exceptions=True
            )
            accepted = [e for e in flood if not isinstance(e, BaseException)]
            refused = [e for e in flood if isinstance(e, BaseException)]
            assert sorted(e.status for e in accepted) == ["queued", "queued", "running"]
            assert len(refused) == 47
            assert all(isinstance(e, ResourceExhaustedError) for e in refused)
            assert "2 executions are queued behind concurrencyLimit 1 (maxQueuedExecutions 2)" in (
                str(refused[0])
            )
            queued = [e for e in accepted if e.status == "queued"]
            assert (await client.stop_workflow(queued[0].id)).status == "cancelled"
            again = await client.start_workflow("gate", {})  # a queue slot freed up
            assert again.status == "queued"
            assert (await client.trigger_event("open")).delivered == 1
    finally:
        await c.stop(grace=1)


async def _status(client: Client, execution_id: str, status: str) -> bool:
    return (await client.get_execution_status(execution_id)).status == status


async def test_capability_no_agent_has_is_a_warning(
    mesh: tuple[Coordinator, Client, Script],
) -> None:
    _, client, _ = mesh
    result = await client.validate_workflow(
        {"id": "t", "steps": [{"id": "x", "name": "x", "type": "task", "capability": "teleport"}]}
    )
    assert result.valid
    assert [i.severity for i in result.issues] == ["warning"]
    assert "teleport" in result.issues[0].message
    with pytest.raises(FailedPreconditionError):
        await client.assign_task("teleport", {})


async def test_templates_are_instantiated_with_parameters(
    mesh: tuple[Coordinator, Client, Script],
) -> None:
    _, client, script = mesh
    template = {
        "id": "deploy_template",
        "parameters": {"environment": {"default": "staging"}, "retries": {}},
        "steps": [
            {
                "id": "deploy",
                "name": "Deploy to {{ environment }}",
                "type": "task",
                "capability": "deployment",
                "input": {"environment": "{{ environment }}", "attempts": "{{ retries }}"},
            }
        ],
    }
    info = await client.define_workflow(
        "deploy_prod", template, {"environment": "production", "retries": 2}
    )
    assert info.name == "deploy_prod"
    e = await client.start_workflow("deploy_prod", {})
    assert (await client.wait_execution(e.id, timeout=10)).status == "completed"
    sent = next(i for c, i in script.calls if c == "deployment")
    assert sent == {"environment": "production", "attempts": 2}
    with pytest.raises(InvalidArgumentError, match="retries"):
        await client.define_workflow("deploy_bad", template, {})


async def test_workflow_dir_is_loaded_at_start(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    for f in WORKFLOWS.glob("*.yaml"):
        (tmp_path / "flows" / f.name).write_text(f.read_text())
    c = Coordinator(fast_settings(workflow_dir=str(tmp_path / "flows")))
    await c.start()
    try:
        async with Client(c.address) as client:
            names = sorted(w.name for w in await client.list_workflows())
            assert names == [
                "data_processing",
                "global_error_handler",
                "implement_feature",
                "log_error_to_notion",
                "project_setup",
            ]
            saved = await client.save_workflow("project_setup", path="copy.yaml")
            assert Path(saved) == (tmp_path / "flows" / "copy.yaml").resolve()
            text = await asyncio.to_thread(Path(saved).read_text)
            assert yaml.safe_load(text)["id"] == "project_setup"
            with pytest.raises(InvalidArgumentError, match="outside the workflow directory"):
                await client.save_workflow("project_setup", path="../escape.yaml")
            # paths the file system refuses get the status that says why, never INTERNAL
            long = "x" * 300 + ".yaml"
            bad = [
                ("a\x00b.yaml", InvalidArgumentError, "contains control characters"),
                (long, InvalidArgumentError, "File name too long"),
                (".", InvalidArgumentError, "Is a directory"),
                ("missing/flow.yaml", NotFoundError, "No such file or directory"),
            ]
            async with grpc.aio.insecure_channel(c.address) as channel:
                stub = workflow_pb2_grpc.WorkflowServiceStub(channel)
                for path, error, message in bad:
                    with pytest.raises(grpc.aio.AioRpcError) as refused:
                        await stub.LoadWorkflow(workflow_pb2.LoadWorkflowRequest(path=path))
                    assert refused.value.code() == error.code, (path, refused.value.details())
                    assert message in (refused.value.details() or ""), path
                    with pytest.raises(error, match=message):
                        await client.save_workflow("project_setup", path=path)
    finally:
        await c.stop(grace=1)


async def test_a_task_cancelled_by_an_operator_fails_its_step(
    mesh: tuple[Coordinator, Client, Script],
) -> None:
    _, client, script = mesh
    await client.define_workflow(
        "long",
        {
            "id": "long",
            "steps": [{"id": "wait_long", "name": "w", "type": "task", "capability": "slow"}],
        },
    )
    e = await client.start_workflow("long", {})
    await eventually(lambda: script.count("slow") == 1, timeout=5)
    running = await client.list_tasks(status="running")
    assert [t.execution_id for t in running] == [e.id]
    await client.cancel_task(running[0].id, "operator gave up")
    done = await client.wait_execution(e.id, timeout=10)
    assert done.status == "failed" and done.error is not None
    assert (done.error.type, done.error.message) == ("CANCELLED", "operator gave up")


async def test_start_idempotency_outlives_the_coordinator(tmp_path: Path) -> None:
    """A client that retries StartWorkflow after a restart (or a failover) gets the
    execution it started, even one that finished meanwhile: the key is in the store."""
    settings = fast_settings(state_persistence="sqlite", store_path=str(tmp_path / "am.db"))
    flow = {"id": "tick", "steps": [{"id": "w", "type": "wait", "wait": {"durationMs": 10}}]}
    first = Coordinator(settings)
    await first.start()
    try:
        async with Client(first.address) as client:
            await client.define_workflow("tick", flow)
            started = await client.start_workflow("tick", {}, idempotency_key="order-7")
            assert (await client.wait_execution(started.id, timeout=10)).status == "completed"
            again = await client.start_workflow("tick", {}, idempotency_key="order-7")
            assert again.id == started.id
    finally:
        await first.stop(grace=1)
    second = Coordinator(settings)
    await second.start()
    try:
        async with Client(second.address) as client:
            again = await client.start_workflow("tick", {}, idempotency_key="order-7")
            assert again.id == started.id and again.status == "completed"
            other = await client.start_workflow("tick", {}, idempotency_key="order-8")
            assert other.id != started.id
            assert len(await client.list_active_executions()) <= 1
    finally:
        await second.stop(grace=1)
