"""The decider: what to do with what a source saw. Pure functions, no I/O, no store.

Given what the store holds for an item (:class:`~iomfeed.intents.StoredState`), the item as
normalised, the clock and the ranks of the sources, :func:`decide_item` says whether it is new,
an edit, unchanged or a duplicate; :func:`decide_page` turns the other facts of a source page
into intents. The pipeline applies the intents; the store only executes them.

Rules, in order:

* A URL already stored from another source: the higher-ranked source's content is kept (a
  scraped article beats a feed's teaser), whichever ran first; equal ranks, the first stays.
* A URL recorded as another address of a stored item is that item.
* A title near-identical to one from another source, published within a few days, is that
  item (:func:`~iomfeed.dedup.find_near_duplicate`).
* An item without a date keeps the stored one (a first-seen date never moves); a page that
  suddenly has no body keeps the stored body (a scraping fault, not an edit).
* A change of :func:`~iomfeed.dedup.content_hash` is an edit; the same hash is "unchanged".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from .config import FilterConfig
from .dedup import content_hash, find_near_duplicate
from .intents import (
    Duplicate,
    DuplicateOf,
    ForgetMissing,
    ItemIntent,
    KeepValidators,
    MarkBackfilled,
    NewItem,
    PageIntent,
    RememberMissing,
    SkipFiltered,
    StoredRow,
    StoredState,
    Unchanged,
    UpdateItem,
)
from .models import DateSource, Item
from .sources import filter_hash, passes_filter
from .sources.records import SourcePage


def entry_updated(published: datetime, modified: datetime | None, now: datetime) -> datetime:
    """An entry's ``updated`` when it is first stored: the source's own modification time
    (but never before ``published``, nor after ``now``), else its publication time. Once
    stored, it moves only when iomfeed sees the content change."""
    return max(published, min(modified, now)) if modified is not None else published


def item_hash(item: Item, published: datetime) -> str:
    return content_hash(
        title=item.title,
        summary_html=item.summary_html,
        content_html=item.content_html,
        published=published,
        image_url=item.image_url,
        categories=item.categories,
        language=item.language,
    )


def filtered_out(item: Item, cfg: FilterConfig) -> SkipFiltered | None:
    """The intent to remember ``item`` as left out, when the source's filter leaves it out."""
    if passes_filter(item.title, item.categories, cfg):
        return None
    return SkipFiltered(item.url, item.source, item.listing_hash, filter_hash(cfg))


def decide_item(
    item: Item, stored: StoredState, *, now: datetime, rank: Mapping[str, int]
) -> ItemIntent:
    """New, edited, unchanged or a duplicate: see the module docstring for the rules."""
    row = stored.row
    if row is None:
        if stored.linked_id is not None:
            return Duplicate(stored.linked_id, item, DuplicateOf.ADDRESS)
        twin = find_near_duplicate(
            item.title, item.published or now, item.source, stored.candidates
        )
        if twin is not None:
            return Duplicate(twin.id, item, DuplicateOf.TITLE)
        return _new(item, now)
    take_over_from = ""
    if row.source != item.source:
        if rank.get(item.source, 0) <= rank.get(row.source, 0):
            return Duplicate(row.id, item, DuplicateOf.RANK)
        take_over_from = row.source
    return _seen_again(row, item, now, take_over_from)


def _new(item: Item, now: datetime) -> NewItem:
    if item.published is not None:
        published, date_source = item.published, item.date_source or DateSource.FIRST_SEEN
    else:
        published, date_source = now, DateSource.FIRST_SEEN
    return NewItem(
        item=item,
        published=published,
        date_source=date_source,
        content_hash=item_hash(item, published),
        updated=entry_updated(published, item.modified, now),
    )


def _seen_again(
    row: StoredRow, item: Item, now: datetime, take_over_from: str
) -> UpdateItem | Unchanged:
    if item.published is not None:
        published, date_source = item.published, item.date_source or DateSource.FIRST_SEEN
    else:  # no date found again: keep the stored one, never move a first-seen date
        published, date_source = row.published, row.date_source
    if not item.content_html and row.content_html:
        item = dataclasses.replace(item, content_html=row.content_html)
    digest = item_hash(item, published)
    listing = item.listing_hash or row.listing_hash
    if digest == row.content_hash:
        return Unchanged(row.id, item, listing, take_over_from)
    return UpdateItem(
        item_id=row.id,
        item=item,
        published=published,
        date_source=date_source,
        content_hash=digest,
        updated=max(published, now),
        listing_hash=listing,
        take_over_from=take_over_from,
    )


def decide_page(page: SourcePage, source: str) -> tuple[PageIntent, ...]:
    """What to keep of a page besides its items, once they are all stored."""
    intents: list[PageIntent] = [
        KeepValidators(v.url, v.etag, v.last_modified) for v in page.validators
    ]
    intents.extend(RememberMissing(m) for m in page.missing)
    intents.extend(ForgetMissing(url) for url in page.found_again)
    if page.backfilled:
        intents.append(MarkBackfilled(source, page.filter_hash))
    return tuple(intents)
