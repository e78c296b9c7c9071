"""Publishing state: which files were generated from what, feed ids, owed WebSub pings."""

from __future__ import annotations

from datetime import UTC, datetime

from .base import StoreBase, utc
from .records import PublishedFile


class PublishedMixin(StoreBase):
    """What the last publish wrote, so the next one rewrites only what changed."""

    def published_file(self, path: str) -> PublishedFile | None:
        """What was recorded when ``path`` was last published."""
        row = self.db.execute(
            "SELECT fingerprint, size, mtime_ns FROM published_files WHERE path = ?", (path,)
        ).fetchone()
        return None if row is None else PublishedFile(str(row[0]), int(row[1]), int(row[2]))

    def published_files(self) -> dict[str, PublishedFile]:
        """Every recorded file by its path."""
        return {
            str(r[0]): PublishedFile(str(r[1]), int(r[2]), int(r[3]))
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

    def entry_id(self, key: str, now: datetime) -> str:
        """The permanent Atom id of an entry iomfeed itself makes (a digest's page), minted
        on its first publication and kept with the feed ids."""
        stored = f"entry:{key}"
        row = self.db.execute("SELECT id FROM feed_ids WHERE key = ?", (stored,)).fetchone()
        if row is not None:
            return str(row[0])
        minted = f"tag:{self.tag_authority},{now.astimezone(UTC):%Y-%m-%d}:{key}"
        self.db.execute("INSERT INTO feed_ids (key, id) VALUES (?, ?)", (stored, minted))
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
                (feed_url, utc(now)),
            )
        else:
            self.db.execute("DELETE FROM websub_pending WHERE feed_url = ?", (feed_url,))

    def changes(self) -> dict[str, int]:
        """How often the items and the digests changed, by area: counters the schema's
        triggers move, compared between publishes rather than read for their value."""
        return {str(r[0]): int(r[1]) for r in self.db.execute("SELECT area, n FROM changes")}
