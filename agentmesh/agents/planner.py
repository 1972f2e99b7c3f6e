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
"""

from __future__ import annotations

import heapq
import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypedDict

from agent_sdk import Agent, Task, TaskError

PROJECT_TYPES = ("react-typescript", "react", "python-package", "node-service", "static-site")
PRIORITIES = ("low", "medium", "high")
_FACTOR = {"low": 0.75, "medium": 1.0, "high": 1.5}  # complexity -> estimate multiplier
_TOOLS = {  # project type -> (test framework, linter)
    "react-typescript": ("jest", "eslint"),
    "react": ("jest", "eslint"),
    "python-package": ("pytest", "ruff"),
    "node-service": ("node:test", "eslint"),
    "static-site": ("none", "htmlhint"),
}
_FEATURES = {  # feature -> words that reveal it (whole words, case-insensitive)
    "dashboard": r"dashboards?|analytics|metrics|kpis?",
    "auth": r"auth\w*|log ?in|sign[ -]?(?:in|up)|passwords?|jwt|oauth",
    "charts": r"charts?|graphs?|visuali[sz]\w*|plots?",
    "tables": r"tables?|data ?grids?",
    "forms": r"forms?",
    "search": r"search\w*|filter\w*",
    "settings": r"settings|preferences|user profiles?",
    "notifications": r"notifications?|alerts?|toasts?",
    "api": r"apis?|rest(?:ful)?|endpoints?|backend|graphql",
    "cli": r"cli|command[ -]line",
    "storage": r"databases?|sql\w*|postgres\w*|mongo\w*|persist\w*",
}
_VERSION = re.compile(
    r"\b(react|typescript|python|node(?:\.js)?|vue|angular|next\.js|django|flask|fastapi|express)"
    r"\s*[:=@]?\s*(?:v|version\s*)?(\d+(?:\.\d+)*\+?)",
    re.IGNORECASE,
)
# feature or project type | kind | name | description | "prop: type; ..." (a signature for
# utilities and hooks). Components and hooks are for React projects, modules for the others.
_CATALOG = """
dashboard|component|Dashboard|Page that lays out the header, sidebar and stat cards|title: string
dashboard|component|Header|Top bar with the application title and user menu|title: string
dashboard|component|Sidebar|Navigation between the dashboard's sections|items: NavItem[]
dashboard|component|StatCard|Card with one metric, its label and trend|label: string; value: number; trend: number
dashboard|service|MetricsService|Loads the metrics the dashboard shows|getStats: () => Promise<Stat[]>
dashboard|utility|formatNumber|Formats a number with thousands separators|(value: number) => string
dashboard|utility|formatDate|Formats a date for display|(value: Date | string) => string
auth|component|LoginForm|Email and password form that signs the user in|onSubmit: (credentials: Credentials) => Promise<void>
auth|component|ProtectedRoute|Renders its children only for a signed-in user|children: ReactNode
auth|component|LogoutButton|Signs the current user out|onLogout: () => void
auth|service|AuthService|Signs users in and out and restores the session|login: (credentials: Credentials) => Promise<User>; logout: () => Promise<void>; getCurrentUser: () => User | null
auth|service|TokenStorage|Persists the session token|save: (token: string) => void; load: () => string | null; clear: () => void
auth|hook|useAuth|The current user with login and logout|() => AuthState
charts|component|ChartPanel|Chart of a time series|title: string; series: DataPoint[]
charts|utility|toSeries|Turns records into chart points|(rows: Row[]) => DataPoint[]
tables|component|DataTable|Sortable table of records|columns: Column[]; rows: Row[]
forms|component|FormField|Labelled input with a validation message|label: string; error: string
forms|utility|validateEmail|Checks an email address|(value: string) => boolean
search|component|SearchBar|Debounced search input|onSearch: (query: string) => void
search|service|SearchService|Runs queries and returns ranked results|search: (query: string) => Promise<Result[]>
search|utility|debounce|Delays a call until the input settles|<F>(fn: F, ms: number) => F
settings|component|SettingsPanel|Form for the user's preferences|settings: Settings
notifications|component|NotificationList|List of recent notifications|items: Notification[]
notifications|service|NotificationService|Delivers and lists notifications|list: () => Promise<Notification[]>
api|service|ApiClient|HTTP client with JSON handling and error mapping|get: <T>(path: string) => Promise<T>; post: <T>(path: string, body: unknown) => Promise<T>
storage|service|Repository|Reads and writes records in the database|get: (id: string) => Promise<Row>; save: (row: Row) => Promise<void>
cli|module|cli|Command-line entry point|main: (argv: string[]) => number
python-package|module|core|The package's public functions|
node-service|module|server|HTTP server, routing and error handling|start: (port: number) => Promise<void>
static-site|module|index|Landing page|
"""
_RISKS = {
    "auth": "Authentication handles credentials and tokens: it needs a security review",
    "api": "Depends on an API whose contract or availability may change",
    "storage": "Persistent data needs a migration and backup plan",
}
_CRITERIA = {
    "dashboard": "The dashboard shows a stat card for every metric the metrics service returns",
    "auth": "Valid credentials sign the user in; invalid ones show an error and sign nobody in",
    "charts": "Charts render the service's series with labelled axes",
    "tables": "Tables can be sorted by every column",
    "forms": "Invalid form fields show a message before submission",
    "search": "Search results update as the user types",
    "settings": "Changed settings persist across reloads",
    "notifications": "New notifications appear without a reload",
    "api": "API errors are shown to the user, never swallowed",
    "cli": "--help documents every command and bad arguments exit with status 2",
    "storage": "Saved records read back unchanged after a restart",
}

Component = dict[str, Any]


class Analysis(TypedDict):
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
    id: str
    title: str
    estimateHours: float
    dependsOn: list[str]


class Plan(TypedDict):
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

    def analyse(self, requirements: str, constraints: str) -> Analysis: ...
    def plan(self, analysis: Analysis, priority: str) -> Plan: ...
    def plan_feature(self, feature: str, constraints: str, priority: str) -> Plan: ...
    def specify(self, plan: Plan) -> dict[str, Any]: ...


def _bad(message: str) -> TaskError:
    return TaskError(message, type="BadInput")


def _has(pattern: str, text: str) -> bool:
    return re.search(rf"\b(?:{pattern})\b", text, re.IGNORECASE) is not None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item"


def _hours(hours: float, complexity: str) -> float:
    """An estimate scaled by complexity, rounded to half hours."""
    return max(0.5, round(hours * _FACTOR[complexity] * 2) / 2)


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
    raise _bad(f"{where}: expected a string, list or object, got {type(value).__name__}")


def _catalog(keys: list[str], project_type: str, language: str) -> list[Component]:
    """The catalogue's entries for these features and project type, in catalogue order."""
    react = project_type.startswith("react")
    out: list[Component] = []
    for line in _CATALOG.strip().splitlines():
        key, kind, name, description, iface = line.split("|", 4)
        wanted = {"component": react, "hook": react, "module": not react}.get(kind, True)
        if key in keys and wanted:
            out.append(_spec(name, kind, description, language, iface))
    return out


