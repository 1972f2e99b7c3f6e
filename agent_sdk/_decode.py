"""Reading the coordinator's stream when a message does not decode.

The SDK must never die on a message it cannot decode (protobuf refuses messages nested
more than 100 levels deep, and a bug or a peer of another version may send anything).
``decode`` is the stream's deserializer: a message that parses is returned as usual;
one that does not becomes ``Undecodable``: a shallow mirror of ``CoordinatorMessage``
reads its task batch as raw dispatches, each decoded on its own, so the tasks that
decode still run and the others are named (task id, attempt) for the agent to report
failed. The agent keeps serving either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from agentmesh.v1 import agent_pb2


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A coordinator message that did not decode, as far as it could be read:
    ``decoded`` the task dispatches that decode on their own, ``failed`` the (task
    id, attempt) of those that do not, ``error`` what went wrong."""

    decoded: tuple[agent_pb2.TaskDispatch, ...]
    failed: tuple[tuple[str, int], ...]
    error: str


def _shallow_messages() -> tuple[type[Message], type[Message]]:
    """``CoordinatorMessage`` with its dispatches as raw bytes, and ``TaskDispatch``
    reduced to its id and attempt; same field numbers as the real ones."""
    f = descriptor_pb2.FileDescriptorProto(
        name="agent_sdk/shallow.proto", package="agent_sdk.shallow", syntax="proto3"
    )
    T = descriptor_pb2.FieldDescriptorProto
    dispatch = f.message_type.add(name="Dispatch")
    dispatch.field.add(name="task_id", number=1, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    dispatch.field.add(name="attempt", number=2, type=T.TYPE_UINT32, label=T.LABEL_OPTIONAL)
    batch = f.message_type.add(name="Batch")
    batch.field.add(name="tasks", number=1, type=T.TYPE_BYTES, label=T.LABEL_REPEATED)
    top = f.message_type.add(name="Message")
    top.field.add(
        name="tasks",
        number=agent_pb2.CoordinatorMessage.TASKS_FIELD_NUMBER,
        type=T.TYPE_MESSAGE,
        type_name=".agent_sdk.shallow.Batch",
        label=T.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    top_class, dispatch_class = (
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"agent_sdk.shallow.{n}"))
        for n in ("Message", "Dispatch")
    )
    return top_class, dispatch_class


_Shallow, _ShallowDispatch = _shallow_messages()
_ERRORS = (DecodeError, RecursionError, ValueError)


def decode(data: bytes) -> agent_pb2.CoordinatorMessage | Undecodable:
    """The stream's response deserializer; never raises."""
    try:
        return agent_pb2.CoordinatorMessage.FromString(data)
    except _ERRORS as e:
        error = str(e) or type(e).__name__
    decoded: list[agent_pb2.TaskDispatch] = []
    failed: list[tuple[str, int]] = []
    try:
        raw: list[bytes] = list(_Shallow.FromString(data).tasks.tasks)  # type: ignore[attr-defined]
    except _ERRORS:
        raw = []
    for item in raw:
        try:
            decoded.append(agent_pb2.TaskDispatch.FromString(item))
        except _ERRORS:
            try:
                d = _ShallowDispatch.FromString(item)
                failed.append((d.task_id, d.attempt))  # type: ignore[attr-defined]
            except _ERRORS:
                pass  # not even an id: nothing to report it under
    return Undecodable(tuple(decoded), tuple(failed), error)
