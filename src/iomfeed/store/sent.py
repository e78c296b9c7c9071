"""The sent-mail log: one row per message handed to the relay (a digest's delivery, a
sign-up notice, a test copy), by time, so the quotas (``mail.hourly_limit``,
``mail.daily_limit``) count what earlier runs and other processes sent. A digest's row is
written by a trigger as its delivery becomes 'sent', in the same statement; rows older than
the longest window are pruned as new ones are counted."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from .base import StoreBase, parse, utc

#: Whether mail with a subscriber's links went out (also read without a Store, read-only).
MAILED_ANYONE = (
    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE status IN ('sent', 'failed'))"
    " OR EXISTS (SELECT 1 FROM subscribers"
    "  WHERE confirm_sent IS NOT NULL OR notice_sent IS NOT NULL)"
)

#: How long a row is kept: the longest quota window.
KEEP = timedelta(days=1)


class SentMailMixin(StoreBase):
    """Messages sent, by time, for the relay's quotas."""

    def record_sent(self, now: datetime, kind: str) -> None:
        """Count one message that is not a digest's delivery (those count themselves)."""
        with self.transaction() as db:
            db.execute("INSERT INTO mail_sent (at, kind) VALUES (?, ?)", (utc(now), kind))
            db.execute("DELETE FROM mail_sent WHERE at <= ?", (utc(now - KEEP),))

    def prune_sent(self, now: datetime) -> None:
        """Forget the sends no window counts any more."""
        with self.transaction() as db:
            db.execute("DELETE FROM mail_sent WHERE at <= ?", (utc(now - KEEP),))

    def sent_times(self, since: datetime) -> list[datetime]:
        """When each message after ``since`` was sent, oldest first."""
        rows = self.db.execute(
            "SELECT at FROM mail_sent WHERE at > ? ORDER BY at, id", (utc(since),)
        ).fetchall()
        return [parse(r[0]) for r in rows]

    def mailed_anyone(self) -> bool:
        """Whether any message with a subscriber's links (a digest's delivery, a sign-up's
        confirmation or notice) was ever sent: links signed with the list's secret."""
        return bool(self.db.execute(MAILED_ANYONE).fetchone()[0])


def peek_settings(database: Path, keys: tuple[str, ...]) -> tuple[dict[str, str], bool] | None:
    """Settings and whether mail with links went out, read through a read-only connection:
    nothing migrated or written (``iomfeed check``). None when it cannot be told (no store,
    an older or damaged one)."""
    import sqlite3

    try:
        # With no -wal beside it the file holds everything: read it as immutable, which
        # makes no -wal or -shm either (a plain read-only open would).
        wal = database.with_name(database.name + "-wal").exists()
        flags = "mode=ro" if wal else "mode=ro&immutable=1"
        db = sqlite3.connect(f"{database.resolve().as_uri()}?{flags}", uri=True)
    except (sqlite3.Error, OSError):
        return None
    try:
        marks = ",".join("?" * len(keys))
        rows = db.execute(f"SELECT key, value FROM settings WHERE key IN ({marks})", keys)
        found = {str(k): str(v) for k, v in rows}
        return found, bool(db.execute(MAILED_ANYONE).fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        db.close()