def _spec(name: str, kind: str, description: str, language: str, iface: str = "") -> Component:
    """A component spec; ``iface`` is a signature for utilities and hooks, else "a: T; b: U"."""
    spec: Component = {"name": name, "kind": kind, "description": description, "language": language}
    if kind in ("utility", "hook"):
        spec["signature"] = iface
    else:
        members = dict(m.partition(": ")[::2] for m in iface.split("; ") if m)
        spec["props" if kind == "component" else "methods"] = members
    return spec


def _build_tasks(components: list[Component], after: str, complexity: str) -> list[PlanTask]:
    """One "build" task per distinct component, each after the task ``after``."""
    tasks: dict[str, PlanTask] = {}
    for c in components:
        kind = c.get("kind", "component")
        hours = _hours(1 if kind in ("utility", "hook") else 3, complexity)
        tid = f"{kind}-{_slug(c['name'])}"
        title = f"Build the {c['name']} {kind}"
        tasks.setdefault(tid, PlanTask(id=tid, title=title, estimateHours=hours, dependsOn=[after]))
    return list(tasks.values())


class RuleBasedBrain:
    """Keyword rules: the project type from words like React, TypeScript, Python, API, CLI;
    versions from phrases like "React 18" or "TypeScript 4.5+"; features from ``_FEATURES``;
    components from ``_CATALOG``."""

    def analyse(self, requirements: str, constraints: str) -> Analysis:
        text = f"{requirements}\n{constraints}"
        ts = _has(r"typescript|tsx?", text)
        features = [f for f, pattern in _FEATURES.items() if _has(pattern, text)]
        if _has(r"react|jsx|next\.?js", text):
            ptype = "react-typescript" if ts else "react"
        elif _has(r"python|django|flask|fastapi|pypi|pip", text):
            ptype = "python-package"
        elif ts or "api" in features or _has(r"node(?:\.?js)?|express|npm|server", text):
            ptype = "node-service"
        else:
            ptype = "python-package" if "cli" in features else "static-site"
        language = {"python-package": "python", "static-site": "html"}.get(ptype)
        language = language or ("typescript" if ts else "javascript")
        versions: dict[str, str] = {}
        for m in _VERSION.finditer(text):
            versions.setdefault(m.group(1).lower().removesuffix(".js"), m.group(2))
        framework = "react" if ptype.startswith("react") else None
        for name in ("fastapi", "flask", "django", "express"):
            framework = framework or (name if _has(name, text) else None)
        existing = _has(r"existing|legacy|current (?:codebase|project|app\w*)", text)
        score = (not existing) + len(features) + (len(text.split()) > 80)
        score += sum(f in ("auth", "api", "storage") for f in features)
        complexity = "low" if score <= 1 else "medium" if score <= 4 else "high"
        risks = [
            f"{k} {v} is only a minimum version: pin it" for k, v in versions.items() if "+" in v
        ]
        risks += [_RISKS[f] for f in features if f in _RISKS]
        if not _has(r"tests?|testing|coverage", text):
            risks.append("No testing requirements stated: the plan adds unit tests")
        if len(requirements.split()) < 12:
            risks.append("Requirements are brief: the scope may be underspecified")
        if complexity == "high":
            risks.append("Large scope: deliver it in increments")
        stack = ", ".join(f"{k} {v}" for k, v in versions.items()) or framework or language
        found = ", ".join(features) or "none detected"
        summary = f"{'Existing' if existing else 'New'} {ptype} project ({stack}); "
        summary += f"features: {found}; complexity {complexity}"
        return Analysis(
            projectType=ptype,
            language=language,
            framework=framework,
            versions=versions,
            features=features,
            complexity=complexity,
            risks=risks,
            summary=summary,
            existingProject=existing,
            constraints=constraints,
        )

    def plan(self, analysis: Analysis, priority: str) -> Plan:
        a, cx = analysis, analysis["complexity"]
        ptype, react = a["projectType"], a["projectType"].startswith("react")
        parts = _catalog([*a["features"], ptype], ptype, a["language"])
        ui = [c for c in parts if c["kind"] == "component"]
        services = [c for c in parts if c["kind"] == "service"]
        utils = [c for c in parts if c["kind"] in ("utility", "hook")]
        core = ui if react else [c for c in parts if c["kind"] in ("module", "service")]
        core = core or [_spec("App", "component", "Root component", a["language"])]
        testing, linting = _TOOLS[ptype]
        scaffold = not a["existingProject"]
        build = _build_tasks(core + services + utils, "setup", cx)
        done = [t["id"] for t in build]
        first = f"Scaffold the {ptype} project" if scaffold else "Review the existing project setup"
        rows = [
            ("setup", first, 4 if scaffold else 2, []),
            (
                "tooling",
                f"Configure {linting}" + f" and {testing}" * (testing != "none"),
                2,
                ["setup"],
            ),
            ("tests", "Write unit tests", 2 + len(build) / 2, ["tooling", *done]),
            ("docs", "Write the README and usage docs", 2, done or ["setup"]),
            ("review", "Review the code and fix findings", 2, ["tests", "docs"]),
            ("deploy", "Deploy to the development environment", 1, ["review"]),
        ]
        tasks = [
            PlanTask(id=i, title=t, estimateHours=_hours(h, cx), dependsOn=d) for i, t, h, d in rows
        ]
        tasks[2:2] = build
        criteria = [_CRITERIA[f] for f in a["features"] if f in _CRITERIA]
        options = {
            "typescript": a["language"] == "typescript",
            "react": react,
            "testing": testing != "none",
            "linting": True,
            "testFramework": testing,
            "linter": linting,
            "versions": dict(a["versions"]),
        }
        specs = {
            "uiComponents": ui,
            "dataServices": services,
            "acceptanceCriteria": [
                *criteria,
                "The project builds, lints cleanly and its tests pass",
            ],
        }
        return Plan(
            requiresScaffolding=scaffold,
            projectType=ptype,
            scaffoldingOptions=options,
            coreComponents=core,
            utilityComponents=utils,
            tasks=tasks,
            specifications=specs,
            priority=priority,
            summary=f"{a['summary']}; priority {priority}",
            feature=None,
            versions=dict(a["versions"]),
            constraints=a["constraints"],
            totalHours=sum(t["estimateHours"] for t in tasks),
        )

    def plan_feature(self, feature: str, constraints: str, priority: str) -> Plan:
        a = self.analyse(feature, constraints)
        a["existingProject"] = True
        plan = self.plan(a, priority)
        ui, services = (
            plan["specifications"]["uiComponents"],
            plan["specifications"]["dataServices"],
        )
        if not ui and not services:  # nothing in the catalogue: a view and a service named after it
            name = "".join(w.capitalize() for w in re.findall(r"[A-Za-z0-9]+", feature))
            if a["projectType"] in ("react-typescript", "react", "static-site"):
                ui = [_spec(f"{name}View", "component", f"UI for {feature}", a["language"])]
            services = [_spec(f"{name}Service", "service", f"Logic for {feature}", a["language"])]
        cx, utils = a["complexity"], plan["utilityComponents"]
        build = _build_tasks(ui + services + utils, "design", cx)
        rows = [
            ("design", f"Design {feature}", 2, []),
            ("integrate", f"Integrate {feature} into the app", 2, [t["id"] for t in build]),
            ("tests", f"Test {feature}", 2 + len(build) / 2, ["integrate"]),
            ("review", "Review the code and fix findings", 1, ["tests"]),
        ]
        tasks = [
            PlanTask(id=i, title=t, estimateHours=_hours(h, cx), dependsOn=d) for i, t, h, d in rows
        ]
        tasks[1:1] = build
        criteria = [_CRITERIA[f] for f in a["features"] if f in _CRITERIA]
        if _has("jwt", constraints):
            criteria.append("Tokens are JWTs; an expired token signs the user out")
        criteria.append(f"{feature} is covered by passing unit tests")
        specs = {"uiComponents": ui, "dataServices": services, "acceptanceCriteria": criteria}
        summary = f"Feature {feature!r} for a {a['projectType']} project; {len(tasks)} tasks"
        plan["requiresScaffolding"], plan["coreComponents"] = False, ui or services
        plan["tasks"], plan["totalHours"] = tasks, sum(t["estimateHours"] for t in tasks)
        plan["specifications"] = specs | {"feature": feature}
        plan["summary"], plan["feature"] = summary, feature
        return plan

    def specify(self, plan: Plan) -> dict[str, Any]:
        specs = plan["specifications"]
        components: dict[str, dict[str, Any]] = {}
        services: dict[str, dict[str, Any]] = {}
        for c in [
            *specs.get("uiComponents", []),
            *plan["coreComponents"],
            *specs.get("dataServices", []),
        ]:
            entry = {
                "name": c["name"],
                "kind": c.get("kind", "component"),
                "description": c.get("description", ""),
            }
            if entry["kind"] == "component":
                entry["props"] = [{"name": k, "type": v} for k, v in (c.get("props") or {}).items()]
                components.setdefault(c["name"], entry)
            else:
                entry["methods"] = [
                    {"name": k, "signature": v} for k, v in (c.get("methods") or {}).items()
                ]
                services.setdefault(c["name"], entry)
        return {
            "title": f"Specification: {plan['feature'] or plan['projectType'] + ' project'}",
            "projectType": plan["projectType"],
            "summary": plan["summary"],
            "components": list(components.values()),
            "services": list(services.values()),
            "utilities": plan["utilityComponents"],
            "acceptanceCriteria": specs.get("acceptanceCriteria")
            or ["The project builds and its tests pass"],
            "constraints": [c.strip() for c in plan["constraints"].split(";") if c.strip()]
            or [f"Use {k} {v}" for k, v in plan["versions"].items()],
        }


