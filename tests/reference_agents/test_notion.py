"""The notion agent: pages, databases, extraction and templates in a local workspace,
and the optional online mode against a stand-in ``notion_client`` module."""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from agent_sdk.testing import TaskOutcome, run_task
from agentmesh.agents.notion import LocalPages, create, split_front_matter

PLAN = {
    "requiresScaffolding": True,
    "projectType": "react-typescript",
    "priority": "high",
    "summary": "New react-typescript project",
    "totalHours": 9,
    "scaffoldingOptions": {"typescript": True, "react": True},
    "coreComponents": [
        {
            "name": "Dashboard",
            "kind": "component",
            "description": "Main page",
            "props": {"title": "string"},
        },
        {"name": "StatCard", "kind": "component", "description": "One metric", "props": {}},
    ],
    "utilityComponents": [
        {"name": "formatNumber", "kind": "utility", "signature": "(n: number) => string"}
    ],
    "tasks": [
        {"id": "setup", "title": "Scaffold the project", "estimateHours": 4, "dependsOn": []},
        {"id": "build", "title": "Build the Dashboard", "estimateHours": 5, "dependsOn": ["setup"]},
    ],
    "specifications": {
        "uiComponents": [],
        "dataServices": [{"name": "MetricsService", "kind": "service"}],
        "acceptanceCriteria": ["Stats render"],
    },
}


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTION_API_KEY", raising=False)
    monkeypatch.delenv("NOTION_PARENT_PAGE_ID", raising=False)


async def run(ws: Path, capability: str, input: dict[str, Any], **options: Any) -> TaskOutcome:
    return await run_task(create(None, workspace=ws, **options), capability, input)


async def ok(ws: Path, capability: str, input: dict[str, Any], **options: Any) -> Any:
    result = await run(ws, capability, input, **options)
    assert result.error is None, result.error
    return result.output


async def fails(
    ws: Path, capability: str, input: dict[str, Any], error_type: str, **options: Any
) -> str:
    result = await run(ws, capability, input, **options)
    assert result.error is not None, result.output
    assert result.error.type == error_type, result.error
    return result.error.message


def read_page(out: dict[str, Any]) -> tuple[dict[str, Any], str]:
    path = Path(out["path"])
    assert out["url"] == path.as_uri()
    return split_front_matter(path.read_text("utf-8"))


def test_create_registers_exactly_the_four_seed_capabilities(tmp_path: Path) -> None:
    agent = create(None, workspace=tmp_path)
    assert (agent.name, agent.type) == ("notion", "notion")
    assert sorted(agent.capabilities) == [
        "content_extraction",
        "database_operations",
        "page_operations",
        "template_management",
    ]
    assert (tmp_path / "notion" / "pages").is_dir() and (tmp_path / "notion" / "templates").is_dir()


# ----------------------------------------------------------------------------- pages


async def test_a_plan_page_from_the_project_plan_template(tmp_path: Path) -> None:
    out = await ok(
        tmp_path, "page_operations", {"plan": PLAN, "templateId": "project_plan_template"}
    )
    assert out["template"] == "project_plan_template" and out["action"] == "create"
    path = Path(out["path"])
    assert path.parent == tmp_path / "notion" / "pages"
    assert path.name == f"project-plan-react-typescript-high-priority-{out['id']}.md"
    meta, body = read_page(out)
    assert meta["id"] == out["id"] and meta["title"] == out["title"]
    assert meta["template"] == "project_plan_template" and "created" in meta
    assert body.startswith(f"# {out['title']}\n")
    assert "- [ ] Scaffold the project (`setup`, 4 h)" in body
    assert "- [ ] Build the Dashboard (`build`, 5 h, after setup)" in body
    assert "- **Dashboard** (component): Main page; props: `title: string`" in body
    assert "`(n: number) => string`" in body and "MetricsService" in body
    assert "- Stats render" in body and "{{" not in body


async def test_a_feature_spec_page_from_the_seed_input(tmp_path: Path) -> None:
    specs = {
        "feature": "User Authentication",
        "uiComponents": [
            {"name": "LoginForm", "kind": "component", "props": {"onSubmit": "() => void"}}
        ],
        "dataServices": [
            {"name": "AuthService", "kind": "service", "methods": {"login": "() => User"}}
        ],
    }
    out = await ok(
        tmp_path,
        "page_operations",
        {"specifications": specs, "templateId": "feature_spec_template"},
    )
    assert out["title"] == "Feature specification: User Authentication"
    _, body = read_page(out)
    assert "LoginForm" in body and "`login: () => User`" in body
    assert "## Acceptance criteria\n\n_not provided_" in body


