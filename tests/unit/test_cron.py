"""Cron expressions of schedule triggers: fields, steps, names, macros, seconds, the
day-of-month/day-of-week rule, what never fires, and missed runs between two times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coordinator.engine.cron import parse_cron
from coordinator.errors import InvalidArgument

T = datetime(2026, 12, 3, 13, 50, 7, tzinfo=UTC)  # a Thursday


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "first", "second"),
    [
        ("* * * * *", at(2026, 12, 3, 13, 51), at(2026, 12, 3, 13, 52)),
        ("*/10 * * * * *", at(2026, 12, 3, 13, 50, 10), at(2026, 12, 3, 13, 50, 20)),
        ("0 9 * * mon-fri", at(2026, 12, 4, 9), at(2026, 12, 7, 9)),
        ("0 0 1 * mon", at(2026, 12, 7), at(2026, 12, 14)),  # either day field matches
        ("15,45 */6 * * *", at(2026, 12, 3, 18, 15), at(2026, 12, 3, 18, 45)),
        ("@yearly", at(2027, 1, 1), at(2028, 1, 1)),
        ("@hourly", at(2026, 12, 3, 14), at(2026, 12, 3, 15)),
        ("30 2 29 feb *", at(2028, 2, 29, 2, 30), at(2032, 2, 29, 2, 30)),
        ("0 0 * * 7", at(2026, 12, 6), at(2026, 12, 13)),  # 7 is Sunday too
    ],
)
def test_next_fire_times(expression: str, first: datetime, second: datetime) -> None:
    cron = parse_cron(expression)
    assert cron.next_after(T) == first
    assert cron.next_after(first) == second


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("0 0 30 2 *", "never fires"),
        ("60 * * * *", "minute '60': 60 is outside 0-59"),
        ("* * * *", "expected 5 fields"),
        ("*/0 * * * *", "step '0' is not a positive number"),
        ("5-1 * * * *", "range '5-1' runs backwards"),
        ("x * * * *", "'x' is not a number"),
        ("* * * smarch *", "'smarch' is not a number or a name"),
    ],
)
def test_bad_expressions_say_which_field(expression: str, error: str) -> None:
    with pytest.raises(InvalidArgument, match=error):
        parse_cron(expression)


def test_missed_runs_between_two_times_keep_the_latest() -> None:
    cron = parse_cron("0 * * * *")
    missed = cron.between(T, T + timedelta(hours=5), limit=3)
    assert missed == [at(2026, 12, 3, 16), at(2026, 12, 3, 17), at(2026, 12, 3, 18)]
    assert cron.between(T, T + timedelta(minutes=5), limit=3) == []
