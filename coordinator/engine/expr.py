"""The expression language of workflow definitions (reference: ``docs/expressions.md``).

A step string that starts with ``$`` (but not ``${``) is an expression, e.g.
``'$.variables.projectPath || $.input.projectPath'``; any other string is literal text
in which ``${...}`` interpolates an expression, e.g. ``'Feature: ${$.input.feature}'``.
Expressions are tokenized and parsed here and evaluated as a tree over plain data:
nothing reaches ``eval`` or Python attribute access, so a definition can read its scope
and never run code. Compiling is cached and linear in the source (one regular
expression reads each token); evaluation is linear in the tree, and the tree is
bounded (4096 characters, 500 nodes, depth 64). A template is bounded to 4096
characters too (``limits.MAX_EXPRESSION_LENGTH``).

    ValueError
    ├── ExpressionError   the text does not parse or exceeds a limit (compile time)
    └── EvaluationError   a valid expression failed on this scope: a type error such
                          as ``"a" - 1``, division by zero, a result too large

One piece, though long: the lexer, parser, compiler and evaluator of one small
language share its token and node types; split, each part would import all the others.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeAlias, TypeVar

from coordinator.engine.limits import MAX_EXPRESSION_LENGTH
from coordinator.errors import EvaluationError, ExpressionError

_MAX_SOURCE = MAX_EXPRESSION_LENGTH  # an expression's, and a template's, characters
_MAX_NODES = 500
_MAX_DEPTH = 64
_MAX_STRING = 1 << 20  # characters, for strings the language builds (+, templates)
_MAX_INT_BITS = 1024  # about float's range; Python ints would otherwise grow unbounded


class _Fail(Exception):
    """A syntax error before the source is attached; becomes ``ExpressionError``."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


class _EvalFail(Exception):
    """A runtime error before the source is attached; becomes ``EvaluationError``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- tokens -------------------------------------------------------------------------


class _Token(NamedTuple):  # a tuple: several times cheaper to build than a dataclass
    kind: str  # "num", "str", "name", "op" or "end"
    text: str  # as written, for error messages
    pos: int
    value: Any = None


# Longest first, so "===" is not read as "==" then "=".
_OPERATORS = (
    *("===", "!==", "==", "!=", "<=", ">=", "&&", "||", "??"),
    *"<>+-*/%!?:.,()[]$",
)
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD_TAIL = re.compile(r"[A-Za-z0-9_.]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}
_KEYWORDS: dict[str, Any] = {"true": True, "false": False, "null": None, "undefined": None}


# One token per match, after blanks. Strings without escapes take the fast path;
# any other string (escapes, or no closing quote) is read by _read_string, which says
# precisely what is wrong. Leading characters are disjoint, so the order of the
# alternatives only matters among operators (longest first).
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>{ops})
    | (?P<str>'[^'\\]*(?:\\.[^'\\]*)*'|"[^"\\]*(?:\\.[^"\\]*)*")
    | (?P<quote>['"])
    )?""".replace("{ops}", "|".join(re.escape(op) for op in _OPERATORS)),
    re.VERBOSE,
)


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    append = tokens.append
    new = tuple.__new__  # _Token(...) goes through a Python-level __new__; this does not
    for match in _TOKEN.finditer(source):
        kind = match.lastgroup
        if kind is None:  # only blanks matched: the end, or a character no token has
            end = match.end()
            if end < len(source):
                raise _Fail(f"unexpected character '{source[end]}'", end)
            break
        text = match.group(kind)
        start = match.start(kind)
        if kind in {"op", "name"}:
            append(new(_Token, (kind, text, start, None)))
        elif kind == "num":
            if _NAME.match(source, match.end()):  # "1e", "2px": not a number
                tail = _WORD_TAIL.match(source, start)
                assert tail is not None
                raise _Fail(f"invalid number '{tail.group()}'", start)
            value: int | float = float(text) if any(ch in text for ch in ".eE") else int(text)
            if not math.isfinite(value):
                raise _Fail(f"number out of range '{text}'", start)
            append(new(_Token, ("num", text, start, value)))
        elif kind == "str" and "\\" not in text:
            append(new(_Token, ("str", text, start, text[1:-1])))
        else:  # escapes to decode, or no closing quote: read by hand, precisely
            _read_string(source, start, tokens)
    append(_Token("end", "", len(source)))
    return tokens


