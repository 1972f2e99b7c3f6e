"""The tokens file: the principals a coordinator knows by a static token or a certificate.

YAML, one entry per credential (more fields are refused, so a typo is not silently a
weaker grant)::

    tokens:
      - name: ops                 # the principal
        sha256: 9f86d0...         # hex SHA-256 of the bearer token; never the token itself
        roles: [operator]         # agent | viewer | operator | admin | a policy file's role
        namespaces: [default]     # default: [default]; "*": every namespace
        capabilities: ["*"]       # what it may serve when it joins as an agent
        expires: 2027-01-31       # optional: refused from then on (a date or an ISO time)
      - name: executor
        spiffe: spiffe://agentmesh/executor   # a client certificate's SPIFFE ID (mTLS)
        roles: [agent]
        capabilities: [command_execution, git_operations]
      - name: legacy-box
        common_name: build-01     # or its subject common name
        roles: [agent]

An entry names at least one credential (``sha256``, ``spiffe``, ``common_name``). Two
entries may share a name (a token being rotated), never a credential.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from coordinator.auth.files import read_yaml
from coordinator.auth.principal import DEFAULT_NAMESPACE, Principal
from coordinator.errors import ConfigError

SETTING = "auth_tokens_file"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FIELDS = {"name", "sha256", "spiffe", "common_name", "roles", "namespaces", "capabilities"}
_FIELDS |= {"expires", "description"}


def token_digest(token: str) -> str:
    """The hex SHA-256 of ``token``: what the tokens file stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One credential of the tokens file and the principal it proves."""

    principal: Principal
    expires: datetime | None = None

    def expired(self, now: datetime) -> bool:
        """Whether the credential is past its ``expires``."""
        return self.expires is not None and now >= self.expires


@dataclass(frozen=True, slots=True)
class TokenTable:
    """The parsed tokens file: credentials -> entries."""

    by_digest: Mapping[str, Entry]
    by_spiffe: Mapping[str, Entry]
    by_common_name: Mapping[str, Entry]

    def for_token(self, token: str) -> Entry | None:
        """The entry whose ``sha256`` is the token's digest. (Looked up by digest, so the
        time a lookup takes says nothing usable about the stored tokens.)"""
        return self.by_digest.get(token_digest(token))


def _strings(where: str, key: str, value: Any, default: list[str]) -> frozenset[str]:
    if value is None:
        return frozenset(default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: {key} must be a list of non-empty strings")
    return frozenset(v.strip() for v in value)


def _expiry(where: str, value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{where}: expires {value!r} is not an ISO date or time") from None
    else:
        raise ConfigError(f"{where}: expires must be a date or an ISO time")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _entry(where: str, raw: Any) -> tuple[Entry, dict[str, str]]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with name, roles and a credential")
    unknown = sorted(map(str, set(raw) - _FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: name must be a non-empty string")
    where = f"{where} ({name})"
    credentials: dict[str, str] = {}
    for key in ("sha256", "spiffe", "common_name"):
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: {key} must be a non-empty string")
        credentials[key] = value.strip()
    if not credentials:
        raise ConfigError(f"{where}: needs a credential: sha256, spiffe or common_name")
    if "sha256" in credentials:
        credentials["sha256"] = credentials["sha256"].lower()
        if not _HEX64.fullmatch(credentials["sha256"]):
            raise ConfigError(
                f"{where}: sha256 must be 64 hex digits (agentmesh auth hash-token prints it)"
            )
    roles = _strings(where, "roles", raw.get("roles"), [])
    if not roles:
        raise ConfigError(f"{where}: roles must name at least one role")
    principal = Principal(
        name=name.strip(),
        roles=roles,
        namespaces=_strings(where, "namespaces", raw.get("namespaces"), [DEFAULT_NAMESPACE]),
        capabilities=_strings(where, "capabilities", raw.get("capabilities"), []),
        via="token" if "sha256" in credentials else "certificate",
    )
    return Entry(principal, _expiry(where, raw.get("expires"))), credentials


def parse_tokens(path: Path) -> TokenTable:
    """Parse the tokens file at ``path``; ``ConfigError`` saying what is wrong where."""
    doc = read_yaml(path, SETTING)
    if doc is None:
        doc = {"tokens": []}
    if not isinstance(doc, dict) or not isinstance(doc.get("tokens"), list | None):
        raise ConfigError(f"{SETTING}: {path} must be a mapping with a list under 'tokens'")
    unknown = sorted(map(str, set(doc) - {"tokens"}))
    if unknown:
        raise ConfigError(f"{SETTING}: {path}: unknown top-level key(s) {', '.join(unknown)}")
    tables: dict[str, dict[str, Entry]] = {"sha256": {}, "spiffe": {}, "common_name": {}}
    for i, raw in enumerate(doc.get("tokens") or []):
        where = f"{SETTING}: {path}: tokens[{i}]"
        entry, credentials = _entry(where, raw)
        for key, value in credentials.items():
            if value in tables[key]:
                other = tables[key][value].principal.name
                raise ConfigError(f"{where}: the same {key} as {other!r}'s entry")
            tables[key][value] = entry
    return TokenTable(tables["sha256"], tables["spiffe"], tables["common_name"])
