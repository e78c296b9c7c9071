"""Subscribers: who is on the list, in which language, and who left (and why)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime

from ..subscribers import Subscriber
from .base import StoreBase, parse, utc


def _subscriber(row: sqlite3.Row) -> Subscriber:
    return Subscriber(
        id=row["id"],
        address=row["address"],
        name=row["name"],
        language=row["language"],
        status=row["status"],
        subscribed=parse(row["subscribed"]),
        left=parse(row["left_at"]) if row["left_at"] else None,
        reason=row["reason"],
    )


class SubscribersMixin(StoreBase):
    """The list of subscribers."""

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
                (sub.address, sub.name, sub.language, utc(now)),
            )
        return "added"

    def resubscribe(self, address: str, now: datetime) -> bool:
        """Make a subscriber who left active again (only on their own explicit request)."""
        cur = self.db.execute(
            "UPDATE subscribers SET status = 'active', subscribed = ?, left_at = NULL,"
            " reason = '' WHERE address = ? AND status != 'active'",
            (utc(now), address),
        )
        return cur.rowcount > 0

    def set_subscriber_status(self, address: str, status: str, reason: str, now: datetime) -> bool:
        """Mark a subscriber unsubscribed or bounced (with why); False if unknown."""
        cur = self.db.execute(
            "UPDATE subscribers SET status = ?, left_at = ?, reason = ? WHERE address = ?",
            (status, utc(now), reason, address),
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