def _read_string(source: str, start: int, tokens: list[_Token]) -> int:
    quote, chars, j = source[start], [], start + 1
    while j < len(source) and source[j] != quote:
        if source[j] == "\\":
            escape = source[j + 1 : j + 2]
            if not escape:
                raise _Fail("unterminated string", start)
            if escape not in _ESCAPES:
                raise _Fail(f"invalid escape sequence '\\{escape}'", j)
            chars.append(_ESCAPES[escape])
            j += 2
        else:
            chars.append(source[j])
            j += 1
    if j >= len(source):
        raise _Fail("unterminated string", start)
    tokens.append(_Token("str", source[start : j + 1], start, "".join(chars)))
    return j + 1


# --- syntax tree --------------------------------------------------------------------


class _Node(NamedTuple):
    """``kind`` is literal, root, member, index, array, unary, binary or cond; ``value``
    the literal, the member name (``.name`` and ``["name"]``) or the operator. A tuple,
    as cheap to build as a node can be."""

    kind: str
    value: Any = None
    children: tuple[_Node, ...] = ()
    # Recorded so the parser can refuse a tree that evaluation, one recursion per
    # level, would descend too deep into.
    depth: int = 1


# Binding strength of binary operators, as in JavaScript; ?: binds loosest of all.
_PRECEDENCE = {
    "??": 1,
    "||": 2,
    "&&": 3,
    **dict.fromkeys(("==", "!=", "===", "!=="), 4),
    **dict.fromkeys(("<", "<=", ">", ">="), 5),
    **dict.fromkeys(("+", "-"), 6),
    **dict.fromkeys(("*", "/", "%"), 7),
}


