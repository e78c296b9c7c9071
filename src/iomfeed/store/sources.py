"""What the store keeps for the sources between runs: HTTP validators, each origin's
robots.txt, articles that answered 404 (tried again later), and whether a full walk of a
listing completed."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ..models import MissingArticle
from .base import StoreBase, parse, utc
from .records import SavedValidators


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
        first_missing=parse(r["first_missing"]),
        last_try=parse(r["last_try"]),
        attempts=r["attempts"],
        status=r["status"],
        next_try=parse(r["next_try"]) if r["next_try"] else None,
    )


class SourceStateMixin(StoreBase):
    """Per-source and per-URL state that makes the next fetch cheaper."""

    def get_validators(self, url: str) -> SavedValidators:
        row = self.db.execute(
            "SELECT etag, last_modified FROM http_validators WHERE url = ?", (url,)
        ).fetchone()
        return (
            SavedValidators(None, None)
            if row is None
            else SavedValidators(row["etag"], row["last_modified"])
        )

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
            (url, etag, last_modified, utc(now)),
        )

    def cached_robots(self, origin: str, fetched_after: datetime) -> str | None:
        """The robots.txt of ``origin`` as fetched after ``fetched_after``, or None."""
        row = self.db.execute(
            "SELECT body FROM robots_txt WHERE origin = ? AND fetched > ?",
            (origin, utc(fetched_after)),
        ).fetchone()
        return None if row is None else str(row["body"])

    def save_robots(self, origin: str, body: str, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO robots_txt (origin, fetched, body) VALUES (?, ?, ?)"
            " ON CONFLICT (origin) DO UPDATE SET fetched = excluded.fetched, body = excluded.body",
            (origin, utc(now), body),
        )

    def missing_article(self, url: str) -> MissingArticle | None:
        """The 404 state of a listed article at this canonical URL, if it answered 404."""
        row = self.db.execute("SELECT * FROM missing_articles WHERE url = ?", (url,)).fetchone()
        return None if row is None else _missing(row)

    def missing_due(self, source: str, now: datetime) -> list[MissingArticle]:
        """The source's missing articles whose next try has come, the longest due first."""
        rows = self.db.execute(
            "SELECT * FROM missing_articles WHERE source = ? AND next_try IS NOT NULL"
            " AND next_try <= ? ORDER BY next_try, url",
            (source, utc(now)),
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
                utc(missing.first_missing),
                utc(missing.last_try),
                missing.attempts,
                missing.status,
                utc(missing.next_try) if missing.next_try else None,
            ),
        )

    def forget_missing(self, url: str) -> None:
        """The article was found (and stored): no more retries."""
        self.db.execute("DELETE FROM missing_articles WHERE url = ?", (url,))

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
            (source, utc(now), filter_hash),
        )
