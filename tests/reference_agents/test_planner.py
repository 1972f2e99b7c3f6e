"""The planner agent: analysis, planning, timelines and specs through ``run_task``.

The planner reads no paths, so it has no PathOutsideWorkspace case.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agent_sdk.testing import TaskOutcome, run_task
from agentmesh.agents.planner import Analysis, Plan, RuleBasedBrain, create

DEMO = {
    "requirements": "Build a React dashboard application with TypeScript",
    "constraints": "Must use React 18 and TypeScript 4.5+",
}
AUTH = {
    "feature": "User Authentication",
    "constraints": {
        "authorization": "JWT",
        "storage": "Local storage",
        "framework": "React with hooks",
    },
}


async def run(tmp_path: Path, capability: str, input: dict[str, Any]) -> TaskOutcome:
    return await run_task(create(None, workspace=tmp_path / "ws"), capability, input)


async def ok(tmp_path: Path, capability: str, input: dict[str, Any]) -> Any:
    result = await run(tmp_path, capability, input)
    assert result.error is None, result.error
    return result.output


def names(components: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in components]


def assert_ordered(tasks: list[dict[str, Any]]) -> None:
    """Ids are unique and every dependency comes earlier in the list."""
    seen: set[str] = set()
    for t in tasks:
        assert t["id"] not in seen and set(t["dependsOn"]) <= seen, t
        assert t["estimateHours"] > 0
        seen.add(t["id"])


def test_create_registers_exactly_the_four_seed_capabilities(tmp_path: Path) -> None:
    agent = create(None, workspace=tmp_path / "ws")
    assert (agent.name, agent.type) == ("planner", "planner")
    assert sorted(agent.capabilities) == [
        "project_analysis",
        "specification_generation",
        "task_planning",
        "timeline_creation",
    ]
    assert (tmp_path / "ws").is_dir()


async def test_analysis_of_the_demo_input(tmp_path: Path) -> None:
    out = await ok(tmp_path, "project_analysis", DEMO)
    assert out["projectType"] == "react-typescript"
    assert (out["language"], out["framework"]) == ("typescript", "react")
    assert out["versions"] == {"react": "18", "typescript": "4.5+"}
    assert out["features"] == ["dashboard"]
    assert out["complexity"] == "medium"
    assert out["existingProject"] is False
    assert any("typescript 4.5+" in r for r in out["risks"])
    assert "react-typescript" in out["summary"]


@pytest.mark.parametrize(
    ("requirements", "project_type", "features"),
    [
        ("A React app with a login form and charts", "react", ["auth", "charts", "forms"]),
        ("A Python CLI that exports a Postgres database", "python-package", ["cli", "storage"]),
        ("A REST API in Node.js with Express 4", "node-service", ["api"]),
        ("A landing page for our bakery", "static-site", []),
    ],
)
async def test_analysis_detects_project_type_and_features(
    tmp_path: Path, requirements: str, project_type: str, features: list[str]
) -> None:
    out = await ok(tmp_path, "project_analysis", {"requirements": requirements})
    assert out["projectType"] == project_type
    assert out["features"] == features


async def test_analysis_accepts_constraints_as_list_or_object(tmp_path: Path) -> None:
    listed = await ok(
        tmp_path,
        "project_analysis",
        {"requirements": "A web app", "constraints": ["React 18", "TypeScript 5"]},
    )
    assert listed["versions"] == {"react": "18", "typescript": "5"}
    assert listed["projectType"] == "react-typescript"
    keyed = await ok(
        tmp_path,
        "project_analysis",
        {"requirements": "Extend the existing app", "constraints": {"python": "3.11"}},
    )
    assert keyed["versions"] == {"python": "3.11"} and keyed["existingProject"] is True


@pytest.mark.parametrize(
    "input",
    [{}, {"requirements": "   "}, {"requirements": 42}, {"requirements": "x", "constraints": 3}],
)
async def test_analysis_rejects_bad_input(tmp_path: Path, input: dict[str, Any]) -> None:
    result = await run(tmp_path, "project_analysis", input)
    assert result.error is not None and result.error.type == "BadInput"


async def test_planning_a_new_react_dashboard(tmp_path: Path) -> None:
    analysis = await ok(tmp_path, "project_analysis", DEMO)
    plan = await ok(tmp_path, "task_planning", {"analysis": analysis, "priority": "high"})
    assert plan["requiresScaffolding"] is True
    assert plan["projectType"] == "react-typescript"
    assert plan["priority"] == "high"
    options = plan["scaffoldingOptions"]
    assert (
        options["typescript"]
        is options["react"]
        is options["testing"]
        is options["linting"]
        is True
    )
    assert options["versions"] == {"react": "18", "typescript": "4.5+"}
    assert names(plan["coreComponents"]) == ["Dashboard", "Header", "Sidebar", "StatCard"]
    assert all(c["kind"] == "component" and "props" in c for c in plan["coreComponents"])
    assert names(plan["utilityComponents"]) == ["formatNumber", "formatDate"]
    assert plan["utilityComponents"][0]["kind"] == "utility"
    assert names(plan["specifications"]["uiComponents"]) == names(plan["coreComponents"])
    assert names(plan["specifications"]["dataServices"]) == ["MetricsService"]
    tasks = plan["tasks"]
    assert_ordered(tasks)
    assert tasks[0]["id"] == "setup" and tasks[-1]["id"] == "deploy"
    assert {"component-dashboard", "utility-formatnumber", "tests"} <= {t["id"] for t in tasks}
    assert plan["totalHours"] == sum(t["estimateHours"] for t in tasks)
    again = await ok(tmp_path, "task_planning", {"analysis": analysis, "priority": "high"})
    assert again == plan  # deterministic


async def test_planning_for_an_existing_project_skips_scaffolding(tmp_path: Path) -> None:
    analysis = await ok(
        tmp_path, "project_analysis", {"requirements": "Add charts to the existing React app"}
    )
    plan = await ok(tmp_path, "task_planning", {"analysis": analysis})
    assert plan["requiresScaffolding"] is False
    assert plan["tasks"][0]["title"] == "Review the existing project setup"
    assert plan["priority"] == "medium"
    assert "ChartPanel" in names(plan["coreComponents"])


async def test_planning_a_feature(tmp_path: Path) -> None:
    plan = await ok(tmp_path, "task_planning", AUTH)
    assert plan["requiresScaffolding"] is False
    assert plan["projectType"] == "react"
    specs = plan["specifications"]
    assert names(specs["uiComponents"]) == ["LoginForm", "ProtectedRoute", "LogoutButton"]
    assert names(specs["dataServices"]) == ["AuthService", "TokenStorage"]
    assert "login" in specs["dataServices"][0]["methods"]
    assert specs["feature"] == "User Authentication"
    assert any("JWT" in c for c in specs["acceptanceCriteria"])
    assert names(plan["utilityComponents"]) == ["useAuth"]
    assert_ordered(plan["tasks"])
    assert plan["tasks"][0]["id"] == "design"
    assert "service-authservice" in plan["tasks"][-3]["dependsOn"]  # integrate waits for it


async def test_planning_a_feature_outside_the_vocabulary(tmp_path: Path) -> None:
    plan = await ok(tmp_path, "task_planning", {"feature": "Export reports to PDF"})
    specs = plan["specifications"]
    assert names(specs["uiComponents"]) == ["ExportReportsToPdfView"]
    assert names(specs["dataServices"]) == ["ExportReportsToPdfService"]
    assert names(plan["coreComponents"]) == ["ExportReportsToPdfView"]
    python = await ok(
        tmp_path, "task_planning", {"feature": "Add a CLI", "constraints": "Python 3.11"}
    )
    assert python["projectType"] == "python-package"
    assert python["specifications"]["uiComponents"] == []
    assert names(python["coreComponents"]) == ["AddACliService"]
    assert python["tasks"][-3]["dependsOn"] == ["service-addacliservice"]


@pytest.mark.parametrize(
    "input",
    [
        {},
        {"priority": "high"},
        {"analysis": "react", "priority": "high"},
        {"analysis": {"projectType": "cobol"}},
        {"analysis": {"projectType": "react", "features": "dashboard"}},
        {"analysis": {"projectType": "react"}, "priority": "urgent"},
        {"feature": ""},
        {"feature": "Login", "constraints": 7},
    ],
)
async def test_planning_rejects_bad_input(tmp_path: Path, input: dict[str, Any]) -> None:
    result = await run(tmp_path, "task_planning", input)
    assert result.error is not None and result.error.type == "BadInput", result


async def test_timeline_respects_dependencies_and_skips_weekends(tmp_path: Path) -> None:
    tasks = [
        {"id": "a", "title": "A", "estimateHours": 6, "dependsOn": []},
        {"id": "b", "title": "B", "estimateHours": 3, "dependsOn": ["a"]},
        {"id": "c", "title": "C", "estimateHours": 3, "dependsOn": ["a"]},
        {"id": "d", "title": "D", "estimateHours": 6, "dependsOn": ["b", "c"]},
    ]
    # 2025-01-03 is a Friday.
    out = await ok(tmp_path, "timeline_creation", {"tasks": tasks, "startDate": "2025-01-03"})
    rows = {r["id"]: r for r in out["schedule"]}
    assert (rows["a"]["start"], rows["a"]["end"]) == ("2025-01-03", "2025-01-03")
    assert (rows["b"]["start"], rows["c"]["end"]) == ("2025-01-06", "2025-01-06")
    assert (rows["d"]["start"], rows["d"]["end"]) == ("2025-01-07", "2025-01-07")
    assert out["endDate"] == "2025-01-07"
    assert (out["totalDays"], out["totalHours"], out["makespanHours"]) == (3, 18, 18)
    assert out["criticalPath"] == ["a", "b", "d"]
    two = await ok(
        tmp_path,
        "timeline_creation",
        {"tasks": tasks, "startDate": "2025-01-03", "workers": 2, "hoursPerDay": 3},
    )
    rows = {r["id"]: r for r in two["schedule"]}
    assert rows["b"]["startHour"] == rows["c"]["startHour"] == 6  # in parallel
    assert {rows["b"]["worker"], rows["c"]["worker"]} == {1, 2}
    assert two["makespanHours"] == 15 and two["totalDays"] == 5


async def test_timeline_of_a_planned_project(tmp_path: Path) -> None:
    analysis = await ok(tmp_path, "project_analysis", DEMO)
    plan = await ok(tmp_path, "task_planning", {"analysis": analysis, "priority": "high"})
    out = await ok(tmp_path, "timeline_creation", {"tasks": plan["tasks"], "workers": 3})
    ends = {r["id"]: r["endHour"] for r in out["schedule"]}
    for r in out["schedule"]:
        assert all(ends[d] <= r["startHour"] for d in r["dependsOn"])
    assert len(out["schedule"]) == len(plan["tasks"])
    assert date.fromisoformat(out["endDate"]) >= date.fromisoformat(out["startDate"])
    assert out["criticalPath"][0] == "setup" and out["criticalPath"][-1] == "deploy"


@pytest.mark.parametrize(
    "input",
    [
        {},
        {"tasks": "all"},
        {"tasks": [{"id": "a"}]},
        {"tasks": [{"id": "a", "estimateHours": -1}]},
        {"tasks": [{"id": "a", "estimateHours": 1, "dependsOn": ["zz"]}]},
        {"tasks": [{"id": "a", "estimateHours": 1}, {"id": "a", "estimateHours": 2}]},
        {
            "tasks": [
                {"id": "a", "estimateHours": 1, "dependsOn": ["b"]},
                {"id": "b", "estimateHours": 1, "dependsOn": ["a"]},
            ]
        },
        {"tasks": [], "startDate": "next monday"},
        {"tasks": [], "hoursPerDay": 0},
        {"tasks": [], "workers": 0},
    ],
)
async def test_timeline_rejects_bad_input(tmp_path: Path, input: dict[str, Any]) -> None:
    result = await run(tmp_path, "timeline_creation", input)
    assert result.error is not None and result.error.type == "BadInput", result


async def test_specification_from_a_feature_plan(tmp_path: Path) -> None:
    plan = await ok(tmp_path, "task_planning", AUTH)
    spec = await ok(tmp_path, "specification_generation", {"plan": plan})
    assert spec["title"] == "Specification: User Authentication"
    assert names(spec["components"]) == ["LoginForm", "ProtectedRoute", "LogoutButton"]
    assert spec["components"][0]["props"][0]["name"] == "onSubmit"
    assert names(spec["services"]) == ["AuthService", "TokenStorage"]
    assert {m["name"] for m in spec["services"][0]["methods"]} >= {"login", "logout"}
    assert spec["acceptanceCriteria"] == plan["specifications"]["acceptanceCriteria"]
    assert "authorization: JWT" in spec["constraints"]


async def test_specification_from_requirements(tmp_path: Path) -> None:
    spec = await ok(tmp_path, "specification_generation", DEMO)
    assert spec["projectType"] == "react-typescript"
    assert "StatCard" in names(spec["components"])
    assert names(spec["services"]) == ["MetricsService"]
    assert names(spec["utilities"]) == ["formatNumber", "formatDate"]
    assert len(spec["acceptanceCriteria"]) >= 2


@pytest.mark.parametrize(
    "input",
    [
        {},
        {"requirements": ""},
        {"plan": []},
        {"plan": {"projectType": "react", "coreComponents": "Dashboard"}},
        {"plan": {"projectType": "react", "coreComponents": [{"kind": "component"}]}},
    ],
)
async def test_specification_rejects_bad_input(tmp_path: Path, input: dict[str, Any]) -> None:
    result = await run(tmp_path, "specification_generation", input)
    assert result.error is not None and result.error.type == "BadInput", result


async def test_a_custom_brain_replaces_the_rules(tmp_path: Path) -> None:
    class Fixed(RuleBasedBrain):
        def analyse(self, requirements: str, constraints: str) -> Analysis:
            out = super().analyse(requirements, constraints)
            out["summary"] = f"model says: {requirements}"
            return out

        def plan(self, analysis: Analysis, priority: str) -> Plan:
            out = super().plan(analysis, priority)
            out["coreComponents"] = out["coreComponents"][:1]
            return out

    agent = create(None, workspace=tmp_path, brain=Fixed())
    analysis = (await run_task(agent, "project_analysis", DEMO)).output
    assert analysis["summary"] == f"model says: {DEMO['requirements']}"
    plan = (await run_task(agent, "task_planning", {"analysis": analysis})).output
    assert names(plan["coreComponents"]) == ["Dashboard"]
