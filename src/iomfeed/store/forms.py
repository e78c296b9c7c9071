"""The web forms' rate limits: sign-ups counted per key (a keyed hash of a client address
or of an e-mail address), in the store so that every thread and every process of a WSGI
server sees the same counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from .base import StoreBase, utc


class FormsMixin(StoreBase):
    """Counting sign-ups for the forms' rate limits."""

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
