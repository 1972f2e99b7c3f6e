"""Planner agent: turns requirements into an analysis, a plan, a timeline and a spec.

Rule-based and deterministic (the same input gives the same output). The rules sit behind
the small ``PlannerBrain`` protocol, so a model-backed planner can replace them:
``create(..., brain=MyBrain())``. It writes no files.

- ``project_analysis`` {requirements: str, constraints?: str | list | dict}
  -> {projectType, language, framework, versions{}, features[], complexity (low|medium|high),
  risks[], summary, existingProject, constraints}
- ``task_planning`` {analysis: <project_analysis output>, priority?: low|medium|high}
  or {feature: str, constraints?: str | list | dict}
  -> {requiresScaffolding, projectType, scaffoldingOptions{typescript, react, testing, linting,
  testFramework, linter, versions}, coreComponents[], utilityComponents[],
  tasks[{id, title, estimateHours, dependsOn}], specifications{uiComponents[], dataServices[],
  acceptanceCriteria[]}, priority, summary, feature, versions, totalHours}.
  A component is {name, kind (component|service|utility|hook|module), description, language,
  props{} | methods{} | signature}.
- ``timeline_creation`` {tasks: [{id, title?, estimateHours, dependsOn?}], startDate?: ISO date
  (default today, UTC), hoursPerDay?: number (6), workers?: int (1), skipWeekends?: bool (true)}
  -> {startDate, endDate, totalDays, totalHours, makespanHours, schedule[{id, title, start,
  end, startHour, endHour, worker, ...}], criticalPath[]}; a task starts when all it
  dependsOn have ended and a worker is free.
- ``specification_generation`` {requirements: str, constraints?} or {plan: <task_planning
  output>} -> {title, projectType, summary, components[{name, props[{name, type}]}],
  services[{name, methods[{name, signature}]}], utilities[], acceptanceCriteria[], constraints[]}

Layout: ``_planner_model`` (the values and the ``PlannerBrain`` protocol), ``_planner_rules``
(``RuleBasedBrain`` and its tables), ``_planner_inputs`` (checking task inputs),
``_planner_schedule`` (the timeline); this module wires them to the capabilities. (Flat
modules, not a package: tests/unit/test_deploy_manifests.py expects this file to ship.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from agent_sdk import Agent, Task
from agentmesh.agents._agent import make_workspace, reference_agent
from agentmesh.agents._inputs import bad
from agentmesh.agents._planner_inputs import (
    check_analysis,
    check_plan,
    check_tasks,
    constraints_text,
    number,
    required_text,
)
from agentmesh.agents._planner_model import (
    PRIORITIES,
    PROJECT_TYPES,
    Analysis,
    Component,
    Plan,
    PlannerBrain,
    PlanTask,
)
from agentmesh.agents._planner_rules import RuleBasedBrain
from agentmesh.agents._planner_schedule import schedule

__all__ = [
    "PRIORITIES",
    "PROJECT_TYPES",
    "Analysis",
    "Component",
    "Plan",
    "PlanTask",
    "PlannerBrain",
    "RuleBasedBrain",
    "constraints_text",
    "create",
    "schedule",
]


def create(
    coordinator: str | None = None,
    *,
    workspace: Path,
    max_concurrency: int = 4,
    brain: PlannerBrain | None = None,
) -> Agent:
    """The planner agent; ``brain`` replaces the rules (default ``RuleBasedBrain()``)."""
    make_workspace(workspace)
    mind: PlannerBrain = brain or RuleBasedBrain()
    return reference_agent(
        "planner",
        coordinator,
        max_concurrency,
        [
            (
                "project_analysis",
                partial(project_analysis, mind=mind),
                "analyse requirements and constraints",
            ),
            (
                "task_planning",
                partial(task_planning, mind=mind),
                "plan tasks and components for a project or a feature",
            ),
            ("timeline_creation", timeline_creation, "schedule planned tasks onto dated days"),
            (
                "specification_generation",
                partial(specification_generation, mind=mind),
                "write a structured spec from requirements or a plan",
            ),
        ],
    )


def project_analysis(task: Task, mind: PlannerBrain) -> Analysis:
    """``project_analysis``: ``mind``'s analysis of the requirements and constraints."""
    requirements = required_text(task.input, "requirements")
    return mind.analyse(requirements, constraints_text(task.input.get("constraints")))


def task_planning(task: Task, mind: PlannerBrain) -> Plan:
    """``task_planning``: a plan for an analysed project or for one feature."""
    inp = task.input
    priority = inp.get("priority") or "medium"
    if priority not in PRIORITIES:
        raise bad(f"priority: expected one of {', '.join(PRIORITIES)}")
    if inp.get("analysis") is not None:
        plan = mind.plan(check_analysis(inp["analysis"]), priority)
    elif inp.get("feature") is not None:
        constraints = constraints_text(inp.get("constraints"))
        plan = mind.plan_feature(required_text(inp, "feature"), constraints, priority)
    else:
        raise bad("analysis or feature: one of them is required")
    task.progress(1.0, f"planned {len(plan['tasks'])} tasks")
    return plan


def timeline_creation(task: Task) -> dict[str, Any]:
    """``timeline_creation``: the tasks scheduled from ``startDate`` (default today, UTC)."""
    inp = task.input
    tasks = check_tasks(inp.get("tasks"))
    raw = inp.get("startDate")
    try:
        start = datetime.fromisoformat(raw).date() if raw is not None else datetime.now(UTC).date()
    except (TypeError, ValueError):
        raise bad("startDate: expected an ISO date like 2025-01-31") from None
    workers = inp.get("workers", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 100:
        raise bad("workers: expected an integer in [1, 100]")
    if not isinstance(skip := inp.get("skipWeekends", True), bool):
        raise bad("skipWeekends: expected a boolean")
    return schedule(tasks, start, number(inp, "hoursPerDay", 6, 0.5, 24), workers, skip)


def specification_generation(task: Task, mind: PlannerBrain) -> dict[str, Any]:
    """``specification_generation``: a spec from a plan, or from requirements planned first."""
    inp = task.input
    if inp.get("plan") is not None:
        return mind.specify(check_plan(inp["plan"]))
    if inp.get("requirements") is None:
        raise bad("requirements or plan: one of them is required")
    analysis = mind.analyse(
        required_text(inp, "requirements"), constraints_text(inp.get("constraints"))
    )
    return mind.specify(mind.plan(analysis, "medium"))
