"""Items: reading what is stored, and applying the decider's intents for an item.

What is new, updated or a duplicate is decided in ``decide.py`` (pure); this module reads the
stored state the decider needs (:meth:`ItemsMixin.stored_state`) and applies each intent inside
the caller's transaction, keeping every item's content history.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .. import normalize
from ..models import DateSource, Item, KnownItem, StoredItem
from .base import StoreBase, parse, utc
from .records import IndexEntry, ItemLink, MonthSummary

if TYPE_CHECKING:  # the fetch path's records: a publish or a digest never loads them
    from ..dedup import Candidate
    from ..intents import Duplicate, NewItem, StoredState, Unchanged, UpdateItem

log = logging.getLogger(__name__)

ITEM_COLUMNS = (
    "id, url, source, title, summary_html, content_html, published, date_source, updated,"
    " first_seen, last_seen, image_url, image_alt, categories, language, author, content_hash,"
    " listing_hash, date_note"
)
#: The same, each named by its table (for a join).
_ITEMS_COLUMNS = ", ".join(f"items.{c.strip()}" for c in ITEM_COLUMNS.split(","))


def item_from_row(r: sqlite3.Row) -> StoredItem:
    return StoredItem(
        id=r["id"],
        url=r["url"],
        source=r["source"],
        title=r["title"],
        summary_html=r["summary_html"],
        content_html=r["content_html"],
        published=parse(r["published"]),
        date_source=DateSource(r["date_source"]),
        updated=parse(r["updated"]),
        first_seen=parse(r["first_seen"]),
        last_seen=parse(r["last_seen"]),
        image_url=r["image_url"],
        image_alt=r["image_alt"],
        categories=tuple(json.loads(r["categories"])),
        language=r["language"],
        author=r["author"],
        content_hash=r["content_hash"],
        listing_hash=r["listing_hash"],
        date_note=r["date_note"],
    )


class ItemsMixin(StoreBase):
    """Items, their other addresses and their content history."""

    def known(self, url: str, *, filter_hash: str = "") -> KnownItem | None:
        """The stored item at this canonical URL (or one of its recorded other addresses).

        Failing that, an item left out under the same filter (``filter_hash``): an empty id.
        """
        row = self.db.execute(
            "SELECT id, url, listing_hash, published FROM items WHERE url = ?", (url,)
        ).fetchone()
        if row is None:
            row = self.db.execute(
                "SELECT i.id, l.url, l.listing_hash, i.published FROM item_links l"
                " JOIN items i ON i.id = l.item_id WHERE l.url = ?",
                (url,),
            ).fetchone()
        if row is None:
            skip = self.db.execute(
                "SELECT url, listing_hash FROM skipped WHERE url = ? AND filter_hash = ?",
                (url, filter_hash),
            ).fetchone()
            return None if skip is None else KnownItem("", skip["url"], skip["listing_hash"], None)
        return KnownItem(row["id"], row["url"], row["listing_hash"], parse(row["published"]))

    def remember_skipped(
        self, url: str, source: str, listing_hash: str, filter_hash: str, now: datetime
    ) -> None:
        """Note an item the source's filter left out, so it is not fetched again needlessly."""
        self.db.execute(
            "INSERT INTO skipped (url, source, listing_hash, filter_hash, seen)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (url) DO UPDATE SET"
            " listing_hash = excluded.listing_hash, filter_hash = excluded.filter_hash,"
            " seen = excluded.seen",
            (url, source, listing_hash, filter_hash, utc(now)),
        )

    def recent(self, source: str, since: datetime) -> list[KnownItem]:
        """Items of ``source`` published at or after ``since``, newest first."""
        rows = self.db.execute(
            "SELECT id, url, listing_hash, published FROM items"
            " WHERE source = ? AND published_utc >= ? AND date_source != ?"
            " ORDER BY published_utc DESC, id",
            (source, utc(since), DateSource.FIRST_SEEN.value),
        ).fetchall()
        return [
            KnownItem(r["id"], r["url"], r["listing_hash"], parse(r["published"])) for r in rows
        ]

    def count(self, source: str | None = None) -> int:
        """The items stored (of ``source``), from the counts the schema's triggers keep: no
        scan of the items, whatever their number."""
        if source is None:
            return int(self.db.execute("SELECT coalesce(sum(n), 0) FROM item_counts").fetchone()[0])
        row = self.db.execute("SELECT n FROM item_counts WHERE source = ?", (source,)).fetchone()
        return 0 if row is None else int(row[0])

    def items(self, *, limit: int | None = None, source: str | None = None) -> list[StoredItem]:
        """Stored items, newest published first."""
        sql = f"SELECT {ITEM_COLUMNS} FROM items"
        args: list[object] = []
        if source is not None:
            sql += " WHERE source = ?"
            args.append(source)
        sql += " ORDER BY published_utc DESC, id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [item_from_row(r) for r in self.db.execute(sql, args)]

    def get(self, item_id: str) -> StoredItem | None:
        row = self.db.execute(
            f"SELECT {ITEM_COLUMNS} FROM items WHERE id = ?", (item_id,)
        ).fetchone()
        return None if row is None else item_from_row(row)

    def links(self, item_id: str) -> list[ItemLink]:
        """Other addresses recorded for an item."""
        rows = self.db.execute(
            "SELECT url, source, reason FROM item_links WHERE item_id = ? ORDER BY url",
            (item_id,),
        ).fetchall()
        return [ItemLink(r["url"], r["source"], r["reason"]) for r in rows]

    # ------------------------------------------------------------------ items: writing

    # ------------------------------------------------------------------ items: applying intents
    # The decider (iomfeed.decide) settles what to do; these only read its input and do it.
    # The pipeline calls them inside one transaction per source page.

    def stored_state(self, item: Item, now: datetime) -> StoredState:
        """What is stored for a normalised item: the item at its canonical URL, else the
        item that URL is another address of, else the items of other sources it may be a
        near duplicate of (see :meth:`_candidates`)."""
        from ..intents import StoredRow, StoredState

        row = self.db.execute(
            "SELECT id, source, published, date_source, content_hash, content_html,"
            " listing_hash FROM items WHERE url = ?",
            (item.url,),
        ).fetchone()
        if row is not None:
            return StoredState(
                row=StoredRow(
                    id=row["id"],
                    source=row["source"],
                    published=parse(row["published"]),
                    date_source=DateSource(row["date_source"]),
                    content_hash=row["content_hash"],
                    content_html=row["content_html"],
                    listing_hash=row["listing_hash"],
                )
            )
        link = self.db.execute(
            "SELECT item_id FROM item_links WHERE url = ?", (item.url,)
        ).fetchone()
        if link is not None:
            return StoredState(linked_id=link["item_id"])
        return StoredState(candidates=tuple(self._candidates(item, now)))

    def _candidates(self, item: Item, now: datetime) -> list[Candidate]:
        """The stored items of other sources a new item may be the same story as.

        A dated item: those published within the near-duplicate window of its date
        (``items_source``, one range per other source), of a title length that can be alike
        enough (:func:`..dedup.title_lengths`). An undated item is matched around
        now, but the stored items dated only by when they were first seen are not "now" for
        matching (a backfill stores thousands at once, all of them the same minute): of
        those, only the ones with the same folded title (``items_title_key``); of the others,
        the dated ones around now (``items_dated``, which leaves the first-seen ones out).
        """
        from ..dedup import NEAR_DUPLICATE_WINDOW, Candidate, title_lengths

        columns = "SELECT id, title_key, published, source FROM items"
        others = "source IN (SELECT source FROM item_counts WHERE source != ? AND n > 0)"
        # (and no title too short or too long to be alike enough: see title_lengths)
        alike = "length(title_key) BETWEEN ? AND ?"
        key = normalize.title_key(item.title)
        around = item.published or now
        window = (utc(around - NEAR_DUPLICATE_WINDOW), utc(around + NEAR_DUPLICATE_WINDOW))
        if item.published is not None:
            rows = self.db.execute(
                f"{columns} WHERE {others} AND published_utc BETWEEN ? AND ? AND {alike}",
                (item.source, *window, *title_lengths(key)),
            ).fetchall()
        else:
            rows = self.db.execute(
                f"{columns} WHERE {others} AND published_utc BETWEEN ? AND ? AND {alike}"
                f" AND date_source != '{DateSource.FIRST_SEEN.value}'",
                (item.source, *window, *title_lengths(key)),
            ).fetchall()
            rows += self.db.execute(
                f"{columns} WHERE title_key = ? AND source != ? AND published_utc BETWEEN ? AND ?"
                f" AND date_source = '{DateSource.FIRST_SEEN.value}'",
                (key, item.source, *window),
            ).fetchall()
        return [
            Candidate(r["id"], r["title_key"], parse(r["published"]), r["source"]) for r in rows
        ]

    def _mint_id(self, db: sqlite3.Connection, url: str, now: datetime) -> str:
        parts = urlsplit(url)
        specific = f"{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        base = f"tag:{self.tag_authority},{now.astimezone(UTC):%Y-%m-%d}:{specific}"
        candidate, n = base, 1
        while db.execute("SELECT 1 FROM items WHERE id = ?", (candidate,)).fetchone():
            n += 1
            candidate = f"{base}#{n}"
        return candidate

    def insert_item(self, new: NewItem, now: datetime) -> str:
        """Store a new item under a freshly minted id, and its first history entry."""
        item = new.item
        item_id = self._mint_id(self.db, item.url, now)
        self.db.execute(
            "INSERT INTO items (id, url, source, title, title_key, summary_html, content_html,"
            " published, published_utc, date_source, updated, first_seen, last_seen, image_url,"
            " image_alt, categories, language, author, content_hash, listing_hash, date_note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item_id,
                item.url,
                item.source,
                item.title,
                normalize.title_key(item.title),
                item.summary_html,
                item.content_html,
                new.published.isoformat(),
                utc(new.published),
                new.date_source.value,
                utc(new.updated),
                utc(now),
                utc(now),
                item.image_url,
                item.image_alt,
                json.dumps(list(item.categories), ensure_ascii=False),
                item.language,
                item.author,
                new.content_hash,
                item.listing_hash,
                item.date_note,
            ),
        )
        self.db.execute(
            "INSERT INTO item_history (item_id, content_hash, seen) VALUES (?, ?, ?)",
            (item_id, new.content_hash, utc(now)),
        )
        return item_id

    def update_item(self, change: UpdateItem, now: datetime) -> None:
        """Replace a stored item's fields by an edited version, and note the new hash."""
        item = change.item
        self.db.execute(
            "UPDATE items SET title = ?, title_key = ?, summary_html = ?, content_html = ?,"
            " published = ?, published_utc = ?, date_source = ?, updated = ?, last_seen = ?,"
            " image_url = ?, image_alt = ?, categories = ?, language = ?, author = ?,"
            " content_hash = ?, listing_hash = ?, date_note = ? WHERE id = ?",
            (
                item.title,
                normalize.title_key(item.title),
                item.summary_html,
                item.content_html,
                change.published.isoformat(),
                utc(change.published),
                change.date_source.value,
                utc(change.updated),
                utc(now),
                item.image_url,
                item.image_alt,
                json.dumps(list(item.categories), ensure_ascii=False),
                item.language,
                item.author,
                change.content_hash,
                change.listing_hash,
                item.date_note,
                change.item_id,
            ),
        )
        self.db.execute(
            "INSERT OR REPLACE INTO item_history (item_id, content_hash, seen) VALUES (?, ?, ?)",
            (change.item_id, change.content_hash, utc(now)),
        )

    def touch_item(self, same: Unchanged, now: datetime) -> None:
        """An unchanged item was seen again."""
        self.db.execute(
            "UPDATE items SET last_seen = ?, listing_hash = ? WHERE id = ?",
            (utc(now), same.listing_hash, same.item_id),
        )

    def set_item_source(self, item_id: str, source: str) -> None:
        """A higher-ranked source now provides the item."""
        self.db.execute("UPDATE items SET source = ? WHERE id = ?", (source, item_id))

    def link_duplicate(self, dup: Duplicate, now: datetime) -> None:
        """Record the address of a duplicate with the item it duplicates (or refresh the
        listing fingerprint of an address already recorded)."""
        from ..intents import DuplicateOf

        item = dup.item
        if dup.why is DuplicateOf.ADDRESS:
            self.db.execute(
                "UPDATE item_links SET listing_hash = ? WHERE url = ?",
                (item.listing_hash, item.url),
            )
        elif dup.why is DuplicateOf.TITLE:
            self.db.execute(
                "INSERT INTO item_links (url, item_id, source, reason, first_seen,"
                " listing_hash) VALUES (?, ?, ?, 'title', ?, ?)",
                (item.url, dup.item_id, item.source, utc(now), item.listing_hash),
            )

    def link_aliases(self, item_id: str, item: Item, now: datetime) -> None:
        """Record ``item``'s other addresses (the listing's link) as addresses of ``item_id``,
        unless one is the address of a stored item itself."""
        for alias in item.also_at:
            if alias != item.url:
                self.db.execute(
                    "INSERT INTO item_links (url, item_id, source, reason, first_seen,"
                    " listing_hash) SELECT ?, ?, ?, 'alias', ?, ?"
                    " WHERE NOT EXISTS (SELECT 1 FROM items WHERE url = ?)"
                    " ON CONFLICT (url) DO UPDATE SET listing_hash = excluded.listing_hash",
                    (alias, item_id, item.source, utc(now), item.listing_hash, alias),
                )

    def categories(self) -> list[str]:
        """Every category used by a stored item, sorted (from the counts triggers keep)."""
        rows = self.db.execute(
            "SELECT category FROM item_categories WHERE items > 0 ORDER BY 1"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def sources(self) -> list[str]:
        return [
            str(r[0])
            for r in self.db.execute("SELECT DISTINCT source FROM items ORDER BY 1").fetchall()
        ]

    def items_in_category(self, category: str, *, limit: int) -> list[StoredItem]:
        """The newest ``limit`` items in ``category``, through the index the triggers keep
        (``category_items``): as many rows read as are returned, whatever the store's size."""
        rows = self.db.execute(
            f"SELECT {_ITEMS_COLUMNS} FROM category_items AS c JOIN items ON items.id = c.id"
            " WHERE c.category = ? ORDER BY c.published_utc DESC, c.id LIMIT ?",
            (category, limit),
        )
        return [item_from_row(r) for r in rows]

    def item_index(self, *, limit: int | None = None) -> list[IndexEntry]:
        """Id, local published time, content hash and updated time of every item (or of the
        newest ``limit``), newest first.

        Cheap: enough to decide which archive pages changed without loading any content.
        """
        sql = "SELECT id, published, content_hash, updated FROM items"
        sql += " ORDER BY published_utc DESC, id"
        rows = self.db.execute(sql + " LIMIT ?", (-1 if limit is None else limit,))
        return [IndexEntry(r[0], r[1], r[2], r[3]) for r in rows]

    def item_months(self) -> list[MonthSummary]:
        """Each local month of publication that holds an item, newest first, with its count
        of items and of changes (kept by triggers: one row per month, whatever the store's
        size)."""
        rows = self.db.execute(
            "SELECT month, items, changes FROM item_months WHERE items > 0 ORDER BY month DESC"
        )
        return [MonthSummary(str(r[0]), int(r[1]), int(r[2])) for r in rows]

    def month_index(self, month: str) -> list[IndexEntry]:
        """:meth:`item_index` of the items published in ``month`` (``YYYY-MM``, local)."""
        rows = self.db.execute(
            "SELECT id, published, content_hash, updated FROM items"
            " WHERE substr(published, 1, 7) = ? ORDER BY published_utc DESC, id",
            (month,),
        )
        return [IndexEntry(r[0], r[1], r[2], r[3]) for r in rows]

    def items_in_month(self, month: str) -> list[StoredItem]:
        """The items published in ``month`` (``YYYY-MM``, local), newest first."""
        rows = self.db.execute(
            f"SELECT {ITEM_COLUMNS} FROM items WHERE substr(published, 1, 7) = ?"
            " ORDER BY published_utc DESC, id",
            (month,),
        )
        return [item_from_row(r) for r in rows]

    def item_marks(self, ids: list[str]) -> dict[str, str]:
        """ "content hash,updated" of the items with these ids (those still stored)."""
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for r in self.db.execute(
                f"SELECT id, content_hash, updated FROM items WHERE id IN ({marks})", chunk
            ):
                found[str(r[0])] = f"{r[1]},{r[2]}"
        return found

    def items_by_id(self, ids: list[str]) -> list[StoredItem]:
        """The items with these ids, newest first."""
        found: list[StoredItem] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.extend(
                item_from_row(r)
                for r in self.db.execute(
                    f"SELECT {ITEM_COLUMNS} FROM items WHERE id IN ({marks})", chunk
                )
            )
        order = {item_id: n for n, item_id in enumerate(ids)}
        return sorted(found, key=lambda i: order[i.id])
