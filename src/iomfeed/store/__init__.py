"""The SQLite store: one file, WAL mode, versioned migrations, split by area.

========================  =====================================================
module                    holds
========================  =====================================================
``store/schema.py``       the numbered migrations and the code that applies them
``store/pages.py``        the step of the summaries a publish plans from
``store/base.py``         the connection, transactions, settings, error wrapping
``store/items.py``        items, their other addresses, their content history
``store/sources.py``      HTTP validators, articles that answered 404, backfills
``store/published.py``    which files were published from what, feed ids, pings
``store/subscribers.py``  the list
``store/forms.py``        the web forms' rate-limit counts
``store/digests.py``      digests and the delivery ledger
``store/bounces.py``      the bounce log (bounces, complaints read after the send)
``store/sent.py``         messages sent, by time, for the relay's quotas
``store/runs.py``         fetch runs per source, operator alerts
``store/records.py``      the small typed rows these return
``store/explain.py``      why a database cannot be opened, in words
========================  =====================================================

:class:`Store` is all of them on one connection. Every write is its own transaction, or part
of one the caller opens with ``Store.transaction`` (the fetch path stores each listing page in
one), so a crash loses at most the page in hand. No module outside this package
imports ``sqlite3``: every database error leaves the store as a
:class:`~iomfeed.errors.StoreError` that names the file. The store never fetches or parses.
"""

from __future__ import annotations

from .base import StoreBase, guard
from .bounces import BouncesMixin
from .digests import DigestsMixin
from .forms import FormsMixin
from .items import ItemsMixin
from .published import PublishedMixin
from .records import (
    AlertState,
    IndexEntry,
    ItemLink,
    MonthSummary,
    PublishedFile,
    SavedValidators,
    SourceRunSummary,
)
from .runs import RunsMixin
from .schema import MIGRATIONS
from .sent import SentMailMixin
from .sources import SourceStateMixin
from .subscribers import SubscribersMixin

__all__ = [
    "MIGRATIONS",
    "AlertState",
    "IndexEntry",
    "ItemLink",
    "MonthSummary",
    "PublishedFile",
    "SavedValidators",
    "SourceRunSummary",
    "Store",
]


class Store(
    ItemsMixin,
    SourceStateMixin,
    PublishedMixin,
    SubscribersMixin,
    FormsMixin,
    DigestsMixin,
    BouncesMixin,
    SentMailMixin,
    RunsMixin,
    StoreBase,
):
    """Items, subscribers, digests and run history in one SQLite file. Use as a context
    manager or call close()."""


guard(Store)