def _text(inp: dict[str, Any], key: str) -> str:
    value = inp.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{key}: required non-empty string")
    return value.strip()


def _number(inp: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = inp.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise _bad(f"{key}: expected a number in [{lo}, {hi}]")
    return float(value)


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"{where}: expected a list of strings")
    return value


def _versions(value: Any, where: str) -> dict[str, str]:
    if value is not None and not isinstance(value, dict):
        raise _bad(f"{where}: expected an object like {{'react': '18'}}")
    return {str(k): str(v) for k, v in (value or {}).items()}


def _components(value: Any, where: str) -> list[Component]:
    items = [] if value is None else value
    if not isinstance(items, list):
        raise _bad(f"{where}: expected a list of components")
    for i, c in enumerate(items):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
            raise _bad(f"{where}[{i}]: expected an object with a non-empty string name")
    return items


def _check_analysis(value: Any) -> Analysis:
    if not isinstance(value, dict):
        raise _bad("analysis: expected the project_analysis output (an object)")
    if value.get("projectType") not in PROJECT_TYPES:
        raise _bad(f"analysis.projectType: expected one of {', '.join(PROJECT_TYPES)}")
    if value.get("complexity", "medium") not in _FACTOR:
        raise _bad("analysis.complexity: expected low, medium or high")
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


