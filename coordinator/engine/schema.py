"""The JSON Schema subset that input schemas need: a strict check of a schema itself (at
definition time) and a validator of values against one (at start time).

``check_schema`` refuses at definition time what would otherwise fail at the first
start, or worse: keyword values of the wrong type (``minLength: "3"``, ``type: 5``),
``$ref`` that does not resolve or that leads back to itself without reaching into the
value (``$ref: "#"``, which would never end), patterns that the linear-time engine
cannot run, and schemas nested past ``MAX_SCHEMA_DEPTH``.

``validate_json_schema`` never raises. Patterns are matched with RE2 (``google-re2``),
whose time is linear in the text, so no pattern can backtrack forever. Recursion
through ``$ref`` is bounded by the value's depth, and the total work of one call by
``MAX_SCHEMA_WORK`` (``allOf`` or ``anyOf`` over a recursive ``$ref`` could otherwise
multiply it at every level). A malformed schema handed to it directly gives
``schema error: ...`` issues.

One piece, though long: the keyword checks of the JSON Schema subset share one
walker and its work budget.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import re2

from coordinator.engine.issues import Hints, Issue
from coordinator.engine.limits import (
    MAX_PATTERN_LENGTH,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_WORK,
    MAX_SUGGESTIONS,
)

_TYPE_NAMES = {
    "null": "null",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "an array",
    "object": "an object",
}
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems")
_BOUNDS: tuple[tuple[str, Callable[[Any, Any], bool], str], ...] = (
    ("minimum", operator.ge, ">="),
    ("maximum", operator.le, "<="),
    ("exclusiveMinimum", operator.gt, ">"),
    ("exclusiveMaximum", operator.lt, "<"),
)
_SCHEMA_MAPS = ("properties", "$defs")  # name -> subschema
_SCHEMA_ONE = ("items", "additionalProperties")  # one subschema, applied to parts
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")  # subschemas applied to the same value
# Nested schema applications at start time: one per level of the value, one per $ref
# or allOf/anyOf/oneOf hop. A definition's schema is within MAX_SCHEMA_DEPTH and has
# no cycle that stays on one value, so only a value nested this deep reaches it.
_MAX_EVAL_DEPTH = 200


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


def _count(value: Any) -> int | None:
    """A non-negative integer keyword value (``3`` or, from a protobuf Struct, ``3.0``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value) if value >= 0 else None


def _never(value: Any) -> bool:
    return False  # the check of a type name the subset does not know


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: _is_number(v) and (isinstance(v, int) or float(v).is_integer()),
    "number": _is_number,
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list | tuple),
    "object": lambda v: isinstance(v, Mapping),
}


def _type_names(value: Any) -> list[str] | None:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(t, str) for t in names):
        return None
    return names


def _keyword_problem(keyword: str, value: Any) -> str | None:
    """Why ``value`` cannot be the value of ``keyword``; None when it can, or when the
    subset ignores the keyword. Subschemas and patterns are checked elsewhere."""
    if keyword == "type":
        if _type_names(value) is None:
            return "must be a type name or a non-empty list of type names"
    elif keyword in _COUNTS:
        if _count(value) is None:
            return "must be a non-negative integer"
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if not _is_number(value) or not math.isfinite(value):
            return "must be a finite number"
    elif keyword in ("enum", "required", *_SCHEMA_LISTS):
        if not isinstance(value, list):
            return "must be a list"
        if keyword == "required" and not all(isinstance(n, str) for n in value):
            return "must be a list of property names (strings)"
        if keyword in _SCHEMA_LISTS and not value:
            return "must be a non-empty list of schemas"
    elif keyword in _SCHEMA_MAPS:
        if not isinstance(value, Mapping):
            return "must be an object"
    elif keyword in ("pattern", "$ref") and not isinstance(value, str):
        return "must be a string"
    elif keyword == "secret" and not isinstance(value, bool):  # AgentMesh's: redacted
        return "must be true or false"
    return None


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the issue says it; stderr need not


@functools.lru_cache(maxsize=1024)
def _pattern(source: str) -> Any:
    """The compiled RE2 pattern, or the reason it cannot be used (a ``str``)."""
    if len(source) > MAX_PATTERN_LENGTH:
        return (
            f"the pattern is {len(source)} characters long, more than the limit of "
            f"{MAX_PATTERN_LENGTH}"
        )
    try:
        return re2.compile(source, _RE2_OPTIONS)
    except re2.error as e:
        reason = e.args[0].decode(errors="replace") if e.args else str(e)
    try:
        re.compile(source)
    except (re.error, RecursionError, OverflowError):
        return f"not a valid regular expression: {reason}"
    return (
        "uses what the linear-time regular expression engine (RE2) cannot run, such as "
        f"backreferences or lookaround: {reason}"
    )


