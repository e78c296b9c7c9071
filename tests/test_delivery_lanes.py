"""Several SMTP connections at once (``mail.connections``), one ledger: everyone gets one
copy, the quota and the bounce accounting hold as with one connection, a relay that refuses
a second connection (421 at connect) is met with fewer connections, and a value out of range
is refused naming the key. (The SIGKILL test with several connections is in
``test_digest_crash``.)"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from iomfeed.config import Config, load_config
from iomfeed.consent import State
from iomfeed.delivery.mailers import SmtpMailer, make_mailer
from iomfeed.delivery.policy import MAX_PERMANENT_IN_A_ROW
from iomfeed.digest.message import Outgoing
from iomfeed.errors import ConfigError
from iomfeed.pipeline import send_digest
from iomfeed.stopping import Stop
from iomfeed.store import Store

from .conftest import CONFIG_FILE, NOW
from .digestkit import add_items, add_subscribers, digest_config
from .smtp import Behaviour, Handler, smtp_server
from .test_delivery import smtp_config

pytestmark = pytest.mark.network

EVERY_STATUS = ("pending", "sending", "sent", "failed", "skipped")

SUBSCRIBERS = 30


def config_for(tmp_path: Path, port: int, **mail: Any) -> Config:
    return smtp_config(digest_config(tmp_path, mail={"backoff": 0.0, **mail}), port)


def send(config: Config, store: Store) -> dict[str, int]:
    outcome = send_digest(config, store=store, mailer=make_mailer(config), clock=lambda: NOW)
    assert outcome.digest_id is not None
    return store.delivery_totals(outcome.digest_id)


def prepared(tmp_path: Path) -> tuple[Store, list[str]]:
    store = Store(tmp_path / "db.sqlite")
    addresses = add_subscribers(store, SUBSCRIBERS)
    add_items(store, range(3), NOW - timedelta(days=1))
    return store, addresses


def committed(tmp_path: Path) -> dict[str, str]:
    """Each address's row as another connection to the database reads it: committed."""
    import sqlite3

    reader = sqlite3.connect(str(tmp_path / "db.sqlite"))
    try:
        rows = reader.execute(
            "SELECT s.address, d.status FROM deliveries d JOIN subscribers s"
            " ON s.id = d.subscriber_id"
        ).fetchall()
    finally:
        reader.close()
    return dict(rows)


def failing_send(
    tmp_path: Path, store: Store, error: type[Exception], match: str
) -> tuple[dict[str, str], list[str]]:
    """A two-connection send that ``error`` ends: the ledger after it, and what the relay
    took."""
    with store, smtp_server() as (handler, port):
        config = config_for(tmp_path, port, connections=2)
        with pytest.raises(error, match=match):
            send_digest(config, store=store, mailer=make_mailer(config), clock=lambda: NOW)
        record = store.last_digest()
        assert record is not None
        status = {r.address: str(r.status) for r in store.deliveries(record.id, EVERY_STATUS)}
    return status, [r.rcpt_tos[0] for r in handler.received]


