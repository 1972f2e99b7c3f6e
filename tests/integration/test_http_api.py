"""The whole API over HTTP: the Connect protocol (unary and server streams, JSON and
binary), the status mapping, the limits, and the SSE event stream, against a real
coordinator and real agents, with plain HTTP clients (httpx) and ``buf curl``."""

from __future__ import annotations

import asyncio
import gzip
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agentmesh.v1 import registry_pb2
from coordinator.api.router import SERVICES
from coordinator.server import Coordinator
from coordinator.server.connect import CONNECT_CODES
from tests.conftest import ROOT, eventually, running, serving_coordinator
from tests.integration.test_events import FLOW, echo_agent

pytestmark = pytest.mark.timeout(60)

CODES = {code for code, _ in CONNECT_CODES.values()}
BUF = ROOT / "node_modules" / ".bin" / "buf"


@pytest.fixture
async def coordinator() -> AsyncIterator[Coordinator]:
    async with serving_coordinator() as c:
        yield c


@pytest.fixture
async def http(coordinator: Coordinator) -> AsyncIterator[httpx.AsyncClient]:
    assert coordinator.http is not None
    async with httpx.AsyncClient(base_url=coordinator.http.url, timeout=10) as client:
        yield client


def envelope(message: dict[str, Any], flags: int = 0) -> bytes:
    body = json.dumps(message).encode()
    return struct.pack(">BI", flags, len(body)) + body


def envelopes(data: bytes) -> list[tuple[int, Any]]:
    """A Connect stream's body as (flags, decoded JSON) pairs."""
    out: list[tuple[int, Any]] = []
    while data:
        flags, size = struct.unpack_from(">BI", data)
        out.append((flags, json.loads(data[5 : 5 + size])))
        data = data[5 + size :]
    return out


def sse_messages(text: str) -> list[dict[str, str]]:
    """The SSE body as its messages (comments dropped), each field -> value."""
    out = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if line and not line.startswith(":") and ": " in line
        )
        if fields:
            out.append(fields)
    return out


async def define(http: httpx.AsyncClient, definition: dict[str, Any]) -> None:
    r = await http.post(
        "/agentmesh.v1.WorkflowService/DefineWorkflow",
        json={"name": definition["name"], "definition": definition},
    )
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------ unary calls


async def test_a_workflow_runs_end_to_end_over_json(
    coordinator: Coordinator, http: httpx.AsyncClient
) -> None:
    async with running(echo_agent(coordinator.address)):
        await define(http, FLOW)
        r = await http.post(
            "/agentmesh.v1.ExecutionService/StartWorkflow",
            json={"workflowName": "flow", "input": {"repo": "mesh"}},
        )
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        execution = r.json()["id"]
        r = await http.post(
            "/agentmesh.v1.ExecutionService/WaitExecution",
            json={"executionId": execution},
            headers={"Connect-Timeout-Ms": "20000", "Connect-Protocol-Version": "1"},
        )
        done = r.json()
        assert done["status"] == "EXECUTION_STATUS_COMPLETED", done
        assert done["input"] == {"repo": "mesh"}
        r = await http.post(
            "/agentmesh.v1.ExecutionService/GetExecutionHistory", json={"executionId": execution}
        )
        steps = [e["stepId"] for e in r.json()["events"] if e["type"] == "step.completed"]
        assert steps == ["one", "two"]
        r = await http.post("/agentmesh.v1.RegistryService/ListAgents", json={})
        assert [a["name"] for a in r.json()["agents"]] == ["echo"]


async def test_without_auth_the_caller_may_do_everything(http: httpx.AsyncClient) -> None:
    r = await http.post("/agentmesh.v1.RegistryService/GetCaller", json={})
    caller = r.json()
    assert caller["name"] == "anonymous" and caller.get("authEnabled", False) is False
    assert caller["via"] == "none" and caller["namespace"] == "default"
    assert {"executions.stop", "workflows.define", "integrations.manage"} <= set(
        caller["permissions"]
    )


