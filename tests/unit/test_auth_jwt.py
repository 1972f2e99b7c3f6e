"""JWTs (``coordinator.auth.jwks``): real RSA and EC keys, a real JWKS file and a real
HTTP server serving it, tokens signed with PyJWT; what ``JwtVerifier`` accepts, what it
refuses and why, and how it follows a key rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from coordinator.auth import jwks
from coordinator.auth.jwks import JwtVerifier, looks_like_jwt, parse_jwks
from coordinator.errors import ConfigError, Unauthenticated, Unavailable

AUDIENCE = "agentmesh"
ISSUER = "https://issuer.example"


@dataclass(frozen=True)
class Key:
    kid: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    algorithm: str

    @property
    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data: dict[str, Any] = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**data, "kid": self.kid, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid, **headers}
        )


@pytest.fixture(scope="module")
def rsa_key() -> Key:
    return Key("rsa-1", rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")


@pytest.fixture(scope="module")
def ec_key() -> Key:
    return Key("ec-1", ec.generate_private_key(ec.SECP256R1()), "ES256")


@pytest.fixture(scope="module")
def rsa_key_2() -> Key:
    return Key("rsa-2", rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")


def key_set(*keys: Key) -> dict[str, Any]:
    return {"keys": [k.jwk for k in keys]}


def write_jwks(path: Path, *keys: Key) -> Path:
    path.write_text(json.dumps(key_set(*keys)), encoding="utf-8")
    return path


@pytest.fixture
def jwks_file(tmp_path: Path, rsa_key: Key, ec_key: Key) -> Path:
    return write_jwks(tmp_path / "jwks.json", rsa_key, ec_key)


@pytest.fixture
def verifier(jwks_file: Path) -> JwtVerifier:
    return JwtVerifier(audience=AUDIENCE, jwks_file=str(jwks_file))


def claims(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "ci-bot", "aud": AUDIENCE, "exp": int(time.time()) + 600}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"x") -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
    )


async def refusal(verifier: JwtVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as e:
        await verifier.verify(token)
    return str(e.value)


# ------------------------------------------------------------------ valid tokens


@pytest.mark.parametrize("which", ["rsa_key", "ec_key"])
async def test_a_valid_token(
    verifier: JwtVerifier, which: str, request: pytest.FixtureRequest
) -> None:
    key: Key = request.getfixturevalue(which)
    exp = int(time.time()) + 600
    token = key.sign(
        claims(
            exp=exp,
            roles=["operator", "viewer"],
            namespaces=["default", "staging"],
            capabilities=["echo"],
        )
    )
    assert looks_like_jwt(token)
    principal, expiry = await verifier.verify(token)
    assert principal.name == "ci-bot"
    assert principal.roles == {"operator", "viewer"}
    assert principal.namespaces == {"default", "staging"}
    assert principal.capabilities == {"echo"}
    assert principal.via == "jwt"
    assert expiry == float(exp)


async def test_claims_as_space_separated_strings(verifier: JwtVerifier, rsa_key: Key) -> None:
    token = rsa_key.sign(
        claims(roles="operator  viewer", namespaces="default staging", capabilities="a b c")
    )
    principal, _ = await verifier.verify(token)
    assert principal.roles == {"operator", "viewer"}
    assert principal.namespaces == {"default", "staging"}
    assert principal.capabilities == {"a", "b", "c"}


async def test_claim_defaults(verifier: JwtVerifier, rsa_key: Key) -> None:
    principal, _ = await verifier.verify(rsa_key.sign(claims()))
    assert principal.roles == frozenset()
    assert principal.namespaces == {"default"}
    assert principal.capabilities == frozenset()


@pytest.mark.parametrize("claim", ["roles", "namespaces", "capabilities"])
@pytest.mark.parametrize("value", [5, ["a", 1], {"a": "b"}, True])
async def test_a_claim_of_the_wrong_type(
    verifier: JwtVerifier, rsa_key: Key, claim: str, value: Any
) -> None:
    message = await refusal(verifier, rsa_key.sign(claims(**{claim: value})))
    assert f"the JWT's {claim!r} claim must be a list of strings" in message


async def test_an_audience_list_containing_ours(verifier: JwtVerifier, ec_key: Key) -> None:
    principal, _ = await verifier.verify(ec_key.sign(claims(aud=["other", AUDIENCE])))
    assert principal.name == "ci-bot"


async def test_other_rsa_algorithms(verifier: JwtVerifier, rsa_key: Key) -> None:
    for algorithm in ("RS384", "RS512", "PS256"):
        token = jwt.encode(claims(), rsa_key.private, algorithm=algorithm, headers={"kid": "rsa-1"})
        principal, _ = await verifier.verify(token)
        assert principal.name == "ci-bot"


async def test_without_kid_the_only_key_is_used(tmp_path: Path, ec_key: Key) -> None:
    verifier = JwtVerifier(
        audience=AUDIENCE, jwks_file=str(write_jwks(tmp_path / "one.json", ec_key))
    )
    token = jwt.encode(claims(), ec_key.private, algorithm="ES256")
    assert "kid" not in jwt.get_unverified_header(token)
    principal, _ = await verifier.verify(token)
    assert principal.name == "ci-bot"


# ------------------------------------------------------------------ time


async def test_an_expired_token(verifier: JwtVerifier, rsa_key: Key) -> None:
    token = rsa_key.sign(claims(exp=int(time.time()) - 120))
    assert "expired" in await refusal(verifier, token)


async def test_clock_skew_within_the_leeway_is_forgiven(
    verifier: JwtVerifier, rsa_key: Key
) -> None:
    assert jwks.LEEWAY_S == 30.0
    exp = int(time.time()) - 10
    _, expiry = await verifier.verify(rsa_key.sign(claims(exp=exp)))
    assert expiry == exp


async def test_a_token_not_yet_valid(verifier: JwtVerifier, rsa_key: Key) -> None:
    message = await refusal(verifier, rsa_key.sign(claims(nbf=int(time.time()) + 300)))
    assert "not valid" in message


async def test_a_non_numeric_exp(verifier: JwtVerifier, rsa_key: Key) -> None:
    assert "not valid" in await refusal(verifier, rsa_key.sign(claims(exp="tomorrow")))


# ------------------------------------------------------------------ audience, issuer, claims


async def test_the_wrong_audience(verifier: JwtVerifier, rsa_key: Key) -> None:
    message = await refusal(verifier, rsa_key.sign(claims(aud="someone-else")))
    assert f"not for audience {AUDIENCE!r}" in message


async def test_no_audience(verifier: JwtVerifier, rsa_key: Key) -> None:
    assert "lacks the 'aud' claim" in await refusal(verifier, rsa_key.sign(claims(aud=None)))


async def test_the_issuer_when_it_is_set(jwks_file: Path, rsa_key: Key) -> None:
    verifier = JwtVerifier(audience=AUDIENCE, issuer=ISSUER, jwks_file=str(jwks_file))
    principal, _ = await verifier.verify(rsa_key.sign(claims(iss=ISSUER)))
    assert principal.name == "ci-bot"
    message = await refusal(verifier, rsa_key.sign(claims(iss="https://evil.example")))
    assert f"not issued by {ISSUER!r}" in message
    assert "lacks the 'iss' claim" in await refusal(verifier, rsa_key.sign(claims()))


async def test_any_issuer_when_it_is_not_set(verifier: JwtVerifier, rsa_key: Key) -> None:
    principal, _ = await verifier.verify(rsa_key.sign(claims(iss="https://anyone.example")))
    assert principal.name == "ci-bot"


async def test_no_exp(verifier: JwtVerifier, rsa_key: Key) -> None:
    assert "lacks the 'exp' claim" in await refusal(verifier, rsa_key.sign(claims(exp=None)))


async def test_no_sub(verifier: JwtVerifier, rsa_key: Key) -> None:
    assert "lacks the 'sub' claim" in await refusal(verifier, rsa_key.sign(claims(sub=None)))


@pytest.mark.parametrize("sub", ["", 42])
async def test_a_sub_that_is_not_a_name(verifier: JwtVerifier, rsa_key: Key, sub: Any) -> None:
    message = await refusal(verifier, rsa_key.sign(claims(sub=sub)))
    assert "sub" in message.lower()  # 'sub' claim / Subject


# ------------------------------------------------------------------ keys and signatures


async def test_an_unknown_kid(verifier: JwtVerifier, rsa_key_2: Key) -> None:
    message = await refusal(verifier, rsa_key_2.sign(claims()))
    assert "signed with key 'rsa-2', which the JWKS does not hold" in message


async def test_no_kid_and_several_keys(verifier: JwtVerifier, rsa_key: Key) -> None:
    token = jwt.encode(claims(), rsa_key.private, algorithm="RS256")
    assert "names no key id" in await refusal(verifier, token)


async def test_another_key_under_a_known_kid(verifier: JwtVerifier, rsa_key_2: Key) -> None:
    forged = Key("rsa-1", rsa_key_2.private, "RS256")
    assert "signature does not verify" in await refusal(verifier, forged.sign(claims()))


async def test_a_tampered_payload(verifier: JwtVerifier, rsa_key: Key) -> None:
    header, _, signature = rsa_key.sign(claims(roles=["viewer"])).split(".")
    payload = b64(json.dumps(claims(roles=["admin"])).encode())
    message = await refusal(verifier, f"{header}.{payload}.{signature}")
    assert "signature does not verify" in message


async def test_hs256_with_the_public_key_as_secret_is_refused(
    verifier: JwtVerifier, rsa_key: Key
) -> None:
    """Algorithm confusion: an HMAC over the token with the (public) RSA key as the
    shared secret must never verify."""
    for secret in (rsa_key.public_pem(), json.dumps(rsa_key.jwk).encode()):
        header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
        payload = b64(json.dumps(claims(roles=["admin"])).encode())
        mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        message = await refusal(verifier, f"{header}.{payload}.{b64(mac)}")
        assert "not signed with an accepted algorithm" in message


async def test_alg_none_is_refused(verifier: JwtVerifier) -> None:
    for alg in ("none", "None", "NONE"):
        token = hand_made({"alg": alg, "kid": "rsa-1"}, claims(roles=["admin"]), b"")
        assert "not signed with an accepted algorithm" in await refusal(verifier, token)
    unsigned = jwt.encode(claims(), "", algorithm="none", headers={"kid": "rsa-1"})
    assert "not signed with an accepted algorithm" in await refusal(verifier, unsigned)


async def test_no_alg_is_refused(verifier: JwtVerifier) -> None:
    token = hand_made({"kid": "rsa-1"}, claims())
    assert "not signed with an accepted algorithm" in await refusal(verifier, token)


@pytest.mark.parametrize(
    ("signer", "alg", "kid"),
    [
        ("rsa_key", "RS256", "ec-1"),  # an RSA token naming the EC key
        ("ec_key", "ES256", "rsa-1"),  # an EC token naming the RSA key
        ("p384", "ES384", "ec-1"),  # the EC key is P-256
    ],
)
async def test_an_algorithm_that_does_not_fit_the_key(
    verifier: JwtVerifier, request: pytest.FixtureRequest, signer: str, alg: str, kid: str
) -> None:
    private: Any = (
        ec.generate_private_key(ec.SECP384R1())
        if signer == "p384"
        else request.getfixturevalue(signer).private
    )
    token = jwt.encode(claims(), private, algorithm=alg, headers={"kid": kid})
    assert "does not fit its key" in await refusal(verifier, token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        "eyJ.eyJ.x",
        "eyJhbGciOiJSUzI1NiJ9",
        "!!!.???.***",
        hand_made({"alg": "RS256", "kid": 5}, {}),  # a kid that is not a string
        hand_made({"alg": "RS256", "kid": "rsa-1", "crit": ["exotic"]}, {}),
        b64(b"[1, 2]") + "." + b64(b"{}") + ".x",  # a header that is not an object
    ],
)
async def test_garbage_is_refused(verifier: JwtVerifier, token: str) -> None:
    message = await refusal(verifier, token)
    assert "not a valid JWT" in message or "not valid" in message
    if len(token) > 8:
        assert token not in message  # the token is never repeated


async def test_a_payload_that_is_not_json(verifier: JwtVerifier) -> None:
    token = b64(json.dumps({"alg": "RS256", "kid": "rsa-1"}).encode()) + ".bm90IGpzb24.x"
    message = await refusal(verifier, token)
    assert "not a valid JWT" in message or "not valid" in message


def test_looks_like_jwt(rsa_key: Key) -> None:
    assert looks_like_jwt(rsa_key.sign(claims()))
    assert not looks_like_jwt("ops-s3cret")
    assert not looks_like_jwt("eyJ.only-one-dot")
    assert not looks_like_jwt("abc.def.ghi")


# ------------------------------------------------------------------ the JWKS file


async def test_a_key_rotation_in_the_file(tmp_path: Path, rsa_key: Key, rsa_key_2: Key) -> None:
    path = write_jwks(tmp_path / "jwks.json", rsa_key)
    verifier = JwtVerifier(audience=AUDIENCE, jwks_file=str(path))
    old, new = rsa_key.sign(claims()), rsa_key_2.sign(claims())
    assert (await verifier.verify(old))[0].name == "ci-bot"
    assert "'rsa-2'" in await refusal(verifier, new)
    assert verifier.generation == 1

    # Both keys while the issuer rotates (another size: the change is detectable).
    write_jwks(path, rsa_key, rsa_key_2)
    assert (await verifier.verify(new))[0].name == "ci-bot"
    assert (await verifier.verify(old))[0].name == "ci-bot"
    assert verifier.generation == 2

    # The old key retired.
    write_jwks(path, rsa_key_2)
    assert "'rsa-1'" in await refusal(verifier, old)
    assert (await verifier.verify(new))[0].name == "ci-bot"
    assert verifier.generation == 3


async def test_a_broken_jwks_file_keeps_the_last_keys(
    tmp_path: Path, rsa_key: Key, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_jwks(tmp_path / "jwks.json", rsa_key)
    verifier = JwtVerifier(audience=AUDIENCE, jwks_file=str(path))
    path.write_text('{"keys": [', encoding="utf-8")
    assert (await verifier.verify(rsa_key.sign(claims())))[0].name == "ci-bot"
    assert verifier.generation == 1
    assert any("not JSON" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{", "not JSON"),
        ("[]", "not a usable JSON Web Key Set"),
        ('"keys"', "not a usable JSON Web Key Set"),
        ("null", "not a usable JSON Web Key Set"),
        ("{}", "not a usable JSON Web Key Set"),
        ('{"keys": []}', "not a usable JSON Web Key Set"),
        ('{"keys": "x"}', "not a usable JSON Web Key Set"),
        ('{"keys": [{"kty": "nope"}]}', "not a usable JSON Web Key Set"),
    ],
)
def test_an_unusable_jwks_file(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        parse_jwks(path)
    assert f"auth_jwks_file: {path}" in str(e.value)
    assert says in str(e.value)
    with pytest.raises(ConfigError):
        JwtVerifier(audience=AUDIENCE, jwks_file=str(path))


def test_a_missing_jwks_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        JwtVerifier(audience=AUDIENCE, jwks_file=str(tmp_path / "absent.json"))


def test_an_unusable_key_beside_usable_ones_is_skipped(tmp_path: Path, rsa_key: Key) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{"kty": "nope", "kid": "x"}, rsa_key.jwk]}))
    assert [k.key_id for k in parse_jwks(path).keys] == ["rsa-1"]


# ------------------------------------------------------------------ the JWKS URL


@dataclass
class Issuer:
    """A real HTTP server serving a JWKS; counts the GETs."""

    url: str
    body: bytes = b""
    status: int = 200
    gets: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, *keys: Key) -> None:
        self.body = json.dumps(key_set(*keys)).encode()
        self.status = 200


@pytest.fixture
def issuer(rsa_key: Key) -> Iterator[Issuer]:
    state = Issuer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with state.lock:
                state.gets += 1
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    host, port = server.server_address[:2]
    state.url = f"http://{host!s}:{port}/.well-known/jwks.json"
    state.serve(rsa_key)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def test_a_jwks_url(issuer: Issuer, rsa_key: Key) -> None:
    verifier = JwtVerifier(audience=AUDIENCE, jwks_url=issuer.url)
    assert issuer.gets == 0  # fetched at first use, not when made
    assert verifier.generation == 0
    principal, _ = await verifier.verify(rsa_key.sign(claims(roles=["viewer"])))
    assert principal.name == "ci-bot"
    assert principal.roles == {"viewer"}
    assert issuer.gets == 1
    assert verifier.generation == 1

    # The key set is kept: no second fetch.
    await verifier.verify(rsa_key.sign(claims(sub="other")))
    await verifier.verify(rsa_key.sign(claims()))
    assert issuer.gets == 1


async def test_an_unknown_kid_refetches_after_the_refetch_interval(
    issuer: Issuer, rsa_key: Key, rsa_key_2: Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = JwtVerifier(audience=AUDIENCE, jwks_url=issuer.url)
    await verifier.verify(rsa_key.sign(claims()))
    assert issuer.gets == 1

    issuer.serve(rsa_key, rsa_key_2)  # the issuer rotates
    new = rsa_key_2.sign(claims())
    # Within the refetch interval: not fetched again, the kid is unknown.
    assert "'rsa-2'" in await refusal(verifier, new)
    assert issuer.gets == 1

    monkeypatch.setattr(jwks, "URL_REFETCH_S", 0.0)
    principal, _ = await verifier.verify(new)
    assert principal.name == "ci-bot"
    assert issuer.gets == 2
    assert verifier.generation == 2

    # Known now: no fetch, whatever the interval.
    await verifier.verify(new)
    await verifier.verify(rsa_key.sign(claims()))
    assert issuer.gets == 2


async def test_an_unknown_kid_the_issuer_does_not_hold_either(
    issuer: Issuer, rsa_key: Key, rsa_key_2: Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwks, "URL_REFETCH_S", 0.0)
    verifier = JwtVerifier(audience=AUDIENCE, jwks_url=issuer.url)
    await verifier.verify(rsa_key.sign(claims()))
    assert "'rsa-2'" in await refusal(verifier, rsa_key_2.sign(claims()))
    assert issuer.gets == 2  # looked once more, then refused


async def test_a_stale_key_set_is_fetched_again(
    issuer: Issuer, rsa_key: Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = JwtVerifier(audience=AUDIENCE, jwks_url=issuer.url)
    await verifier.verify(rsa_key.sign(claims()))
    monkeypatch.setattr(jwks, "URL_TTL_S", 0.0)
    await verifier.verify(rsa_key.sign(claims()))
    assert issuer.gets == 2


async def test_an_issuer_that_fails_later_leaves_the_keys_we_have(
    issuer: Issuer, rsa_key: Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = JwtVerifier(audience=AUDIENCE, jwks_url=issuer.url)
    await verifier.verify(rsa_key.sign(claims()))
    monkeypatch.setattr(jwks, "URL_TTL_S", 0.0)
    for status, body in ((500, b"oops"), (200, b"not json"), (200, b"[1, 2]")):
        issuer.status, issuer.body = status, body
        principal, _ = await verifier.verify(rsa_key.sign(claims()))
        assert principal.name == "ci-bot"
    assert issuer.gets == 4
    assert verifier.generation == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_an_unreachable_url_at_first_use(rsa_key: Key) -> None:
    url = f"http://127.0.0.1:{free_port()}/jwks.json"
    verifier = JwtVerifier(audience=AUDIENCE, jwks_url=url)
    with pytest.raises(Unavailable) as e:
        await verifier.verify(rsa_key.sign(claims()))
    assert f"cannot fetch the JWKS from {url}" in str(e.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, b"{}"), (500, b""), (200, b"<html>"), (200, b"[]"), (200, b'{"keys": []}')],
)
async def test_an_unusable_answer_at_first_use(
    issuer: Issuer, rsa_key: Key, status: int, body: bytes
) -> None:
    issuer.status, issuer.body = status, body
    verifier = JwtVerifier(audience=AUDIENCE, jwks_url=issuer.url)
    with pytest.raises(Unavailable, match="cannot fetch the JWKS"):
        await verifier.verify(rsa_key.sign(claims()))
    # Once the issuer answers, the keys are there.
    issuer.serve(rsa_key)
    principal, _ = await verifier.verify(rsa_key.sign(claims()))
    assert principal.name == "ci-bot"


async def test_garbage_is_refused_before_any_fetch(issuer: Issuer) -> None:
    verifier = JwtVerifier(audience=AUDIENCE, jwks_url=issuer.url)
    assert "not a valid JWT" in await refusal(verifier, "garbage")
    assert issuer.gets == 0
