"""``Authenticator``: a call's credentials (a static bearer token, a JWT, a client
certificate) -> the principal, or ``Unauthenticated`` saying why; its cache, which must
never outlive a revocation; and the auth settings it is built from. Real files, real
keys, settings made by ``load_settings``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

import coordinator.auth.authenticator as authenticator_module
from coordinator.auth import DEFAULT_POLICY, Authenticator, Credentials, Principal, token_digest
from coordinator.auth.jwks import JwtVerifier
from coordinator.config import Settings, load_settings
from coordinator.errors import ConfigError, Unauthenticated

OPS = "ops-s3cret-token"
CI = "ci-s3cret-token"
AUDIENCE = "agentmesh"
STOP = "/agentmesh.v1.ExecutionService/StopWorkflow"


def settings(**overrides: Any) -> Settings:
    return load_settings(overrides=overrides, environ={})


def bump_mtime(path: Path) -> None:
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def write_tokens(path: Path, *entries: str) -> Path:
    path.write_text("tokens:\n" + "".join(entries), encoding="utf-8")
    bump_mtime(path)
    return path


def entry(**fields: object) -> str:
    return "  - {" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}\n"


OPS_ENTRY = entry(
    name="ops", sha256=token_digest(OPS), roles="[operator]", namespaces="[default, b]"
)
CI_ENTRY = entry(name="ci", sha256=token_digest(CI), roles="[viewer]")
EXECUTOR_ENTRY = entry(
    name="executor",
    spiffe="spiffe://agentmesh/executor",
    roles="[agent]",
    capabilities="[command_execution]",
)
LEGACY_ENTRY = entry(name="legacy-box", common_name="build-01", roles="[agent]")


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    return write_tokens(tmp_path / "tokens.yaml", OPS_ENTRY, CI_ENTRY, EXECUTOR_ENTRY, LEGACY_ENTRY)


@pytest.fixture
def auth(tokens_file: Path) -> Authenticator:
    return Authenticator(settings(auth_tokens_file=str(tokens_file)))


def bearer(token: str) -> Credentials:
    return Credentials(authorization=f"Bearer {token}")


async def refusal(auth: Authenticator, credentials: Credentials) -> str:
    with pytest.raises(Unauthenticated) as e:
        await auth.authenticate(credentials)
    return str(e.value)


# ------------------------------------------------------------------ static tokens


async def test_a_static_bearer_token(auth: Authenticator) -> None:
    principal = await auth.authenticate(bearer(OPS))
    assert principal == Principal(
        "ops",
        roles=frozenset({"operator"}),
        namespaces=frozenset({"default", "b"}),
        capabilities=frozenset(),
        via="token",
    )
    assert (await auth.authenticate(bearer(CI))).name == "ci"


@pytest.mark.parametrize("header", [f"bearer {OPS}", f"BEARER {OPS}", f"  Bearer   {OPS}  "])
async def test_the_scheme_is_case_insensitive_and_spaces_are_forgiven(
    auth: Authenticator, header: str
) -> None:
    assert (await auth.authenticate(Credentials(authorization=header))).name == "ops"


async def test_an_unknown_token(auth: Authenticator) -> None:
    message = await refusal(auth, bearer("who-knows"))
    assert message == "the bearer token is not valid (unknown or revoked)"
    assert "who-knows" not in message
    # The digest is not the token.
    assert "not valid" in await refusal(auth, bearer(token_digest(OPS)))


@pytest.mark.parametrize(
    "header", ["Basic x", f"Basic {OPS}", "Bearer", "Bearer   ", "", OPS, f"Token {OPS}"]
)
async def test_a_header_that_is_not_bearer(auth: Authenticator, header: str) -> None:
    message = await refusal(auth, Credentials(authorization=header))
    assert "the authorization metadata must be 'Bearer <token>'" in message
    assert OPS not in message


async def test_no_credentials(auth: Authenticator) -> None:
    message = await refusal(auth, Credentials())
    assert "this call needs credentials" in message
    assert "authorization: Bearer <token>" in message


async def test_an_expired_static_token(tmp_path: Path) -> None:
    path = write_tokens(
        tmp_path / "tokens.yaml",
        entry(name="old", sha256=token_digest(OPS), roles="[viewer]", expires="2020-01-01"),
        entry(
            name="later",
            sha256=token_digest(CI),
            roles="[viewer]",
            expires="'2999-01-01T00:00:00+00:00'",
        ),
    )
    auth = Authenticator(settings(auth_tokens_file=str(path)))
    message = await refusal(auth, bearer(OPS))
    assert message == "the token of old expired at 2020-01-01T00:00:00+00:00"
    assert "expired" in await refusal(auth, bearer(OPS))  # never cached
    assert (await auth.authenticate(bearer(CI))).name == "later"


# ------------------------------------------------------------------ certificates


async def test_a_certificate_by_spiffe_id(auth: Authenticator) -> None:
    principal = await auth.authenticate(Credentials(spiffe="spiffe://agentmesh/executor"))
    assert principal.name == "executor"
    assert principal.via == "certificate"
    assert principal.capabilities == {"command_execution"}


async def test_a_certificate_by_common_name(auth: Authenticator) -> None:
    principal = await auth.authenticate(Credentials(common_name="build-01"))
    assert principal.name == "legacy-box"
    assert principal.via == "certificate"


async def test_a_certificate_with_an_unknown_spiffe_id_and_a_known_common_name(
    auth: Authenticator,
) -> None:
    principal = await auth.authenticate(
        Credentials(spiffe="spiffe://agentmesh/unknown", common_name="build-01")
    )
    assert principal.name == "legacy-box"


async def test_the_spiffe_id_wins_over_the_common_name(auth: Authenticator) -> None:
    principal = await auth.authenticate(
        Credentials(spiffe="spiffe://agentmesh/executor", common_name="build-01")
    )
    assert principal.name == "executor"


@pytest.mark.parametrize(
    ("credentials", "named"),
    [
        (Credentials(spiffe="spiffe://agentmesh/intruder"), "spiffe://agentmesh/intruder"),
        (Credentials(common_name="laptop-7"), "laptop-7"),
        (Credentials(spiffe="spiffe://x/y", common_name="laptop-7"), "spiffe://x/y"),
    ],
)
async def test_an_unknown_certificate_is_named(
    auth: Authenticator, credentials: Credentials, named: str
) -> None:
    message = await refusal(auth, credentials)
    assert f"the client certificate ({named}) is not named in auth_tokens_file" in message


async def test_a_certificate_without_a_tokens_file(tmp_path: Path) -> None:
    auth = Authenticator(
        settings(auth_jwks_file=str(write_jwks(tmp_path, KEY)), auth_jwt_audience=AUDIENCE)
    )
    message = await refusal(auth, Credentials(common_name="build-01"))
    assert "(build-01) is not named" in message


async def test_an_expired_certificate_entry(tmp_path: Path) -> None:
    path = write_tokens(
        tmp_path / "tokens.yaml",
        entry(name="old-box", common_name="build-02", roles="[agent]", expires="2020-06-01"),
    )
    auth = Authenticator(settings(auth_tokens_file=str(path)))
    message = await refusal(auth, Credentials(common_name="build-02"))
    assert "the client certificate's common name build-02 expired at 2020-06-01" in message


async def test_a_bearer_token_wins_over_the_certificate(auth: Authenticator) -> None:
    both = Credentials(authorization=f"Bearer {CI}", spiffe="spiffe://agentmesh/executor")
    assert (await auth.authenticate(both)).name == "ci"
    # And a bad one is not rescued by the certificate.
    bad = Credentials(authorization="Bearer nope", spiffe="spiffe://agentmesh/executor")
    assert "not valid" in await refusal(auth, bad)


# ------------------------------------------------------------------ reloads


async def test_a_revoked_token_is_refused_from_the_next_call_on(
    auth: Authenticator, tokens_file: Path
) -> None:
    assert (await auth.authenticate(bearer(OPS))).name == "ops"
    assert (await auth.authenticate(bearer(OPS))).name == "ops"  # now cached
    write_tokens(tokens_file, CI_ENTRY)
    assert "unknown or revoked" in await refusal(auth, bearer(OPS))
    assert (await auth.authenticate(bearer(CI))).name == "ci"


async def test_a_changed_grant_is_seen_from_the_next_call_on(
    auth: Authenticator, tokens_file: Path
) -> None:
    assert (await auth.authenticate(bearer(CI))).roles == {"viewer"}
    write_tokens(tokens_file, entry(name="ci", sha256=token_digest(CI), roles="[admin]"))
    assert (await auth.authenticate(bearer(CI))).roles == {"admin"}


async def test_a_revoked_certificate_is_refused(auth: Authenticator, tokens_file: Path) -> None:
    assert (await auth.authenticate(Credentials(common_name="build-01"))).name == "legacy-box"
    write_tokens(tokens_file, OPS_ENTRY)
    assert "is not named" in await refusal(auth, Credentials(common_name="build-01"))


async def test_a_broken_tokens_file_keeps_the_last_good_one(
    auth: Authenticator, tokens_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await auth.authenticate(bearer(OPS))).name == "ops"
    write_tokens(tokens_file, "  - {name: ops, roles: [")
    assert (await auth.authenticate(bearer(OPS))).name == "ops"
    assert (await auth.authenticate(bearer(CI))).name == "ci"
    assert any("keeping the last good one" in r.getMessage() for r in caplog.records)


def test_an_unusable_tokens_file_at_start(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text("tokens:\n  - {name: ops, sha256: abc, roles: [viewer]}\n")
    with pytest.raises(ConfigError, match=r"auth_tokens_file: .*tokens\[0\] \(ops\): sha256"):
        Authenticator(settings(auth_tokens_file=str(path)))
    with pytest.raises(ConfigError, match="cannot read"):
        Authenticator(settings(auth_tokens_file=str(tmp_path / "absent.yaml")))


# ------------------------------------------------------------------ the policy


async def test_the_policy_is_the_built_in_one_without_a_file(auth: Authenticator) -> None:
    assert auth.policy is DEFAULT_POLICY
    ops = await auth.authenticate(bearer(OPS))
    assert auth.policy.decide(ops, STOP, "default").allowed


async def test_the_policy_file_and_its_changes(tokens_file: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("roles:\n  operator: [executions.read]\n", encoding="utf-8")
    auth = Authenticator(settings(auth_tokens_file=str(tokens_file), auth_policy_file=str(policy)))
    ops = await auth.authenticate(bearer(OPS))
    decision = auth.policy.decide(ops, STOP, "default")
    assert not decision.allowed
    assert "executions.stop" in decision.reason
    policy.write_text("roles:\n  operator: ['executions.*']\n", encoding="utf-8")
    bump_mtime(policy)
    assert auth.policy.decide(ops, STOP, "default").allowed


def test_an_unusable_policy_file_at_start(tokens_file: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("roles:\n  operator: [executions.halt]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'executions\.halt' names no permission"):
        Authenticator(settings(auth_tokens_file=str(tokens_file), auth_policy_file=str(policy)))


# ------------------------------------------------------------------ JWTs

KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def write_jwks(tmp_path: Path, *keys: ec.EllipticCurvePrivateKey) -> Path:
    path = tmp_path / "jwks.json"
    doc = {
        "keys": [
            {**ECAlgorithm.to_jwk(k.public_key(), as_dict=True), "kid": f"k{i}", "use": "sig"}
            for i, k in enumerate(keys)
        ]
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    bump_mtime(path)
    return path


def sign(key: ec.EllipticCurvePrivateKey = KEY, kid: str = "k0", **claims: Any) -> str:
    body: dict[str, Any] = {
        "sub": "robot",
        "aud": AUDIENCE,
        "exp": int(time.time()) + 600,
        "roles": "viewer",
        **claims,
    }
    return jwt.encode(body, key, algorithm="ES256", headers={"kid": kid})


def counting_verify(auth: Authenticator, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the verifier's signature checks: wrap the bound method on the instance."""
    verifier = auth._jwt
    assert isinstance(verifier, JwtVerifier)
    calls: list[str] = []
    real: Callable[[str], Awaitable[tuple[Principal, float]]] = verifier.verify

    async def verify(token: str) -> tuple[Principal, float]:
        calls.append(token)
        return await real(token)

    monkeypatch.setattr(verifier, "verify", verify)
    return calls


