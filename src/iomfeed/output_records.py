"""The records of what iomfeed puts out: feed documents, digests as they are chosen and
rendered, and the delivery ledger's rows and reports.

Kept apart from ``models`` so that a command that neither publishes nor sends (a quiet
``iomfeed run``, ``status``, ``items``) does not build these classes at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .digest.states import DeliveryStatus
    from .models import StoredItem


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
class DigestPlan:
    """What a send would do now (``iomfeed digest --dry-run``); nothing is recorded.

    ``resuming``: a digest is being sent and ``content`` is what it holds, ``totals`` its
    ledger; otherwise ``content`` is the next one's selection, ``due`` says whether the
    schedule makes it due now and ``skip`` why it would be skipped, the lifecycle's own reason
    (nothing new under ``digest.skip_empty``, nobody to send it to), or "" (``skipped_empty``:
    the reason is "nothing new"; then nothing is rendered). ``recipients``: who would get it,
    per language; ``rendered``: the digest per language. ``segments``: for a new digest,
    recipients per (language, category segment) that would get a message, and under
    ``("", ())`` those skipped for having nothing new in their categories; ``paused``: the
    active subscribers who paused the digest (not sent to, not counted in ``recipients``)."""

    content: DigestContent
    resuming: bool
    due: bool
    totals: Mapping[str, int]
    recipients: Mapping[str, int]
    skipped_empty: bool
    rendered: Mapping[str, RenderedDigest]
    skip: str = ""
    segments: Mapping[tuple[str, tuple[str, ...]], int] = field(default_factory=dict)
    paused: int = 0
