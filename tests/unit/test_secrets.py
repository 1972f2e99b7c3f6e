"""The secret provider's sources and their order, and the redactor's rules: names,
schema marks, values (copies, substrings), sealing with and without a key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from coordinator.config import DEFAULT_REDACT_FIELDS, load_settings
from coordinator.errors import ConfigError, FailedPrecondition, NotFound
from coordinator.secrets import REDACTED, SEALED, Redactor, SecretProvider, Secrets, redactor_for


def test_sources_in_order_environment_directory_file(tmp_path: Path) -> None:
    d = tmp_path / "mounted"
    d.mkdir()
    (d / "db-password").write_text("from-dir\n")
    (d / "api.key").write_text("dir-key")
    f = tmp_path / "secrets.yaml"
    f.write_text("db-password: from-file\nonly-file: f\n")
    p = SecretProvider(
        directory=str(d), file=str(f), environ={"AGENTMESH_SECRET_DB_PASSWORD": "from-env"}
    )
    assert p.get("db-password") == "from-env"
    assert p.get("api.key") == "dir-key"
    assert p.get("only-file") == "f"
    with pytest.raises(NotFound, match=r"secret 'missing' is not defined \(looked in: "):
        p.get("missing")
    for bad in ("../etc/passwd", "a/b", "..", ""):
        with pytest.raises(NotFound, match="not a secret name"):
            p.get(bad)


def test_an_unreadable_file_is_named_but_its_content_never(tmp_path: Path) -> None:
    f = tmp_path / "secrets.yaml"
    f.write_text("a: [unclosed hunter2-value\n")
    with pytest.raises(FailedPrecondition) as caught:
        SecretProvider(env_prefix="", file=str(f)).get("a")
    assert str(f) in str(caught.value) and "hunter2" not in str(caught.value)


def test_names_match_by_suffix_ignoring_case_and_separators() -> None:
    r = Redactor(DEFAULT_REDACT_FIELDS)
    for name in ("password", "DB_PASSWORD", "githubToken", "api-key", "x-Authorization"):
        assert r.secret_name(name), name
    for name in ("tokenCount", "user", "passwordless", "keys"):
        assert not r.secret_name(name), name


def test_schema_marks_and_values_found_under_secret_names() -> None:
    r = Redactor(DEFAULT_REDACT_FIELDS)
    schema = {
        "properties": {
            "deployKey": {"type": "string", "secret": True},
            "nested": {"items": {"properties": {"pin": {"secret": True}}}},
        }
    }
    known = Secrets(names=r.schema_names(schema))
    assert known.names == {"deploykey", "pin"}
    r.discover({"deployKey": "k-12345", "x": [{"pin": 1234}], "password": "abc"}, known)
    assert known.values == {"k-12345", "1234"}  # "abc" is too short to match by value


def test_redact_hides_fields_copies_and_substrings() -> None:
    r = Redactor(DEFAULT_REDACT_FIELDS)
    known = Secrets(values={"hunter22"})
    shown = r.redact(
        {"password": "abc", "copy": "hunter22", "log": ["as hunter22 ok"], "n": 5}, known
    )
    assert shown == {"password": REDACTED, "copy": REDACTED, "log": [f"as {REDACTED} ok"], "n": 5}
    assert r.redact_text("bad hunter22!", known) == f"bad {REDACTED}!"


def test_sealing_round_trips_with_the_key_and_is_a_marker_without() -> None:
    key = Fernet.generate_key().decode()
    r = Redactor(DEFAULT_REDACT_FIELDS, key)
    known = Secrets(values={"hunter22"})
    value = {"password": "hunter22", "copy": "x hunter22", "plain": "ok", "token": {"a": 1}}
    sealed = r.seal(value, known)
    assert "hunter22" not in repr(sealed)
    assert set(sealed["password"]) == {SEALED} and sealed["plain"] == "ok"
    assert r.unseal(sealed) == value
    assert r.redact(sealed) == {
        "password": REDACTED,
        "copy": REDACTED,
        "plain": "ok",
        "token": REDACTED,
    }
    # Another key (or none) cannot open it: the marker, never an error.
    assert (
        Redactor(DEFAULT_REDACT_FIELDS, Fernet.generate_key().decode()).unseal(sealed)["password"]
        == REDACTED
    )
    assert Redactor(DEFAULT_REDACT_FIELDS).seal(value, known)["password"] == REDACTED


def test_the_history_key_comes_from_the_provider(tmp_path: Path) -> None:
    (tmp_path / "history-key").write_text(Fernet.generate_key().decode() + "\n")
    settings = load_settings(
        overrides={"secrets_dir": str(tmp_path), "secrets_env_prefix": ""}, environ={}
    )
    assert redactor_for(settings).sealing
    assert not redactor_for(load_settings(overrides={"secrets_env_prefix": ""}, environ={})).sealing
    (tmp_path / "history-key").write_text("not a key")
    with pytest.raises(ConfigError, match="is not a Fernet key"):
        redactor_for(settings)


def test_redact_fields_from_the_environment() -> None:
    settings = load_settings(environ={"AGENTMESH_REDACT_FIELDS": "pin, ssn"})
    r = Redactor(settings.redact_fields)
    assert r.secret_name("userSSN") and not r.secret_name("password")