def _check_plan(value: Any) -> Plan:
    if not isinstance(value, dict):
        raise _bad("plan: expected the task_planning output (an object)")
    if value.get("projectType") not in PROJECT_TYPES:
        raise _bad(f"plan.projectType: expected one of {', '.join(PROJECT_TYPES)}")
    specs = value.get("specifications") or {}
    if not isinstance(specs, dict):
        raise _bad("plan.specifications: expected an object")
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


def _check_tasks(value: Any) -> list[PlanTask]:
    if not isinstance(value, list):
        raise _bad("tasks: expected a list of {id, title, estimateHours, dependsOn}")
    tasks: list[PlanTask] = []
    for i, t in enumerate(value):
        if not isinstance(t, dict) or not isinstance(t.get("id"), str) or not t["id"]:
            raise _bad(f"tasks[{i}]: expected an object with a non-empty string id")
        if "estimateHours" not in t:
            raise _bad(f"tasks[{i}].estimateHours: required number")
        hours = _number(t, "estimateHours", 0, 0, 10_000)
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
        raise _bad("tasks: duplicate task ids")
    for t in tasks:
        if missing := [d for d in t["dependsOn"] if d not in ids]:
            raise _bad(f"tasks: {t['id']} depends on unknown task(s) {', '.join(missing)}")
    return tasks


