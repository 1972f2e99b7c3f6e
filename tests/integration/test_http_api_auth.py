"""With auth on, the HTTP API is the gRPC API's own: bearer tokens, roles, namespaces and
the audit log apply to every Connect call and to the SSE stream, with Connect's codes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from coordinator.auth import token_digest
from coordinator.server import Coordinator
from tests.conftest import serving_coordinator
from tests.integration.test_authorization import PRINCIPALS, tokens_yaml

pytestmark = pytest.mark.timeout(60)

TEAM_TOKEN = "team-a-admin-token-0123456789"
TEAM = f"""  - name: team-a-admin
    sha256: {token_digest(TEAM_TOKEN)}
    roles: [admin]
    namespaces: [team-a]
"""
GATE = {"name": "gate", "steps": [{"id": "g", "type": "wait", "wait": {"seconds": 30}}]}


def bearer(role: str, namespace: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {PRINCIPALS[role]}"}
    if namespace is not None:
        headers["AgentMesh-Namespace"] = namespace
    return headers


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[tuple[Coordinator, httpx.AsyncClient]]:
    (tmp_path / "tokens.yaml").write_text(tokens_yaml(TEAM))
    settings = {
        "auth_tokens_file": str(tmp_path / "tokens.yaml"),
        "audit_log": str(tmp_path / "audit.jsonl"),
    }
    async with serving_coordinator(**settings) as c:
        assert c.http is not None
        async with httpx.AsyncClient(base_url=c.http.url, timeout=10) as http:
            yield c, http


async def test_credentials_and_roles_decide_as_on_grpc(
    secured: tuple[Coordinator, httpx.AsyncClient], tmp_path: Path
) -> None:
    _, http = secured
    define = "/agentmesh.v1.WorkflowService/DefineWorkflow"
    body = {"name": "gate", "definition": GATE}
    r = await http.post(define, json=body)
    assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")
    r = await http.post(define, json=body, headers={"Authorization": "Bearer wrong-token-000000"})
    assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")
    r = await http.post(define, json=body, headers=bearer("viewer"))
    assert (r.status_code, r.json()["code"]) == (403, "permission_denied")
    assert "workflows" in r.json()["message"]  # it names the permission it lacks
    r = await http.post(define, json=body, headers=bearer("admin"))
    assert r.status_code == 200, r.text
    r = await http.post(
        "/agentmesh.v1.WorkflowService/ListWorkflows", json={}, headers=bearer("viewer")
    )
    assert [w["name"] for w in r.json()["workflows"]] == ["gate"]
    # The audit log has the write, with the HTTP client as its peer; a forged peer
    # header is not believed.
    await http.post(
        define,
        json={"name": "gate2", "definition": {**GATE, "name": "gate2"}},
        headers={**bearer("admin"), "AgentMesh-Http-Peer": "10.9.9.9"},
    )
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    writes = [r for r in records if r["method"].endswith("DefineWorkflow")]
    assert {r["outcome"] for r in writes} >= {"OK", "PERMISSION_DENIED"}
    assert all(r["peer"].startswith("http:127.0.0.1") for r in writes), writes


async def test_namespaces_keep_executions_apart(
    secured: tuple[Coordinator, httpx.AsyncClient],
) -> None:
    _, http = secured
    ops = {"Authorization": f"Bearer {TEAM_TOKEN}", "AgentMesh-Namespace": "team-a"}
    r = await http.post(
        "/agentmesh.v1.WorkflowService/DefineWorkflow",
        json={"name": "gate", "definition": GATE},
        headers=ops,
    )
    assert r.status_code == 200, r.text
    r = await http.post(
        "/agentmesh.v1.ExecutionService/StartWorkflow", json={"workflowName": "gate"}, headers=ops
    )
    execution = r.json()["id"]
    assert r.json()["namespace"] == "team-a"
    status = "/agentmesh.v1.ExecutionService/GetExecutionStatus"
    r = await http.post(status, json={"executionId": execution}, headers=ops)
    assert r.json()["status"] == "EXECUTION_STATUS_RUNNING"
    r = await http.post(status, json={"executionId": execution}, headers=bearer("admin"))
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = await http.post(
        status, json={"executionId": execution}, headers=bearer("admin", "Not A Namespace")
    )
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")


async def test_the_event_stream_needs_credentials_too(
    secured: tuple[Coordinator, httpx.AsyncClient],
) -> None:
    _, http = secured
    query = {"from": "start", "stop_at_head": "1"}
    r = await http.get("/v1/events", params=query)
    assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")
    r = await http.get("/v1/events", params=query, headers=bearer("viewer"))
    assert r.status_code == 200 and "coordinator.started" in r.text
    # EventSource cannot set headers: the token may come in the query instead.
    r = await http.get("/v1/events", params={**query, "access_token": PRINCIPALS["viewer"]})
    assert r.status_code == 200 and "coordinator.started" in r.text
    r = await http.get("/v1/events", params={**query, "access_token": "wrong-token-000000"})
    assert r.status_code == 401


async def test_the_friendly_paths_need_credentials_too(
    secured: tuple[Coordinator, httpx.AsyncClient],
) -> None:
    _, http = secured
    r = await http.get("/v1/executions")
    assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")
    r = await http.get("/v1/executions", headers=bearer("agent"))
    assert (r.status_code, r.json()["code"]) == (403, "permission_denied")
    r = await http.get("/v1/executions", headers=bearer("viewer"))
    assert r.status_code == 200 and r.json() == {}


async def test_get_caller_says_what_each_role_may_do_where(
    secured: tuple[Coordinator, httpx.AsyncClient],
) -> None:
    _, http = secured
    path = "/agentmesh.v1.RegistryService/GetCaller"
    viewer = (await http.post(path, json={}, headers=bearer("viewer"))).json()
    assert viewer["name"] == "viewer" and viewer["authEnabled"] is True and viewer["via"] == "token"
    assert "executions.read" in viewer["permissions"]
    assert "executions.pause" not in viewer["permissions"]
    admin = (await http.post(path, json={}, headers=bearer("admin"))).json()
    assert {"executions.pause", "workflows.define"} <= set(admin["permissions"])
    agent = (await http.post(path, json={}, headers=bearer("agent"))).json()
    assert agent["permissions"] == ["agents.connect", "caller.read"]
    # In a namespace it may not act in, it may not even ask.
    elsewhere = await http.post(path, json={}, headers=bearer("admin", "team-b"))
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "permission_denied")
    assert "team-b" in elsewhere.json()["message"]
    team = {"Authorization": f"Bearer {TEAM_TOKEN}", "AgentMesh-Namespace": "team-a"}
    mine = (await http.post(path, json={}, headers=team)).json()
    assert mine["namespaces"] == ["team-a"] and "executions.start" in mine["permissions"]
    r = await http.post(path, json={})
    assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")
