"""Dates in words, from the CLDR data that Babel ships: the digest's and the pages' dates
("24 November 2026", "24 nëntor 2026"), the month names on the index, and the month names
the date parser recognises. There is no hand-written month table anywhere: a language is
known by its code, so adding one needs no new table.

Babel is imported inside the functions (importing ``babel.dates`` costs about 25 ms, loading
a locale's data a few tens more), so a run that writes and reads no date in words never loads
it; what is built from it is built once per process. The built-in languages' month and day
names and date patterns are also kept in :mod:`iomfeed.dates_cldr` (generated from Babel, and
compared with it by a test), with those of the languages the date parser always reads: a
date whose pattern uses only days, months, years and weekdays is written from there, the
same characters Babel writes, so a publish never loads Babel, and a date in words is read
with the month names kept there, so a fetch does not either. Anything else (another
language, another field) is Babel's. Pure: no I/O but reading
Babel's data.
"""

from __future__ import annotations

import logging
import unicodedata
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

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
    written = _from_table(day, language, pattern)
    if written is not None:
        return written
    from babel.dates import format_date

    return str(format_date(day, pattern, locale=locale(language)))


def cldr_table(language: str) -> dict[str, Any] | None:
    """The kept CLDR words of a built-in language or of one the date parser always reads
    (see :mod:`iomfeed.dates_cldr`)."""
    from .dates_cldr import CLDR

    return CLDR.get(language.strip().replace("-", "_"))


#: Babel's pattern letters (``babel.dates.PATTERN_CHARS``): a run of one is a field.
_FIELD_LETTERS = frozenset("GyYuQqMLwWdDFgEecabBhHKkmsSAzZOvVxX")
#: The fields :func:`_from_table` writes, and the repetitions of each (a year: any).
_TABLE_FIELDS = {"d": (1, 2), "M": (1, 2, 3, 4), "L": (1, 2, 3, 4), "E": (1, 2, 3, 4)}
_WIDTHS = {3: "abbreviated", 4: "wide"}

Token = str | tuple[str, int]


def _from_table(day: date, language: str, pattern: str) -> str | None:
    """``day`` written from the kept table as Babel would write it, or ``None`` when the
    language is not in the table or the pattern has a field the table cannot write."""
    table = cldr_table(language)
    if table is None:
        return None
    tokens = _tokens(table["DATE_FORMATS"].get(pattern, pattern))
    if tokens is None:
        return None
    out: list[str] = []
    for token in tokens:
        if isinstance(token, str):
            out.append(token)
            continue
        char, num = token
        if char == "y":
            year = f"{day.year:0{num}d}"
            out.append(year[-2:] if num == 2 else year)
        elif char == "d":
            out.append(f"{day.day:0{num}d}")
        elif char == "E":
            out.append(table["DAYS"][_WIDTHS[max(num, 3)]][day.weekday()])
        elif num <= 2:  # M or L as a number
            out.append(f"{day.month:0{num}d}")
        else:
            context = "format" if char == "M" else "stand-alone"
            out.append(table["MONTHS"][context][_WIDTHS[num]][day.month - 1])
    return "".join(out)


@lru_cache(maxsize=64)
def _tokens(pattern: str) -> tuple[Token, ...] | None:
    """``pattern`` split as ``babel.dates.tokenize_pattern`` splits it (literal text, and
    runs of one pattern letter; ``''`` is a quote, text in quotes is literal, an unclosed
    quote's text is dropped), or ``None`` when a field is not one of :data:`_TABLE_FIELDS`."""
    tokens: list[Token] = []
    text: list[str] = []
    quoted: list[str] | None = None
    field, count = "", 0
    for char in pattern.replace("''", "\0"):
        if quoted is not None:
            if char == "'":
                text.extend(quoted)
                quoted = None
            else:
                quoted.append(char)
            continue
        if char in _FIELD_LETTERS and char == field:
            count += 1
            continue
        if field:
            tokens.append((field, count))
            field, count = "", 0
        elif text and (char == "'" or char in _FIELD_LETTERS):
            tokens.append("".join(text).replace("\0", "'"))
            text = []
        if char == "'":
            quoted = []
        elif char in _FIELD_LETTERS:
            field, count = char, 1
        else:
            text.append(char)
    if field:
        tokens.append((field, count))
    elif text:
        tokens.append("".join(text).replace("\0", "'"))
    writable = all(
        isinstance(t, str) or t[0] == "y" or t[1] in _TABLE_FIELDS.get(t[0], ()) for t in tokens
    )
    return tuple(tokens) if writable else None


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
    table = cldr_table(language)
    if table is not None and 1 <= month <= 12:
        return str(table["MONTHS"]["stand-alone"]["wide"][month - 1])
    return str(locale(language).months["stand-alone"]["wide"][month])


def _folded(name: str) -> str:
    """``name`` without accents ('nëntor' -> 'nentor'), as people type it without them."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _month_names(language: str) -> Any:
    """CLDR's month names of ``language``, by context and width, each by number: from the
    kept table when it has the language (so reading a date in words loads no Babel), else
    from Babel."""
    table = cldr_table(language)
    if table is None:
        return locale(language).months
    return {
        context: {width: dict(enumerate(names, 1)) for width, names in widths.items()}
        for context, widths in table["MONTHS"].items()
    }


@lru_cache(maxsize=32)
def month_numbers(languages: tuple[str, ...]) -> dict[str, int]:
    """Every month name of ``languages`` that CLDR has, lower-case, without a final dot,
    with and without accents: wide and abbreviated, format and stand-alone forms. A name
    that two languages give different months keeps the earlier language's. A language CLDR
    does not know adds nothing (an article's ``lang`` may say anything)."""
    numbers: dict[str, int] = {}
    for language in languages:
        try:
            months = _month_names(language)
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
