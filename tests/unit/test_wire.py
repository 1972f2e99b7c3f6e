from __future__ import annotations

import pytest

from agentmesh import wire

CASES: list[object] = [
    None,
    True,
    0,
    -3,
    2.5,
    "text",
    [],
    {},
    [1, [2, []], {"a": {}}],
    {"a": [1, 2.5, None, True, "x", {"y": []}], "empty": {}, "deep": {"b": {"c": [None]}}},
]


@pytest.mark.parametrize("value", CASES)
def test_round_trip_is_exact(value: object) -> None:
    assert wire.from_value(wire.to_value(value)) == value


def test_struct_round_trip_and_ints() -> None:
    v = {"n": 3, "f": 3.0, "big": 2**60, "tuple": (1, 2)}
    back = wire.from_struct(wire.to_struct(v))
    assert back["n"] == 3 and isinstance(back["n"], int)
    assert back["tuple"] == [1, 2]
    assert isinstance(back["big"], float), "doubles cannot hold 2**60 exactly"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"s": {1, 2}}, "set"),
        ({1: 2}, "object key 1 is not a string"),
        ({"b": b"x"}, "bytes"),
        ({"o": object()}, "object"),
    ],
)
def test_unserializable_values_are_named(value: object, message: str) -> None:
    with pytest.raises(wire.PayloadError, match=message):
        wire.to_value(value)


def test_depth_is_bounded() -> None:
    v: list[object] = []
    for _ in range(200):
        v = [v]
    with pytest.raises(wire.PayloadError, match="nested deeper than 100"):
        wire.to_value(v)