@pytest.mark.parametrize(
    ("input", "title", "lines"),
    [
        (  # data_processing's handle_fetch_error
            {
                "error": {"type": "CommandFailed", "message": "exit 3"},
                "step": "fetch_data",
                "severity": "high",
            },
            "Incident (high): CommandFailed in fetch_data",
            [
                "- **Severity:** high",
                "- **Step:** fetch_data",
                "- **Workflow:** _not provided_",
                "exit 3",
            ],
        ),
        (  # global_error_handler's log_error
            {
                "error": {"type": "Timeout", "message": "too slow"},
                "workflow": "data_processing",
                "execution": "ex-1",
                "step": "",
                "severity": "high",
            },
            "Incident (high): Timeout in data_processing",
            ["- **Workflow:** data_processing", "- **Execution:** ex-1", "too slow"],
        ),
        (  # a plain string error, with data
            {"error": "disk full", "step": "transform_data", "data": [1, 2], "severity": "medium"},
            "Incident (medium): Error in transform_data",
            ["## Message\n\ndisk full", "## Data at the time\n\n- 1\n- 2"],
        ),
    ],
)
async def test_error_pages_are_incident_reports(
    tmp_path: Path, input: dict[str, Any], title: str, lines: list[str]
) -> None:
    out = await ok(tmp_path, "page_operations", input)
    assert (out["title"], out["template"]) == (title, "error_report_template")
    _, body = read_page(out)
    for line in lines:
        assert line in body
    assert "- [ ] Find the root cause" in body


async def test_explicit_content_get_append_and_update(tmp_path: Path) -> None:
    parent = await ok(
        tmp_path, "page_operations", {"title": "Parent", "content": "# Parent\n\nHi."}
    )
    child = await ok(
        tmp_path,
        "page_operations",
        {"title": "Notes", "content": "First line.", "parentId": parent["id"]},
    )
    meta, body = read_page(child)
    assert meta["parent"] == parent["id"] and meta["template"] is None
    assert body == "First line.\n"
    appended = await ok(
        tmp_path,
        "page_operations",
        {"action": "append", "pageId": child["id"], "content": "- [x] done"},
    )
    assert appended["path"] == child["path"]
    updated = await ok(
        tmp_path, "page_operations", {"action": "update", "pageId": child["id"], "title": "Renamed"}
    )
    assert updated["url"] == child["url"]  # the file keeps its name
    got = await ok(tmp_path, "page_operations", {"action": "get", "pageId": child["id"]})
    assert got["title"] == "Renamed" and got["content"] == "First line.\n\n- [x] done\n"
    assert got["meta"]["parent"] == parent["id"] and "updated" in got["meta"]
    replaced = await ok(
        tmp_path, "page_operations", {"action": "update", "pageId": child["id"], "content": "New."}
    )
    assert read_page(replaced)[1] == "New.\n"
    assert len(list((tmp_path / "notion" / "pages").iterdir())) == 2


async def test_fields_without_a_known_template_get_one_section_each(tmp_path: Path) -> None:
    out = await ok(
        tmp_path,
        "page_operations",
        {
            "title": "Build report",
            "status": "green",
            "files": ["a.ts", "b.ts"],
            "templateId": "no_such_template",
        },
    )
    assert out["template"] is None
    assert out["warnings"] == ["unknown template 'no_such_template': rendered without it"]
    _, body = read_page(out)
    assert body == "# Build report\n\n## Files\n\n- a.ts\n- b.ts\n\n## Status\n\ngreen\n"


def test_a_retried_create_rewrites_the_same_page(tmp_path: Path) -> None:
    pages = LocalPages(tmp_path)
    first = pages.create("abc123", "Plan", "one", {"template": None})
    second = pages.create("abc123", "Plan", "two", {"template": None})
    assert first["path"] == second["path"]
    assert [p.name for p in tmp_path.iterdir()] == ["plan-abc123.md"]
    assert pages.get("abc123")["content"] == "two\n"