def schedule(
    tasks: list[PlanTask],
    start: date,
    hours_per_day: float,
    workers: int = 1,
    skip_weekends: bool = True,
) -> dict[str, Any]:
    """List scheduling: tasks in dependency order (ties by input order), each on the worker
    that is free first; hours are mapped onto (working) days of ``hours_per_day``."""
    index = {t["id"]: i for i, t in enumerate(tasks)}
    waiting = [len(set(t["dependsOn"])) for t in tasks]
    users: dict[str, list[int]] = {}
    for i, t in enumerate(tasks):
        for d in set(t["dependsOn"]):
            users.setdefault(d, []).append(i)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    order: list[int] = []
    while ready:
        order.append(i := heapq.heappop(ready))
        for j in users.get(tasks[i]["id"], []):
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(tasks):
        cycle = sorted(t["id"] for i, t in enumerate(tasks) if waiting[i] > 0)
        raise _bad(f"tasks: dependency cycle among {', '.join(cycle)}")
    free = [0.0] * workers
    ends: dict[str, float] = {}
    chain: dict[str, tuple[float, str | None]] = {}  # longest dependency chain ending here
    placed: list[tuple[float, int, float, int]] = []
    for i in order:
        tid, hours, deps = tasks[i]["id"], tasks[i]["estimateHours"], tasks[i]["dependsOn"]
        earliest = max((ends[d] for d in deps), default=0.0)
        w = min(range(workers), key=lambda k: (max(free[k], earliest), k))
        begin = max(free[w], earliest)
        ends[tid] = free[w] = begin + hours
        prev = max(deps, key=lambda d: (chain[d][0], -index[d]), default=None)
        chain[tid] = (hours + (chain[prev][0] if prev else 0.0), prev)
        placed.append((begin, i, begin + hours, w))
    makespan = max(ends.values(), default=0.0)
    total_days = math.ceil(makespan / hours_per_day - 1e-9)
    days: list[date] = []
    day = start
    while len(days) < max(total_days, 1):
        if not skip_weekends or day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)

    def on(hour: float, *, end: bool) -> str:
        n = math.ceil(hour / hours_per_day - 1e-9) - 1 if end else int(hour / hours_per_day + 1e-9)
        return days[min(max(n, 0), len(days) - 1)].isoformat()

    rows = [
        tasks[i]
        | {
            "start": on(b, end=False),
            "end": on(e, end=e > b),
            "startHour": b,
            "endHour": e,
            "worker": w + 1,
        }
        for b, i, e, w in sorted(placed)
    ]
    critical: list[str] = []
    node = max(chain, key=lambda k: (chain[k][0], -index[k]), default=None)
    while node is not None:
        critical.append(node)
        node = chain[node][1]
    return {
        "startDate": days[0].isoformat(),
        "endDate": on(makespan, end=makespan > 0),
        "totalDays": total_days,
        "totalHours": sum(t["estimateHours"] for t in tasks),
        "makespanHours": makespan,
        "hoursPerDay": hours_per_day,
        "workers": workers,
        "schedule": rows,
        "criticalPath": critical[::-1],
    }


