"""The ledger's commits during a send: one per message, the 'sent' of a message joined with
the 'sending' of the next, and what another reader of the database sees (only what was
committed) whenever a message leaves: that message 'sending', every one before it 'sent'."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from iomfeed.delivery.mailers import PermanentFailure
from iomfeed.digest.message import Outgoing
from iomfeed.pipeline import send_digest
from iomfeed.store import Store

from .conftest import NOW
from .digestkit import add_items, add_subscribers, digest_config

SUBSCRIBERS = 12


class Commits:
    """The store's connection, counting the transactions it commits: each COMMIT, and each
    write made outside a transaction (SQLite commits those by themselves)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.count = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        verb = sql.lstrip().split(None, 1)[0].upper()
        writes = verb in ("INSERT", "UPDATE", "DELETE", "REPLACE")
        self.count += verb == "COMMIT" or (writes and not self.db.in_transaction)
        return self.db.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        self.count += not self.db.in_transaction
        return self.db.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


class Watching:
    """A mailer that, as each message leaves, reads the committed ledger from a second
    connection and notes the commits made since the message before."""

    def __init__(self, db: Path, commits: Commits, refuse: set[str]) -> None:
        self.reader = sqlite3.connect(str(db))
        self.commits = commits
        self.refuse = refuse
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.between: list[int] = []
        self._last = -1

    def send(self, message: Outgoing) -> str:
        if self._last >= 0:
            self.between.append(self.commits.count - self._last)
        self._last = self.commits.count
        rows = self.reader.execute(
            "SELECT s.address, d.status FROM deliveries d JOIN subscribers s"
            " ON s.id = d.subscriber_id"
        ).fetchall()
        self.seen.append((message.recipient, dict(rows)))
        if message.recipient in self.refuse:
            raise PermanentFailure("550 5.1.1 no such user")
        return "250 OK"

    def close(self) -> None:
        self.reader.close()


def send(tmp_path: Path, refuse: set[str]) -> tuple[Watching, dict[str, int]]:
    config = digest_config(tmp_path)
    with Store(tmp_path / "db.sqlite") as store:
        add_subscribers(store, SUBSCRIBERS)
        add_items(store, range(3), NOW - timedelta(days=1))
        commits = Commits(store.db)
        store.db = commits  # type: ignore[assignment]
        mailer = Watching(tmp_path / "db.sqlite", commits, refuse)
        outcome = send_digest(config, store=store, mailer=mailer, clock=lambda: NOW)
        assert outcome.delivery is not None
        record = store.last_digest()
        assert record is not None
        return mailer, store.delivery_totals(record.id)


def test_one_commit_per_message_and_the_one_in_flight_is_the_only_one_sending(
    tmp_path: Path,
) -> None:
    mailer, totals = send(tmp_path, refuse=set())
    assert totals == {"sent": SUBSCRIBERS}
    assert mailer.between == [1] * (SUBSCRIBERS - 1)
    order = [recipient for recipient, _ in mailer.seen]
    for n, (recipient, ledger) in enumerate(mailer.seen):
        assert ledger[recipient] == "sending"
        assert [a for a, s in ledger.items() if s == "sending"] == [recipient]
        assert all(ledger[a] == "sent" for a in order[:n])  # nothing taken is unrecorded
        assert all(ledger[a] == "pending" for a in order[n + 1 :])


def test_a_refusal_between_two_deliveries_records_both(tmp_path: Path) -> None:
    refused = "reader3@example.org"
    mailer, totals = send(tmp_path, refuse={refused})
    assert totals == {"sent": SUBSCRIBERS - 1, "failed": 1}
    order = [recipient for recipient, _ in mailer.seen]
    after = order.index(refused) + 1
    ledger = mailer.seen[after][1]
    assert ledger[refused] == "failed"
    assert all(ledger[a] == "sent" for a in order[: after - 1])
