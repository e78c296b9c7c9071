"""Delivery: the ledger-driven send with scripted mailers (unit), and the real transports:
the outbox folder and SMTP against aiosmtpd on 127.0.0.1 (accept, 4xx, 5xx for one address,
a dropped connection, STARTTLS with a certificate made here, login)."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from iomfeed.config import Config, PerLanguage
from iomfeed.delivery.mailers import (
    OutboxMailer,
    PermanentFailure,
    SmtpMailer,
    TemporaryFailure,
    make_mailer,
    to_7bit,
)
from iomfeed.delivery.policy import MAX_PERMANENT_IN_A_ROW
from iomfeed.delivery.send import Stop
from iomfeed.digest.message import Outgoing
from iomfeed.errors import ConfigError, DeliveryError
from iomfeed.health import HealthStatus, check
from iomfeed.pipeline import send_digest
from iomfeed.store import Store

from .conftest import NOW
from .digestkit import add_items, add_subscribers, digest_config
from .smtp import PUBLIC_URL, Behaviour, make_test_ca, smtp_server


def clock() -> datetime:
    return NOW


class ScriptedMailer:
    """Answers per address from a script: 'ok', 'temp', 'perm', 'down', 'fatal'."""

    def __init__(self, script: dict[str, list[str]] | None = None) -> None:
        self.script = script or {}
        self.sent: list[Outgoing] = []
        self.tries: list[str] = []
        self.closed = False

    def send(self, message: Outgoing) -> str:
        self.tries.append(message.recipient)
        plan = self.script.get(message.recipient, [])
        action = plan.pop(0) if plan else "ok"
        if action == "temp":
            raise TemporaryFailure("451 4.7.1 greylisted")
        if action == "down":
            raise TemporaryFailure("cannot connect", connection=True)
        if action == "perm":
            raise PermanentFailure("550 5.1.1 no such user")
        if action == "fatal":
            raise DeliveryError("sender refused")
        self.sent.append(message)
        return "250 OK"

    def close(self) -> None:
        self.closed = True


def prepared(tmp_path: Path, subscribers: int = 5, **mail: object) -> tuple[Config, Store]:
    config = digest_config(tmp_path, mail={"retries": 2, "backoff": 0.0, **mail})
    store = Store(tmp_path / "db.sqlite")
    add_subscribers(store, subscribers)
    add_items(store, range(4), NOW - timedelta(days=1))
    return config, store


def test_every_subscriber_gets_one_message_and_items_become_sent(tmp_path: Path) -> None:
    config, store = prepared(tmp_path)
    mailer = ScriptedMailer()
    with store:
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        assert outcome.status == "sent" and outcome.ok and mailer.closed
        assert sorted(m.recipient for m in mailer.sent) == sorted(
            s.address for s in store.subscribers()
        )
        assert len({m.message_id for m in mailer.sent}) == 5
        assert store.last_digest("sent") is not None
        # Nothing new since: the next one is skipped, and the skip recorded.
        again = send_digest(config, store=store, mailer=ScriptedMailer(), clock=clock)
        assert again.status == "skipped" and "nothing new" in again.note
        assert store.last_digest() is not None and store.last_digest().status == "skipped"  # type: ignore[union-attr]


def test_skip_is_logged_and_empty_digest_can_be_forced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = digest_config(tmp_path)
    with Store(tmp_path / "db.sqlite") as store:
        add_subscribers(store, 2)
        caplog.set_level("INFO")
        outcome = send_digest(config, store=store, mailer=ScriptedMailer(), clock=clock)
        assert outcome.status == "skipped"
        assert "digest skipped: nothing new since the start" in caplog.text
        forced = dataclasses.replace(
            config, digest=dataclasses.replace(config.digest, skip_empty=False)
        )
        mailer = ScriptedMailer()
        outcome = send_digest(
            forced, store=store, mailer=mailer, clock=lambda: NOW + timedelta(minutes=1)
        )
        assert outcome.status == "sent" and len(mailer.sent) == 2


def test_no_subscribers_is_a_skip_that_keeps_the_items_unsent(tmp_path: Path) -> None:
    config, store = prepared(tmp_path, subscribers=0)
    with store:
        outcome = send_digest(config, store=store, mailer=ScriptedMailer(), clock=clock)
        assert outcome.status == "skipped" and outcome.note == "no active subscribers"
        add_subscribers(store, 1)
        mailer = ScriptedMailer()
        later = send_digest(config, store=store, mailer=mailer, clock=clock)
        assert later.status == "sent" and later.items == 4


def test_temporary_failure_is_retried_then_left_pending(tmp_path: Path) -> None:
    config, store = prepared(tmp_path, subscribers=3)
    with store:
        addresses = [s.address for s in store.subscribers()]
        mailer = ScriptedMailer(
            {addresses[0]: ["temp", "ok"], addresses[1]: ["temp", "temp", "temp", "ok"]}
        )
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        d = outcome.delivery
        assert d is not None and outcome.status == "incomplete"
        assert (d.sent, d.deferred, d.failed) == (2, 1, 0)
        assert mailer.tries.count(addresses[0]) == 2 and mailer.tries.count(addresses[1]) == 3
        assert d.totals == {"sent": 2, "pending": 1}
        assert store.last_digest("sent") is None  # items not sent until everyone has them
        # The next run sends only what is pending, in the same digest.
        mailer2 = ScriptedMailer()
        again = send_digest(config, store=store, mailer=mailer2, clock=clock)
        assert again.digest_id == outcome.digest_id and again.status == "sent"
        assert [m.recipient for m in mailer2.sent] == [addresses[1]]


def test_temporary_failure_gives_up_after_max_attempts(tmp_path: Path) -> None:
    config, store = prepared(tmp_path, subscribers=1, max_attempts=4)
    with store:
        (address,) = [s.address for s in store.subscribers()]
        mailer = ScriptedMailer({address: ["temp"] * 10})
        first = send_digest(config, store=store, mailer=mailer, clock=clock)
        assert first.status == "incomplete"  # 3 tries
        second = send_digest(config, store=store, mailer=mailer, clock=clock)
        assert second.status == "sent" and second.delivery is not None
        assert second.delivery.failed == 1 and not second.ok
        assert len(mailer.tries) == 4


def test_permanent_failure_for_one_address_does_not_stop_the_others(tmp_path: Path) -> None:
    config, store = prepared(tmp_path, subscribers=4, bounce_after=1)
    with store:
        addresses = [s.address for s in store.subscribers()]
        mailer = ScriptedMailer({addresses[1]: ["perm"]})
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        d = outcome.delivery
        assert d is not None and (d.sent, d.failed, d.bounced) == (3, 1, 1)
        assert outcome.status == "sent" and not outcome.ok
        assert mailer.tries.count(addresses[1]) == 1  # a 5xx is not retried
        sub = store.subscriber(addresses[1])
        assert sub is not None and sub.status == "bounced"
        row = store.delivery(outcome.digest_id, sub.id)
        assert row is not None and row.status == "failed" and row.reply.startswith("550")


def test_relay_refusing_everyone_fails_and_bounces_nobody(tmp_path: Path) -> None:
    n = MAX_PERMANENT_IN_A_ROW + 5
    config, store = prepared(tmp_path, subscribers=n, bounce_after=1)
    with store:
        addresses = [s.address for s in store.subscribers()]
        for _run in range(3):  # run after run, the misconfigured relay refuses everyone
            mailer = ScriptedMailer({a: ["perm"] * 5 for a in addresses})
            outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
            assert outcome.delivery is not None
            assert "in a row refused" in outcome.delivery.error and not outcome.ok
            assert len(mailer.tries) == MAX_PERMANENT_IN_A_ROW
            assert outcome.delivery.totals == {"pending": n}  # the streak is pending again
        assert store.subscriber_counts() == {"active": n}  # nobody marked bounced
        # The relay is fixed: everyone gets the digest.
        mailer = ScriptedMailer()
        assert send_digest(config, store=store, mailer=mailer, clock=clock).status == "sent"
        assert len(mailer.sent) == n


def test_undoing_a_refused_streak_keeps_the_bounces_before_it(tmp_path: Path) -> None:
    n = MAX_PERMANENT_IN_A_ROW + 2
    config, store = prepared(tmp_path, subscribers=n, bounce_after=1)
    with store:
        addresses = [s.address for s in store.subscribers()]
        # One real bounce, one success, then a relay refusing everyone.
        mailer = ScriptedMailer({a: ["perm"] for i, a in enumerate(addresses) if i != 1})
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        d = outcome.delivery
        assert d is not None and "in a row refused" in d.error
        assert d.totals == {"failed": 1, "sent": 1, "pending": n - 2}
        assert (d.failed, d.bounced) == (1, 1)  # the report keeps the bounce it did not undo
        assert store.subscriber_counts() == {"active": n - 1, "bounced": 1}


def test_relay_deferring_everyone_stops_and_uses_up_nobody(tmp_path: Path) -> None:
    config, store = prepared(tmp_path, subscribers=12, max_attempts=4)
    with store:
        addresses = [s.address for s in store.subscribers()]
        for _run in range(4):  # a quota answered at RCPT, run after run
            mailer = ScriptedMailer({a: ["temp"] * 10 for a in addresses})
            outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
            assert outcome.delivery is not None and "in a row deferred" in outcome.delivery.error
            assert outcome.delivery.totals == {"pending": 12}
        assert all(d.attempts == 0 for d in store.deliveries(outcome.digest_id))
        mailer = ScriptedMailer()
        assert send_digest(config, store=store, mailer=mailer, clock=clock).status == "sent"
        assert len(mailer.sent) == 12


def test_server_wide_temporary_failure_stops_without_charging_the_row(tmp_path: Path) -> None:
    config, store = prepared(tmp_path, subscribers=3)

    class QuotaAtMail(ScriptedMailer):
        def send(self, message: Outgoing) -> str:
            if len(self.sent) == 1:
                self.tries.append(message.recipient)
                raise TemporaryFailure("452 4.3.1 daily quota exceeded", server=True)
            return super().send(message)

    with store:
        mailer = QuotaAtMail()
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        d = outcome.delivery
        assert d is not None and "quota" in d.error and d.totals == {"sent": 1, "pending": 2}
        assert all(r.attempts == 0 for r in store.deliveries(outcome.digest_id))


def test_a_message_that_cannot_be_made_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iomfeed.digest.message import Composer

    config, store = prepared(tmp_path, subscribers=3)
    real = Composer.compose

    def compose(self: Composer, subscriber_id: int, address: str, name: str) -> Outgoing:
        if address == "reader1@example.org":
            raise UnicodeEncodeError("ascii", "ë", 0, 1, "bad data")
        return real(self, subscriber_id, address, name)

    with store:
        monkeypatch.setattr(Composer, "compose", compose)
        mailer = ScriptedMailer()
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        assert outcome.status == "sent" and not outcome.ok
        assert [m.recipient for m in mailer.sent] == ["reader0@example.org", "reader2@example.org"]
        assert store.delivery_totals(outcome.digest_id) == {"sent": 2, "failed": 1}
        sub = store.subscriber("reader1@example.org")
        assert sub is not None and sub.status == "active"  # not a bounce


def test_a_connection_lost_after_the_data_marks_the_resend_ambiguous(tmp_path: Path) -> None:
    config, store = prepared(tmp_path, subscribers=2)

    class DropAfterData(ScriptedMailer):
        def send(self, message: Outgoing) -> str:
            if not self.tries:
                self.tries.append(message.recipient)
                raise TemporaryFailure("connection lost at DATA", maybe_delivered=True)
            return super().send(message)

    with store:
        outcome = send_digest(config, store=store, mailer=DropAfterData(), clock=clock)
        row = store.delivery(outcome.digest_id, 1)
        assert row is not None and row.status == "sent" and row.ambiguous


def test_a_hostile_list_name_is_cleaned_and_the_digest_goes_out(tmp_path: Path) -> None:
    config, store = prepared(tmp_path, subscribers=2)
    bad = dataclasses.replace(
        config,
        digest=dataclasses.replace(
            config.digest,
            title=PerLanguage(
                "News",
                (("en", "News"), ("sq", "Lajme nga IOM Shqipëri\r\nBcc: x@example.org")),
            ),
        ),
    )
    with store:
        outcome = send_digest(bad, store=store, mailer=ScriptedMailer(), clock=clock)
        assert outcome.status == "sent"  # cleaned, not refused: no header is added


@pytest.mark.parametrize(("action", "expected"), [("down", "cannot connect"), ("fatal", "sender")])
def test_failures_concerning_everyone_stop_the_send_and_lose_nobody(
    tmp_path: Path, action: str, expected: str
) -> None:
    config, store = prepared(tmp_path, subscribers=4)
    with store:
        addresses = [s.address for s in store.subscribers()]
        mailer = ScriptedMailer({addresses[1]: [action] * 3})
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        d = outcome.delivery
        assert d is not None and expected in d.error and not outcome.ok
        assert d.totals == {"sent": 1, "pending": 3}
        # `status` says so until a send goes without an error (it said "ok", exit 0).
        health = check(config, store, NOW)
        assert health.status is HealthStatus.FAILED
        assert health.problems() == [
            f"digest {outcome.digest_id}: the send stopped on an error: {d.error};"
            " the next run resumes it"
        ]
        mailer2 = ScriptedMailer()
        send_digest(config, store=store, mailer=mailer2, clock=clock)
        assert [m.recipient for m in mailer2.sent] == addresses[1:]
        health = check(config, store, NOW)
        assert health.status is HealthStatus.OK and health.problems() == []
        assert store.digests(limit=1)[0].note == ""


def test_unsubscribed_before_their_turn_is_skipped(tmp_path: Path) -> None:
    config, store = prepared(tmp_path, subscribers=3)
    with store:
        addresses = [s.address for s in store.subscribers()]
        content_ids = [i.id for i in store.items()]
        record = store.create_digest(
            created=NOW, since=None, cutoff=NOW, item_ids=content_ids, more=0
        )
        store.set_subscriber_status(addresses[2], "unsubscribed", "link", NOW)
        mailer = ScriptedMailer()
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        assert outcome.digest_id == record.id and outcome.status == "sent"
        assert [m.recipient for m in mailer.sent] == addresses[:2]
        assert store.delivery_totals(record.id) == {"sent": 2, "skipped": 1}


def test_stop_request_finishes_the_current_message(tmp_path: Path) -> None:
    config, store = prepared(tmp_path, subscribers=5)
    stop = Stop()

    class StopAfterTwo(ScriptedMailer):
        def send(self, message: Outgoing) -> str:
            reply = super().send(message)
            if len(self.sent) == 2:
                stop.set()  # as the SIGTERM handler does, during the second message
            return reply

    with store:
        outcome = send_digest(config, store=store, mailer=StopAfterTwo(), clock=clock, stop=stop)
        d = outcome.delivery
        assert d is not None and d.interrupted and d.sent == 2
        assert d.totals == {"sent": 2, "pending": 3}


def test_a_row_left_sending_is_resent_with_the_same_message_id(tmp_path: Path) -> None:
    config, store = prepared(tmp_path, subscribers=3)
    with store:
        first = ScriptedMailer()
        record = store.create_digest(
            created=NOW, since=None, cutoff=NOW, item_ids=[i.id for i in store.items()], more=0
        )
        rows = list(store.deliveries(record.id))
        store.mark_sending(record.id, rows[0].subscriber_id, NOW)  # the crash left this
        outcome = send_digest(config, store=store, mailer=first, clock=clock)
        assert outcome.delivery is not None and outcome.delivery.resent_ambiguous == 1
        row = store.delivery(record.id, rows[0].subscriber_id)
        assert row is not None and row.ambiguous and row.status == "sent"
        assert first.sent[0].message_id.startswith(f"<digest-{record.id}.{rows[0].subscriber_id}.")


# ----------------------------------------------------------------------- transports


def outgoing(n: int = 1, recipient: str = "reader@example.org") -> Outgoing:
    data = (
        f"To: {recipient}\r\nFrom: news@feeds.example.org\r\nSubject: Lajme {n}\r\n"
        f"Message-ID: <m{n}@feeds.example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n'
        "\r\nPërshëndetje, ëë çç\r\n.a line starting with a dot\r\n"
    ).encode()
    return Outgoing(f"<m{n}@feeds.example.org>", "news@feeds.example.org", recipient, data)


def test_outbox_writes_one_file_per_message_atomically(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path / "outbox")
    mailer.send(outgoing(1))
    mailer.send(outgoing(1))  # the same message again replaces its own copy
    mailer.send(outgoing(2))
    files = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert files == ["m1@feeds.example.org.eml", "m2@feeds.example.org.eml"]
    assert (tmp_path / "outbox" / files[0]).read_bytes() == outgoing(1).data


def test_outbox_that_cannot_be_written_is_a_delivery_error(tmp_path: Path) -> None:
    (tmp_path / "outbox").write_text("a file, not a folder")
    with pytest.raises(DeliveryError, match="outbox"):
        OutboxMailer(tmp_path / "outbox").send(outgoing())


def smtp_config(config: Config, port: int, **smtp: Any) -> Config:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "timeout": 5.0,
        **smtp,
    }
    return dataclasses.replace(
        config,
        mail=dataclasses.replace(
            config.mail, transport="smtp", smtp=dataclasses.replace(config.mail.smtp, **values)
        ),
        site=dataclasses.replace(config.site, public_url=PUBLIC_URL),
    )  # not the example


@pytest.mark.network
def test_smtp_reuses_one_connection_and_sends_8bit(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    with smtp_server() as (handler, port):
        mailer = make_mailer(smtp_config(config, port))
        assert isinstance(mailer, SmtpMailer)
        replies = [mailer.send(outgoing(n, f"r{n}@example.org")) for n in range(5)]
        mailer.close()
    assert mailer.connections == 1
    assert all(r.startswith("250") for r in replies)
    assert [r.rcpt_tos for r in handler.received] == [[f"r{n}@example.org"] for n in range(5)]
    msg = handler.received[0].message()
    assert msg.get_content() == "Përshëndetje, ëë çç\r\n.a line starting with a dot\r\n"


@pytest.mark.network
def test_smtp_4xx_5xx_and_a_dropped_connection(tmp_path: Path) -> None:
    behaviour = Behaviour(
        temporary={"grey@example.org": 1}, reject={"gone@example.org"}, drop_data={3}
    )
    with smtp_server(behaviour) as (handler, port):
        mailer = make_mailer(smtp_config(digest_config(tmp_path), port))
        with pytest.raises(TemporaryFailure, match="451"):
            mailer.send(outgoing(1, "grey@example.org"))
        with pytest.raises(PermanentFailure, match="550"):
            mailer.send(outgoing(2, "gone@example.org"))
        mailer.send(outgoing(3, "ok@example.org"))  # DATA 1: the same connection still works
        mailer.send(outgoing(4, "grey@example.org"))  # DATA 2: greylisting passed
        with pytest.raises(TemporaryFailure, match="connection lost"):
            mailer.send(outgoing(5, "ok2@example.org"))  # DATA 3: dropped mid-message
        mailer.send(outgoing(6, "ok2@example.org"))  # reconnects
        mailer.close()
    assert isinstance(mailer, SmtpMailer) and mailer.connections == 2
    assert [r.rcpt_tos[0] for r in handler.received] == [
        "ok@example.org",
        "grey@example.org",
        "ok2@example.org",
    ]


@pytest.mark.network
def test_smtp_unreachable_is_a_connection_failure(tmp_path: Path) -> None:
    from .smtp import free_port

    mailer = make_mailer(smtp_config(digest_config(tmp_path), free_port()))
    with pytest.raises(TemporaryFailure) as info:
        mailer.send(outgoing())
    assert info.value.connection


@pytest.mark.network
def test_smtp_starttls_with_a_test_certificate_and_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = make_test_ca(tmp_path / "tls")
    monkeypatch.setenv("IOMFEED_SMTP_PASSWORD", "s3cret-password")
    with smtp_server(tls=ca.server_context(), auth=("iomfeed", "s3cret-password")) as (
        handler,
        port,
    ):
        config = smtp_config(
            digest_config(tmp_path),
            port,
            security="starttls",
            ca_file=str(ca.ca_file),
            username="iomfeed",
        )
        mailer = make_mailer(config)
        mailer.send(outgoing(1))
        mailer.close()
        assert len(handler.received) == 1
        # Without the CA the server's certificate is not trusted: a clear error.
        untrusted = make_mailer(smtp_config(digest_config(tmp_path), port, security="starttls"))
        with pytest.raises(DeliveryError, match="TLS"):
            untrusted.send(outgoing(2))
        # A wrong password stops the send with a clear error.
        monkeypatch.setenv("IOMFEED_SMTP_PASSWORD", "wrong")
        with pytest.raises(DeliveryError, match="refused the login"):
            make_mailer(config).send(outgoing(3))


def test_smtp_password_must_be_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IOMFEED_SMTP_PASSWORD", raising=False)
    config = smtp_config(digest_config(tmp_path), 25, username="someone")
    with pytest.raises(ConfigError, match=r"mail\.smtp\.password_env.*IOMFEED_SMTP_PASSWORD"):
        make_mailer(config)


def test_rate_limit_spaces_messages() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    from iomfeed.config import SmtpConfig

    mailer = SmtpMailer(SmtpConfig(), rate=4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        mailer._pace()
    assert slept == [0.25, 0.25]


def test_to_7bit_keeps_the_content() -> None:
    data = to_7bit(outgoing().data)
    assert all(b < 128 for b in data)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    content = msg.get_content()
    assert content.replace("\r\n", "\n") == "Përshëndetje, ëë çç\n.a line starting with a dot\n"


@pytest.mark.network
def test_digest_through_smtp_end_to_end(tmp_path: Path) -> None:
    behaviour = Behaviour(reject={"reader1@example.org"}, temporary={"reader2@example.org": 1})
    config, store = prepared(tmp_path, subscribers=4)
    with smtp_server(behaviour) as (handler, port), store:
        outcome = send_digest(
            smtp_config(config, port),
            store=store,
            mailer=make_mailer(smtp_config(config, port)),
            clock=clock,
        )
    d = outcome.delivery
    assert d is not None and (d.sent, d.failed) == (3, 1)
    got = {r.rcpt_tos[0]: r.message() for r in handler.received}
    assert sorted(got) == ["reader0@example.org", "reader2@example.org", "reader3@example.org"]
    assert str(got["reader0@example.org"]["To"]).startswith("Ëlira Hoxha")
    assert got["reader0@example.org"]["Content-Language"] is None
    for msg in got.values():
        html = msg.get_body(("html",))
        assert html is not None and "%%" not in html.get_content()


@pytest.mark.network
def test_smtp_replies_at_mail_and_at_the_end_of_data(tmp_path: Path) -> None:
    behaviour = Behaviour(
        mail_reply={1: "452 4.3.1 Daily sending quota exceeded"},
        data_reply={1: "554 5.7.1 Message rejected as spam", 2: "451 4.3.0 Try again later"},
    )
    with smtp_server(behaviour) as (handler, port):
        mailer = make_mailer(smtp_config(digest_config(tmp_path), port))
        with pytest.raises(TemporaryFailure) as quota:
            mailer.send(outgoing(1))
        assert quota.value.server and "quota" in quota.value.reply  # not this address's
        with pytest.raises(PermanentFailure, match="554"):
            mailer.send(outgoing(2))
        with pytest.raises(TemporaryFailure) as later:
            mailer.send(outgoing(3))
        assert not later.value.server
        assert mailer.send(outgoing(4)).startswith("250")  # the session was reset each time
        mailer.close()
    assert handler.commands.count("RSET") >= 3
    assert [r.message()["Message-ID"] for r in handler.received] == ["<m4@feeds.example.org>"]


@pytest.mark.network
def test_smtp_implicit_tls(tmp_path: Path) -> None:
    ca = make_test_ca(tmp_path / "tls")
    with smtp_server(implicit_tls=ca.server_context()) as (handler, port):
        config = smtp_config(digest_config(tmp_path), port, security="tls", ca_file=str(ca.ca_file))
        mailer = make_mailer(config)
        mailer.send(outgoing(1))
        mailer.close()
    assert len(handler.received) == 1


@pytest.mark.network
def test_a_server_without_8bitmime_gets_7bit_with_headers_intact(tmp_path: Path) -> None:
    from iomfeed.digest.message import Composer, Sender
    from iomfeed.output_records import RenderedDigest

    sender = Sender(
        address="news@feeds.example.org",
        name="IOM Albania news",
        list_id="digest.feeds.example.org",
        list_name="Lajme nga IOM Shqipëri",
        unsubscribe_url="https://feeds.example.org/iom-albania/unsubscribe",
        unsubscribe_mailto="news@feeds.example.org",
    )
    rendered = RenderedDigest(
        language="sq",
        subject="Lajme: 3 lajme të reja",
        html=(
            '<html lang="sq"><p>%%GREETING%%</p><a href="%%UNSUBSCRIBE_URL%%">x</a>'
            "<p>%%ADDRESS%%</p></html>\n"
        ),
        text="%%GREETING%% Ëë\n%%UNSUBSCRIBE_URL%%\n%%ADDRESS%%\n",
        greeting="Përshëndetje {name},",
        greeting_no_name="Përshëndetje,",
        shown=3,
        more=0,
        html_bytes=100,
    )
    out = Composer(rendered, sender=sender, digest_id=2, date=NOW, secret=b"s" * 20).compose(
        4, "ana@example.org", "Ëlira Hoxha"
    )
    with smtp_server(Behaviour(no_8bitmime=True)) as (handler, port):
        mailer = make_mailer(smtp_config(digest_config(tmp_path), port))
        mailer.send(out)
        mailer.close()
    (got,) = handler.received
    assert all(b < 128 for b in got.data)
    msg = got.message()
    original = email.message_from_bytes(out.data, policy=email.policy.default)
    for name in (
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Message-ID",
        "To",
        "Subject",
        "List-Id",
    ):
        assert str(msg[name]) == str(original[name]), name
    assert "=?" not in str(msg["List-Unsubscribe"])
    plain = msg.get_body(("plain",))
    assert plain is not None
    assert plain.get_content().startswith("Përshëndetje Ëlira Hoxha, Ëë")


def test_someone_unsubscribing_during_the_send_is_not_sent_to(tmp_path: Path) -> None:
    config, store = prepared(tmp_path, subscribers=3)

    class UnsubscribeDuring(ScriptedMailer):
        def send(self, message: Outgoing) -> str:
            if not self.sent:  # while the first message goes out, the last one leaves
                with Store(tmp_path / "db.sqlite") as other:  # as the web endpoint would
                    other.set_subscriber_status(
                        "reader2@example.org", "unsubscribed", "one-click", NOW
                    )
            return super().send(message)

    with store:
        mailer = UnsubscribeDuring()
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        assert [m.recipient for m in mailer.sent] == ["reader0@example.org", "reader1@example.org"]
        assert store.delivery_totals(outcome.digest_id) == {"sent": 2, "skipped": 1}


@pytest.mark.network
def test_smtp_sets_tcp_nodelay(tmp_path: Path) -> None:
    import socket

    with smtp_server() as (_handler, port):
        mailer = make_mailer(smtp_config(digest_config(tmp_path), port))
        assert isinstance(mailer, SmtpMailer)
        mailer.send(outgoing())
        sock = mailer._smtp.sock if mailer._smtp else None
        assert sock is not None
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        mailer.close()
