"""Definition files: YAML or JSON text into a document, refusing what would be silently
wrong (a key written twice) or cost without bound (an alias bomb) before it is data.
Shared by the coordinator (LoadWorkflow, workflowDir) and the SDK (``Client.load_workflow``,
``agentmesh workflow validate|define``), so a file is read the same way on both sides.

YAML aliases let a 1 KB file describe a billion values ("billion laughs"): PyYAML builds
them as shared objects, cheaply, and whatever walks the result afterwards (copying,
validation, JSON encoding) pays for every one. So the composed node graph is measured
first: the number of values and the depth each node expands to, memoised per node, so
the measurement is linear in the file. A file over the limits, or with a recursive
alias, is an issue located at the node that passes the limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 1 << 20
"""A definition file (YAML or JSON) as stored."""

MAX_JSON_DEPTH = 64
"""Nested objects and lists in the document; the document itself is level 1."""

MAX_DOCUMENT_VALUES = 20_000
"""Values in the document (objects, lists, strings, numbers, ...), keys not counted."""


class DocumentError(ValueError):
    """A file that is not an acceptable document: ``location`` (``<file name>: line L
    column C``, or the file name) and ``message`` say where and why."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


# libyaml's parser is C, several times faster, and caps nesting at 1000 levels by
# itself; the pure-Python one is the fallback when PyYAML was built without it.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):
    """A safe loader that refuses duplicate keys, which PyYAML would silently collapse
    (keeping only the last)."""


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            key = loader.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
    # deep=True builds nested mappings now, through this same constructor, so nested
    # duplicates are found too.
    return dict(loader.construct_mapping(node, deep=True))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def read_document(path: str | Path) -> dict[str, Any]:
    """The document in a ``.json``, ``.yaml`` or ``.yml`` file, not yet parsed (for
    templates).

    Raises ``DocumentError`` located at ``<file name>: line L column C`` (or at the
    file name) for: a file over ``MAX_FILE_BYTES``, a syntax error, a key written twice
    in any object (YAML and JSON), YAML aliases that expand past
    ``MAX_DOCUMENT_VALUES`` values or ``MAX_JSON_DEPTH`` levels, a recursive alias, a
    document that is not an object. Raises ``OSError`` when the file cannot be read.
    """
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        message = f"the file is {size} bytes, more than the limit of {MAX_FILE_BYTES} bytes"
        raise DocumentError(p.name, message)
    text = p.read_text(encoding="utf-8")
    suffix = p.suffix.lower()
    data: Any
    try:
        if suffix == ".json":
            data = json.loads(text, object_pairs_hook=_json_object)
        elif suffix in (".yaml", ".yml"):
            data = _load_yaml(text, p.name)
        else:
            message = f"unsupported file type '{p.suffix}' (use .json, .yaml or .yml)"
            raise DocumentError(p.name, message)
    except DocumentError:
        raise
    except json.JSONDecodeError as e:
        raise DocumentError(f"{p.name}: line {e.lineno} column {e.colno}", e.msg) from None
    except _DuplicateKey as e:
        # json's hook is not told where the object is; the file name must do.
        raise DocumentError(p.name, f"duplicate key '{e.key}'") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise DocumentError(_at(p.name, mark), e.problem or e.context or str(e)) from None
    except yaml.YAMLError as e:
        raise DocumentError(p.name, str(e)) from None
    except RecursionError:
        message = f"nested more than {MAX_JSON_DEPTH} levels deep, the limit for a definition"
        raise DocumentError(p.name, message) from None
    except ValueError as e:  # an integer of more than 4300 digits, in YAML or JSON
        raise DocumentError(p.name, str(e)) from None
    if not isinstance(data, dict):
        raise DocumentError(p.name, "a workflow definition must be an object")
    return data


def _load_yaml(text: str, name: str) -> Any:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problem = _expansion_problem(node)
        if problem is not None:
            at, message = problem
            raise DocumentError(_at(name, at.start_mark), message)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expansion_problem(root: yaml.Node) -> tuple[yaml.Node, str] | None:
    """The first node (in post-order) whose expansion passes a limit, and the message;
    None when the document is within them. Iterative and memoised per node, so linear
    in the composed graph however often aliases repeat a node."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) once expanded
    active: set[int] = set()  # nodes being expanded: met again, they are a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            active.discard(key)
            values, depth = 1, 0
            if not isinstance(node, yaml.ScalarNode):
                kids = _children(node)
                values += sum(done[id(k)][0] for k in kids)
                depth = 1 + max((done[id(k)][1] for k in kids), default=0)
            if values > MAX_DOCUMENT_VALUES:
                return node, (
                    f"the document expands to more than {MAX_DOCUMENT_VALUES} values "
                    "(through YAML aliases or otherwise), the limit for a definition"
                )
            if depth > MAX_JSON_DEPTH:
                return node, (
                    f"the document nests more than {MAX_JSON_DEPTH} levels deep, the limit "
                    "for a definition"
                )
            done[key] = (values, depth)
        elif key in active:
            return node, "a recursive alias: this node contains itself"
        elif key not in done:
            active.add(key)
            stack.append((node, True))
            stack.extend((k, False) for k in _children(node) if id(k) not in done)
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        # Scalar keys are not values (as in limits.check_document); a complex key
        # (``? [a, b]``) is expanded like any other node.
        out: list[yaml.Node] = []
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                out.append(key)
            out.append(value)
        return out
    return []


def _at(name: str, mark: Any) -> str:
    return f"{name}: line {mark.line + 1} column {mark.column + 1}" if mark else name


__all__ = [
    "MAX_DOCUMENT_VALUES",
    "MAX_FILE_BYTES",
    "MAX_JSON_DEPTH",
    "DocumentError",
    "read_document",
]
