"""JSON <-> protobuf helpers shared by the coordinator and the SDK.

JSON-like payloads travel as ``google.protobuf.Struct``/``Value``. Note that
protobuf's Value has one number type (double): integers come back as floats
unless they are whole, which ``to_json`` turns back into ints.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2


class PayloadError(ValueError):
    """A value that cannot travel as JSON (a set, bytes, NaN key ...)."""


def to_struct(value: dict[str, Any] | None) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    if value:
        try:
            out.update(value)
        except (ValueError, TypeError, AttributeError) as e:
            raise PayloadError(f"not JSON-serializable: {e}") from None
    return out


def to_value(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    try:
        json_format.ParseDict(value, out)
    except (json_format.ParseError, ValueError, TypeError, AttributeError) as e:
        raise PayloadError(f"not JSON-serializable: {e}") from None
    return out


def _ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def from_struct(value: struct_pb2.Struct) -> dict[str, Any]:
    out: dict[str, Any] = _ints(json_format.MessageToDict(value))
    return out


def from_value(value: struct_pb2.Value) -> Any:
    if value.WhichOneof("kind") is None:
        return None
    return _ints(json_format.MessageToDict(value))


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
