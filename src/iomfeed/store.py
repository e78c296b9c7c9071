"""The SQLite store: items with stable identity, their other addresses, HTTP validators, runs.

One file, WAL mode, versioned migrations (``PRAGMA user_version``). Every write is its own
transaction, so a crash loses at most the item in hand. Identity rules live in ``dedup.py``;
this module applies them and keeps history. It never fetches or parses anything.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from .dedup import Candidate, content_hash, find_near_duplicate
from .digest.lifecycle import DeliveryStatus, DigestState
from .errors import StoreError
from .models import (
    Change,
    DateSource,
    Delivery,
    DigestRecord,
    Item,
    KnownItem,
    MissingArticle,
    SourceResult,
    StoredItem,
    StoreOutcome,
)
from .normalize import title_key
from .subscribers import Subscriber

log = logging.getLogger(__name__)

# Each entry moves the schema from version i to i + 1. Append only; never edit a shipped step.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE items (
        id TEXT PRIMARY KEY,            -- tag: URI, minted once
        url TEXT NOT NULL UNIQUE,       -- canonical URL, the dedup key
        source TEXT NOT NULL,
        title TEXT NOT NULL,
        title_key TEXT NOT NULL,
        summary_html TEXT NOT NULL,
        content_html TEXT NOT NULL,
        published TEXT NOT NULL,        -- ISO 8601 with the source's offset
        published_utc TEXT NOT NULL,    -- for ordering
        date_source TEXT NOT NULL,
        updated TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        image_url TEXT NOT NULL,
        image_alt TEXT NOT NULL,
        categories TEXT NOT NULL,       -- JSON array
        language TEXT NOT NULL,
        author TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        listing_hash TEXT NOT NULL
    );
    CREATE INDEX items_published ON items (published_utc DESC, id);
    CREATE INDEX items_title_key ON items (title_key);
    CREATE INDEX items_source ON items (source, published_utc);
    CREATE TABLE item_links (           -- other addresses or sources of a stored story
        url TEXT PRIMARY KEY,
        item_id TEXT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,           -- 'title': near duplicate; 'alias': listing address
        first_seen TEXT NOT NULL,
        listing_hash TEXT NOT NULL      -- of this address's own listing entry
    );
    CREATE TABLE item_history (         -- every content version an item has had
        item_id TEXT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
        content_hash TEXT NOT NULL,
        seen TEXT NOT NULL,
        PRIMARY KEY (item_id, content_hash)
    );
    CREATE TABLE skipped (              -- left out by a source's filter: not fetched again
        url TEXT PRIMARY KEY,           -- while its listing entry and the filter stay the same
        source TEXT NOT NULL,
        listing_hash TEXT NOT NULL,
        filter_hash TEXT NOT NULL,
        seen TEXT NOT NULL
    );
    CREATE TABLE http_validators (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        saved TEXT NOT NULL
    );
    CREATE TABLE source_state (
        name TEXT PRIMARY KEY,
        backfilled TEXT,                -- when a full walk of the listing last completed
        filter_hash TEXT NOT NULL       -- under which filter (a new filter walks again)
    );
    CREATE TABLE published_files (      -- every generated file and what it was made from
        path TEXT PRIMARY KEY,          -- relative to the publish folder
        fingerprint TEXT NOT NULL,      -- of its inputs (archives) or of its bytes
        size INTEGER NOT NULL,          -- the file as written, to notice it was replaced
        mtime_ns INTEGER NOT NULL
    );
    CREATE TABLE feed_ids (             -- permanent Atom feed ids, minted once
        key TEXT PRIMARY KEY,
        id TEXT NOT NULL
    );
    CREATE TABLE websub_pending (       -- hub pings that failed, retried next run
        feed_url TEXT PRIMARY KEY,
        since TEXT NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        ok INTEGER NOT NULL
    );
    CREATE TABLE source_runs (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        ok INTEGER NOT NULL,
        pages INTEGER NOT NULL,
        not_modified INTEGER NOT NULL,
        found INTEGER NOT NULL,
        new INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        duplicates INTEGER NOT NULL,
        filtered INTEGER NOT NULL,
        duration REAL NOT NULL,
        error TEXT NOT NULL,
        warnings TEXT NOT NULL,         -- JSON array
        PRIMARY KEY (run_id, source)
    );
    """,
    """
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE COLLATE NOCASE,
        name TEXT NOT NULL,
        language TEXT NOT NULL CHECK (language IN ('en', 'sq')),
        status TEXT NOT NULL CHECK (status IN ('active', 'unsubscribed', 'bounced')),
        subscribed TEXT NOT NULL,
        left_at TEXT,
        reason TEXT NOT NULL DEFAULT ''  -- why they left
    );
    CREATE INDEX subscribers_status ON subscribers (status, id);
    """,
    """
    CREATE TABLE digests (
        id INTEGER PRIMARY KEY,
        created TEXT NOT NULL,          -- the Date of its messages; the schedule's mark
        since TEXT,                     -- items first seen after this ...
        cutoff TEXT NOT NULL,           -- ... and up to this
        status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'skipped')),
        items INTEGER NOT NULL,
        more INTEGER NOT NULL,
        finished TEXT,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE digest_items (         -- what a digest shows, frozen for a resumed send
        digest_id INTEGER NOT NULL REFERENCES digests (id),
        position INTEGER NOT NULL,
        item_id TEXT NOT NULL REFERENCES items (id),
        PRIMARY KEY (digest_id, position)
    );
    CREATE TABLE deliveries (           -- the ledger: one row per (digest, subscriber)
        digest_id INTEGER NOT NULL REFERENCES digests (id),
        subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
        status TEXT NOT NULL
            CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        ambiguous INTEGER NOT NULL DEFAULT 0,
        reply TEXT NOT NULL DEFAULT '',
        updated TEXT NOT NULL,
        PRIMARY KEY (digest_id, subscriber_id)
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_status ON deliveries (digest_id, status);
    -- consecutive permanent failures; the subscriber is marked bounced after mail.bounce_after
    ALTER TABLE subscribers ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    CREATE TABLE alerts (               -- operator alerts: at most one a day per problem
        problem TEXT PRIMARY KEY,       -- "source:<name>:failing", "digest:<id>:failed", ...
        active INTEGER NOT NULL,        -- the problem is still there (a recovery is news)
        last_sent TEXT,                 -- when it was last mailed
        detail TEXT NOT NULL
    );
    CREATE INDEX source_runs_source ON source_runs (source, run_id);
    """,
    """
    -- issue 9 (sources): why an item's own date was not used, and articles that answered 404
    ALTER TABLE items ADD COLUMN date_note TEXT NOT NULL DEFAULT '';
    CREATE TABLE missing_articles (     -- listed articles that answered 404/410, tried again
        url TEXT PRIMARY KEY,           -- canonical URL
        source TEXT NOT NULL,
        link TEXT NOT NULL,             -- the listing entry, to make the item from later
        title TEXT NOT NULL,
        summary_html TEXT NOT NULL,
        date_text TEXT NOT NULL,
        image_url TEXT NOT NULL,
        listing_hash TEXT NOT NULL,
        first_missing TEXT NOT NULL,
        last_try TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        status INTEGER NOT NULL,        -- the last answer's HTTP status
        next_try TEXT                   -- NULL: given up (until the listing entry changes)
    );
    CREATE INDEX missing_articles_due ON missing_articles (source, next_try);
    -- Items stored earlier with a date more than a day after they were first seen (a typo
    -- on the page) sat above every real story: date them by when they were first seen.
    -- Their `updated` was that date too, unless an edit was seen since (SET reads the old
    -- row).
    UPDATE items SET
        date_note = 'ignored the date ' || published || ' (' || date_source
            || '): more than a day after the item was first seen',
        published = replace(first_seen, 'Z', '+00:00'),
        published_utc = first_seen,
        date_source = 'first-seen',
        updated = CASE WHEN updated = published_utc THEN first_seen ELSE updated END
    WHERE published_utc > strftime('%Y-%m-%dT%H:%M:%SZ', first_seen, '+1 day');
    """,
    """
    -- issue 9 (feeds): an entry's updated is the source's own time until iomfeed sees a
    -- change. Items stored before were stamped with the run that first saw them (a 2016
    -- story "updated" in 2026); no modification time was kept, so an item never seen to
    -- change gets its publication time, and one that changed keeps the time the change was
    -- seen (never earlier than its publication). Both are in the same fixed-width UTC form.
    UPDATE items SET updated = CASE
        WHEN EXISTS (SELECT 1 FROM item_history h
                     WHERE h.item_id = items.id AND h.seen > items.first_seen)
        THEN max(updated, published_utc)
        ELSE published_utc
    END;
    """,
)

