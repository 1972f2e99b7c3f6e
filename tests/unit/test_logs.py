"""Structured logs: every JSON line parsed back, the text suffix, binding (nesting,
restoration, per asyncio task), odd records that must not raise, and ``configure``."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from coordinator import logs


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class StepFailed(Exception):
    pass


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


def _logger(stream: io.StringIO, formatter: logging.Formatter) -> Iterator[logging.Logger]:
    log = logging.getLogger(f"test.logs.{type(formatter).__name__}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        yield log
    finally:
        log.removeHandler(handler)
        log.propagate = True


@pytest.fixture
def jlog(stream: io.StringIO) -> Iterator[logging.Logger]:
    yield from _logger(stream, logs.JsonFormatter())


@pytest.fixture
def tlog(stream: io.StringIO) -> Iterator[logging.Logger]:
    yield from _logger(stream, logs.TextFormatter())


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, put back as it was (handlers and level) after the test."""
    log = logging.getLogger()
    handlers, level = list(log.handlers), log.level
    try:
        yield log
    finally:
        for h in log.handlers[:]:
            if h not in handlers:
                log.removeHandler(h)
        log.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, each parsed as one JSON object."""
    out = []
    for line in stream.getvalue().splitlines():
        value = json.loads(line)
        assert isinstance(value, dict)
        out.append(value)
    return out


def record(msg: object, *args: object, **attrs: object) -> logging.LogRecord:
    rec = logging.LogRecord("coordinator.x", logging.INFO, __file__, 1, msg, args or None, None)
    rec.__dict__.update(attrs)
    return rec


# -- JSON ---------------------------------------------------------------------------------


def test_a_json_line_has_the_core_fields(jlog: logging.Logger, stream: io.StringIO) -> None:
    jlog.info("step %s started after %d ms", "fetch", 12)
    [line] = lines(stream)
    assert list(line) == ["time", "level", "logger", "message"]
    assert line["level"] == "info"
    assert line["logger"] == jlog.name
    assert line["message"] == "step fetch started after 12 ms"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])


def test_time_is_rfc3339_utc_with_milliseconds() -> None:
    created = datetime(2026, 12, 2, 18, 1, 2, 345000, tzinfo=UTC).timestamp()
    line = json.loads(logs.JsonFormatter().format(record("m", created=created)))
    assert line["time"] == "2026-12-02T18:01:02.345Z"
    assert datetime.fromisoformat(line["time"]).timestamp() == pytest.approx(created)
    late = json.loads(logs.JsonFormatter().format(record("m", created=created + 0.6549)))
    assert late["time"] == "2026-12-02T18:01:02.999Z"


def test_levels_are_lowercase(jlog: logging.Logger, stream: io.StringIO) -> None:
    jlog.debug("d")
    jlog.info("i")
    jlog.warning("w")
    jlog.error("e")
    jlog.critical("c")
    assert [line["level"] for line in lines(stream)] == [
        "debug",
        "info",
        "warning",
        "error",
        "critical",
    ]


def test_ids_and_other_extras_are_fields(jlog: logging.Logger, stream: io.StringIO) -> None:
    jlog.info(
        "dispatched",
        extra={"agent_id": "a-1", "task_id": "t-7", "attempt": 2, "labels": {"gpu": True}},
    )
    [line] = lines(stream)
    assert line["task_id"] == "t-7" and line["agent_id"] == "a-1"
    assert line["attempt"] == 2 and line["labels"] == {"gpu": True}
    # The ids come right after the core fields, in their fixed order.
    assert list(line)[4:6] == ["task_id", "agent_id"]
    for internal in ("args", "msg", "pathname", "lineno", "levelno", "exc_info", "created"):
        assert internal not in line


def test_unserializable_extras_are_stringified(jlog: logging.Logger, stream: io.StringIO) -> None:
    class Thing:
        def __str__(self) -> str:
            return "a thing"

    cycle: list[object] = []
    cycle.append(cycle)
    jlog.info(
        "odd",
        extra={"thing": Thing(), "nan": float("nan"), "cycle": cycle, "bad": Unprintable()},
    )
    [line] = lines(stream)
    assert line["thing"] == "a thing"
    assert line["nan"] == "nan"
    assert line["cycle"] == "[[...]]"
    assert line["bad"].startswith("<") and "Unprintable" in line["bad"]


def test_an_extra_named_like_a_core_field_does_not_replace_it(
    jlog: logging.Logger, stream: io.StringIO
) -> None:
    jlog.warning("real", extra={"level": "fake", "time": "fake", "logger": "fake"})
    [line] = lines(stream)
    assert (line["level"], line["logger"]) == ("warning", jlog.name)
    assert line["time"] != "fake"


def test_odd_messages_never_raise() -> None:
    fmt = logs.JsonFormatter()
    odd = [
        record({"a": 1}),
        record(42),
        record(Unprintable()),
        record("%d items", "many"),
        record("%s and %s", "one"),
        record("%s", Unprintable()),
        record("m", exc_info=(ValueError, Unprintable(), None)),
        record("m", exc_info=(None, None, None)),
    ]
    messages = [json.loads(fmt.format(r))["message"] for r in odd]
    assert messages[:2] == ["{'a': 1}", "42"]
    assert "Unprintable" in messages[2]
    assert messages[3] == "%d items (unformatted args: ('many',))"
    assert messages[4].startswith("%s and %s (unformatted args:")
    text = logs.TextFormatter()
    for r in odd:
        assert text.format(r)


def test_exceptions_become_error_and_stack(jlog: logging.Logger, stream: io.StringIO) -> None:
    try:
        raise StepFailed("fetch timed out")
    except StepFailed:
        jlog.exception("step failed")
    try:
        raise KeyError("k")
    except KeyError as e:
        jlog.error("lookup", exc_info=e)
    jlog.error("no exception", exc_info=True)
    jlog.info("here", stack_info=True)
    failed, lookup, none, here = lines(stream)
    assert failed["message"] == "step failed"
    assert failed["error"] == {"type": f"{__name__}.StepFailed", "message": "fetch timed out"}
    assert failed["stack"].startswith("Traceback (most recent call last):")
    assert "raise StepFailed" in failed["stack"]
    assert failed["stack"].endswith("StepFailed: fetch timed out")
    assert lookup["error"] == {"type": "KeyError", "message": "'k'"}
    assert "error" not in none and "stack" not in none
    assert "error" not in here and here["stack"].startswith("Stack (most recent call last):")


# -- binding ------------------------------------------------------------------------------


def test_binds_nest_and_are_restored(jlog: logging.Logger, stream: io.StringIO) -> None:
    assert logs.bound() == {}
    with logs.bind(execution_id="e-1", namespace="acme"):
        jlog.info("outer")
        with logs.bind(step_id="s-1", execution_id="e-2"):
            assert logs.bound() == {"execution_id": "e-2", "namespace": "acme", "step_id": "s-1"}
            jlog.info("inner")
        jlog.info("outer again")
    jlog.info("outside")
    outer, inner, again, outside = lines(stream)
    assert (outer["execution_id"], outer["namespace"]) == ("e-1", "acme")
    assert "step_id" not in outer
    assert (inner["execution_id"], inner["step_id"], inner["namespace"]) == ("e-2", "s-1", "acme")
    assert list(inner)[4:] == ["execution_id", "step_id", "namespace"]
    assert again == {**outer, "message": "outer again", "time": again["time"]}
    assert not set(logs.IDS) & set(outside)
    assert logs.bound() == {}


def test_a_bind_is_restored_when_its_block_raises() -> None:
    with pytest.raises(StepFailed), logs.bind(task_id="t-1"):
        raise StepFailed
    assert logs.bound() == {}


def test_bind_takes_only_the_ids() -> None:
    with pytest.raises(TypeError, match="execution_id"):
        logs.bind(run_id="r-1")
    with pytest.raises(TypeError, match="task_id"):
        logs.bind(task_id=7)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        logs.bound()["task_id"] = "t"  # type: ignore[index]
    assert logs.bound() == {}


def test_an_explicit_extra_wins_over_a_bound_id(jlog: logging.Logger, stream: io.StringIO) -> None:
    with logs.bind(execution_id="e-1", task_id="t-1"):
        jlog.info("other task", extra={"task_id": "t-2"})
        jlog.info("no task", extra={"task_id": None})
    other, none = lines(stream)
    assert (other["execution_id"], other["task_id"]) == ("e-1", "t-2")
    assert none["execution_id"] == "e-1" and "task_id" not in none


async def test_binds_are_per_asyncio_task(jlog: logging.Logger, stream: io.StringIO) -> None:
    a_bound, b_logged, a_logged = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def a() -> None:
        with logs.bind(execution_id="e-a"):
            a_bound.set()
            await b_logged.wait()  # b binds and logs while a is bound
            jlog.info("a")  # while b is still bound
            a_logged.set()
        assert logs.bound() == {"namespace": "acme"}

    async def b() -> None:
        await a_bound.wait()
        with logs.bind(execution_id="e-b", step_id="s-b"):
            jlog.info("b")
            b_logged.set()
            await a_logged.wait()
        assert logs.bound() == {"namespace": "acme"}

    with logs.bind(namespace="acme"):
        # A task starts with a copy of what was bound where it was created.
        await asyncio.gather(a(), b())
    by_message = {line["message"]: line for line in lines(stream)}
    assert by_message["a"]["execution_id"] == "e-a" and "step_id" not in by_message["a"]
    assert (by_message["b"]["execution_id"], by_message["b"]["step_id"]) == ("e-b", "s-b")
    assert by_message["a"]["namespace"] == by_message["b"]["namespace"] == "acme"
    assert logs.bound() == {}


# -- text ---------------------------------------------------------------------------------


def test_text_has_no_suffix_without_ids(tlog: logging.Logger, stream: io.StringIO) -> None:
    tlog.info("hello %s", "there")
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} INFO {tlog.name}: hello there\n",
        stream.getvalue(),
    )


def test_text_appends_the_known_ids(tlog: logging.Logger, stream: io.StringIO) -> None:
    with logs.bind(task_id="t-7", execution_id="e-42"):
        tlog.warning("slow", extra={"agent_id": "a-1"})
        try:
            raise StepFailed("late")
        except StepFailed:
            tlog.exception("failed")
    slow, failed, *trace = stream.getvalue().splitlines()
    assert slow.endswith(f" WARNING {tlog.name}: slow [execution=e-42 task=t-7 agent=a-1]")
    assert failed.endswith(f" ERROR {tlog.name}: failed [execution=e-42 task=t-7]")
    assert trace[0] == "Traceback (most recent call last):"
    assert trace[-1] == "tests.unit.test_logs.StepFailed: late"


# -- configure ----------------------------------------------------------------------------


def test_configure_json(root: logging.Logger, stream: io.StringIO) -> None:
    logs.configure("debug", "json", stream)
    logging.getLogger("coordinator.mesh").debug("routed", extra={"task_id": "t-1"})
    [line] = lines(stream)
    assert (line["level"], line["logger"], line["task_id"]) == ("debug", "coordinator.mesh", "t-1")


def test_configure_twice_writes_each_record_once(root: logging.Logger) -> None:
    first, second = io.StringIO(), io.StringIO()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    logs.configure("info", "text", first)
    logs.configure("warn", "json", second)
    log = logging.getLogger("coordinator.engine")
    log.info("dropped")
    log.warning("kept")
    assert first.getvalue() == ""
    assert [line["message"] for line in lines(second)] == ["kept"]
    assert root.level == logging.WARNING
    assert foreign in root.handlers  # someone else's handler is left alone


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("debug", logging.DEBUG),
        ("info", logging.INFO),
        ("warn", logging.WARNING),
        ("warning", logging.WARNING),
        ("ERROR", logging.ERROR),
    ],
)
def test_configure_levels(root: logging.Logger, level: str, expected: int) -> None:
    logs.configure(level, stream=io.StringIO())
    assert root.level == expected


def test_configure_refuses_unknown_levels_and_formats(root: logging.Logger) -> None:
    handlers, level = list(root.handlers), root.level
    with pytest.raises(ValueError, match=r"unknown log level 'loud'.*debug, info"):
        logs.configure("loud", stream=io.StringIO())
    with pytest.raises(ValueError, match=r"unknown log format 'xml'.*text, json"):
        logs.configure("info", "xml", io.StringIO())
    assert (root.handlers, root.level) == (handlers, level)  # nothing changed
    assert logs.LOG_FORMATS == ("text", "json")
