"""Limits on JSON payloads, shared by the coordinator and the SDK (no protobuf here).

Payloads (task inputs and results, execution inputs, event payloads, values a workflow
computes) travel as ``google.protobuf.Struct``/``Value``, inside other messages, and
protobuf refuses to decode a message nested more than 100 levels deep. A JSON object
costs three of those levels (Value, Struct, map entry), an array two, and the messages
around a payload (a TaskBatch, a history Event, an ExecutionContext's variables) add a
few more. So one limit is checked wherever a payload enters, with room to spare for the
wrapping: whatever is accepted decodes in every message it travels in.

``MAX_DEPTH`` counts containers: ``{"a": [1]}`` is 2 deep, a scalar 0. The byte limit
is a quarter of the message limit, measured as compact JSON (close to the protobuf
encoding), so a payload fits in any message that carries it with others.
"""

from __future__ import annotations

import json
from typing import Any, Final

MAX_DEPTH: Final = 20


class PayloadError(ValueError):
    """A value that cannot travel as a payload: not JSON, nested too deeply, too big."""


def max_bytes(max_message_bytes: int) -> int:
    """The payload limit that goes with a message limit (the same on both sides)."""
    return max_message_bytes // 4


def depth(value: Any) -> int:
    """How deeply ``value`` nests objects and arrays (iterative: never recurses)."""
    return _measure(value)[0]


def _measure(value: Any) -> tuple[int, int]:
    """(depth, an upper bound of its compact JSON size), in one iterative walk; stops
    early once deeper than ``MAX_DEPTH``. A character costs at most 6 in JSON
    (``\\uXXXX``), a number at most 24."""
    deepest = 0
    bound = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        kind = type(item)
        if kind is str:
            bound += 6 * len(item) + 2
            continue
        if kind is dict:
            bound += 2 + sum(6 * len(k) + 4 for k in item)
            children: Any = item.values()
        elif kind is list or kind is tuple:
            bound += 2 + len(item)
            children = item
        elif isinstance(item, dict):
            bound += 2 + sum(6 * len(str(k)) + 4 for k in item)
            children = item.values()
        elif isinstance(item, list | tuple):
            bound += 2 + len(item)
            children = item
        else:
            bound += 24  # a number, true, false, null
            continue
        level += 1
        if level > deepest:
            deepest = level
            if deepest > MAX_DEPTH:
                return deepest, bound  # deep enough to refuse: stop walking
        stack.extend((child, level) for child in children)
    return deepest, bound


def check(value: Any, what: str, limit_bytes: int) -> None:
    """Raise ``PayloadError`` (naming ``what``) if ``value`` nests deeper than
    ``MAX_DEPTH`` or, as JSON, is over ``limit_bytes`` (0: no byte limit). A value JSON
    cannot hold (a set, bytes) is left to the serializer to refuse."""
    found, bound = _measure(value)
    if found > MAX_DEPTH:
        raise PayloadError(
            f"{what} is nested more than {MAX_DEPTH} levels deep (objects and arrays); flatten it"
        )
    if limit_bytes <= 0 or bound <= limit_bytes:
        return  # the common case: small enough without encoding it
    try:
        size = len(json.dumps(value, separators=(",", ":")))
    except (TypeError, ValueError):
        return  # not JSON at all: the serializer that meets it says so, precisely
    if size > limit_bytes:
        raise PayloadError(
            f"{what} is {size} bytes as JSON, over the limit of {limit_bytes} bytes; "
            "pass a reference (a path, a URL) instead"
        )
