"""The web forms' rate limits: sign-ups counted per key (a keyed hash of a client address
or of an e-mail address), in the store so that every thread and every process of a WSGI
server sees the same counts; and the sign-ups handed over to the background worker, kept
until their effect is done so that a killed process loses none."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from .base import StoreBase, utc
from .records import QueuedSignUp


class FormsMixin(StoreBase):
    """Counting sign-ups for the forms' rate limits; the queue of web sign-ups."""

    def queue_sign_up(
        self,
        *,
        address: str,
        name: str,
        language: str,
        categories: Sequence[str],
        ip: str,
        now: datetime,
        limit: int,
    ) -> bool:
        """Keep a sign-up for the worker; False (nothing kept) when ``limit`` are waiting."""
        with self.transaction() as db:
            (waiting,) = db.execute("SELECT count(*) FROM signup_queue").fetchone()
            if waiting >= limit:
                return False
            db.execute(
                "INSERT INTO signup_queue (received, address, name, language, categories, ip)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (utc(now), address, name, language, json.dumps(list(categories)), ip),
            )
        return True

    def sign_up_claimers(self) -> list[str]:
        """The workers (``host:pid``) that hold a claim on a waiting sign-up."""
        rows = self.db.execute(
            "SELECT DISTINCT claimed_by FROM signup_queue WHERE claimed IS NOT NULL"
        )
        return [str(r[0]) for r in rows]

    def claim_sign_up(
        self, now: datetime, lease: timedelta, *, worker: str, dead: Sequence[str] = ()
    ) -> QueuedSignUp | None:
        """The oldest waiting sign-up, claimed for ``worker``: one nobody claimed, or one
        whose worker died (its claim is older than ``lease``, or its worker is in
        ``dead``); None when there is none."""
        marks = ", ".join("?" * len(dead)) or "NULL"
        with self.transaction() as db:  # BEGIN IMMEDIATE: no other worker between the two
            db.execute(  # forgotten while a worker that died had it: nothing left to do
                "DELETE FROM signup_queue WHERE forgotten = 1 AND (claimed < ?"
                f" OR claimed_by IN ({marks}))",
                (utc(now - lease), *dead),
            )
            row = db.execute(
                "SELECT id, address, name, language, categories, ip, claimed FROM signup_queue"
                f" WHERE forgotten = 0 AND (claimed IS NULL OR claimed < ? OR claimed_by IN"
                f" ({marks})) ORDER BY id LIMIT 1",
                (utc(now - lease), *dead),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE signup_queue SET claimed = ?, claimed_by = ? WHERE id = ?",
                (utc(now), worker, row["id"]),
            )
        return QueuedSignUp(
            row["id"],
            row["address"],
            row["name"],
            row["language"],
            tuple(json.loads(row["categories"])),
            row["ip"],
            retaken=row["claimed"] is not None,
        )

    def sign_up_forgotten(self, queued_id: int, *, gone: bool = True) -> bool:
        """Whether the sign-up's address was forgotten on request after it was claimed;
        ``gone``: the answer for a row no longer there (another worker, whose claim outlived
        this one's, finished it: not to be done again, nor erased)."""
        row = self.db.execute(
            "SELECT forgotten FROM signup_queue WHERE id = ?", (queued_id,)
        ).fetchone()
        return gone if row is None else bool(row[0])

    def finish_sign_up(self, queued_id: int) -> bool:
        """The sign-up's effect is done (or it was refused): forget it. True when its
        address was forgotten on request meanwhile (the caller erases what it added)."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT forgotten FROM signup_queue WHERE id = ?", (queued_id,)
            ).fetchone()
            db.execute("DELETE FROM signup_queue WHERE id = ?", (queued_id,))
        return row is not None and bool(row[0])

    def queued_sign_ups(self) -> int:
        """How many sign-ups wait (or are being worked on)."""
        return int(self.db.execute("SELECT count(*) FROM signup_queue").fetchone()[0])

    def drop_queued_sign_ups(self, address: str) -> int:
        """Forget the waiting sign-ups of ``address`` (its owner asked to be forgotten):
        deleted, or, for one a worker is doing, erased and marked, so that the worker
        erases what it adds (:meth:`finish_sign_up`). How many there were."""
        with self.transaction() as db:
            deleted = db.execute(
                "DELETE FROM signup_queue WHERE address = ? COLLATE NOCASE AND claimed IS NULL",
                (address,),
            ).rowcount
            marked = db.execute(
                "UPDATE signup_queue SET address = '', name = '', ip = '', forgotten = 1"
                " WHERE address = ? COLLATE NOCASE",
                (address,),
            ).rowcount
        return int(deleted) + int(marked)

    def count_hits(
        self, limits: Sequence[tuple[str, int, timedelta]], now: datetime, keep: timedelta
    ) -> bool:
        """For each ``(key, limit, window)``: whether fewer than ``limit`` hits of ``key``
        fall in the ``window`` before ``now``. When all do, one hit of each key is recorded
        and True returned; else nothing is recorded and False returned. One transaction,
        so two requests at once cannot both take the last place. Hits older than ``keep``
        are deleted on the way."""
        with self.transaction() as db:
            db.execute("DELETE FROM form_hits WHERE at < ?", (utc(now - keep),))
            for key, limit, window in limits:
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM form_hits WHERE key = ? AND at > ?",
                    (key, utc(now - window)),
                ).fetchone()
                if count >= limit:
                    return False
            db.executemany(
                "INSERT INTO form_hits (key, at) VALUES (?, ?)",
                [(key, utc(now)) for key, _limit, _window in limits],
            )
        return True
