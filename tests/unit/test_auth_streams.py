"""``OpenStreams``: open streams decided again when the tokens file, the key set or the
policy file changes, or when their credentials expire; a revoked one is ended through
its callback with UNAUTHENTICATED (credentials no longer valid) or PERMISSION_DENIED
(no longer allowed). A real ``Authenticator`` over real files rewritten on disk; no
gRPC (the guard's side is tests/integration/test_revocation.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from coordinator.auth import Authenticator, Credentials, OpenStream, OpenStreams, token_digest
from coordinator.auth.jwks import LEEWAY_S
from coordinator.config import load_settings
from coordinator.errors import PermissionDenied, Unauthenticated
from tests.conftest import eventually
from tests.unit.test_auth_jwt import Key, write_jwks

CONNECT = "/agentmesh.v1.AgentService/Connect"
SUBSCRIBE = "/agentmesh.v1.EventService/Subscribe"
ALPHA, BETA = "alpha-s3cret-token", "beta-s3cret-token"
SPIFFE = "spiffe://agentmesh/executor"


def entry(name: str, **fields: str) -> str:
    lines = [f"  - name: {name}"] + [f"    {k}: {v}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def agent(name: str, token: str, capabilities: str = "[echo]", **more: str) -> str:
    return entry(
        name, sha256=token_digest(token), roles="[agent]", capabilities=capabilities, **more
    )


EXECUTOR = entry("executor", spiffe=SPIFFE, roles="[agent]", capabilities="[echo]")


def write(path: Path, *entries: str) -> None:
    """Rewrite the file in place (truncate, write), as an editor would, and make sure its
    modification time moves even on a coarse clock."""
    before = os.stat(path).st_mtime_ns if path.exists() else 0
    path.write_text("tokens:\n" + "".join(entries), encoding="utf-8")
    if os.stat(path).st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def rewrite(path: Path, text: str) -> None:
    """Replace ``path``'s content with ``text``, its modification time moved on."""
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))


class Ends:
    """The end callback: records the streams it was asked to end."""

    def __init__(self) -> None:
        self.ended: list[OpenStream] = []

    def __call__(self, stream: OpenStream) -> None:
        self.ended.append(stream)


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    write(path, agent("alpha", ALPHA), agent("beta", BETA), EXECUTOR)
    return path


def authenticator(tokens: Path, **settings: Any) -> Authenticator:
    return Authenticator(load_settings(overrides={"auth_tokens_file": str(tokens), **settings}))


async def opened(
    streams: OpenStreams,
    auth: Authenticator,
    ends: Ends,
    credentials: Credentials,
    method: str = CONNECT,
    capabilities: tuple[str, ...] = ("echo",),
) -> OpenStream:
    """Admit a stream as the guard does: generation first, then authenticate."""
    generation = streams.generation()
    principal, until = await auth.authenticate_until(credentials)
    assert auth.policy.decide(principal, method, "default").allowed
    stream = streams.open(
        credentials, principal, method, "default", until=until, generation=generation, end=ends
    )
    stream.serves(capabilities)
    return stream


def bearer(token: str) -> Credentials:
    return Credentials(authorization=f"Bearer {token}")


async def settle(streams: OpenStreams) -> list[OpenStream]:
    """Two checks: the first sees the change, the second acts on it."""
    first = await streams.check()
    return first + await streams.check()


async def test_a_removed_token_ends_its_stream_unauthenticated_and_no_other(tokens: Path) -> None:
    auth, ends = authenticator(tokens), Ends()
    streams = OpenStreams(auth)
    alpha = await opened(streams, auth, ends, bearer(ALPHA))
    beta = await opened(streams, auth, ends, bearer(BETA))
    assert await streams.check() == [] and len(streams) == 2
    write(tokens, agent("beta", BETA), EXECUTOR)
    assert await streams.check() == []  # seen, not yet acted on (it must hold one check)
    assert await streams.check() == [alpha]
    assert ends.ended == [alpha] and beta.revoked is None
    assert isinstance(alpha.revoked, Unauthenticated)
    assert "stream revoked" in str(alpha.revoked) and "not valid" in str(alpha.revoked)
    assert ALPHA not in str(alpha.revoked)
    assert await streams.check() == []  # ended once
    streams.close(alpha)
    assert len(streams) == 1 and streams.revocations == 1