class _Parser:
    """Recursive descent for prefix/postfix forms, precedence climbing for binaries."""

    def __init__(self, source: str) -> None:
        self._tokens = _tokenize(source)
        self._i = 0
        self._nodes = 0
        self._nesting = 0  # parser recursion; parentheses count though they add no node

    def parse(self) -> _Node:
        if self._peek().kind == "end":
            raise _Fail("empty expression", 0)
        node = self._conditional()
        if self._peek().kind != "end":
            raise self._unexpected(self._peek())
        return node

    def _peek(self) -> _Token:
        return self._tokens[self._i]

    def _next(self) -> _Token:
        token = self._tokens[self._i]
        if token.kind != "end":
            self._i += 1
        return token

    def _at(self, op: str) -> bool:
        token = self._tokens[self._i]
        return token.kind == "op" and token.text == op

    def _expect(self, op: str, message: str) -> None:
        if not self._at(op):
            raise _Fail(message, self._peek().pos)
        self._next()

    @staticmethod
    def _unexpected(token: _Token) -> _Fail:
        if token.kind == "end":
            return _Fail("unexpected end of expression", token.pos)
        return _Fail(f"unexpected token '{token.text}'", token.pos)

    def _enter(self, pos: int) -> None:
        # An error abandons the whole parse, so only the success paths leave.
        self._nesting += 1
        if self._nesting > _MAX_DEPTH:
            raise _Fail(f"expression nested too deeply (more than {_MAX_DEPTH} levels)", pos)

    def _new(self, pos: int, kind: str, value: Any = None, *children: _Node) -> _Node:
        depth = 1
        for child in children:  # a loop, not max(): nodes have at most three children
            if child.depth >= depth:
                depth = child.depth + 1
        node = _Node(kind, value, children, depth)
        self._nodes += 1
        if self._nodes > _MAX_NODES:
            raise _Fail(f"expression too complex (more than {_MAX_NODES} nodes)", pos)
        if node.depth > _MAX_DEPTH:
            raise _Fail(f"expression nested too deeply (more than {_MAX_DEPTH} levels)", pos)
        return node

    def _conditional(self) -> _Node:
        self._enter(self._peek().pos)
        node = self._binary(1)
        if self._at("?"):
            pos = self._next().pos
            then = self._conditional()
            self._expect(":", "expected ':' in conditional")
            other = self._conditional()
            node = self._new(pos, "cond", None, node, then, other)
        self._nesting -= 1
        return node

    def _binary(self, min_precedence: int) -> _Node:
        left = self._unary()
        while True:
            token = self._peek()
            precedence = _PRECEDENCE.get(token.text, 0) if token.kind == "op" else 0
            if precedence < min_precedence:  # 0 for anything that is not a binary op
                return left
            self._next()
            right = self._binary(precedence + 1)  # +1: left-associative
            left = self._new(token.pos, "binary", token.text, left, right)

    def _unary(self) -> _Node:
        token = self._peek()
        if token.kind == "op" and token.text in ("!", "-", "+"):
            self._next()
            self._enter(token.pos)
            operand = self._unary()
            self._nesting -= 1
            return self._new(token.pos, "unary", token.text, operand)
        return self._postfix()

    def _postfix(self) -> _Node:
        node = self._primary()
        while True:
            token = self._peek()
            if self._at("."):
                self._next()
                name = self._next()
                if name.kind != "name":
                    raise _Fail("expected a property name after '.'", name.pos)
                node = self._new(token.pos, "member", name.text, node)
            elif self._at("["):
                self._next()
                key = self._conditional()
                self._expect("]", "expected ']'")
                if key.kind == "literal" and isinstance(key.value, str):
                    node = self._new(token.pos, "member", key.value, node)
                else:
                    node = self._new(token.pos, "index", None, node, key)
            else:
                return node

    def _primary(self) -> _Node:
        token = self._next()
        if token.kind in ("num", "str"):
            return self._new(token.pos, "literal", token.value)
        if token.kind == "name":
            if token.text not in _KEYWORDS:
                raise _Fail(f"unknown identifier '{token.text}' (paths start with $)", token.pos)
            return self._new(token.pos, "literal", _KEYWORDS[token.text])
        if token.kind == "op" and token.text == "$":
            return self._new(token.pos, "root")
        if token.kind == "op" and token.text == "(":
            node = self._conditional()
            self._expect(")", "expected ')'")
            return node
        if token.kind == "op" and token.text == "[":
            items: list[_Node] = []
            while not self._at("]"):
                items.append(self._conditional())
                if not self._at(","):
                    break
                self._next()
            self._expect("]", "expected ',' or ']' in array")
            return self._new(token.pos, "array", None, *items)
        raise self._unexpected(token)


# --- values -------------------------------------------------------------------------


