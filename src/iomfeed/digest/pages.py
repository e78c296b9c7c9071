"""Where a digest lives on the web: the name of its page in each language, and what its web
copy shows instead of the personal parts of a message. Pure: no store, no clock.

A digest's page is ``digests/<date>-<code>.html`` in the publish folder (``<date>`` is the
day the digest was made, in ``site.timezone``, as its dateline says), so its address is
``site.public_url`` + that path, like the feeds'. A second digest made the same day is
``<date>-2-<code>.html``, a third ``-3``: the number counts the digests made earlier that
day that were not skipped, which never changes once a digest exists, so the name is known
before the first message leaves (each message links it) and stays the same afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

#: The folder of the digest pages, their index and their Atom feed, in the publish folder.
FOLDER = "digests"


def local_day(created: datetime, timezone: str) -> str:
    """``YYYY-MM-DD``: the day of ``created`` in ``timezone``."""
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created.astimezone(ZoneInfo(timezone)).date().isoformat()


def page_stem(
    digest_id: int, created: datetime, earlier: Sequence[tuple[int, datetime]], timezone: str
) -> str:
    """The page name of a digest without its language: its day, and ``-N`` for the Nth
    digest of that day. ``earlier``: (id, created) of the digests that were not skipped;
    ``digest_id`` 0 for one not recorded yet (it will be the newest)."""
    day = local_day(created, timezone)
    before = sum(
        1
        for other, when in earlier
        if (digest_id == 0 or other < digest_id)
        and other != digest_id
        and local_day(when, timezone) == day
    )
    return day if before == 0 else f"{day}-{before + 1}"


def page_file(stem: str, language: str) -> str:
    """The page's file name inside :data:`FOLDER`."""
    return f"{stem}-{language}.html"


def page_path(stem: str, language: str) -> str:
    """The page's path in the publish folder."""
    return f"{FOLDER}/{page_file(stem, language)}"


def public_base(public_url: str) -> str:
    """``site.public_url`` with one trailing slash: the publish folder's address."""
    return public_url if public_url.endswith("/") else public_url + "/"


def page_url(public_url: str, stem: str, language: str) -> str:
    """The page's public address (where each message's "View in browser" link points)."""
    return public_base(public_url) + page_path(stem, language)


def language_name(code: str) -> str:
    """The language's name in itself ("English", "shqip"), from CLDR (kept for the built-in
    languages, else through Babel)."""
    from ..dates_cldr import CLDR

    if code in CLDR:
        return str(CLDR[code]["NAME"])
    from babel import Locale, UnknownLocaleError

    try:
        name = Locale.parse(code).get_display_name(code)
    except (ValueError, UnknownLocaleError):
        name = None
    return name or code


@dataclass(frozen=True, slots=True)
class Alternate:
    """The same digest's page in another language."""

    language: str
    name: str  # the language's name in itself
    file: str  # relative to the page (both are in FOLDER)


@dataclass(frozen=True, slots=True)
class WebCopy:
    """What the web copy of a digest shows where a message has personal parts: no
    greeting, no unsubscribe link with a token, no address; a note that it is the web copy,
    a link to the archive and the digest's pages in its other languages."""

    alternates: tuple[Alternate, ...] = ()
    archive: str = "index.html"  # the archive's index, relative to the page
