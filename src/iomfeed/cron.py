"""Crontab expressions as operators write them, turned into APScheduler triggers.

Five fields (minute hour day month weekday) as in crontab(5), or six with seconds first (for
tests and quick checks). Weekday numbers mean what they mean in crontab, 0 or 7 = Sunday:
APScheduler's own numbering starts at Monday, so numbers are turned into names first (a
``1`` that would silently become Tuesday is the classic mistake).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as dtime
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


# --------------------------------------------------------------------------- quick next time

#: A field the quick path reads: numbers, ranges, steps and lists of them (no names).
_PLAIN_PART = re.compile(r"^(\*|\d+(?:-\d+)?)(?:/(\d+))?$")
#: The quick path looks this far ahead at most; further, APScheduler answers.
_QUICK_SPAN = timedelta(days=2)
_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12))  # second minute hour day month


def _values(field: str, low: int, high: int) -> tuple[int, ...] | None:
    """The values of a plain numeric field, or None when it is not one the quick path
    reads exactly as APScheduler does (names, ``L``, ``#``, a value out of range...)."""
    out: set[int] = set()
    for part in field.split(","):
        match = _PLAIN_PART.match(part)
        if match is None:
            return None
        span, step = match.group(1), int(match.group(2) or 1)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (int(x) for x in span.split("-"))
        else:
            first = last = int(span)
            if match.group(2):
                last = high  # "5/15": from 5 on, as APScheduler reads it
        if step < 1 or not low <= first <= last <= high:
            return None
        if match.group(2) and step > min(last - first, high - low):
            return None  # a step past its range: APScheduler refuses it, and says why
        out.update(range(first, last + 1, step))
    return tuple(sorted(out))


def quick_next(value: str, timezone: str, after: datetime) -> datetime | None:
    """The first time at or after ``after`` (rounded up to the second) that ``value`` fires,
    as APScheduler's CronTrigger gives it, worked out without loading APScheduler (about
    20 ms), for the usual expressions: numeric fields with any weekday (``*``), an answer
    within two days that is a plain local time (not in a DST gap or fold) at the same UTC
    offset as ``after``. None otherwise: the caller asks APScheduler (a test compares the
    two over many expressions and times, DST changes included)."""
    from zoneinfo import ZoneInfo

    fields = value.split()
    if len(fields) == 5:
        fields.insert(0, "0")
    if len(fields) != 6 or fields[5] != "*":
        return None
    sets = [_values(f, lo, hi) for f, (lo, hi) in zip(fields[:5], _RANGES, strict=True)]
    if any(s is None for s in sets):
        return None
    seconds, minutes, hours, days, months = (s or () for s in sets)
    try:
        tz = ZoneInfo(timezone)
    except (KeyError, ValueError, OSError):  # not found (a KeyError), or a bad key
        return None
    start = after.astimezone(tz)
    if start.microsecond:
        start = start.replace(microsecond=0) + timedelta(seconds=1)
    wall = start.replace(tzinfo=None)
    day = wall.date()
    while datetime.combine(day, dtime()) <= wall + _QUICK_SPAN:
        if day.month in months and day.day in days:
            found = _first_on(day, wall, hours, minutes, seconds)
            if found is not None:
                return _plain(found, tz, start)
        day += timedelta(days=1)
    return None


def _first_on(
    day: date,
    wall: datetime,
    hours: tuple[int, ...],
    minutes: tuple[int, ...],
    seconds: tuple[int, ...],
) -> datetime | None:
    """The first time of ``day`` made of the given values that is not before ``wall``."""
    for hour in hours:
        for minute in minutes:
            if (day, hour, minute) < (wall.date(), wall.hour, wall.minute):
                continue
            for second in seconds:
                candidate = datetime.combine(day, dtime(hour, minute, second))
                if candidate >= wall:
                    return candidate
    return None


def _plain(found: datetime, tz: tzinfo, start: datetime) -> datetime | None:
    """``found`` (a local wall time) in ``tz``, when it is a plain local time at the offset
    of ``start``; else None (a DST change nearby: APScheduler's rules apply)."""
    first, second = found.replace(tzinfo=tz, fold=0), found.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset() or first.utcoffset() != start.utcoffset():
        return None
    if found - start.replace(tzinfo=None) > _QUICK_SPAN:
        return None
    return first
