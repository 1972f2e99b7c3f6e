"""JWTs as bearer tokens: verified against a JSON Web Key Set, with PyJWT.

The keys come from a local JWKS file (``auth_jwks_file``, re-read when it changes) or
from the issuer's JWKS URL (``auth_jwks_url``: fetched in a worker thread, kept for five
minutes, fetched again early, at most every 30 seconds, when a token names a key id the
set does not hold, which is how issuers rotate). A token must be signed with an
asymmetric algorithm (never ``none`` or an HMAC one, so a public key can never be used
as a shared secret), carry ``sub`` and ``exp``, and match ``auth_jwt_audience`` (and
``auth_jwt_issuer`` when set); 30 seconds of clock skew are forgiven.

The principal is the token's ``sub``; its grant comes from the claims ``roles``,
``namespaces`` (default ``[default]``) and ``capabilities``, each a list or a
space-separated string.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import jwt

from coordinator.auth.files import Watched
from coordinator.auth.principal import DEFAULT_NAMESPACE, Principal
from coordinator.errors import ConfigError, Unauthenticated, Unavailable

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
ALGORITHMS += ["EdDSA"]
LEEWAY_S = 30.0
URL_TTL_S = 300.0
URL_REFETCH_S = 30.0
FETCH_TIMEOUT_S = 5.0


def looks_like_jwt(token: str) -> bool:
    """Whether ``token`` has a JWT's shape (three base64url parts)."""
    return token.count(".") == 2 and token.startswith("eyJ")


def _key_set(doc: Any, where: str) -> jwt.PyJWKSet:
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: not a usable JSON Web Key Set: expected an object")
    try:
        return jwt.PyJWKSet.from_dict(doc)
    except (jwt.PyJWKSetError, jwt.InvalidKeyError, TypeError, KeyError, ValueError) as e:
        raise ConfigError(f"{where}: not a usable JSON Web Key Set: {e}") from None


def parse_jwks(path: Path) -> jwt.PyJWKSet:
    """The key set in the JWKS file at ``path``."""
    where = f"auth_jwks_file: {path}"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{where}: cannot read it: {e.strerror or e}") from None
    except ValueError as e:
        raise ConfigError(f"{where}: not JSON: {e}") from None
    return _key_set(doc, where)


def _claim_set(claims: dict[str, Any], name: str, default: list[str]) -> frozenset[str]:
    value = claims.get(name)
    if value is None:
        return frozenset(default)
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(v for v in value if v)
    raise Unauthenticated(f"the JWT's {name!r} claim must be a list of strings")


class JwtVerifier:
    """Verifies JWTs: see the module docstring. ``generation`` changes when the key set
    does, so verified tokens cached elsewhere can be dropped."""

    def __init__(
        self, *, audience: str, issuer: str = "", jwks_file: str = "", jwks_url: str = ""
    ) -> None:
        self.audience = audience
        self.issuer = issuer
        self._file = Watched(jwks_file, "auth_jwks_file", parse_jwks) if jwks_file else None
        self._url = jwks_url
        self._url_keys: jwt.PyJWKSet | None = None
        self._url_generation = 0
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def generation(self) -> int:
        """Changes whenever the key set is loaded anew."""
        if self._file is not None:
            self._file.current()
            return self._file.generation
        return self._url_generation

    async def _keys(self, kid: str | None) -> jwt.PyJWKSet:
        if self._file is not None:
            return self._file.current()
        now = time.monotonic()
        keys = self._url_keys
        stale = keys is None or now - self._fetched_at > URL_TTL_S
        unknown = keys is not None and kid is not None and not _has(keys, kid)
        if stale or (unknown and now - self._fetched_at > URL_REFETCH_S):
            async with self._lock:
                if self._url_keys is keys:  # nobody fetched while we waited
                    await self._fetch()
        assert self._url_keys is not None
        return self._url_keys

    async def _fetch(self) -> None:
        try:
            doc = await asyncio.to_thread(_get_json, self._url)
            keys = _key_set(doc, f"auth_jwks_url: {self._url}")
        except (OSError, ValueError) as e:
            self._fetched_at = time.monotonic()  # do not hammer an issuer that is down
            if self._url_keys is None:
                raise Unavailable(f"cannot fetch the JWKS from {self._url}: {e}") from None
            return  # keep the keys we have
        self._url_keys = keys
        self._url_generation += 1
        self._fetched_at = time.monotonic()

    async def verify(self, token: str) -> tuple[Principal, float]:
        """The principal ``token`` proves and when it expires (epoch seconds);
        ``Unauthenticated`` saying what is wrong (never repeating the token)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:  # DecodeError, a non-string kid, an unknown crit
            raise Unauthenticated("the bearer token is not a valid JWT") from None
        kid = header.get("kid")
        keys = await self._keys(kid if isinstance(kid, str) else None)
        key = _pick(keys, kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer or None,
                leeway=LEEWAY_S,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the JWT has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"the JWT is not for audience {self.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"the JWT was not issued by {self.issuer!r}") from None
        except jwt.MissingRequiredClaimError as e:
            raise Unauthenticated(f"the JWT lacks the {e.claim!r} claim") from None
        except jwt.InvalidAlgorithmError:
            raise Unauthenticated("the JWT is not signed with an accepted algorithm") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the JWT's signature does not verify") from None
        except jwt.InvalidTokenError as e:
            raise Unauthenticated(f"the JWT is not valid: {e}") from None
        except (jwt.InvalidKeyError, TypeError):  # e.g. alg RS256 naming an EC key
            raise Unauthenticated(
                f"the JWT's algorithm {header.get('alg')!r} does not fit its key"
            ) from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise Unauthenticated("the JWT's 'sub' claim must be a non-empty string")
        principal = Principal(
            name=sub,
            roles=_claim_set(claims, "roles", []),
            namespaces=_claim_set(claims, "namespaces", [DEFAULT_NAMESPACE]),
            capabilities=_claim_set(claims, "capabilities", []),
            via="jwt",
        )
        return principal, float(claims["exp"])


def _has(keys: jwt.PyJWKSet, kid: str) -> bool:
    return any(k.key_id == kid for k in keys.keys)


def _pick(keys: jwt.PyJWKSet, kid: Any) -> jwt.PyJWK:
    if isinstance(kid, str):
        for key in keys.keys:
            if key.key_id == kid:
                return key
        raise Unauthenticated(f"the JWT is signed with key {kid!r}, which the JWKS does not hold")
    if len(keys.keys) == 1:
        return keys.keys[0]
    raise Unauthenticated("the JWT names no key id ('kid') and the JWKS holds several keys")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:
        return json.loads(response.read(1 << 20))