def create(
    coordinator: str | None = None,
    *,
    workspace: Path,
    max_concurrency: int = 4,
    brain: PlannerBrain | None = None,
) -> Agent:
    """The planner agent; ``brain`` replaces the rules (default ``RuleBasedBrain()``)."""
    Path(workspace).mkdir(parents=True, exist_ok=True)
    mind: PlannerBrain = brain or RuleBasedBrain()
    agent = Agent("planner", coordinator, type="planner", max_concurrency=max_concurrency)

    @agent.capability("project_analysis", description="analyse requirements and constraints")
    def project_analysis(task: Task) -> Analysis:
        requirements = _text(task.input, "requirements")
        return mind.analyse(requirements, constraints_text(task.input.get("constraints")))

    @agent.capability(
        "task_planning", description="plan tasks and components for a project or a feature"
    )
    def task_planning(task: Task) -> Plan:
        inp = task.input
        priority = inp.get("priority") or "medium"
        if priority not in PRIORITIES:
            raise _bad(f"priority: expected one of {', '.join(PRIORITIES)}")
        if inp.get("analysis") is not None:
            plan = mind.plan(_check_analysis(inp["analysis"]), priority)
        elif inp.get("feature") is not None:
            constraints = constraints_text(inp.get("constraints"))
            plan = mind.plan_feature(_text(inp, "feature"), constraints, priority)
        else:
            raise _bad("analysis or feature: one of them is required")
        task.progress(1.0, f"planned {len(plan['tasks'])} tasks")
        return plan

    @agent.capability("timeline_creation", description="schedule planned tasks onto dated days")
    def timeline_creation(task: Task) -> dict[str, Any]:
        inp = task.input
        tasks = _check_tasks(inp.get("tasks"))
        raw = inp.get("startDate")
        try:
            start = (
                datetime.fromisoformat(raw).date() if raw is not None else datetime.now(UTC).date()
            )
        except (TypeError, ValueError):
            raise _bad("startDate: expected an ISO date like 2025-01-31") from None
        workers = inp.get("workers", 1)
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 100:
            raise _bad("workers: expected an integer in [1, 100]")
        if not isinstance(skip := inp.get("skipWeekends", True), bool):
            raise _bad("skipWeekends: expected a boolean")
        return schedule(tasks, start, _number(inp, "hoursPerDay", 6, 0.5, 24), workers, skip)

    @agent.capability(
        "specification_generation",
        description="write a structured spec from requirements or a plan",
    )
    def specification_generation(task: Task) -> dict[str, Any]:
        inp = task.input
        if inp.get("plan") is not None:
            return mind.specify(_check_plan(inp["plan"]))
        if inp.get("requirements") is None:
            raise _bad("requirements or plan: one of them is required")
        analysis = mind.analyse(
            _text(inp, "requirements"), constraints_text(inp.get("constraints"))
        )
        return mind.specify(mind.plan(analysis, "medium"))

    return agent