@pytest.mark.parametrize(
    ("input", "error_type"),
    [
        ({"action": "delete", "pageId": "x"}, "BadInput"),
        ({"title": 5}, "BadInput"),
        ({"error": "boom", "severity": "urgent"}, "BadInput"),
        ({"action": "update", "title": "x"}, "BadInput"),
        ({"action": "get", "pageId": "../../etc/passwd"}, "BadInput"),
        ({"action": "get", "pageId": "0123456789ab"}, "NotFound"),
        ({"title": "Child", "parentId": "0123456789ab"}, "NotFound"),
    ],
)
async def test_page_operations_reject_bad_input(
    tmp_path: Path, input: dict[str, Any], error_type: str
) -> None:
    await fails(tmp_path, "page_operations", input, error_type)


async def test_update_and_append_need_something_to_write(tmp_path: Path) -> None:
    page = await ok(tmp_path, "page_operations", {"title": "P"})
    await fails(tmp_path, "page_operations", {"action": "update", "pageId": page["id"]}, "BadInput")
    await fails(tmp_path, "page_operations", {"action": "append", "pageId": page["id"]}, "BadInput")


# ------------------------------------------------------------------------- databases


async def test_database_lifecycle(tmp_path: Path) -> None:
    db = {"database": "tasks"}
    schema = {"title": "text", "hours": "number", "done": "boolean", "due": "date", "tags": "json"}
    created = await ok(tmp_path, "database_operations", db | {"action": "create", "schema": schema})
    assert created["created"] is True
    assert created["columns"] == {"_id": "integer", "_created": "text"} | schema
    rows = [
        {"title": "Scaffold", "hours": 4, "done": True, "due": "2025-01-06", "tags": ["setup"]},
        {"title": "Build 100% of it_", "hours": 2.5, "done": False},
        {"title": "Deploy", "hours": 1, "done": False, "tags": {"env": "dev"}},
    ]
    inserted = await ok(tmp_path, "database_operations", db | {"action": "insert", "rows": rows})
    assert inserted == {"database": "tasks", "ids": [1, 2, 3], "count": 3}
    everything = await ok(tmp_path, "database_operations", db | {"action": "query"})
    first = everything["rows"][0]
    assert (first["done"], first["tags"], first["due"]) == (True, ["setup"], "2025-01-06")
    assert everything["rows"][1]["tags"] is None
    query = db | {
        "action": "query",
        "filter": {"done": False, "hours": {"gte": 1}},
        "sort": "-hours",
    }
    found = await ok(tmp_path, "database_operations", query)
    assert [r["title"] for r in found["rows"]] == ["Build 100% of it_", "Deploy"]
    like = await ok(
        tmp_path,
        "database_operations",
        db | {"action": "query", "filter": {"title": {"contains": "0% of it_"}}},
    )
    assert [r["_id"] for r in like["rows"]] == [2]
    none = await ok(
        tmp_path,
        "database_operations",
        db | {"action": "query", "filter": {"title": {"contains": "%"}}, "limit": 1},
    )
    assert none["count"] == 1
    updated = await ok(
        tmp_path,
        "database_operations",
        db | {"action": "update", "filter": {"_id": 2}, "values": {"done": True}},
    )
    assert updated["count"] == 1
    deleted = await ok(
        tmp_path, "database_operations", db | {"action": "delete", "filter": {"done": True}}
    )
    assert deleted["count"] == 2
    again = await ok(
        tmp_path,
        "database_operations",
        db | {"action": "create", "schema": {"title": "text", "owner": "text"}},
    )
    assert again["created"] is False and again["addedColumns"] == ["owner"]
    with contextlib.closing(sqlite3.connect(tmp_path / "notion" / "databases.db")) as conn:
        assert conn.execute('SELECT title, owner FROM "tasks"').fetchall() == [("Deploy", None)]


