"""What the sources hand on must be true: rows without a web address are skipped, not fatal;
a cut teaser is not passed on as the summary; a date in the future does not pin an item; an
article that answered 404 is tried again later. All over real HTTP on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from dev.sitegen import build_site, load_content
from iomfeed.config import LIVE_ORIGIN, Config, load_config
from iomfeed.demo.server import SnapshotServer
from iomfeed.ingest import upsert
from iomfeed.models import Change, Item
from iomfeed.normalize import html_to_text
from iomfeed.store import MIGRATIONS, Store

from .conftest import CONFIG_FILE, NOW, fetch, stored
from .schemakit import database_before

pytestmark = pytest.mark.network

CONTENT = load_content()


def _row(href: str, title: str) -> str:
    return (
        f'<div class="views-row"><article class="node node--view-mode-teaser">'
        f'<h3 class="teaser-title"><a href="{href}">{title}</a></h3>'
        f'<div class="field field--name-body"><p>{title}.</p></div></article></div>\n'
    )


BAD_ROWS = (
    ("javascript:void(0)", "Share this page"),
    ("data:text/html,<b>x</b>", "Inline data"),
    ("mailto:info@example.org", "Write to us"),
)


def test_listing_rows_without_a_web_address_are_skipped_with_a_warning(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    listing = site / "news" / "index.html"
    html = listing.read_text(encoding="utf-8")
    first_row = html.index('<div class="views-row">')
    bad = "".join(
        _row(href.replace("<", "&lt;").replace(">", "&gt;"), title) for href, title in BAD_ROWS
    )
    listing.write_text(html[:first_row] + bad + html[first_row:], encoding="utf-8")
    config = make_config()
    report = fetch(config)
    result = report.sources[0]
    assert report.ok, result.error
    assert result.new == 48
    for href, title in BAD_ROWS:
        scheme = href.split(":", 1)[0]
        assert any(f"{scheme}:" in w and title in w and "skipped" in w for w in result.warnings), (
            scheme,
            result.warnings,
        )
    assert not any(i.url.startswith(("javascript:", "data:", "mailto:")) for i in stored(config))
    assert all(not r.path.startswith(("javascript", "data", "mailto")) for r in server.requests)
    # The rows stay on the page: the next run is not a failure either.
    again = fetch(config, NOW.replace(hour=10))
    assert again.ok, again.sources[0].error


FEED_WITH_BAD_LINKS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>t</title><link>https://www.iom.int/news</link>
<description>d</description>
<item><title>A real story</title><link>/news/a-real-story</link>
 <pubDate>Tue, 05 Mar 2024 10:00:00 +0100</pubDate></item>
<item><title>Share by mail</title><link>mailto:news@example.org</link>
 <pubDate>Tue, 05 Mar 2024 11:00:00 +0100</pubDate></item>
<item><title>Script</title><link>javascript:alert(1)</link>
 <pubDate>Tue, 05 Mar 2024 12:00:00 +0100</pubDate></item>
</channel></rss>
"""


def test_feed_entries_without_a_web_address_are_skipped_with_a_warning(
    tmp_path: Path,
) -> None:
    root = tmp_path / "feeds-site"
    root.mkdir()
    (root / "rss.xml").write_text(FEED_WITH_BAD_LINKS, encoding="utf-8")
    with SnapshotServer(root) as srv:
        path = tmp_path / "config.toml"
        path.write_text(
            f'[http]\nmin_delay = 0.0\n[[sources]]\nname = "global"\n'
            f'kind = "feed"\nurl = "{srv.url("/rss.xml")}"\n',
            encoding="utf-8",
        )
        config = load_config(path)
        result = fetch(config).sources[0]
    assert result.ok, result.error
    assert result.new == 1
    assert [i.url for i in stored(config)] == [srv.url("/news/a-real-story")]
    assert any(
        "'Share by mail'" in w and "mailto:" in w and "skipped" in w for w in result.warnings
    ), result.warnings
    assert any("'Script'" in w and "javascript:" in w for w in result.warnings)