@pytest.mark.parametrize("connections", [2, 4])
def test_everyone_gets_one_copy_over_several_connections(
    tmp_path: Path, connections: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    peers: set[object] = set()
    greet = Handler.handle_EHLO

    async def ehlo(
        self: Handler,
        server: Any,
        session: Any,
        envelope: Any,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        peers.add(session.peer)  # one per connection
        return await greet(self, server, session, envelope, hostname, responses)

    monkeypatch.setattr(Handler, "handle_EHLO", ehlo)
    store, addresses = prepared(tmp_path)
    with store, smtp_server() as (handler, port):
        totals = send(config_for(tmp_path, port, connections=connections), store)
    assert totals == {"sent": SUBSCRIBERS}
    assert sorted(r.rcpt_tos[0] for r in handler.received) == sorted(addresses)
    assert len(peers) == connections


def test_the_quota_and_the_bounces_count_as_with_one_connection(tmp_path: Path) -> None:
    store, addresses = prepared(tmp_path)
    refused = addresses[3]
    with store, smtp_server(Behaviour(reject={refused})) as (handler, port):
        config = config_for(tmp_path, port, connections=3, hourly_limit=10)
        totals = send(config, store)
        # Only what the relay took counts: ten taken, the refused one beside them, and
        # the rest wait for the window (never more than ten, with three in flight).
        assert totals == {"sent": 10, "failed": 1, "pending": SUBSCRIBERS - 11}
        assert len(handler.received) == 10
        profile = store.profile(address=refused)
        assert profile is not None and profile.failures == 1
        assert len(store.sent_times(NOW - timedelta(hours=1))) == 10


@contextmanager
def one_connection_only(port: int) -> Iterator[tuple[int, list[int]]]:
    """A relay in front of ``port`` that takes one connection at a time and answers any
    other with 421 at connect; yields its port and [refused so far]."""
    listener = socket.create_server(("127.0.0.1", 0))
    lock = threading.Lock()
    active, refused = [0], [0]

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def relay(client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", port))
        there = threading.Thread(target=pipe, args=(client, upstream), daemon=True)
        there.start()
        pipe(upstream, client)
        there.join(10)
        client.close()
        upstream.close()
        with lock:
            active[0] -= 1

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with lock:
                busy = active[0] >= 1
                active[0] += not busy
                refused[0] += busy
            if busy:
                client.sendall(b"421 4.7.0 One connection at a time\r\n")
                client.close()
                continue
            threading.Thread(target=relay, args=(client,), daemon=True).start()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield listener.getsockname()[1], refused
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        listener.close()
        server.join(10)


def test_a_relay_refusing_a_second_connection_means_fewer_not_a_failed_send(
    tmp_path: Path,
) -> None:
    store, addresses = prepared(tmp_path)
    with store, smtp_server() as (handler, port), one_connection_only(port) as (gate, refused):
        totals = send(config_for(tmp_path, gate, connections=3), store)
        assert totals == {"sent": SUBSCRIBERS}
        assert refused[0] == 2  # each other connection tried once, then closed
        record = store.last_digest()
        assert record is not None
        rows = list(store.deliveries(record.id, ("sent",)))
        assert {r.attempts for r in rows} == {1}  # the moved messages: one try each
    assert Counter(r.rcpt_tos[0] for r in handler.received) == Counter(addresses)


@pytest.mark.parametrize("value", [0, 5, -1])
def test_connections_out_of_range_are_refused_naming_the_key(tmp_path: Path, value: int) -> None:
    text = CONFIG_FILE.read_text(encoding="utf-8")
    assert "connections = 1" in text
    path = tmp_path / "config.toml"
    path.write_text(text.replace("connections = 1", f"connections = {value}", 1), "utf-8")
    with pytest.raises(ConfigError, match=r"mail\.connections: .*1 to 4"):
        load_config(path)


def test_everyone_refused_over_four_connections_is_undone_once(tmp_path: Path) -> None:
    # The refusals answered while the lanes drain, after the streak stopped the send, are
    # the same relay's: undone too, and nothing is undone twice (a subscriber's earlier
    # refusals stay, and nobody is marked bounced by the relay's fault).
    store, addresses = prepared(tmp_path)
    store.db.execute("UPDATE subscribers SET failures = 2")  # bounce_after is 3
    with store, smtp_server(Behaviour(reject=set(addresses))) as (handler, port):
        config = config_for(tmp_path, port, connections=4)
        outcome = send_digest(config, store=store, mailer=make_mailer(config), clock=lambda: NOW)
        report = outcome.delivery
        assert report is not None
        assert report.error.startswith(f"{MAX_PERMANENT_IN_A_ROW} addresses in a row refused")
        assert (report.sent, report.failed, report.bounced) == (0, 0, 0)
        assert report.totals == {"pending": SUBSCRIBERS}
        for address in addresses:
            profile = store.profile(address=address)
            assert profile is not None
            assert (profile.failures, profile.state) == (2, State.ACTIVE), address
    assert handler.received == []


def test_everyone_deferred_over_four_connections_gives_each_try_back_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, addresses = prepared(tmp_path)
    given: Counter[int] = Counter()
    uncount = Store.uncount_attempts

    def counting(self: Store, digest_id: int, subscriber_id: int, tries: int) -> None:
        given[subscriber_id] += tries
        uncount(self, digest_id, subscriber_id, tries)

    monkeypatch.setattr(Store, "uncount_attempts", counting)
    behaviour = Behaviour(temporary=dict.fromkeys(addresses, 100))
    with store, smtp_server(behaviour) as (_handler, port):
        config = config_for(tmp_path, port, connections=4)
        outcome = send_digest(config, store=store, mailer=make_mailer(config), clock=lambda: NOW)
        assert outcome.delivery is not None and "in a row deferred" in outcome.delivery.error
        assert outcome.delivery.totals == {"pending": SUBSCRIBERS}
        assert outcome.digest_id is not None
        rows = list(store.deliveries(outcome.digest_id))
    tried = {r.subscriber_id: 100 - behaviour.temporary[r.address] for r in rows}
    assert given == {sid: n for sid, n in tried.items() if n}  # each RCPT given back once
    assert {r.attempts for r in rows} == {0}


def test_a_stop_while_waiting_for_a_free_connection_starts_nothing_more(tmp_path: Path) -> None:
    # Both connections busy: the send waits for an answer; the stop requested meanwhile
    # (here by the first answer) is honoured before another message starts.
    store, _addresses = prepared(tmp_path)
    stop = Stop()
    with store, smtp_server() as (handler, port):
        config = config_for(tmp_path, port, connections=2)
        outcome = send_digest(
            config,
            store=store,
            mailer=make_mailer(config),
            clock=lambda: NOW,
            stop=stop,
            on_message=stop.set,
        )
        assert outcome.delivery is not None and outcome.delivery.interrupted
        assert outcome.delivery.totals == {"sent": 2, "pending": SUBSCRIBERS - 2}
    assert len(handler.received) == 2  # the two in flight when the stop came


def test_answers_are_recorded_when_another_connection_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug in one lane ends the send; the message another lane had in flight then was
    # taken by the server, and the ledger must say so (else it goes again next run).
    store, addresses = prepared(tmp_path)
    later = threading.Event()
    real = SmtpMailer.send

    def send_or_fail(self: SmtpMailer, message: Outgoing) -> str:
        if message.recipient == addresses[1]:
            later.wait(10)  # until the other lane is busy with a later message
            raise RuntimeError("a bug in one lane")
        if message.recipient == addresses[5]:
            later.set()
        return real(self, message)

    monkeypatch.setattr(SmtpMailer, "send", send_or_fail)
    status, taken = failing_send(tmp_path, store, RuntimeError, "a bug in one lane")
    assert len(taken) >= 5 and addresses[5] in taken
    assert {status[a] for a in taken} == {"sent"}, status
    assert status[addresses[1]] == "sending"  # as a crash would leave it: maybe sent


def test_every_answer_is_committed_before_the_connections_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Closing a connection is a QUIT round trip (a slow relay takes its time): a message
    # the relay took must not be waiting for its 'sent' meanwhile, or a crash then sends
    # it again. Each connection, as it closes, reads the committed ledger.
    store, addresses = prepared(tmp_path)
    seen: list[dict[str, str]] = []
    real = SmtpMailer.close

    def close_and_look(self: SmtpMailer) -> None:
        seen.append(committed(tmp_path))
        real(self)

    monkeypatch.setattr(SmtpMailer, "close", close_and_look)
    with store, smtp_server() as (_handler, port):
        totals = send(config_for(tmp_path, port, connections=2), store)
    assert totals == {"sent": SUBSCRIBERS}
    assert len(seen) >= 2
    for ledger in seen:
        assert set(ledger.values()) == {"sent"}, ledger
    assert sorted(seen[0]) == sorted(addresses)


def test_a_failed_commit_of_a_sent_is_tried_again_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last answers' 'sent' is committed on its own; when that transaction fails (a busy
    # database), the 'sent' is still held and committed at the send's end, not dropped.
    from iomfeed.errors import StoreError

    store, _addresses = prepared(tmp_path)
    real = Store.mark_delivered
    failed: list[bool] = []

    def busy_once(self: Store, *args: Any, **kwargs: Any) -> None:
        if not failed:
            failed.append(True)
            raise StoreError("database is locked")
        real(self, *args, **kwargs)

    monkeypatch.setattr(Store, "mark_delivered", busy_once)
    status, taken = failing_send(tmp_path, store, StoreError, "locked")
    assert failed == [True]
    assert taken and {status[a] for a in taken} == {"sent"}, status


def test_a_sent_is_committed_before_the_send_waits_for_another_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The next to last message is answered while the last is in flight on the other
    # connection: with no row left to start, its 'sent' cannot ride on another 'sending'
    # and must be committed before the send waits for the last answer.
    import time

    store, addresses = prepared(tmp_path)
    last_began = threading.Event()
    seen: list[str] = []
    real = SmtpMailer.send

    def status_of(address: str) -> str:
        return committed(tmp_path)[address]

    def send_in_order(self: SmtpMailer, message: Outgoing) -> str:
        if message.recipient == addresses[-2]:
            assert last_began.wait(10)  # answered only once the last one is on its way
        if message.recipient == addresses[-1]:
            last_began.set()
            deadline = time.monotonic() + 5
            while status_of(addresses[-2]) != "sent" and time.monotonic() < deadline:
                time.sleep(0.01)
            seen.append(status_of(addresses[-2]))
        return real(self, message)

    monkeypatch.setattr(SmtpMailer, "send", send_in_order)
    with store, smtp_server() as (_handler, port):
        totals = send(config_for(tmp_path, port, connections=2), store)
    assert totals == {"sent": SUBSCRIBERS}
    assert seen == ["sent"]
