"""Bearer tokens in the SDK: which token ``resolve_token`` picks (the argument, else
``AGENTMESH_TOKEN``), the metadata ``auth_metadata`` makes of it, the tokens refused
(with a message that names where the token came from and never shows it), and that
``Agent`` and ``Client`` refuse them when made.  No coordinator: the header on the wire
is in tests/integration/test_sdk_token.py."""

from __future__ import annotations

import pytest

from agent_sdk import Agent, Client
from agent_sdk._auth import TOKEN_ENV, auth_metadata, check_token, resolve_token

BAD = [
    ("s3cret two", "whitespace"),
    ("s3cret\tx", "whitespace"),
    ("s3cret\n", "a line break"),
    ("\r\ns3cret", "a line break"),
    ("s3cret\x00", "a control character"),
    ("s3cret\x7f", "a control character"),
    ("s3cr\u00e9t", "a non-ASCII character"),
    ("s3cret\u00a0", "whitespace"),
]


@pytest.fixture(autouse=True)
def no_token_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agent and Client read os.environ by default: start each test without a token."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)


@pytest.mark.parametrize(
    ("token", "environ", "expected"),
    [
        (None, {}, None),
        (None, {TOKEN_ENV: ""}, None),  # empty counts as unset
        (None, {TOKEN_ENV: "from-env"}, "from-env"),
        ("given", {}, "given"),
        ("given", {TOKEN_ENV: "from-env"}, "given"),  # the argument wins
        ("", {TOKEN_ENV: "from-env"}, None),  # "": explicitly none
        ("", {}, None),
        (None, {"AGENTMESH_TOKENS": "x", "TOKEN": "y"}, None),  # only AGENTMESH_TOKEN counts
    ],
)
def test_the_argument_wins_over_the_environment(
    token: str | None, environ: dict[str, str], expected: str | None
) -> None:
    assert resolve_token(token, environ) == expected


def test_the_default_environment_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_token(None) is None
    monkeypatch.setenv(TOKEN_ENV, "os-env")
    assert resolve_token(None) == "os-env"
    assert resolve_token("") is None


def test_every_printable_ascii_character_but_space_is_accepted() -> None:
    token = "".join(chr(c) for c in range(0x21, 0x7F))
    assert resolve_token(token, {}) == token
    assert resolve_token(None, {TOKEN_ENV: token}) == token
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcHMifQ.c2lnbmF0dXJl"
    assert resolve_token(jwt, {}) == jwt


def test_metadata() -> None:
    assert auth_metadata("s3cret") == (("authorization", "Bearer s3cret"),)
    assert auth_metadata(None) == ()
    assert auth_metadata("") == ()
    assert auth_metadata(resolve_token(None, {TOKEN_ENV: "e"})) == (("authorization", "Bearer e"),)


@pytest.mark.parametrize(("token", "what"), BAD)
def test_bad_characters_are_refused_naming_the_source_not_the_token(token: str, what: str) -> None:
    with pytest.raises(ValueError) as from_argument:
        resolve_token(token, {})
    with pytest.raises(ValueError) as from_env:
        resolve_token(None, {TOKEN_ENV: token})
    assert str(from_argument.value).startswith("token argument: ")
    assert str(from_env.value).startswith(f"{TOKEN_ENV}: ")
    for e in (from_argument, from_env):
        assert f"contains {what}" in str(e.value)
        assert "s3cr" not in str(e.value)
    with pytest.raises(ValueError, match=r"^--token-file 'x': "):
        check_token(token, "--token-file 'x'")


def test_a_whitespace_only_environment_value_is_refused_not_ignored() -> None:
    with pytest.raises(ValueError, match=TOKEN_ENV):
        resolve_token(None, {TOKEN_ENV: " "})


async def test_agent_and_client_refuse_a_bad_token_when_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for make in (Client, lambda address, **kw: Agent("a", address, **kw)):
        with pytest.raises(ValueError, match=r"token argument: .*line break"):
            make("127.0.0.1:1", token="s3cret\n")
        monkeypatch.setenv(TOKEN_ENV, "s3cret two")
        with pytest.raises(ValueError, match=f"{TOKEN_ENV}: .*whitespace"):
            make("127.0.0.1:1")
        made = make("127.0.0.1:1", token="")  # explicitly none: the environment is unread
        if isinstance(made, Client):
            await made.close()
        monkeypatch.delenv(TOKEN_ENV)


async def test_the_token_is_in_no_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = Agent("a", "127.0.0.1:1", token="hidden-agent-token")
    assert "hidden-agent-token" not in f"{agent!r} {agent}"
    monkeypatch.setenv(TOKEN_ENV, "hidden-client-token")
    client = Client("127.0.0.1:1")
    try:
        assert "hidden-client-token" not in f"{client!r} {client}"
    finally:
        await client.close()
