"""The ledger's commits during a send: one per message, the 'sent' of a message joined with
the 'sending' of the next, and what another reader of the database sees (only what was
committed) whenever a message leaves: that message 'sending', every one before it 'sent';
with a scripted mailer and over SMTP, where the commit is made while MAIL is answered, and
over several connections."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from iomfeed.delivery.mailers import PermanentFailure, make_mailer
from iomfeed.digest.message import Outgoing
from iomfeed.errors import StoreError
from iomfeed.pipeline import send_digest
from iomfeed.store import Store

from .conftest import NOW
from .digestkit import add_items, add_subscribers, digest_config
from .smtp import Behaviour, smtp_server
from .test_delivery import ScriptedMailer, smtp_config

EVERY_STATUS = ("pending", "sending", "sent", "failed", "skipped")

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


@pytest.mark.network
def test_over_smtp_the_row_is_sending_before_rcpt_and_the_data(tmp_path: Path) -> None:
    """The SMTP mailer commits the ledger while MAIL is answered: by the time the server
    sees RCPT (and so the data) of a message, the committed ledger says it is 'sending'
    and every message before it 'sent'. A subscriber who left meanwhile gets nothing."""
    seen: list[tuple[int, dict[str, str]]] = []
    reader: list[sqlite3.Connection] = []

    def hook(event: str, n: int) -> None:
        if event == "rcpt" and n == 3:  # the fifth leaves while the third is being sent
            reader[0].execute(
                "UPDATE subscribers SET status = 'unsubscribed' WHERE address = ?", (addresses[4],)
            )
            reader[0].commit()
        if event == "rcpt":
            rows = reader[0].execute(
                "SELECT s.address, d.status FROM deliveries d JOIN subscribers s"
                " ON s.id = d.subscriber_id ORDER BY s.id"
            )
            seen.append((n, dict(rows.fetchall())))

    with Store(tmp_path / "db.sqlite") as store:
        addresses = add_subscribers(store, SUBSCRIBERS)
        add_items(store, range(3), NOW - timedelta(days=1))
        reader.append(sqlite3.connect(str(tmp_path / "db.sqlite"), check_same_thread=False))
        with smtp_server(Behaviour(hook=hook)) as (handler, port):
            config = smtp_config(digest_config(tmp_path), port)
            mailer = make_mailer(config)
            outcome = send_digest(config, store=store, mailer=mailer, clock=lambda: NOW)
        reader[0].close()
        assert outcome.delivery is not None and outcome.delivery.sent == SUBSCRIBERS - 1
        record = store.last_digest()
        assert record is not None
        assert store.delivery_totals(record.id) == {"sent": SUBSCRIBERS - 1, "skipped": 1}
    order = [a for a in addresses if a != addresses[4]]
    assert [r.rcpt_tos[0] for r in handler.received] == order
    assert handler.mail_count == SUBSCRIBERS and "RSET" in handler.commands  # its MAIL reset
    assert [n for n, _ in seen] == list(range(1, SUBSCRIBERS))
    for n, ledger in seen:
        assert [a for a, s in ledger.items() if s == "sending"] == [order[n - 1]]
        assert all(ledger[a] == "sent" for a in order[: n - 1])
        assert all(ledger[a] == "pending" for a in order[n:])


@pytest.mark.network
@pytest.mark.parametrize("connections", [2, 4])
def test_over_several_connections_still_one_commit_per_message(
    tmp_path: Path, connections: int
) -> None:
    """The lanes join each message's 'sent' with the next row's 'sending', as one connection
    does; a 'sent' is committed alone only before the sending thread waits with no row to
    start, at the end: at most one more commit per connection than with one."""
    counts: dict[int, int] = {}
    for n in (1, connections):
        folder = tmp_path / str(n)
        folder.mkdir()
        with Store(folder / "db.sqlite") as store:
            add_subscribers(store, SUBSCRIBERS)
            add_items(store, range(3), NOW - timedelta(days=1))
            commits = Commits(store.db)
            store.db = commits  # type: ignore[assignment]
            with smtp_server(Behaviour()) as (handler, port):
                config = smtp_config(digest_config(folder, mail={"connections": n}), port)
                mailer = make_mailer(config)
                outcome = send_digest(config, store=store, mailer=mailer, clock=lambda: NOW)
            assert outcome.delivery is not None and outcome.delivery.sent == SUBSCRIBERS
            assert len(handler.received) == SUBSCRIBERS
            counts[n] = commits.count
    assert counts[1] <= counts[connections] <= counts[1] + connections, counts


def test_a_failure_reading_the_next_row_ahead_is_raised_in_its_turn() -> None:
    """The next row is read early (its message is made while the server answers); a store
    error met then must stop the send in that row's turn, not end it as if it were done."""
    from iomfeed.delivery.send import _Ahead
    from iomfeed.errors import StoreError

    first = object()

    def rows() -> Iterator[Any]:
        yield first
        raise StoreError("disk I/O error")

    ahead = _Ahead(rows())
    assert next(ahead) is first
    assert ahead.peek() is None  # nothing to make ahead
    with pytest.raises(StoreError, match="disk I/O"):
        next(ahead)
    done = _Ahead(iter([first]))
    assert done.peek() is first and done.peek() is first  # one look, however many asks
    assert list(done) == [first]


def test_a_failed_commit_of_the_next_sending_keeps_the_sent_of_the_one_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The 'sent' of a message rides on the next message's 'sending'; when that transaction
    # fails (a busy database), the 'sent' is still committed before the error ends the send.
    store = Store(tmp_path / "db.sqlite")
    addresses = add_subscribers(store, 3)
    add_items(store, range(3), NOW - timedelta(days=1))
    real = Store.mark_sending

    def busy(self: Store, *args: Any, delivered: Any = None, **kwargs: Any) -> bool:
        if delivered is not None:
            raise StoreError("database is locked")
        return real(self, *args, delivered=delivered, **kwargs)

    monkeypatch.setattr(Store, "mark_sending", busy)
    with store, smtp_server(Behaviour()) as (handler, port):
        config = smtp_config(digest_config(tmp_path), port)
        with pytest.raises(StoreError):
            send_digest(config, store=store, mailer=make_mailer(config), clock=lambda: NOW)
        record = store.last_digest()
        assert record is not None
        status = {r.address: r.status for r in store.deliveries(record.id, EVERY_STATUS)}
    assert [r.rcpt_tos[0] for r in handler.received] == addresses[:1]
    assert status == {addresses[0]: "sent", addresses[1]: "pending", addresses[2]: "pending"}


def test_undoing_a_refusal_twice_changes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    addresses = add_subscribers(store, 2)
    add_items(store, range(3), NOW - timedelta(days=1))
    with store:
        store.db.execute("UPDATE subscribers SET failures = 1")
        config = digest_config(tmp_path)
        mailer = ScriptedMailer({a: ["perm"] for a in addresses})
        outcome = send_digest(config, store=store, mailer=mailer, clock=lambda: NOW)
        assert outcome.digest_id is not None
        ids = [r.subscriber_id for r in store.deliveries(outcome.digest_id, ("failed",))]
        assert {store.profile(subscriber_id=sid).failures for sid in ids} == {2}  # type: ignore[union-attr]
        for _ in range(2):
            store.revert_failures(outcome.digest_id, ids, bounce_after=3)
            assert store.delivery_totals(outcome.digest_id) == {"pending": 2}
            assert store.subscriber_counts() == {"active": 2}
            assert {store.profile(subscriber_id=sid).failures for sid in ids} == {1}  # type: ignore[union-attr]
