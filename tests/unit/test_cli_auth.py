"""``agentmesh auth``: new tokens (and the entries they append), digests, and offline
decisions that give the coordinator's own words and exit 0 (allowed) or 1 (denied)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from agentmesh.cli._main import main
from coordinator.auth import parse_policy, parse_tokens, token_digest


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["auth", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_new_token_appends_an_entry_that_parses_and_prints_only_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = tmp_path / "tokens.yaml"
    code, out, _ = run(capsys, "new-token", "ops", "--role", "operator", "--append", str(tokens))
    assert code == 0
    token = out.strip()
    assert len(token) >= 40 and "\n" not in token
    code, out2, _ = run(
        capsys,
        "new-token", "exec", "--role", "agent", "--capability", "echo",
        "--capability", "*", "--namespace", "team-a", "--append", str(tokens),
    )  # fmt: skip
    assert code == 0
    table = parse_tokens(tokens)
    ops = table.by_digest[token_digest(token)].principal
    assert ops.name == "ops" and ops.roles == {"operator"} and ops.namespaces == {"default"}
    agent = table.by_digest[token_digest(out2.strip())].principal
    assert agent.capabilities == {"echo", "*"} and agent.namespaces == {"team-a"}
    assert token not in tokens.read_text()  # the digest is stored, never the token
    assert tokens.stat().st_mode & 0o077 == 0


def test_an_entry_that_would_break_the_file_leaves_it_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("# ours\ntokens:\n")
    code, _, err = run(
        capsys, "new-token", "x", "--role", "viewer", "--expires", "soon", "--append", str(tokens)
    )
    assert code == 2 and "left as it was" in err and "expires" in err
    assert tokens.read_text() == "# ours\ntokens:\n"
    code, _, err = run(capsys, "new-token", "a # b", "--role", "viewer")
    assert code == 2 and "name 'a # b'" in err


def test_new_token_without_append_prints_the_entry(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "new-token", "ops", "--role", "admin")
    assert code == 0
    token = out.splitlines()[1].strip()
    assert f"sha256: {token_digest(token)}" in out and "roles: [admin]" in out


def test_hash_token_from_an_argument_and_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "hash-token", "s3cret")[1].strip() == token_digest("s3cret")
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert run(capsys, "hash-token")[1].strip() == token_digest("s3cret")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(capsys, "hash-token")
    assert code == 2 and "no token" in err


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(
        "tokens:\n"
        f"  - {{name: watcher, sha256: {token_digest('w')}, roles: [viewer]}}\n"
        "  - {name: executor, spiffe: 'spiffe://agentmesh/executor', roles: [agent],"
        " capabilities: [echo]}\n"
    )
    return path


def test_check_explains_allowed_and_denied_with_exit_status(
    tokens: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "check", "watcher", "StopWorkflow", "--tokens-file", str(tokens))
    assert code == 1
    assert out.startswith("denied: /agentmesh.v1.ExecutionService/StopWorkflow needs the")
    assert "executions.stop" in out and "watcher (roles: viewer)" in out
    code, out, _ = run(
        capsys, "check", "watcher", "ExecutionService/ListExecutions", "--tokens-file", str(tokens)
    )
    assert code == 0 and out.startswith("allowed: ") and "executions.read" in out
    code, out, _ = run(capsys, "check", "executor", "Connect", "--tokens-file", str(tokens))
    assert code == 0 and "may serve: echo" in out
    code, out, _ = run(
        capsys, "check", "watcher", "ListAgents", "--namespace", "b", "--tokens-file", str(tokens)
    )
    assert code == 1 and "namespace 'b'" in out


def test_check_reads_the_policy_file_and_takes_roles_directly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("roles:\n  stopper: [executions.stop]\n")
    parse_policy(policy)
    args = ("--role", "stopper", "--policy-file", str(policy))
    assert run(capsys, "check", "someone", "StopWorkflow", *args)[0] == 0
    assert run(capsys, "check", "someone", "StartWorkflow", *args)[0] == 1
    assert run(capsys, "check", "someone", "StopWorkflow", "--role", "stopper")[0] == 1


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["check", "x", "Nope", "--role", "admin"], "not an agentmesh.v1 method"),
        (["check", "nobody", "ListAgents", "--tokens-file", "TOKENS"], "is not named in"),
        (["check", "x", "ListAgents"], "give --role, or a tokens file"),
        (["check", "x", "ListAgents", "--tokens-file", "/no/such/file"], "cannot read"),
    ],
)
def test_check_usage_errors(
    tokens: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    argv = [str(tokens) if a == "TOKENS" else a for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err, err
