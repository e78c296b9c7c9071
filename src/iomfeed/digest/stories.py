"""The stories as the digest's templates show them: scraped text cleaned, dates written in
the digest's language, links checked, grouped by category. Pure: entries in, records out."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from ..languages import Chrome
from ..output_records import DigestEntry
from .select import shorten

log = logging.getLogger(__name__)

#: A link longer than this could not sit on a line of its own: the index page is linked
#: instead (an image is left out).
MAX_URL_BYTES = 700
#: Longer runs of non-space characters in scraped text are cut with spaces, so every line
#: can be broken at a space.
MAX_WORD = 100
ALT_LIMIT = 125


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def format_date(value: datetime, chrome: Chrome, timezone: str) -> str:
    """'24 November 2026' / '24 nëntor 2026': the day in ``timezone``, written with the
    chrome's ``date_format`` and CLDR's words for its language, whatever the machine's
    locale."""
    from ..dates import format_day

    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(_zone(timezone))
    return format_day(local.date(), chrome.language, chrome.date_format)


# --------------------------------------------------------------------------- the stories


@dataclass(frozen=True, slots=True)
class Story:
    """A story as the templates show it: text cleaned, date formatted, links checked."""

    title: str
    url: str
    date: str
    summary: str  # the paragraphs, one a line
    paragraphs: tuple[str, ...]  # the summary's paragraphs: <p> each, lines in text
    image_url: str
    image_alt: str
    featured: bool  # leads the digest: its image is shown full width


@dataclass(frozen=True, slots=True)
class Group:
    """The stories of one category, newest first."""

    name: str
    stories: tuple[Story, ...]


def _newest_first(entry: DigestEntry) -> tuple[datetime, str]:
    return entry.published, entry.id


def group_entries(entries: Sequence[DigestEntry]) -> list[tuple[str, list[DigestEntry]]]:
    """``(category, entries)`` pairs: entries newest first, groups ordered by their newest
    entry, the entries without a category in a last group named ``""``."""
    groups: dict[str, list[DigestEntry]] = {}
    for entry in sorted(entries, key=_newest_first, reverse=True):
        groups.setdefault(clean_text(entry.category), []).append(entry)
    # dicts keep insertion order: the groups are already ordered by their newest entry.
    named = [(name, items) for name, items in groups.items() if name]
    return named + ([("", groups[""])] if "" in groups else [])


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_LONG_WORD = re.compile(rf"\S{{{MAX_WORD + 1},}}")


def clean_text(text: str, *, scraped: bool = True) -> str:
    """Text made safe to lay out: control characters gone, whitespace collapsed, words
    longer than MAX_WORD characters cut with spaces; and, for ``scraped`` text, no "%%"
    left that could spell a subscriber token (a hostile page must not get addresses or
    unsubscribe links filled into its text)."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    if scraped:
        text = text.replace("%%", "%\u2060%")
    return _LONG_WORD.sub(
        lambda m: " ".join(
            m.group(0)[i : i + MAX_WORD] for i in range(0, len(m.group(0)), MAX_WORD)
        ),
        text,
    )


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def ascii_url(url: str) -> str:
    """``url`` with its non-ASCII characters percent-encoded (as UTF-8): what the HTML
    serializer writes anyway, and what plain-text mail programs recognise as one link."""
    from urllib.parse import quote

    # "%%" is never valid in a URL; encoded, it cannot spell a subscriber token.
    return _NON_ASCII.sub(lambda m: quote(m.group(0), safe=""), url).replace("%%", "%25%25")


def usable_url(url: str) -> bool:
    """An absolute http(s) link (ASCII) short enough for a line of its own."""
    return (
        url.startswith(("https://", "http://"))
        and len(url) <= MAX_URL_BYTES
        and url.isascii()
        and url.isprintable()
        and " " not in url
    )


def _story(
    entry: DigestEntry, *, featured: bool, chrome: Chrome, timezone: str, fallback_url: str
) -> Story:
    url = ascii_url(entry.url)
    if not usable_url(url):
        log.debug("story %s: link unusable in a mail, linking the index page", entry.id)
        url = fallback_url
    image_url = ascii_url(entry.image_url)
    image_url = image_url if usable_url(image_url) else ""
    # The summary's paragraphs stay apart (clean_text would join them with a space).
    paragraphs = tuple(p for p in map(clean_text, entry.summary.split("\n")) if p)
    return Story(
        title=clean_text(entry.title),
        url=url,
        date=format_date(entry.published, chrome, timezone),
        summary="\n".join(paragraphs),
        paragraphs=paragraphs,
        image_url=image_url,
        image_alt=shorten(clean_text(entry.image_alt), ALT_LIMIT),
        featured=featured,
    )


def build_groups(
    entries: Sequence[DigestEntry],
    *,
    chrome: Chrome,
    timezone: str,
    fallback_url: str,
    names: Callable[[str], str] = str,
) -> list[Group]:
    """The stories as the templates show them, grouped (see :func:`group_entries`) under
    their category's name in the digest's language (``names``); the first story leads the
    digest."""
    groups = []
    for index, (name, items) in enumerate(group_entries(entries)):
        stories = tuple(
            _story(
                entry,
                featured=(index == 0 and n == 0),
                chrome=chrome,
                timezone=timezone,
                fallback_url=fallback_url,
            )
            for n, entry in enumerate(items)
        )
        groups.append(
            Group(name=clean_text(names(name)) if name else chrome.other_news, stories=stories)
        )
    return groups
