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
from iomfeed.delivery.mailers import make_mailer
from iomfeed.errors import ConfigError
from iomfeed.pipeline import send_digest
from iomfeed.store import Store

from .conftest import CONFIG_FILE, NOW
from .digestkit import add_items, add_subscribers, digest_config
from .smtp import Behaviour, Handler, smtp_server
from .test_delivery import smtp_config

pytestmark = pytest.mark.network

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
