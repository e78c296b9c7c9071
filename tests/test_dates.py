"""Dates in words come from CLDR (Babel): the parser knows every month name CLDR has for
the languages it reads, a language needs no table of its own, and Babel is loaded only when
a date is read or written in words."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel import Locale

from iomfeed.dates import FORMAT_NAMES, check_pattern, format_day, month_name, month_numbers
from iomfeed.normalize import find_dateline, parse_date_text
from iomfeed.publish.site import MonthLink, long_date

TIRANE = ZoneInfo("Europe/Tirane")
REF = datetime(2026, 11, 24, tzinfo=UTC)


def cldr_names(language: str) -> list[tuple[int, str]]:
    months = Locale.parse(language).months
    return [
        (int(number), str(name))
        for context in ("format", "stand-alone")
        for width in ("wide", "abbreviated")
        for number, name in months[context][width].items()
    ]


@pytest.mark.parametrize("language", ["en", "sq", "en_GB"])
def test_the_parser_reads_every_month_name_cldr_has(language: str) -> None:
    for number, name in cldr_names(language):
        for text in (f"Tiranë, 5 {name} 2018: IOM", f"{name.upper()} 5, 2018 - 10:30"):
            found = parse_date_text(text, TIRANE, reference=REF)
            assert found is not None and (found.month, found.day) == (number, 5), text


def test_the_month_names_read_from_the_table_are_babels(monkeypatch: pytest.MonkeyPatch) -> None:
    """For each language always read, the names the parser knows are those it knew when it
    asked Babel (the same names, months and precedence)."""
    from iomfeed import dates

    languages = ("it", *dates.PARSE_LANGUAGES)
    with_table = dates.month_numbers.__wrapped__(languages)
    monkeypatch.setattr(dates, "cldr_table", lambda language: None)
    from_babel = dates.month_numbers.__wrapped__(languages)
    assert with_table == from_babel and len(with_table) > 40


@pytest.mark.parametrize(
    ("text", "month"),
    [
        ("5 Sept. 2018", 9),  # British English (CLDR en_GB)
        ("5 nentor 2018", 11),  # Albanian typed without its ë
        ("5 NËNTOR 2018", 11),
        ("Korr 5, 2018", 7),
        ("Tirana, 5 dhj 2018 –", 12),
    ],
)
def test_short_and_accent_free_names(text: str, month: int) -> None:
    assert parse_date_text(text, TIRANE, reference=REF) == datetime(2018, month, 5, tzinfo=TIRANE)


def test_a_language_needs_no_month_table_of_its_own() -> None:
    text = "Roma, 5 novembre 2018 – L'OIM e il ministero"
    # Not one of the languages always read: an Italian month is no date...
    assert find_dateline(text, TIRANE, reference=REF) is None
    # ...until the text says it is Italian; then CLDR's Italian names are read as well.
    want = datetime(2018, 11, 5, tzinfo=TIRANE)
    assert find_dateline(text, TIRANE, reference=REF, language="it") == want
    assert parse_date_text(
        "Pubblicato: 3 ott 2019", TIRANE, reference=REF, language="it-IT"
    ) == datetime(2019, 10, 3, tzinfo=TIRANE)
    # English and Albanian stay known whatever the text's language.
    assert find_dateline("Tirana, 5 nëntor 2018:", TIRANE, reference=REF, language="it") == want
    # A language CLDR does not know adds nothing and breaks nothing.
    assert (
        find_dateline("Tirana, 5 November 2018:", TIRANE, reference=REF, language="x-klingon")
        == want
    )


def test_an_article_page_in_another_language_is_dated_by_its_dateline() -> None:
    from iomfeed.config import ArticleConfig
    from iomfeed.sources.html_parse import parse_article

    page = (
        '<html lang="it"><body><h1>T</h1><div class="body"><p>Roma, 5 novembre 2018 –'
        " L'OIM ha firmato un accordo.</p></div></body></html>"
    )
    article = parse_article(
        page,
        "https://albania.iom.int/news/t",
        ArticleConfig(body=("div.body",)),
        tz=TIRANE,
        now=REF,
    )
    assert article.published == datetime(2018, 11, 5, tzinfo=TIRANE)


def test_a_name_two_languages_give_different_months_is_read_in_the_texts_language() -> None:
    # 'listopad' is October in Croatian and November in Polish: the earlier language wins,
    # and the text's own language comes first.
    assert month_numbers(("hr", "pl"))["listopad"] == 10
    assert month_numbers(("pl", "hr"))["listopad"] == 11
    text = "Zagreb, 5 listopada 2018 – IOM"
    assert find_dateline(text, TIRANE, reference=REF, language="hr") == datetime(
        2018, 10, 5, tzinfo=TIRANE
    )
    assert find_dateline(text, TIRANE, reference=REF, language="pl") == datetime(
        2018, 11, 5, tzinfo=TIRANE
    )


def test_dates_are_written_with_cldr_words() -> None:
    day = date(2026, 11, 24)
    assert format_day(day, "sq") == "24 nëntor 2026"  # CLDR's long Albanian date
    assert format_day(day, "en", "d MMMM y") == "24 November 2026"
    assert format_day(day, "sq", "full") == "e martë, 24 nëntor 2026"
    assert format_day(day, "it") == "24 novembre 2026"
    assert long_date(datetime(2024, 6, 20, 23, tzinfo=UTC)) == "20 June 2024"
    assert [month_name(m, "sq") for m in (1, 11)] == ["janar", "nëntor"]
    assert MonthLink("2026-11", 3).label == "November 2026"
    assert MonthLink("2026-11", 3, language="sq").label == "nëntor 2026"


def test_a_pattern_that_cannot_write_a_date_is_explained() -> None:
    assert check_pattern("d MMMM y", "sq") is None and check_pattern("long", "en") is None
    assert "CLDR date pattern" in (check_pattern("{day} {month} {year}", "en") or "")
    assert "no data" in (check_pattern("long", "zz-Qqqq") or "")


def test_babel_is_loaded_only_for_a_date_in_words_of_another_language() -> None:
    """The month names of the languages always read (English, British English, Albanian)
    are kept in the table; another language's come from Babel, when a date is read in it."""
    script = """
import sys
from datetime import UTC, datetime
import iomfeed.cli, iomfeed.pipeline, iomfeed.sources.html, iomfeed.publish.site
import iomfeed.sources.html_parse
import iomfeed.digest.render
from iomfeed.normalize import parse_date_text
assert not [m for m in sys.modules if m.startswith("babel")], "imported babel"
ref = datetime(2026, 11, 24, tzinfo=UTC)
assert parse_date_text("2018-11-05T10:00:00Z", UTC, reference=ref) is not None
assert "babel" not in sys.modules, "an ISO date loaded babel"
for text in ("5 November 2018", "5 Sept 2018", "5 nëntor 2018", "5 nentor 2018"):
    assert parse_date_text(text, UTC, reference=ref) is not None, text
assert "babel" not in sys.modules, "a date in words of a language always read loaded babel"
got = parse_date_text("5 novembre 2018", UTC, reference=ref, language="it")
assert got is not None and (got.year, got.month, got.day) == (2018, 11, 5), got
assert "babel.core" in sys.modules
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_kept_cldr_table_is_what_babel_has() -> None:
    """``iomfeed/dates_cldr.py`` is generated from Babel; after a Babel upgrade that changed
    CLDR, regenerate it with ``python -m dev.cldr_dates``."""
    from dev.cldr_dates import TARGET, render

    assert TARGET.read_text(encoding="utf-8") == render()


#: Patterns the table writes: the language files' own and CLDR's lengths, quotes, padding.
TABLE_PATTERNS = (
    *FORMAT_NAMES,
    "d MMMM y",
    "EEEE, d MMMM y",
    "E d MMM yy",
    "EEE, dd.MM.yyyy",
    "LLLL y",
    "LLL L, M/d/yyyyy",
    "'week of' d 'o''clock' MMMM",
    "''d''",
    "d 'unclosed",
    "MMMMd, %y %% - y'",
)


@pytest.mark.parametrize("language", ["en", "sq", "en_GB"])
@pytest.mark.parametrize("pattern", TABLE_PATTERNS)
def test_a_date_written_from_the_table_is_what_babel_writes(language: str, pattern: str) -> None:
    from babel.dates import format_date

    from iomfeed.dates import _from_table

    days = [date(2024, 1, 1) + timedelta(days=n) for n in range(0, 366 * 2, 3)]
    days += [date(1, 1, 1), date(7, 7, 7), date(987, 6, 5), date(9999, 12, 31)]
    for day in days:
        want = format_date(day, pattern, locale=Locale.parse(language))
        assert _from_table(day, language, pattern) == want, (day, pattern)


def test_what_the_table_cannot_write_is_babels() -> None:
    from iomfeed.dates import _from_table

    day = date(2026, 11, 24)
    for pattern in ("MMMMM y", "ddd", "G y", "d MMMM, h a", "QQQ y", "x"):
        assert _from_table(day, "en", pattern) is None, pattern
    assert _from_table(day, "it", "long") is None  # not a built-in language
    assert format_day(day, "en", "MMMMM") == "N"  # Babel's narrow month
    assert format_day(day, "en", "MMMMM d, G y") == "N 24, AD 2026"
    assert "not a CLDR date pattern" in (check_pattern("d MMMM a", "en") or "")
    assert "not a CLDR date pattern" in (check_pattern("dddd", "sq") or "")


def test_a_built_in_language_writes_its_dates_and_names_without_babel() -> None:
    script = """
import sys
from datetime import date
from iomfeed import languages
from iomfeed.dates import check_pattern, format_day, month_name
from iomfeed.digest.pages import language_name
for code in languages.BUILT_IN:
    languages.load(code)
    assert check_pattern("d MMMM y", code) is None
assert format_day(date(2026, 11, 24), "sq") == "24 nëntor 2026"
assert format_day(date(2026, 11, 24), "en", "EEEE, d MMMM y") == "Tuesday, 24 November 2026"
assert (month_name(11, "sq"), language_name("sq")) == ("nëntor", "shqip")
assert not [m for m in sys.modules if m.startswith("babel")], "imported babel"
assert format_day(date(2026, 11, 24), "it") == "24 novembre 2026"
assert "babel.dates" in sys.modules
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
