"""The tokens file (``coordinator.auth.tokens``): what ``parse_tokens`` makes of a valid
file, every refusal (a ``ConfigError`` naming the file and the entry), the digests it
stores and the expiry forms it accepts. Real files in tmp_path, nothing mocked."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from coordinator.auth import DEFAULT_NAMESPACE, TokenTable, parse_tokens, token_digest
from coordinator.auth.tokens import SETTING
from coordinator.errors import ConfigError

OPS = "ops-s3cret"
CI = "ci-s3cret"


def write(tmp_path: Path, text: str, name: str = "tokens.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def entry(**fields: object) -> str:
    """One ``tokens`` list item in flow style (YAML is a superset of this)."""
    body = ", ".join(f"{k}: {v}" for k, v in fields.items())
    return f"  - {{{body}}}\n"


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as e:
        parse_tokens(path)
    message = str(e.value)
    assert SETTING in message
    assert str(path) in message
    return message


# ------------------------------------------------------------------ token_digest


@pytest.mark.parametrize("token", ["", "a", OPS, "t\u00e9l\u00e9phone", "x" * 500])
def test_token_digest_is_the_hex_sha256_of_the_utf8_token(token: str) -> None:
    assert token_digest(token) == hashlib.sha256(token.encode("utf-8")).hexdigest()
    assert len(token_digest(token)) == 64


# ------------------------------------------------------------------ valid files


def test_a_full_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
tokens:
  - name: ops
    sha256: {token_digest(OPS)}
    roles: [operator]
    namespaces: [default, staging]
    capabilities: ["*"]
    description: the on-call team
  - name: executor
    spiffe: spiffe://agentmesh/executor
    roles: [agent]
    capabilities: [command_execution, git_operations]
  - name: legacy-box
    common_name: build-01
    roles: [agent]
""",
    )
    table = parse_tokens(path)

    ops = table.by_digest[token_digest(OPS)]
    assert ops.principal.name == "ops"
    assert ops.principal.roles == {"operator"}
    assert ops.principal.namespaces == {"default", "staging"}
    assert ops.principal.capabilities == {"*"}
    assert ops.principal.via == "token"
    assert ops.expires is None

    executor = table.by_spiffe["spiffe://agentmesh/executor"]
    assert executor.principal.name == "executor"
    assert executor.principal.roles == {"agent"}
    assert executor.principal.capabilities == {"command_execution", "git_operations"}
    assert executor.principal.via == "certificate"

    legacy = table.by_common_name["build-01"]
    assert legacy.principal.name == "legacy-box"
    assert legacy.principal.via == "certificate"

    assert len(table.by_digest) == 1
    assert len(table.by_spiffe) == 1
    assert len(table.by_common_name) == 1


def test_defaults_namespaces_default_and_no_capabilities(tmp_path: Path) -> None:
    path = write(
        tmp_path, "tokens:\n" + entry(name="ops", sha256=token_digest(OPS), roles="[viewer]")
    )
    principal = parse_tokens(path).by_digest[token_digest(OPS)].principal
    assert principal.namespaces == frozenset({DEFAULT_NAMESPACE}) == {"default"}
    assert principal.capabilities == frozenset()
    assert principal.via == "token"


def test_an_entry_with_a_token_and_a_certificate_is_via_token_and_indexed_twice(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "tokens:\n"
        + entry(
            name="both", sha256=token_digest(OPS), spiffe="spiffe://mesh/both", roles="[agent]"
        ),
    )
    table = parse_tokens(path)
    assert table.by_digest[token_digest(OPS)] is table.by_spiffe["spiffe://mesh/both"]
    assert table.by_digest[token_digest(OPS)].principal.via == "token"


def test_a_single_string_is_a_one_item_list_and_values_are_stripped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tokens:\n"
        + entry(
            name="' ops '",
            sha256=token_digest(OPS).upper(),  # hex case does not matter
            roles="admin",
            namespaces="'*'",
            capabilities="' echo '",
        ),
    )
    table = parse_tokens(path)
    principal = table.by_digest[token_digest(OPS)].principal
    assert principal.name == "ops"
    assert principal.roles == {"admin"}
    assert principal.namespaces == {"*"}
    assert principal.capabilities == {"echo"}


def test_two_entries_may_share_a_name(tmp_path: Path) -> None:
    """A token being rotated: the old and the new one, same principal name."""
    path = write(
        tmp_path,
        "tokens:\n"
        + entry(name="ops", sha256=token_digest(OPS), roles="[operator]")
        + entry(name="ops", sha256=token_digest(OPS + "-new"), roles="[operator]"),
    )
    table = parse_tokens(path)
    assert {e.principal.name for e in table.by_digest.values()} == {"ops"}
    assert len(table.by_digest) == 2


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "tokens: []\n", "tokens:\n"])
def test_an_empty_file_or_list_knows_no_one(tmp_path: Path, text: str) -> None:
    table = parse_tokens(write(tmp_path, text))
    assert table == TokenTable({}, {}, {})
    assert table.for_token(OPS) is None


