"""Items: reading what is stored, and storing a normalised item (new, updated or duplicate).

Identity rules live in ``dedup.py``; this module applies them and keeps each item's history.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from ..dedup import Candidate, content_hash, find_near_duplicate
from ..models import Change, DateSource, Item, KnownItem, StoredItem, StoreOutcome
from ..normalize import title_key
from .base import StoreBase, parse, utc
from .records import IndexEntry, ItemLink

log = logging.getLogger(__name__)

ITEM_COLUMNS = (
    "id, url, source, title, summary_html, content_html, published, date_source, updated,"
    " first_seen, last_seen, image_url, image_alt, categories, language, author, content_hash,"
    " listing_hash, date_note"
)


def entry_updated(published: datetime, modified: datetime | None, now: datetime) -> datetime:
    """An entry's ``updated`` when it is first stored: the source's own modification time
    (but never before ``published``, nor after ``now``), else its publication time. Once
    stored, it moves only when iomfeed sees the content change."""
    return max(published, min(modified, now)) if modified is not None else published


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
        if source is None:
            return int(self.db.execute("SELECT count(*) FROM items").fetchone()[0])
        return int(
            self.db.execute("SELECT count(*) FROM items WHERE source = ?", (source,)).fetchone()[0]
        )

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

    def upsert(
        self, item: Item, now: datetime, *, rank: Mapping[str, int] | None = None
    ) -> StoreOutcome:
        """Store a normalised item: insert, update, or recognise it as a duplicate.

        ``rank`` orders sources: when two sources give the same canonical URL, the higher
        ranked one's content is kept (a scraped article beats a feed's teaser), whichever
        ran first. Equal ranks: the first stays.
        """
        rank = rank or {}
        with self.transaction() as db:
            outcome = self._upsert(db, item, now, rank)
            if outcome.change in (Change.NEW, Change.UPDATED):
                # Why the date found was not used (a date in the future), or "" again.
                db.execute(
                    "UPDATE items SET date_note = ? WHERE id = ?", (item.date_note, outcome.item_id)
                )
            for alias in item.also_at:
                if alias != item.url:
                    db.execute(
                        "INSERT INTO item_links (url, item_id, source, reason, first_seen,"
                        " listing_hash) SELECT ?, ?, ?, 'alias', ?, ?"
                        " WHERE NOT EXISTS (SELECT 1 FROM items WHERE url = ?)"
                        " ON CONFLICT (url) DO UPDATE SET listing_hash = excluded.listing_hash",
                        (alias, outcome.item_id, item.source, utc(now), item.listing_hash, alias),
                    )
            return outcome

    def _upsert(
        self, db: sqlite3.Connection, item: Item, now: datetime, rank: Mapping[str, int]
    ) -> StoreOutcome:
        row = db.execute(
            "SELECT id, source, published, date_source, first_seen, content_hash,"
            " content_html, listing_hash FROM items WHERE url = ?",
            (item.url,),
        ).fetchone()
        if row is None:
            link = db.execute(
                "SELECT item_id FROM item_links WHERE url = ?", (item.url,)
            ).fetchone()
            if link is not None:
                db.execute(
                    "UPDATE item_links SET listing_hash = ? WHERE url = ?",
                    (item.listing_hash, item.url),
                )
                return StoreOutcome(Change.DUPLICATE, link["item_id"])
            published = item.published or now
            twin = find_near_duplicate(
                item.title, published, item.source, self._candidates(published)
            )
            if twin is not None:
                db.execute(
                    "INSERT INTO item_links (url, item_id, source, reason, first_seen,"
                    " listing_hash) VALUES (?, ?, ?, 'title', ?, ?)",
                    (item.url, twin.id, item.source, utc(now), item.listing_hash),
                )
                return StoreOutcome(Change.DUPLICATE, twin.id)
            return StoreOutcome(Change.NEW, self._insert(db, item, now))
        if row["source"] != item.source:
            if rank.get(item.source, 0) <= rank.get(row["source"], 0):
                return StoreOutcome(Change.DUPLICATE, row["id"])
            db.execute("UPDATE items SET source = ? WHERE id = ?", (item.source, row["id"]))
            log.info("%s now taken from %s instead of %s", item.url, item.source, row["source"])
        return StoreOutcome(self._update(db, row, item, now), row["id"])

    def _candidates(self, published: datetime) -> list[Candidate]:
        from ..dedup import NEAR_DUPLICATE_WINDOW

        rows = self.db.execute(
            "SELECT id, title_key, published, source FROM items"
            " WHERE published_utc BETWEEN ? AND ?",
            (utc(published - NEAR_DUPLICATE_WINDOW), utc(published + NEAR_DUPLICATE_WINDOW)),
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

    def _insert(self, db: sqlite3.Connection, item: Item, now: datetime) -> str:
        item_id = self._mint_id(db, item.url, now)
        if item.published is not None:
            published, date_source = item.published, item.date_source or DateSource.FIRST_SEEN
        else:
            published, date_source = now, DateSource.FIRST_SEEN
        digest = self._hash(item, published)
        db.execute(
            "INSERT INTO items (id, url, source, title, title_key, summary_html, content_html,"
            " published, published_utc, date_source, updated, first_seen, last_seen, image_url,"
            " image_alt, categories, language, author, content_hash, listing_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item_id,
                item.url,
                item.source,
                item.title,
                title_key(item.title),
                item.summary_html,
                item.content_html,
                published.isoformat(),
                utc(published),
                date_source.value,
                utc(entry_updated(published, item.modified, now)),
                utc(now),
                utc(now),
                item.image_url,
                item.image_alt,
                json.dumps(list(item.categories), ensure_ascii=False),
                item.language,
                item.author,
                digest,
                item.listing_hash,
            ),
        )
        db.execute(
            "INSERT INTO item_history (item_id, content_hash, seen) VALUES (?, ?, ?)",
            (item_id, digest, utc(now)),
        )
        return item_id

    def _update(
        self, db: sqlite3.Connection, row: sqlite3.Row, item: Item, now: datetime
    ) -> Change:
        if item.published is not None:
            published, date_source = item.published, item.date_source or DateSource.FIRST_SEEN
        else:  # no date found again: keep the stored one, never move a first-seen date
            published, date_source = parse(row["published"]), DateSource(row["date_source"])
        if not item.content_html and row["content_html"]:
            # A page that suddenly has no body is a scraping fault, not an edit: keep the body.
            item = dataclasses.replace(item, content_html=row["content_html"])
        digest = self._hash(item, published)
        if digest == row["content_hash"]:
            db.execute(
                "UPDATE items SET last_seen = ?, listing_hash = ? WHERE id = ?",
                (utc(now), item.listing_hash or row["listing_hash"], row["id"]),
            )
            return Change.UNCHANGED
        db.execute(
            "UPDATE items SET title = ?, title_key = ?, summary_html = ?, content_html = ?,"
            " published = ?, published_utc = ?, date_source = ?, updated = ?, last_seen = ?,"
            " image_url = ?, image_alt = ?, categories = ?, language = ?, author = ?,"
            " content_hash = ?, listing_hash = ? WHERE id = ?",
            (
                item.title,
                title_key(item.title),
                item.summary_html,
                item.content_html,
                published.isoformat(),
                utc(published),
                date_source.value,
                utc(max(published, now)),
                utc(now),
                item.image_url,
                item.image_alt,
                json.dumps(list(item.categories), ensure_ascii=False),
                item.language,
                item.author,
                digest,
                item.listing_hash or row["listing_hash"],
                row["id"],
            ),
        )
        db.execute(
            "INSERT OR REPLACE INTO item_history (item_id, content_hash, seen) VALUES (?, ?, ?)",
            (row["id"], digest, utc(now)),
        )
        return Change.UPDATED

    @staticmethod
    def _hash(item: Item, published: datetime) -> str:
        return content_hash(
            title=item.title,
            summary_html=item.summary_html,
            content_html=item.content_html,
            published=published,
            image_url=item.image_url,
            categories=item.categories,
            language=item.language,
        )

    def categories(self) -> list[str]:
        """Every category used by a stored item, sorted."""
        rows = self.db.execute(
            "SELECT DISTINCT c.value FROM items, json_each(items.categories) AS c ORDER BY 1"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def sources(self) -> list[str]:
        return [
            str(r[0])
            for r in self.db.execute("SELECT DISTINCT source FROM items ORDER BY 1").fetchall()
        ]

    def items_in_category(self, category: str, *, limit: int) -> list[StoredItem]:
        rows = self.db.execute(
            f"SELECT {ITEM_COLUMNS} FROM items WHERE EXISTS (SELECT 1 FROM"
            " json_each(items.categories) AS c WHERE c.value = ?)"
            " ORDER BY published_utc DESC, id LIMIT ?",
            (category, limit),
        )
        return [item_from_row(r) for r in rows]

    def item_index(self) -> list[IndexEntry]:
        """Id, local published time, content hash and updated time of every item, newest first.

        Cheap: enough to decide which archive pages changed without loading any content.
        """
        rows = self.db.execute(
            "SELECT id, published, content_hash, updated FROM items ORDER BY published_utc DESC, id"
        )
        return [IndexEntry(r[0], r[1], r[2], r[3]) for r in rows]

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
