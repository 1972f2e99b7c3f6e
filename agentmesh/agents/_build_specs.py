"""Reading what the build agent is asked to generate: component specs (a name, or
``{name, kind, description, props, methods, signature}``), their members and signatures,
into ``agentmesh.agents._templates`` values; and the identifiers generated code may use."""

from __future__ import annotations

import re
from typing import Any

from agentmesh.agents import _templates as tpl
from agentmesh.agents._inputs import bad

IDENT = re.compile(r"^[A-Za-z_$][\w$]*$")
_KINDS = {"component", "service", "utility", "hook", "module"}
_KIND_ALIASES = {"function": "utility", "util": "utility", "page": "component", "class": "service"}
_RESERVED_WORDS = (
    "break case catch class const continue debugger default delete do else enum export extends "
    "false finally for function if import in instanceof new null return super switch this "
    "throw true try typeof var void while with yield let static await"
)
RESERVED = frozenset(_RESERVED_WORDS.split())


def members(raw: Any, where: str) -> tuple[tpl.Member, ...]:
    """Props or fields from ``{name: type}`` (taken in name order) or a list of names or
    ``{name, type?, optional?}``; ValueError otherwise."""
    if raw is None:
        return ()
    if isinstance(raw, dict):  # JSON objects are unordered on the wire: sort by name
        items = sorted((str(k), v) for k, v in raw.items())
    elif isinstance(raw, list):
        items = []
        for m in raw:
            if isinstance(m, str):
                items.append((m, "string"))
            elif isinstance(m, dict) and isinstance(m.get("name"), str):
                opt = "?" if m.get("optional") is True else ""
                items.append((m["name"] + opt, m.get("type", "unknown")))
            else:
                raise ValueError(f"{where}: each entry needs a name")
    else:
        raise ValueError(f"{where}: must be an object of name: type or a list")
    return tuple(
        tpl.parse_member(f"{k}: {v if isinstance(v, str) else 'unknown'}") for k, v in items
    )


def signature(spec: dict[str, Any]) -> tpl.Signature | None:
    """A ``signature`` string, or ``params`` + ``returns``, read; None when neither is given."""
    if isinstance(spec.get("signature"), str):
        return tpl.parse_signature(spec["signature"])
    if "params" in spec or "returns" in spec:
        returns = spec.get("returns", "void")
        if not isinstance(returns, str):
            raise ValueError("returns: must be a type")
        return tpl.Signature(members(spec.get("params"), "params"), tpl.check_type(returns))
    return None


def methods(raw: Any) -> tuple[tuple[str, tpl.Signature], ...]:
    """Methods from ``{name: signature}`` (name order) or a list of ``{name, signature}``."""
    if raw is None:
        return ()
    if isinstance(raw, dict):
        items = sorted(raw.items())
    elif isinstance(raw, list):
        items = [
            (m.get("name"), m.get("signature", "() => void")) for m in raw if isinstance(m, dict)
        ]
        if len(items) != len(raw):
            raise ValueError("methods: each entry needs {name, signature}")
    else:
        raise ValueError("methods: must be an object of name: signature or a list")
    out = []
    for name, sig in items:
        if not isinstance(name, str) or not IDENT.match(name) or name in RESERVED:
            raise ValueError(f"methods: {name!r} is not a method name")
        out.append((name, tpl.parse_signature(sig if isinstance(sig, str) else "() => void")))
    return tuple(out)


def component_spec(item: Any, index: int) -> tpl.Spec:
    """A component from a name or a {name, kind, ...} object (BadInput otherwise)."""
    where = f"components[{index}]"
    raw: dict[str, Any] = {"name": item} if isinstance(item, str) else item
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise bad(f"{where}: must be a name or an object with a name")
    given = raw.get("kind")
    given = _KIND_ALIASES.get(given, given) if isinstance(given, str) else None
    base = raw["name"].strip()
    if given in _KINDS:
        kind = given
    elif re.match(r"use[A-Z]", base):
        kind = "hook"
    elif base[:1].islower():
        kind = "utility"
    elif re.search(r"(Service|Client|Api|Store|Storage|Repository)$", base):
        kind = "service"
    else:
        kind = "component"
    name = tpl.pascal(base) if kind in ("component", "service") else tpl.camel(base)
    if not name or not IDENT.match(name) or name[0].isdigit() or name in RESERVED:
        raise bad(f"{where}.name: {raw['name']!r} does not make an identifier")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise bad(f"{where}.description: must be a string")
    try:
        return tpl.Spec(
            name=name,
            kind=kind,
            description=description,
            props=members(raw.get("props"), "props"),
            methods=methods(raw.get("methods")),
            signature=signature(raw),
        )
    except ValueError as e:
        raise bad(f"{where}: {e}") from None
