"""Crontab expressions as operators write them, turned into APScheduler triggers.

Five fields (minute hour day month weekday) as in crontab(5), or six with seconds first (for
tests and quick checks). Weekday numbers mean what they mean in crontab, 0 or 7 = Sunday:
APScheduler's own numbering starts at Monday, so numbers are turned into names first (a
``1`` that would silently become Tuesday is the classic mistake).
"""

from __future__ import annotations

import re
from typing import Any

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMBER = re.compile(r"(?<![/\d])([0-7])(?!\d)")


def _weekdays(field: str) -> str:
    return _NUMBER.sub(lambda m: _DAYS[int(m.group(1))], field)


def shape_error(value: str) -> str | None:
    if len(value.split()) not in (5, 6):
        return ("expected a crontab expression of five fields (minute hour day month"
                " weekday), such as '0 8 * * mon', or six with seconds first")
    return None


def trigger(value: str, timezone: str) -> Any:
    """The CronTrigger for ``value``, or ValueError saying what is wrong."""
    from apscheduler.triggers.cron import CronTrigger

    problem = shape_error(value)
    if problem:
        raise ValueError(problem)
    fields = value.split()
    second = fields.pop(0) if len(fields) == 6 else "0"
    minute, hour, day, month, weekday = fields
    return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                       day_of_week=_weekdays(weekday), timezone=timezone)