@pytest.fixture
def jwt_auth(tmp_path: Path, tokens_file: Path) -> Authenticator:
    return Authenticator(
        settings(
            auth_tokens_file=str(tokens_file),
            auth_jwks_file=str(write_jwks(tmp_path, KEY)),
            auth_jwt_audience=AUDIENCE,
        )
    )


async def test_a_jwt(jwt_auth: Authenticator) -> None:
    principal = await jwt_auth.authenticate(bearer(sign(namespaces="default staging")))
    assert principal.name == "robot"
    assert principal.via == "jwt"
    assert principal.roles == {"viewer"}
    assert principal.namespaces == {"default", "staging"}
    # The tokens file still works beside it.
    assert (await jwt_auth.authenticate(bearer(OPS))).name == "ops"


async def test_a_jwt_only_authenticator(tmp_path: Path) -> None:
    auth = Authenticator(
        settings(auth_jwks_file=str(write_jwks(tmp_path, KEY)), auth_jwt_audience=AUDIENCE)
    )
    assert (await auth.authenticate(bearer(sign()))).name == "robot"
    assert "unknown or revoked" in await refusal(auth, bearer(OPS))


async def test_a_verified_jwt_is_cached(
    jwt_auth: Authenticator, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting_verify(jwt_auth, monkeypatch)
    token = sign()
    first = await jwt_auth.authenticate(bearer(token))
    second = await jwt_auth.authenticate(bearer(token))
    assert first == second
    assert calls == [token]
    # Another token is verified on its own.
    await jwt_auth.authenticate(bearer(sign(sub="robot-2")))
    assert len(calls) == 2


async def test_static_tokens_and_non_jwts_never_reach_the_verifier(
    jwt_auth: Authenticator, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting_verify(jwt_auth, monkeypatch)
    assert (await jwt_auth.authenticate(bearer(OPS))).name == "ops"
    assert "unknown or revoked" in await refusal(jwt_auth, bearer("plain-unknown"))
    assert calls == []


async def test_a_refused_jwt_is_not_cached(
    jwt_auth: Authenticator, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting_verify(jwt_auth, monkeypatch)
    token = sign(aud="someone-else")
    for _ in range(2):
        assert "not for audience 'agentmesh'" in await refusal(jwt_auth, bearer(token))
    assert len(calls) == 2
    forged = sign(key=OTHER_KEY)
    assert "signature does not verify" in await refusal(jwt_auth, bearer(forged))


async def test_a_cached_jwt_is_not_kept_past_its_exp(
    jwt_auth: Authenticator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``exp`` but within the leeway: valid, and checked again at every call."""
    calls = counting_verify(jwt_auth, monkeypatch)
    token = sign(exp=int(time.time()) - 5)
    for _ in range(2):
        assert (await jwt_auth.authenticate(bearer(token))).name == "robot"
    assert len(calls) == 2


async def test_a_new_key_set_drops_the_cache(
    jwt_auth: Authenticator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting_verify(jwt_auth, monkeypatch)
    token = sign()
    await jwt_auth.authenticate(bearer(token))
    # The key k0 is retired: OTHER_KEY becomes k0, KEY's tokens no longer verify.
    write_jwks(tmp_path, OTHER_KEY, OTHER_KEY)
    assert "signature does not verify" in await refusal(jwt_auth, bearer(token))
    assert len(calls) == 2


async def test_a_tokens_file_change_drops_cached_jwts_too(
    jwt_auth: Authenticator, tokens_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting_verify(jwt_auth, monkeypatch)
    token = sign()
    await jwt_auth.authenticate(bearer(token))
    write_tokens(tokens_file, CI_ENTRY)
    await jwt_auth.authenticate(bearer(token))
    assert len(calls) == 2


async def test_the_cache_is_bounded(
    jwt_auth: Authenticator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(authenticator_module, "CACHE_LIMIT", 1)
    calls = counting_verify(jwt_auth, monkeypatch)
    a, b = sign(sub="a"), sign(sub="b")
    await jwt_auth.authenticate(bearer(a))
    await jwt_auth.authenticate(bearer(a))
    assert len(calls) == 1
    await jwt_auth.authenticate(bearer(b))  # the cache is full: cleared, then b kept
    await jwt_auth.authenticate(bearer(a))
    assert len(calls) == 3


# ------------------------------------------------------------------ the settings


def test_auth_enabled(tmp_path: Path) -> None:
    assert not settings().auth_enabled
    assert settings(auth_tokens_file="t.yaml").auth_enabled
    assert settings(auth_jwks_file="k.json", auth_jwt_audience=AUDIENCE).auth_enabled
    assert settings(
        auth_jwks_url="https://issuer.example/jwks.json", auth_jwt_audience=AUDIENCE
    ).auth_enabled
    assert not settings(audit_log=str(tmp_path / "audit.jsonl")).auth_enabled


def test_auth_settings_from_the_environment() -> None:
    loaded = load_settings(
        environ={
            "AGENTMESH_AUTH_TOKENS_FILE": "/etc/agentmesh/tokens.yaml",
            "AGENTMESH_AUDIT_LOG": "/var/log/agentmesh/audit.jsonl",
        }
    )
    assert loaded.auth_tokens_file == "/etc/agentmesh/tokens.yaml"
    assert loaded.audit_log == "/var/log/agentmesh/audit.jsonl"
    assert loaded.auth_enabled


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"auth_jwks_file": "k.json"}, "auth_jwt_audience: verifying JWTs needs the audience"),
        (
            {"auth_jwks_url": "https://issuer.example/jwks.json"},
            "auth_jwt_audience: verifying JWTs needs the audience",
        ),
        (
            {
                "auth_jwks_file": "k.json",
                "auth_jwks_url": "https://issuer.example/jwks.json",
                "auth_jwt_audience": AUDIENCE,
            },
            "auth_jwks_file and auth_jwks_url: give one, not both",
        ),
        (
            {"auth_jwks_url": "file:///etc/jwks.json", "auth_jwt_audience": AUDIENCE},
            "auth_jwks_url: expected an http(s) URL",
        ),
        ({"auth_policy_file": "p.yaml"}, "auth_policy_file: has no effect without"),
        ({"auth_tokens_fil": "t.yaml"}, "auth_tokens_fil"),
    ],
)
def test_invalid_auth_settings(overrides: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as e:
        settings(**overrides)
    assert isinstance(e.value, ValueError)
    assert says in str(e.value)


def test_the_policy_file_with_jwt_only_is_fine() -> None:
    loaded = settings(
        auth_policy_file="p.yaml", auth_jwks_file="k.json", auth_jwt_audience=AUDIENCE
    )
    assert loaded.auth_policy_file == "p.yaml"
