"""Authentication: the principal a call's credentials prove, or ``Unauthenticated``.

A call proves who it is with a bearer token (``authorization: Bearer <token>`` metadata:
a static token of the tokens file, or a JWT) or, on mutual TLS, with its client
certificate, whose SPIFFE ID or common name the tokens file names. A bearer token wins
when a call has both.

Verification is cached by token: the first call with a token pays for the lookup or the
signature check, later ones a dictionary hit, until the token expires or the tokens
file or key set changes (a revoked token is refused from the next call on). A stream
(an agent's ``Connect``) is authenticated when it opens, and decided again while it
lasts (``coordinator.auth.streams``): ``authenticate_until`` says until when its
credentials hold, ``generation`` when the files they were checked against changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from coordinator.auth.files import Watched
from coordinator.auth.jwks import LEEWAY_S, JwtVerifier, looks_like_jwt
from coordinator.auth.policy import DEFAULT_POLICY, Policy, parse_policy
from coordinator.auth.principal import Principal
from coordinator.auth.tokens import SETTING as TOKENS
from coordinator.auth.tokens import Entry, TokenTable, parse_tokens
from coordinator.config import Settings
from coordinator.errors import Unauthenticated

CACHE_LIMIT = 10_000
_MISSING = (
    "this call needs credentials: send 'authorization: Bearer <token>' metadata"
    " (or connect with a client certificate the tokens file names)"
)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a call presented: the ``authorization`` metadata value and, on mutual TLS,
    the client certificate's SPIFFE ID and subject common name."""

    authorization: str | None = None
    spiffe: str | None = None
    common_name: str | None = None


class Authenticator:
    """The tokens file, the JWT verifier and the policy of one coordinator (each
    re-read when its file changes); ``authenticate`` and ``policy`` are what the gRPC
    guard uses. Raises ``ConfigError`` at construction when a file is unusable."""

    def __init__(self, settings: Settings) -> None:
        self._tokens: Watched[TokenTable] | None = None
        if settings.auth_tokens_file:
            self._tokens = Watched(settings.auth_tokens_file, TOKENS, parse_tokens)
        self._jwt: JwtVerifier | None = None
        if settings.auth_jwks_file or settings.auth_jwks_url:
            self._jwt = JwtVerifier(
                audience=settings.auth_jwt_audience,
                issuer=settings.auth_jwt_issuer,
                jwks_file=settings.auth_jwks_file,
                jwks_url=settings.auth_jwks_url,
            )
        self._policy: Watched[Policy] | None = None
        if settings.auth_policy_file:
            self._policy = Watched(settings.auth_policy_file, "auth_policy_file", parse_policy)
        # token -> (principal, expiry as epoch seconds, the generation it was checked at,
        # the moment it stops being accepted: a JWT's expiry plus the clock skew forgiven)
        self._cache: dict[str, tuple[Principal, float, tuple[int, int], float]] = {}

    @property
    def policy(self) -> Policy:
        """The roles in force (the policy file's, as it is now)."""
        return self._policy.current() if self._policy is not None else DEFAULT_POLICY

    def _table(self) -> TokenTable | None:
        return self._tokens.current() if self._tokens is not None else None

    def _generation(self) -> tuple[int, int]:
        tokens = self._tokens
        if tokens is not None:
            tokens.current()
        return (
            tokens.generation if tokens is not None else 0,
            self._jwt.generation if self._jwt is not None else 0,
        )

    @property
    def generation(self) -> tuple[int, int, int]:
        """Changes whenever the tokens file, the key set or the policy file is loaded
        anew (one ``stat`` of each file): what was decided before may no longer hold."""
        tokens, keys = self._generation()
        policy = self._policy
        if policy is not None:
            policy.current()
        return tokens, keys, policy.generation if policy is not None else 0

    async def authenticate(self, credentials: Credentials) -> Principal:
        """The principal ``credentials`` prove; ``Unauthenticated`` saying why not."""
        return (await self.authenticate_until(credentials))[0]

    async def authenticate_until(self, credentials: Credentials) -> tuple[Principal, float]:
        """The principal ``credentials`` prove and the moment (epoch seconds; ``inf``:
        none) they stop proving it unless a file changes: a token entry's ``expires``, a
        JWT's ``exp`` plus the clock skew forgiven. ``Unauthenticated`` saying why not."""
        if credentials.authorization is not None:
            return await self._bearer(_token_of(credentials.authorization))
        table = self._table()
        for table_of, value, what in (
            (table.by_spiffe if table else {}, credentials.spiffe, "SPIFFE ID"),
            (table.by_common_name if table else {}, credentials.common_name, "common name"),
        ):
            if value and value in table_of:
                entry = table_of[value]
                return _live(entry, f"the client certificate's {what} {value}"), _until(entry)
        if credentials.spiffe or credentials.common_name:
            shown = credentials.spiffe or credentials.common_name
            raise Unauthenticated(
                f"the client certificate ({shown}) is not named in {TOKENS}; send a bearer "
                "token or add the certificate's SPIFFE ID or common name there"
            )
        raise Unauthenticated(_MISSING)

    async def _bearer(self, token: str) -> tuple[Principal, float]:
        generation = self._generation()
        now = time.time()
        hit = self._cache.get(token)
        if hit is not None and hit[2] == generation and now < hit[1]:
            return hit[0], hit[3]
        table = self._table()
        entry = table.for_token(token) if table is not None else None
        if entry is not None:
            principal = _live(entry, f"the token of {entry.principal.name}")
            expiry = until = _until(entry)
        elif self._jwt is not None and looks_like_jwt(token):
            principal, expiry = await self._jwt.verify(token)
            until = expiry + LEEWAY_S
        else:
            raise Unauthenticated("the bearer token is not valid (unknown or revoked)")
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[token] = (principal, expiry, generation, until)
        return principal, until


def _token_of(authorization: str) -> str:
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the authorization metadata must be 'Bearer <token>'")
    return token.strip()


def _until(entry: Entry) -> float:
    return entry.expires.timestamp() if entry.expires else float("inf")


def _live(entry: Entry, what: str) -> Principal:
    if entry.expired(datetime.now(UTC)):
        assert entry.expires is not None
        raise Unauthenticated(f"{what} expired at {entry.expires.isoformat()}")
    return entry.principal
