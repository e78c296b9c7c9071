"""The typed, frozen records that cross iomfeed's stage boundaries.

Stages pass these and nothing else: no dicts between modules. Records are named for what they
carry, not for who made them. This module imports nothing heavy and has no behaviour beyond
small derived properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from .digest.states import DigestState

if TYPE_CHECKING:
    from .bounces.process import BounceReport
    from .output_records import DeliveryReport


class DateSource(StrEnum):
    """Where an item's published date came from, most trusted first."""

    TIME = "time"  # <time datetime> on the article page
    META = "meta"  # <meta property="article:published_time">
    JSONLD = "jsonld"  # JSON-LD datePublished
    SELECTOR = "selector"  # the configured article.date selector
    DATELINE = "dateline"  # a dateline at the start of the body
    LISTING = "listing"  # the listing page's date selector
    FEED = "feed"  # an ingested feed's published/updated date
    JSON = "json"  # an ingested JSON item's date
    FIRST_SEEN = "first-seen"  # no date anywhere: the time iomfeed first saw the item


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP answer, after redirects: a 200 with its body, or a 304 without one."""

    url: str
    final_url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float = 0.0

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def text(self) -> str:
        """The body decoded with the declared or sniffed charset."""
        from .charset import decode_body

        return decode_body(self.body, self.content_type)


@dataclass(frozen=True, slots=True)
class Item:
    """A news item as a source found it, and (after ``normalize``) as it is stored.

    Before normalisation, URLs may be relative to ``base_url``, HTML is raw and dates may be
    naive (local to the source). After it, ``url`` is canonical, HTML is sanitised with
    absolute links, and ``published`` is time-zone aware (or ``None``: the store then uses the
    first-seen time and marks it so). ``modified`` (aware, from the source) dates the stored
    entry's ``updated`` when the item is first stored.
    """

    source: str
    url: str
    title: str
    base_url: str = ""
    summary_html: str = ""
    content_html: str = ""
    published: datetime | None = None
    date_source: DateSource | None = None
    modified: datetime | None = None  # the source's own last-modified time, if it gives one
    image_url: str = ""
    image_alt: str = ""
    categories: tuple[str, ...] = ()
    language: str = ""
    author: str = ""
    canonical_hint: str = ""  # rel="canonical" of the article page, if any
    also_at: tuple[str, ...] = ()  # other addresses of this item (the listing's link)
    listing_hash: str = ""  # fingerprint of the listing entry, to notice edits cheaply
    date_note: str = ""  # why the date found was not used (set by ``normalize``)


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as the store holds it, with its minted identity and history."""

    id: str  # a tag: URI minted once, never recomputed
    url: str
    source: str
    title: str
    summary_html: str
    content_html: str
    published: datetime
    date_source: DateSource
    updated: datetime
    first_seen: datetime
    last_seen: datetime
    image_url: str
    image_alt: str
    categories: tuple[str, ...]
    language: str
    author: str
    content_hash: str
    listing_hash: str
    date_note: str = ""  # why the page's own date was not used ("" when it was, or none)


@dataclass(frozen=True, slots=True)
class KnownItem:
    """What a source needs to know about an item already seen, to skip or refresh it.

    An item the source's filter left out is known too (``id`` empty, no date), so its
    article is not fetched again on every run.
    """

    id: str
    url: str
    listing_hash: str
    published: datetime | None


class Change(StrEnum):
    """What storing one item did."""

    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DUPLICATE = "duplicate"  # the same story already stored under another address or source


@dataclass(frozen=True, slots=True)
class StoreOutcome:
    """What storing one item did, and the row it went to."""

    change: Change
    item_id: str


@dataclass(frozen=True, slots=True)
class SourceResult:
    """What one source did in one run: reported, stored, and turned into an exit code."""

    name: str
    ok: bool
    pages: int = 0
    not_modified: int = 0
    found: int = 0
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    filtered: int = 0  # left out by sources.filter
    duration: float = 0.0
    error: str = ""
    warnings: tuple[str, ...] = ()
    #: Cut short on request (SIGTERM, Ctrl-C): neither a success nor a failure of the
    #: source, so its health (failures in a row, last success) is left as it was.
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class RunReport:
    """One fetch run over every enabled source: when it ran and each source's result."""

    started: datetime
    finished: datetime
    sources: tuple[SourceResult, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.sources)

    @property
    def failed(self) -> tuple[SourceResult, ...]:
        return tuple(r for r in self.sources if not r.ok)


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What a publish wrote (paths whose bytes changed), kept, and pinged."""

    written: tuple[str, ...]  # paths (relative to the publish folder) whose bytes changed
    unchanged: int
    pinged: tuple[str, ...] = ()
    ping_failures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DigestRecord:
    """A digest as the store records it. ``status``: one of the stored lifecycle states,
    SENDING (deliveries still due), SENT (every delivery is final), or SKIPPED (nothing new,
    or nobody to send to)."""

    id: int
    created: datetime  # when it was made: the Date of its messages and its schedule mark
    since: datetime | None  # items first seen after this ...
    cutoff: datetime  # ... and up to this
    status: DigestState
    items: int  # items shown
    more: int  # new items left out, linked instead
    finished: datetime | None
    note: str = ""  # why it was skipped; of one being sent, why its last send stopped


@dataclass(frozen=True, slots=True)
class DigestOutcome:
    """What a digest step did. ``status``: where it left the digest, SENT (every delivery
    final), PARTIAL (some left pending for the next run, or stopped; its value is
    'incomplete') or SKIPPED (nothing to send)."""

    status: DigestState
    digest_id: int
    items: int  # items selected
    more: int
    note: str = ""
    delivery: DeliveryReport | None = None

    @property
    def ok(self) -> bool:
        """False when some deliveries failed or the send stopped on an error."""
        d = self.delivery
        return d is None or (not d.error and d.failed == 0)


@dataclass(frozen=True, slots=True)
class CycleReport:
    """One cycle (``iomfeed run``, or a scheduled one under ``serve``)."""

    run: RunReport
    published: PublishReport | None
    digest: DigestOutcome | None  # None: not due
    alerts: tuple[str, ...] = ()  # operator alerts sent
    bounces: BounceReport | None = None  # None: [bounces] not configured
    publish_error: str = ""  # why the feeds could not be written ('' when they were)

    @property
    def ok(self) -> bool:
        return (
            not self.publish_error
            and self.run.ok
            and (self.digest is None or self.digest.ok)
            and (self.bounces is None or self.bounces.ok)
        )


@dataclass(frozen=True, slots=True)
class MissingArticle:
    """A listed article that answered 404 (or 410), kept with its listing entry so that it
    can be tried again on later runs even when the listing does not change.

    ``next_try`` is ``None`` once iomfeed has given up on it: it is then fetched again only
    if its listing entry changes.
    """

    url: str  # canonical
    source: str
    link: str  # as the listing gives it
    title: str
    summary_html: str
    date_text: str
    image_url: str
    listing_hash: str
    first_missing: datetime
    last_try: datetime
    attempts: int  # requests that answered 404/410 so far
    status: int  # the last one's HTTP status
    next_try: datetime | None

    def due(self, now: datetime) -> bool:
        return self.next_try is not None and self.next_try <= now
