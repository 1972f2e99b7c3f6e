"""Calls to external services: one pooled ``httpx.AsyncClient`` per service (HTTP/2
where the service offers it over TLS), its credentials resolved from the secret
provider at each call, and its policies applied in order: the circuit breaker, the
rate limit, the cache, then attempts with retries.

A call fills the operation's path placeholders from ``params`` (URL-encoded); the other
params go in the query string (``GET``, ``HEAD``, ``DELETE``) or as the JSON body. A 2xx
answer is the result (JSON decoded, or text); 429 and 5xx answers, timeouts and
connection errors are retried with exponential backoff (``Retry-After`` honoured, within
the call's deadline) when the method is idempotent or no request reached the service,
then end ``ServiceUnavailable``; other answers end ``ServiceRefused`` at once. Failures
that say the service is in trouble (not 4xx) count toward its breaker.

Secrets never leave this module: the value goes into the request's headers only, and
errors, logs and results name the service and status, never a header.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from coordinator.errors import InvalidArgument, ServiceRefused, ServiceUnavailable
from coordinator.integrations.policies import (
    BreakerState,
    CircuitBreaker,
    ResponseCache,
    TokenBucket,
)
from coordinator.integrations.services import IDEMPOTENT, Operation, ServiceConfig

log = logging.getLogger(__name__)

#: How much of an error answer's body errors quote.
BODY_EXCERPT = 300
#: The largest answer read (bigger ones are refused, not truncated).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
_QUERY_METHODS = frozenset({"GET", "HEAD", "DELETE"})

Secret = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Result:
    """A call's answer: the HTTP status, the value (decoded JSON, or text), whether it
    came from the cache, and the attempts it took (0 from the cache)."""

    status: int
    value: Any
    cached: bool = False
    attempts: int = 1


class ServiceClient:
    """One service's connection pool and policies (module docstring). ``secret(name)``
    gives a secret's value (``SecretProvider.get``); ``on_breaker(service, old, new)``
    hears the breaker change state."""

    def __init__(
        self,
        config: ServiceConfig,
        secret: Secret,
        *,
        on_breaker: Callable[[str, BreakerState, BreakerState], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._secret = secret
        p = config.policies
        self.breaker = CircuitBreaker(
            p.breaker_failures,
            p.breaker_open_ms / 1000,
            clock=clock,
            on_change=(lambda o, n: on_breaker(config.name, o, n)) if on_breaker else None,
        )
        self.bucket = (
            TokenBucket(p.rate_per_second, p.burst, clock=clock) if p.rate_per_second else None
        )
        self.cache = (
            ResponseCache(p.cache_ttl_ms / 1000, p.cache_entries, clock=clock)
            if p.cache_ttl_ms
            else None
        )
        self.calls = 0
        self._http = httpx.AsyncClient(
            base_url=config.base_url,
            headers=dict(config.headers),
            http2=transport is None,
            transport=transport,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def call(self, operation: str, params: Mapping[str, Any], timeout_ms: int = 0) -> Result:
        """Call ``operation`` with ``params`` (module docstring); ``timeout_ms`` (0: the
        service's) bounds the whole call, retries and rate-limit waits included."""
        name = self.config.name
        op = self.config.resolve(operation)
        deadline = time.monotonic() + (timeout_ms or self.config.policies.timeout_ms) / 1000
        path, rest = _fill(name, op, params)
        key = f"{op.method} {path} {json.dumps(rest, sort_keys=True, default=str)}"
        if self.cache is not None and op.method in ("GET", "HEAD"):
            hit = self.cache.get(key)
            if hit is not None:
                return Result(hit.status, hit.value, cached=True, attempts=0)
        if self.bucket is not None and not await self.bucket.take(deadline - time.monotonic()):
            raise ServiceUnavailable(
                f"service {name}: rate limit ({self.config.policies.rate_per_second:g}/s) "
                "leaves no slot before the call's deadline"
            )
        if not self.breaker.allow():
            wait = self.breaker.retry_after()
            raise ServiceUnavailable(
                f"service {name}: circuit breaker open after repeated failures; a probe may "
                f"go in {wait:.1f}s",
                retry_after=wait,
            )
        self.calls += 1
        try:
            result, cache_control = await self._attempts(op, path, rest, deadline)
        except ServiceUnavailable:
            self.breaker.failed()
            raise
        except ServiceRefused:
            self.breaker.succeeded()  # it answered: it is up
            raise
        self.breaker.succeeded()
        if self.cache is not None and op.method in ("GET", "HEAD"):
            self.cache.put(key, result.status, result.value, cache_control)
        return result

    async def _attempts(
        self, op: Operation, path: str, rest: Mapping[str, Any], deadline: float
    ) -> tuple[Result, str]:
        p = self.config.policies
        name = self.config.name
        backoff = p.backoff_ms / 1000
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServiceUnavailable(
                    f"service {name}: {op.method} {path} timed out after {attempt - 1} attempt(s)"
                )
            status, retry_after, problem = 0, 0.0, ""
            sent = True
            try:
                response = await self._send(op, path, rest, remaining)
            except httpx.TimeoutException:
                problem = f"timed out ({remaining * 1000:.0f} ms left)"
            except httpx.ConnectError as e:
                problem, sent = f"cannot connect: {_reason(e)}", False
            except httpx.TransportError as e:
                problem = f"transport error: {_reason(e)}"
            else:
                status = response.status
                if 200 <= status < 300:
                    return Result(status, response.value(), attempts=attempt), response.header(
                        "cache-control"
                    )
                body = response.text()[:BODY_EXCERPT]
                if status != 429 and status < 500:  # the call was wrong: not retried
                    raise ServiceRefused(
                        f"service {name}: {op.method} {path} answered {status} "
                        f"{response.reason}: {body}",
                        status,
                        body,
                    )
                retry_after = _retry_after(response.header("retry-after"))
                problem = f"answered {status} {response.reason}: {body}"
            retryable = op.method in IDEMPOTENT or not sent or status == 429
            delay = max(backoff, retry_after)
            if not retryable or attempt >= p.max_attempts or time.monotonic() + delay >= deadline:
                raise ServiceUnavailable(
                    f"service {name}: {op.method} {path} {problem} (attempt {attempt} of "
                    f"{p.max_attempts})",
                    status=status,
                )
            log.info(
                "service %s: %s %s %s; retrying in %.2fs", name, op.method, path, problem, delay
            )
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, p.max_backoff_ms / 1000)

    async def _send(
        self, op: Operation, path: str, rest: Mapping[str, Any], timeout: float
    ) -> _Answer:
        headers = self._auth_headers()
        query = (
            {k: _query_value(v) for k, v in rest.items()} if op.method in _QUERY_METHODS else None
        )
        body = None if op.method in _QUERY_METHODS else dict(rest)
        request = self._http.build_request(
            op.method, path, params=query, json=body, headers=headers, timeout=timeout
        )
        response = await self._http.send(request, stream=True)
        try:
            size = 0
            chunks = []
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise ServiceRefused(
                        f"service {self.config.name}: {op.method} {path}: answer over "
                        f"{MAX_RESPONSE_BYTES} bytes",
                        response.status_code,
                    )
                chunks.append(chunk)
        finally:
            await response.aclose()
        return _Answer(
            response.status_code, response.reason_phrase, response.headers, b"".join(chunks)
        )

    def _auth_headers(self) -> dict[str, str]:
        auth = self.config.auth
        if auth is None:
            return {}
        value = self._secret(auth.secret)  # NotFound / FailedPrecondition name it
        if auth.scheme == "bearer":
            return {"Authorization": f"Bearer {value}"}
        if auth.scheme == "basic":
            return {"Authorization": "Basic " + base64.b64encode(value.encode()).decode()}
        return {auth.header: value}


