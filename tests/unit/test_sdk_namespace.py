"""The SDK's namespace: argument, then ``AGENTMESH_NAMESPACE``, then ``default``; the
metadata that carries it; malformed names refused before any call."""

from __future__ import annotations

import pytest

from agent_sdk import Agent, Client
from agent_sdk._namespace import NAMESPACE_ENV, namespace_metadata, resolve_namespace
from agentmesh.protocol import DEFAULT_NAMESPACE, NAMESPACE_METADATA


def test_the_argument_wins_over_the_environment() -> None:
    assert resolve_namespace("team-a", {NAMESPACE_ENV: "team-b"}) == "team-a"
    assert resolve_namespace(None, {NAMESPACE_ENV: "team-b"}) == "team-b"
    assert resolve_namespace(None, {NAMESPACE_ENV: ""}) == DEFAULT_NAMESPACE
    assert resolve_namespace(None, {}) == DEFAULT_NAMESPACE


@pytest.mark.parametrize(
    "bad", ["", "Team", "team_a", "-a", "a-", "a" * 64, "a/b", "../x", "é", "a b"]
)
def test_a_malformed_name_is_refused_naming_where_it_came_from(bad: str) -> None:
    with pytest.raises(ValueError, match=r"namespace argument: .* is not a namespace name"):
        resolve_namespace(bad, {})
    if bad:  # an empty variable means the default
        with pytest.raises(ValueError, match=rf"{NAMESPACE_ENV}: .* is not a namespace name"):
            resolve_namespace(None, {NAMESPACE_ENV: bad})


@pytest.mark.parametrize("good", ["a", "0", "team-a", "a" * 63, "x-1-y"])
def test_dns_labels_are_names(good: str) -> None:
    assert resolve_namespace(good, {}) == good


def test_the_default_namespace_sends_no_metadata() -> None:
    assert namespace_metadata(DEFAULT_NAMESPACE) == ()
    assert namespace_metadata("team-a") == ((NAMESPACE_METADATA, "team-a"),)


async def test_client_and_agent_take_and_check_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAMESPACE_ENV, "from-env")
    assert Client("localhost:1").namespace == "from-env"
    assert Client("localhost:1", namespace="given").namespace == "given"
    assert Agent("a", "localhost:1").namespace == "from-env"
    with pytest.raises(ValueError, match="not a namespace name"):
        Agent("a", "localhost:1", namespace="Nope")
    with pytest.raises(ValueError, match="not a namespace name"):
        Client("localhost:1", namespace="no pe")
