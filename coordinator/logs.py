"""Structured logs: the coordinator's two line formats and the ids bound to a context.

``--log-format text`` (the default, for people) writes::

    2026-12-02 18:01:02,345 INFO coordinator.engine.runtime: step started [execution=e-42 step=fetch]

that is ``%(asctime)s %(levelname)s %(name)s: %(message)s`` (local time), then the ids
that apply as `` [execution=... step=... task=... agent=... namespace=...]`` (only the
known ones, in that order; nothing when none is known), then any traceback on the lines
below.

``--log-format json`` (for machines) writes one JSON object per line::

    {"time": "2026-12-02T18:01:02.345Z", "level": "info", "logger": "coordinator.engine.runtime", "message": "step started", "execution_id": "e-42", "step_id": "fetch"}

The fields, in this order:

- ``time``: when the record was made, RFC 3339 in UTC with milliseconds.
- ``level``: ``debug``, ``info``, ``warning``, ``error`` or ``critical``.
- ``logger``: the logger's name.
- ``message``: the message with its arguments filled in.
- ``execution_id``, ``step_id``, ``task_id``, ``agent_id``, ``namespace``: each when known,
  from ``extra={...}`` on the call or else from ``bind`` (an explicit ``None`` in ``extra``
  hides a bound id).
- any other ``extra={...}`` field, as given when it is JSON-serializable, as its ``str()``
  otherwise (one named like another field here is dropped; LogRecord's own attributes
  never appear).
- ``error``: ``{"type": ..., "message": ...}`` of the exception logged (``exc_info``);
  ``type`` is the class's qualified name, with its module unless it is a builtin.
- ``stack``: the traceback text of that exception, and/or the ``stack_info`` text.

Neither formatter raises on odd records (a non-``str`` message, arguments that do not fit
it, objects whose ``str()`` fails): what cannot be rendered is rendered as best it can.

The ids are read from ``bind`` when a record is *formatted*; the handler ``configure``
installs formats in the logging call itself, so that is the caller's context.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import TextIO

__all__ = [
    "IDS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JsonFormatter",
    "TextFormatter",
    "bind",
    "bound",
    "configure",
]

#: The values ``configure`` takes for ``format``.
LOG_FORMATS = ("text", "json")
#: The values ``configure`` takes for ``level`` (case-insensitive).
LOG_LEVELS: Mapping[str, int] = MappingProxyType(
    {
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warn": logging.WARNING,
        "warning": logging.WARNING,
        "error": logging.ERROR,
    }
)
#: The ids a line can carry, in the order they are written; the only names ``bind`` takes.
IDS = ("execution_id", "step_id", "task_id", "agent_id", "namespace")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_EMPTY: Mapping[str, str] = MappingProxyType({})
_BOUND: ContextVar[Mapping[str, str]] = ContextVar("agentmesh_log_ids", default=_EMPTY)

#: Everything a LogRecord carries of its own, so never taken for an ``extra`` field.
_RECORD_ATTRS = frozenset(
    [*logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__, "message", "asctime"]
) | {"taskName"}  # taskName: set from Python 3.12 on


# -- binding ------------------------------------------------------------------------------


def bind(**ids: str) -> contextlib.AbstractContextManager[None]:
    """Bind ``ids`` for the code inside ``with bind(...)``: every line it logs carries them.

    Binds nest (the inner one adds to or overrides the outer) and the previous ids are back
    on exit. The ids live in a ``contextvars.ContextVar``, so they hold across ``await``,
    and an asyncio task gets a copy of those bound where it was created: what a task binds
    is never seen by another. Enter and exit in the same context (not across tasks).

    Raises ``TypeError`` (at the call, before ``with``) for a name not in ``IDS`` or a value
    that is not a ``str``.
    """
    unknown = sorted(set(ids) - set(IDS))
    if unknown:
        raise TypeError(f"bind() takes only {', '.join(IDS)}; not {', '.join(unknown)}")
    for name, value in ids.items():
        if not isinstance(value, str):
            raise TypeError(f"bind(): {name} must be a str, not {type(value).__name__}")
    return _binding(ids)


@contextlib.contextmanager
def _binding(ids: Mapping[str, str]) -> Iterator[None]:
    token = _BOUND.set(MappingProxyType({**_BOUND.get(), **ids}))
    try:
        yield
    finally:
        _BOUND.reset(token)


def bound() -> Mapping[str, str]:
    """The ids bound in the current context (read-only; empty when none are)."""
    return _BOUND.get()


def _ids_of(record: logging.LogRecord) -> dict[str, object]:
    """The record's ids, in ``IDS`` order: its own ``extra`` first, then the bound ones."""
    ids = bound()
    out: dict[str, object] = {}
    for name in IDS:
        value = record.__dict__[name] if name in record.__dict__ else ids.get(name)
        if value is not None:
            out[name] = value
    return out