async def test_a_narrowed_grant_ends_its_stream_permission_denied(tokens: Path) -> None:
    auth, ends = authenticator(tokens), Ends()
    streams = OpenStreams(auth)
    alpha = await opened(streams, auth, ends, bearer(ALPHA))
    beta = await opened(streams, auth, ends, bearer(BETA))
    write(tokens, agent("alpha", ALPHA, capabilities="[other]"), agent("beta", BETA), EXECUTOR)
    assert await settle(streams) == [alpha] and beta.revoked is None
    assert isinstance(alpha.revoked, PermissionDenied)
    text = str(alpha.revoked)
    assert "stream revoked: no longer allowed" in text and "echo" in text and "alpha" in text


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ({"roles": "[viewer]"}, "agents.connect"),
        ({"namespaces": "[team-a]"}, "namespace 'default'"),
    ],
)
async def test_roles_and_namespaces_taken_away_end_the_stream(
    tokens: Path, changed: dict[str, str], reason: str
) -> None:
    auth, ends = authenticator(tokens), Ends()
    streams = OpenStreams(auth)
    alpha = await opened(streams, auth, ends, bearer(ALPHA))
    fields = {"sha256": token_digest(ALPHA), "roles": "[agent]", "capabilities": "[echo]"}
    write(tokens, entry("alpha", **{**fields, **changed}), agent("beta", BETA), EXECUTOR)
    assert await settle(streams) == [alpha]
    assert isinstance(alpha.revoked, PermissionDenied) and reason in str(alpha.revoked)


async def test_a_grant_that_still_allows_the_stream_keeps_it(tokens: Path) -> None:
    auth, ends = authenticator(tokens), Ends()
    streams = OpenStreams(auth)
    alpha = await opened(streams, auth, ends, bearer(ALPHA))
    wider = agent("alpha", ALPHA, capabilities="[echo, other]", namespaces="[default, b]")
    write(tokens, wider, agent("beta", BETA), EXECUTOR)
    assert await settle(streams) == [] and alpha.revoked is None
    assert alpha.generation == auth.generation  # decided at the new content


async def test_a_file_caught_half_written_cuts_nothing(tokens: Path) -> None:
    auth, ends = authenticator(tokens), Ends()
    streams = OpenStreams(auth)
    alpha = await opened(streams, auth, ends, bearer(ALPHA))
    await streams.check()
    rewrite(tokens, "")  # truncated: an empty tokens file revokes all
    assert await streams.check() == []
    write(tokens, agent("alpha", ALPHA), agent("beta", BETA), EXECUTOR)  # ... then written
    assert await streams.check() == []
    assert await streams.check() == [] and alpha.revoked is None and ends.ended == []


async def test_a_removed_certificate_identity_ends_its_stream(tokens: Path) -> None:
    auth, ends = authenticator(tokens), Ends()
    streams = OpenStreams(auth)
    executor = await opened(streams, auth, ends, Credentials(spiffe=SPIFFE))
    assert executor.until == float("inf")
    write(tokens, agent("alpha", ALPHA), agent("beta", BETA))
    assert await settle(streams) == [executor]
    assert isinstance(executor.revoked, Unauthenticated) and SPIFFE in str(executor.revoked)


