"""Dates: ISO 8601 values, dates written in words in a page's text, and datelines at the
start of a body, as time-zone aware datetimes.

Pure functions only: no clock (the ``reference`` time and the zone are passed in). Month
names come from CLDR through :mod:`iomfeed.dates`, loaded on the first date read in words.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache

from .markup import clean_text

_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_RANGE = r"(?:\s*[-–—]\s*[0-3]?\d)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_TIME = r"(?:\s*[-–,@]?\s*(?P<hour>[0-2]?\d):(?P<minute>[0-5]\d)(?:\s*(?P<ampm>[ap]\.?m\.?))?)?"


@dataclasses.dataclass(frozen=True, slots=True)
class _DateForms:
    """The date patterns for one set of languages, and their month names (from CLDR)."""

    months: dict[str, int]
    patterns: tuple[re.Pattern[str], ...]


def _date_languages(language: str) -> tuple[str, ...]:
    """The item's own language first (its names win a clash), then the always-known ones."""
    from ..dates import PARSE_LANGUAGES

    language = language.replace("_", "-").split("-")[0].lower()  # en-US: en's names
    first = (language,) if language and language not in PARSE_LANGUAGES else ()
    return first + PARSE_LANGUAGES


@lru_cache(maxsize=32)
def _date_forms(languages: tuple[str, ...]) -> _DateForms:
    """Built once per set of languages, on the first date read in words (Babel's data is
    loaded then, never at import)."""
    from ..dates import month_numbers

    months = month_numbers(languages)
    names = "|".join(re.escape(name) for name in sorted(months, key=len, reverse=True))
    month = rf"(?P<month>{names})\.?"
    return _DateForms(
        months,
        (
            # 18-19 June 2024 / 5 November 2018 / 14-16 June 2021
            re.compile(rf"\b{_DAY}{_RANGE}\s+(?:of\s+)?{month},?\s+{_YEAR}\b{_TIME}", re.I),
            # October 29, 2019 / Wednesday, September 19, 2018 - 17:11
            re.compile(rf"\b{month}\s+{_DAY}{_RANGE},?\s+{_YEAR}\b{_TIME}", re.I),
            # 01/22/2021 - 03:19 (Drupal 7's default US format)
            re.compile(rf"\b(?P<mnum>[01]?\d)/{_DAY}/{_YEAR}\b{_TIME}", re.I),
            # 18 December (no year: the nearest one not in the future)
            re.compile(rf"\b{_DAY}\s+{month}(?!\s*,?\s*\d)\b", re.I),
            # Throughout March 2024 / March 2024
            re.compile(rf"\b{month}\s+{_YEAR}\b", re.I),
        ),
    )


DATELINE_WINDOW = 160  # characters of body text a dateline may start within
YEARLESS_MAX_AGE = timedelta(days=45)  # a date without a year is trusted only this recent


def parse_iso(text: str, tz: tzinfo) -> datetime | None:
    """An ISO 8601 / RFC 3339 date or date-time; naive values are local to ``tz``."""
    value = text.strip()
    if not value or not value[0].isdigit():
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        try:
            d = date.fromisoformat(value[:10])
        except ValueError:
            return None
        dt = datetime(d.year, d.month, d.day)  # noqa: DTZ001 - made aware just below
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)


def parse_date_text(
    text: str, tz: tzinfo, *, reference: datetime, language: str = ""
) -> datetime | None:
    """Find a date in free text ("Posted: Wednesday, September 19, 2018 - 17:11").

    ``reference`` decides the year of a date written without one (the nearest that is not
    after it). Month names are CLDR's for ``language`` (the text's, when known) and for
    :data:`iomfeed.dates.PARSE_LANGUAGES`. Returns an aware datetime in ``tz``, or ``None``.
    """
    text = clean_text(text)
    iso = parse_iso(text, tz)
    if iso is not None:
        return iso
    forms = _date_forms(_date_languages(language))
    for m in _matches(text, forms):
        found = _from_match(m, forms, tz, reference)
        if found is not None:
            return found
    return None


def _matches(text: str, forms: _DateForms) -> list[re.Match[str]]:
    """Every date-like match in ``text``, the earliest first (the longest at one place)."""
    found = [m for pattern in forms.patterns for m in pattern.finditer(text)]
    return sorted(found, key=lambda m: (m.start(), -(m.end() - m.start())))


def _from_match(
    m: re.Match[str], forms: _DateForms, tz: tzinfo, reference: datetime
) -> datetime | None:
    groups = m.groupdict()
    if groups.get("mnum"):
        month = int(groups["mnum"])
    else:
        month = forms.months[groups["month"].lower().rstrip(".")]
    day = int(groups["day"]) if groups.get("day") else 1
    hour = int(groups["hour"]) if groups.get("hour") else 0
    minute = int(groups["minute"]) if groups.get("minute") else 0
    ampm = (groups.get("ampm") or "").replace(".", "").lower()
    if ampm == "pm" and hour < 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0
    if hour > 23:
        return None
    local_ref = reference.astimezone(tz)
    year = int(groups["year"]) if groups.get("year") else local_ref.year
    try:
        found = datetime(year, month, day, hour, minute, tzinfo=tz)
    except ValueError:
        return None
    if not groups.get("year"):
        if found > local_ref:
            try:
                found = found.replace(year=year - 1)
            except ValueError:
                return None
        # Without a year, only fresh news can be dated with confidence: an old article read
        # now would get the wrong year, so it is left undated (first-seen) instead.
        if local_ref - found > YEARLESS_MAX_AGE:
            return None
    return found


def find_dateline(
    body_text: str, tz: tzinfo, *, reference: datetime, language: str = ""
) -> datetime | None:
    """A date in the first words of a body ("Tirana 5 November 2018: ..."), or ``None``;
    month names as in :func:`parse_date_text`."""
    head = clean_text(body_text)[:DATELINE_WINDOW]
    forms = _date_forms(_date_languages(language))
    for m in _matches(head, forms):
        found = _from_match(m, forms, tz, reference)
        if found is not None and found <= reference + timedelta(days=1):
            return found
    return None