def truthy(value: Any) -> bool:
    """JavaScript truthiness: ``None``, ``False``, ``0``, NaN and ``""`` are false.

    Everything else is true, including ``[]`` and ``{}``.
    """
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _number_text(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e21:  # JS prints 2.0 as "2"
        return str(int(value))
    return repr(value)


def _scalar_text(value: Any, none: str) -> str | None:
    """JS string conversion of a scalar; ``None`` when ``value`` is not one."""
    if isinstance(value, str):
        return value
    if value is None:
        return none
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return _number_text(value)
    return None


def _plain(value: Any) -> Any:
    """A copy of JSON-like data with fresh dicts and lists, sharing nothing mutable."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _json_text(value: Any) -> str:
    # Containers by hand rather than json.dumps, so numbers print as in JS (2.0 as
    # "2", NaN as null, as JSON.stringify does) and any Mapping is accepted.
    if isinstance(value, Mapping):
        items = (f"{_json_text(str(k))}:{_json_text(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and not math.isfinite(value):
        return "null"
    text = _scalar_text(value, "null")
    return text if text is not None else _json_text(str(value))


_MISSING = object()


def _member(value: Any, name: str) -> Any:
    # Only Mapping keys, never Python attributes: "$.__class__" is a missing key.
    if isinstance(value, Mapping):
        found = value.get(name, _MISSING)
        if found is not _MISSING:
            return found
        return len(value) if name == "length" else None
    if isinstance(value, str | list | tuple) and name == "length":
        return len(value)
    return None


def _index(value: Any, key: Any) -> Any:
    if isinstance(key, str):
        return _member(value, key)
    if isinstance(key, float) and key.is_integer():
        key = int(key)
    if not isinstance(key, int) or isinstance(key, bool):
        return None
    if isinstance(value, str | list | tuple):
        return value[key] if 0 <= key < len(value) else None
    if isinstance(value, Mapping):
        return value.get(str(key))
    return None


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, str) or isinstance(b, str):
        left, right = _scalar_text(a, "null"), _scalar_text(b, "null")
        if left is None or right is None:  # JS would print arrays; we refuse
            raise _EvalFail(f"cannot apply '+' to {_type_name(a)} and {_type_name(b)}")
        if len(left) + len(right) > _MAX_STRING:
            raise _EvalFail(f"string result too large (more than {_MAX_STRING} characters)")
        return left + right
    return _arithmetic("+", a, b)


def _arithmetic(op: str, a: Any, b: Any) -> Any:
    if not (_is_number(a) and _is_number(b)):
        raise _EvalFail(f"cannot apply '{op}' to {_type_name(a)} and {_type_name(b)}")
    if op in ("/", "%") and b == 0:
        raise _EvalFail("division by zero")
    try:
        if op == "+":
            result = a + b
        elif op == "-":
            result = a - b
        elif op == "*":
            result = a * b
        elif op == "/":
            exact = isinstance(a, int) and isinstance(b, int) and a % b == 0
            result = a // b if exact else a / b  # 4 / 2 is 2, as JSON would show it
        elif isinstance(a, int) and isinstance(b, int):
            result = abs(a) % abs(b) * (-1 if a < 0 else 1)  # JS: sign of the dividend
        else:
            result = math.fmod(a, b)
        out_of_range = (
            result.bit_length() > _MAX_INT_BITS
            if isinstance(result, int)
            else not math.isfinite(result) and _finite(a) and _finite(b)
        )
    except OverflowError:
        out_of_range = True
    if out_of_range:
        raise _EvalFail("number out of range")
    return result


def _finite(value: int | float) -> bool:
    return isinstance(value, int) or math.isfinite(value)


def _equal(a: Any, b: Any) -> bool:
    """Strict equality, but 1 == 1.0 and arrays/objects compare by content."""
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return False


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _compare(op: str, a: Any, b: Any) -> bool:
    # Numbers with numbers, strings with strings; any other pair is simply false.
    if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
        return _ORDER[op](a, b)
    return False


def _binary_function(op: str) -> Callable[[Any, Any], Any]:
    if op == "+":
        return _add
    if op in ("-", "*", "/", "%"):
        return functools.partial(_arithmetic, op)
    if op in ("==", "==="):
        return _equal
    if op in ("!=", "!=="):
        return lambda a, b: not _equal(a, b)
    return functools.partial(_compare, op)


def _negate(op: str, value: Any) -> Any:
    if not _is_number(value):
        raise _EvalFail(f"cannot apply unary '{op}' to {_type_name(value)}")
    return -value if op == "-" else value


# --- compiling the tree into closures ---------------------------------------------------

_Scope: TypeAlias = Mapping[str, Any]
_Fn: TypeAlias = Callable[[_Scope], Any]


def _compile(node: _Node) -> _Fn:
    fns = tuple(_compile(child) for child in node.children)
    match node.kind, node.value:
        case "literal", value:
            return lambda scope: value
        case "root", _:
            return lambda scope: scope
        case "member", name:
            (get,) = fns
            return lambda scope: _member(get(scope), name)
        case "index", _:
            get, key = fns
            return lambda scope: _index(get(scope), key(scope))
        case "array", _:
            return lambda scope: [fn(scope) for fn in fns]
        case "unary", "!":
            (fn,) = fns
            return lambda scope: not truthy(fn(scope))
        case "unary", op:
            (fn,) = fns
            return lambda scope: _negate(op, fn(scope))
        case "binary", "||" | "&&" | "??" as op:
            return _short_circuit(op, *fns)
        case "binary", op:
            lhs, rhs = fns
            apply = _binary_function(op)
            return lambda scope: apply(lhs(scope), rhs(scope))
        case "cond", _:
            test, then, other = fns
            return lambda scope: then(scope) if truthy(test(scope)) else other(scope)
    raise AssertionError(node)  # pragma: no cover


def _short_circuit(op: str, left: _Fn, right: _Fn) -> _Fn:
    # The operand's value is the result, as in JS: "" || "b" is "b", not True.
    def either(scope: _Scope) -> Any:
        value = left(scope)
        return value if truthy(value) else right(scope)

    def both(scope: _Scope) -> Any:
        value = left(scope)
        return right(scope) if truthy(value) else value

    def nullish(scope: _Scope) -> Any:
        value = left(scope)
        return right(scope) if value is None else value

    return {"||": either, "&&": both, "??": nullish}[op]


def _static_path(node: _Node) -> tuple[str, ...] | None:
    if node.kind == "root":
        return ()
    if node.kind == "member":
        base = _static_path(node.children[0])
        return None if base is None else (*base, node.value)
    return None


def _collect_paths(node: _Node, found: dict[tuple[str, ...], None]) -> None:
    path = _static_path(node)
    if path is not None:
        found[path] = None  # a dict: ordered and deduplicated
        return
    for child in node.children:
        _collect_paths(child, found)


# --- public API ---------------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    """A compiled expression. ``Expression(source)`` parses, or raises ``ExpressionError``.

    ``paths`` are the static member paths it reads, in order, e.g.
    ``(("variables", "projectPath"), ("input", "projectPath"))``; ``roots`` their first
    names, plus ``"$"`` when the scope itself is read whole or by a computed key.
    Prefer ``compile_expression``, which caches.
    """

    source: str
    roots: frozenset[str] = field(init=False)
    paths: tuple[tuple[str, ...], ...] = field(init=False)
    _tree: _Node = field(init=False, repr=False, compare=False)
    # Built on the first evaluate: validating a definition compiles every expression
    # and needs only roots and paths.
    _run: _Fn | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if len(self.source) > _MAX_SOURCE:
            raise ExpressionError(
                f"expression too long ({len(self.source)} characters, limit {_MAX_SOURCE})",
                self.source,
                _MAX_SOURCE,
            )
        try:
            tree = _Parser(self.source).parse()
        except _Fail as e:
            raise ExpressionError(e.message, self.source, e.position) from None
        found: dict[tuple[str, ...], None] = {}
        _collect_paths(tree, found)
        object.__setattr__(self, "paths", tuple(p for p in found if p))
        object.__setattr__(self, "roots", frozenset(p[0] if p else "$" for p in found))
        object.__setattr__(self, "_tree", tree)

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        """The value of the expression in ``scope``, sharing data with it (do not mutate).

        Raises ``EvaluationError`` on a type error, division by zero or an oversized
        result. Reading a missing member is not an error: it gives ``None``.
        """
        run = self._run
        if run is None:  # two threads may both build it; either result is the same
            run = _compile(self._tree)
            object.__setattr__(self, "_run", run)
        try:
            return run(scope)
        except _EvalFail as e:
            raise EvaluationError(e.message, self.source) from None
        except RecursionError:  # only from comparing absurdly deep data
            raise EvaluationError("value nested too deeply", self.source) from None


@dataclass(frozen=True)
class Template:
    """Literal text with ``${expr}`` interpolations; ``Template(source)`` parses.

    ``parts`` alternate literal ``str`` (verbatim: ``$(`` and a bare ``$.x`` stay as
    they are) and ``Expression``. Prefer ``compile_template``, which caches.
    """

    source: str
    parts: tuple[str | Expression, ...] = field(init=False)

    def __post_init__(self) -> None:
        if len(self.source) > _MAX_SOURCE:
            raise ExpressionError(
                f"template too long ({len(self.source)} characters, limit {_MAX_SOURCE})",
                self.source,
                _MAX_SOURCE,
            )
        parts: list[str | Expression] = []
        start = 0
        while (opening := self.source.find("${", start)) >= 0:
            closing = _interpolation_end(self.source, opening + 2)
            if closing < 0:
                raise ExpressionError("unterminated interpolation", self.source, opening)
            if opening > start:
                parts.append(self.source[start:opening])
            try:
                parts.append(compile_expression(self.source[opening + 2 : closing]))
            except ExpressionError as e:  # re-anchored to the whole template
                raise ExpressionError(e.message, self.source, opening + 2 + e.position) from None
            start = closing + 1
        if start < len(self.source):
            parts.append(self.source[start:])
        object.__setattr__(self, "parts", tuple(parts))

    @property
    def roots(self) -> frozenset[str]:
        """The top-level names the template's expressions read (``input``, ``variables``, ...)."""
        return frozenset().union(*(p.roots for p in self.parts if isinstance(p, Expression)))

    @property
    def paths(self) -> tuple[tuple[str, ...], ...]:
        """The attribute paths its expressions read, in order, without repeats."""
        found = (path for p in self.parts if isinstance(p, Expression) for path in p.paths)
        return tuple(dict.fromkeys(found))

    def render(self, scope: Mapping[str, Any]) -> str:
        """The text with each interpolation's value in it: ``None`` as "", ``True`` as
        "true", ``2.0`` as "2", arrays and objects as compact JSON.

        Raises ``EvaluationError`` from an interpolation, or when the text would pass 1 MiB.
        """
        chunks, size = [], 0
        for part in self.parts:
            if isinstance(part, str):
                text = part
            else:
                value = part.evaluate(scope)
                scalar = _scalar_text(value, "")
                text = scalar if scalar is not None else _json_text(value)
            size += len(text)
            if size > _MAX_STRING:
                raise EvaluationError(
                    f"string result too large (more than {_MAX_STRING} characters)", self.source
                )
            chunks.append(text)
        return "".join(chunks)


def _interpolation_end(source: str, start: int) -> int:
    """Index of the "}" closing the interpolation whose text begins at ``start``, or -1.

    Braces and quotes inside the expression are skipped, so ``${$.a["}"]}`` works.
    """
    depth, quote, i = 0, "", start
    while i < len(source):
        c = source[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


C = TypeVar("C")


def _cached(build: Callable[[str], C], size: int) -> Callable[[str], C]:
    """``build`` with its results cached, failures too (a definition may repeat one bad
    expression in every step): the cache hands back the ``ExpressionError`` to raise."""

    @functools.lru_cache(maxsize=size)
    def compiled(text: str) -> C | ExpressionError:
        try:
            return build(text)
        except ExpressionError as e:
            return e

    def get(text: str) -> C:
        out = compiled(text)
        if isinstance(out, ExpressionError):
            raise out.with_traceback(None)
        return out

    get.cache_info = compiled.cache_info  # type: ignore[attr-defined]
    return get


_expressions = _cached(Expression, 4096)
_templates = _cached(Template, 1024)


def compile_expression(source: str) -> Expression:
    """``Expression(source)``, cached. Raises ``ExpressionError``."""
    return _expressions(source)


def compile_template(value: str) -> Template:
    """``Template(value)``, cached. Raises ``ExpressionError`` (positions in ``value``)."""
    return _templates(value)


def is_expression(value: str) -> bool:
    """Whether the whole string is an expression: it starts (after blanks) with ``$``.

    A string starting with ``${`` is a template instead, so ``"${$.a}/src"`` works.
    """
    stripped = value.lstrip()
    return stripped.startswith("$") and not stripped.startswith("${")


def has_interpolation(value: str) -> bool:
    """Whether a literal string holds a ``${...}`` part."""
    return "${" in value


def evaluate_mapping(value: Any, scope: Mapping[str, Any]) -> Any:
    """Resolve a step's input or output mapping against ``scope``.

    Walks mappings and lists; an expression string becomes its value, a string with
    ``${...}`` becomes rendered text, anything else is kept. The result is fresh
    dicts and lists, sharing nothing mutable with ``value`` or ``scope``.
    Raises ``ExpressionError`` or ``EvaluationError`` from any string in it.
    """
    if isinstance(value, str):
        if is_expression(value):
            return _plain(compile_expression(value).evaluate(scope))
        if has_interpolation(value):
            return compile_template(value).render(scope)
        return value
    if isinstance(value, Mapping):
        return {k: evaluate_mapping(v, scope) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [evaluate_mapping(v, scope) for v in value]
    return _plain(value)
