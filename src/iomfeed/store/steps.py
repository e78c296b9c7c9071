"""Schema steps kept apart from ``schema.py`` only for its length: each is a step that
:data:`schema.MIGRATIONS` lists in its turn and applies like every other. Append only; never
edit a step once shipped."""

from __future__ import annotations

SIGN_UP_QUEUE_STEP = """
    -- issue 11 (durable sign-ups): a web sign-up handed over to the background worker is a
    -- row here before its answer goes out, and is deleted once its effect (the subscriber's
    -- row, the confirmation mail) is done, so a web process killed in between loses none:
    -- the next worker (another process, or this one restarted) takes it up. A row being
    -- worked on is claimed (when, by which process), so two processes do not both take it;
    -- a claim by a process of this host that is gone, or older than the lease, is a crash.
    -- The client's address is kept only as the consent record would keep it
    -- (subscribe.record_ip, truncated), and '' otherwise.
    CREATE TABLE signup_queue (
        id INTEGER PRIMARY KEY,
        received TEXT NOT NULL,
        address TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        language TEXT NOT NULL DEFAULT '',
        categories TEXT NOT NULL DEFAULT '[]',  -- JSON array of category names
        ip TEXT NOT NULL DEFAULT '',
        claimed TEXT,                           -- NULL: waiting
        claimed_by TEXT NOT NULL DEFAULT '',    -- 'host:pid namespace:pid' of its worker
        forgotten INTEGER NOT NULL DEFAULT 0    -- forgotten while a worker had it: its
                                                -- address, name and ip are already erased
    );
    """

ITEM_COUNTS_STEP = """
    -- issue 13 (cron): the items of each source, counted by triggers, so that the health
    -- check of every cycle and 'status' do not count a large store row by row
    CREATE TABLE item_counts (source TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO item_counts (source, n) SELECT source, count(*) FROM items GROUP BY source;
    CREATE TRIGGER item_counts_inserted AFTER INSERT ON items BEGIN
        INSERT INTO item_counts (source, n) VALUES (NEW.source, 1)
            ON CONFLICT (source) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER item_counts_deleted AFTER DELETE ON items
        BEGIN UPDATE item_counts SET n = n - 1 WHERE source = OLD.source; END;
    CREATE TRIGGER item_counts_moved AFTER UPDATE OF source ON items
        WHEN NEW.source IS NOT OLD.source BEGIN
        UPDATE item_counts SET n = n - 1 WHERE source = OLD.source;
        INSERT INTO item_counts (source, n) VALUES (NEW.source, 1)
            ON CONFLICT (source) DO UPDATE SET n = n + 1;
    END;
    """

NEAR_DUPLICATES_STEP = """
    -- issue 13 (scrape2): the near-duplicate candidates of an undated item are the dated items
    -- of the other sources published around now (this index, which leaves out the items
    -- dated by when they were first seen, thousands after a backfill) and the undated ones
    -- with the same folded title (items_title_key)
    CREATE INDEX items_dated ON items (source, published_utc) WHERE date_source != 'first-seen';
    """

ROBOTS_STEP = """
    -- issue 13 (cron): each origin's robots.txt as last fetched, used for up to a day (RFC
    -- 9309 2.4), so a cron run every few minutes asks the site for its listing alone
    CREATE TABLE robots_txt (
        origin TEXT PRIMARY KEY,          -- scheme://host[:port], lowercased
        fetched TEXT NOT NULL,            -- UTC
        body TEXT NOT NULL                -- '' for a 4xx answer: no rules
    );
    """

LEFT_STATUS_STEP = """
    -- the state (unsubscribed, bounced) of someone who left, kept while a sign-up typed
    -- into the form for them waits for their confirmation: a dropped one puts it back
    ALTER TABLE subscribers ADD COLUMN left_status TEXT NOT NULL DEFAULT '';
    """

