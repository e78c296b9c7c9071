"""Digests and the delivery ledger: one row per (digest, subscriber), committed around
every message so that a crash neither loses nor doubles a delivery. A send commits once per
message: the 'sent' of one message in the same transaction as the 'sending' of the next
(:meth:`DigestsMixin.mark_sending` with ``delivered``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from ..digest.segments import decode
from ..digest.states import DeliveryStatus, DigestState
from ..errors import StoreError
from ..models import DigestRecord, StoredItem
from .base import StoreBase, parse, utc
from .items import ITEM_COLUMNS, item_from_row

if TYPE_CHECKING:  # imported where a row is made: a quiet cycle builds neither class
    from ..output_records import Delivered, Delivery


def _digest(row: sqlite3.Row) -> DigestRecord:
    return DigestRecord(
        id=row["id"],
        created=parse(row["created"]),
        since=parse(row["since"]) if row["since"] else None,
        cutoff=parse(row["cutoff"]),
        status=DigestState(row["status"]),
        items=row["items"],
        more=row["more"],
        finished=parse(row["finished"]) if row["finished"] else None,
        note=row["note"],
    )


_DELIVERY_SELECT = (
    "SELECT d.*, s.address, s.name, s.language, s.status AS sub_status,"
    " s.failures AS sub_failures"
    " FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
)


def _delivery(r: sqlite3.Row) -> Delivery:
    from ..output_records import Delivery

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
        segment=decode(r["segment"]),
    )


#: Who a new digest goes to: the active subscribers who are not paused.
_RECIPIENTS = (
    " FROM subscribers WHERE status = 'active' AND (paused_until IS NULL OR paused_until <= ?)"
)

#: Routes a recipient's chosen categories to the segment stored in their ledger row, and
#: whether that segment has anything to send them (False: their row is 'skipped').
Route = Callable[[tuple[str, ...]], tuple[str, bool]]


def _write_delivered(db: sqlite3.Connection, digest_id: int, done: Delivered) -> None:
    db.execute(
        "UPDATE deliveries SET status = 'sent', reply = ?, updated = ?"
        " WHERE digest_id = ? AND subscriber_id = ?",
        (done.reply, utc(done.at), digest_id, done.subscriber_id),
    )
    if done.reset_failures:
        db.execute(
            "UPDATE subscribers SET failures = 0 WHERE id = ? AND failures > 0",
            (done.subscriber_id,),
        )


class DigestsMixin(StoreBase):
    """Digests, what each shows, and who was sent it."""

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
        sql = f"SELECT {ITEM_COLUMNS} FROM items WHERE first_seen <= ?"
        args: list[object] = [utc(cutoff)]
        if since is not None:
            sql += (
                " AND first_seen >= ? AND id NOT IN"
                " (SELECT item_id FROM digest_items WHERE digest_id = ?)"
            )
            args += [utc(since.cutoff), since.id]
        rows = self.db.execute(sql + " ORDER BY published_utc DESC, id", args)
        return [item_from_row(r) for r in rows]

    def create_digest(
        self,
        *,
        created: datetime,
        since: datetime | None,
        cutoff: datetime,
        item_ids: list[str],
        more: int,
        left_out: list[str] | tuple[str, ...] = (),
        route: Route | None = None,
        skip_note: str = "",
    ) -> DigestRecord:
        """Record a digest and a pending delivery for every active subscriber, in one
        transaction: from here on a crash resumes this digest, never makes another.
        ``route`` (None: every category for everyone) gives each row its segment; a
        recipient it finds nothing for gets a 'skipped' row with ``skip_note``."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM digests WHERE status = 'sending'").fetchone():
                raise StoreError("a digest is still being sent; finish it first")
            cur = db.execute(
                "INSERT INTO digests (created, since, cutoff, status, items, more)"
                " VALUES (?, ?, ?, 'sending', ?, ?)",
                (utc(created), utc(since) if since else None, utc(cutoff), len(item_ids), more),
            )
            digest_id = int(cur.lastrowid or 0)
            # The items shown, then those only counted in "N more": all of them are this
            # digest's, so the next one does not hold them again.
            db.executemany(
                "INSERT INTO digest_items (digest_id, position, item_id) VALUES (?, ?, ?)",
                [(digest_id, i, item_id) for i, item_id in enumerate([*item_ids, *left_out])],
            )
            self._ledger(db, digest_id, created, route, skip_note)
        record = self.digest(digest_id)
        assert record is not None
        return record

    @staticmethod
    def _ledger(
        db: sqlite3.Connection,
        digest_id: int,
        created: datetime,
        route: Route | None,
        skip_note: str,
    ) -> None:
        when = utc(created)
        if route is None:
            db.execute(
                f"INSERT INTO deliveries (digest_id, subscriber_id, status, updated)"
                f" SELECT ?, id, 'pending', ?{_RECIPIENTS}",
                (digest_id, when, when),
            )
            return
        rows = []
        for sid, chosen in db.execute(f"SELECT id, categories{_RECIPIENTS}", (when,)):
            segment, wanted = route(tuple(json.loads(chosen)))
            status, reply = ("pending", "") if wanted else ("skipped", skip_note)
            rows.append((digest_id, sid, status, segment, reply, when))
        db.executemany(
            "INSERT INTO deliveries (digest_id, subscriber_id, status, segment, reply, updated)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )

    def recipient_choices(self, now: datetime) -> list[tuple[str, tuple[str, ...], int]]:
        """The distinct (language, categories chosen) of the subscribers a digest made now
        would go to, each with how many chose so."""
        rows = self.db.execute(
            f"SELECT language, categories, count(*){_RECIPIENTS} GROUP BY 1, 2 ORDER BY 1, 2",
            (utc(now),),
        )
        return [(str(r[0]), tuple(json.loads(r[1])), int(r[2])) for r in rows]

    def digest_segments(self, digest_id: int) -> list[tuple[str, tuple[str, ...]]]:
        """The distinct (language, segment) of the deliveries of a digest still due."""
        rows = self.db.execute(
            "SELECT DISTINCT s.language, d.segment FROM deliveries d"
            " JOIN subscribers s ON s.id = d.subscriber_id WHERE d.digest_id = ?"
            " AND d.status IN ('pending', 'sending') ORDER BY 1, 2",
            (digest_id,),
        )
        return [(str(r[0]), decode(r[1])) for r in rows]

    def skip_digest(self, *, created: datetime, since: datetime | None, note: str) -> int:
        """Record that a due digest was not sent (and why), so the schedule moves on."""
        cur = self.db.execute(
            "INSERT INTO digests (created, since, cutoff, status, items, more, finished, note)"
            " VALUES (?, ?, ?, 'skipped', 0, 0, ?, ?)",
            (utc(created), utc(since) if since else None, utc(created), utc(created), note),
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

    def digest_left_out(self, digest_id: int) -> list[str]:
        """The items the digest holds but does not show (counted in "N more"), in order."""
        rows = self.db.execute(
            "SELECT item_id FROM digest_items WHERE digest_id = ?"
            " AND position >= (SELECT items FROM digests WHERE id = ?)"
            " ORDER BY position",
            (digest_id, digest_id),
        )
        return [str(r[0]) for r in rows]

    def digest_days(self) -> list[tuple[int, datetime]]:
        """(id, created) of every digest that was not skipped, oldest first: what names
        their web pages (``digest.pages.page_stem``)."""
        rows = self.db.execute(
            "SELECT id, created FROM digests WHERE status != 'skipped' ORDER BY id"
        )
        return [(int(r[0]), parse(r[1])) for r in rows]

    def archived_digests(self) -> list[tuple[DigestRecord, list[str]]]:
        """The digests that went out, newest first, each with the ids of the items it
        shows: those sent to everyone, and those still being sent (or interrupted) of
        which one message at least was accepted. Skipped ones have nothing to show."""
        records = [
            _digest(r)
            for r in self.db.execute(
                "SELECT * FROM digests WHERE status = 'sent' OR (status = 'sending' AND"
                " EXISTS (SELECT 1 FROM deliveries WHERE digest_id = digests.id"
                " AND status = 'sent')) ORDER BY id DESC"
            )
        ]
        shown: dict[int, list[str]] = {}
        for r in self.db.execute(
            "SELECT di.digest_id, di.item_id FROM digest_items di"
            " JOIN digests d ON d.id = di.digest_id WHERE di.position < d.items"
            " ORDER BY di.digest_id, di.position"
        ):
            shown.setdefault(int(r[0]), []).append(str(r[1]))
        return [(record, shown.get(record.id, [])) for record in records]

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

    def delivered_any(self, digest_id: int) -> bool:
        """Whether any of the digest's deliveries went through, in the index alone."""
        row = self.db.execute(
            "SELECT EXISTS (SELECT 1 FROM deliveries WHERE digest_id = ? AND status = 'sent')",
            (digest_id,),
        ).fetchone()
        return bool(row[0])

    def failed_deliveries(self, digest_id: int) -> int:
        """The digest's permanently failed deliveries, counted in the (digest, status) index
        alone: what the operator alerts read, without counting every recipient."""
        row = self.db.execute(
            "SELECT count(*) FROM deliveries WHERE digest_id = ? AND status = 'failed'",
            (digest_id,),
        ).fetchone()
        return int(row[0])

    def delivery_totals(self, digest_id: int) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, count(*) FROM deliveries WHERE digest_id = ? GROUP BY status",
            (digest_id,),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def mark_sending(
        self,
        digest_id: int,
        subscriber_id: int,
        now: datetime,
        *,
        ambiguous: bool = False,
        delivered: Delivered | None = None,
    ) -> bool:
        """Committed before the message leaves: after a crash this row says 'maybe sent'.
        False (and nothing changed) when the subscriber is no longer active or is paused:
        someone who unsubscribed or paused a second ago does not get the digest.
        ``delivered``, the message before it, is recorded 'sent' in the same transaction
        (whatever this row's answer): one commit per message, not two."""
        sql = (
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1,"
            " ambiguous = max(ambiguous, ?), updated = ?"
            " WHERE digest_id = ? AND subscriber_id = ? AND EXISTS (SELECT 1 FROM subscribers"
            " WHERE id = ? AND status = 'active' AND (paused_until IS NULL OR paused_until <= ?))"
        )
        args = (int(ambiguous), utc(now), digest_id, subscriber_id, subscriber_id, utc(now))
        if delivered is None:
            return self.db.execute(sql, args).rowcount > 0
        with self.transaction() as db:
            _write_delivered(db, digest_id, delivered)
            return db.execute(sql, args).rowcount > 0

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
        refused): the rows are pending again, the subscribers' counts and bounces undone.
        Only a row still 'failed' is undone, so undoing it again changes nothing."""
        with self.transaction() as db:
            for sid in subscriber_ids:
                if not db.execute(
                    "UPDATE deliveries SET status = 'pending', updated = updated"
                    " WHERE digest_id = ? AND subscriber_id = ? AND status = 'failed'",
                    (digest_id, sid),
                ).rowcount:
                    continue
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
            (reason[:500], utc(now), digest_id, subscriber_id),
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
        (``reset_failures=False`` when the caller knows there is none: one statement).
        A send records most of its messages with the next one's 'sending' instead."""
        from ..output_records import Delivered

        done = Delivered(subscriber_id, reply, now, reset_failures)
        if not reset_failures:
            _write_delivered(self.db, digest_id, done)
            return
        with self.transaction() as db:
            _write_delivered(db, digest_id, done)

    def mark_deferred(
        self, digest_id: int, subscriber_id: int, reply: str, now: datetime, *, give_up: bool
    ) -> None:
        """A temporary failure: pending again for the next run, or failed when it has been
        tried too often."""
        self.db.execute(
            "UPDATE deliveries SET status = ?, reply = ?, updated = ?"
            " WHERE digest_id = ? AND subscriber_id = ?",
            ("failed" if give_up else "pending", reply, utc(now), digest_id, subscriber_id),
        )

    def mark_failed(
        self, digest_id: int, subscriber_id: int, reply: str, now: datetime, *, bounce_after: int
    ) -> bool:
        """A permanent failure for this address; True when it marked the subscriber bounced."""
        with self.transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = 'failed', reply = ?, updated = ?"
                " WHERE digest_id = ? AND subscriber_id = ?",
                (reply, utc(now), digest_id, subscriber_id),
            )
            db.execute(
                "UPDATE subscribers SET failures = failures + 1 WHERE id = ?", (subscriber_id,)
            )
            cur = db.execute(
                "UPDATE subscribers SET status = 'bounced', left_at = ?, reason = ?"
                " WHERE id = ? AND status = 'active' AND failures >= ?",
                (utc(now), f"bounced: {reply}"[:500], subscriber_id, bounce_after),
            )
            return cur.rowcount > 0

    def mark_skipped(self, digest_id: int, subscriber_id: int, reason: str, now: datetime) -> None:
        self.db.execute(
            "UPDATE deliveries SET status = 'skipped', reply = ?, updated = ?"
            " WHERE digest_id = ? AND subscriber_id = ?",
            (reason, utc(now), digest_id, subscriber_id),
        )

    def set_digest_note(self, digest_id: int, note: str) -> None:
        """What a digest that was sent notes: why its last send stopped, or '' (cleared)."""
        self.db.execute(
            "UPDATE digests SET note = ? WHERE id = ? AND status != 'skipped'", (note, digest_id)
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
                (utc(now), digest_id),
            )
        return True
