"""The friendly GET paths (``server.friendly``) on a real coordinator: each one answers
what its Connect method answers, query parameters fill the request (enum values without
their prefix, repeated fields repeated), and what is wrong is a Connect error."""

from __future__ import annotations

import httpx

from tests.conftest import running
from tests.integration.test_events import FLOW, echo_agent
from tests.integration.test_http_api import coordinator, define, http

__all__ = ["coordinator", "http"]  # the fixtures, shared with test_http_api


async def test_typed_paths_answer_what_their_methods_answer(
    coordinator: object, http: httpx.AsyncClient
) -> None:
    async with running(echo_agent(coordinator.address)):  # type: ignore[attr-defined]
        await define(http, FLOW)
        ids = []
        for n in range(3):
            r = await http.post(
                "/agentmesh.v1.ExecutionService/StartWorkflow",
                json={"workflowName": "flow", "input": {"repo": f"repo-{n}"}},
            )
            ids.append(r.json()["id"])
            await http.post(
                "/agentmesh.v1.ExecutionService/WaitExecution", json={"executionId": ids[-1]}
            )
        one = await http.get(f"/v1/executions/{ids[0]}")
        assert one.status_code == 200 and one.headers["content-type"] == "application/json"
        same = await http.post(
            "/agentmesh.v1.ExecutionService/GetExecutionStatus", json={"executionId": ids[0]}
        )
        assert one.json() == same.json() and one.json()["status"] == "EXECUTION_STATUS_COMPLETED"

        page = (await http.get("/v1/executions", params={"status": "completed", "limit": 2})).json()
        assert [e["id"] for e in page["executions"]] == [ids[2], ids[1]]
        rest = await http.get(
            "/v1/executions", params={"status": "completed", "pageToken": page["nextPageToken"]}
        )
        assert [e["id"] for e in rest.json()["executions"]] == [ids[0]]
        found = await http.get("/v1/executions", params={"query": "REPO-1"})
        assert [e["id"] for e in found.json()["executions"]] == [ids[1]]
        both = await http.get(
            "/v1/executions", params=[("statuses", "failed"), ("statuses", "completed")]
        )
        assert len(both.json()["executions"]) == 3

        history = (await http.get(f"/v1/executions/{ids[0]}/history")).json()["events"]
        same = await http.post(
            "/agentmesh.v1.ExecutionService/GetExecutionHistory", json={"executionId": ids[0]}
        )
        assert history == same.json()["events"] and "execution.completed" in str(history)
        assert (await http.get("/v1/workflows/flow")).json()["name"] == "flow"
        assert [w["name"] for w in (await http.get("/v1/workflows")).json()["workflows"]] == [
            "flow"
        ]
        agents = (await http.get("/v1/agents")).json()["agents"]
        agent = (await http.get(f"/v1/agents/{agents[0]['id']}")).json()
        assert agent["id"] == agents[0]["id"]
        metrics = (await http.get("/v1/metrics/workflows/flow")).json()
        assert metrics["totalExecutions"] == "3"
        assert "activeAgents" in (await http.get("/v1/metrics")).json()


async def test_what_is_wrong_is_a_connect_error(http: httpx.AsyncClient) -> None:
    r = await http.get("/v1/executions/nope")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = await http.get("/v1/executions", params={"bogus": "1"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    assert "unknown query parameter 'bogus'" in r.json()["message"]
    assert "page_token" in r.json()["message"]  # it names the known ones
    r = await http.get("/v1/executions", params={"limit": "many"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    r = await http.get("/v1/executions", params={"status": "sleeping"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    r = await http.get("/v1/executions/x", params={"executionId": "y"})  # the path's own field
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    r = await http.get("/v1/executions", params={"limit": "5000"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    assert "limit must be at most 1000" in r.json()["message"]
