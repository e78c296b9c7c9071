"""Bounces and complaints after the fact: VERP envelopes, the classification of real-looking
messages of several MTAs, trust, the streak rules, and the Maildir reader (each message
marked read only after its effect is stored)."""

from __future__ import annotations

import email
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest

from iomfeed.bounces.classify import Kind, classify
from iomfeed.bounces.policy import Action, Trust
from iomfeed.cli.commands_bounces import report_line
from iomfeed.config import Config
from iomfeed.delivery.mailers import PermanentFailure
from iomfeed.delivery.verp import find_tokens, verify
from iomfeed.digest.message import Outgoing
from iomfeed.digest.unsubscribe import load_secret
from iomfeed.pipeline import read_bounces, send_digest
from iomfeed.store import Store

from .bouncekit import (
    BOUNCE_ADDRESS,
    MTAS,
    Recorder,
    bounce_config,
    deliver,
    fill,
    prepared,
    send_one,
    strip_token,
)
from .conftest import NOW
from .digestkit import add_items, digest_config


def test_each_message_leaves_with_a_verp_envelope_and_the_from_unchanged(tmp_path: Path) -> None:
    config, store, sent = prepared(tmp_path)
    with store:
        secret = load_secret(config, store)
        for message in sent:
            sub = store.subscriber(message.recipient)
            assert sub is not None
            assert re.fullmatch(
                rf"bounces\+1-{sub.id}-[a-z2-7]{{16}}@feeds\.example\.org", message.sender
            ), message.sender
            assert b"\r\nFrom: " in message.data and b"news@feeds.example.org>" in message.data
            assert b"bounces+" not in message.data  # only the envelope carries it
            # A relay that upper- or lower-cases the local part changes nothing.
            for seen in (message.sender, message.sender.upper()):
                (token,) = find_tokens(f"To: <{seen}>", BOUNCE_ADDRESS)
                assert (token.digest_id, token.subscriber_id) == (1, sub.id)
                assert verify(secret, config.list_id, token, sub.address)
                assert not verify(secret, config.list_id, token, "someone@example.org")
        assert len({m.sender for m in sent}) == len(sent)


def test_without_a_bounce_address_the_envelope_is_the_from_address(tmp_path: Path) -> None:
    _config, store, sent = prepared(tmp_path, verp=False)
    store.close()
    assert {m.sender for m in sent} == {"news@feeds.example.org"}


def test_a_sign_up_message_names_no_digest(tmp_path: Path) -> None:
    from iomfeed.consent import ConsentVia
    from iomfeed.signup import sign_up

    config, store, _sent = prepared(tmp_path)
    mailer = Recorder()
    with store:
        sign_up(
            store, config, mailer, address="new@example.org", name="", language="en",
            categories=(), via=ConsentVia.WEB_FORM, now=NOW,
        )  # fmt: skip
        (message,) = mailer.sent
        sub = store.subscriber("new@example.org")
        assert sub is not None
        (token,) = find_tokens(message.sender, BOUNCE_ADDRESS)
        assert token.digest_id is None and token.subscriber_id == sub.id
        assert message.sender.startswith("bounces+0-")


@pytest.mark.parametrize(
    ("name", "kind", "status"),
    [
        ("postfix-dsn", Kind.HARD, "5.1.1"),
        ("postfix-delayed", Kind.SOFT, "4.2.2"),
        ("exim", Kind.HARD, "5.1.1"),
        ("qmail", Kind.HARD, "5.1.1"),
        ("exchange", Kind.HARD, "5.0.0"),
        ("yahoo", Kind.HARD, "5.0.0"),
        ("sendmail-old", Kind.HARD, "5.0.0"),
    ],
)
def test_bounces_of_several_mtas_name_the_recipient_and_the_class(
    name: str, kind: Kind, status: str
) -> None:
    raw = fill(name, None, to="ana.hoxha@example.net")
    found = classify(raw)
    assert found.kind is kind
    assert [(f.address, f.hard, f.status) for f in found.failures] == [
        ("ana.hoxha@example.net", kind is Kind.HARD, status)
    ]
    assert found.message_id.startswith("<") and found.message_id.endswith(">")