async def test_binary_requests_get_binary_answers(http: httpx.AsyncClient) -> None:
    request = registry_pb2.GetCoordinatorInfoRequest().SerializeToString()
    r = await http.post(
        "/agentmesh.v1.RegistryService/GetCoordinatorInfo",
        content=request,
        headers={"Content-Type": "application/proto"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/proto"
    info = registry_pb2.CoordinatorInfo.FromString(r.content)
    assert info.store == "memory" and info.protocol_version == 1


async def test_refusals_carry_the_grpc_status_as_connect_code_and_http_status(
    http: httpx.AsyncClient,
) -> None:
    path = "/agentmesh.v1.ExecutionService/GetExecutionStatus"
    r = await http.post(path, json={"executionId": "nope"})
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert "nope" in r.json()["message"]
    r = await http.post(
        "/agentmesh.v1.WorkflowService/DefineWorkflow",
        json={"name": "w", "definition": {"name": "w", "steps": [{"id": "a", "type": "nope"}]}},
    )
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    # A long poll past its Connect deadline.
    await define(
        http, {"name": "gate", "steps": [{"id": "g", "type": "wait", "wait": {"seconds": 30}}]}
    )
    started = await http.post(
        "/agentmesh.v1.ExecutionService/StartWorkflow", json={"workflowName": "gate"}
    )
    r = await http.post(
        "/agentmesh.v1.ExecutionService/WaitExecution",
        json={"executionId": started.json()["id"]},
        headers={"Connect-Timeout-Ms": "300"},
    )
    assert (r.status_code, r.json()["code"]) == (504, "deadline_exceeded")


@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "says"),
    [
        (b'{"bogus": 1}', {}, 400, "invalid_argument", "no field named"),
        (b"{not json", {}, 400, "invalid_argument", "GetExecutionStatusRequest"),
        (b"\xff\xfe", {}, 400, "invalid_argument", "not a valid"),
        (b"{}", {"Connect-Timeout-Ms": "soon"}, 400, "invalid_argument", "Connect-Timeout-Ms"),
        (b"{}", {"Connect-Protocol-Version": "2"}, 400, "invalid_argument", "Protocol-Version"),
        (b"{}", {"Content-Encoding": "compress"}, 501, "unimplemented", "'compress'"),
        (b"not gzip", {"Content-Encoding": "gzip"}, 400, "invalid_argument", "cannot be read"),
    ],
)
async def test_what_the_gateway_refuses_itself(
    http: httpx.AsyncClient, body: bytes, headers: dict[str, str], status: int, code: str, says: str
) -> None:
    r = await http.post(
        "/agentmesh.v1.ExecutionService/GetExecutionStatus",
        content=body,
        headers={"Content-Type": "application/json", **headers},
    )
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert says in r.json()["message"]


