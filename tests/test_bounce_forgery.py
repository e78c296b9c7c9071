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

from .bouncekit import BOUNCE_ADDRESS, deliver, fill, prepared, send_one
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