UNSUBSCRIBE_MAIL_STEP = """
    -- issue 13 (trials): a subscriber's own mail to the List-Unsubscribe mailto address is
    -- read with the bounces and recorded with them, as kind 'unsubscribe'. SQLite cannot
    -- change a CHECK: the table is rebuilt as SQLite documents (new table, copy, drop,
    -- rename) and its indexes made again.
    -- (run with foreign keys off)
    CREATE TABLE bounce_events_new (
        id INTEGER PRIMARY KEY,
        message_key TEXT NOT NULL,
        message_id TEXT NOT NULL,
        received TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint', 'auto-reply',
                                           'unrecognised', 'unsubscribe')),
        subscriber_id INTEGER REFERENCES subscribers (id),
        digest_id INTEGER REFERENCES digests (id),
        address TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT '',
        trust TEXT NOT NULL CHECK (trust IN ('token', 'recent', 'none')),
        action TEXT NOT NULL CHECK (action IN ('bounced', 'unsubscribed', 'counted', 'ignored')),
        detail TEXT NOT NULL DEFAULT ''
    );
    INSERT INTO bounce_events_new SELECT id, message_key, message_id, received, kind,
        subscriber_id, digest_id, address, status, trust, action, detail FROM bounce_events;
    DROP TABLE bounce_events;
    ALTER TABLE bounce_events_new RENAME TO bounce_events;
    CREATE INDEX bounce_events_message ON bounce_events (message_key);
    CREATE INDEX bounce_events_subscriber ON bounce_events (subscriber_id, digest_id);
    CREATE INDEX bounce_events_digest ON bounce_events (digest_id);
    """

LEFT_PROFILE_STEP = """
    -- what was on record of someone who left (name, language, categories, when and how
    -- they had subscribed and confirmed), kept as JSON while a sign-up typed into the
    -- form for them waits for their confirmation: a dropped one puts it back, a
    -- confirmed one makes the new sign-up's theirs
    ALTER TABLE subscribers ADD COLUMN left_profile TEXT NOT NULL DEFAULT '';
    """

SUPPRESSION_KEY_STEP = """
    -- issue 13 (review): forgotten addresses are hashed with a key of the list's own, kept
    -- in settings and made on first use, which no change of the signing secret touches.
    -- Entries already kept were hashed with the signing secret of the time: this notes
    -- which (its fingerprint; "1" when none was noted), and they are matched with it as
    -- long as it is at hand (iomfeed.digest.unsubscribe).
    INSERT INTO settings (key, value)
        SELECT 'suppressed_with_signing_secret', COALESCE(
            (SELECT substr(value, 1, instr(value || ' ', ' ') - 1) FROM settings
             WHERE key = 'unsubscribe_secret_fingerprint' AND value != ''), '1')
        WHERE EXISTS (SELECT 1 FROM suppressed);
    """

CATEGORY_ITEMS_STEP = """
    -- issue 13 (scale): each item's categories in the order the feeds list items, kept by
    -- triggers, so that a category's feed reads its newest items by one index range. The
    -- query it replaces walked every item newest first until it had found enough, all
    -- 50,000 for a category that only old items use.
    CREATE TABLE category_items (
        category TEXT NOT NULL,
        published_utc TEXT NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY (category, published_utc DESC, id)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO category_items (category, published_utc, id)
        SELECT c.value, items.published_utc, items.id FROM items, json_each(items.categories) AS c;
    CREATE TRIGGER category_items_inserted AFTER INSERT ON items
    BEGIN
        INSERT OR IGNORE INTO category_items (category, published_utc, id)
            SELECT value, NEW.published_utc, NEW.id FROM json_each(NEW.categories);
    END;
    CREATE TRIGGER category_items_deleted AFTER DELETE ON items
    BEGIN
        DELETE FROM category_items WHERE published_utc = OLD.published_utc AND id = OLD.id
            AND category IN (SELECT value FROM json_each(OLD.categories));
    END;
    CREATE TRIGGER category_items_changed AFTER UPDATE OF id, published_utc, categories ON items
    BEGIN
        DELETE FROM category_items WHERE published_utc = OLD.published_utc AND id = OLD.id
            AND category IN (SELECT value FROM json_each(OLD.categories));
        INSERT OR IGNORE INTO category_items (category, published_utc, id)
            SELECT value, NEW.published_utc, NEW.id FROM json_each(NEW.categories);
    END;
    """

MONTH_MARKS_STEP = """
    -- issue 13 (scale): the rows a publish plans the archive page of a month the feed reaches
    -- into from (id, published, content hash, updated), read from the month's index alone.
    -- Through the table, each row's content hash and update time lie past its content: a
    -- month of 1,700 stories (an undated backfill's, all dated when first seen) took 4 ms
    -- of every publish, and 1 ms so.
    DROP INDEX items_month;
    CREATE INDEX items_month ON items
        (substr(published, 1, 7), published_utc DESC, id, published, content_hash, updated);
    """
