"""Data transformations (the seed's data_processing "transform" step, served by
``component_generation``): names like upper, trim, sort, dedupe, pick applied in order to
JSON data; an unknown name fails with ``UnknownTransformation``."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from agent_sdk import TaskError
from agentmesh.agents._inputs import bad

TRANSFORMATIONS = "upper lower trim reverse lines json sort dedupe compact flatten pick"
_LIST_OPS = frozenset({"sort", "dedupe", "unique", "distinct", "compact", "flatten", "pick"})


def transform(inp: dict[str, Any]) -> dict[str, Any]:
    """``data`` run through ``transformations`` in order: {result, applied}."""
    if "data" not in inp:
        raise bad("data: required with transformations")
    data, steps = inp["data"], inp.get("transformations")
    if isinstance(data, str) and data.strip()[:1] in ("[", "{"):
        with contextlib.suppress(ValueError):
            data = json.loads(data)
    if steps is None:
        steps = []
    elif isinstance(steps, str | dict):
        steps = [steps]
    if not isinstance(steps, list):
        raise bad("transformations: must be a name, an object or a list of them")
    applied = []
    for step in steps:
        args = step if isinstance(step, dict) else {"name": step}
        name = args.get("name", args.get("type", args.get("op")))
        if not isinstance(name, str):
            raise bad("transformations: each needs a name")
        data = _apply(name, data, args)
        applied.append(name)
    return {"result": data, "applied": applied}


def _strings(value: Any, fn: Any) -> Any:
    """``value`` with ``fn`` applied to every string in it (keys too)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {fn(k): _strings(v, fn) for k, v in value.items()}
    return value


def _order(value: Any) -> tuple[int, Any]:
    """A sort key that orders mixed JSON values: null, bools, numbers, strings, the rest."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    return (4, json.dumps(value, sort_keys=True))


def _apply(name: str, data: Any, args: dict[str, Any]) -> Any:
    """One named transformation; UnknownTransformation or TransformationFailed."""
    key = re.sub(r"[\s_-]", "", name.lower())

    def need(kind: type | tuple[type, ...], what: str) -> None:
        if not isinstance(data, kind):
            raise TaskError(
                f"transformation {name!r} needs {what}, got {type(data).__name__}",
                type="TransformationFailed",
            )

    if key in ("upper", "uppercase"):
        return _strings(data, str.upper)
    if key in ("lower", "lowercase"):
        return _strings(data, str.lower)
    if key in ("trim", "strip"):
        return _strings(data, str.strip)
    if key == "reverse":
        need((list, str), "a list or a string")
        return data[::-1]
    if key in ("lines", "split"):
        need(str, "a string")
        return [line for line in data.splitlines() if line.strip()]
    if key in ("json", "parsejson"):
        need(str, "a string")
        try:
            return json.loads(data)
        except ValueError as e:
            raise TaskError(f"data is not JSON: {e}", type="TransformationFailed") from None
    if key in _LIST_OPS:
        need(list, "a list")
    if key == "sort":
        field, descending = args.get("key"), args.get("descending") is True
        if isinstance(field, str):
            return sorted(
                data,
                key=lambda v: _order(v.get(field) if isinstance(v, dict) else None),
                reverse=descending,
            )
        return sorted(data, key=_order, reverse=descending)
    if key in ("dedupe", "unique", "distinct"):
        seen, out = set(), []
        for v in data:
            marker = json.dumps(v, sort_keys=True)
            if marker not in seen:
                seen.add(marker)
                out.append(v)
        return out
    if key == "compact":
        return [v for v in data if v not in (None, "", [], {})]
    if key == "flatten":
        return [x for v in data for x in (v if isinstance(v, list) else [v])]
    if key == "pick":
        fields = args.get("fields")
        if not isinstance(fields, list):
            raise bad("transformations: pick needs fields: [names]")
        return [{f: v.get(f) for f in fields} if isinstance(v, dict) else v for v in data]
    raise TaskError(
        f"unknown transformation {name!r}",
        type="UnknownTransformation",
        details={
            "known": [
                "upper",
                "lower",
                "trim",
                "sort",
                "dedupe",
                "reverse",
                "lines",
                "json",
                "compact",
                "flatten",
                "pick",
            ]
        },
    )
