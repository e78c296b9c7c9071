"""Subscribers: who is on the list, in which language, and who left (and why).

The records (:mod:`..subscribers`, :mod:`..consent`) are imported where a row becomes one:
a cron cycle opens the store without reading a subscriber, and loads neither.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .base import StoreBase, parse, utc

if TYPE_CHECKING:
    from ..consent import Consent, ConsentVia, DeliveryRecord, Profile
    from ..subscribers import Subscriber


#: The setting that holds the next subscriber id to give (see :func:`_next_id`).
_NEXT_ID = "subscribers:next_id"

#: What a sign-up for someone who left replaces, kept aside until they confirm it.
_PROFILE = (
    "name",
    "language",
    "categories",
    "subscribed",
    "consent_at",
    "consent_via",
    "consent_language",
    "consent_ip",
    "confirmed_at",
    "paused_until",
)
_KEPT = "json_object(" + ", ".join(f"'{c}', {c}" for c in _PROFILE) + ")"
_PUT_BACK = ", ".join(
    f"{c} = CASE WHEN left_profile = '' THEN {c} ELSE json_extract(left_profile, '$.{c}') END"
    for c in _PROFILE
)


def _next_id(db: sqlite3.Connection) -> int:
    """The id of a new subscriber, in the transaction that adds it: one past both the
    highest id and every id given or used up before (:meth:`SubscribersMixin.
    skip_subscriber_id`), so an id is never given twice, even after its row was deleted."""
    row = db.execute(
        "SELECT (SELECT coalesce(max(id), 0) + 1 FROM subscribers),"
        " (SELECT value FROM settings WHERE key = ?)",
        (_NEXT_ID,),
    ).fetchone()
    given = max(int(row[0]), int(row[1] or 0))
    db.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key)"
        " DO UPDATE SET value = excluded.value",
        (_NEXT_ID, str(given + 1)),
    )
    return given


def _when(text: str | None) -> datetime | None:
    return parse(text) if text else None


def _subscriber(row: sqlite3.Row) -> Subscriber:
    from ..subscribers import Subscriber

    return Subscriber(
        id=row["id"],
        address=row["address"] or "",
        name=row["name"],
        language=row["language"],
        status=row["status"],
        subscribed=parse(row["subscribed"]),
        left=parse(row["left_at"]) if row["left_at"] else None,
        reason=row["reason"],
    )


def _profile(row: sqlite3.Row) -> Profile:
    from ..consent import Consent, ConsentVia, Profile, State

    via = row["consent_via"]
    return Profile(
        id=row["id"],
        address=row["address"] or "",
        name=row["name"],
        language=row["language"],
        state=State(row["status"]),
        subscribed=parse(row["subscribed"]),
        left=_when(row["left_at"]),
        reason=row["reason"],
        failures=row["failures"],
        consent=Consent(
            at=_when(row["consent_at"]),
            via=ConsentVia(via) if via else None,
            language=row["consent_language"],
            ip=row["consent_ip"],
            confirmed=_when(row["confirmed_at"]),
        ),
        categories=tuple(json.loads(row["categories"])),
        paused_until=_when(row["paused_until"]),
        confirm_sent=_when(row["confirm_sent"]),
        notice_sent=_when(row["notice_sent"]),
    )


class SubscribersMixin(StoreBase):
    """The list of subscribers."""

    def add_subscriber(self, sub: Subscriber, now: datetime, via: ConsentVia | None = None) -> str:
        """Add an active subscriber (with consent given ``via`` the operator, recorded as of
        ``now``): 'added', 'exists' (already active), or 'left' (they unsubscribed or
        bounced before and are not re-added behind their back). A pending sign-up the
        operator adds is made active: the operator has their consent; but not one made by
        someone who had left (anyone may type an address into the form: until its owner
        confirms, they still have left)."""
        from ..consent import State

        consent = via.value if via else ""
        with self.transaction() as db:
            row = db.execute(
                "SELECT status, left_at FROM subscribers WHERE address = ?", (sub.address,)
            ).fetchone()
            if row is not None and row["status"] == State.PENDING.value and row["left_at"]:
                return "left"
            if row is not None and row["status"] == State.PENDING.value:
                db.execute(
                    "UPDATE subscribers SET status = 'active', consent_at = ?, consent_via = ?,"
                    " consent_language = '', consent_ip = '' WHERE address = ?",
                    (utc(now), consent, sub.address),
                )
                return "added"
            if row is not None:
                return "exists" if row["status"] == "active" else "left"
            db.execute(
                "INSERT INTO subscribers (id, address, name, language, status, subscribed,"
                " consent_at, consent_via) VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
                (
                    _next_id(db),
                    sub.address,
                    sub.name,
                    sub.language,
                    utc(now),
                    utc(now) if via else None,
                    consent,
                ),
            )
        return "added"

    def resubscribe(self, address: str, now: datetime, via: ConsentVia | None = None) -> bool:
        """Make a subscriber who left active again (only on their own explicit request,
        which is recorded as consent given ``via`` the operator). A sign-up for them still
        waiting for confirmation is not theirs until confirmed: what it replaced comes back
        (name, language, categories), with the new consent."""
        cur = self.db.execute(
            # The last assignment of a column wins: the consent is the new one.
            f"UPDATE subscribers SET {_PUT_BACK}, left_profile = '', left_status = '',"
            " confirm_sent = NULL, status = 'active', subscribed = ?, left_at = NULL,"
            " reason = '', failures = 0, consent_at = ?, consent_via = ?, consent_language = '',"
            " consent_ip = '' WHERE address = ? AND status != 'active'",
            (utc(now), utc(now) if via else None, via.value if via else "", address),
        )
        return cur.rowcount > 0

    # ------------------------------------------------------------ the sign-up lifecycle

    def profile(self, *, address: str = "", subscriber_id: int = 0) -> Profile | None:
        """Everything stored about one subscriber, by address or id; None when there is
        none (a forgotten subscriber has no address: looked up by id, they are None too)."""
        if address:
            sql, key = "SELECT * FROM subscribers WHERE address = ?", address
        else:
            sql, key = (
                "SELECT * FROM subscribers WHERE id = ? AND address IS NOT NULL",
                str(subscriber_id),
            )
        row = self.db.execute(sql, (key,)).fetchone()
        return None if row is None else _profile(row)

    def add_pending(
        self, sub: Subscriber, categories: Sequence[str], consent: Consent, now: datetime
    ) -> int | None:
        """A new sign-up, pending until confirmed, its confirmation counted as going now
        (:meth:`release_sign_up_mail` uncounts it); its id, or None when another process added the
        address in between (that one sends the confirmation)."""
        with self.transaction() as db:
            sid = _next_id(db)
            cur = db.execute(
                "INSERT INTO subscribers (id, address, name, language, status, subscribed,"
                " consent_at, consent_via, consent_language, consent_ip, categories,"
                " confirm_sent) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (address) DO NOTHING",
                (
                    sid,
                    sub.address,
                    sub.name,
                    sub.language,
                    utc(now),
                    utc(consent.at or now),
                    consent.via.value if consent.via else "",
                    consent.language,
                    consent.ip,
                    json.dumps(list(categories), ensure_ascii=False),
                    utc(now),
                ),
            )
        return sid if cur.rowcount else None

    def skip_subscriber_id(self) -> None:
        """Use up the id a new sign-up would have had. A sign-up of an address already here
        makes no row; were no id used, the ids in the confirmation links of sign-ups made
        just before and after it (one apart instead of two) would tell anyone that the
        address is known to the list."""
        with self.transaction() as db:
            _next_id(db)

    def restart_pending(
        self,
        subscriber_id: int,
        sub: Subscriber,
        categories: Sequence[str],
        consent: Consent,
        *,
        state: str,
        now: datetime,
        resend_after: datetime,
    ) -> tuple[bool, datetime | None]:
        """Someone signs up again: pending, with the new sign-up's consent, and a new
        confirmation counted as going ``now``. Only if the row is still in ``state`` (as
        read before) and, when pending, its last confirmation went before
        ``resend_after``: two processes taking up sign-ups of one address send one
        confirmation, not two. Returns whether it was done, and when the confirmation
        before went (None: never), for :meth:`release_sign_up_mail`.

        When and why someone left (and their bounce count) stay until they confirm: the
        sign-up may be anyone's, and an unconfirmed one must not undo an unsubscribe. What
        was on record of them (:data:`_KEPT`) is kept aside, for
        :meth:`drop_unconfirmed_return` to put back."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT confirm_sent FROM subscribers WHERE id = ? AND status = ?"
                " AND (? != 'pending' OR confirm_sent IS NULL OR confirm_sent <= ?)",
                (subscriber_id, state, state, utc(resend_after)),
            ).fetchone()
            if row is None:
                return False, None
            db.execute(
                "UPDATE subscribers SET status = 'pending', name = ?, language = ?,"
                " left_status = CASE WHEN status = 'pending' THEN left_status ELSE status END,"
                f" left_profile = CASE WHEN status = 'pending' THEN left_profile ELSE {_KEPT} END,"
                " categories = ?, subscribed = ?, consent_at = ?, consent_via = ?,"
                " consent_language = ?, consent_ip = ?, confirmed_at = NULL,"
                " paused_until = NULL, confirm_sent = ? WHERE id = ?",
                (
                    sub.name,
                    sub.language,
                    json.dumps(list(categories), ensure_ascii=False),
                    utc(consent.at) if consent.at else None,
                    utc(consent.at) if consent.at else None,
                    consent.via.value if consent.via else "",
                    consent.language,
                    consent.ip,
                    utc(now),
                    subscriber_id,
                ),
            )
        return True, _when(row[0])

    def mark_sign_up_mail(self, subscriber_id: int, column: str, now: datetime) -> None:
        """When the last confirmation (``confirm_sent``) or "already subscribed"
        (``notice_sent``) message went to this subscriber."""
        assert column in ("confirm_sent", "notice_sent")
        self.db.execute(
            f"UPDATE subscribers SET {column} = ? WHERE id = ?", (utc(now), subscriber_id)
        )

    def claim_notice(self, subscriber_id: int, now: datetime, after: datetime) -> bool:
        """Count an "already subscribed" message as going ``now`` unless one went after
        ``after`` (from another process too); whether it may go."""
        cur = self.db.execute(
            "UPDATE subscribers SET notice_sent = ? WHERE id = ? AND status = 'active'"
            " AND (notice_sent IS NULL OR notice_sent <= ?)",
            (utc(now), subscriber_id, utc(after)),
        )
        return cur.rowcount > 0

    def release_sign_up_mail(
        self, subscriber_id: int, column: str, before: datetime | None
    ) -> None:
        """A message counted as going did not go: the time of the one before, back."""
        assert column in ("confirm_sent", "notice_sent")
        self.db.execute(
            f"UPDATE subscribers SET {column} = ? WHERE id = ?",
            (utc(before) if before else None, subscriber_id),
        )

    def activate(self, subscriber_id: int, now: datetime) -> bool:
        """A pending subscriber confirmed: active from ``now``, whatever made them leave
        before forgotten; False if not pending."""
        cur = self.db.execute(
            "UPDATE subscribers SET status = 'active', confirmed_at = ?, left_at = NULL,"
            " reason = '', failures = 0, left_status = '', left_profile = ''"
            " WHERE id = ? AND status IN ('pending', 'sending')",
            (utc(now), subscriber_id),
        )
        return cur.rowcount > 0

    def set_preferences(
        self,
        subscriber_id: int,
        *,
        language: str,
        categories: Sequence[str],
        paused_until: datetime | None,
    ) -> None:
        self.db.execute(
            "UPDATE subscribers SET language = ?, categories = ?, paused_until = ? WHERE id = ?",
            (
                language,
                json.dumps(list(categories), ensure_ascii=False),
                utc(paused_until) if paused_until else None,
                subscriber_id,
            ),
        )

    def history(self, subscriber_id: int, limit: int | None = None) -> list[DeliveryRecord]:
        """The digests sent (or meant) to a subscriber, newest first."""
        from ..consent import DeliveryRecord

        rows = self.db.execute(
            "SELECT d.*, g.created FROM deliveries d JOIN digests g ON g.id = d.digest_id"
            " WHERE d.subscriber_id = ? ORDER BY d.digest_id DESC LIMIT ?",
            (subscriber_id, -1 if limit is None else limit),
        )
        return [
            DeliveryRecord(
                digest_id=r["digest_id"],
                digest_created=parse(r["created"]),
                status=r["status"],
                attempts=r["attempts"],
                updated=parse(r["updated"]),
                reply=r["reply"],
            )
            for r in rows
        ]

    def forget_subscriber(self, subscriber_id: int, suppression: str, now: datetime) -> None:
        """Erase a subscriber's address, name and consent details in one transaction and
        keep only ``suppression`` (the address's keyed hash). Their ledger rows stay, for
        the digests' totals, without the servers' replies (which may quote the address);
        a delivery still due (pending, or in doubt after a crash) is skipped."""
        with self.transaction() as db:
            db.execute(
                "UPDATE subscribers SET address = NULL, name = '', status = 'unsubscribed',"
                " left_at = ?, reason = 'forgotten on request', consent_language = '',"
                " consent_ip = '', categories = '[]', paused_until = NULL,"
                " confirm_sent = NULL, notice_sent = NULL, left_profile = '' WHERE id = ?",
                (utc(now), subscriber_id),
            )
            db.execute("UPDATE deliveries SET reply = '' WHERE subscriber_id = ?", (subscriber_id,))
            db.execute(  # a bounce quotes the address too
                "UPDATE bounce_events SET address = '', detail = '' WHERE subscriber_id = ?",
                (subscriber_id,),
            )
            db.execute(  # nothing more goes to them, nor is sent again after a crash
                "UPDATE deliveries SET status = 'skipped', reply = 'forgotten', updated = ?"
                " WHERE subscriber_id = ? AND status IN ('pending', 'sending')",
                (utc(now), subscriber_id),
            )
            db.execute(
                "INSERT OR IGNORE INTO suppressed (hash, since) VALUES (?, ?)",
                (suppression, utc(now)),
            )

    def suppress(self, suppression: str, now: datetime) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO suppressed (hash, since) VALUES (?, ?)", (suppression, utc(now))
        )

    def is_suppressed(self, *suppressions: str) -> bool:
        """Whether an entry is kept under any of ``suppressions`` (an address's hashes)."""
        marks = ",".join("?" * len(suppressions))
        row = self.db.execute(f"SELECT 1 FROM suppressed WHERE hash IN ({marks})", suppressions)
        return row.fetchone() is not None

    def unsuppress(self, *suppressions: str) -> bool:
        """Drop the entries kept under ``suppressions`` (the person gave fresh consent)."""
        marks = ",".join("?" * len(suppressions))
        cur = self.db.execute(f"DELETE FROM suppressed WHERE hash IN ({marks})", suppressions)
        return cur.rowcount > 0

    def kept_profile(self, subscriber_id: int) -> dict[str, Any]:
        """What a sign-up waiting for confirmation replaced of someone who left (see
        :meth:`restart_pending`), by column; empty when nothing is kept aside."""
        row = self.db.execute(
            "SELECT left_profile FROM subscribers WHERE id = ?", (subscriber_id,)
        ).fetchone()
        if row is None or not row[0]:
            return {}
        kept: dict[str, Any] = json.loads(row[0])
        kept["categories"] = json.loads(kept["categories"])
        return kept

    def drop_unconfirmed_return(self, address: str) -> str:
        """Someone who left and was signed up again, not confirmed: back to the state they
        left in (unsubscribed, bounced), when and why as it was, and their name, language,
        categories and consent record as they were before that sign-up. Their state now
        ('' when there was no such sign-up)."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE subscribers SET status = CASE WHEN left_status = '' THEN 'unsubscribed'"
                f" ELSE left_status END, left_status = '', confirm_sent = NULL, {_PUT_BACK},"
                " left_profile = '' WHERE address = ? AND status = 'pending'"
                " AND left_at IS NOT NULL",
                (address,),
            )
            if not cur.rowcount:
                return ""
            row = db.execute("SELECT status FROM subscribers WHERE address = ?", (address,))
            return str(row.fetchone()[0])

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
        sql = "SELECT * FROM subscribers WHERE address IS NOT NULL"  # not the forgotten
        args: tuple[str, ...] = ()
        if status is not None:
            sql += " AND status = ?"
            args = (status,)
        for row in self.db.execute(sql + " ORDER BY id", args):
            yield _subscriber(row)

    def subscriber_counts(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, count(*) FROM subscribers WHERE address IS NOT NULL GROUP BY status"
        )
        return {str(r[0]): int(r[1]) for r in rows}
