"""The payload limits shared by the coordinator and the SDK."""

from __future__ import annotations

import pytest

from agentmesh import payload, wire
from agentmesh.v1 import agent_pb2


def test_depth_counts_containers_without_recursing() -> None:
    assert payload.depth(None) == payload.depth("x") == 0
    assert payload.depth({}) == payload.depth([]) == 1
    assert payload.depth({"a": [1, {"b": 2}]}) == 3
    deep: list[object] = []
    for _ in range(100_000):  # far beyond Python's recursion limit
        deep = [deep]
    assert payload.depth(deep) == payload.MAX_DEPTH + 1  # stops once over the limit


def test_check_names_what_is_refused() -> None:
    payload.check({"a": [1]}, "x", 100)
    with pytest.raises(payload.PayloadError, match=r"^task input is nested more than 20"):
        payload.check([[[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]]], "task input", 0)
    with pytest.raises(payload.PayloadError, match=r"^out is 12 bytes as JSON, over .* 11 "):
        payload.check({"a": "1234"}, "out", 11)
    payload.check({"a": "1234"}, "out", 12)
    payload.check({"s": {1, 2}}, "out", 10)  # not JSON: the serializer's to refuse
    assert payload.max_bytes(4 * 1024 * 1024) == 1024 * 1024


def test_a_payload_at_the_limit_decodes_in_the_deepest_message() -> None:
    """A history event wraps an output in two objects; a TaskBatch in a dispatch."""
    value: object = "leaf"
    for _ in range(payload.MAX_DEPTH):
        value = {"k": value}
    wrapped = {"data": {"output": value}}
    msg = agent_pb2.CoordinatorMessage(
        tasks=agent_pb2.TaskBatch(
            tasks=[agent_pb2.TaskDispatch(task_id="t", input=wire.to_struct(wrapped))]
        )
    )
    again = agent_pb2.CoordinatorMessage.FromString(msg.SerializeToString())
    assert wire.from_struct(again.tasks.tasks[0].input) == wrapped
