"""The schema as numbered migrations (``PRAGMA user_version``), and the code that applies them.

Each entry of :data:`MIGRATIONS` moves the schema from version i to i + 1. Append only; never
edit a shipped step. A step may need Python as well as SQL (a hash that covers a re-dated
column): :data:`AFTER_STEP` names those by a marker in the step's first comment.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ..errors import StoreError
from .pages import PAGES_STEP
from .steps import (
    CATEGORY_ITEMS_STEP,
    ITEM_COUNTS_STEP,
    LEFT_PROFILE_STEP,
    LEFT_STATUS_STEP,
    MONTH_MARKS_STEP,
    NEAR_DUPLICATES_STEP,
    ROBOTS_STEP,
    SIGN_UP_QUEUE_STEP,
    SUPPRESSION_KEY_STEP,
    UNSUBSCRIBE_MAIL_STEP,
)

log = logging.getLogger(__name__)

#: A migration step holding this line runs with foreign keys off (a table rebuild).
FOREIGN_KEYS_OFF = "-- (run with foreign keys off)"

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
    """
    -- issue 10 (languages): a subscriber's language is any code of the config's
    -- digest.languages, checked where subscribers are added, so the table drops its
    -- CHECK (language IN ('en', 'sq')). SQLite cannot drop a CHECK: the table is rebuilt
    -- the way SQLite documents (new table, copy, drop, rename), which needs foreign keys off
    -- (deliveries references subscribers); the foreign keys are checked before the commit.
    -- (run with foreign keys off)
    CREATE TABLE subscribers_new (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE COLLATE NOCASE,
        name TEXT NOT NULL,
        language TEXT NOT NULL CHECK (language <> ''),  -- a code of digest.languages
        status TEXT NOT NULL CHECK (status IN ('active', 'unsubscribed', 'bounced')),
        subscribed TEXT NOT NULL,
        left_at TEXT,
        reason TEXT NOT NULL DEFAULT '',  -- why they left
        failures INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO subscribers_new (id, address, name, language, status, subscribed, left_at,
                                 reason, failures)
        SELECT id, address, name, language, status, subscribed, left_at, reason, failures
        FROM subscribers;
    DROP TABLE subscribers;
    ALTER TABLE subscribers_new RENAME TO subscribers;
    CREATE INDEX subscribers_status ON subscribers (status, id);
    """,
    """
    -- issue 10 (publish inputs): counters that move whenever what a publish reads changes, so
    -- a cycle whose fetch changed nothing can tell, in one query, that its feeds would come
    -- out the same. Triggers keep them, whoever writes (the fetch path, a migration, a hand
    -- edit). Seeing an item again (last_seen, listing_hash) is not a change.
    CREATE TABLE changes (
        area TEXT PRIMARY KEY,          -- 'items', 'digests'
        n INTEGER NOT NULL
    );
    INSERT INTO changes (area, n) VALUES ('items', 0), ('digests', 0);
    CREATE TRIGGER items_inserted AFTER INSERT ON items
        BEGIN UPDATE changes SET n = n + 1 WHERE area = 'items'; END;
    CREATE TRIGGER items_deleted AFTER DELETE ON items
        BEGIN UPDATE changes SET n = n + 1 WHERE area = 'items'; END;
    CREATE TRIGGER items_changed AFTER UPDATE OF id, url, source, title, summary_html,
        content_html, published, published_utc, date_source, updated, image_url, image_alt,
        categories, language, author, content_hash, date_note ON items
        BEGIN UPDATE changes SET n = n + 1 WHERE area = 'items'; END;
    CREATE TRIGGER digests_inserted AFTER INSERT ON digests
        BEGIN UPDATE changes SET n = n + 1 WHERE area = 'digests'; END;
    CREATE TRIGGER digests_changed AFTER UPDATE OF status, finished ON digests
        BEGIN UPDATE changes SET n = n + 1 WHERE area = 'digests'; END;
    """,
    """
    -- issue 11 (subscriber lifecycle): a sign-up is 'pending' until confirmed, so the status
    -- CHECK gains it (a rebuild, as in the languages step); each row records its consent
    -- (when, how, the form's language, the client's truncated address when recorded, when
    -- confirmed), the categories chosen (a JSON array, empty: all), a pause, when the last
    -- confirmation or "already subscribed" message went (their rate limits). A forgotten
    -- person keeps a row with no address and no name (the ledger's rows point at it), and
    -- a keyed hash of the address in `suppressed`.
    -- (run with foreign keys off)
    CREATE TABLE subscribers_new (
        id INTEGER PRIMARY KEY,
        address TEXT UNIQUE COLLATE NOCASE,  -- NULL once forgotten
        name TEXT NOT NULL,
        language TEXT NOT NULL CHECK (language <> ''),  -- a code of digest.languages
        status TEXT NOT NULL
            CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
        subscribed TEXT NOT NULL,
        left_at TEXT,
        reason TEXT NOT NULL DEFAULT '',  -- why they left
        failures INTEGER NOT NULL DEFAULT 0,
        consent_at TEXT,                  -- NULL: added before consent was recorded
        consent_via TEXT NOT NULL DEFAULT ''
            CHECK (consent_via IN ('', 'web form', 'CSV import', 'command line')),
        consent_language TEXT NOT NULL DEFAULT '',
        consent_ip TEXT NOT NULL DEFAULT '',  -- truncated (/24, /48); only if recorded
        confirmed_at TEXT,
        categories TEXT NOT NULL DEFAULT '[]',
        paused_until TEXT,
        confirm_sent TEXT,                -- the last confirmation message
        notice_sent TEXT                  -- the last "already subscribed" message
    );
    INSERT INTO subscribers_new (id, address, name, language, status, subscribed, left_at,
                                 reason, failures)
        SELECT id, address, name, language, status, subscribed, left_at, reason, failures
        FROM subscribers;
    DROP TABLE subscribers;
    ALTER TABLE subscribers_new RENAME TO subscribers;
    CREATE INDEX subscribers_status ON subscribers (status, id);
    CREATE TABLE suppressed (           -- forgotten addresses, as keyed hashes only
        hash TEXT PRIMARY KEY,            -- HMAC-SHA256 of the lower-cased address
        since TEXT NOT NULL
    );
    """,
    """
    -- issue 11 (segments): each ledger row keeps the category segment its subscriber had
    -- when the digest was made (a JSON array of folded names; '[]': every category), so a
    -- resumed send renders the same segments. Rows made before it get every category, as
    -- they did. The status CHECK already has 'skipped' (nothing new in their categories).
    ALTER TABLE deliveries ADD COLUMN segment TEXT NOT NULL DEFAULT '[]';
    """,
    """
    -- issue 12 (bounces): what came back to the bounce mailbox after the send (bounces,
    -- complaints, auto-replies, the unrecognised), one row per message and recipient it
    -- names, with the digest it is about and what it did. A message already recorded (by
    -- its key, a hash of its bytes) is not counted again when it is read again.
    CREATE TABLE bounce_events (
        id INTEGER PRIMARY KEY,
        message_key TEXT NOT NULL,        -- SHA-256 of the raw message
        message_id TEXT NOT NULL,         -- the bounce's own Message-ID ('' when none)
        received TEXT NOT NULL,           -- when iomfeed read it
        kind TEXT NOT NULL
            CHECK (kind IN ('hard', 'soft', 'complaint', 'auto-reply', 'unrecognised')),
        subscriber_id INTEGER REFERENCES subscribers (id),
        digest_id INTEGER REFERENCES digests (id),
        address TEXT NOT NULL DEFAULT '', -- the recipient it names ('' once forgotten)
        status TEXT NOT NULL DEFAULT '',  -- the enhanced status code (5.1.1)
        trust TEXT NOT NULL CHECK (trust IN ('token', 'recent', 'none')),
        action TEXT NOT NULL CHECK (action IN ('bounced', 'unsubscribed', 'counted', 'ignored')),
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX bounce_events_message ON bounce_events (message_key);
    CREATE INDEX bounce_events_subscriber ON bounce_events (subscriber_id, digest_id);
    CREATE INDEX bounce_events_digest ON bounce_events (digest_id);
    """,
    """
    -- issue 12 (quotas): every message handed to the relay, by time, so mail.hourly_limit
    -- and mail.daily_limit count what was sent before a restart or by another process. A
    -- digest's delivery counts itself (the trigger, as its row becomes 'sent'); sign-up
    -- notices and test copies are written by the code that sends them. Nothing before this
    -- step is counted: an upgrade starts with the quotas' windows empty.
    CREATE TABLE mail_sent (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,                 -- when the relay took it (UTC)
        kind TEXT NOT NULL                -- 'digest', 'confirm', 'welcome', 'already', 'test'
    );
    CREATE INDEX mail_sent_at ON mail_sent (at);
    CREATE TRIGGER mail_sent_delivery AFTER UPDATE OF status ON deliveries
    WHEN NEW.status = 'sent' AND OLD.status <> 'sent'
    BEGIN
        INSERT INTO mail_sent (at, kind) VALUES (NEW.updated, 'digest');
    END;
    """,
    """
    -- issue 11 (web forms): the sign-ups the forms acted on, one row per client address
    -- and one per e-mail address, each under a keyed hash (HMAC with the list's secret):
    -- the forms' rate limits count them, across threads and processes, and rows older than
    -- the longest limit are deleted as new ones come. No address is kept in the clear.
    CREATE TABLE form_hits (
        key TEXT NOT NULL,                -- 'client:<hash>' or 'address:<hash>'
        at TEXT NOT NULL
    );
    CREATE INDEX form_hits_key ON form_hits (key, at);
    """,
    SIGN_UP_QUEUE_STEP,
    ITEM_COUNTS_STEP,
    PAGES_STEP,
    NEAR_DUPLICATES_STEP,
    ROBOTS_STEP,
    LEFT_STATUS_STEP,
    LEFT_PROFILE_STEP,
    UNSUBSCRIBE_MAIL_STEP,
    SUPPRESSION_KEY_STEP,
    CATEGORY_ITEMS_STEP,
    MONTH_MARKS_STEP,
)


def statements(script: str) -> list[str]:
    """Split a script into statements the way SQLite's tokenizer does (comments, strings)."""
    statements, buffer = [], ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                statements.append(buffer)
            buffer = ""
    return statements


def _rehash_redated(db: sqlite3.Connection) -> None:
    """After the step that re-dates items stored with a date in the future: their content
    hash covered the old date, so without this the next fetch (which ignores that date
    again) would see every one of them as edited."""
    from ..dedup import content_hash  # hashlib and difflib: not on every store open

    rows = db.execute(
        "SELECT id, title, summary_html, content_html, published, image_url, categories,"
        " language FROM items WHERE date_note != ''"
    ).fetchall()
    for r in rows:
        digest = content_hash(
            title=r[1],
            summary_html=r[2],
            content_html=r[3],
            published=datetime.fromisoformat(r[4]),
            image_url=r[5],
            categories=tuple(json.loads(r[6])),
            language=r[7],
        )
        db.execute("UPDATE items SET content_hash = ? WHERE id = ?", (digest, r[0]))


#: Python run inside a step's transaction, after its SQL, keyed by a marker in its comment.
AFTER_STEP: dict[str, Callable[[sqlite3.Connection], None]] = {
    "issue 9 (sources)": _rehash_redated,
}


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the database up to the newest schema, one transaction per step."""
    version = _version(db)
    if version > len(MIGRATIONS):
        raise StoreError(
            f"{path}: database schema version {version} is newer than this iomfeed"
            f" understands ({len(MIGRATIONS)}); upgrade iomfeed"
        )
    for target in range(version + 1, len(MIGRATIONS) + 1):
        script = MIGRATIONS[target - 1]
        keys_off = FOREIGN_KEYS_OFF in script
        if keys_off:  # SQLite cannot switch foreign keys inside a transaction
            db.execute("PRAGMA foreign_keys = OFF")
        try:
            _step(db, path, target, script, check_keys=keys_off)
        finally:
            if keys_off:
                db.execute("PRAGMA foreign_keys = ON")
        log.debug("migrated %s to schema version %d", path, target)


def _step(
    db: sqlite3.Connection, path: Path, target: int, script: str, *, check_keys: bool
) -> None:
    """One step in one transaction; a step that broke a foreign key is rolled back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if _version(db) < target:  # another connection may have got there first
            before = _broken_keys(db) if check_keys else Counter()
            for statement in statements(script):
                db.execute(statement)
            for marker, run in AFTER_STEP.items():
                if marker in script:
                    run(db)
            # Only what this step broke counts: rows a hand edit orphaned earlier (deliveries
            # of a subscriber deleted in the sqlite3 shell) stay as they were.
            broken = list((_broken_keys(db) - before).elements()) if check_keys else []
            if broken:
                raise StoreError(
                    f"{path}: schema step {target} would break foreign keys (table, row,"
                    f" parent): {broken[:3]}; nothing was changed"
                )
            db.execute(f"PRAGMA user_version = {target}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _broken_keys(db: sqlite3.Connection) -> Counter[tuple[object, ...]]:
    """Rows whose foreign key points nowhere: (table, rowid, parent table), counted."""
    return Counter(tuple(row)[:3] for row in db.execute("PRAGMA foreign_key_check"))


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])