@pytest.mark.parametrize(
    ("input", "error_type"),
    [
        ({"action": "drop", "database": "t"}, "BadInput"),
        (
            {"action": "create", "database": 'x"; DROP TABLE t; --', "schema": {"a": "text"}},
            "BadInput",
        ),
        ({"action": "create", "database": "sqlite_master", "schema": {"a": "text"}}, "BadInput"),
        ({"action": "create", "database": "t2", "schema": {"a b": "text"}}, "BadInput"),
        ({"action": "create", "database": "t2", "schema": {"a": "varchar"}}, "BadInput"),
        ({"action": "query", "database": "missing"}, "NotFound"),
        ({"action": "insert", "database": "t", "row": {"nope": 1}}, "BadInput"),
        ({"action": "insert", "database": "t", "row": {"_id": 9}}, "BadInput"),
        ({"action": "insert", "database": "t", "row": {"n": "seven"}}, "BadInput"),
        ({"action": "insert", "database": "t", "row": {"n": True}}, "BadInput"),
        ({"action": "insert", "database": "t", "row": {"d": "yesterday"}}, "BadInput"),
        ({"action": "insert", "database": "t"}, "BadInput"),
        ({"action": "query", "database": "t", "filter": {"n": {"between": 1}}}, "BadInput"),
        ({"action": "query", "database": "t", "filter": {'n" OR 1=1 --': 1}}, "BadInput"),
        ({"action": "query", "database": "t", "sort": "n; DROP TABLE t"}, "BadInput"),
        ({"action": "query", "database": "t", "limit": 0}, "BadInput"),
        ({"action": "update", "database": "t", "values": {"n": 1}}, "BadInput"),
        ({"action": "delete", "database": "t", "filter": {}}, "BadInput"),
    ],
)
async def test_database_operations_reject_bad_input(
    tmp_path: Path, input: dict[str, Any], error_type: str
) -> None:
    await ok(
        tmp_path,
        "database_operations",
        {"action": "create", "database": "t", "schema": {"n": "integer", "d": "date"}},
    )
    await ok(
        tmp_path, "database_operations", {"action": "insert", "database": "t", "row": {"n": 1}}
    )
    await fails(tmp_path, "database_operations", input, error_type)
    count = await ok(tmp_path, "database_operations", {"action": "query", "database": "t"})
    assert count["count"] == 1  # nothing was changed or dropped


# ------------------------------------------------------------------------ extraction

DOC = """---
title: Release notes
---
# Heading one

Intro with a [link](https://example.com/a "t") and <https://example.org>.
![image](img.png)

## Checklist ##

- [ ] write **docs**
- [x] ship it
* plain bullet

```
# not a heading
- [ ] not a task
```
"""


