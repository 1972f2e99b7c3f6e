"""``Watched`` (``coordinator.auth.files``): a settings file parsed at start and again
when its stat signature changes; a change that does not parse keeps the last good value.

Changes are made detectable without sleeping: each rewrite changes the size, or
``os.utime`` sets a new ``mtime_ns``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from coordinator.auth.files import Watched, read_yaml
from coordinator.auth.policy import parse_policy
from coordinator.auth.tokens import parse_tokens, token_digest
from coordinator.errors import ConfigError

LOGGER = "coordinator.auth.files"


def parse_number(path: Path) -> int:
    """A tiny parser of our own: the file holds ``n: <int>``."""
    doc = read_yaml(path, "number_file")
    if not isinstance(doc, dict) or not isinstance(doc.get("n"), int):
        raise ConfigError(f"number_file: {path}: expected 'n: <integer>'")
    return int(doc["n"])


def bump_mtime(path: Path) -> None:
    """Give ``path`` an mtime it has never had, so the signature surely changes."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    bump_mtime(path)


@pytest.fixture
def number(tmp_path: Path) -> Path:
    path = tmp_path / "number.yaml"
    path.write_text("n: 1\n", encoding="utf-8")
    return path


def test_the_first_load(number: Path) -> None:
    watched = Watched(number, "number_file", parse_number)
    assert watched.current() == 1
    assert watched.generation == 1
    assert watched.reloads == 0
    assert watched.path == number
    assert watched.setting == "number_file"


def test_the_path_may_be_a_string(number: Path) -> None:
    assert Watched(str(number), "number_file", parse_number).current() == 1


def test_a_first_load_that_fails_raises(tmp_path: Path) -> None:
    bad = tmp_path / "number.yaml"
    bad.write_text("n: one\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected 'n: <integer>'"):
        Watched(bad, "number_file", parse_number)


def test_a_missing_file_at_first_load_raises_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^auth_tokens_file: cannot read .*absent\.yaml"):
        Watched(tmp_path / "absent.yaml", "auth_tokens_file", parse_tokens)


def test_no_change_no_reload(number: Path) -> None:
    calls: list[Path] = []

    def counting(path: Path) -> int:
        calls.append(path)
        return parse_number(path)

    watched = Watched(number, "number_file", counting)
    for _ in range(5):
        assert watched.current() == 1
    assert calls == [number]  # parsed once: the later looks are a stat only
    assert watched.generation == 1


def test_a_change_is_picked_up(number: Path) -> None:
    watched = Watched(number, "number_file", parse_number)
    number.write_text("n: 22\n", encoding="utf-8")  # another size
    assert watched.current() == 22
    assert watched.generation == 2
    assert watched.reloads == 1
    assert watched.current() == 22  # and only once
    assert watched.generation == 2


def test_a_change_of_mtime_alone_is_picked_up(number: Path) -> None:
    """Same size, same inode: the mtime tells."""
    watched = Watched(number, "number_file", parse_number)
    number.write_text("n: 7\n", encoding="utf-8")  # the same size as "n: 1\n"
    bump_mtime(number)
    assert watched.current() == 7
    assert watched.generation == 2


def test_a_replaced_file_is_picked_up(number: Path, tmp_path: Path) -> None:
    """An atomic rename (a new inode), how editors and config management write."""
    watched = Watched(number, "number_file", parse_number)
    new = tmp_path / "number.yaml.new"
    new.write_text("n: 3\n", encoding="utf-8")
    os.replace(new, number)
    bump_mtime(number)
    assert watched.current() == 3


def test_a_broken_change_keeps_the_last_good_value_and_logs(
    number: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watched = Watched(number, "number_file", parse_number)
    number.write_text("n: 2\n", encoding="utf-8")
    bump_mtime(number)
    assert watched.current() == 2
    caplog.clear()

    with caplog.at_level(logging.INFO, logger=LOGGER):
        write(number, "n: [half-written\n")
        assert watched.current() == 2
    assert watched.generation == 2
    assert watched.reloads == 1
    errors = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert str(number) in message
    assert "keeping the last good one" in message
    assert "not valid YAML" in message

    # Logged once, not at every look.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert watched.current() == 2
    assert not caplog.records


def test_a_deleted_file_keeps_the_last_value(
    number: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watched = Watched(number, "number_file", parse_number)
    number.unlink()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert watched.current() == 1
        assert watched.current() == 1
    assert watched.generation == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "cannot read" in errors[0].getMessage()


def test_a_change_back_later_loads_again(number: Path, caplog: pytest.LogCaptureFixture) -> None:
    watched = Watched(number, "number_file", parse_number)
    write(number, "n: not a number\n")
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert watched.current() == 1
    number.unlink()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert watched.current() == 1
    assert watched.generation == 1

    with caplog.at_level(logging.INFO, logger=LOGGER):
        write(number, "n: 333\n")
        assert watched.current() == 333
    assert watched.generation == 2
    assert watched.reloads == 1
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert any("number_file" in r.getMessage() and "reloaded" in r.getMessage() for r in infos)

    # The very same content as the broken one's predecessor loads too.
    write(number, "n: 1\n")
    assert watched.current() == 1
    assert watched.generation == 3


def test_a_parse_error_other_than_config_error_is_not_swallowed(number: Path) -> None:
    """Only ``ConfigError`` means "unusable file": a bug in a parser must show."""

    def fragile(path: Path) -> int:
        value = parse_number(path)
        if value == 13:
            raise RuntimeError("bug")
        return value

    watched = Watched(number, "number_file", fragile)
    write(number, "n: 13\n")
    with pytest.raises(RuntimeError):
        watched.current()


def test_with_the_real_parsers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tokens = tmp_path / "tokens.yaml"
    digest = token_digest("s3cret")
    tokens.write_text(f"tokens:\n  - {{name: ops, sha256: {digest}, roles: [ops]}}\n")
    watched_tokens = Watched(tokens, "auth_tokens_file", parse_tokens)
    assert watched_tokens.current().for_token("s3cret") is not None
    write(tokens, "tokens: []\n")
    assert watched_tokens.current().for_token("s3cret") is None  # revoked

    policy = tmp_path / "policy.yaml"
    policy.write_text("roles:\n  ro: [agents.read]\n")
    watched_policy = Watched(policy, "auth_policy_file", parse_policy)
    assert watched_policy.current().roles["ro"] == {"agents.read"}
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        write(policy, "roles:\n  ro: [agents.raed]\n")  # a typo keeps the last good one
        assert watched_policy.current().roles["ro"] == {"agents.read"}
    assert any("'agents.raed' names no permission" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ read_yaml


def test_read_yaml(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text("a: [1, 2]\n", encoding="utf-8")
    assert read_yaml(path, "some_setting") == {"a": [1, 2]}
    path.write_text("", encoding="utf-8")
    assert read_yaml(path, "some_setting") is None
    path.write_text("a: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^some_setting: .* is not valid YAML"):
        read_yaml(path, "some_setting")
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match=r"^some_setting: .* is not UTF-8 text"):
        read_yaml(path, "some_setting")
    with pytest.raises(ConfigError, match=r"^some_setting: cannot read"):
        read_yaml(tmp_path, "some_setting")  # a directory
