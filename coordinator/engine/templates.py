"""Workflow templates: a definition with ``{{ name }}`` placeholders and declared
``parameters``, made concrete by ``instantiate_template`` before it is parsed. Sizes
are bounded while rendering (a parameter used many times cannot blow the result up
before the limits see it)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, cast

from coordinator.engine.definition import plain
from coordinator.engine.issues import Hints, Issue
from coordinator.engine.limits import (
    MAX_DEFINITION_BYTES,
    MAX_DOCUMENT_VALUES,
    MAX_SUGGESTIONS,
    check_document,
    check_value,
    count_values,
    json_size,
)
from coordinator.errors import DefinitionError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REQUIRED = object()


def instantiate_template(template: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A concrete definition from a template: ``{{ name }}`` placeholders replaced.

    The template declares ``parameters`` as ``{name: {default, description}}`` (no
    default: required) or as a list of required names. A string that is exactly one
    placeholder takes the parameter's value with its JSON type; a placeholder inside
    longer text is rendered as text (strings as they are, other values as JSON).
    Only ``{{ identifier }}`` is a placeholder: ``{{.Id}}`` and ``${...}`` stay as
    written. Raises ``DefinitionError`` for a missing or unknown parameter, for a
    placeholder naming an undeclared one, for a template or a parameter value over the
    limits of ``limits.check_document``, and for a result that would pass
    ``MAX_DEFINITION_BYTES`` or ``MAX_DOCUMENT_VALUES``: that is found while rendering,
    before the result is built whole (a 1 MB value used 100 times stops after the
    first). The result has no ``parameters`` key.
    """
    if over := check_document(template):
        raise DefinitionError(over)
    issues: list[Issue] = []
    hints = Hints(MAX_SUGGESTIONS)
    values = _declared_parameters(template.get("parameters"), issues)
    for key in params:
        if key not in values:
            hint = hints(str(key), list(values))
            issues.append(Issue("parameters", f"unknown parameter '{key}'{hint}"))
    sizes: dict[str, tuple[int, int]] = {}  # parameter -> (values, bytes) of its value
    for key, default in values.items():
        if key in params:
            if over := check_value(params[key], f"parameters.{key}"):
                issues += over
                values[key] = None
            else:
                values[key] = params[key]
        elif default is _REQUIRED:
            issues.append(Issue(f"parameters.{key}", "required parameter has no value"))
            values[key] = None  # rendered only to find further issues, then discarded
        sizes[key] = (count_values(values[key]), json_size(values[key]))
    body = {k: v for k, v in template.items() if k != "parameters"}
    render = _Render(values, sizes, issues, hints, json_size(body), count_values(body))
    try:
        result = render.value(body, "")
    except _TooLarge as e:
        raise DefinitionError([*issues, Issue("definition", str(e))]) from None
    if issues:
        raise DefinitionError(issues)
    return cast("dict[str, Any]", result)


def _declared_parameters(raw: Any, issues: list[Issue]) -> dict[str, Any]:
    declared: dict[str, Any] = {}
    if raw is None:
        return declared
    if isinstance(raw, list) and all(isinstance(k, str) for k in raw):
        raw = dict.fromkeys(raw)
    if not isinstance(raw, Mapping):
        issues.append(Issue("parameters", "must be an object or a list of names"))
        return declared
    for key, spec in raw.items():
        if not isinstance(key, str) or not _PARAMETER.fullmatch(key):
            issues.append(Issue("parameters", f"'{key}' is not a valid parameter name"))
        elif spec is not None and not isinstance(spec, Mapping):
            issues.append(Issue(f"parameters.{key}", "must be an object {default, description}"))
        else:
            fields = spec or {}
            for extra in sorted(set(fields) - {"default", "description"}, key=str):
                issues.append(Issue(f"parameters.{key}", f"unknown field '{extra}'"))
            declared[key] = plain(fields["default"]) if "default" in fields else _REQUIRED
    return declared


class _TooLarge(Exception):
    """The instantiated definition would pass a size limit; rendering stops."""


class _Render:
    """Placeholders replaced, with a running lower bound of the result's size (its
    values, and its bytes as JSON), so a result over the limits is refused as soon as
    the bound passes them rather than after it was built. The bound starts at the
    body as written and follows every replacement."""

    def __init__(
        self,
        values: Mapping[str, Any],
        sizes: Mapping[str, tuple[int, int]],
        issues: list[Issue],
        hints: Hints,
        size: int,
        count: int,
    ) -> None:
        self.values = values
        self.sizes = sizes
        self.issues = issues
        self.hints = hints
        self.size = size
        self.count = count

    def grow(self, count: int, size: int) -> None:
        self.count += count
        self.size += size
        if self.size > MAX_DEFINITION_BYTES:
            raise _TooLarge(
                f"the instantiated definition would be more than {MAX_DEFINITION_BYTES} bytes "
                "as JSON, the limit for a definition"
            )
        if self.count > MAX_DOCUMENT_VALUES:
            raise _TooLarge(
                f"the instantiated definition would have more than {MAX_DOCUMENT_VALUES} "
                "values, the limit for a definition"
            )

    def value(self, value: Any, loc: str) -> Any:
        if isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                here = f"{loc}.{k}" if loc else str(k)
                key = self.text(k, here) if isinstance(k, str) else k
                out[key] = self.value(v, here)
            return out
        if isinstance(value, list | tuple):
            return [self.value(v, f"{loc}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, str):
            return plain(value)
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole and whole.group(1) in self.values:
            name = whole.group(1)
            count, size = self.sizes[name]
            self.grow(count - 1, size - len(value) - 2)  # replaces the string "{{ x }}"
            return plain(self.values[name])  # keeps the parameter's JSON type
        return self.text(value, loc)

    def text(self, value: str, loc: str) -> str:
        if "{{" not in value:
            return value

        def replace(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self.values:
                hint = self.hints(name, list(self.values))
                self.issues.append(Issue(loc or "definition", f"unknown parameter '{name}'{hint}"))
                return m.group(0)
            v = self.values[name]
            text = v if isinstance(v, str) else json.dumps(v, default=str)
            self.grow(0, len(text) - len(m.group(0)))
            return text

        return _PLACEHOLDER.sub(replace, value)


__all__ = ["instantiate_template"]