_ITEM_COLUMNS = (
    "id, url, source, title, summary_html, content_html, published, date_source, updated,"
    " first_seen, last_seen, image_url, image_alt, categories, language, author, content_hash,"
    " listing_hash, date_note"
)


def entry_updated(published: datetime, modified: datetime | None, now: datetime) -> datetime:
    """An entry's ``updated`` when it is first stored: the source's own modification time
    (but never before ``published``, nor after ``now``), else its publication time. Once
    stored, it moves only when iomfeed sees the content change."""
    return max(published, min(modified, now)) if modified is not None else published


def _utc(dt: datetime) -> str:
    """A fixed-width UTC timestamp that sorts as text."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _subscriber(row: sqlite3.Row) -> Subscriber:
    return Subscriber(
        id=row["id"],
        address=row["address"],
        name=row["name"],
        language=row["language"],
        status=row["status"],
        subscribed=_parse(row["subscribed"]),
        left=_parse(row["left_at"]) if row["left_at"] else None,
        reason=row["reason"],
    )


def _digest(row: sqlite3.Row) -> DigestRecord:
    return DigestRecord(
        id=row["id"],
        created=_parse(row["created"]),
        since=_parse(row["since"]) if row["since"] else None,
        cutoff=_parse(row["cutoff"]),
        status=DigestState(row["status"]),
        items=row["items"],
        more=row["more"],
        finished=_parse(row["finished"]) if row["finished"] else None,
        note=row["note"],
    )


_DELIVERY_SELECT = (
    "SELECT d.*, s.address, s.name, s.language, s.status AS sub_status,"
    " s.failures AS sub_failures"
    " FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
)


def _delivery(r: sqlite3.Row) -> Delivery:
    return Delivery(
        digest_id=r["digest_id"],
        subscriber_id=r["subscriber_id"],
        address=r["address"],
        name=r["name"],
        language=r["language"],
        subscriber_status=r["sub_status"],
        status=DeliveryStatus(r["status"]),
        attempts=r["attempts"],
        ambiguous=bool(r["ambiguous"]),
        reply=r["reply"],
        subscriber_failures=r["sub_failures"],
    )


def _statements(script: str) -> list[str]:
    """Split a script into statements the way SQLite's tokenizer does (comments, strings)."""
    statements, buffer = [], ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                statements.append(buffer)
            buffer = ""
    return statements


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _create_private(path: Path) -> None:
    """Create a missing database file readable and writable by its owner only (0600): it
    holds subscribers' addresses and perhaps the unsubscribe secret. SQLite would create it
    with the umask (0644 by default); the ``-wal`` and ``-shm`` files it makes later get the
    database file's own mode, so they are private too. An existing file keeps its mode
    (``iomfeed check`` warns when others can read it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # opening it fails the same way next, and that error is explained in words
    try:
        os.fchmod(fd, 0o600)  # a umask such as 0o200 would take the owner's write bit away
    finally:
        os.close(fd)


def _rehash_redated(db: sqlite3.Connection) -> None:
    """After the step that re-dates items stored with a date in the future: their content
    hash covered the old date, so without this the next fetch (which ignores that date
    again) would see every one of them as edited."""
    rows = db.execute(
        "SELECT id, title, summary_html, content_html, published, image_url, categories,"
        " language FROM items WHERE date_note != ''"
    ).fetchall()
    for r in rows:
        digest = content_hash(
            title=r[1],
            summary_html=r[2],
            content_html=r[3],
            published=_parse(r[4]),
            image_url=r[5],
            categories=tuple(json.loads(r[6])),
            language=r[7],
        )
        db.execute("UPDATE items SET content_hash = ? WHERE id = ?", (digest, r[0]))


def _missing(r: sqlite3.Row) -> MissingArticle:
    return MissingArticle(
        url=r["url"],
        source=r["source"],
        link=r["link"],
        title=r["title"],
        summary_html=r["summary_html"],
        date_text=r["date_text"],
        image_url=r["image_url"],
        listing_hash=r["listing_hash"],
        first_missing=_parse(r["first_missing"]),
        last_try=_parse(r["last_try"]),
        attempts=r["attempts"],
        status=r["status"],
        next_try=_parse(r["next_try"]) if r["next_try"] else None,
    )


class Store:
    """Items and run history in one SQLite file. Use as a context manager or call close()."""

    def __init__(self, path: Path | str, *, tag_authority: str = "localhost") -> None:
        self.path = Path(path)
        self.tag_authority = tag_authority
        if str(path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{self.path}: cannot create the database folder: {exc}") from exc
            _create_private(self.path)
        try:
            self.db = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            from .store_errors import explain

            raise StoreError(explain(self.path, exc)) from exc

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: database schema version {version} is newer than this iomfeed"
                f" understands ({len(MIGRATIONS)}); upgrade iomfeed"
            )
        for target in range(version + 1, len(MIGRATIONS) + 1):
            with self.transaction() as db:
                if self.schema_version >= target:  # another connection got there first
                    continue
                for statement in _statements(MIGRATIONS[target - 1]):
                    db.execute(statement)
                if "issue 9 (sources)" in MIGRATIONS[target - 1]:
                    _rehash_redated(db)
                db.execute(f"PRAGMA user_version = {target}")
            log.debug("migrated %s to schema version %d", self.path, target)

    # ------------------------------------------------------------------ items: reading

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
        return KnownItem(row["id"], row["url"], row["listing_hash"], _parse(row["published"]))

    def remember_skipped(
        self, url: str, source: str, listing_hash: str, filter_hash: str, now: datetime
    ) -> None:
        """Note an item the source's filter left out, so it is not fetched again needlessly."""
        self.db.execute(
            "INSERT INTO skipped (url, source, listing_hash, filter_hash, seen)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (url) DO UPDATE SET"
            " listing_hash = excluded.listing_hash, filter_hash = excluded.filter_hash,"
            " seen = excluded.seen",
            (url, source, listing_hash, filter_hash, _utc(now)),
        )

    def recent(self, source: str, since: datetime) -> list[KnownItem]:
        """Items of ``source`` published at or after ``since``, newest first."""
        rows = self.db.execute(
            "SELECT id, url, listing_hash, published FROM items"
            " WHERE source = ? AND published_utc >= ? AND date_source != ?"
            " ORDER BY published_utc DESC, id",
            (source, _utc(since), DateSource.FIRST_SEEN.value),
        ).fetchall()
        return [
            KnownItem(r["id"], r["url"], r["listing_hash"], _parse(r["published"])) for r in rows
        ]

    def count(self, source: str | None = None) -> int:
        if source is None:
            return int(self.db.execute("SELECT count(*) FROM items").fetchone()[0])
        return int(
            self.db.execute("SELECT count(*) FROM items WHERE source = ?", (source,)).fetchone()[0]
        )

    def items(self, *, limit: int | None = None, source: str | None = None) -> list[StoredItem]:
        """Stored items, newest published first."""
        sql = f"SELECT {_ITEM_COLUMNS} FROM items"
        args: list[object] = []
        if source is not None:
            sql += " WHERE source = ?"
            args.append(source)
        sql += " ORDER BY published_utc DESC, id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [self._row_to_item(r) for r in self.db.execute(sql, args)]

    def get(self, item_id: str) -> StoredItem | None:
        row = self.db.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ?", (item_id,)
        ).fetchone()
        return None if row is None else self._row_to_item(row)

    def links(self, item_id: str) -> list[tuple[str, str, str]]:
        """Other addresses recorded for an item: (url, source, reason)."""
        rows = self.db.execute(
            "SELECT url, source, reason FROM item_links WHERE item_id = ? ORDER BY url",
            (item_id,),
        ).fetchall()
        return [(r["url"], r["source"], r["reason"]) for r in rows]

    @staticmethod
    def _row_to_item(r: sqlite3.Row) -> StoredItem:
        return StoredItem(
            id=r["id"],
            url=r["url"],
            source=r["source"],
            title=r["title"],
            summary_html=r["summary_html"],
            content_html=r["content_html"],
            published=_parse(r["published"]),
            date_source=DateSource(r["date_source"]),
            updated=_parse(r["updated"]),
            first_seen=_parse(r["first_seen"]),
            last_seen=_parse(r["last_seen"]),
            image_url=r["image_url"],
            image_alt=r["image_alt"],
            categories=tuple(json.loads(r["categories"])),
            language=r["language"],
            author=r["author"],
            content_hash=r["content_hash"],
            listing_hash=r["listing_hash"],
            date_note=r["date_note"],
        )

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
                        (alias, outcome.item_id, item.source, _utc(now), item.listing_hash, alias),
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
                    (item.url, twin.id, item.source, _utc(now), item.listing_hash),
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
        from .dedup import NEAR_DUPLICATE_WINDOW

        rows = self.db.execute(
            "SELECT id, title_key, published, source FROM items"
            " WHERE published_utc BETWEEN ? AND ?",
            (_utc(published - NEAR_DUPLICATE_WINDOW), _utc(published + NEAR_DUPLICATE_WINDOW)),
        ).fetchall()
        return [
            Candidate(r["id"], r["title_key"], _parse(r["published"]), r["source"]) for r in rows
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
                _utc(published),
                date_source.value,
                _utc(entry_updated(published, item.modified, now)),
                _utc(now),
                _utc(now),
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
            (item_id, digest, _utc(now)),
        )
        return item_id

    def _update(
        self, db: sqlite3.Connection, row: sqlite3.Row, item: Item, now: datetime
    ) -> Change:
        if item.published is not None:
            published, date_source = item.published, item.date_source or DateSource.FIRST_SEEN
        else:  # no date found again: keep the stored one, never move a first-seen date
            published, date_source = _parse(row["published"]), DateSource(row["date_source"])
        if not item.content_html and row["content_html"]:
            # A page that suddenly has no body is a scraping fault, not an edit: keep the body.
            item = dataclasses.replace(item, content_html=row["content_html"])
        digest = self._hash(item, published)
        if digest == row["content_hash"]:
            db.execute(
                "UPDATE items SET last_seen = ?, listing_hash = ? WHERE id = ?",
                (_utc(now), item.listing_hash or row["listing_hash"], row["id"]),
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
                _utc(published),
                date_source.value,
                _utc(max(published, now)),
                _utc(now),
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
            (row["id"], digest, _utc(now)),
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
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE EXISTS (SELECT 1 FROM"
            " json_each(items.categories) AS c WHERE c.value = ?)"
            " ORDER BY published_utc DESC, id LIMIT ?",
            (category, limit),
        )
        return [self._row_to_item(r) for r in rows]

    def item_index(self) -> list[tuple[str, str, str, str]]:
        """(id, local published, content hash, updated) of every item, newest first.

        Cheap: enough to decide which archive pages changed without loading any content.
        """
        rows = self.db.execute(
            "SELECT id, published, content_hash, updated FROM items ORDER BY published_utc DESC, id"
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def items_by_id(self, ids: list[str]) -> list[StoredItem]:
        """The items with these ids, newest first."""
        found: list[StoredItem] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.extend(
                self._row_to_item(r)
                for r in self.db.execute(
                    f"SELECT {_ITEM_COLUMNS} FROM items WHERE id IN ({marks})", chunk
                )
            )
        order = {item_id: n for n, item_id in enumerate(ids)}
        return sorted(found, key=lambda i: order[i.id])

    # ------------------------------------------------------------------ publishing state

    def published_file(self, path: str) -> tuple[str, int, int] | None:
        """(fingerprint, size, mtime_ns) recorded when ``path`` was last published."""
        row = self.db.execute(
            "SELECT fingerprint, size, mtime_ns FROM published_files WHERE path = ?", (path,)
        ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), int(row[2]))

    def published_files(self) -> dict[str, tuple[str, int, int]]:
        """Every recorded file: path -> (fingerprint, size, mtime_ns)."""
        return {
            str(r[0]): (str(r[1]), int(r[2]), int(r[3]))
            for r in self.db.execute(
                "SELECT path, fingerprint, size, mtime_ns FROM published_files"
            )
        }

    def published_paths(self) -> list[str]:
        return [
            str(r[0])
            for r in self.db.execute("SELECT path FROM published_files ORDER BY 1").fetchall()
        ]

    def record_published(self, path: str, fingerprint: str, size: int, mtime_ns: int) -> None:
        self.db.execute(
            "INSERT INTO published_files (path, fingerprint, size, mtime_ns) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (path) DO UPDATE SET fingerprint = excluded.fingerprint,"
            " size = excluded.size, mtime_ns = excluded.mtime_ns",
            (path, fingerprint, size, mtime_ns),
        )

    def forget_published(self, path: str) -> None:
        self.db.execute("DELETE FROM published_files WHERE path = ?", (path,))

    def feed_id(self, key: str, now: datetime) -> str:
        """The permanent Atom id of a logical feed, minted on its first publication."""
        row = self.db.execute("SELECT id FROM feed_ids WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return str(row[0])
        minted = f"tag:{self.tag_authority},{now.astimezone(UTC):%Y-%m-%d}:feed/{key}"
        self.db.execute("INSERT INTO feed_ids (key, id) VALUES (?, ?)", (key, minted))
        return minted

    def pending_pings(self) -> list[str]:
        return [
            str(r[0])
            for r in self.db.execute("SELECT feed_url FROM websub_pending ORDER BY 1").fetchall()
        ]

    def set_ping_pending(self, feed_url: str, pending: bool, now: datetime) -> None:
        if pending:
            self.db.execute(
                "INSERT OR IGNORE INTO websub_pending (feed_url, since) VALUES (?, ?)",
                (feed_url, _utc(now)),
            )
        else:
            self.db.execute("DELETE FROM websub_pending WHERE feed_url = ?", (feed_url,))

    # ------------------------------------------------------------------ subscribers

    def add_subscriber(self, sub: Subscriber, now: datetime) -> str:
        """Add an active subscriber: 'added', 'exists' (already active), or 'left' (they
        unsubscribed or bounced before and are not re-added behind their back)."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT status FROM subscribers WHERE address = ?", (sub.address,)
            ).fetchone()
            if row is not None:
                return "exists" if row["status"] == "active" else "left"
            db.execute(
                "INSERT INTO subscribers (address, name, language, status, subscribed)"
                " VALUES (?, ?, ?, 'active', ?)",
                (sub.address, sub.name, sub.language, _utc(now)),
            )
        return "added"

    def resubscribe(self, address: str, now: datetime) -> bool:
        """Make a subscriber who left active again (only on their own explicit request)."""
        cur = self.db.execute(
            "UPDATE subscribers SET status = 'active', subscribed = ?, left_at = NULL,"
            " reason = '' WHERE address = ? AND status != 'active'",
            (_utc(now), address),
        )
        return cur.rowcount > 0

    def set_subscriber_status(self, address: str, status: str, reason: str, now: datetime) -> bool:
        """Mark a subscriber unsubscribed or bounced (with why); False if unknown."""
        cur = self.db.execute(
            "UPDATE subscribers SET status = ?, left_at = ?, reason = ? WHERE address = ?",
            (status, _utc(now), reason, address),
        )
        return cur.rowcount > 0

    def subscriber(self, address: str) -> Subscriber | None:
        row = self.db.execute("SELECT * FROM subscribers WHERE address = ?", (address,)).fetchone()
        return None if row is None else _subscriber(row)

    def subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        row = self.db.execute("SELECT * FROM subscribers WHERE id = ?", (subscriber_id,)).fetchone()
        return None if row is None else _subscriber(row)

    def subscribers(self, status: str | None = None) -> Iterator[Subscriber]:
        """Subscribers in the order they joined, streamed (not all held in memory)."""
        sql = "SELECT * FROM subscribers"
        args: tuple[str, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        for row in self.db.execute(sql + " ORDER BY id", args):
            yield _subscriber(row)

    def subscriber_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, count(*) FROM subscribers GROUP BY status")
        return {str(r[0]): int(r[1]) for r in rows}

    # ------------------------------------------------------------------ digests

    def setting(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key)"
            " DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def setting_default(self, key: str, make: Callable[[], str]) -> str:
        """The stored value of ``key``, storing ``make()`` first if there is none."""
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, make()))
            return str(db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0])

    def first_run_started(self) -> datetime | None:
        row = self.db.execute("SELECT min(started) FROM runs").fetchone()
        return None if row[0] is None else _parse(row[0])

    def digest(self, digest_id: int) -> DigestRecord | None:
        row = self.db.execute("SELECT * FROM digests WHERE id = ?", (digest_id,)).fetchone()
        return None if row is None else _digest(row)

    def digests(self, *, limit: int = 10) -> list[DigestRecord]:
        rows = self.db.execute("SELECT * FROM digests ORDER BY id DESC LIMIT ?", (limit,))
        return [_digest(r) for r in rows]

    def open_digest(self) -> DigestRecord | None:
        """The digest whose deliveries are not all final yet (at most one exists)."""
        row = self.db.execute(
            "SELECT * FROM digests WHERE status = 'sending' ORDER BY id LIMIT 1"
        ).fetchone()
        return None if row is None else _digest(row)

    def last_digest(self, status: str | None = None) -> DigestRecord | None:
        where = "" if status is None else " WHERE status = ?"
        args = () if status is None else (status,)
        row = self.db.execute(
            f"SELECT * FROM digests{where} ORDER BY id DESC LIMIT 1", args
        ).fetchone()
        return None if row is None else _digest(row)

    def new_items(self, since: DigestRecord | None, cutoff: datetime) -> list[StoredItem]:
        """Items first seen since the digest ``since`` was made (all, when None) and up to
        ``cutoff``, that it did not hold, newest first by their date. (Timestamps have
        one-second resolution: an item first seen in the same second as that digest, after
        it, is new.)"""
        sql = f"SELECT {_ITEM_COLUMNS} FROM items WHERE first_seen <= ?"
        args: list[object] = [_utc(cutoff)]
        if since is not None:
            sql += (
                " AND first_seen >= ? AND id NOT IN"
                " (SELECT item_id FROM digest_items WHERE digest_id = ?)"
            )
            args += [_utc(since.cutoff), since.id]
        rows = self.db.execute(sql + " ORDER BY published_utc DESC, id", args)
        return [self._row_to_item(r) for r in rows]

    def create_digest(
        self,
        *,
        created: datetime,
        since: datetime | None,
        cutoff: datetime,
        item_ids: list[str],
        more: int,
        left_out: list[str] | tuple[str, ...] = (),
    ) -> DigestRecord:
        """Record a digest and a pending delivery for every active subscriber, in one
        transaction: from here on a crash resumes this digest, never makes another."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM digests WHERE status = 'sending'").fetchone():
                raise StoreError("a digest is still being sent; finish it first")
            cur = db.execute(
                "INSERT INTO digests (created, since, cutoff, status, items, more)"
                " VALUES (?, ?, ?, 'sending', ?, ?)",
                (_utc(created), _utc(since) if since else None, _utc(cutoff), len(item_ids), more),
            )
            digest_id = int(cur.lastrowid or 0)
            # The items shown, then those only counted in "N more": all of them are this
            # digest's, so the next one does not hold them again.
            db.executemany(
                "INSERT INTO digest_items (digest_id, position, item_id) VALUES (?, ?, ?)",
                [(digest_id, i, item_id) for i, item_id in enumerate([*item_ids, *left_out])],
            )
            db.execute(
                "INSERT INTO deliveries (digest_id, subscriber_id, status, updated)"
                " SELECT ?, id, 'pending', ? FROM subscribers WHERE status = 'active'",
                (digest_id, _utc(created)),
            )
        record = self.digest(digest_id)
        assert record is not None
        return record

    def skip_digest(self, *, created: datetime, since: datetime | None, note: str) -> int:
        """Record that a due digest was not sent (and why), so the schedule moves on."""
        cur = self.db.execute(
            "INSERT INTO digests (created, since, cutoff, status, items, more, finished, note)"
            " VALUES (?, ?, ?, 'skipped', 0, 0, ?, ?)",
            (_utc(created), _utc(since) if since else None, _utc(created), _utc(created), note),
        )
        return int(cur.lastrowid or 0)

    def digest_item_ids(self, digest_id: int) -> list[str]:
        """The items the digest shows, in order."""
        rows = self.db.execute(
            "SELECT item_id FROM digest_items WHERE digest_id = ?"
            " AND position < (SELECT items FROM digests WHERE id = ?)"
            " ORDER BY position",
            (digest_id, digest_id),
        )
        return [str(r[0]) for r in rows]

    def deliveries(
        self,
        digest_id: int,
        statuses: tuple[str, ...] = ("pending", "sending"),
        *,
        batch: int = 500,
    ) -> Iterator[Delivery]:
        """Ledger rows of a digest in subscriber order, read in batches (a send may run for
        a long time; the rows it updates are never read back through an open cursor)."""
        marks = ", ".join("?" for _ in statuses)
        after = 0
        while True:
            rows = self.db.execute(
                f"{_DELIVERY_SELECT} WHERE d.digest_id = ? AND d.status IN ({marks})"
                " AND d.subscriber_id > ? ORDER BY d.subscriber_id LIMIT ?",
                (digest_id, *statuses, after, batch),
            ).fetchall()
            if not rows:
                return
            yield from (_delivery(r) for r in rows)
            after = rows[-1]["subscriber_id"]

    def delivery(self, digest_id: int, subscriber_id: int) -> Delivery | None:
        row = self.db.execute(
            f"{_DELIVERY_SELECT} WHERE d.digest_id = ? AND d.subscriber_id = ?",
            (digest_id, subscriber_id),
        ).fetchone()
        return None if row is None else _delivery(row)

    def delivery_totals(self, digest_id: int) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, count(*) FROM deliveries WHERE digest_id = ? GROUP BY status",
            (digest_id,),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def mark_sending(
        self, digest_id: int, subscriber_id: int, now: datetime, *, ambiguous: bool = False
    ) -> bool:
        """Committed before the message leaves: after a crash this row says 'maybe sent'.
        False (and nothing changed) when the subscriber is no longer active: someone who
        unsubscribed a second ago does not get the digest."""
        cur = self.db.execute(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1,"
            " ambiguous = max(ambiguous, ?), updated = ?"
            " WHERE digest_id = ? AND subscriber_id = ? AND EXISTS (SELECT 1 FROM subscribers"
            " WHERE id = ? AND status = 'active')",
            (int(ambiguous), _utc(now), digest_id, subscriber_id, subscriber_id),
        )
        return cur.rowcount > 0

    def uncount_attempts(self, digest_id: int, subscriber_id: int, tries: int) -> None:
        """Give back tries that failed for reasons not this subscriber's (the server)."""
        self.db.execute(
            "UPDATE deliveries SET attempts = max(0, attempts - ?)"
            " WHERE digest_id = ? AND subscriber_id = ?",
            (tries, digest_id, subscriber_id),
        )

    def revert_failures(
        self, digest_id: int, subscriber_ids: list[int], *, bounce_after: int
    ) -> None:
        """Undo permanent failures that turned out to be the server's (every address
        refused): the rows are pending again, the subscribers' counts and bounces undone."""
        with self.transaction() as db:
            for sid in subscriber_ids:
                db.execute(
                    "UPDATE deliveries SET status = 'pending', updated = updated"
                    " WHERE digest_id = ? AND subscriber_id = ? AND status = 'failed'",
                    (digest_id, sid),
                )
                db.execute(
                    "UPDATE subscribers SET failures = max(0, failures - 1) WHERE id = ?", (sid,)
                )
                db.execute(
                    "UPDATE subscribers SET status = 'active', left_at = NULL,"
                    " reason = '' WHERE id = ? AND status = 'bounced' AND failures < ?",
                    (sid, bounce_after),
                )

    def mark_error(self, digest_id: int, subscriber_id: int, reason: str, now: datetime) -> None:
        """This subscriber's message could not be made (a bug or bad data): failed, with
        why, without counting as a bounce."""
        self.db.execute(
            "UPDATE deliveries SET status = 'failed', reply = ?, updated = ?"
            " WHERE digest_id = ? AND subscriber_id = ?",
            (reason[:500], _utc(now), digest_id, subscriber_id),
        )

    def mark_delivered(
        self,
        digest_id: int,
        subscriber_id: int,
        reply: str,
        now: datetime,
        *,
        reset_failures: bool = True,
    ) -> None:
        """Committed once the server took the message; a success ends a bounce streak
        (``reset_failures=False`` when the caller knows there is none: one statement, one
        commit, which counts at thousands of messages)."""
        if not reset_failures:
            self.db.execute(
                "UPDATE deliveries SET status = 'sent', reply = ?, updated = ?"
                " WHERE digest_id = ? AND subscriber_id = ?",
                (reply, _utc(now), digest_id, subscriber_id),
            )
            return
        with self.transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = 'sent', reply = ?, updated = ?"
                " WHERE digest_id = ? AND subscriber_id = ?",
                (reply, _utc(now), digest_id, subscriber_id),
            )
            db.execute(
                "UPDATE subscribers SET failures = 0 WHERE id = ? AND failures > 0",
                (subscriber_id,),
            )

    def mark_deferred(
        self, digest_id: int, subscriber_id: int, reply: str, now: datetime, *, give_up: bool
    ) -> None:
        """A temporary failure: pending again for the next run, or failed when it has been
        tried too often."""
        self.db.execute(
            "UPDATE deliveries SET status = ?, reply = ?, updated = ?"
            " WHERE digest_id = ? AND subscriber_id = ?",
            ("failed" if give_up else "pending", reply, _utc(now), digest_id, subscriber_id),
        )

    def mark_failed(
        self, digest_id: int, subscriber_id: int, reply: str, now: datetime, *, bounce_after: int
    ) -> bool:
        """A permanent failure for this address; True when it marked the subscriber bounced."""
        with self.transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = 'failed', reply = ?, updated = ?"
                " WHERE digest_id = ? AND subscriber_id = ?",
                (reply, _utc(now), digest_id, subscriber_id),
            )
            db.execute(
                "UPDATE subscribers SET failures = failures + 1 WHERE id = ?", (subscriber_id,)
            )
            cur = db.execute(
                "UPDATE subscribers SET status = 'bounced', left_at = ?, reason = ?"
                " WHERE id = ? AND status = 'active' AND failures >= ?",
                (_utc(now), f"bounced: {reply}"[:500], subscriber_id, bounce_after),
            )
            return cur.rowcount > 0

    def mark_skipped(self, digest_id: int, subscriber_id: int, reason: str, now: datetime) -> None:
        self.db.execute(
            "UPDATE deliveries SET status = 'skipped', reply = ?, updated = ?"
            " WHERE digest_id = ? AND subscriber_id = ?",
            (reason, _utc(now), digest_id, subscriber_id),
        )

    def finish_digest(self, digest_id: int, now: datetime) -> bool:
        """Mark the digest sent when no delivery is due any more; its items are then
        'sent'. False while some are pending."""
        with self.transaction() as db:
            due = db.execute(
                "SELECT 1 FROM deliveries WHERE digest_id = ?"
                " AND status IN ('pending', 'sending') LIMIT 1",
                (digest_id,),
            ).fetchone()
            if due:
                return False
            db.execute(
                "UPDATE digests SET status = 'sent', finished = ?"
                " WHERE id = ? AND status = 'sending'",
                (_utc(now), digest_id),
            )
        return True

    # ------------------------------------------------------------------ HTTP validators

    def get_validators(self, url: str) -> tuple[str | None, str | None]:
        row = self.db.execute(
            "SELECT etag, last_modified FROM http_validators WHERE url = ?", (url,)
        ).fetchone()
        return (None, None) if row is None else (row["etag"], row["last_modified"])

    def save_validators(
        self, url: str, etag: str | None, last_modified: str | None, now: datetime
    ) -> None:
        if not etag and not last_modified:
            self.db.execute("DELETE FROM http_validators WHERE url = ?", (url,))
            return
        self.db.execute(
            "INSERT INTO http_validators (url, etag, last_modified, saved) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (url) DO UPDATE SET etag = excluded.etag,"
            " last_modified = excluded.last_modified, saved = excluded.saved",
            (url, etag, last_modified, _utc(now)),
        )

    # ------------------------------------------------------------------ missing articles

    def missing_article(self, url: str) -> MissingArticle | None:
        """The 404 state of a listed article at this canonical URL, if it answered 404."""
        row = self.db.execute("SELECT * FROM missing_articles WHERE url = ?", (url,)).fetchone()
        return None if row is None else _missing(row)

    def missing_due(self, source: str, now: datetime) -> list[MissingArticle]:
        """The source's missing articles whose next try has come, the longest due first."""
        rows = self.db.execute(
            "SELECT * FROM missing_articles WHERE source = ? AND next_try IS NOT NULL"
            " AND next_try <= ? ORDER BY next_try, url",
            (source, _utc(now)),
        )
        return [_missing(r) for r in rows]

    def save_missing(self, missing: MissingArticle) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO missing_articles (url, source, link, title, summary_html,"
            " date_text, image_url, listing_hash, first_missing, last_try, attempts, status,"
            " next_try) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                missing.url,
                missing.source,
                missing.link,
                missing.title,
                missing.summary_html,
                missing.date_text,
                missing.image_url,
                missing.listing_hash,
                _utc(missing.first_missing),
                _utc(missing.last_try),
                missing.attempts,
                missing.status,
                _utc(missing.next_try) if missing.next_try else None,
            ),
        )

    def forget_missing(self, url: str) -> None:
        """The article was found (and stored): no more retries."""
        self.db.execute("DELETE FROM missing_articles WHERE url = ?", (url,))

    # ------------------------------------------------------------------ sources and runs

    def backfilled(self, source: str, filter_hash: str = "") -> bool:
        """Whether a full walk of the source's listing completed under this filter."""
        row = self.db.execute(
            "SELECT backfilled, filter_hash FROM source_state WHERE name = ?", (source,)
        ).fetchone()
        return (
            row is not None and row["backfilled"] is not None and row["filter_hash"] == filter_hash
        )

    def mark_backfilled(self, source: str, now: datetime, filter_hash: str = "") -> None:
        self.db.execute(
            "INSERT INTO source_state (name, backfilled, filter_hash) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET backfilled = excluded.backfilled,"
            " filter_hash = excluded.filter_hash",
            (source, _utc(now), filter_hash),
        )

    def record_run(
        self, started: datetime, finished: datetime, results: tuple[SourceResult, ...]
    ) -> int:
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (started, finished, ok) VALUES (?, ?, ?)",
                (_utc(started), _utc(finished), int(all(r.ok for r in results))),
            )
            run_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO source_runs (run_id, source, ok, pages, not_modified, found, new,"
                " updated, duplicates, filtered, duration, error, warnings)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        r.name,
                        int(r.ok),
                        r.pages,
                        r.not_modified,
                        r.found,
                        r.new,
                        r.updated,
                        r.duplicates,
                        r.filtered,
                        round(r.duration, 3),
                        r.error,
                        json.dumps(list(r.warnings), ensure_ascii=False),
                    )
                    for r in results
                ],
            )
        return run_id

    def source_runs(self, run_id: int) -> list[SourceResult]:
        rows = self.db.execute(
            "SELECT * FROM source_runs WHERE run_id = ? ORDER BY source", (run_id,)
        ).fetchall()
        return [
            SourceResult(
                name=r["source"],
                ok=bool(r["ok"]),
                pages=r["pages"],
                not_modified=r["not_modified"],
                found=r["found"],
                new=r["new"],
                updated=r["updated"],
                duplicates=r["duplicates"],
                filtered=r["filtered"],
                duration=r["duration"],
                error=r["error"],
                warnings=tuple(json.loads(r["warnings"])),
            )
            for r in rows
        ]

    def source_history(self, source: str, *, limit: int = 100) -> list[tuple[datetime, bool, str]]:
        """The source's latest runs, newest first: (started, ok, error)."""
        rows = self.db.execute(
            "SELECT r.started, sr.ok, sr.error FROM source_runs sr JOIN runs r"
            " ON r.id = sr.run_id WHERE sr.source = ? ORDER BY sr.run_id DESC LIMIT ?",
            (source, limit),
        )
        return [(_parse(r[0]), bool(r[1]), str(r[2])) for r in rows]

    def run_sources(self) -> list[str]:
        return [
            str(r[0])
            for r in self.db.execute("SELECT DISTINCT source FROM source_runs ORDER BY source")
        ]

    def alert(self, problem: str) -> tuple[bool, datetime | None] | None:
        """(active, last sent) of a known problem, or None."""
        row = self.db.execute(
            "SELECT active, last_sent FROM alerts WHERE problem = ?", (problem,)
        ).fetchone()
        if row is None:
            return None
        return bool(row[0]), _parse(row[1]) if row[1] else None

    def alert_detail(self, problem: str) -> str:
        row = self.db.execute("SELECT detail FROM alerts WHERE problem = ?", (problem,)).fetchone()
        return "" if row is None else str(row[0])

    def active_alerts(self) -> list[str]:
        return [
            str(r[0])
            for r in self.db.execute("SELECT problem FROM alerts WHERE active = 1 ORDER BY problem")
        ]

    def set_alert(self, problem: str, *, active: bool, detail: str, sent: datetime | None) -> None:
        self.db.execute(
            "INSERT INTO alerts (problem, active, last_sent, detail) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (problem) DO UPDATE SET active = excluded.active,"
            " detail = excluded.detail,"
            " last_sent = coalesce(excluded.last_sent, alerts.last_sent)",
            (problem, int(active), _utc(sent) if sent else None, detail),
        )

    def last_run_id(self) -> int | None:
        row = self.db.execute("SELECT max(id) FROM runs").fetchone()
        return None if row[0] is None else int(row[0])
