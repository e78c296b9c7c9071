"""Crontab expressions as operators write them, turned into APScheduler triggers.

Five fields (minute hour day month weekday) as in crontab(5), or six with seconds first (for
tests and quick checks). Weekday numbers mean what they mean in crontab, 0 or 7 = Sunday:
APScheduler's own numbering starts at Monday, so numbers are turned into names first (a
``1`` that would silently become Tuesday is the classic mistake).
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ConfigError

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMERIC = re.compile(r"^(\*|[0-7](?:-[0-7])?)(?:/([1-9]))?$")


def _weekdays(field: str) -> str:
    """Crontab weekday numbers (and ``*/n`` steps, which count from Sunday) as names."""
    out = []
    for part in field.split(","):
        match = _NUMERIC.match(part)
        if match is None or match.group(0) == "*":
            out.append(part)  # names ("mon-fri") mean the same to both
            continue
        span, step = match.group(1), int(match.group(2) or 1)
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first, last = (int(x) for x in span.split("-"))
        else:
            first = last = int(span)
            if step > 1:
                last = 6
        days = [_DAYS[d] for d in range(first, last + 1, step)]
        out.extend(dict.fromkeys(days))
    return ",".join(dict.fromkeys(out))


def shape_error(value: str) -> str | None:
    if len(value.split()) not in (5, 6):
        return (
            "expected a crontab expression of five fields (minute hour day month"
            " weekday), such as '0 8 * * mon', or six with seconds first"
        )
    return None


def trigger(value: str, timezone: str) -> Any:
    """The CronTrigger for ``value``, or ConfigError saying what is wrong (without the key:
    the caller names it)."""
    from apscheduler.triggers.cron import CronTrigger

    problem = shape_error(value)
    if problem:
        raise ConfigError(problem)
    fields = value.split()
    second = fields.pop(0) if len(fields) == 6 else "0"
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_weekdays(weekday),
            timezone=timezone,
        )
    except ValueError as exc:  # APScheduler's words for a field it cannot read
        raise ConfigError(str(exc)) from exc
