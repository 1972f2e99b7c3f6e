"""The documented limits of a workflow definition, and the cheap check that applies them
before any parsing starts (the table is in ``docs/workflows.md``, "Limits").

Every check of a definition is linear in its size, and these limits bound the size, so
any definition that passes them validates in a few tens of milliseconds. A value over
a limit is an ordinary ``Issue`` naming the limit and the value found, never an
exception.

``check_document`` runs on the raw document (a dict from JSON, YAML or a protobuf
Struct) before ``parse_definition`` and ``instantiate_template`` touch it. It walks the
document once, without recursion, and stops at the first limit passed, so a hostile
document (nested 100 000 levels deep, a million values, a 100 MB string) costs no more
than a legal one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

# The limits a definition file's reader applies too; it is shared with the SDK.
from agentmesh.documents import MAX_DOCUMENT_VALUES, MAX_FILE_BYTES, MAX_JSON_DEPTH
from coordinator.engine.issues import MAX_ISSUES, Issue

# --- the limits --------------------------------------------------------------------------

MAX_STEPS = 1000
"""Steps in one definition, nested ones (parallel branches, map bodies) included."""

MAX_NESTING = 8
"""Step containers (``parallel``, ``map``) around a step: a step in a map in a parallel
branch is at nesting 2."""

MAX_DEFINITION_BYTES = 1 << 20
"""The definition as compact JSON (UTF-8), after template instantiation."""

MAX_EXPRESSION_LENGTH = 4096
"""Characters of one expression or template (a string with ``${...}``)."""

MAX_EXPRESSION_TOTAL = 24 * 1024
"""Characters of all the expressions and templates of one definition, together."""

MAX_DURATION_MS = 365 * 24 * 3600 * 1000
"""Any duration (timeouts, waits, retry intervals): one year, in milliseconds."""

MAX_ATTEMPTS = 100
"""``retry.maxAttempts``."""

MAX_BACKOFF_RATE = 100.0
"""``retry.backoffRate``: with ``MAX_ATTEMPTS`` the largest factor stays a finite float."""

MAX_SCHEMA_DEPTH = 32
"""Nested subschemas in an ``input`` or ``output`` JSON Schema."""

MAX_PATTERN_LENGTH = 1024
"""Characters of one JSON Schema ``pattern``."""

MAX_SCHEMA_WORK = 100_000
"""Schema checks one ``validate_json_schema`` call may make (a bound on ``anyOf`` and
``allOf`` over recursive ``$ref``, which could otherwise multiply)."""

MAX_SUGGESTIONS = 5
""""did you mean" hints in one report: each scans every candidate."""

# --- the pre-parse check ---------------------------------------------------------------


def check_document(data: Any, location: str = "definition") -> list[Issue]:
    """Problems with the size and shape of a raw definition, before it is parsed.

    Checks, in this order, stopping at the first limit passed (what follows would be
    unsafe or pointless to measure): the number of steps (``MAX_STEPS``) and how deeply
    they nest (``MAX_NESTING``), JSON nesting (``MAX_JSON_DEPTH``), the number of
    values (``MAX_DOCUMENT_VALUES``), then the size as compact JSON
    (``MAX_DEFINITION_BYTES``). Each walk is iterative and stops at its limit, so the
    cost is bounded by the limits, not by the document. ``[]`` when the document is
    within every limit, or is not an object (the parser reports that). Never raises; a
    self-containing object is reported as too many steps or too deep.
    """
    if not isinstance(data, Mapping):
        return []
    found = _steps(data) or check_value(data, location, "the definition")
    if found:
        return found
    size = json_size(data)
    if size > MAX_DEFINITION_BYTES:
        return [
            Issue(
                location,
                f"the definition is {size} bytes as JSON, more than the limit of "
                f"{MAX_DEFINITION_BYTES} bytes",
            )
        ]
    return []


def check_value(value: Any, location: str, what: str = "the value") -> list[Issue]:
    """``MAX_JSON_DEPTH`` and ``MAX_DOCUMENT_VALUES`` applied to any JSON-like value (a
    template parameter, a document): ``[]`` or one issue at ``location`` naming
    ``what``. One pass with an explicit stack (the value may be deeper than Python's
    recursion limit) that stops at the first limit passed. Never raises."""
    values = 1  # children are counted when their parent is opened: a huge list stops at once
    stack: list[tuple[Any, int]] = [(value, 1)] if _is_container(value) else []
    while stack:
        item, depth = stack.pop()
        children: Any = item.values() if isinstance(item, Mapping) else item
        if not children:
            continue
        if depth >= MAX_JSON_DEPTH:
            message = (
                f"{what} nests objects and lists more than {MAX_JSON_DEPTH} levels deep, "
                "the limit for a definition"
            )
            return [Issue(location, message)]
        values += len(children)
        if values > MAX_DOCUMENT_VALUES:
            message = (
                f"{what} has more than {MAX_DOCUMENT_VALUES} values (objects, lists, "
                "strings, numbers), the limit for a definition"
            )
            return [Issue(location, message)]
        for child in children:  # _is_container inlined: this loop sees every value
            kind = type(child)
            if kind is dict or kind is list or (kind not in _SCALARS and _is_container(child)):
                stack.append((child, depth + 1))
    return []


# The scalar types JSON and YAML give: most values, recognised without an ABC check
# (isinstance against Mapping costs several times more).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _is_container(value: Any) -> bool:
    kind = type(value)
    if kind is dict or kind is list:
        return True
    return kind not in _SCALARS and isinstance(value, Mapping | list | tuple)


def count_values(value: Any) -> int:
    """The values in ``value`` as ``check_value`` counts them (itself included, keys
    not). Iterative; call it on data ``check_value`` passed."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        count += 1
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return count


