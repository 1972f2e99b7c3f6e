"""The planner's values: what an analysis and a plan hold, and the brain that makes them.

Plain ``TypedDict``s, because they are the capabilities' JSON outputs as they are; a
``PlannerBrain`` turns requirements into them (the rules of ``_planner_rules`` today).
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict

PROJECT_TYPES = ("react-typescript", "react", "python-package", "node-service", "static-site")
PRIORITIES = ("low", "medium", "high")
COMPLEXITY_FACTOR = {"low": 0.75, "medium": 1.0, "high": 1.5}  # complexity -> estimate multiplier

Component = dict[str, Any]


class Analysis(TypedDict):
    """``project_analysis``'s output."""

    projectType: str
    language: str
    framework: str | None
    versions: dict[str, str]
    features: list[str]
    complexity: str
    risks: list[str]
    summary: str
    existingProject: bool
    constraints: str


class PlanTask(TypedDict):
    """One task of a plan: its estimate and the tasks it waits for."""

    id: str
    title: str
    estimateHours: float
    dependsOn: list[str]


class Plan(TypedDict):
    """``task_planning``'s output."""

    requiresScaffolding: bool
    projectType: str
    scaffoldingOptions: dict[str, Any]
    coreComponents: list[Component]
    utilityComponents: list[Component]
    tasks: list[PlanTask]
    specifications: dict[str, Any]  # uiComponents, dataServices, acceptanceCriteria[, feature]
    priority: str
    summary: str
    feature: str | None
    versions: dict[str, str]
    constraints: str
    totalHours: float


class PlannerBrain(Protocol):
    """What decides: these rules today, perhaps a model later. Implementations should give
    the same answer for the same input (a task may run twice) and raise TaskError."""

    def analyse(self, requirements: str, constraints: str) -> Analysis:
        """What the requirements (and constraints) describe."""
        ...

    def plan(self, analysis: Analysis, priority: str) -> Plan:
        """Tasks and components for the analysed project."""
        ...

    def plan_feature(self, feature: str, constraints: str, priority: str) -> Plan:
        """Tasks and components for one feature of an existing project."""
        ...

    def specify(self, plan: Plan) -> dict[str, Any]:
        """A structured specification of the plan."""
        ...
