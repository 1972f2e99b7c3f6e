"""The audit log (``coordinator.auth.audit``): one JSON line per record in the
``audit_log`` file, the ``agentmesh.audit`` logger, the listeners, and the refusals of a
path that cannot be appended to."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coordinator.auth import AuditLog, AuditRecord
from coordinator.errors import ConfigError

STOP = "/agentmesh.v1.ExecutionService/StopWorkflow"


def record(**overrides: object) -> AuditRecord:
    fields: dict[str, object] = {
        "principal": "ops",
        "via": "token",
        "roles": ("operator", "viewer"),
        "method": STOP,
        "namespace": "default",
        "peer": "ipv4:127.0.0.1:53412",
        "outcome": "OK",
    }
    fields.update(overrides)
    return AuditRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "audit.jsonl"


@pytest.fixture
def audit(audit_path: Path) -> Iterator[AuditLog]:
    log = AuditLog(str(audit_path))
    try:
        yield log
    finally:
        log.close()


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# ------------------------------------------------------------------ the record


def test_as_json_has_time_first_and_every_field() -> None:
    line = record(time="2026-12-02T07:10:00.123+00:00").as_json()
    assert "\n" not in line
    data = json.loads(line)
    assert next(iter(data)) == "time"
    assert data == {
        "time": "2026-12-02T07:10:00.123+00:00",
        "principal": "ops",
        "via": "token",
        "roles": ["operator", "viewer"],
        "method": STOP,
        "namespace": "default",
        "peer": "ipv4:127.0.0.1:53412",
        "outcome": "OK",
    }


def test_detail_is_there_when_there_is_one() -> None:
    data = json.loads(record(outcome="PERMISSION_DENIED", detail="needs executions.stop").as_json())
    assert data["detail"] == "needs executions.stop"
    assert data["outcome"] == "PERMISSION_DENIED"
    assert "detail" not in json.loads(record(detail="").as_json())


def test_the_default_time_is_now_in_utc_with_milliseconds() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)  # the stamp is truncated
    stamp = record().time
    after = datetime.now(UTC)
    moment = datetime.fromisoformat(stamp)
    assert moment.utcoffset() == timedelta(0)
    assert before <= moment <= after
    assert stamp.endswith("+00:00")
    assert len(stamp.removesuffix("+00:00").split(".")[1]) == 3  # milliseconds


def test_unicode_and_quotes_survive() -> None:
    line = record(principal='bob "the builder"', detail="caf\u00e9\nline").as_json()
    assert "\n" not in line
    data = json.loads(line)
    assert data["principal"] == 'bob "the builder"'
    assert data["detail"] == "caf\u00e9\nline"


# ------------------------------------------------------------------ the file


def test_one_line_per_record(audit: AuditLog, audit_path: Path) -> None:
    first = record(time="2026-01-01T00:00:00.000+00:00")
    second = record(
        principal="ci",
        roles=(),
        outcome="PERMISSION_DENIED",
        detail="ci (roles: none) may not",
        time="2026-01-01T00:00:01.000+00:00",
    )
    audit.record(first)
    audit.record(second)
    written = lines(audit_path)  # line-buffered: on disk without a close
    assert written == [first.as_json(), second.as_json()]
    data = [json.loads(line) for line in written]
    assert [next(iter(d)) for d in data] == ["time", "time"]
    assert data[0]["principal"] == "ops"
    assert data[0]["method"] == STOP
    assert data[0]["outcome"] == "OK"
    assert "detail" not in data[0]
    assert data[1]["roles"] == []
    assert data[1]["detail"] == "ci (roles: none) may not"


def test_the_directory_is_made(audit_path: Path, audit: AuditLog) -> None:
    assert audit_path.parent.is_dir()
    assert audit_path.exists()
    assert audit.path == str(audit_path)


def test_records_are_appended_to_an_existing_file(audit_path: Path) -> None:
    audit_path.parent.mkdir(parents=True)
    audit_path.write_text('{"old": true}\n', encoding="utf-8")
    audit = AuditLog(str(audit_path))
    try:
        audit.record(record())
    finally:
        audit.close()
    written = lines(audit_path)
    assert written[0] == '{"old": true}'
    assert json.loads(written[1])["principal"] == "ops"


def test_close(audit_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    audit = AuditLog(str(audit_path))
    audit.record(record(principal="before"))
    audit.close()
    audit.close()  # twice is fine
    seen: list[AuditRecord] = []
    audit.subscribe(seen.append)
    with caplog.at_level(logging.INFO, logger="agentmesh.audit"):
        audit.record(record(principal="after"))
    # After close: not in the file, still logged and still heard.
    assert [json.loads(line)["principal"] for line in lines(audit_path)] == ["before"]
    assert [r.principal for r in seen] == ["after"]
    assert any('"principal":"after"' in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("how", ["parent is a file", "path is a directory"])
def test_an_unwritable_path(tmp_path: Path, how: str) -> None:
    if how == "parent is a file":
        (tmp_path / "plain").write_text("x")
        path = tmp_path / "plain" / "audit.jsonl"
    else:
        path = tmp_path / "a-directory"
        path.mkdir()
    with pytest.raises(ConfigError) as e:
        AuditLog(str(path))
    assert f"audit_log: cannot append to {path}" in str(e.value)


# ------------------------------------------------------------------ the logger


def test_without_a_file_records_are_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    audit = AuditLog()
    assert audit.path == ""
    with caplog.at_level(logging.INFO, logger="agentmesh.audit"):
        audit.record(record())
    logged = [r for r in caplog.records if r.name == "agentmesh.audit"]
    assert len(logged) == 1
    assert logged[0].levelno == logging.INFO
    assert json.loads(logged[0].getMessage())["principal"] == "ops"
    audit.close()  # nothing to close


def test_with_a_file_records_are_logged_at_debug(
    audit: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="agentmesh.audit"):
        audit.record(record())
    logged = [r for r in caplog.records if r.name == "agentmesh.audit"]
    assert [r.levelno for r in logged] == [logging.DEBUG]


# ------------------------------------------------------------------ listeners


def test_listeners_get_every_record(audit: AuditLog) -> None:
    first: list[AuditRecord] = []
    second: list[AuditRecord] = []
    audit.subscribe(first.append)
    audit.subscribe(second.append)
    one, two = record(principal="one"), record(principal="two")
    audit.record(one)
    audit.record(two)
    assert first == [one, two]
    assert second == [one, two]
    assert first[0] is one  # the record itself


def test_unsubscribe(audit: AuditLog) -> None:
    seen: list[AuditRecord] = []
    unsubscribe = audit.subscribe(seen.append)
    audit.record(record(principal="one"))
    unsubscribe()
    audit.record(record(principal="two"))
    assert [r.principal for r in seen] == ["one"]


def test_a_failing_listener_does_not_raise_nor_stop_the_others(
    audit: AuditLog, audit_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: AuditRecord) -> None:
        raise RuntimeError("listener bug")

    seen: list[AuditRecord] = []
    audit.subscribe(broken)
    audit.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="agentmesh.audit"):
        audit.record(record())
    assert len(seen) == 1
    assert len(lines(audit_path)) == 1
    failures = [r for r in caplog.records if "audit listener failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], RuntimeError)


def test_a_listener_may_unsubscribe_itself_while_called(audit: AuditLog) -> None:
    seen: list[str] = []
    unsubscribe = None

    def once(r: AuditRecord) -> None:
        seen.append(r.principal)
        assert unsubscribe is not None
        unsubscribe()

    unsubscribe = audit.subscribe(once)
    audit.record(record(principal="one"))
    audit.record(record(principal="two"))
    assert seen == ["one"]
