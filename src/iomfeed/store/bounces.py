"""The bounce log: what came back to the bounce mailbox, one row per message and recipient,
and the ledger facts the bounce rules read (what was sent to whom, and when)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from .base import StoreBase, parse, utc

if TYPE_CHECKING:  # the records load where a row becomes one, not with every store
    from ..bounces.records import BounceEvent, SentDigest


def _event(row: sqlite3.Row) -> BounceEvent:
    from ..bounces.records import Action, BounceEvent, Kind, Trust

    return BounceEvent(
        message_key=row["message_key"],
        message_id=row["message_id"],
        received=parse(row["received"]),
        kind=Kind(row["kind"]),
        subscriber_id=row["subscriber_id"],
        digest_id=row["digest_id"],
        address=row["address"],
        status=row["status"],
        trust=Trust(row["trust"]),
        action=Action(row["action"]),
        detail=row["detail"],
    )


class BouncesMixin(StoreBase):
    """Bounces, complaints and auto-replies read from the bounce mailbox."""

    def bounce_seen(self, message_key: str) -> bool:
        """Whether a message with this key was processed already (its effect stored)."""
        row = self.db.execute(
            "SELECT 1 FROM bounce_events WHERE message_key = ? LIMIT 1", (message_key,)
        ).fetchone()
        return row is not None

    def record_bounce(self, events: Sequence[BounceEvent]) -> int:
        """Store one message's events and their effect in one transaction: a subscriber an
        event marks bounced or unsubscribed (only while on the list) changes with it.
        Nothing is stored twice: a message already recorded is left as it was. How many
        subscribers changed."""
        changed = 0
        with self.transaction() as db:
            if (
                events
                and db.execute(
                    "SELECT 1 FROM bounce_events WHERE message_key = ? LIMIT 1",
                    (events[0].message_key,),
                ).fetchone()
            ):
                return 0
            for e in events:
                db.execute(
                    "INSERT INTO bounce_events (message_key, message_id, received, kind,"
                    " subscriber_id, digest_id, address, status, trust, action, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        e.message_key,
                        e.message_id,
                        utc(e.received),
                        e.kind.value,
                        e.subscriber_id,
                        e.digest_id,
                        e.address,
                        e.status,
                        e.trust.value,
                        e.action.value,
                        e.detail[:500],
                    ),
                )
                changed += _apply(db, e)
        return changed

    def sent_digests(self, subscriber_id: int) -> list[SentDigest]:
        """The digests that went to (or were refused for) a subscriber since they joined
        (or rejoined), newest first, with the bounces recorded for each: what the streak
        rules read."""
        from ..bounces.records import SentDigest

        rows = self.db.execute(
            "SELECT d.digest_id, d.updated, d.status, d.reply,"
            " EXISTS (SELECT 1 FROM bounce_events b WHERE b.subscriber_id = d.subscriber_id"
            "   AND b.digest_id = d.digest_id AND b.kind = 'hard' AND b.action != 'ignored')"
            "   AS hard,"
            " EXISTS (SELECT 1 FROM bounce_events b WHERE b.subscriber_id = d.subscriber_id"
            "   AND b.digest_id = d.digest_id AND b.kind = 'soft' AND b.action != 'ignored')"
            "   AS soft"
            " FROM deliveries d WHERE d.subscriber_id = ? AND d.status IN ('sent', 'failed')"
            # since they (re)joined: the streak of before they left is over
            " AND d.updated >= (SELECT subscribed FROM subscribers WHERE id = d.subscriber_id)"
            " ORDER BY d.digest_id DESC",
            (subscriber_id,),
        )
        return [
            SentDigest(
                digest_id=r["digest_id"],
                sent=parse(r["updated"]),
                refused=r["status"] == "failed" and str(r["reply"])[:1] == "5",
                hard=bool(r["hard"]),
                soft=bool(r["soft"]),
            )
            for r in rows
        ]

    def last_mailed(self, subscriber_id: int, since: datetime) -> tuple[bool, int | None]:
        """Whether the subscriber was sent a digest the relay took since ``since`` (or the
        welcome, which follows a confirmation by the address's owner), and the latest digest
        sent to them then (None: none). A confirmation or "already subscribed" notice does
        not count: anyone can have one sent through the sign-up form."""
        row = self.db.execute(
            "SELECT max(digest_id) FROM deliveries WHERE subscriber_id = ? AND status = 'sent'"
            " AND updated >= ?",
            (subscriber_id, utc(since)),
        ).fetchone()
        digest_id = row[0] if row is not None else None
        if digest_id is not None:
            return True, int(digest_id)
        notice = self.db.execute(
            "SELECT 1 FROM subscribers WHERE id = ? AND confirmed_at >= ?",
            (subscriber_id, utc(since)),
        ).fetchone()
        return notice is not None, None

    def bounce_events(
        self, *, subscriber_id: int | None = None, digest_id: int | None = None, limit: int = -1
    ) -> list[BounceEvent]:
        """Recorded events, newest first: of one subscriber, of one digest, or all."""
        where, args = [], []
        if subscriber_id is not None:
            where.append("subscriber_id = ?")
            args.append(subscriber_id)
        if digest_id is not None:
            where.append("digest_id = ?")
            args.append(digest_id)
        sql = "SELECT * FROM bounce_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [_event(r) for r in rows]

    def bounce_counts(self, since: datetime | None = None) -> dict[str, int]:
        """Messages of the bounce mailbox by kind (and ``ignored``: not acted on)."""
        where, args = ("WHERE received >= ?", (utc(since),)) if since else ("", ())
        counts = {
            str(r[0]): int(r[1])
            for r in self.db.execute(
                f"SELECT kind, count(DISTINCT message_key) FROM bounce_events {where}"
                " GROUP BY kind",
                args,
            )
        }
        ignored = self.db.execute(
            f"SELECT count(*) FROM bounce_events {where or 'WHERE 1'} AND action = 'ignored'"
            " AND kind IN ('hard', 'soft', 'complaint')",
            args,
        ).fetchone()[0]
        counts["ignored"] = int(ignored)
        return counts


def _apply(db: sqlite3.Connection, e: BounceEvent) -> int:
    from ..bounces.records import Action, Kind

    if e.subscriber_id is None:
        return 0
    if e.action is Action.COUNTED and e.hard_streak > 0:
        _continue_streak(db, e.subscriber_id, e.hard_streak)
    if e.action not in (Action.BOUNCED, Action.UNSUBSCRIBED):
        return 0
    status = "bounced" if e.action is Action.BOUNCED else "unsubscribed"
    what = f"bounced after the fact ({e.status})"
    if e.kind is Kind.COMPLAINT:
        what = "complaint"
    elif e.kind is Kind.UNSUBSCRIBE:
        what = "unsubscribe by mail"
    cur = db.execute(
        "UPDATE subscribers SET status = ?, left_at = ?, reason = ?"
        " WHERE id = ? AND status IN ('active', 'pending')",
        (status, utc(e.received), f"{what}: {e.detail}"[:500], e.subscriber_id),
    )
    return cur.rowcount


def _continue_streak(db: sqlite3.Connection, subscriber_id: int, streak: int) -> None:
    """A hard bounce whose run of failed digests reaches the latest digest sent to (or
    refused for) the subscriber (the policy says so, :attr:`Verdict.hard_streak`): the
    send's count of failures in a row continues from that run, so a refusal in the next
    send is one more."""
    db.execute(
        "UPDATE subscribers SET failures = max(failures, ?) WHERE id = ? AND status = 'active'",
        (streak, subscriber_id),
    )