def _slug(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def test_a_json_record_without_a_web_address_stays_a_bad_record_with_its_position(
    tmp_path: Path,
) -> None:
    # Unlike a site's listing, the file is the operator's: a warning would lose the item
    # quietly, so it is reported (with where it is) until fixed; the others are stored.
    rows = [
        {"url": "mailto:news@example.org", "title": "Write to us"},
        {"url": "https://albania.iom.int/news/fine", "title": "Fine"},
    ]
    (tmp_path / "items.json").write_text(json.dumps(rows), encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(
        '[[sources]]\nname = "manual"\nkind = "json"\npath = "items.json"\n', encoding="utf-8"
    )
    config = load_config(path)
    result = fetch(config).sources[0]
    assert not result.ok and result.new == 1
    assert "items.json: item 1: 'url' is missing or not an absolute http(s) URL" in result.error


def test_a_teaser_the_site_cut_mid_word_becomes_a_summary_cut_at_a_word(
    make_config: Callable[..., Config], server: SnapshotServer
) -> None:
    cut = "albanian-diaspora-contributing-economic-growth-rural-communities"
    teaser = next(c.teaser for c in CONTENT if c.slug == cut)
    assert teaser.endswith("through investm")  # the snapshot keeps the live site's cut
    config = make_config()
    assert fetch(config).ok
    items = {_slug(i.url): i for i in stored(config)}
    summary = items[cut].summary_html
    text = html_to_text(summary)
    # The body's whole first paragraph fits: it is the summary.
    assert summary.startswith("<p>") and summary.count("<p>") == 1
    assert "through investments in agriculture" in text and text.endswith("working abroad.")
    assert len(text) <= config.sources[0].summary_length
    assert html_to_text(items[cut].content_html).startswith(text)
    # A teaser ending in a full sentence is the site's own, kept as it is.
    whole = CONTENT[0]
    assert html_to_text(items[whole.slug].summary_html) == " ".join(whole.teaser.split())
    # The length is the source's summary_length.
    short = dataclasses.replace(
        config,
        sources=(dataclasses.replace(config.sources[0], summary_length=120),),
        storage=dataclasses.replace(
            config.storage, database=str(Path(config.database_path).with_name("short.db"))
        ),
    )
    assert fetch(short).ok
    text = html_to_text({_slug(i.url): i for i in stored(short)}[cut].summary_html)
    assert len(text) <= 120 and text.endswith("…") and "investm" not in text


def test_a_date_in_the_future_is_a_warning_and_the_item_is_dated_when_first_seen(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path, tmp_path: Path
) -> None:

    target = CONTENT[3]
    page = site / "news" / f"{target.slug}.html"
    html = page.read_text(encoding="utf-8")
    assert '<time datetime="2024-02-21T12:20:00Z">' in html  # the article's own date
    page.write_text(
        html.replace('<time datetime="2024-02-21', '<time datetime="2204-02-21', 1),
        encoding="utf-8",
    )
    config = make_config()
    report = fetch(config)
    result = report.sources[0]
    assert report.ok, result.error
    assert any(
        target.slug in w and "2204-02-21" in w and "more than a day after" in w
        for w in result.warnings
    ), result.warnings
    items = stored(config)
    item = next(i for i in items if _slug(i.url) == target.slug)
    assert item.published == NOW and item.date_source.value == "first-seen"
    assert "2204-02-21" in item.date_note
    # Not pinned above the news to come: nothing is dated after the fetch ...
    assert all(i.published <= NOW for i in items)
    # ... and the reason shows in `iomfeed items --json`.
    toml = tmp_path / "run.toml"
    toml.write_text(
        CONFIG_FILE.read_text(encoding="utf-8")
        .replace(LIVE_ORIGIN, server.origin)
        .replace('database = "', f'database = "{config.database_path.parent}/', 1),
        encoding="utf-8",
    )
    out = subprocess.run(
        [sys.executable, "-m", "iomfeed", "--config", str(toml), "items", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    listed = {_slug(i["url"]): i for i in json.loads(out.stdout)}
    assert "2204-02-21" in listed[target.slug]["date_note"]
    assert listed[target.slug]["date_source"] == "first-seen"
    assert listed[CONTENT[0].slug]["date_note"] == ""


def test_an_item_stored_earlier_with_a_future_date_is_re_dated_on_upgrade(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    db = database_before(path, "issue 9 (sources)")
    row = {
        "id": "tag:x,2026-11-24:a",
        "url": "https://albania.iom.int/news/a",
        "source": "s",
        "title": "A",
        "title_key": "a",
        "summary_html": "",
        "content_html": "<p>a</p>",
        "published": "2204-02-21T13:20:00+01:00",
        "published_utc": "2204-02-21T12:20:00Z",
        "date_source": "time",
        "updated": "2204-02-21T12:20:00Z",
        "first_seen": "2026-11-24T09:00:00Z",
        "last_seen": "2026-11-24T09:00:00Z",
        "image_url": "",
        "image_alt": "",
        "categories": "[]",
        "language": "en",
        "author": "",
        "content_hash": "h",
        "listing_hash": "l",
    }
    db.execute(
        f"INSERT INTO items ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
        tuple(row.values()),
    )
    fine = dict(
        row,
        id="tag:x,2026-11-24:b",
        url="https://albania.iom.int/news/b",
        published="2026-11-24T10:00:00+01:00",
        published_utc="2026-11-24T09:00:00Z",
    )
    db.execute(
        f"INSERT INTO items ({', '.join(fine)}) VALUES ({', '.join('?' * len(fine))})",
        tuple(fine.values()),
    )
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        redated = store.get("tag:x,2026-11-24:a")
        kept = store.get("tag:x,2026-11-24:b")
    assert redated is not None and kept is not None
    assert redated.published == NOW and redated.date_source.value == "first-seen"
    assert redated.updated == NOW  # it was the future date too
    assert "2204-02-21T13:20:00+01:00 (time)" in redated.date_note
    assert kept.published.isoformat() == "2026-11-24T10:00:00+01:00" and kept.date_note == ""
    # The page still shows the typo: the next fetch sees the same story, not an edit.
    with Store(path) as store:
        again = upsert(
            store,
            Item(source="s", url=redated.url, title="A", content_html="<p>a</p>", language="en"),
            NOW + timedelta(days=7),
        )
        assert again.change is Change.UNCHANGED
        after = store.get(redated.id)
        assert (
            after is not None and dataclasses.replace(after, last_seen=redated.last_seen) == redated
        )


# ----------------------------------------------------------------------------- 404, retried


def test_missing_article_retries_follow_the_backoff_schedule() -> None:
    from datetime import timedelta

    from iomfeed.sources.html import next_missing_try

    first = NOW
    week = timedelta(days=7)
    tries, at, attempts = [], first, 1
    while (
        nxt := next_missing_try(first, attempts, at, give_up_after=week, status=404)
    ) is not None:
        tries.append(nxt - at)
        at, attempts = nxt, attempts + 1
    hours = [round(t.total_seconds() / 3600) for t in tries]
    assert hours[:6] == [1, 2, 4, 8, 16, 24] and set(hours[5:]) == {24}
    assert at - first >= week and at - first < week + timedelta(days=1)
    # 410 Gone is an answer, not a hiccup; and retry_missing_days = 0 never retries.
    assert next_missing_try(first, 1, first, give_up_after=week, status=410) is None
    assert next_missing_try(first, 1, first, give_up_after=timedelta(0), status=404) is None
    # Thousands of tries do not overflow the interval.
    assert next_missing_try(
        first, 5000, first, give_up_after=timedelta(days=10**4), status=404
    ) == first + timedelta(days=1)


def _dead_link_target() -> str:
    return next(c.slug for c in CONTENT[5:] if c.link == "relative" and c.layout == "drupal")


def test_an_article_that_answered_404_is_tried_again_while_the_listing_answers_304(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    from datetime import timedelta

    from iomfeed.demo.server import Fault

    slug = _dead_link_target()
    path = f"/news/{slug}"
    server.add_fault(path, Fault(status=404, times=2))  # 404 twice, then the article is there
    config = make_config()
    first = fetch(config).sources[0]
    assert first.ok and first.new == 47 and server.hits(path) == 1
    assert any(
        "missing article" in w and "HTTP 404" in w and "tried again" in w for w in first.warnings
    ), first.warnings

    def run(after: timedelta) -> tuple[int, int, int, tuple[str, ...]]:
        before = server.hits(path)
        result = fetch(config, NOW + after).sources[0]
        assert result.ok, result.error
        assert result.not_modified >= 1  # the listing did not change: 304
        return server.hits(path) - before, result.new, result.pages, result.warnings

    assert run(timedelta(minutes=30))[:3] == (0, 0, 1)  # not due yet: one 304, nothing else
    tried, new, _pages, warnings = run(timedelta(hours=1))  # due: 404 again, quietly
    assert (tried, new, warnings) == (1, 0, ())
    # The listing changes (a new story): its walk does not ask early for the missing one,
    # whose next try is 2 h after the last.
    fresh = dataclasses.replace(
        CONTENT[0],
        slug="a-story-published-meanwhile",
        featured=False,
        title="A story published meanwhile",
    )
    build_site([fresh, *CONTENT], site)
    before = server.hits(path)
    result = fetch(config, NOW + timedelta(hours=2)).sources[0]
    assert result.ok and result.new == 1 and server.hits(path) == before
    tried, new, _pages, _w = run(timedelta(hours=3))
    assert (tried, new) == (1, 1)  # found now, stored
    item = next(i for i in stored(config) if _slug(i.url) == slug)
    assert len(item.content_html) > 200 and item.summary_html
    assert run(timedelta(hours=9))[:2] == (0, 0)  # stored: never asked again
    with Store(config.database_path) as store:
        assert store.missing_article(item.url) is None


def test_a_missing_article_is_given_up_after_retry_missing_days_with_one_warning(
    make_config: Callable[..., Config], server: SnapshotServer
) -> None:
    from datetime import timedelta

    from iomfeed.demo.server import Fault

    slug = _dead_link_target()
    path = f"/news/{slug}"
    server.add_fault(path, Fault(status=404, times=1000))
    base = make_config()
    config = dataclasses.replace(
        base, sources=(dataclasses.replace(base.sources[0], retry_missing_days=1.0),)
    )
    warnings: list[str] = []
    for hours in (0, 1, 3, 7, 15, 31, 55, 80):
        result = fetch(config, NOW + timedelta(hours=hours)).sources[0]
        assert result.ok, result.error
        warnings += [w for w in result.warnings if slug in w]
    # Tried at 0, 1, 3, 7, 15 and 31 h (more than a day after the first 404: given up).
    assert server.hits(path) == 6
    assert len(warnings) == 2, warnings  # the first 404, and giving up
    assert "gave up" in warnings[1] and "1 day" in warnings[1] and "6 tries" in warnings[1]
    with Store(config.database_path) as store:
        missing = store.missing_article(server.url(path))
    assert missing is not None and missing.next_try is None and missing.attempts == 6


def test_a_stored_article_that_now_answers_404_is_a_warning_and_is_kept(
    make_config: Callable[..., Config], server: SnapshotServer
) -> None:
    """The site took a recent story down (or its server hiccups): the stored copy stays in
    the feeds and the source does not fail, so no operator alert fires for it every run."""
    from datetime import timedelta

    from iomfeed.demo.server import Fault

    base = make_config()
    config = dataclasses.replace(
        base, sources=tuple(dataclasses.replace(s, recheck_days=36500.0) for s in base.sources)
    )
    assert fetch(config).sources[0].ok
    newest = stored(config)[0]
    path = "/" + newest.url.split("//", 1)[1].split("/", 1)[1]
    server.add_fault(path, Fault(status=404, times=10))
    before = server.hits(path)
    result = fetch(config, NOW + timedelta(hours=1)).sources[0]
    assert server.hits(path) == before + 1  # rechecked, and answered 404
    assert result.ok, result.error
    assert [w for w in result.warnings if "404" in w] == [
        f"{newest.url}: a stored article now answers HTTP 404; the stored copy is kept"
        " (checked again on the next run)"
    ], result.warnings
    assert newest.url in {i.url for i in stored(config)}