def test_json_is_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'{{"tokens": [{{"name": "ops", "sha256": "{token_digest(OPS)}", "roles": ["viewer"]}}]}}',
        "tokens.json",
    )
    assert parse_tokens(path).by_digest[token_digest(OPS)].principal.name == "ops"


# ------------------------------------------------------------------ for_token


def test_for_token_looks_the_token_up_by_its_digest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tokens:\n"
        + entry(name="ops", sha256=token_digest(OPS), roles="[operator]")
        + entry(name="ci", sha256=token_digest(CI), roles="[viewer]"),
    )
    table = parse_tokens(path)
    ops, ci = table.for_token(OPS), table.for_token(CI)
    assert ops is not None
    assert ops.principal.name == "ops"
    assert ci is not None
    assert ci.principal.name == "ci"
    assert table.for_token("not-a-token") is None
    assert table.for_token(token_digest(OPS)) is None  # the digest is not the token
    assert table.for_token(OPS + " ") is None
    assert table.for_token("") is None


# ------------------------------------------------------------------ expires


def expires_of(tmp_path: Path, value: str) -> datetime | None:
    path = write(
        tmp_path,
        "tokens:\n" + entry(name="ops", sha256=token_digest(OPS), roles="[ops]", expires=value),
    )
    found = parse_tokens(path).for_token(OPS)
    assert found is not None
    return found.expires


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # A YAML date: midnight UTC.
        ("2027-01-31", datetime(2027, 1, 31, tzinfo=UTC)),
        # YAML timestamps, with and without a zone (without: UTC).
        ("2027-01-31T10:00:00Z", datetime(2027, 1, 31, 10, tzinfo=UTC)),
        ("2027-01-31 10:00:00", datetime(2027, 1, 31, 10, tzinfo=UTC)),
        (
            "2027-01-31T10:00:00+02:00",
            datetime(2027, 1, 31, 10, tzinfo=timezone(timedelta(hours=2))),
        ),
        # Quoted: ISO strings parsed by datetime.fromisoformat.
        ("'2027-01-31'", datetime(2027, 1, 31, tzinfo=UTC)),
        ("'2027-01-31T10:00:00'", datetime(2027, 1, 31, 10, tzinfo=UTC)),
        ("'2027-01-31T10:00:00+02:00'", datetime(2027, 1, 31, 8, tzinfo=UTC)),
        ("'2027-01-31T10:00:00Z'", datetime(2027, 1, 31, 10, tzinfo=UTC)),
    ],
)
def test_expires_forms(tmp_path: Path, value: str, expected: datetime) -> None:
    moment = expires_of(tmp_path, value)
    assert moment is not None
    assert moment.tzinfo is not None  # always aware, so comparisons never raise
    assert moment == expected


def test_expired_compares_with_now(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tokens:\n"
        + entry(name="ops", sha256=token_digest(OPS), roles="[ops]", expires="2027-01-31")
        + entry(name="ci", sha256=token_digest(CI), roles="[ops]"),
    )
    table = parse_tokens(path)
    ops, ci = table.for_token(OPS), table.for_token(CI)
    assert ops is not None
    assert ci is not None
    assert not ops.expired(datetime(2027, 1, 30, 23, 59, 59, tzinfo=UTC))
    assert ops.expired(datetime(2027, 1, 31, tzinfo=UTC))  # from then on
    assert ops.expired(datetime(2030, 1, 1, tzinfo=UTC))
    assert not ci.expired(datetime(9999, 1, 1, tzinfo=UTC))  # no expires: never


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    "text",
    [
        "[]\n",
        "- name: ops\n",
        "just a string\n",
        "42\n",
        "tokens: {name: ops}\n",
        "tokens: ops\n",
    ],
)
def test_not_a_mapping_with_a_list(tmp_path: Path, text: str) -> None:
    assert "must be a mapping with a list under 'tokens'" in refused(write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("tokens: []\nroles: {}\n", "roles"),
        ("token: []\n", "token"),
        ("tokens: []\n1: x\n", "1"),  # a YAML key that is not a string
    ],
)
def test_an_unknown_top_level_key(tmp_path: Path, text: str, named: str) -> None:
    message = refused(write(tmp_path, text))
    assert f"unknown top-level key(s) {named}" in message


def test_not_yaml(tmp_path: Path) -> None:
    assert "not valid YAML" in refused(write(tmp_path, "tokens: [\n"))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_bytes(b"tokens: []\n# \xff\xfe\n")
    assert "not UTF-8" in refused(path)


def test_a_missing_file(tmp_path: Path) -> None:
    assert "cannot read" in refused(tmp_path / "absent.yaml")


