"""An external service as the coordinator knows it: where it is, how to authenticate
(by naming a secret, never holding one), its operations and its policies.

``ServiceConfig.parse(data)`` checks a configuration (from the API or a stored
document) and raises ``InvalidArgument`` naming the field; ``to_data()`` is the stored
form (the document of kind ``service``). A call names an operation of the service
(``list-repos``) or spells one inline (``GET /repos/{owner}``); ``resolve`` gives it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from coordinator.errors import InvalidArgument
from coordinator.secrets.provider import NAME as SECRET_NAME

#: A service's or an operation's name: what a workflow step and the CLI name it by.
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
#: Methods whose answers may be cached and whose calls may be retried on 5xx.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
_HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")
#: Headers that carry credentials: those come from a secret (``auth``), never the config.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_TIMEOUT_MS = 300_000

Scheme = Literal["bearer", "basic", "header"]


@dataclass(frozen=True, slots=True)
class Auth:
    """Credentials delegated to a secret: ``bearer`` (``Authorization: Bearer <value>``),
    ``basic`` (the value is ``user:password``) or ``header`` (``<header>: <value>``)."""

    secret: str
    scheme: Scheme = "bearer"
    header: str = ""


@dataclass(frozen=True, slots=True)
class Operation:
    """``method`` and ``path`` (``{name}`` placeholders are filled from the params, URL
    encoded). The other params go in the query string (``GET``, ``HEAD``, ``DELETE``)
    or as the JSON body (the rest)."""

    method: str
    path: str

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The ``{name}`` placeholders of the path, in order."""
        return tuple(_PLACEHOLDER.findall(self.path))