async def test_gzip_bodies_unknown_media_types_and_streams_that_need_grpc(
    http: httpx.AsyncClient,
) -> None:
    path = "/agentmesh.v1.ExecutionService/GetExecutionStatus"
    r = await http.post(
        path,
        content=gzip.compress(b'{"executionId": "zipped"}'),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert r.json() == {"code": "not_found", "message": "execution 'zipped' not found"}
    r = await http.post(path, content=b"executionId=x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.headers["Accept-Post"]
    r = await http.post("/agentmesh.v1.AgentService/Connect", json={})
    assert (r.status_code, r.json()["code"]) == (501, "unimplemented")
    assert "gRPC" in r.json()["message"]
    r = await http.post("/agentmesh.v1.NoSuchService/Nothing", json={})
    assert r.status_code == 404


async def test_a_request_over_max_message_bytes_is_refused_before_it_is_forwarded() -> None:
    async with serving_coordinator(max_message_bytes=4096) as c:
        assert c.http is not None
        async with httpx.AsyncClient(base_url=c.http.url) as http:
            big = {"name": "w", "definition": {"name": "w", "description": "x" * 5000}}
            r = await http.post("/agentmesh.v1.WorkflowService/DefineWorkflow", json=big)
            assert (r.status_code, r.json()["code"]) == (429, "resource_exhausted")
            assert "max_message_bytes (4096" in r.json()["message"]
            r = await http.post("/agentmesh.v1.WorkflowService/ListWorkflows", json={})
            assert r.json().get("workflows", []) == []  # nothing was defined


async def test_every_unary_method_is_served_from_the_descriptors(http: httpx.AsyncClient) -> None:
    """An empty request to each: answered with a Connect status, never unknown or internal,
    and never a 404 (no method is left off HTTP)."""
    seen = 0
    for service in SERVICES:
        for method in service.methods:
            if method.client_streaming or method.server_streaming:
                continue
            r = await http.post(
                f"/{service.full_name}/{method.name}",
                json={},
                headers={"Connect-Timeout-Ms": "2000"},
            )
            seen += 1
            assert r.status_code != 404 or r.json()["code"] == "not_found", method.full_name
            if r.status_code != 200:
                assert r.json()["code"] in CODES - {"unknown", "internal"}, (
                    method.full_name,
                    r.text,
                )
    assert seen > 40  # every service is there


async def test_buf_curl_speaks_connect_to_it(coordinator: Coordinator) -> None:
    assert coordinator.http is not None
    url = coordinator.http.url
    proc = await asyncio.create_subprocess_exec(
        str(BUF), "curl", "--protocol", "connect", "--schema", str(ROOT / "protos"),
        "--data", '{"executionId": "nope"}',
        f"{url}/agentmesh.v1.ExecutionService/GetExecutionStatus",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode != 0 and json.loads(err)["code"] == "not_found", err
    proc = await asyncio.create_subprocess_exec(
        str(BUF), "curl", "--protocol", "connect", "--schema", str(ROOT / "protos"),
        "--data", '{"fromStart": true, "stopAtHead": true}',
        f"{url}/agentmesh.v1.EventService/Subscribe",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    first = json.loads(out.decode().split("\n}\n")[0] + "}")
    assert first["type"] == "coordinator.started"


# ------------------------------------------------------------------ server streams


async def test_subscribe_is_a_connect_server_stream(
    coordinator: Coordinator, http: httpx.AsyncClient
) -> None:
    r = await http.post(
        "/agentmesh.v1.EventService/Subscribe",
        content=envelope({"fromStart": True, "stopAtHead": True}),
        headers={"Content-Type": "application/connect+json"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/connect+json"
    frames = envelopes(r.content)
    assert frames[0][1]["type"] == "coordinator.started"
    assert frames[-1] == (2, {})  # the end of the stream, OK
    assert int(r.headers["agentmesh-event-head"]) >= 1
    # A refusal ends the stream with its status in the end message.
    r = await http.post(
        "/agentmesh.v1.EventService/Subscribe",
        content=envelope({"filter": {"executionId": "nope"}}),
        headers={"Content-Type": "application/connect+json"},
    )
    assert envelopes(r.content) == [
        (2, {"error": {"code": "not_found", "message": "execution 'nope' not found"}})
    ]


async def test_stream_envelopes_are_checked(http: httpx.AsyncClient) -> None:
    path = "/agentmesh.v1.EventService/Subscribe"
    for body in (b"\x00\x00", b"\x00\x00\x00\x00\x09{}", b"\x01\x00\x00\x00\x02{}"):
        r = await http.post(
            path, content=body, headers={"Content-Type": "application/connect+json"}
        )
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), body
    r = await http.post(path, json={}, headers={})
    assert r.status_code == 415 and "connect+json" in r.text


# ------------------------------------------------------------------ Server-Sent Events


async def test_sse_streams_an_execution_live_and_resumes_after_last_event_id(
    coordinator: Coordinator, http: httpx.AsyncClient
) -> None:
    async with running(echo_agent(coordinator.address)):
        await define(http, FLOW)
        r = await http.post(
            "/agentmesh.v1.ExecutionService/StartWorkflow", json={"workflowName": "flow"}
        )
        execution = r.json()["id"]
        seen: list[dict[str, Any]] = []
        async with http.stream(
            "GET", "/v1/events", params={"execution": execution, "from": "start"}
        ) as stream:
            assert stream.headers["content-type"] == "text/event-stream"
            buffer = ""
            async for chunk in stream.aiter_text():
                buffer += chunk
                *blocks, buffer = buffer.split("\n\n")
                for m in sse_messages("\n\n".join(blocks)):
                    if "data" in m and "id" in m:
                        event = json.loads(m["data"])
                        assert m["id"] == event["sequence"]
                        seen.append(event)
                if seen and seen[-1]["type"] == "execution.completed":
                    break
        types = [e["type"] for e in seen]
        assert types[0] == "execution.started" and types.count("step.completed") == 2
        assert all(e["executionId"] == execution for e in seen)
        # EventSource's reconnect: after the third event, exactly what followed it.
        middle = seen[2]["sequence"]
        r = await http.get(
            "/v1/events",
            params={"execution": execution, "stop_at_head": "1"},
            headers={"Last-Event-ID": middle},
        )
        resumed = [json.loads(m["data"]) for m in sse_messages(r.text) if "id" in m]
        assert resumed == seen[3:]
        assert sse_messages(r.text)[-1] == {"event": "end", "data": "{}"}


async def test_sse_filters_by_type_and_refuses_with_http_statuses(
    coordinator: Coordinator, http: httpx.AsyncClient
) -> None:
    async with running(echo_agent(coordinator.address)):
        await define(http, FLOW)
        for _ in range(2):
            r = await http.post(
                "/agentmesh.v1.ExecutionService/StartWorkflow", json={"workflowName": "flow"}
            )
            await http.post(
                "/agentmesh.v1.ExecutionService/WaitExecution",
                json={"executionId": r.json()["id"]},
            )
    r = await http.get(
        "/v1/events", params={"types": "execution.completed", "from": "start", "stop_at_head": "1"}
    )
    events = [json.loads(m["data"]) for m in sse_messages(r.text) if "id" in m]
    assert [e["type"] for e in events] == ["execution.completed"] * 2
    r = await http.get("/v1/events", params={"execution": "nope"})
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = await http.get("/v1/events", params={"from": "yesterday"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    r = await http.get("/v1/events", params={"from": "99999999"})
    assert (r.status_code, r.json()["code"]) == (400, "out_of_range")


async def test_a_browser_that_goes_away_ends_its_subscription(
    coordinator: Coordinator, http: httpx.AsyncClient
) -> None:
    term = coordinator.term
    assert term is not None
    events = term.log
    before = events.subscribers
    async with http.stream("GET", "/v1/events") as stream:
        async for _ in stream.aiter_bytes():
            break  # the head comment: subscribed
        assert events.subscribers == before + 1
    await eventually(lambda: events.subscribers == before)


# ------------------------------------------------------------------ CORS


async def test_cors_admits_the_configured_origins_only() -> None:
    async with serving_coordinator(http_cors_origins="https://ops.example.com") as c:
        assert c.http is not None
        async with httpx.AsyncClient(base_url=c.http.url) as http:
            path = "/agentmesh.v1.RegistryService/GetCoordinatorInfo"
            preflight = {
                "Origin": "https://ops.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            }
            r = await http.options(path, headers=preflight)
            assert r.status_code == 204
            assert r.headers["access-control-allow-origin"] == "https://ops.example.com"
            assert r.headers["access-control-allow-headers"] == "authorization, content-type"
            assert "POST" in r.headers["access-control-allow-methods"]
            r = await http.post(path, json={}, headers={"Origin": "https://ops.example.com"})
            assert r.headers["access-control-allow-origin"] == "https://ops.example.com"
            assert r.headers["access-control-expose-headers"] == "*"
            r = await http.options(path, headers={**preflight, "Origin": "https://evil.example"})
            assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
            r = await http.post(path, json={}, headers={"Origin": "https://evil.example"})
            assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