GOOD = entry(name="ok", sha256=token_digest("fine"), roles="[viewer]")
GOOD2 = entry(name="ok2", spiffe="spiffe://mesh/ok2", roles="[agent]")


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("  - just-a-string\n", "expected a mapping"),
        ("  - [a, b]\n", "expected a mapping"),
        (
            entry(name="ops", sha256=token_digest(OPS), roles="[viewer]", role="admin"),
            "unknown field(s) role",
        ),
        (
            entry(name="ops", sha256=token_digest(OPS), roles="[viewer]", zz=1, aa=2),
            "unknown field(s) aa, zz",
        ),
        (
            entry(name="ops", sha256=token_digest(OPS), roles="[viewer]", **{"1": "x"}),
            "unknown field(s) 1",
        ),
        (entry(sha256=token_digest(OPS), roles="[viewer]"), "name must be a non-empty string"),
        (entry(name="''", sha256=token_digest(OPS), roles="[viewer]"), "name must be"),
        (entry(name="'  '", sha256=token_digest(OPS), roles="[viewer]"), "name must be"),
        (entry(name="[a]", sha256=token_digest(OPS), roles="[viewer]"), "name must be"),
        (entry(name="ops", roles="[viewer]"), "needs a credential"),
        (entry(name="ops", sha256="null", roles="[viewer]"), "needs a credential"),
        (entry(name="ops", spiffe="''", roles="[viewer]"), "spiffe must be a non-empty string"),
        (entry(name="ops", common_name=5, roles="[viewer]"), "common_name must be a non-empty"),
        (entry(name="ops", sha256="abc", roles="[viewer]"), "sha256 must be 64 hex digits"),
        (entry(name="ops", sha256="g" * 64, roles="[viewer]"), "sha256 must be 64 hex digits"),
        (entry(name="ops", sha256="a" * 63, roles="[viewer]"), "sha256 must be 64 hex digits"),
        (entry(name="ops", sha256="a" * 65, roles="[viewer]"), "sha256 must be 64 hex digits"),
        (entry(name="ops", sha256=token_digest(OPS)), "roles must name at least one role"),
        (entry(name="ops", sha256=token_digest(OPS), roles="[]"), "roles must name at least"),
        (entry(name="ops", sha256=token_digest(OPS), roles="[1]"), "roles must be a list of"),
        (entry(name="ops", sha256=token_digest(OPS), roles="['']"), "roles must be a list of"),
        (entry(name="ops", sha256=token_digest(OPS), roles="{a: b}"), "roles must be a list"),
        (
            entry(name="ops", sha256=token_digest(OPS), roles="[viewer]", namespaces="[[x]]"),
            "namespaces must be a list of non-empty strings",
        ),
        (
            entry(name="ops", sha256=token_digest(OPS), roles="[viewer]", capabilities=3),
            "capabilities must be a list of non-empty strings",
        ),
        (
            entry(name="ops", sha256=token_digest(OPS), roles="[viewer]", expires="'soon'"),
            "expires 'soon' is not an ISO date or time",
        ),
        (
            entry(name="ops", sha256=token_digest(OPS), roles="[viewer]", expires="2027"),
            "expires must be a date or an ISO time",
        ),
        (
            entry(name="ops", sha256=token_digest(OPS), roles="[viewer]", expires="[2027]"),
            "expires must be a date or an ISO time",
        ),
    ],
)
def test_a_bad_entry_is_refused_naming_the_file_and_its_index(
    tmp_path: Path, item: str, says: str
) -> None:
    path = write(tmp_path, "tokens:\n" + GOOD + GOOD2 + item)
    message = refused(path)
    assert f"{path}: tokens[2]" in message
    assert says in message


def test_a_bad_entry_after_its_name_is_known_is_named_too(tmp_path: Path) -> None:
    path = write(tmp_path, "tokens:\n" + entry(name="ops", sha256="abc", roles="[viewer]"))
    assert "tokens[0] (ops): sha256 must be 64 hex digits" in refused(path)


@pytest.mark.parametrize(
    ("credential", "first", "second"),
    [
        ("sha256", token_digest(OPS), token_digest(OPS)),
        ("sha256", token_digest(OPS), token_digest(OPS).upper()),  # same digest, other case
        ("spiffe", "spiffe://mesh/a", "spiffe://mesh/a"),
        ("spiffe", "spiffe://mesh/a", "' spiffe://mesh/a '"),
        ("common_name", "build-01", "build-01"),
    ],
)
def test_a_credential_shared_by_two_entries_is_refused(
    tmp_path: Path, credential: str, first: str, second: str
) -> None:
    path = write(
        tmp_path,
        "tokens:\n"
        + entry(name="alice", roles="[viewer]", **{credential: first})
        + GOOD
        + entry(name="bob", roles="[admin]", **{credential: second}),
    )
    message = refused(path)
    assert "tokens[2]" in message
    assert f"the same {credential} as 'alice'" in message


def test_the_same_value_as_different_credentials_is_not_a_clash(tmp_path: Path) -> None:
    """A SPIFFE ID of one entry and the common name of another are different spaces."""
    path = write(
        tmp_path,
        "tokens:\n"
        + entry(name="a", spiffe="box", roles="[agent]")
        + entry(name="b", common_name="box", roles="[agent]"),
    )
    table = parse_tokens(path)
    assert table.by_spiffe["box"].principal.name == "a"
    assert table.by_common_name["box"].principal.name == "b"