def test_complaints_auto_replies_and_junk_are_told_apart() -> None:
    arf = classify(fill("arf", None, to="ana.hoxha@example.net"))
    assert arf.kind is Kind.COMPLAINT and arf.complained == ("ana.hoxha@example.net",)
    assert "abuse" in arf.note
    assert classify(fill("out-of-office", None, to="ana.hoxha@example.net")).kind is (
        Kind.AUTO_REPLY
    )
    assert classify(fill("junk", None, to="x@example.net")).kind is Kind.UNRECOGNISED
    assert classify(b"\xff\xfe not a message at all").kind is Kind.UNRECOGNISED


@pytest.mark.parametrize("name", MTAS)
def test_a_hard_bounce_with_its_token_is_counted_and_the_message_marked_read(
    tmp_path: Path, name: str
) -> None:
    config, store, sent = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        message = sent[0]
        deliver(maildir, fill(name, message), "1.bounce")
        report = read_bounces(config, store=store, clock=lambda: NOW + timedelta(hours=1))
        assert report.read == 1 and report.kinds == {"hard": 1} and report.ok
        sub = store.subscriber(message.recipient)
        assert sub is not None and sub.status == "active"  # 1 of mail.bounce_after (3)
        (event,) = store.bounce_events(subscriber_id=sub.id)
        assert (event.kind, event.trust, event.action, event.digest_id) == (
            Kind.HARD, Trust.TOKEN, Action.COUNTED, 1,
        )  # fmt: skip
        assert event.message_id and event.detail == "hard bounce 1 of 3 in a row"
        assert list((maildir / "new").iterdir()) == []
        assert [p.name for p in (maildir / "cur").iterdir()] == ["1.bounce:2,S"]


def test_three_hard_bounces_in_a_row_mark_bounced_and_a_success_resets(tmp_path: Path) -> None:
    config, store, first = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        rounds = [first] + [
            send_one(config, store, NOW + timedelta(days=7 * i), 100 + 2 * i) for i in (1, 2, 3)
        ]
        target = first[0].recipient

        def bounce(digest: int) -> None:
            message = next(m for m in rounds[digest - 1] if m.recipient == target)
            deliver(maildir, fill("exim", message), f"{digest}.bounce")
            read_bounces(config, store=store, clock=lambda: NOW + timedelta(days=7 * digest))

        bounce(1)
        bounce(3)  # digest 2 went out and drew no bounce: the streak starts again
        sub = store.subscriber(target)
        assert sub is not None and sub.status == "active"
        assert store.bounce_events(digest_id=3)[0].detail == "hard bounce 1 of 3 in a row"
        bounce(2)  # late, but now 1, 2, 3 and then 4 are in a row
        bounce(4)
        sub = store.subscriber(target)
        assert sub is not None and sub.status == "bounced", sub
        assert "bounced after the fact (5.1.1)" in sub.reason
        # The next digest leaves them out.
        later = send_one(config, store, NOW + timedelta(days=28), 200)
        assert target not in {m.recipient for m in later}
        rounds.append(later)
        # Back on the list (they asked), the old streak is over: one bounce is one again.
        assert store.resubscribe(target, NOW + timedelta(days=29))
        fifth = send_one(config, store, NOW + timedelta(days=35), 300)
        rounds.append(fifth)
        bounce(6)
        sub = store.subscriber(target)
        assert sub is not None and sub.status == "active"
        assert store.bounce_events(digest_id=6)[0].detail == "hard bounce 1 of 3 in a row"


