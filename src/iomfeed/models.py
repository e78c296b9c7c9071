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

from .digest.lifecycle import DeliveryStatus, DigestState

if TYPE_CHECKING:
    from .bounces.process import BounceReport


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


@dataclass(frozen=True, slots=True)
class RunReport:
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
class FeedDoc:
    """One feed document to render (a subscription feed or an archive page), all URLs absolute.

    The same record renders as Atom, RSS and JSON Feed; ``rss_url`` / ``json_url`` are empty
    for documents that exist only as Atom (archives).
    """

    key: str  # "main", "category/local", "archive/2024-06"
    title: str
    description: str
    feed_id: str  # permanent Atom id of the logical feed
    atom_url: str
    rss_url: str
    json_url: str
    home_url: str  # the site the news comes from
    index_url: str  # the published index.html
    language: str
    author: str
    items: tuple[StoredItem, ...]
    updated: datetime  # the newest change among the items, never the build time
    hub: str = ""
    prev_archive: str = ""  # RFC 5005: the next older archive document
    current_url: str = ""  # RFC 5005: for an archive, the subscription feed
    is_archive: bool = False


@dataclass(frozen=True, slots=True)
class PublishReport:
    written: tuple[str, ...]  # paths (relative to the publish folder) whose bytes changed
    unchanged: int
    pinged: tuple[str, ...] = ()
    ping_failures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One story as a digest shows it: plain-text summary, absolute links."""

    id: str
    title: str
    url: str
    published: datetime
    summary: str  # plain text, already shortened: its paragraphs, one a line
    image_url: str
    image_alt: str
    category: str  # "" when the item has none


@dataclass(frozen=True, slots=True)
class DigestContent:
    """What one digest holds, before rendering: chosen by ``digest.select`` from the store.

    ``entries`` are newest first and already capped; ``more`` counts the new items left out.
    ``digest_id`` is 0 for a preview or dry run (nothing recorded). ``first``: the list's
    first digest, which shows only the newest stories of the whole history (``more`` then
    counts the older ones, which are not "new" to anybody but count as handled).
    """

    digest_id: int
    created: datetime
    since: datetime | None  # items first seen after this (None: the first digest)
    entries: tuple[DigestEntry, ...]
    more: int = 0
    left_out: tuple[str, ...] = ()  # ids of the new items counted in ``more``
    #: The items of ``left_out`` themselves, in its order (newest first): a category
    #: segment's stories beyond the whole digest's cap come from them (``digest.segments``).
    rest: tuple[StoredItem, ...] = ()
    first: bool = False
    #: The name of its web page without the language (``digest.pages.page_stem``), known
    #: before it is sent; "" for one made by hand: the day of ``created`` is used.
    page: str = ""


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    """A digest rendered and inlined once for one language.

    ``html`` and ``text`` hold the space-free tokens of ``digest.render.TOKENS``; the mailer
    fills them per subscriber. ``greeting`` / ``greeting_no_name`` are the two forms of the
    greeting token's value (``{name}`` in the first is replaced by the subscriber's name).
    """

    language: str
    subject: str  # header-safe: one line, no control characters, capped
    html: str
    text: str
    greeting: str
    greeting_no_name: str
    shown: int  # entries in the message
    more: int  # new items not shown (linked to the index page)
    html_bytes: int  # size of the HTML part with the longest token values


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
    note: str = ""  # why it was skipped


@dataclass(frozen=True, slots=True)
class Delivered:
    """A message the server took whose 'sent' is not written yet: it is written with the
    next row's 'sending', in one transaction."""

    subscriber_id: int
    reply: str
    at: datetime
    reset_failures: bool  # False when the subscriber has no bounce streak to end


@dataclass(frozen=True, slots=True)
class Delivery:
    """One ledger row: a digest for one subscriber, and what became of it."""

    digest_id: int
    subscriber_id: int
    address: str
    name: str
    language: str
    subscriber_status: str
    status: DeliveryStatus
    attempts: int
    ambiguous: bool  # found 'sending' after a crash: it may or may not have gone out
    reply: str  # the last SMTP reply (or error)
    subscriber_failures: int = 0  # the subscriber's permanent failures in a row so far
    #: The category segment frozen in the row when the digest was made (``digest.segments``:
    #: folded names, sorted; empty: every category).
    segment: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one send did, and the ledger's totals for the digest afterwards."""

    digest_id: int
    sent: int = 0  # delivered in this run
    failed: int = 0  # permanent failures in this run
    deferred: int = 0  # temporary failures left pending for the next run
    skipped: int = 0  # subscribers who left before their turn
    bounced: int = 0  # subscribers marked bounced in this run
    resent_ambiguous: int = 0  # in flight during a crash, sent again with the same Message-ID
    interrupted: bool = False  # stopped by a signal before the end
    totals: Mapping[str, int] = field(default_factory=dict)  # status -> rows, whole digest
    finished: bool = False  # every delivery final: the digest has gone out
    error: str = ""  # why the send stopped early (the relay unreachable, the sender refused)
    #: the relay's quota was reached (mail.hourly_limit, mail.daily_limit): why, and when
    #: the rest may go; the rows left stay pending, and that is not an error
    quota_note: str = ""
    quota_frees_at: datetime | None = None


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
class DigestPlan:
    """What a send would do now (``iomfeed digest --dry-run``); nothing is recorded.

    ``resuming``: a digest is being sent and ``content`` is what it holds, ``totals`` its
    ledger; otherwise ``content`` is the next one's selection, ``due`` says whether the
    schedule makes it due now and ``skip`` why it would be skipped, the lifecycle's own reason
    (nothing new under ``digest.skip_empty``, nobody to send it to), or "" (``skipped_empty``:
    the reason is "nothing new"; then nothing is rendered). ``recipients``: who would get it,
    per language; ``rendered``: the digest per language. ``segments``: for a new digest,
    recipients per (language, category segment) that would get a message, and under
    ``("", ())`` those skipped for having nothing new in their categories."""

    content: DigestContent
    resuming: bool
    due: bool
    totals: Mapping[str, int]
    recipients: Mapping[str, int]
    skipped_empty: bool
    rendered: Mapping[str, RenderedDigest]
    skip: str = ""
    segments: Mapping[tuple[str, tuple[str, ...]], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CycleReport:
    """One cycle (``iomfeed run``, or a scheduled one under ``serve``)."""

    run: RunReport
    published: PublishReport | None
    digest: DigestOutcome | None  # None: not due
    alerts: tuple[str, ...] = ()  # operator alerts sent
    bounces: BounceReport | None = None  # None: [bounces] not configured

    @property
    def ok(self) -> bool:
        return (
            self.run.ok
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
