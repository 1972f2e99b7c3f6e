"""Secret values out of everything the coordinator keeps or shows.

A value is secret when its field's name says so (``Redactor.patterns``: a name whose
letters, lowercased, end with ``password``, ``token``, ``apikey``, ``secret``, ... as
configured), when a workflow's input schema marks the field ``secret: true`` (that name
is then secret throughout the execution), or when it is a string equal to one found
that way (a copy under another name, or inside a longer string, is caught by value).
``Secrets`` holds what one execution knows: names and values.

Two transformations, both returning fresh copies:

- ``redact``: what is shown (API answers, the CLI, errors): secret fields become
  ``REDACTED``, known values inside strings are replaced by it, sealed values too.
- ``seal``: what is stored (the history the engine replays): secret values become
  ``{"$sealed": <Fernet token>}``, encrypted with the history key, so a recovered
  execution gets them back (``unseal``). Without a key they are stored as ``REDACTED``
  and a recovered execution sees that marker in their place.

Values shorter than ``MIN_VALUE`` are not matched by value (a secret "1" would
redact every "1"); they are still redacted by name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from coordinator.config import DEFAULT_REDACT_FIELDS
from coordinator.errors import FailedPrecondition

REDACTED = "[redacted]"
SEALED = "$sealed"
MIN_VALUE = 4
_NOT_LETTERS = re.compile(r"[^a-z0-9]")


def _normal(name: str) -> str:
    return _NOT_LETTERS.sub("", name.lower())


@dataclass(slots=True)
class Secrets:
    """What one execution knows to be secret: field names (normalised) and values."""

    names: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.names or self.values)

    def merge(self, other: Secrets) -> None:
        """Know what ``other`` knows too (a child execution, its parent's secrets)."""
        self.names |= other.names
        self.values |= other.values


#: Field names whose answer ``Redactor.secret_name`` remembers (beyond: computed each time).
NAMES_KEPT = 10_000


class Redactor:
    """The coordinator's rules: name ``patterns`` and the history ``key`` (a Fernet
    key, or None to store markers)."""

    def __init__(
        self, patterns: Iterable[str] = DEFAULT_REDACT_FIELDS, key: str | None = None
    ) -> None:
        self.patterns = tuple(_normal(p) for p in patterns if _normal(p))
        self._fernet = Fernet(key.encode()) if key else None
        # name -> (its normal form, whether a pattern marks it): field names repeat
        # across every task and event, and the answer depends on the name alone.
        self._names: dict[str, tuple[str, bool]] = {}
        #: Why there is no key (said in the log when a secret is first stored without one).
        self.no_key_note = ""

    @property
    def sealing(self) -> bool:
        """Whether stored secrets are encrypted (else stored as ``REDACTED``)."""
        return self._fernet is not None

    def secret_name(self, name: str, known: Secrets | None = None) -> bool:
        """Whether a field called ``name`` holds a secret."""
        found = self._names.get(name)
        if found is None:
            n = _normal(name)
            found = (n, any(n.endswith(p) for p in self.patterns))
            if len(self._names) < NAMES_KEPT:
                self._names[name] = found
        return found[1] or (known is not None and found[0] in known.names)

    def schema_names(self, schema: Any) -> set[str]:
        """The (normalised) names of the fields ``schema`` marks ``secret: true``, at
        any depth of ``properties`` and ``items``."""
        out: set[str] = set()
        stack = [schema]
        while stack:
            node = stack.pop()
            if not isinstance(node, Mapping):
                continue
            props = node.get("properties")
            if isinstance(props, Mapping):
                for name, sub in props.items():
                    if isinstance(sub, Mapping) and sub.get("secret") is True:
                        out.add(_normal(str(name)))
                    stack.append(sub)
            for key in ("items", "additionalProperties"):
                stack.append(node.get(key))
            for key in ("anyOf", "oneOf", "allOf"):
                branches = node.get(key)
                if isinstance(branches, list):
                    stack.extend(branches)
        return out

    def discover(self, value: Any, known: Secrets) -> None:
        """Add to ``known`` the values ``value`` holds under secret names."""

        def collect(v: Any) -> None:
            if isinstance(v, str):
                if len(v) >= MIN_VALUE:
                    known.values.add(v)
            elif isinstance(v, Mapping):
                for item in v.values():
                    collect(item)
            elif isinstance(v, list | tuple):
                for item in v:
                    collect(item)
            elif v is not None and not isinstance(v, bool) and len(str(v)) >= MIN_VALUE:
                known.values.add(str(v))

        def walk(v: Any) -> None:
            if isinstance(v, Mapping):
                for k, item in v.items():
                    if isinstance(k, str) and self.secret_name(k, known):
                        collect(item)
                    else:
                        walk(item)
            elif isinstance(v, list | tuple):
                for item in v:
                    walk(item)

        walk(value)

    def redact(self, value: Any, known: Secrets | None = None) -> Any:
        """``value`` as it may be shown."""
        return self._map(value, known or Secrets(), None)

    def redact_text(self, text: str, known: Secrets) -> str:
        """``text`` with every known secret value replaced (messages, errors)."""
        for secret in sorted(known.values, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def seal(self, value: Any, known: Secrets) -> Any:
        """``value`` as it may be stored (see the module docstring)."""
        fernet = self._fernet
        if fernet is None:
            return self.redact(value, known)

        def sealed(original: Any) -> Any:
            return {SEALED: fernet.encrypt(json.dumps(original).encode()).decode()}

        return self._map(value, known, sealed)

    def seal_text(self, text: str) -> str:
        """``text`` encrypted with the history key (a Fernet token), for a secret the
        coordinator must keep (a webhook's signing key); ``FailedPrecondition`` without
        a key."""
        if self._fernet is None:
            raise FailedPrecondition(
                "storing a secret needs the history key (secret 'history-key', "
                f"history_key_secret){': ' + self.no_key_note if self.no_key_note else ''}"
            )
        return self._fernet.encrypt(text.encode()).decode()

    def open_text(self, token: str) -> str:
        """``seal_text``'s token decrypted; ``FailedPrecondition`` when the key cannot
        (no key, or another one)."""
        if self._fernet is None:
            raise FailedPrecondition("a stored secret needs the history key to be read")
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, ValueError):
            raise FailedPrecondition(
                "a stored secret was encrypted with another history key"
            ) from None

    def unseal(self, value: Any) -> Any:
        """``value`` with every sealed part decrypted (``REDACTED`` where the key
        cannot decrypt it: a key that was replaced)."""
        if isinstance(value, Mapping):
            if len(value) == 1 and SEALED in value:
                return self._open(value[SEALED])
            return {k: self.unseal(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.unseal(v) for v in value]
        return value

    def _open(self, token: Any) -> Any:
        if self._fernet is None or not isinstance(token, str):
            return REDACTED
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError):
            return REDACTED

    def _map(self, value: Any, known: Secrets, seal: Callable[[Any], Any] | None) -> Any:
        """Secret fields and strings holding known values hidden: sealed whole when
        ``seal`` is given, else redacted (a string keeps its other text)."""
        values = sorted((v for v in known.values if len(v) >= MIN_VALUE), key=len, reverse=True)

        def hide(v: Any) -> Any:
            return REDACTED if seal is None else seal(v)

        def walk(v: Any) -> Any:
            if isinstance(v, str):
                if not any(s in v for s in values):
                    return v
                if seal is not None:
                    return seal(v)
                for s in values:
                    v = v.replace(s, REDACTED)
                return v
            if isinstance(v, Mapping):
                if len(v) == 1 and SEALED in v:  # sealed already: shown as the marker
                    return REDACTED if seal is None else dict(v)
                return {
                    k: hide(item)
                    if isinstance(k, str) and item is not None and self.secret_name(k, known)
                    else walk(item)
                    for k, item in v.items()
                }
            if isinstance(v, list | tuple):
                return [walk(item) for item in v]
            return v

        return walk(value)
