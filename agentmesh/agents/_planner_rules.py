"""The planner's rules: keyword tables, a component catalogue and ``RuleBasedBrain``.

Deterministic: the same requirements give the same analysis and plan. The project type
comes from words like React, TypeScript, Python, API, CLI; versions from phrases like
"React 18" or "TypeScript 4.5+"; features from ``_FEATURES``; components from ``_CATALOG``;
estimates are base hours scaled by complexity, rounded to half hours.
"""

from __future__ import annotations

import re
from typing import Any

from agentmesh.agents._planner_model import (
    COMPLEXITY_FACTOR,
    Analysis,
    Component,
    Plan,
    PlanTask,
)

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


def _has(pattern: str, text: str) -> bool:
    return re.search(rf"\b(?:{pattern})\b", text, re.IGNORECASE) is not None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item"


def _hours(hours: float, complexity: str) -> float:
    """An estimate scaled by complexity, rounded to half hours."""
    return max(0.5, round(hours * COMPLEXITY_FACTOR[complexity] * 2) / 2)


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


def _tasks(rows: list[tuple[str, str, float, list[str]]], complexity: str) -> list[PlanTask]:
    """Plan tasks from (id, title, base hours, depends on) rows, hours scaled by complexity."""
    return [
        PlanTask(id=i, title=t, estimateHours=_hours(h, complexity), dependsOn=d)
        for i, t, h, d in rows
    ]


def _criteria(features: list[str]) -> list[str]:
    """The acceptance criteria of the features that have one, in feature order."""
    return [_CRITERIA[f] for f in features if f in _CRITERIA]


class RuleBasedBrain:
    """Keyword rules: the project type from words like React, TypeScript, Python, API, CLI;
    versions from phrases like "React 18" or "TypeScript 4.5+"; features from ``_FEATURES``;
    components from ``_CATALOG``."""

    def analyse(self, requirements: str, constraints: str) -> Analysis:
        """See ``PlannerBrain.analyse``: keyword rules over the requirements and constraints."""
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
        """See ``PlannerBrain.plan``: setup, tooling, a task per component, tests, docs, review, deploy."""
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
        tasks = _tasks(rows, cx)
        tasks[2:2] = build
        criteria = _criteria(a["features"])
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
        """See ``PlannerBrain.plan_feature``: design, build, integrate, test, review."""
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
        tasks = _tasks(rows, cx)
        tasks[1:1] = build
        criteria = _criteria(a["features"])
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
        """See ``PlannerBrain.specify``: components with props, services with methods."""
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
