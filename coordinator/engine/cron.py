"""Cron expressions for schedule triggers: five fields (or six, seconds first), UTC, as
Vixie cron reads them.

``minute hour day-of-month month day-of-week``, or ``second minute hour day-of-month month
day-of-week`` (``*/10 * * * * *``: every ten seconds), each ``*``, a value, a range ``a-b``, a
step ``*/n`` or ``a-b/n``, or a comma-separated list of those; months and weekdays also by
name (``jan``, ``mon``); weekday 0 and 7 are Sunday. When both day fields are restricted a
day matches either (``0 0 1 * mon``: the 1st and every Monday), as cron does. The macros
``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``) and
``@hourly`` stand for their usual expressions. Times are UTC.

Pure: ``next_after`` computes from the time it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from coordinator.errors import InvalidArgument

MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: (name, lowest, highest, names) per field.
_SECONDS: Final = ("second", 0, 59, ())
_FIELDS: Final = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
#: How far ahead ``next_after`` looks before it decides a schedule never fires (Feb 30).
HORIZON_DAYS: Final = 366 * 5


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed expression: the allowed values of each field."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is *
    any_weekday: bool  # day of week is *

    def matches_day(self, t: datetime) -> bool:
        """Whether ``t``'s date is one the schedule runs on."""
        in_month = t.day in self.days
        in_week = (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, t: datetime) -> datetime | None:
        """The first time after ``t`` (aware; compared in UTC) the schedule fires, to the
        second; None when it never does within ``HORIZON_DAYS``."""
        t = t.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        end = t + timedelta(days=HORIZON_DAYS)
        while t < end:
            if t.month not in self.months:
                t = (t.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0)
                t = t.replace(second=0)
            elif not self.matches_day(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0, second=0)
            elif t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0, second=0)
            elif t.minute not in self.minutes:
                t = (t + timedelta(minutes=1)).replace(second=0)
            elif t.second not in self.seconds:
                t += timedelta(seconds=1)
            else:
                return t
        return None

    def between(self, after: datetime, upto: datetime, limit: int) -> list[datetime]:
        """The fire times in ``(after, upto]``, at most ``limit`` (the latest ones)."""
        times: list[datetime] = []
        t = self.next_after(after)
        while t is not None and t <= upto:
            times.append(t)
            if len(times) > limit:
                times.pop(0)
            t = self.next_after(t)
        return times


def parse_cron(expression: str) -> Cron:
    """``expression`` parsed; ``InvalidArgument`` saying which field is wrong, or that it
    never fires."""
    text = MACROS.get(expression.strip().lower(), expression.strip())
    parts = text.split()
    if len(parts) not in (5, 6):
        raise InvalidArgument(
            f"cron {expression[:80]!r}: expected 5 fields (minute hour day-of-month month "
            "day-of-week), 6 with seconds first, or a macro such as @daily"
        )
    seconds = _field(parts.pop(0), *_SECONDS, expression) if len(parts) == 6 else frozenset({0})
    values = [_field(p, *spec, expression) for p, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in values[4])
    cron = Cron(
        expression,
        seconds,
        values[0],
        values[1],
        values[2],
        values[3],
        weekdays,
        any_day=parts[2].startswith("*"),
        any_weekday=parts[4].startswith("*"),
    )
    if cron.next_after(datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise InvalidArgument(f"cron {expression[:80]!r} never fires")
    return cron


def _field(
    text: str, name: str, low: int, high: int, names: tuple[str, ...], expression: str
) -> frozenset[int]:
    def bad(why: str) -> InvalidArgument:
        return InvalidArgument(f"cron {expression[:80]!r}: {name} {text[:40]!r}: {why}")

    def number(s: str) -> int:
        lowered = s.lower()
        if lowered in names:
            return names.index(lowered) + (1 if names is _MONTHS else 0)
        if not s.isdigit():
            raise bad(f"{s[:20]!r} is not a number{' or a name' if names else ''}")
        n = int(s)
        if not low <= n <= high:
            raise bad(f"{n} is outside {low}-{high}")
        return n

    out: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise bad(f"step {step_text[:20]!r} is not a positive number")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = number(a), number(b)
            if first > last:
                raise bad(f"range {span!r} runs backwards")
        else:
            first = number(span)
            last = high if step_text else first
        out.update(range(first, last + 1, step))
    return frozenset(out)