def _fill(name: str, op: Operation, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The path with its placeholders filled, and the params left over."""
    rest = dict(params)
    path = op.path
    for placeholder in op.placeholders:
        if placeholder not in rest:
            raise InvalidArgument(
                f"service {name}: {op.method} {op.path} needs param {placeholder!r}"
            )
        value = rest.pop(placeholder)
        path = path.replace("{" + placeholder + "}", quote(_query_value(value), safe=""))
    return path, rest


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class _Answer:
    """An answer, read whole (and bounded)."""

    status: int
    reason: str
    headers: httpx.Headers
    content: bytes

    def header(self, name: str) -> str:
        return str(self.headers.get(name, ""))

    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def value(self) -> Any:
        """Decoded JSON when the answer says it is JSON, else its text; None if empty."""
        if not self.content:
            return None
        if "json" in self.header("content-type"):
            try:
                return json.loads(self.content)
            except ValueError:
                pass
        return self.text()


def _retry_after(header: str) -> float:
    """Seconds a ``Retry-After`` header asks for (seconds or an HTTP date); 0 if none."""
    header = header.strip()
    if not header:
        return 0.0
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(header).timestamp() - time.time())
    except (TypeError, ValueError):
        return 0.0


def _reason(e: Exception) -> str:
    return str(e) or type(e).__name__