async def test_extraction_of_a_markdown_file(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text(DOC)
    out = await ok(tmp_path, "content_extraction", {"path": "docs/notes.md"})
    assert out["title"] == "Release notes"
    assert out["headings"] == [
        {"level": 1, "text": "Heading one"},
        {"level": 2, "text": "Checklist"},
    ]
    assert out["links"] == [
        {"text": "link", "url": "https://example.com/a"},
        {"text": "https://example.org", "url": "https://example.org"},
    ]
    assert out["tasks"] == [
        {"text": "write **docs**", "done": False},
        {"text": "ship it", "done": True},
    ]
    assert "Intro with a link and https://example.org." in out["text"]
    assert "write docs" in out["text"] and "# not a heading" in out["text"]
    assert out["wordCount"] == len(out["text"].split())
    by_url = await ok(
        tmp_path, "content_extraction", {"url": (tmp_path / "docs" / "notes.md").as_uri()}
    )
    assert by_url["headings"] == out["headings"]


async def test_extraction_of_a_page_by_id(tmp_path: Path) -> None:
    page = await ok(tmp_path, "page_operations", {"plan": PLAN})
    out = await ok(tmp_path, "content_extraction", {"pageId": page["id"]})
    assert out["title"] == page["title"] and out["url"] == page["url"]
    assert [t["text"] for t in out["tasks"]] == [
        "Scaffold the project (`setup`, 4 h)",
        "Build the Dashboard (`build`, 5 h, after setup)",
    ]
    assert {"level": 2, "text": "Core components"} in out["headings"]


@pytest.mark.parametrize(
    ("input", "error_type"),
    [
        ({}, "BadInput"),
        ({"path": "../outside.md"}, "PathOutsideWorkspace"),
        ({"path": "/etc/hostname"}, "PathOutsideWorkspace"),
        ({"url": "file:///etc/hostname"}, "PathOutsideWorkspace"),
        ({"url": "https://www.notion.so/page"}, "BadInput"),
        ({"path": "missing.md"}, "NotFound"),
        ({"path": 7}, "BadInput"),
    ],
)
async def test_extraction_rejects_bad_input(
    tmp_path: Path, input: dict[str, Any], error_type: str
) -> None:
    ws = tmp_path / "ws"
    (tmp_path / "outside.md").write_text("# secret")
    await fails(ws, "content_extraction", input, error_type)


async def test_extraction_does_not_follow_symlinks_out_of_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (tmp_path / "secret.md").write_text("# secret")
    (ws / "link.md").symlink_to(tmp_path / "secret.md")
    (ws / "out").symlink_to(tmp_path)
    for input in (
        {"path": "link.md"},
        {"path": "out/secret.md"},
        {"url": (ws / "link.md").as_uri()},
    ):
        message = await fails(ws, "content_extraction", input, "PathOutsideWorkspace")
        assert message.endswith("through a symlink"), message


# ------------------------------------------------------------------------- templates


async def test_templates_list_get_create_and_use(tmp_path: Path) -> None:
    listed = await ok(tmp_path, "template_management", {"action": "list"})
    ids = {t["id"]: t for t in listed["templates"]}
    assert set(ids) == {"project_plan_template", "feature_spec_template", "error_report_template"}
    assert ids["error_report_template"]["builtin"] is True
    assert "error.message" in ids["error_report_template"]["placeholders"]
    got = await ok(
        tmp_path, "template_management", {"action": "get", "templateId": "feature_spec_template"}
    )
    assert got["content"].startswith("# {{title}}") and got["builtin"] is True
    content = "# {{title}}\n\nOwner: {{meeting.owner}}\n\n{{meeting.items}}\n"
    made = await ok(
        tmp_path,
        "template_management",
        {"action": "create", "templateId": "standup", "content": content},
    )
    assert Path(made["path"]) == tmp_path / "notion" / "templates" / "standup.md"
    assert made["placeholders"] == ["meeting.items", "meeting.owner", "title"]
    assert made["replaced"] is False
    listed = await ok(tmp_path, "template_management", {})
    assert {"id": "standup", "builtin": False, "placeholders": made["placeholders"]} in listed[
        "templates"
    ]
    meeting = {"owner": "Ada", "items": [{"id": "m1", "title": "Review plan"}]}
    page = await ok(
        tmp_path,
        "page_operations",
        {"title": "Standup", "meeting": meeting, "templateId": "standup"},
    )
    assert read_page(page)[1] == "# Standup\n\nOwner: Ada\n\n- [ ] Review plan (`m1`)\n"


async def test_a_workspace_template_shadows_a_builtin(tmp_path: Path) -> None:
    await ok(
        tmp_path,
        "template_management",
        {
            "action": "create",
            "templateId": "error_report_template",
            "content": "ERR {{error.message}}",
        },
    )
    page = await ok(tmp_path, "page_operations", {"error": "boom", "severity": "low"})
    assert read_page(page)[1] == "ERR boom\n"


@pytest.mark.parametrize(
    ("input", "error_type"),
    [
        ({"action": "remove", "templateId": "x"}, "BadInput"),
        ({"action": "get"}, "BadInput"),
        ({"action": "get", "templateId": "nope"}, "NotFound"),
        ({"action": "get", "templateId": "../../secret"}, "BadInput"),
        ({"action": "create", "templateId": "../evil", "content": "x"}, "BadInput"),
        ({"action": "create", "templateId": "fine"}, "BadInput"),
    ],
)
async def test_template_management_rejects_bad_input(
    tmp_path: Path, input: dict[str, Any], error_type: str
) -> None:
    await fails(tmp_path, "template_management", input, error_type)
    assert not (tmp_path / "evil.md").exists() and not (tmp_path / "notion" / "evil.md").exists()


# ------------------------------------------------------------------------ online mode


async def test_an_api_key_without_notion_client_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "notion_client", None)  # import raises ImportError
    monkeypatch.setenv("NOTION_API_KEY", "secret_x")
    message = await fails(tmp_path, "page_operations", {"title": "T"}, "NotionUnavailable")
    assert "notion-client" in message
    # Databases and templates stay local.
    await ok(tmp_path, "template_management", {"action": "list"})