def json_size(data: Any) -> int:
    """Bytes of ``data`` as compact JSON in UTF-8 (``separators=(",", ":")``, non-ASCII
    kept). Values JSON cannot hold (a YAML date) count as their ``str()``. Call it only
    on data within ``MAX_JSON_DEPTH`` (``check_document`` checks that first). Never
    raises."""
    try:
        text = json.dumps(
            data, ensure_ascii=False, separators=(",", ":"), default=str, check_circular=False
        )
    except (TypeError, ValueError, RecursionError):
        # Keys json cannot write (a YAML date as a key), an integer over 4300 digits:
        # count by hand, the same way up to escapes.
        return _size_by_hand(data)
    return len(text.encode("utf-8", "surrogatepass"))


def _size_by_hand(data: Any) -> int:
    size = 0
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, Mapping):
            size += 1 + max(len(value) * 2 - 1, 0) + 1  # braces, colons and commas
            for k, v in value.items():
                size += _scalar_size(k if isinstance(k, str) else str(k))
                stack.append(v)
        elif isinstance(value, list | tuple):
            size += 2 + max(len(value) - 1, 0)
            stack.extend(value)
        else:
            size += _scalar_size(value)
    return size


def _scalar_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass")) + 2
    if value is None or isinstance(value, bool):
        return 4 if value is not False else 5
    if isinstance(value, int):
        return max(1, math.ceil(value.bit_length() * math.log10(2))) + (value < 0)
    if isinstance(value, float):
        return len(repr(value))
    return _scalar_size(str(value))


def _steps(data: Mapping[Any, Any]) -> list[Issue]:
    """Count the steps as written (every field involved has one spelling), stopping past
    ``MAX_STEPS``, and find the first step nested past ``MAX_NESTING``. Malformed parts
    are skipped: the parser reports them."""
    count = 0
    stack: list[tuple[Any, str, int]] = [(data.get("steps"), "steps", 0)]
    while stack:
        steps, loc, nesting = stack.pop()
        if not isinstance(steps, list | tuple):
            continue
        for i, step in enumerate(steps):
            if not isinstance(step, Mapping):
                continue
            count += 1
            if count > MAX_STEPS:
                message = f"the definition has more than {MAX_STEPS} steps, the limit"
                return [Issue("steps", message)]
            here = f"{loc}[{i}]"
            if nesting > MAX_NESTING:
                message = (
                    f"step nested in {nesting} parallel or map steps, more than the limit "
                    f"of {MAX_NESTING}"
                )
                return [Issue(here, message)]
            parallel = step.get("parallel")
            if isinstance(parallel, Mapping) and isinstance(parallel.get("branches"), list):
                for j, branch in enumerate(parallel["branches"]):
                    if isinstance(branch, Mapping):
                        inner = f"{here}.parallel.branches[{j}].steps"
                        stack.append((branch.get("steps"), inner, nesting + 1))
            body = step.get("map")
            if isinstance(body, Mapping):
                stack.append((body.get("steps"), f"{here}.map.steps", nesting + 1))
    return []


def shown(value: Any) -> str:
    """A number as an issue message shows it: ``1e+308``, ``inf``, ``12``; an integer
    too long to print whole by its size. Never raises."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return repr(value)[:80]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))  # 31536000.0 as 31536000
    if isinstance(value, float) or abs(value) < 10**18:
        return repr(value)
    return f"an integer of about {math.ceil(value.bit_length() * math.log10(2))} digits"


__all__ = [
    "MAX_ATTEMPTS",
    "MAX_BACKOFF_RATE",
    "MAX_DEFINITION_BYTES",
    "MAX_DOCUMENT_VALUES",
    "MAX_DURATION_MS",
    "MAX_EXPRESSION_LENGTH",
    "MAX_EXPRESSION_TOTAL",
    "MAX_FILE_BYTES",
    "MAX_ISSUES",
    "MAX_JSON_DEPTH",
    "MAX_NESTING",
    "MAX_PATTERN_LENGTH",
    "MAX_SCHEMA_DEPTH",
    "MAX_SCHEMA_WORK",
    "MAX_STEPS",
    "MAX_SUGGESTIONS",
    "check_document",
    "check_value",
    "count_values",
    "json_size",
    "shown",
]
