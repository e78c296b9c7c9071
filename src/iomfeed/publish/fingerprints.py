"""What a published file's fingerprint is made of: a hash of everything it shows, recorded
when it is written, so that a later publish renders it only when that moved (see
:mod:`.build`). Pure, but for :func:`code_digest`, which reads iomfeed's own source once a
process."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..models import StoredItem
from ..output_records import FeedDoc

if TYPE_CHECKING:
    from ..config import SiteConfig
    from .site import FeedLink

#: Bump when what the subscription feeds or the index show changes in a way that neither
#: iomfeed's release nor the hash of its rendering code tells (their fingerprints hold
#: both, the index's its templates too).
PAGES_VERSION = "1"

#: What no page shows of an item (when it was seen, its listing entry's hash): left out of
#: the fingerprints, so that a story seen again renders nothing anew.
UNSHOWN = frozenset({"first_seen", "last_seen", "listing_hash"})
_SHOWN = tuple(f.name for f in dataclasses.fields(StoredItem) if f.name not in UNSHOWN)
_DOC = tuple(f.name for f in dataclasses.fields(FeedDoc) if f.name != "items")


def shown(items: Iterable[StoredItem]) -> list[tuple[object, ...]]:
    """What the pages show of each item: every field but those of :data:`UNSHOWN`."""
    return [tuple(getattr(item, name) for name in _SHOWN) for item in items]


def feed_set(doc: FeedDoc, release: str) -> str:
    """The fingerprint of a subscription feed's Atom, RSS and JSON files."""
    return fingerprint(
        PAGES_VERSION,
        release,
        code_digest(),
        [getattr(doc, f) for f in _DOC],
        shown(doc.items),
    )


def month_pages(site: SiteConfig, feed: FeedLink) -> str:
    """What every month page's fingerprint holds alike (each adds its rows and its
    neighbours): the templates, the code, the pages' words, the settings they show."""
    from .site import pages_words, templates_digest

    return "\x1f".join(
        (
            templates_digest(),
            code_digest(),
            fingerprint(pages_words()),
            site.title,
            site.author,
            site.language,
            site.home_url,
            feed.atom_url,
            feed.rss_url,
            feed.json_url,
        )
    )


@functools.cache
def code_digest() -> str:
    """A hash of the source of the modules that turn records into a file's bytes (the
    feeds, the pages, the dates written on them, the plain text of HTML, this one): part of
    the subscription feeds', the index's and the month pages' fingerprints, so that
    rendering code changed between releases (an update from a checkout) renders them
    again. "" where a source cannot be read (a frozen build): the release then tells."""
    from .. import dates, dates_cldr
    from ..normalize import markup
    from . import feeds, site

    digest = hashlib.sha256()
    for module in (feeds, site, dates, dates_cldr, markup, sys.modules[__name__]):
        try:
            digest.update(Path(str(module.__file__)).read_bytes())
        except OSError:
            return ""
    return digest.hexdigest()


def fingerprint(*parts: object) -> str:
    """A hash of ``parts`` by their reprs (records, strings, dates: reprs that hold every
    value; no set, whose repr's order changes from one process to the next)."""
    return hashlib.sha256("\x1f".join(map(repr, parts)).encode("utf-8")).hexdigest()


def record_values(record: Any) -> list[object]:
    """A record's values for :func:`fingerprint`, a set's in order."""
    values = (getattr(record, f.name) for f in dataclasses.fields(record))
    return [sorted(v) if isinstance(v, (set, frozenset)) else v for v in values]