async def test_a_policy_change_is_a_change_too(tokens: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    rewrite(policy, "roles: {}\n")
    auth, ends = authenticator(tokens, auth_policy_file=str(policy)), Ends()
    streams = OpenStreams(auth)
    alpha = await opened(streams, auth, ends, bearer(ALPHA))
    rewrite(policy, "roles:\n  agent: [agents.read]\n")
    assert await settle(streams) == [alpha]
    assert isinstance(alpha.revoked, PermissionDenied)
    assert "agents.connect" in str(alpha.revoked)


async def test_a_token_entry_that_expires_ends_its_stream_then(tokens: Path) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    write(tokens, agent("alpha", ALPHA, expires=expires.isoformat()), agent("beta", BETA))
    auth, ends = authenticator(tokens), Ends()
    streams = OpenStreams(auth)
    alpha = await opened(streams, auth, ends, bearer(ALPHA))
    beta = await opened(streams, auth, ends, bearer(BETA))
    assert alpha.until == pytest.approx(expires.timestamp()) and beta.until == float("inf")
    assert await streams.check(now=expires.timestamp() - 1) == []  # no change, not yet due

    async def ended() -> bool:
        return bool(await streams.check())

    await eventually(ended, timeout=10, interval=0.1)
    assert ends.ended == [alpha] and beta.revoked is None
    assert isinstance(alpha.revoked, Unauthenticated) and "expired" in str(alpha.revoked)


async def test_nothing_is_decided_again_without_a_change_or_an_expiry(
    tokens: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth, ends = authenticator(tokens), Ends()
    streams = OpenStreams(auth)
    for _ in range(3):
        await opened(streams, auth, ends, bearer(ALPHA))
    calls: list[Credentials] = []
    real = auth.authenticate_until

    async def counting(credentials: Credentials) -> Any:
        calls.append(credentials)
        return await real(credentials)

    monkeypatch.setattr(auth, "authenticate_until", counting)
    for _ in range(5):
        assert await streams.check() == []
    assert calls == []  # a stat per file and a pass over the streams, no verification
    write(tokens, agent("alpha", ALPHA), agent("beta", BETA), EXECUTOR, "\n")
    await settle(streams)
    assert len(calls) == 3  # each stream once, after the change


async def test_the_watch_runs_the_checks(tokens: Path) -> None:
    auth, ends = authenticator(tokens), Ends()
    streams = OpenStreams(auth)
    alpha = await opened(streams, auth, ends, bearer(ALPHA))
    watch = asyncio.create_task(streams.watch(period=0.05))
    try:
        write(tokens, agent("beta", BETA))
        await eventually(lambda: ends.ended == [alpha], timeout=5)
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch


async def test_authenticate_until_says_when_credentials_stop_holding(tokens: Path) -> None:
    auth = authenticator(tokens)
    principal, until = await auth.authenticate_until(bearer(BETA))
    assert principal.name == "beta" and until == float("inf")
    assert (await auth.authenticate_until(bearer(BETA)))[1] == until  # from the cache


async def test_a_jwt_stream_ends_when_its_token_expires(tokens: Path, tmp_path: Path) -> None:
    key = Key("ec-1", ec.generate_private_key(ec.SECP256R1()), "ES256")
    jwks = write_jwks(tmp_path / "jwks.json", key)
    auth = authenticator(tokens, auth_jwks_file=str(jwks), auth_jwt_audience="agentmesh")
    ends = Ends()
    streams = OpenStreams(auth)

    def token(exp: float) -> str:
        claims = {"sub": "ci-bot", "aud": "agentmesh", "exp": int(exp), "roles": ["agent"]}
        return key.sign({**claims, "capabilities": ["echo"]})

    # Accepted until exp plus the clock skew forgiven: past its exp, about 1.5 s left.
    short = token(time.time() - LEEWAY_S + 1.5)
    long = token(time.time() + 600)
    principal, until = await auth.authenticate_until(bearer(short))
    assert principal.name == "ci-bot" and until == pytest.approx(time.time() + 1.5, abs=1.1)
    expiring = await opened(streams, auth, ends, bearer(short))
    lasting = await opened(streams, auth, ends, bearer(long))
    assert lasting.until == pytest.approx(time.time() + 600 + LEEWAY_S, abs=1.1)

    async def ended() -> bool:
        return bool(await streams.check())

    await eventually(ended, timeout=10, interval=0.1)
    assert ends.ended == [expiring] and lasting.revoked is None
    assert isinstance(expiring.revoked, Unauthenticated)
    assert "the JWT has expired" in str(expiring.revoked)
