"""Property-based probing of a real coordinator process: every unary method of every
``agentmesh.v1`` service and the agent stream, fed garbage bytes and random well-formed
messages. Whatever arrives, the answer is a precise status (never UNKNOWN or INTERNAL),
nothing is logged with a traceback, and the server is healthy afterwards.

Examples are derandomized (the same ones every run, so CI is repeatable); set
``AGENTMESH_FUZZ_EXAMPLES=N`` to explore N random examples per property instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor, struct_pb2
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmesh import wire
from agentmesh.v1 import agent_pb2
from coordinator.api.router import SERVICES
from tests.conftest import ServerProcess

BAD = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
EXPLORE = int(os.environ.get("AGENTMESH_FUZZ_EXAMPLES", "0"))


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=EXPLORE or examples,
        derandomize=not EXPLORE,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


UNARY = [
    (f"/{s.full_name}/{m.name}", m.input_type)
    for s in SERVICES
    for m in s.methods
    if not m.client_streaming and not m.server_streaming
]


class Server(ServerProcess):
    """A real coordinator on SQLite with a workflow directory, its log in a file."""

    def __init__(self, tmp: Path) -> None:
        (tmp / "workflows").mkdir()
        self.log_path = tmp / "server.log"
        super().__init__(
            "--state-persistence",
            "sqlite",
            "--store-path",
            str(tmp / "am.db"),
            "--workflow-dir",
            str(tmp / "workflows"),
            "--shutdown-grace-s",
            "1",
            log=self.log_path,
        )
        self.channel = grpc.insecure_channel(self.address)

    def log(self) -> str:
        return self.log_path.read_text()

    def close(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("fuzz"))
    try:
        yield s
        stub = health_pb2_grpc.HealthStub(s.channel)
        health = stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        log = s.log()
        assert "Traceback" not in log, log[-5000:]
    finally:
        s.close()


def call(server: Server, method: str, body: bytes) -> grpc.StatusCode:
    rpc = server.channel.unary_unary(
        method, request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    try:
        rpc(body, timeout=1.0)
    except grpc.RpcError as e:
        code: grpc.StatusCode = e.code()
        return code
    return grpc.StatusCode.OK


# -- random messages, from the descriptors --------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "..", "../../etc/passwd", "/etc", "a\x00b", "x" * 300, "*", "$"]),
)
_T = descriptor.FieldDescriptor
_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    _T.TYPE_STRING: _TEXT,
    _T.TYPE_BYTES: st.binary(max_size=40),
    _T.TYPE_BOOL: st.booleans(),
    _T.TYPE_DOUBLE: st.floats(allow_nan=True, allow_infinity=True),
    _T.TYPE_FLOAT: st.floats(width=32, allow_nan=True, allow_infinity=True),
    _T.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    _T.TYPE_SINT32: st.integers(-(2**31), 2**31 - 1),
    _T.TYPE_SFIXED32: st.integers(-(2**31), 2**31 - 1),
    _T.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    _T.TYPE_SINT64: st.integers(-(2**63), 2**63 - 1),
    _T.TYPE_SFIXED64: st.integers(-(2**63), 2**63 - 1),
    _T.TYPE_UINT32: st.one_of(st.integers(0, 100), st.integers(0, 2**32 - 1)),
    _T.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    _T.TYPE_UINT64: st.one_of(st.integers(0, 100), st.integers(0, 2**64 - 1)),
    _T.TYPE_FIXED64: st.integers(0, 2**64 - 1),
    _T.TYPE_ENUM: st.integers(-3, 12),
}


def messages(desc: Any, depth: int = 0) -> st.SearchStrategy[Message]:
    """Random instances of ``desc``: every field set or not, values anywhere in range."""
    cls = GetMessageClass(desc)
    if desc.full_name == "google.protobuf.Struct":
        return st.dictionaries(st.text(max_size=8), _JSON, max_size=5).map(wire.to_struct)
    if desc.full_name == "google.protobuf.Value":
        return _JSON.map(wire.to_value)
    if desc.full_name == "google.protobuf.Timestamp" or depth > 3:
        return st.just(cls())
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in desc.fields:
        if f.type == _T.TYPE_MESSAGE:
            if f.message_type.GetOptions().map_entry:
                key, value = (
                    f.message_type.fields_by_name["key"],
                    f.message_type.fields_by_name["value"],
                )
                if value.type == _T.TYPE_MESSAGE:
                    continue
                fields[f.name] = st.dictionaries(
                    _SCALARS[key.type], _SCALARS[value.type], max_size=3
                )
                continue
            inner = messages(f.message_type, depth + 1)
        else:
            inner = _SCALARS[f.type]
        is_repeated = f.is_repeated
        fields[f.name] = st.lists(inner, max_size=3) if is_repeated else inner

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = cls()
        for name, strategy in fields.items():
            if not draw(st.booleans()):
                continue
            value = draw(strategy)
            f = desc.fields_by_name[name]
            if f.type == _T.TYPE_MESSAGE and f.message_type.GetOptions().map_entry:
                getattr(msg, name).update(value)
            elif f.is_repeated:
                target = getattr(msg, name)
                if f.type == _T.TYPE_MESSAGE:
                    for item in value:
                        target.add().CopyFrom(item)
                else:
                    target.extend(value)
            elif f.type == _T.TYPE_MESSAGE:
                getattr(msg, name).CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    return build()


# Definition-shaped documents reach the definition parser and validator, not just the
# "definition must be an object" check.
_STEP_KEYS = [
    "id",
    "name",
    "type",
    "capability",
    "next",
    "input",
    "output",
    "retry",
    "timeoutMs",
    "onError",
    "parallel",
    "decision",
    "wait",
    "event",
    "map",
    "subworkflow",
    "workflow",
    "compensate",
    "agent",
]
_VALUES = st.one_of(
    _JSON,
    st.sampled_from(
        [
            "task",
            "wait",
            "decision",
            "parallel",
            "event",
            "map",
            "subworkflow",
            "a",
            "b",
            "$.input.x",
            "${$.input.x}",
            "$.(",
            1e308,
            -1,
            0,
            "3",
        ]
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "seconds",
                "durationMs",
                "until",
                "name",
                "branches",
                "expression",
                "maxAttempts",
                "strategy",
                "steps",
                "items",
                "default",
            ]
        ),
        _JSON,
        max_size=3,
    ),
)
_STEPS = st.lists(st.dictionaries(st.sampled_from(_STEP_KEYS), _VALUES, max_size=6), max_size=5)
_SCHEMAS = st.dictionaries(
    st.sampled_from(
        [
            "type",
            "properties",
            "required",
            "minLength",
            "maximum",
            "pattern",
            "$ref",
            "items",
            "enum",
            "additionalProperties",
        ]
    ),
    _VALUES,
    max_size=4,
)
_DEFINITIONS = st.fixed_dictionaries(
    {"id": st.sampled_from(["w", "w2", "x" * 300, "a/b", ""]), "steps": _STEPS},
    optional={
        "input": _SCHEMAS,
        "errorHandlers": _JSON,
        "timeoutMs": _VALUES,
        "parameters": _JSON,
        "version": _VALUES,
    },
)


# -- the properties ---------------------------------------------------------------------


@fuzz_settings(400)
@given(method=st.sampled_from(UNARY), body=st.binary(max_size=120))
def test_garbage_bytes_get_a_precise_status(server: Server, method: Any, body: bytes) -> None:
    path, _ = method
    assert call(server, path, body) not in BAD


@fuzz_settings(600)
@given(data=st.data(), method=st.sampled_from(UNARY))
def test_random_requests_get_a_precise_status(server: Server, data: Any, method: Any) -> None:
    path, input_type = method
    request = data.draw(messages(input_type), label=path)
    assert call(server, path, request.SerializeToString()) not in BAD


@fuzz_settings(300)
@given(definition=_DEFINITIONS, validate=st.booleans())
def test_random_definitions_get_a_precise_status(
    server: Server, definition: dict[str, Any], validate: bool
) -> None:
    from agentmesh.v1 import workflow_pb2

    body = struct_pb2.Struct()
    body.update(definition)
    if validate:
        method = "/agentmesh.v1.WorkflowService/ValidateWorkflow"
        req: Message = workflow_pb2.ValidateWorkflowRequest(definition=body)
    else:
        method = "/agentmesh.v1.WorkflowService/DefineWorkflow"
        req = workflow_pb2.DefineWorkflowRequest(definition=body)
    assert call(server, method, req.SerializeToString()) not in BAD


_AGENT_MESSAGES = st.one_of(
    messages(agent_pb2.AgentMessage.DESCRIPTOR).map(lambda m: m.SerializeToString()),
    st.binary(max_size=60),
)


@fuzz_settings(150)
@given(
    hello=messages(agent_pb2.Hello.DESCRIPTOR),
    after=st.lists(_AGENT_MESSAGES, max_size=4),
)
def test_the_agent_stream_ends_with_a_precise_status(
    server: Server, hello: agent_pb2.Hello, after: list[bytes]
) -> None:
    first = agent_pb2.AgentMessage(hello=hello).SerializeToString()
    connect = server.channel.stream_stream(
        "/agentmesh.v1.AgentService/Connect",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    call = connect(iter([first, *after]), timeout=2.0)
    try:
        for _ in call:
            pass
    except grpc.RpcError as e:
        assert e.code() not in BAD, e.details()