class FakeApiError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def fake_notion_client() -> tuple[types.ModuleType, dict[str, Any]]:
    pages: dict[str, dict[str, Any]] = {}
    blocks: dict[str, list[dict[str, Any]]] = {}

    def create(parent: dict[str, str], properties: dict[str, Any]) -> dict[str, Any]:
        pid = f"page-{len(pages) + 1}"
        title = properties["title"]["title"][0]["text"]["content"]
        prop = {"type": "title", "title": [{"plain_text": title}]}
        pages[pid] = {
            "id": pid,
            "url": f"https://notion.so/{pid}",
            "parent": parent,
            "properties": {"Name": prop},
        }
        blocks[pid] = []
        return pages[pid]

    def retrieve(page_id: str) -> dict[str, Any]:
        if page_id not in pages:
            raise FakeApiError(404)
        return pages[page_id]

    def append(block_id: str, children: list[dict[str, Any]]) -> None:
        blocks[block_id] += [
            c | {"id": f"b{i}"} for i, c in enumerate(children, len(blocks[block_id]))
        ]

    def children(block_id: str, start_cursor: str | None = None) -> dict[str, Any]:
        return {"results": blocks[block_id], "has_more": False, "next_cursor": None}

    def update(page_id: str, properties: dict[str, Any]) -> None:
        title = properties["title"]["title"][0]["text"]["content"]
        pages[page_id]["properties"]["Name"]["title"] = [{"plain_text": title}]

    def delete(block_id: str) -> None:
        for children in blocks.values():
            children[:] = [b for b in children if b["id"] != block_id]

    class Client:
        def __init__(self, auth: str) -> None:
            assert auth == "secret_x"
            self.pages = SimpleNamespace(create=create, retrieve=retrieve, update=update)
            self.blocks = SimpleNamespace(
                children=SimpleNamespace(append=append, list=children), delete=delete
            )

    module = types.ModuleType("notion_client")
    module.Client = Client  # type: ignore[attr-defined]
    return module, {"pages": pages, "blocks": blocks}


async def test_online_mode_writes_pages_through_notion_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, state = fake_notion_client()
    monkeypatch.setitem(sys.modules, "notion_client", module)
    options = {"notion_api_key": "secret_x", "notion_parent_page_id": "root-page"}
    out = await ok(
        tmp_path,
        "page_operations",
        {"error": {"type": "Boom", "message": "bad"}, "step": "s1", "severity": "high"},
        **options,
    )
    assert out["url"] == "https://notion.so/page-1" and out["path"] is None
    assert state["pages"]["page-1"]["parent"] == {"page_id": "root-page"}
    kinds = [b["type"] for b in state["blocks"]["page-1"]]
    assert kinds[0] == "heading_1" and "to_do" in kinds and "bulleted_list_item" in kinds
    extracted = await ok(tmp_path, "content_extraction", {"pageId": "page-1"}, **options)
    assert extracted["title"] == "Incident (high): Boom in s1"
    assert {"text": "Find the root cause", "done": False} in extracted["tasks"]
    assert not list((tmp_path / "notion" / "pages").iterdir())  # nothing written locally
    update = {
        "action": "update",
        "pageId": "page-1",
        "title": "Fixed",
        "content": "# Fixed\n\n- [x] done",
    }
    updated = await ok(tmp_path, "page_operations", update, **options)
    assert updated["title"] == "Fixed" and updated["url"] == out["url"]
    assert [b["type"] for b in state["blocks"]["page-1"]] == ["heading_1", "to_do"]
    page = await ok(tmp_path, "page_operations", {"action": "get", "pageId": "page-1"}, **options)
    assert page["content"] == "# Fixed\n- [x] done"
    await fails(
        tmp_path, "page_operations", {"action": "get", "pageId": "nope"}, "NotFound", **options
    )
    await fails(tmp_path, "page_operations", {"title": "T"}, "BadInput", notion_api_key="secret_x")


def test_front_matter_is_yaml(tmp_path: Path) -> None:
    pages = LocalPages(tmp_path)
    out = pages.create("f00d", "Colon: and 'quotes'", "body", {"template": None})
    text = Path(out["path"]).read_text()
    assert yaml.safe_load(text.split("---\n")[1])["title"] == "Colon: and 'quotes'"
