"""JSON <-> protobuf helpers shared by the coordinator and the SDK.

JSON-like payloads travel as ``google.protobuf.Struct``/``Value``. Note that
protobuf's Value has one number type (double): integers come back as floats
unless they are whole, which ``to_json`` turns back into ints.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from agentmesh.payload import PayloadError

__all__ = [  # PayloadError is re-exported: one error type for both modules
    "PayloadError",
    "from_struct",
    "from_timestamp",
    "from_value",
    "to_struct",
    "to_timestamp",
    "to_value",
]


_NULL = struct_pb2.NullValue.NULL_VALUE
_MAX_DEPTH = 100


def _fill(out: struct_pb2.Value, value: Any, depth: int) -> None:
    # bool before int: bool is an int subclass.
    if value is None:
        out.null_value = _NULL
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int | float):
        out.number_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, dict):
        out.struct_value.SetInParent()  # so an empty object is still an object
        _fill_struct(out.struct_value, value, depth + 1)
    elif isinstance(value, list | tuple):
        if depth >= _MAX_DEPTH:
            raise PayloadError(f"nested deeper than {_MAX_DEPTH} levels")
        out.list_value.SetInParent()
        values = out.list_value.values
        for item in value:
            _fill(values.add(), item, depth + 1)
    else:
        raise PayloadError(f"not JSON-serializable: {type(value).__name__} {value!r:.60}")


def _fill_struct(out: struct_pb2.Struct, value: dict[Any, Any], depth: int) -> None:
    if depth >= _MAX_DEPTH:
        raise PayloadError(f"nested deeper than {_MAX_DEPTH} levels")
    fields = out.fields
    for k, v in value.items():
        if not isinstance(k, str):
            raise PayloadError(f"not JSON-serializable: object key {k!r} is not a string")
        _fill(fields[k], v, depth)


def to_struct(value: dict[str, Any] | None) -> struct_pb2.Struct:
    """A JSON object as a Struct. Raises PayloadError for values JSON cannot hold."""
    out = struct_pb2.Struct()
    if value:
        if not isinstance(value, dict):
            raise PayloadError(f"expected a JSON object, got {type(value).__name__}")
        _fill_struct(out, value, 0)
    return out


def to_value(value: Any) -> struct_pb2.Value:
    """Any JSON value as a Value. Raises PayloadError for values JSON cannot hold."""
    out = struct_pb2.Value()
    _fill(out, value, 0)
    return out


def from_value(value: struct_pb2.Value) -> Any:
    """A Value as plain Python; whole numbers come back as ints."""
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return {k: from_value(v) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [from_value(v) for v in value.list_value.values]
    if kind == "number_value":
        n = value.number_value
        return int(n) if n.is_integer() and abs(n) < 2**53 else n
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None


def from_struct(value: struct_pb2.Struct) -> dict[str, Any]:
    return {k: from_value(v) for k, v in value.fields.items()}


def to_timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def from_timestamp(value: timestamp_pb2.Timestamp) -> datetime | None:
    if value.seconds == 0 and value.nanos == 0:
        return None
    return value.ToDatetime(tzinfo=UTC)
