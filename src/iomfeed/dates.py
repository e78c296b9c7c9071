"""Dates in words, from the CLDR data that Babel ships: the digest's and the pages' dates
("24 November 2026", "24 nëntor 2026"), the month names on the index, and the month names
the date parser recognises. There is no hand-written month table anywhere: a language is
known by its code, so adding one needs no new table.

Babel is imported inside the functions (importing ``babel.dates`` costs about 25 ms, loading
a locale's data a few more), so a run that writes and reads no date in words never loads it;
what is built from it is built once per process. Pure: no I/O but reading Babel's data.
"""

from __future__ import annotations

import logging
import unicodedata
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from babel import Locale

log = logging.getLogger(__name__)

#: CLDR's names for the four standard lengths of a date; any other value is a pattern.
FORMAT_NAMES = ("short", "medium", "long", "full")

#: The languages whose month names the date parser always knows (CLDR locale ids), on top
#: of an item's own language. British English is read for its "Sept" (CLDR's "en" has
#: only "Sep"); IOM Albania's pages are in English and Albanian.
PARSE_LANGUAGES = ("en", "en_GB", "sq")


class UnknownLanguage(ConfigError):
    """CLDR (Babel) has no data for a language tag; the caller adds where it came from."""


@lru_cache(maxsize=32)
def locale(language: str) -> Locale:
    """Babel's locale for a language tag ('en', 'sq', 'en-GB', 'sq_AL')."""
    from babel import Locale, UnknownLocaleError

    tag = language.strip().replace("-", "_")
    try:
        return Locale.parse(tag)
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise UnknownLanguage(f"{language!r}: CLDR (Babel) has no data for this language") from exc


def format_day(value: date, language: str, pattern: str = "long") -> str:
    """``value`` in words: ``pattern`` is one of CLDR's lengths (short, medium, long, full)
    or a CLDR date pattern such as ``d MMMM y``. A datetime is written as its own (local)
    day: convert it to the reader's time zone first."""
    day = value.date() if isinstance(value, datetime) else value
    return _format_day(day, language, pattern)


@lru_cache(maxsize=8192)
def _format_day(day: date, language: str, pattern: str) -> str:
    """Pages and digests write the same few thousand days again and again: each once."""
    from babel.dates import format_date

    return str(format_date(day, pattern, locale=locale(language)))


def check_pattern(pattern: str, language: str) -> str | None:
    """Why ``pattern`` cannot write a date in ``language``, or ``None`` when it can."""
    if "{" in pattern:
        return (
            "expected a CLDR date pattern such as 'd MMMM y' or one of "
            f"{', '.join(FORMAT_NAMES)} (month names come from CLDR; placeholders such"
            " as {day} {month} {year} are no longer used)"
        )
    if not pattern.strip():
        return "expected a CLDR date pattern such as 'd MMMM y', got an empty string"
    try:
        format_day(date(2026, 11, 24), language, pattern)
    except UnknownLanguage as exc:
        return str(exc)
    except (ValueError, KeyError, AttributeError) as exc:
        return f"{pattern!r} is not a CLDR date pattern ({exc})"
    return None


def month_name(month: int, language: str) -> str:
    """The stand-alone wide name of ``month`` (1-12), as a heading or link shows it."""
    return str(locale(language).months["stand-alone"]["wide"][month])


def _folded(name: str) -> str:
    """``name`` without accents ('nëntor' -> 'nentor'), as people type it without them."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=32)
def month_numbers(languages: tuple[str, ...]) -> dict[str, int]:
    """Every month name of ``languages`` that CLDR has, lower-case, without a final dot,
    with and without accents: wide and abbreviated, format and stand-alone forms. A name
    that two languages give different months keeps the earlier language's. A language CLDR
    does not know adds nothing (an article's ``lang`` may say anything)."""
    numbers: dict[str, int] = {}
    for language in languages:
        try:
            months = locale(language).months
        except UnknownLanguage:
            log.debug("no month names for %r: CLDR has no data for it", language)
            continue
        for context in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                for number, name in months[context][width].items():
                    key = unicodedata.normalize("NFC", str(name)).lower().rstrip(".")
                    for form in (key, _folded(key)):
                        if form and not form.isdigit():
                            numbers.setdefault(form, int(number))
    return numbers
