"""Which items a digest holds and when one is due (pure), and the ledger in a real store."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from iomfeed.digest.lifecycle import DigestState, is_due, next_due
from iomfeed.digest.select import (
    select,
    shorten,
    summarize,
)
from iomfeed.errors import ConfigError, StoreError
from iomfeed.ingest import upsert
from iomfeed.models import DigestRecord
from iomfeed.normalize import text_blocks
from iomfeed.pipeline import digest_content, render_languages
from iomfeed.store import Store

from .conftest import NOW
from .digestkit import add_items, add_subscribers, digest_config, item, text_of


def plain_text(html: str) -> str:
    return "\n".join(text_blocks(html))


def paragraphs(html: str) -> list[str]:
    return text_blocks(html)


def test_plain_text_and_shorten() -> None:
    assert plain_text("<p>IOM &amp; <b>partners</b>\n met</p>") == "IOM & partners met"
    assert plain_text("") == ""
    text = "word " * 100
    short = shorten(text, 50)
    assert len(short) <= 50 and short.endswith("…") and not short.endswith(" …")
    assert shorten("short", 50) == "short"


#: The site's own teaser of one story (from the snapshot): two paragraphs.
TEASER = (
    "<p>- Connect Albania mechanism supports 41 new diaspora investments in 2023</p>"
    "<p>Tirana, 9 November 2023 – Forty-one businesses started or expanded in 2023 by"
    " Albanians living abroad were presented today at the annual meeting of the Connect"
    " Albania mechanism.</p>"
)


def test_block_elements_end_a_paragraph_inline_elements_do_not() -> None:
    assert paragraphs(TEASER) == [
        "- Connect Albania mechanism supports 41 new diaspora investments in 2023",
        "Tirana, 9 November 2023 – Forty-one businesses started or expanded in 2023 by"
        " Albanians living abroad were presented today at the annual meeting of the Connect"
        " Albania mechanism.",
    ]
    assert plain_text(TEASER).startswith(
        "- Connect Albania mechanism supports 41 new"
        " diaspora investments in 2023\nTirana, 9 November"
    )
    html = (
        "<h2>Heading</h2>First line<br>second <a href='x'>li</a>ne<ul><li>one</li>"
        "<li><b>two</b></li></ul><div>in a div</div><!-- a comment -->tail"
        "<table><tr><td>cell 1</td><td>cell 2</td></tr></table>"
    )
    assert paragraphs(html) == [
        "Heading",
        "First line",
        "second line",
        "one",
        "two",
        "in a div",
        "tail",
        "cell 1",
        "cell 2",
    ]
    assert paragraphs("<p> </p><p>\n</p>") == [] and paragraphs("") == []


def test_a_summary_keeps_whole_paragraphs_within_the_limit() -> None:
    parts = ["a" * 100, "b " * 75, "c " * 100]
    assert summarize(parts, 400).split("\n")[:2] == [parts[0], parts[1]]
    assert summarize(parts, 400).endswith("c…") and len(summarize(parts, 400)) <= 402
    # Too little room left for the third paragraph: it is left out, not cut to a stub.
    assert summarize(parts, 290) == parts[0] + "\n" + parts[1]
    # The first paragraph is always there, cut if need be.
    assert summarize(["word " * 100], 50).endswith("…")


def test_paragraphs_stay_apart_in_both_parts_of_the_digest(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    with Store(tmp_path / "db.sqlite") as store:
        upsert(store, dataclasses.replace(item(1), summary_html=TEASER), NOW)
        rendered = render_languages(config, digest_content(config, store, NOW))
    for r in rendered.values():
        assert "2023Tirana" not in r.text and "2023 Tirana" not in r.text
        assert re.search(r"investments in 2023\nTirana, 9 November 2023", r.text)
        doc = lxml.html.document_fromstring(r.html)
        assert [text_of(p)[:30] for p in doc.cssselect("p.item-summary")] == [
            "- Connect Albania mechanism su",
            "Tirana, 9 November 2023 – Fort",
        ]


def test_select_caps_newest_first_and_counts_the_rest(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        add_items(store, range(8), NOW)
        items = store.items()
    content = select(list(reversed(items)), max_items=5, digest_id=0, created=NOW, since=None)
    assert [e.published for e in content.entries] == sorted(
        (e.published for e in content.entries), reverse=True
    )
    assert len(content.entries) == 5 and content.more == 3
    assert content.entries[0].summary.startswith("Story 0: IOM Albania & partners")
    assert "\n" not in content.entries[0].summary  # one paragraph


def _record(created: datetime, status: DigestState = DigestState.SENT) -> DigestRecord:
    return DigestRecord(
        id=1,
        created=created,
        since=None,
        cutoff=created,
        status=status,
        items=3,
        more=0,
        finished=created,
    )


def test_due_by_schedule_in_the_configured_time_zone() -> None:
    monday = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # 08:00 in Tirana (UTC+1)
    last = _record(datetime(2026, 11, 23, 7, 0, 5, tzinfo=UTC))
    kw: dict[str, Any] = {
        "schedule": "0 8 * * mon",
        "timezone": "Europe/Tirane",
        "open_digest": None,
        "first_run": None,
    }
    assert not is_due(now=monday - timedelta(seconds=1), last=last, **kw)
    assert is_due(now=monday, last=last, **kw)
    # A service down for three weeks: due (once: the next digest moves the mark).
    assert is_due(now=monday + timedelta(days=21), last=last, **kw)
    after = _record(monday + timedelta(days=21))
    assert not is_due(now=monday + timedelta(days=21, hours=1), last=after, **kw)
    # Before any digest, the first run is the mark; never run: not due.
    assert is_due(now=monday, last=None, **{**kw, "first_run": monday - timedelta(days=2)})
    assert not is_due(now=monday, last=None, **kw)
    # A digest still being sent is due whatever the schedule.
    assert is_due(
        now=monday - timedelta(days=3),
        last=last,
        **{**kw, "open_digest": _record(monday, DigestState.SENDING)},
    )


def test_bad_schedule_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"schedule\.digest"):
        next_due("61 8 * * mon", "UTC", NOW)


def test_items_since_the_last_digest_that_went_out(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    week = timedelta(days=7)
    with Store(tmp_path / "db.sqlite") as store:
        add_subscribers(store, 2)
        add_items(store, range(3), NOW - 2 * week)
        first = store.create_digest(
            created=NOW - 2 * week + timedelta(hours=1),
            since=None,
            cutoff=NOW - 2 * week + timedelta(hours=1),
            item_ids=[i.id for i in store.items()],
            more=0,
        )
        # Not gone out yet: a second digest cannot start, and the items are not "sent".
        with pytest.raises(StoreError, match="still being sent"):
            store.create_digest(created=NOW, since=None, cutoff=NOW, item_ids=[], more=0)
        add_items(store, range(3, 5), NOW - week)  # found during the (missed) next week
        content = digest_content(config, store, NOW)
        assert content.digest_id == first.id and len(content.entries) == 3  # resumed as is
        for d in list(store.deliveries(first.id)):
            store.mark_delivered(first.id, d.subscriber_id, "250 OK", NOW - week)
        assert store.finish_digest(first.id, NOW - week)
        add_items(store, range(5, 7), NOW - timedelta(hours=1))
        content = digest_content(config, store, NOW)
    # Catch-up: both weeks' finds, none of the first digest's items.
    assert content.digest_id == 0
    assert sorted(e.url.rsplit("-", 1)[1] for e in content.entries) == ["3", "4", "5", "6"]
    assert content.since == first.cutoff


def test_a_partly_sent_digest_keeps_its_items_unsent(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        add_subscribers(store, 3)
        add_items(store, range(2), NOW - timedelta(days=1))
        record = store.create_digest(
            created=NOW, since=None, cutoff=NOW, item_ids=[i.id for i in store.items()], more=0
        )
        rows = list(store.deliveries(record.id))
        assert [r.status for r in rows] == ["pending"] * 3
        store.mark_delivered(record.id, rows[0].subscriber_id, "250 OK", NOW)
        store.mark_deferred(record.id, rows[1].subscriber_id, "451 later", NOW, give_up=False)
        store.mark_failed(record.id, rows[2].subscriber_id, "550 no", NOW, bounce_after=3)
        assert not store.finish_digest(record.id, NOW)
        assert store.last_digest("sent") is None
        assert store.open_digest() == store.digest(record.id)
        store.mark_delivered(record.id, rows[1].subscriber_id, "250 OK", NOW)
        assert store.finish_digest(record.id, NOW)
        assert store.last_digest("sent") is not None
        assert store.delivery_totals(record.id) == {"sent": 2, "failed": 1}


def test_bounce_after_consecutive_permanent_failures(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        (address,) = add_subscribers(store, 1)
        bounced = []
        for n in range(3):
            record = store.create_digest(
                created=NOW + timedelta(days=n), since=None, cutoff=NOW, item_ids=[], more=0
            )
            sid = next(store.deliveries(record.id)).subscriber_id
            if n == 1:  # a success in between resets the count
                store.mark_delivered(record.id, sid, "250 OK", NOW)
            else:
                bounced.append(store.mark_failed(record.id, sid, "550 gone", NOW, bounce_after=2))
            store.finish_digest(record.id, NOW)
        assert bounced == [False, False]
        record = store.create_digest(
            created=NOW + timedelta(days=9), since=None, cutoff=NOW, item_ids=[], more=0
        )
        sid = next(store.deliveries(record.id)).subscriber_id
        assert store.mark_failed(record.id, sid, "550 gone", NOW, bounce_after=2)
        sub = store.subscriber(address)
        assert sub is not None and sub.status == "bounced" and "550 gone" in sub.reason