def _resolve(root: Any, ref: Any) -> Any:
    """The subschema a local ``$ref`` (``#``, ``#/$defs/x``) points at, or None."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    node = root
    for raw in filter(None, ref[1:].split("/")):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return None
    return node


# --- at definition time ------------------------------------------------------------------


def check_schema(schema: Any, location: str) -> list[Issue]:
    """Mistakes in a JSON Schema itself, so a definition's ``input`` schema fails at
    definition time, not at the first start: unknown type names, keyword values of the
    wrong type, ``$ref`` that does not resolve or that loops back without reaching
    into the value, patterns RE2 cannot compile, nesting past ``MAX_SCHEMA_DEPTH``.
    Issues come in the order the schema is written. Linear in the schema (each
    subschema is checked once, however many ``$ref`` name it); never raises."""
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, Mapping):
        return [Issue(location, "a JSON Schema must be an object")]
    return _SchemaCheck(schema, location).run()


class _SchemaCheck:
    def __init__(self, root: Mapping[str, Any], location: str) -> None:
        self.root = root
        self.location = location
        self.out: list[Issue] = []
        self.hints = Hints(MAX_SUGGESTIONS)
        self.seen: set[int] = set()
        # Same-value edges (allOf/anyOf/oneOf items and $ref targets) by id: a cycle of
        # them would be applied to one value for ever.
        self.same_value: dict[int, list[tuple[int, str]]] = {}

    def run(self) -> list[Issue]:
        # A stack of generators rather than recursion: a schema may nest deeper than
        # Python's stack, and each generator is one schema object's keywords in order.
        stack = [self.visit(self.root, self.location, 1)]
        while stack:
            found = next(stack[-1], None)
            if found is None:
                stack.pop()
                continue
            node, at, depth = found
            if not isinstance(node, bool | Mapping):
                self.out.append(Issue(at, "a JSON Schema must be an object"))
            elif isinstance(node, Mapping) and id(node) not in self.seen:
                stack.append(self.visit(node, at, depth))
        self.out += _same_value_cycles(self.same_value)
        return self.out

    def visit(
        self, node: Mapping[str, Any], loc: str, depth: int
    ) -> Iterator[tuple[Any, str, int]]:
        """Report the malformed keywords of one schema object, in order, and yield its
        subschemas as (subschema, location, depth)."""
        self.seen.add(id(node))
        if depth > MAX_SCHEMA_DEPTH:
            message = f"schema nested more than {MAX_SCHEMA_DEPTH} levels deep, the limit"
            self.out.append(Issue(loc, message))
            return
        edges = self.same_value.setdefault(id(node), [])
        for keyword, value in node.items():
            problem = _keyword_problem(keyword, value) if isinstance(keyword, str) else None
            if problem is not None:
                self.out.append(Issue(f"{loc}.{keyword}", problem))
            elif keyword == "type":
                for t in _type_names(value) or ():
                    if t not in _TYPE_NAMES:
                        hint = self.hints(t, list(_TYPE_NAMES))
                        self.out.append(Issue(f"{loc}.type", f"unknown type '{t}'{hint}"))
            elif keyword == "pattern":
                compiled = _pattern(value)
                if isinstance(compiled, str):
                    self.out.append(Issue(f"{loc}.pattern", compiled))
            elif keyword in _SCHEMA_MAPS:
                for name, inner in value.items():
                    yield inner, f"{loc}.{keyword}.{name}", depth + 1
            elif keyword in _SCHEMA_ONE:
                yield value, f"{loc}.{keyword}", depth + 1
            elif keyword in _SCHEMA_LISTS:
                for i, inner in enumerate(value):
                    edges.append((id(inner), f"{loc}.{keyword}[{i}]"))
                    yield inner, f"{loc}.{keyword}[{i}]", depth + 1
            elif keyword == "$ref":
                target = _resolve(self.root, value)
                if target is None:
                    self.out.append(Issue(f"{loc}.$ref", f"cannot resolve $ref '{value}'"))
                elif not isinstance(target, bool | Mapping):
                    self.out.append(Issue(f"{loc}.$ref", f"$ref '{value}' is not a schema"))
                else:
                    edges.append((id(target), f"{loc}.$ref"))
                    # Checked where it is written when the walk gets there first.
                    yield target, self.location + value[1:].replace("/", "."), depth + 1


def _same_value_cycles(edges: Mapping[int, list[tuple[int, str]]]) -> list[Issue]:
    """One issue per cycle of $ref/allOf/anyOf/oneOf hops (schema objects by id), found
    by an iterative depth-first search that takes each node and edge once."""
    out: list[Issue] = []
    state: dict[int, int] = {}  # 1: on the current path, 2: finished
    for start in edges:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(edges[start]))]
        while stack:
            node, hops = stack[-1]
            hop = next(hops, None)
            if hop is None:
                state[node] = 2
                stack.pop()
                continue
            target, at = hop
            seen = state.get(target)
            if seen == 1:
                out.append(
                    Issue(
                        at,
                        "leads back to the same schema without reaching into the value "
                        "(through $ref, allOf, anyOf or oneOf), which would never end",
                    )
                )
            elif seen is None and target in edges:
                state[target] = 1
                stack.append((target, iter(edges[target])))
    return out


# --- at start time -------------------------------------------------------------------------


def validate_json_schema(instance: Any, schema: Any, location: str = "input") -> list[Issue]:
    """Check ``instance`` against a JSON Schema (draft 2020-12 subset).

    Supported: ``type`` (with ``integer``), ``enum``, ``const``, ``properties``,
    ``required``, ``additionalProperties``, ``items``, ``minItems``/``maxItems``,
    ``minimum``/``maximum`` and their exclusive forms, ``minLength``/``maxLength``,
    ``pattern`` (RE2 syntax), ``anyOf``/``oneOf``/``allOf`` and local ``$ref``
    (``#/$defs/x``, ``#``). Other keywords are ignored, as JSON Schema does with
    unknown ones. Never raises: a malformed schema, a value nested too deeply and a
    validation past ``MAX_SCHEMA_WORK`` checks are issues.
    """
    run = _Run(schema)
    out: list[Issue] = []
    try:
        run.check(instance, schema, location, out)
    except RecursionError:  # only from comparing absurdly deep enum/const values
        out.append(Issue(location, "schema error: the value is nested too deeply to validate"))
    if run.exhausted:
        out.append(
            Issue(
                location,
                f"schema error: validating took more than {MAX_SCHEMA_WORK} checks, "
                "the limit; simplify the schema",
            )
        )
    return out


class _Run:
    """One validation: the root (for $ref), the depth and the work done so far."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.depth = 0
        self.work = 0
        self.exhausted = False
        self.hints = Hints(MAX_SUGGESTIONS)
        self.active: set[tuple[int, int]] = set()  # (schema, value) on the current path
        # Issues found per ((schema, value), location); ids stay valid, as the caller
        # holds the schema and the value for the whole call.
        self.memo: dict[tuple[tuple[int, int], str], list[Issue]] = {}

    def check(self, value: Any, schema: Any, loc: str, out: list[Issue]) -> None:
        self.work += 1
        if self.work > MAX_SCHEMA_WORK:
            self.exhausted = True
            return
        if schema is False:
            out.append(Issue(loc, "is not allowed"))
            return
        if not isinstance(schema, Mapping):
            return
        # The same schema applied to the same value again, further down the same path:
        # only $ref/allOf/anyOf/oneOf hops came between (a scalar contains nothing),
        # so this would go round for ever. check_schema refuses such schemas; this
        # validator may be handed one directly.
        key = (id(schema), id(value))
        if key in self.active:
            out.append(Issue(loc, "schema error: a $ref cycle applies a schema to itself"))
            return
        # allOf/anyOf over a recursive $ref reaches one (schema, value, location) many
        # times (2^depth for two branches): the issues of the first time are reused.
        memo = (key, loc)
        if memo in self.memo:
            out.extend(self.memo[memo])
            return
        if self.depth >= _MAX_EVAL_DEPTH:
            out.append(Issue(loc, f"nested more than {_MAX_EVAL_DEPTH} levels deep to validate"))
            return
        self.depth += 1
        self.active.add(key)
        before = len(out)
        try:
            self._keywords(value, schema, loc, out)
        finally:
            self.depth -= 1
            self.active.discard(key)
        self.memo[memo] = out[before:]

    def _get(self, schema: Mapping[str, Any], keyword: str, loc: str, out: list[Issue]) -> Any:
        """The value of ``keyword`` when present and well-formed, else None (a
        malformed one is reported: this validator may be given an unchecked schema)."""
        if keyword not in schema:
            return None
        problem = _keyword_problem(keyword, schema[keyword])
        if problem is not None:
            out.append(Issue(loc, f"schema error: {keyword} {problem}"))
            return None
        return schema[keyword]

    def _keywords(self, value: Any, schema: Mapping[str, Any], loc: str, out: list[Issue]) -> None:
        if (ref := self._get(schema, "$ref", loc, out)) is not None:
            target = _resolve(self.root, ref)
            if target is None:
                out.append(Issue(loc, f"schema error: cannot resolve $ref '{ref}'"))
            else:
                self.check(value, target, loc, out)
        if (types := self._get(schema, "type", loc, out)) is not None:
            names = _type_names(types) or []
            if not any(_TYPE_CHECKS.get(t, _never)(value) for t in names):
                expected = " or ".join(_TYPE_NAMES.get(t, t) for t in names)
                out.append(Issue(loc, f"must be {expected}"))
                return  # the other keywords would only repeat the mismatch
        enum = self._get(schema, "enum", loc, out)
        if enum is not None and not any(_same(value, e) for e in enum):
            out.append(Issue(loc, f"must be one of {_short(enum)}"))
        if "const" in schema and not _same(value, schema["const"]):
            out.append(Issue(loc, f"must be {_short(schema['const'])}"))
        if _is_number(value):
            for keyword, ok, symbol in _BOUNDS:
                bound = self._get(schema, keyword, loc, out)
                if bound is not None and not ok(value, bound):
                    out.append(Issue(loc, f"must be {symbol} {bound}"))
        elif isinstance(value, str):
            self._string(value, schema, loc, out)
        elif isinstance(value, list | tuple):
            self._array(value, schema, loc, out)
        elif isinstance(value, Mapping):
            self._object(value, schema, loc, out)
        for sub in self._get(schema, "allOf", loc, out) or ():
            self.check(value, sub, loc, out)
        for keyword in ("anyOf", "oneOf"):
            if (options := self._get(schema, keyword, loc, out)) is not None:
                self._alternatives(value, options, keyword, loc, out)

    def _string(self, value: str, schema: Mapping[str, Any], loc: str, out: list[Issue]) -> None:
        shortest = self._get(schema, "minLength", loc, out)
        if shortest is not None and len(value) < shortest:
            out.append(Issue(loc, f"must be at least {_count(shortest)} characters long"))
        longest = self._get(schema, "maxLength", loc, out)
        if longest is not None and len(value) > longest:
            out.append(Issue(loc, f"must be at most {_count(longest)} characters long"))
        if (pattern := self._get(schema, "pattern", loc, out)) is not None:
            compiled = _pattern(pattern)
            if isinstance(compiled, str):
                out.append(Issue(loc, f"schema error: pattern {compiled}"))
            elif compiled.search(value) is None:
                out.append(Issue(loc, f"must match the pattern '{pattern}'"))

    def _array(
        self, value: Sequence[Any], schema: Mapping[str, Any], loc: str, out: list[Issue]
    ) -> None:
        fewest = self._get(schema, "minItems", loc, out)
        if fewest is not None and len(value) < fewest:
            out.append(Issue(loc, f"must have at least {_count(fewest)} item(s)"))
        most = self._get(schema, "maxItems", loc, out)
        if most is not None and len(value) > most:
            out.append(Issue(loc, f"must have at most {_count(most)} item(s)"))
        if "items" in schema:
            for i, item in enumerate(value):
                self.check(item, schema["items"], f"{loc}[{i}]", out)

    def _object(
        self, value: Mapping[str, Any], schema: Mapping[str, Any], loc: str, out: list[Issue]
    ) -> None:
        properties: Mapping[str, Any] = self._get(schema, "properties", loc, out) or {}
        for name in self._get(schema, "required", loc, out) or ():
            if name not in value:
                out.append(Issue(f"{loc}.{name}", "is required"))
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                self.check(item, properties[key], f"{loc}.{key}", out)
            elif extra is False:
                hint = self.hints(str(key), list(properties))
                out.append(Issue(f"{loc}.{key}", f"unknown property{hint}"))
            else:
                self.check(item, extra, f"{loc}.{key}", out)

    def _alternatives(
        self, value: Any, options: list[Any], keyword: str, loc: str, out: list[Issue]
    ) -> None:
        results: list[list[Issue]] = []
        for option in options:
            found: list[Issue] = []
            self.check(value, option, loc, found)
            results.append(found)
        passed = sum(1 for r in results if not r)
        if keyword == "oneOf" and passed > 1:
            out.append(Issue(loc, "matches more than one of the allowed forms"))
        if passed:
            return
        # Report the form whose type fits (fewest issues); else list the types allowed.
        fitting = [r for o, r in zip(options, results, strict=True) if self._type_fits(value, o)]
        if fitting:
            best: list[Issue] = min(fitting, key=len)
            out.extend(best)
        else:
            out.append(Issue(loc, "does not match any of the allowed forms"))

    def _type_fits(self, value: Any, schema: Any) -> bool:
        seen: set[int] = set()  # a $ref chain may loop; each hop is taken once
        while isinstance(schema, Mapping) and "$ref" in schema and "type" not in schema:
            if id(schema) in seen:
                return True
            seen.add(id(schema))
            schema = _resolve(self.root, schema["$ref"])
        if not isinstance(schema, Mapping) or "type" not in schema:
            return True
        names = _type_names(schema["type"]) or []
        return any(_TYPE_CHECKS.get(t, _never)(value) for t in names)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``True`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _short(value: Any) -> str:
    # An enum may list thousands of values; the message shows the start.
    text = repr(list(value)) if isinstance(value, list | tuple) else repr(value)
    return text if len(text) <= 200 else text[:199] + "…"


__all__ = ["check_schema", "validate_json_schema"]
