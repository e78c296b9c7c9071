"""Records by direction, for the items path: what the store holds about an item going in,
what to do about it coming out.

The pipeline reads a :class:`StoredState` from the store for each item a source saw, the
pure decider (:mod:`iomfeed.decide`) turns it into one of the intents below, and the pipeline
asks the store to apply the intents of one source page in one transaction. Nothing here does
any I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .dedup import Candidate
from .models import Change, DateSource, Item, MissingArticle

# ----------------------------------------------------------------------------- going in


@dataclass(frozen=True, slots=True)
class StoredRow:
    """What the decider needs of the item stored at a canonical URL."""

    id: str
    source: str
    published: datetime
    date_source: DateSource
    content_hash: str
    content_html: str
    listing_hash: str


@dataclass(frozen=True, slots=True)
class StoredState:
    """What the store holds for one item seen: the item at its URL, else the item its URL is
    recorded as another address of, else the items published near it (near duplicates)."""

    row: StoredRow | None = None
    linked_id: str | None = None
    candidates: tuple[Candidate, ...] = ()


# ----------------------------------------------------------------------------- coming out


class DuplicateOf(StrEnum):
    """Why an item seen is not stored as itself."""

    RANK = "rank"  # the same URL is stored from a source ranked at least as high
    ADDRESS = "address"  # its URL is a recorded other address of a stored item
    TITLE = "title"  # a near-identical title from another source, published close by


@dataclass(frozen=True, slots=True)
class NewItem:
    """Insert ``item`` (normalised) with the date, hash and ``updated`` settled here."""

    item: Item
    published: datetime
    date_source: DateSource
    content_hash: str
    updated: datetime
    change = Change.NEW


@dataclass(frozen=True, slots=True)
class UpdateItem:
    """Replace the stored fields of ``item_id`` by ``item``'s (an edit: a new hash)."""

    item_id: str
    item: Item
    published: datetime
    date_source: DateSource
    content_hash: str
    updated: datetime
    listing_hash: str
    take_over_from: str = ""  # the lower-ranked source the item was stored from, if any
    change = Change.UPDATED


@dataclass(frozen=True, slots=True)
class Unchanged:
    """The stored item is what was seen: note that it was seen again."""

    item_id: str
    item: Item
    listing_hash: str
    take_over_from: str = ""
    change = Change.UNCHANGED


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The same story is stored as ``item_id``; ``why`` says how it was recognised."""

    item_id: str
    item: Item
    why: DuplicateOf
    change = Change.DUPLICATE


ItemIntent = NewItem | UpdateItem | Unchanged | Duplicate


@dataclass(frozen=True, slots=True)
class SkipFiltered:
    """The source's filter left the item out: remember it, not to fetch it again needlessly."""

    url: str
    source: str
    listing_hash: str
    filter_hash: str


@dataclass(frozen=True, slots=True)
class KeepValidators:
    """The conditional-GET validators of a page whose content is stored with them."""

    url: str
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class RememberMissing:
    """Keep a listed article that answered 404 or 410, to try it again later."""

    missing: MissingArticle


@dataclass(frozen=True, slots=True)
class ForgetMissing:
    """Forget a missing article: it was found again."""

    url: str


@dataclass(frozen=True, slots=True)
class MarkBackfilled:
    """Record that a source's backfill reached its end under this filter."""

    source: str
    filter_hash: str


PageIntent = KeepValidators | RememberMissing | ForgetMissing | MarkBackfilled