# -- rendering helpers ----------------------------------------------------------------------


def _text(value: object) -> str:
    """``str(value)``, falling back to ``repr`` and then to the bare object repr."""
    try:
        return str(value)
    except Exception:
        pass
    try:
        return repr(value)
    except Exception:
        return object.__repr__(value)


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # arguments that do not fit the message: show both
        return f"{_text(record.msg)} (unformatted args: {_text(record.args)})"


def _jsonable(value: object) -> object:
    try:
        json.dumps(value, allow_nan=False)
    except Exception:  # TypeError, ValueError (NaN, cycles), RecursionError, a raising hook
        return _text(value)
    return value


def _type_name(kind: type) -> str:
    module = getattr(kind, "__module__", None)
    name = getattr(kind, "__qualname__", None) or _text(kind)
    return name if module in (None, "builtins") else f"{module}.{name}"


# -- formatters ---------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per record, no newlines inside; the fields are in the module doc."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": self.formatTime(record),
            "level": _text(record.levelname).lower(),
            "logger": _text(record.name),
            "message": _message(record),
        }
        line.update((k, _jsonable(v)) for k, v in _ids_of(record).items())
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in IDS and key not in line:
                line[key] = _jsonable(value)
        kind, exc, _ = record.exc_info or (None, None, None)
        if kind is not None and record.exc_info:
            line["error"] = {"type": _type_name(kind), "message": _text(exc)}
            try:
                if not record.exc_text:
                    record.exc_text = self.formatException(record.exc_info)
            except Exception:
                record.exc_text = f"{_type_name(kind)}: {_text(exc)}"
        stack = "\n".join(s for s in (record.exc_text, record.stack_info) if s)
        if stack:
            line["stack"] = stack
        return json.dumps(line, allow_nan=False, skipkeys=True, default=_text)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """RFC 3339 in UTC with milliseconds, e.g. ``2026-12-02T18:01:02.345Z``
        (``datefmt`` is ignored: the field's format is part of the contract)."""
        # Round to microseconds first: created is a float, and 0.345 must not become 344.
        seconds, micros = divmod(round(record.created * 1_000_000), 1_000_000)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        return f"{stamp}.{micros // 1000:03d}Z"


class TextFormatter(logging.Formatter):
    """``%(asctime)s %(levelname)s %(name)s: %(message)s`` plus the known ids as
    `` [execution=... task=...]`` (the traceback, if any, follows on the next lines).

    ``fmt`` and ``datefmt`` are ``logging.Formatter``'s; the ids are appended to ``fmt``.
    """

    def __init__(self, fmt: str | None = TEXT_FORMAT, datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)

    def format(self, record: logging.LogRecord) -> str:
        # Render a copy whose message is already safe: the base class would call
        # getMessage() and raise on arguments that do not fit.
        safe = logging.makeLogRecord(record.__dict__)
        safe.msg, safe.args = _message(record), None
        text = super().format(safe)
        record.exc_text = safe.exc_text  # the traceback cache, as the base class keeps it
        return text

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The plain line, with the ids that apply appended as ``[execution=...]``."""
        ids = _ids_of(record)
        suffix = " ".join(f"{k.removesuffix('_id')}={_text(v)}" for k, v in ids.items())
        return super().formatMessage(record) + (f" [{suffix}]" if suffix else "")


# -- configuration ------------------------------------------------------------------------


class _Handler(logging.StreamHandler[TextIO]):
    """The handler ``configure`` installs: its type is how the next call finds it."""


def configure(level: str, format: str = "text", stream: TextIO | None = None) -> None:
    """Send the root logger's records at ``level`` and above to ``stream`` (default
    ``sys.stderr``, looked up at the call) in ``format`` (``LOG_FORMATS``).

    Replaces the handler an earlier ``configure`` installed, so calling it again changes
    the level, format or stream without duplicating lines. Handlers installed by anyone
    else (``logging.basicConfig``, a test harness) are left on the root logger and keep
    writing in their own format: do not combine ``configure`` with ``basicConfig``.

    ``level`` is one of ``LOG_LEVELS`` (``debug``, ``info``, ``warn``, ``warning``,
    ``error``; any case). Raises ``ValueError`` for another level or format, before
    changing anything.
    """
    number = LOG_LEVELS.get(level.lower()) if isinstance(level, str) else None
    if number is None:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LOG_LEVELS)}")
    if format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {format!r}: use one of {', '.join(LOG_FORMATS)}")
    handler = _Handler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()  # flushes; a StreamHandler never closes its stream
    root.addHandler(handler)
    root.setLevel(number)
