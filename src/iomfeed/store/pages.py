"""The schema step of the summaries a publish plans its pages from (one row per month of
publication, one per category), kept by triggers: see :data:`PAGES_STEP`.

Apart from ``schema.py`` only for its length; it is one of the steps :data:`schema.MIGRATIONS`
lists, applied like every other. Never edit it once shipped.
"""

from __future__ import annotations

PAGES_STEP = """
    -- issue 13 (publish): what a publish plans its pages from without reading every item.
    -- item_months: per local month of publication (what an archive page and a month page
    -- hold), how many items it has and a counter that every insert, delete or visible edit
    -- of one of them moves (never reset: a month emptied keeps its row at 0 items), so an
    -- unchanged month is told by one row; items_month reads one month's items in order.
    -- item_categories: how many items use each category, so the category feeds are listed
    -- without parsing every item's categories.
    CREATE TABLE item_months (
        month TEXT PRIMARY KEY,         -- YYYY-MM of the local published time
        items INTEGER NOT NULL,
        changes INTEGER NOT NULL
    );
    INSERT INTO item_months (month, items, changes)
        SELECT substr(published, 1, 7), count(*), 1 FROM items GROUP BY 1;
    CREATE INDEX items_month ON items (substr(published, 1, 7), published_utc DESC, id);
    CREATE TABLE item_categories (
        category TEXT PRIMARY KEY,
        items INTEGER NOT NULL
    );
    INSERT INTO item_categories (category, items)
        SELECT c.value, count(DISTINCT items.id) FROM items, json_each(items.categories) AS c
        GROUP BY 1;
    CREATE TRIGGER item_months_inserted AFTER INSERT ON items
    BEGIN
        INSERT OR IGNORE INTO item_months (month, items, changes)
            VALUES (substr(NEW.published, 1, 7), 0, 0);
        UPDATE item_months SET items = items + 1, changes = changes + 1
            WHERE month = substr(NEW.published, 1, 7);
        INSERT OR IGNORE INTO item_categories (category, items)
            SELECT value, 0 FROM json_each(NEW.categories);
        UPDATE item_categories SET items = items + 1
            WHERE category IN (SELECT value FROM json_each(NEW.categories));
    END;
    CREATE TRIGGER item_months_deleted AFTER DELETE ON items
    BEGIN
        UPDATE item_months SET items = items - 1, changes = changes + 1
            WHERE month = substr(OLD.published, 1, 7);
        UPDATE item_categories SET items = items - 1
            WHERE category IN (SELECT value FROM json_each(OLD.categories));
    END;
    CREATE TRIGGER item_months_changed AFTER UPDATE OF id, url, source, title, summary_html,
        content_html, published, published_utc, date_source, updated, image_url, image_alt,
        categories, language, author, content_hash, date_note ON items
    BEGIN
        UPDATE item_months SET items = items - 1, changes = changes + 1
            WHERE month = substr(OLD.published, 1, 7);
        INSERT OR IGNORE INTO item_months (month, items, changes)
            VALUES (substr(NEW.published, 1, 7), 0, 0);
        UPDATE item_months SET items = items + 1, changes = changes + 1
            WHERE month = substr(NEW.published, 1, 7);
        UPDATE item_categories SET items = items - 1
            WHERE category IN (SELECT value FROM json_each(OLD.categories));
        INSERT OR IGNORE INTO item_categories (category, items)
            SELECT value, 0 FROM json_each(NEW.categories);
        UPDATE item_categories SET items = items + 1
            WHERE category IN (SELECT value FROM json_each(NEW.categories));
    END;
    """
