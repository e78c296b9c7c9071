"""Small typed rows the store returns besides the pipeline's records (``models.py``).

They are named tuples: typed, immutable, and unpacked like the plain tuples they replace.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class ItemLink(NamedTuple):
    """Another address (or source) of a stored story."""

    url: str
    source: str
    reason: str  # 'title': a near duplicate; 'alias': a listing address


class IndexEntry(NamedTuple):
    """What deciding which archive pages changed needs of an item, without its content."""

    id: str
    published: str  # ISO 8601 with the source's offset
    content_hash: str
    updated: str  # fixed-width UTC


class MonthSummary(NamedTuple):
    """A local month of publication: how many items it holds, and a count that every
    change of one of them moves (never reset), so an unchanged month is told by one row."""

    month: str  # YYYY-MM
    items: int
    changes: int


class PublishedFile(NamedTuple):
    """What a generated file was made from, and the file as written."""

    fingerprint: str
    size: int
    mtime_ns: int


class SavedValidators(NamedTuple):
    """The HTTP validators last seen for a URL, as the store keeps them (the ones a page
    brings to be kept are :class:`iomfeed.sources.records.Validators`)."""

    etag: str | None
    last_modified: str | None


class SourceRunSummary(NamedTuple):
    """One run of one source, as ``status`` reads its history."""

    started: datetime
    ok: bool
    error: str


class AlertState(NamedTuple):
    """An operator alert's state: whether the problem is still there, when it was mailed."""

    active: bool
    last_sent: datetime | None


class QueuedSignUp(NamedTuple):
    """A web sign-up waiting for the background worker (``signup_queue``)."""

    id: int
    address: str
    name: str
    language: str
    categories: tuple[str, ...]
    ip: str
    #: taken up again from a worker that died: its message may have been counted as going
    #: and not gone, so it is sent whatever the resend limits say (a second, never none)
    retaken: bool = False
