"""Bounces crafted to do harm: a message that trips up the rules is kept as unrecognised
and stops nothing, and a message without a verified token acts on one subscriber at most."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from iomfeed.bounces.classify import Classified, Kind
from iomfeed.bounces.policy import Action, Trust
from iomfeed.delivery.verp import VerpToken, find_tokens, verify
from iomfeed.digest.unsubscribe import load_secret
from iomfeed.pipeline import read_bounces_safely

from .bouncekit import BOUNCE_ADDRESS, BOUNCES, deliver, fill, prepared, send_one, strip_token
from .conftest import NOW


def _crafted(subscriber_id: int) -> bytes:
    text = (
        "From: someone@example.net\r\nTo: bounces@feeds.example.org\r\n"
        "Subject: hello\r\nMessage-ID: <crafted-1@example.net>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"see bounces+1-{subscriber_id}-\u017faaaaaaaaaaaaaaa@feeds.example.org\r\n"
    )
    return text.encode("utf-8")


def test_a_token_with_a_non_ascii_letter_is_no_token_and_stops_nothing(tmp_path: Path) -> None:
    config, store, sent = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        victim = store.subscriber(sent[0].recipient)
        assert victim is not None
        crafted = _crafted(victim.id)
        assert find_tokens(crafted.decode("utf-8"), BOUNCE_ADDRESS) == []
        secret = load_secret(config, store)
        odd = VerpToken(1, victim.id, "\u017f" * 16)
        assert verify(secret, config.list_id, odd, victim.address) is False
        deliver(maildir, crafted, "1.crafted")
        deliver(maildir, fill("postfix-dsn", sent[1]), "2.dsn")
        report = read_bounces_safely(config, store=store, clock=lambda: NOW + timedelta(hours=1))
        assert report.ok and report.read == 2, report
        assert report.kinds == {"unrecognised": 1, "hard": 1}
        bounced = store.subscriber(sent[1].recipient)
        assert bounced is not None
        (event,) = store.bounce_events(subscriber_id=bounced.id)
        assert (event.kind, event.trust, event.action) == (Kind.HARD, Trust.TOKEN, Action.COUNTED)
        assert store.bounce_events(subscriber_id=victim.id) == []
        assert sorted(p.name for p in (maildir / "cur").iterdir()) == [
            "1.crafted:2,S", "2.dsn:2,S",
        ]  # fmt: skip
        # The next digest still goes out.
        assert send_one(config, store, NOW + timedelta(days=1), 200)


def test_an_error_in_the_rules_keeps_the_message_as_unrecognised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from iomfeed.bounces import process

    config, store, sent = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    real = process._token_targets

    def broken(ctx: process._Context, found: Classified) -> list[process._Target]:
        if "exim" in found.text.lower():
            raise TypeError("a bug")
        return real(ctx, found)

    with store:
        deliver(maildir, fill("exim", sent[0]), "1.odd")
        deliver(maildir, fill("postfix-dsn", sent[1]), "2.dsn")
        monkeypatch.setattr(process, "_token_targets", broken)
        report = read_bounces_safely(config, store=store, clock=lambda: NOW)
        assert report.ok and report.kinds == {"unrecognised": 1, "hard": 1}, report
        odd = [e for e in store.bounce_events() if e.kind is Kind.UNRECOGNISED]
        assert len(odd) == 1 and "could not be processed: TypeError('a bug')" in odd[0].detail
        assert "1.odd could not be processed" in caplog.text


def _dsn_naming(addresses: list[str]) -> bytes:
    """A DSN without a token that reports every one of ``addresses`` failed."""
    text = (BOUNCES / "postfix-dsn.eml").read_text(encoding="utf-8").replace("\r\n", "\n")
    one = "Final-Recipient: rfc822; {TO}\nOriginal-Recipient: rfc822;{TO}\nAction: failed\n"
    assert one in text
    blocks = "\n".join(one.replace("{TO}", a) for a in addresses)
    text = text.replace(one, blocks).replace("{TO}", addresses[0])
    return strip_token(text.replace("{VERP}", BOUNCE_ADDRESS).replace("\n", "\r\n").encode())


def _complaint_naming(addresses: list[str]) -> bytes:
    """An ARF complaint without a token whose report lists every one of ``addresses``."""
    raw = strip_token(fill("arf", None, to=addresses[0]))
    rcpts = b"".join(b"Original-Rcpt-To: <%s>\r\n" % a.encode() for a in addresses)
    return raw.replace(b"Original-Rcpt-To: <%s>\r\n" % addresses[0].encode(), rcpts)


def test_a_forged_complaint_listing_the_whole_list_unsubscribes_nobody(tmp_path: Path) -> None:
    config, store, sent = prepared(tmp_path, subscribers=20)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        everyone = sorted(m.recipient for m in sent)
        assert len(everyone) == 20
        deliver(maildir, _complaint_naming(everyone), "1.arf")
        report = read_bounces_safely(config, store=store, clock=lambda: NOW + timedelta(hours=1))
        assert report.kinds == {"complaint": 1} and report.unsubscribed == 0, report
        assert {s.status for s in store.subscribers()} == {"active"}
        events = store.bounce_events()
        assert len(events) == 20 and {e.action for e in events} == {Action.IGNORED}
        assert "names 20 subscribers mailed lately: acts on none" in events[0].detail


def test_a_forged_dsn_naming_several_recent_subscribers_counts_for_none(tmp_path: Path) -> None:
    config, store, sent = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        three = [m.recipient for m in sent]
        assert len(three) == 3
        deliver(maildir, _dsn_naming(three), "1.dsn")
        read_bounces_safely(config, store=store, clock=lambda: NOW + timedelta(hours=1))
        events = store.bounce_events()
        assert len(events) == 3
        assert {(e.trust, e.action) for e in events} == {(Trust.NONE, Action.IGNORED)}


def test_an_untokened_message_about_one_recent_subscriber_counts_for_that_one_only(
    tmp_path: Path,
) -> None:
    config, store, sent = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        one, other = sent[0].recipient, sent[1].recipient
        deliver(maildir, _dsn_naming([one, "stranger@example.net"]), "1.dsn")
        # With mail.bounce_address set, a complaint without a token is counted only.
        deliver(maildir, _complaint_naming([other]), "2.arf")
        report = read_bounces_safely(config, store=store, clock=lambda: NOW + timedelta(hours=1))
        assert report.unsubscribed == 0 and report.kinds == {"hard": 1, "complaint": 1}
        for address, kind in ((one, Kind.HARD), (other, Kind.COMPLAINT)):
            sub = store.subscriber(address)
            assert sub is not None and sub.status == "active"
            (event,) = store.bounce_events(subscriber_id=sub.id)
            assert (event.kind, event.trust, event.action) == (kind, Trust.RECENT, Action.COUNTED)
        assert len(store.bounce_events()) == 2


def test_without_verp_an_untokened_complaint_about_one_recent_subscriber_unsubscribes(
    tmp_path: Path,
) -> None:
    config, store, sent = prepared(tmp_path, verp=False)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        deliver(maildir, _complaint_naming([sent[0].recipient]), "1.arf")
        report = read_bounces_safely(config, store=store, clock=lambda: NOW + timedelta(hours=1))
        assert report.unsubscribed == 1
        sub = store.subscriber(sent[0].recipient)
        assert sub is not None and sub.status == "unsubscribed"


def test_trust_days_0_ignores_every_bounce_without_a_token(tmp_path: Path) -> None:
    config, store, sent = prepared(tmp_path, trust_days=0)
    maildir = config.maildir_path
    assert maildir is not None and config.bounces.trust_days == 0
    with store:
        deliver(maildir, _dsn_naming([sent[0].recipient]), "1.dsn")
        deliver(maildir, fill("exim", sent[1]), "2.exim")  # with its token: acted on
        read_bounces_safely(config, store=store, clock=lambda: NOW + timedelta(minutes=1))
        first = store.subscriber(sent[0].recipient)
        assert first is not None
        (event,) = store.bounce_events(subscriber_id=first.id)
        assert (event.trust, event.action) == (Trust.NONE, Action.IGNORED)
        assert "trust_days 0" in event.detail
        second = store.subscriber(sent[1].recipient)
        assert second is not None
        (event,) = store.bounce_events(subscriber_id=second.id)
        assert (event.trust, event.action) == (Trust.TOKEN, Action.COUNTED)


def test_a_sign_up_notice_does_not_make_an_address_recent(tmp_path: Path) -> None:
    config, store, sent = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    later = NOW + timedelta(days=15)  # the digest is older than trust_days (14)
    with store:
        sub = store.subscriber(sent[0].recipient)
        assert sub is not None
        # Anyone can have these sent through the sign-up form.
        store.mark_sign_up_mail(sub.id, "notice_sent", later - timedelta(hours=1))
        store.mark_sign_up_mail(sub.id, "confirm_sent", later - timedelta(hours=1))
        deliver(maildir, _dsn_naming([sub.address]), "1.dsn")
        read_bounces_safely(config, store=store, clock=lambda: later)
        (event,) = store.bounce_events(subscriber_id=sub.id)
        assert (event.trust, event.action) == (Trust.NONE, Action.IGNORED)


def test_a_bounce_of_a_digest_still_sending_moves_no_streak(tmp_path: Path) -> None:
    config, store, first = prepared(tmp_path)
    maildir = config.maildir_path
    assert maildir is not None
    with store:
        rounds = [first] + [
            send_one(config, store, NOW + timedelta(days=7 * i), 100 + 2 * i) for i in (1, 2)
        ]
        target = first[0].recipient
        sub = store.subscriber(target)
        assert sub is not None
        # Digest 3's row for them is left 'sending' (a send that has not finished).
        cur = store.db.execute(
            "UPDATE deliveries SET status = 'sending' WHERE digest_id = 3 AND subscriber_id = ?",
            (sub.id,),
        )
        assert cur.rowcount == 1
        for digest in (1, 2, 3):
            message = next(m for m in rounds[digest - 1] if m.recipient == target)
            deliver(maildir, fill("exim", message), f"{digest}.bounce")
            read_bounces_safely(config, store=store, clock=lambda: NOW + timedelta(days=15))
        sub = store.subscriber(target)
        assert sub is not None and sub.status == "active", sub
        (event,) = store.bounce_events(digest_id=3)
        assert event.trust is Trust.TOKEN and event.action is Action.COUNTED
        assert "moves no streak" in event.detail
