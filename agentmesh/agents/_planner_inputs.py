"""Reading the planner's task inputs: constraints, numbers, and the outputs of one planner
capability given back to another (an analysis to ``task_planning``, a plan to
``specification_generation``, tasks to ``timeline_creation``). Every refusal is BadInput.
"""

from __future__ import annotations

from typing import Any

from agentmesh.agents._inputs import bad
from agentmesh.agents._planner_model import (
    COMPLEXITY_FACTOR,
    PROJECT_TYPES,
    Analysis,
    Component,
    Plan,
    PlanTask,
)


def constraints_text(value: Any, where: str = "constraints") -> str:
    """Constraints as text: a string, a list of strings or a {key: value} object."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    raise bad(f"{where}: expected a string, list or object, got {type(value).__name__}")


def required_text(inp: dict[str, Any], key: str) -> str:
    """``inp[key]`` stripped; BadInput unless it is a non-empty string."""
    value = inp.get(key)
    if not isinstance(value, str) or not value.strip():
        raise bad(f"{key}: required non-empty string")
    return value.strip()


def number(inp: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    """``inp[key]`` (``default`` when absent) as a float; BadInput unless a number in [lo, hi]."""
    value = inp.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise bad(f"{key}: expected a number in [{lo}, {hi}]")
    return float(value)


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(f"{where}: expected a list of strings")
    return value


def _versions(value: Any, where: str) -> dict[str, str]:
    if value is not None and not isinstance(value, dict):
        raise bad(f"{where}: expected an object like {{'react': '18'}}")
    return {str(k): str(v) for k, v in (value or {}).items()}


def _components(value: Any, where: str) -> list[Component]:
    items = [] if value is None else value
    if not isinstance(items, list):
        raise bad(f"{where}: expected a list of components")
    for i, c in enumerate(items):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
            raise bad(f"{where}[{i}]: expected an object with a non-empty string name")
    return items


def check_analysis(value: Any) -> Analysis:
    """A ``project_analysis`` output given back as input, checked and completed."""
    if not isinstance(value, dict):
        raise bad("analysis: expected the project_analysis output (an object)")
    if value.get("projectType") not in PROJECT_TYPES:
        raise bad(f"analysis.projectType: expected one of {', '.join(PROJECT_TYPES)}")
    if value.get("complexity", "medium") not in COMPLEXITY_FACTOR:
        raise bad("analysis.complexity: expected low, medium or high")
    ptype = value["projectType"]
    language = value.get("language") or {
        "python-package": "python",
        "static-site": "html",
        "react": "javascript",
    }.get(ptype, "typescript")
    return Analysis(
        projectType=ptype,
        language=str(language),
        framework=value.get("framework"),
        versions=_versions(value.get("versions"), "analysis.versions"),
        features=_strings(value.get("features"), "analysis.features"),
        complexity=value.get("complexity", "medium"),
        risks=_strings(value.get("risks"), "analysis.risks"),
        summary=str(value.get("summary") or ptype),
        existingProject=value.get("existingProject") is True,
        constraints=constraints_text(value.get("constraints"), "analysis.constraints"),
    )


def check_plan(value: Any) -> Plan:
    """A ``task_planning`` output given back as input, checked (its tasks are not kept)."""
    if not isinstance(value, dict):
        raise bad("plan: expected the task_planning output (an object)")
    if value.get("projectType") not in PROJECT_TYPES:
        raise bad(f"plan.projectType: expected one of {', '.join(PROJECT_TYPES)}")
    specs = value.get("specifications") or {}
    if not isinstance(specs, dict):
        raise bad("plan.specifications: expected an object")
    return Plan(
        requiresScaffolding=value.get("requiresScaffolding") is True,
        projectType=value["projectType"],
        scaffoldingOptions=dict(value.get("scaffoldingOptions") or {}),
        coreComponents=_components(value.get("coreComponents"), "plan.coreComponents"),
        utilityComponents=_components(value.get("utilityComponents"), "plan.utilityComponents"),
        tasks=[],
        specifications={
            "uiComponents": _components(
                specs.get("uiComponents"), "plan.specifications.uiComponents"
            ),
            "dataServices": _components(
                specs.get("dataServices"), "plan.specifications.dataServices"
            ),
            "acceptanceCriteria": _strings(
                specs.get("acceptanceCriteria"), "plan.specifications.acceptanceCriteria"
            ),
        },
        priority=str(value.get("priority") or "medium"),
        summary=str(value.get("summary") or ""),
        feature=value.get("feature") if isinstance(value.get("feature"), str) else None,
        versions=_versions(value.get("versions"), "plan.versions"),
        constraints=constraints_text(value.get("constraints"), "plan.constraints"),
        totalHours=0,
    )


def check_tasks(value: Any) -> list[PlanTask]:
    """``timeline_creation``'s tasks: unique ids, numeric estimates, known dependencies."""
    if not isinstance(value, list):
        raise bad("tasks: expected a list of {id, title, estimateHours, dependsOn}")
    tasks: list[PlanTask] = []
    for i, t in enumerate(value):
        if not isinstance(t, dict) or not isinstance(t.get("id"), str) or not t["id"]:
            raise bad(f"tasks[{i}]: expected an object with a non-empty string id")
        if "estimateHours" not in t:
            raise bad(f"tasks[{i}].estimateHours: required number")
        hours = number(t, "estimateHours", 0, 0, 10_000)
        deps = _strings(t.get("dependsOn"), f"tasks[{i}].dependsOn")
        tasks.append(
            PlanTask(
                id=t["id"],
                title=str(t.get("title") or t["id"]),
                estimateHours=hours,
                dependsOn=deps,
            )
        )
    ids = [t["id"] for t in tasks]
    if len(set(ids)) != len(ids):
        raise bad("tasks: duplicate task ids")
    for t in tasks:
        if missing := [d for d in t["dependsOn"] if d not in ids]:
            raise bad(f"tasks: {t['id']} depends on unknown task(s) {', '.join(missing)}")
    return tasks