@dataclass(frozen=True, slots=True)
class Policies:
    """Retries (attempts in all, backoff doubling from ``backoff_ms``), the circuit
    breaker (opens after ``breaker_failures`` failures in a row, for ``breaker_open_ms``,
    then lets one probe through), the rate limit (``rate_per_second``, bursts of
    ``burst``; 0: none) and response caching of idempotent operations (``cache_ttl_ms``;
    0: off, ``cache_entries`` at most)."""

    timeout_ms: int = 10_000
    max_attempts: int = 3
    backoff_ms: int = 200
    max_backoff_ms: int = 5_000
    breaker_failures: int = 5
    breaker_open_ms: int = 30_000
    rate_per_second: float = 0.0
    burst: int = 0
    cache_ttl_ms: int = 0
    cache_entries: int = 1_000


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """A registered external service (see the module docstring); ``headers`` are sent
    with every call and hold no credentials (``auth`` names the secret that does)."""

    name: str
    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: Auth | None = None
    operations: Mapping[str, Operation] = field(default_factory=dict)
    policies: Policies = field(default_factory=Policies)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> ServiceConfig:
        """A checked configuration; ``InvalidArgument`` names the field that is wrong."""
        name = _text(data, "name")
        if not NAME.fullmatch(name):
            raise InvalidArgument(
                f"service name {name[:80]!r}: use 1-63 lowercase letters, digits, '.', '_' "
                "or '-', starting with a letter or digit"
            )
        base_url = _text(data, "base_url").rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument(
                f"service {name}: base_url {base_url[:200]!r} must be an http:// or https:// URL"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise InvalidArgument(
                f"service {name}: base_url must not carry a query, a fragment or credentials "
                "(name a secret in auth_secret_ref instead)"
            )
        headers = {str(k): str(v) for k, v in (data.get("headers") or {}).items()}
        for header in headers:
            if not _HEADER.fullmatch(header):
                raise InvalidArgument(f"service {name}: header name {header[:80]!r} is not valid")
            if header.lower() in _CREDENTIAL_HEADERS:
                raise InvalidArgument(
                    f"service {name}: header {header} carries credentials; name a secret in "
                    "auth_secret_ref (and auth_scheme) so it never enters the store"
                )
        return cls(
            name=name,
            base_url=base_url,
            headers=headers,
            auth=_auth(name, data),
            operations=_operations(name, data.get("operations") or {}),
            policies=_policies(name, data),
        )

    def resolve(self, operation: str) -> Operation:
        """The operation named ``operation``, or the inline ``METHOD /path`` it spells."""
        found = self.operations.get(operation)
        if found is not None:
            return found
        method, _, path = operation.strip().partition(" ")
        if method.upper() in METHODS and path.strip().startswith("/"):
            return _operation(self.name, operation, method, path.strip())
        known = ", ".join(sorted(self.operations)) or "none declared"
        raise InvalidArgument(
            f"service {self.name}: operation {operation[:120]!r} is neither a declared "
            f"operation ({known}) nor 'METHOD /path'"
        )

    def to_data(self) -> dict[str, Any]:
        """The stored form; ``parse`` reads it back."""
        p = self.policies
        data: dict[str, Any] = {
            "name": self.name,
            "base_url": self.base_url,
            "headers": dict(self.headers),
            "operations": {
                n: {"method": o.method, "path": o.path} for n, o in self.operations.items()
            },
            "timeout_ms": p.timeout_ms,
            "max_attempts": p.max_attempts,
            "backoff_ms": p.backoff_ms,
            "max_backoff_ms": p.max_backoff_ms,
            "breaker_failures": p.breaker_failures,
            "breaker_open_ms": p.breaker_open_ms,
            "rate_limit_per_second": p.rate_per_second,
            "rate_limit_burst": p.burst,
            "cache_ttl_ms": p.cache_ttl_ms,
            "cache_entries": p.cache_entries,
        }
        if self.auth is not None:
            scheme = self.auth.scheme
            data["auth_secret_ref"] = self.auth.secret
            data["auth_scheme"] = f"header:{self.auth.header}" if scheme == "header" else scheme
        return data


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{key} is required")
    return value.strip()


def _auth(name: str, data: Mapping[str, Any]) -> Auth | None:
    secret = str(data.get("auth_secret_ref") or "")
    scheme = str(data.get("auth_scheme") or "")
    if not secret:
        if scheme:
            raise InvalidArgument(f"service {name}: auth_scheme needs auth_secret_ref")
        return None
    if not SECRET_NAME.fullmatch(secret):
        raise InvalidArgument(f"service {name}: auth_secret_ref {secret[:80]!r} is no secret name")
    if scheme in ("", "bearer"):
        return Auth(secret, "bearer")
    if scheme == "basic":
        return Auth(secret, "basic")
    kind, _, header = scheme.partition(":")
    if kind == "header" and _HEADER.fullmatch(header):
        return Auth(secret, "header", header)
    raise InvalidArgument(
        f"service {name}: auth_scheme {scheme[:80]!r} must be bearer, basic or header:<Name>"
    )


def _operations(name: str, raw: Mapping[str, Any]) -> dict[str, Operation]:
    operations = {}
    for op_name, spec in raw.items():
        if not NAME.fullmatch(str(op_name)):
            raise InvalidArgument(
                f"service {name}: operation name {str(op_name)[:80]!r} is not valid"
            )
        if not isinstance(spec, Mapping):
            raise InvalidArgument(f"service {name}: operation {op_name} must be {{method, path}}")
        operations[str(op_name)] = _operation(
            name, str(op_name), str(spec.get("method") or "GET"), str(spec.get("path") or "")
        )
    return operations


def _operation(name: str, op_name: str, method: str, path: str) -> Operation:
    method = method.upper()
    if method not in METHODS:
        raise InvalidArgument(
            f"service {name}: operation {op_name[:80]!r}: method {method[:20]!r} is not one of "
            f"{', '.join(METHODS)}"
        )
    if not path.startswith("/") or any(c in path for c in " \r\n#"):
        raise InvalidArgument(
            f"service {name}: operation {op_name[:80]!r}: path {path[:120]!r} must start with "
            "'/' and hold no spaces or '#'"
        )
    return Operation(method, path)


def _policies(name: str, data: Mapping[str, Any]) -> Policies:
    base = Policies()

    def number(key: str, default: float, low: float, high: float) -> float:
        value = data.get(key)
        if value in (None, 0, 0.0):
            return default
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidArgument(f"service {name}: {key} must be a number")
        if not low <= value <= high:
            raise InvalidArgument(f"service {name}: {key} must be within [{low:g}, {high:g}]")
        return float(value)

    return Policies(
        timeout_ms=int(number("timeout_ms", base.timeout_ms, 1, MAX_TIMEOUT_MS)),
        max_attempts=int(number("max_attempts", base.max_attempts, 1, 10)),
        backoff_ms=int(number("backoff_ms", base.backoff_ms, 1, 60_000)),
        max_backoff_ms=int(number("max_backoff_ms", base.max_backoff_ms, 1, 300_000)),
        breaker_failures=int(number("breaker_failures", base.breaker_failures, 1, 1_000)),
        breaker_open_ms=int(number("breaker_open_ms", base.breaker_open_ms, 1, 3_600_000)),
        rate_per_second=number("rate_limit_per_second", 0.0, 0.001, 100_000),
        burst=int(number("rate_limit_burst", 0, 1, 100_000)),
        cache_ttl_ms=int(number("cache_ttl_ms", 0, 1, 86_400_000)),
        cache_entries=int(number("cache_entries", base.cache_entries, 1, 1_000_000)),
    )