class Refusing(Recorder):
    """Takes every message but those to ``refused``, which it refuses (550) in session."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    def send(self, message: Outgoing) -> str:
        if message.recipient == self.refused:
            raise PermanentFailure("550 5.1.1 no such user")
        return super().send(message)


def send_refusing(config: Config, store: Store, when: datetime, target: str) -> None:
    add_items(store, range(500, 502), when - timedelta(minutes=5))
    outcome = send_digest(config, store=store, mailer=Refusing(target), clock=lambda: when)
    assert outcome.delivery is not None and outcome.delivery.totals["failed"] == 1, outcome


def at(when: datetime) -> Callable[[], datetime]:
    return lambda: when


def failures(store: Store, subscriber_id: int) -> int:
    profile = store.profile(subscriber_id=subscriber_id)
    assert profile is not None
    return profile.failures


@pytest.mark.parametrize("order", [(1, 2), (2, 1)], ids=["in-order", "older-one-late"])
def test_bounces_after_the_fact_and_a_refusal_in_session_are_one_streak(
    tmp_path: Path, order: tuple[int, int]
) -> None:
    # Two digests bounced after the fact, then the relay refuses the third during the send:
    # three hard failures in a row, whichever way each was learnt, and in whichever order
    # the two bounces are read (a delayed one of digest 1 after digest 2's).
    config, store, first = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        sent = {1: first, 2: send_one(config, store, NOW + timedelta(days=7), 110)}
        target = first[0].recipient
        for n in order:
            message = next(m for m in sent[n] if m.recipient == target)
            deliver(maildir, fill("exim", message), f"{n}.bounce")
            read_bounces(config, store=store, clock=at(NOW + timedelta(days=7, hours=n)))
        sub = store.subscriber(target)
        assert sub is not None and sub.status == "active"
        assert failures(store, sub.id) == 2  # what `subscribers show` prints
        last = store.bounce_events(digest_id=order[-1])[0]
        assert last.detail == "hard bounce 2 of 3 in a row"
        send_refusing(config, store, NOW + timedelta(days=14), target)
        sub = store.subscriber(target)
        assert sub is not None and sub.status == "bounced", sub


def test_a_late_bounce_of_an_older_digest_leaves_the_sends_count_alone(tmp_path: Path) -> None:
    # Digest 2 went out and drew no bounce: a bounce of digest 1 read afterwards starts no
    # count the next send's refusal would continue.
    config, store, first = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        send_one(config, store, NOW + timedelta(days=7), 110)
        target = first[0].recipient
        message = next(m for m in first if m.recipient == target)
        deliver(maildir, fill("exim", message), "1.bounce")
        read_bounces(config, store=store, clock=lambda: NOW + timedelta(days=8))
        sub = store.subscriber(target)
        assert sub is not None and failures(store, sub.id) == 0
        assert store.bounce_events(subscriber_id=sub.id)[0].action is Action.COUNTED


def test_soft_bounces_count_only_in_a_row_over_soft_days(tmp_path: Path) -> None:
    config, store, first = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        target = first[0].recipient
        digests = [first] + [
            send_one(config, store, NOW + timedelta(days=d), 100 + 2 * i)
            for i, d in ((1, 3), (2, 6), (3, 20))
        ]
        for n, messages in enumerate(digests[:3], start=1):
            message = next(m for m in messages if m.recipient == target)
            deliver(maildir, fill("postfix-delayed", message), f"{n}.soft")
        read_bounces(config, store=store, clock=lambda: NOW + timedelta(days=7))
        sub = store.subscriber(target)
        assert sub is not None and sub.status == "active"  # 3 in a row, but over 6 days
        assert "soft bounce 3 of 3 in a row (6 of 14 days)" in store.bounce_events()[0].detail
        message = next(m for m in digests[3] if m.recipient == target)
        deliver(maildir, fill("postfix-delayed", message), "4.soft")
        read_bounces(config, store=store, clock=lambda: NOW + timedelta(days=21))
        sub = store.subscriber(target)
        assert sub is not None and sub.status == "bounced"
        assert "4 soft bounces in a row over 20 days" in sub.reason


def test_a_complaint_unsubscribes_at_once(tmp_path: Path) -> None:
    config, store, sent = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        deliver(maildir, fill("arf", sent[0]), "1.arf")
        # Without the VERP address, the returned message's unsubscribe link proves it too.
        deliver(maildir, strip_token(fill("arf", sent[1], config=config, store=store)), "2.arf")
        report = read_bounces(config, store=store, clock=lambda: NOW + timedelta(hours=2))
        assert report.kinds == {"complaint": 2} and report.unsubscribed == 2
        for message in sent[:2]:
            sub = store.subscriber(message.recipient)
            assert sub is not None and sub.status == "unsubscribed"
            assert sub.reason.startswith("complaint: feedback abuse")
            (event,) = store.bounce_events(subscriber_id=sub.id)
            assert event.kind is Kind.COMPLAINT and event.trust is Trust.TOKEN


def test_auto_replies_and_junk_are_kept_counted_and_never_acted_on(tmp_path: Path) -> None:
    config, store, sent = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        deliver(maildir, fill("out-of-office", sent[0]), "1.ooo")
        deliver(maildir, fill("junk", sent[0]), "2.junk")
        report = read_bounces(config, store=store, clock=lambda: NOW + timedelta(hours=2))
        assert report.kinds == {"auto-reply": 1, "unrecognised": 1}
        assert (report.bounced, report.unsubscribed, report.ignored) == (0, 0, 0)
        assert {s.status for s in store.subscribers()} == {"active"}
        assert {e.action for e in store.bounce_events()} == {Action.IGNORED}
        assert store.bounce_counts()["auto-reply"] == 1
        assert sorted(p.name for p in (maildir / "cur").iterdir()) == ["1.ooo:2,S", "2.junk:2,S"]


def test_a_forged_bounce_without_a_token_silences_nobody_not_mailed_lately(
    tmp_path: Path,
) -> None:
    config, store, sent = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        message = sent[0]
        forged = strip_token(fill("postfix-dsn", message))
        # A stranger, and a subscriber whose last digest is older than trust_days.
        deliver(maildir, strip_token(fill("arf", None, to="nobody@example.org")), "1.arf")
        deliver(maildir, forged, "2.dsn")
        deliver(maildir, strip_token(fill("arf", message)), "3.arf")
        report = read_bounces(config, store=store, clock=lambda: NOW + timedelta(days=15))
        assert report.ignored == 3 and report.bounced == report.unsubscribed == 0
        sub = store.subscriber(message.recipient)
        assert sub is not None and sub.status == "active"
        events = store.bounce_events(subscriber_id=sub.id)
        assert {(e.trust, e.action) for e in events} == {(Trust.NONE, Action.IGNORED)}
        assert "not trusted" in events[0].detail
        # The same bounce without a token within trust_days of the send is believed.
        deliver(maildir, forged.replace(b"Message-Id: <", b"Message-Id: <x"), "4.dsn")
        read_bounces(config, store=store, clock=lambda: NOW + timedelta(days=2))
        newest = store.bounce_events(subscriber_id=sub.id)[0]
        assert (newest.trust, newest.action, newest.digest_id) == (
            Trust.RECENT, Action.COUNTED, 1,
        )  # fmt: skip


def test_a_message_read_again_counts_once(tmp_path: Path) -> None:
    config, store, sent = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        raw = fill("qmail", sent[0])
        deliver(maildir, raw, "1.bounce")
        read_bounces(config, store=store, clock=lambda: NOW)
        deliver(maildir, raw, "1-copy.bounce")  # a second copy of the same message
        report = read_bounces(config, store=store, clock=lambda: NOW)
        assert (report.read, report.again) == (0, 1)
        assert len(store.bounce_events()) == 1
        assert not list((maildir / "new").iterdir())


def test_a_missing_maildir_is_named(tmp_path: Path) -> None:
    from iomfeed.errors import MailboxError

    config, store, _sent = prepared(tmp_path)
    assert config.maildir_path is not None
    (config.maildir_path / "new").rmdir()
    with store, pytest.raises(MailboxError, match="is not a Maildir folder"):
        read_bounces(config, store=store, clock=lambda: NOW)


def test_the_bounce_log_step_upgrades_a_database_with_a_list_and_a_ledger(tmp_path: Path) -> None:
    from iomfeed.store import Store

    from .schemakit import database_before

    path = tmp_path / "old.sqlite"
    db = database_before(path, "-- issue 12 (bounces)")
    db.execute(
        "INSERT INTO subscribers (address, name, language, status, subscribed)"
        " VALUES ('ana@example.org', 'Ana', 'en', 'active', '2026-11-01T08:00:00Z')"
    )
    db.close()
    with Store(path) as store:
        sub = store.subscriber("ana@example.org")
        assert sub is not None and sub.status == "active"
        assert store.bounce_events() == [] and store.sent_digests(sub.id) == []
        assert store.bounce_counts() == {"ignored": 0}


def test_a_message_the_classifier_trips_over_is_kept_as_unrecognised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from iomfeed.bounces import process

    config, store, sent = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None

    def broken(raw: bytes) -> None:
        raise ValueError("a bug")

    with store:
        deliver(maildir, fill("exim", sent[0]), "1.odd")
        monkeypatch.setattr(process, "classify", broken)
        report = read_bounces(config, store=store, clock=lambda: NOW)
        assert report.ok and report.kinds == {"unrecognised": 1}
        (event,) = store.bounce_events()
        assert event.action is Action.IGNORED and "could not be classified" in event.detail
        assert "1.odd could not be classified" in caplog.text
        assert [p.name for p in (maildir / "cur").iterdir()] == ["1.odd:2,S"]


def _request(message: Outgoing, *, subject: str = "{}", encoded: bool = False) -> bytes:
    """A subscriber's mail program following the message's List-Unsubscribe mailto."""
    parsed = email.message_from_bytes(message.data)
    header = " ".join(str(parsed["List-Unsubscribe"]).split())
    mailto = re.search(r"<mailto:([^?>]+)\?subject=([^>]+)>", header)
    assert mailto is not None, header
    wanted = unquote(mailto.group(2))
    lines = [f"From: {message.recipient}", f"To: {mailto.group(1)}"]
    said = subject.format(wanted)
    if encoded:  # as RFC 2047 words, as some mail programs send any subject
        from email.header import Header

        said = Header(said, "utf-8").encode()
    lines += [f"Subject: {said}", ""]
    return ("\r\n".join(lines) + "\r\nPlease take me off.\r\n").encode()


def test_a_subscribers_own_unsubscribe_mail_unsubscribes_them_once(tmp_path: Path) -> None:
    """The digests advertise a mailto in List-Unsubscribe; a mail to it, read with the
    bounces, unsubscribes whoever its token proves (never whoever its From names)."""
    config, store, sent = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        deliver(maildir, _request(sent[0]), "1.request")
        deliver(maildir, _request(sent[1], subject="Re: {}", encoded=True), "2.request")
        forged = _request(sent[2])
        token = re.search(rb"Subject: unsubscribe (\S+)", forged)
        assert token is not None
        changed = token.group(1)[:-1] + (b"B" if token.group(1).endswith(b"A") else b"A")
        forged = forged.replace(token.group(1), changed)  # (the token's MAC altered)
        deliver(maildir, forged, "3.request")
        report = read_bounces(config, store=store, clock=lambda: NOW + timedelta(hours=2))
        assert report.kinds == {"unsubscribe": 3} and report.requests == 2
        assert report.unsubscribed == 0 and report.bounced == 0
        assert "2 unsubscribed by their own mail" in report_line(report)
        for message in sent[:2]:
            sub = store.subscriber(message.recipient)
            assert sub is not None and sub.status == "unsubscribed"
            assert sub.reason == "unsubscribe by mail: asked by mail (List-Unsubscribe)"
            (event,) = store.bounce_events(subscriber_id=sub.id)
            assert (event.kind, event.trust, event.action) == (
                Kind.UNSUBSCRIBE, Trust.TOKEN, Action.UNSUBSCRIBED,
            )  # fmt: skip
        third = store.subscriber(sent[2].recipient)
        assert third is not None and third.status == "active"  # its From proves nothing
        # The same mail again (a second copy) is known by its bytes: nothing counts twice.
        deliver(maildir, _request(sent[0]), "4.request")
        again = read_bounces(config, store=store, clock=lambda: NOW + timedelta(hours=3))
        assert (again.read, again.again, again.requests) == (0, 1, 0)
        # Another such mail from them, once they have left, is recorded and changes nothing.
        later = _request(sent[0]).replace(b"take me off", b"take me off, again")
        deliver(maildir, later, "5.request")
        last = read_bounces(config, store=store, clock=lambda: NOW + timedelta(hours=4))
        assert last.kinds == {"unsubscribe": 1} and last.requests == 0
        first = store.subscriber(sent[0].recipient)
        assert first is not None
        events = store.bounce_events(subscriber_id=first.id)
        assert [e.action for e in events] == [Action.IGNORED, Action.UNSUBSCRIBED]
        assert events[0].detail == "subscriber already unsubscribed"


def test_no_mailto_is_advertised_where_nothing_reads_it(tmp_path: Path) -> None:
    """Without a bounce mailbox (or mail.unsubscribe_mailto set by hand), nothing would act
    on an unsubscribe mail: the List-Unsubscribe header gives only the https link."""
    assert digest_config(tmp_path).unsubscribe_mailto == ""
    # Where the bounce pass reads: the VERP address's mailbox, else the sender's.
    assert bounce_config(tmp_path).unsubscribe_mailto == BOUNCE_ADDRESS
    assert bounce_config(tmp_path, verp=False).unsubscribe_mailto == "news@feeds.example.org"
    handled = digest_config(tmp_path, mail={"unsubscribe_mailto": "leave@example.org"})
    assert handled.unsubscribe_mailto == "leave@example.org"


def test_the_unsubscribe_mail_step_keeps_the_bounce_log(tmp_path: Path) -> None:
    """The step rebuilds bounce_events for its new kind: every row and index is kept."""
    from .schemakit import database_before

    path = tmp_path / "old.sqlite"
    db = database_before(path, "-- issue 13 (trials): a subscriber's own mail")
    db.execute(
        "INSERT INTO subscribers (address, name, language, status, subscribed)"
        " VALUES ('ana@example.org', 'Ana', 'en', 'active', '2026-11-01T08:00:00Z')"
    )
    db.execute(
        "INSERT INTO bounce_events (message_key, message_id, received, kind, subscriber_id,"
        " address, status, trust, action, detail) VALUES ('k1', '<m1>',"
        " '2026-11-02T08:00:00Z', 'hard', 1, 'ana@example.org', '5.1.1', 'token', 'counted',"
        " 'hard bounce 1 of 3 in a row')"
    )
    db.close()
    with Store(path) as store:
        (event,) = store.bounce_events()
        assert (event.kind, event.status, event.detail) == (
            Kind.HARD, "5.1.1", "hard bounce 1 of 3 in a row",
        )  # fmt: skip
        indexes = {r[1] for r in store.db.execute("PRAGMA index_list(bounce_events)")}
        assert indexes == {
            "bounce_events_message",
            "bounce_events_subscriber",
            "bounce_events_digest",
        }
        store.db.execute(
            "INSERT INTO bounce_events (message_key, message_id, received, kind, trust, action)"
            " VALUES ('k2', '', '2026-11-03T08:00:00Z', 'unsubscribe', 'none', 'ignored')"
        )


def test_a_detector_tripping_over_junk_is_no_error_for_the_operator(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """flufl.bounce logs a detector that trips over a message (here Yale's, over an empty
    From) with its trace at error level: under -q that reached stderr and cron's mail."""
    import logging

    raw = b"From: \r\nTo: bounces@feeds.example.org\r\nSubject: hello\r\n\r\nspam text\r\n"
    with caplog.at_level(logging.DEBUG):
        assert classify(raw).kind is Kind.UNRECOGNISED
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("Yale" in r.getMessage() and "IndexError" in r.getMessage() for r in caplog.records)
