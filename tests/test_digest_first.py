"""The list's first digest: after a backfill of the whole history it shows only the newest
``digest.first_items`` stories as "the latest stories"; the older ones count as handled, so
the second digest holds only what was found after the first, as every later one does.

Made from a real store and sent through the outbox transport; the messages are read back
from the .eml files."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import lxml.html

from iomfeed.delivery.mailers import make_mailer
from iomfeed.ingest import upsert
from iomfeed.pipeline import digest_content, send_digest
from iomfeed.store import Store

from .conftest import NOW
from .digestkit import add_subscribers, digest_config, item, text_of

BACKFILL = 48  # stories on the site when iomfeed first ran, back to 2016


def messages(folder: Path) -> dict[str, tuple[str, str, str]]:
    """(subject, text, html) per language of the .eml files in ``folder``."""
    out: dict[str, tuple[str, str, str]] = {}
    for path in sorted(folder.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        text, html = (p.get_content() for p in msg.iter_parts())
        lang = str(lxml.html.document_fromstring(html).get("lang"))
        out[lang] = (str(msg["Subject"]), text, html)
    return out


def words(html: str, selector: str) -> list[str]:
    doc = lxml.html.document_fromstring(html)
    return [text_of(e) for e in doc.cssselect(selector)]


def test_the_first_digest_shows_the_latest_few_and_the_second_only_what_is_new(
    tmp_path: Path,
) -> None:
    config = digest_config(tmp_path)
    assert config.digest.first_items == 5  # the default
    backfill = NOW - timedelta(days=6)
    with Store(tmp_path / "db.sqlite") as store:
        add_subscribers(store, 2)  # one Albanian, one English
        for n in range(BACKFILL):  # one story every two months, back to 2016
            upsert(store, item(n, published=NOW - timedelta(days=7 + 61 * n)), backfill)
        content = digest_content(config, store, NOW)
        assert content.first and len(content.entries) == 5 and content.more == BACKFILL - 5
        assert min(e.published for e in content.entries) > NOW - timedelta(days=7 + 61 * 5)

        first = send_digest(config, store=store, mailer=make_mailer(config), clock=lambda: NOW)
        assert first.status == "sent" and (first.items, first.more) == (5, BACKFILL - 5)
        sent = messages(config.outbox_path)
        assert set(sent) == {"en", "sq"}
        subject, text, html = sent["en"]
        assert subject == "IOM Albania news: the latest stories, 24 November 2026"
        assert "Here are the latest stories from IOM Albania news." in text
        assert words(html, "p.intro") == ["Here are the latest stories from IOM Albania news."]
        assert len(words(html, "h3")) == 5
        # The older stories are linked and counted, but not called new.
        assert words(html, "p.more-text") == ["43 more stories are on our website."]
        assert "43 more stories are on our website." in text
        assert not re.search(r"\bnew\b", " ".join(words(html, "p.more-text, p.intro")))
        subject, text, html = sent["sq"]
        assert subject == "Lajme nga IOM Shqipëri: lajmet më të fundit, 24 nëntor 2026"
        assert words(html, "p.more-text") == [
            "Edhe 43 lajme të tjera janë në faqen tonë të internetit."
        ]
        assert "të reja" not in " ".join(words(html, "p.more-text, p.intro"))

        # A week later two stories were found: the second digest holds them alone.
        week = NOW + timedelta(days=7)
        for n in (BACKFILL, BACKFILL + 1):
            upsert(
                store,
                item(n, published=week - timedelta(hours=n - BACKFILL + 1)),
                week - timedelta(days=1),
            )
        content = digest_content(config, store, week)
        assert not content.first and content.more == 0
        assert sorted(e.url for e in content.entries) == [
            f"https://albania.iom.int/news/story-{n}" for n in (BACKFILL, BACKFILL + 1)
        ]
        for path in config.outbox_path.glob("*.eml"):
            path.unlink()
        second = send_digest(config, store=store, mailer=make_mailer(config), clock=lambda: week)
        assert second.status == "sent" and (second.items, second.more) == (2, 0)
        subject, text, html = messages(config.outbox_path)["en"]
        assert subject == "IOM Albania news: 2 new stories, 1 December 2026"
        assert words(html, "p.intro") == [
            "Here are the new stories from IOM Albania news since the last digest."
        ]
        assert not words(html, "p.more-text")


def test_a_first_digest_resumed_after_a_crash_is_still_the_first(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    with Store(tmp_path / "db.sqlite") as store:
        add_subscribers(store, 1)
        for n in range(8):
            upsert(store, item(n), NOW - timedelta(days=1))
        made = digest_content(config, store, NOW)
        record = store.create_digest(
            created=NOW,
            since=None,
            cutoff=NOW,
            item_ids=[e.id for e in made.entries],
            more=made.more,
            left_out=made.left_out,
        )
        resumed = digest_content(config, store, NOW + timedelta(hours=1))
    assert resumed.digest_id == record.id and resumed.first
    assert [e.id for e in resumed.entries] == [e.id for e in made.entries]
    assert resumed.more == 3


def test_no_digest_went_out_yet_when_the_earlier_ones_were_skipped(tmp_path: Path) -> None:
    """A digest skipped for want of subscribers sent nothing: the next is still the first."""
    config = digest_config(tmp_path)
    with Store(tmp_path / "db.sqlite") as store:
        for n in range(9):
            upsert(store, item(n), NOW - timedelta(days=30))
        skipped = send_digest(
            config, store=store, mailer=make_mailer(config), clock=lambda: NOW - timedelta(days=7)
        )
        assert skipped.status == "skipped"
        add_subscribers(store, 1)
        content = digest_content(config, store, NOW)
    assert content.first and (len(content.entries), content.more) == (5, 4)


def test_first_items_is_configurable(tmp_path: Path) -> None:
    config = digest_config(tmp_path, digest={"first_items": 2})
    with Store(tmp_path / "db.sqlite") as store:
        for n in range(4):
            upsert(store, item(n), datetime(2026, 11, 1, tzinfo=NOW.tzinfo))
        content = digest_content(config, store, NOW)
    assert [e.url.rsplit("-", 1)[1] for e in content.entries] == ["0", "1"]
    assert content.more == 2
