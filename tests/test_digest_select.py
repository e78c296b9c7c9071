"""Which items a digest holds and when one is due (pure), and the ledger in a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iomfeed.digest.select import is_due, next_due, plain_text, select, shorten
from iomfeed.errors import ConfigError, StoreError
from iomfeed.models import DigestRecord
from iomfeed.pipeline import digest_content
from iomfeed.store import Store

from .conftest import NOW
from .digestkit import add_items, add_subscribers, digest_config


def test_plain_text_and_shorten() -> None:
    assert plain_text("<p>IOM &amp; <b>partners</b>\n met</p>") == "IOM & partners met"
    assert plain_text("") == ""
    text = "word " * 100
    short = shorten(text, 50)
    assert len(short) <= 50 and short.endswith("…") and not short.endswith(" …")
    assert shorten("short", 50) == "short"


def test_select_caps_newest_first_and_counts_the_rest(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        add_items(store, range(8), NOW)
        items = store.items()
    content = select(list(reversed(items)), max_items=5, digest_id=0, created=NOW, since=None)
    assert [e.published for e in content.entries] == sorted(
        (e.published for e in content.entries), reverse=True)
    assert len(content.entries) == 5 and content.more == 3
    assert content.entries[0].summary.startswith("Story 0: IOM Albania & partners")


def _record(created: datetime, status: str = "sent") -> DigestRecord:
    return DigestRecord(id=1, created=created, since=None, cutoff=created, status=status,
                        items=3, more=0, finished=created)


def test_due_by_schedule_in_the_configured_time_zone() -> None:
    monday = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # 08:00 in Tirana (UTC+1)
    last = _record(datetime(2026, 11, 23, 7, 0, 5, tzinfo=UTC))
    kw = {"schedule": "0 8 * * mon", "timezone": "Europe/Tirane", "open_digest": None,
          "first_run": None}
    assert not is_due(now=monday - timedelta(seconds=1), last=last, **kw)  # type: ignore[arg-type]
    assert is_due(now=monday, last=last, **kw)  # type: ignore[arg-type]
    # A service down for three weeks: due (once: the next digest moves the mark).
    assert is_due(now=monday + timedelta(days=21), last=last, **kw)  # type: ignore[arg-type]
    after = _record(monday + timedelta(days=21))
    assert not is_due(now=monday + timedelta(days=21, hours=1), last=after, **kw)  # type: ignore[arg-type]
    # Before any digest, the first run is the mark; never run: not due.
    assert is_due(now=monday, last=None, **{**kw, "first_run": monday - timedelta(days=2)})  # type: ignore[arg-type]
    assert not is_due(now=monday, last=None, **kw)  # type: ignore[arg-type]
    # A digest still being sent is due whatever the schedule.
    assert is_due(now=monday - timedelta(days=3), last=last,  # type: ignore[arg-type]
                  **{**kw, "open_digest": _record(monday, "sending")})


def test_bad_schedule_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"schedule\.digest"):
        next_due("61 8 * * mon", "UTC", NOW)


def test_items_since_the_last_digest_that_went_out(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    week = timedelta(days=7)
    with Store(tmp_path / "db.sqlite") as store:
        add_subscribers(store, 2)
        add_items(store, range(3), NOW - 2 * week)
        first = store.create_digest(created=NOW - 2 * week + timedelta(hours=1), since=None,
                                    cutoff=NOW - 2 * week + timedelta(hours=1),
                                    item_ids=[i.id for i in store.items()], more=0)
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
        record = store.create_digest(created=NOW, since=None, cutoff=NOW,
                                     item_ids=[i.id for i in store.items()], more=0)
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
            record = store.create_digest(created=NOW + timedelta(days=n), since=None,
                                         cutoff=NOW, item_ids=[], more=0)
            sid = next(store.deliveries(record.id)).subscriber_id
            if n == 1:  # a success in between resets the count
                store.mark_delivered(record.id, sid, "250 OK", NOW)
            else:
                bounced.append(store.mark_failed(record.id, sid, "550 gone", NOW,
                                                 bounce_after=2))
            store.finish_digest(record.id, NOW)
        assert bounced == [False, False]
        record = store.create_digest(created=NOW + timedelta(days=9), since=None, cutoff=NOW,
                                     item_ids=[], more=0)
        sid = next(store.deliveries(record.id)).subscriber_id
        assert store.mark_failed(record.id, sid, "550 gone", NOW, bounce_after=2)
        sub = store.subscriber(address)
        assert sub is not None and sub.status == "bounced" and "550 gone" in sub.reason
