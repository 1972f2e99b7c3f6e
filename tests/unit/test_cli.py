"""The ``agentmesh`` command without a coordinator: the bearer-token flags (``--token``,
``--token-file``, ``$AGENTMESH_TOKEN``), ``--namespace`` and the usage errors they give
before anything is dialled.  The token on the wire is in tests/integration/test_sdk_token.py."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from agent_sdk._auth import TOKEN_ENV
from agent_sdk._namespace import NAMESPACE_ENV
from agentmesh.cli._local import agent_environment
from agentmesh.cli._main import _namespace, _token, main
from agentmesh.cli._parser import build_parser

DEAD = "127.0.0.1:1"  # never dialled: every case fails before


@pytest.fixture(autouse=True)
def no_token_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(NAMESPACE_ENV, raising=False)


def token_of(*argv: str) -> str:
    return _token(build_parser(settings_flags=False).parse_args(list(argv)))


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``agentmesh ARGV``: it must exit 2 with one ``agentmesh: ...`` line."""
    assert main(list(argv)) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("agentmesh: "), err
    return lines[0]


def test_a_missing_token_file_is_bad_usage_naming_the_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "token"
    line = usage_error(capsys, "agents", "-c", DEAD, "--token-file", str(missing))
    assert str(missing) in line and "cannot read" in line
    # before the command too, and for the commands that start agents
    for argv in (
        ("--token-file", str(missing), "agents", "-c", DEAD),
        ("agent", "math", "-c", DEAD, "--token-file", str(missing)),
        ("demo", "--token-file", str(missing)),
        ("version", "-c", DEAD, "--token-file", str(missing)),
    ):
        assert str(missing) in usage_error(capsys, *argv), argv


def test_an_unreadable_or_empty_token_file_is_bad_usage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert "cannot read" in usage_error(capsys, "agents", "-c", DEAD, "--token-file", str(tmp_path))
    empty = tmp_path / "empty"
    empty.write_text("")
    line = usage_error(capsys, "agents", "-c", DEAD, "--token-file", str(empty))
    assert str(empty) in line and "empty" in line


@pytest.mark.parametrize(
    ("argv", "where"),
    [
        (("--token", "s3cret two"), "--token: "),
        (("--token", "s3cret\n"), "--token: "),
        (("--token", "s3cr\u00e9t"), "--token: "),
    ],
)
def test_a_token_that_cannot_be_sent_is_bad_usage_without_showing_it(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], where: str
) -> None:
    line = usage_error(capsys, "agents", "-c", DEAD, *argv)
    assert line.startswith(f"agentmesh: {where}") and "s3cr" not in line


def test_bad_tokens_in_a_file_or_the_environment_are_bad_usage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_lines = tmp_path / "token"
    two_lines.write_text("s3cret\nmore\n")
    line = usage_error(capsys, "agents", "-c", DEAD, "--token-file", str(two_lines))
    assert str(two_lines) in line and "line break" in line and "s3cret" not in line
    monkeypatch.setenv(TOKEN_ENV, "s3cret two")
    line = usage_error(capsys, "agents", "-c", DEAD)
    assert f"{TOKEN_ENV}: " in line and "whitespace" in line and "s3cret" not in line


def test_token_and_token_file_go_alone(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text("a")
    line = usage_error(capsys, "agents", "-c", DEAD, "--token", "b", "--token-file", str(f))
    assert "--token" in line and "--token-file" in line


def test_which_token_the_cli_sends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "token"
    assert token_of("agents") == ""
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert token_of("agents") == "from-env"
    assert token_of("--token", "flag", "agents") == "flag"
    assert token_of("agents", "--token", "flag") == "flag"
    assert token_of("agents", "--token", "") == ""  # explicitly none
    for text in ("from-file\n", "from-file\r\n", "from-file"):
        f.write_bytes(text.encode())
        assert token_of("agents", "--token-file", str(f)) == "from-file"
    assert token_of("demo", "--token", "flag") == "flag"
    assert token_of("cluster", "status", "--token", "flag") == "flag"


def test_the_help_shows_the_token_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["agents", "--help"])
    out = capsys.readouterr().out
    assert "--token TOKEN" in out and "--token-file PATH" in out
    assert "bearer token for the coordinator (default: $AGENTMESH_TOKEN)" in " ".join(out.split())


def test_the_agent_command_sets_token_and_namespace_only_while_its_agent_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with agent_environment("flag", "team-a"):
        assert os.environ[TOKEN_ENV] == "flag"
        assert os.environ[NAMESPACE_ENV] == "team-a"
    assert TOKEN_ENV not in os.environ and NAMESPACE_ENV not in os.environ
    monkeypatch.setenv(TOKEN_ENV, "before")
    monkeypatch.setenv(NAMESPACE_ENV, "ns-before")
    with agent_environment("", "team-b"):
        assert TOKEN_ENV not in os.environ
        assert os.environ[NAMESPACE_ENV] == "team-b"
    assert os.environ[TOKEN_ENV] == "before"
    assert os.environ[NAMESPACE_ENV] == "ns-before"


def namespace_of(*argv: str) -> str:
    return _namespace(build_parser(settings_flags=False).parse_args(list(argv)))


def test_which_namespace_the_cli_acts_in(monkeypatch: pytest.MonkeyPatch) -> None:
    assert namespace_of("executions") == "default"
    monkeypatch.setenv(NAMESPACE_ENV, "from-env")
    assert namespace_of("executions") == "from-env"
    assert namespace_of("-n", "flag", "executions") == "flag"
    assert namespace_of("executions", "--namespace", "flag") == "flag"


def test_a_malformed_namespace_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    line = usage_error(capsys, "executions", "-c", DEAD, "-n", "Team A")
    assert line.startswith("agentmesh: --namespace: 'Team A' is not a namespace name"), line


def test_executions_since_takes_a_span_and_refuses_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser(settings_flags=False)
    args = parser.parse_args(["executions", "--since", "90m", "--search", "app", "--parent", "p"])
    assert args.since == timedelta(minutes=90) and args.search == "app" and args.parent == "p"
    assert parser.parse_args(["executions", "--since", "2d"]).since == timedelta(days=2)
    for bad in ["15", "m", "-3h", "1.5y", "nanm"]:
        with pytest.raises(SystemExit):
            parser.parse_args(["executions", f"--since={bad}"])
        assert "is not a span such as 90s" in capsys.readouterr().err
