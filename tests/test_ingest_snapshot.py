"""Crawling the bundled snapshot over real HTTP on 127.0.0.1: backfill, incremental runs,
edits, duplicates, a changed layout and a misbehaving server."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from dev.sitegen import ContentItem, build_site, load_content
from iomfeed.config import Config
from iomfeed.demo.server import Fault, SnapshotServer
from iomfeed.models import DateSource, StoredItem
from iomfeed.normalize import zone

from .conftest import NOW, fetch, stored
from .golden import check_golden

pytestmark = pytest.mark.network

CONTENT = load_content()
DATE_SOURCES = {
    "time": DateSource.TIME,
    "meta": DateSource.META,
    "jsonld": DateSource.JSONLD,
    "submitted": DateSource.SELECTOR,
    "date_display": DateSource.SELECTOR,
    "none": DateSource.DATELINE,
}
TIRANE = zone("Europe/Tirane")


def article_hits(server: SnapshotServer) -> int:
    return sum(1 for r in server.requests if re.match(r"^/(index\.php/)?news/|^/47-", r.path))


def by_slug(items: list[StoredItem]) -> dict[str, StoredItem]:
    return {i.url.rstrip("/").rsplit("/", 1)[-1]: i for i in items}


def key_of(c: ContentItem) -> str:
    return f"{c.legacy_id}-{c.slug}" if c.layout == "legacy" else c.slug


def test_backfill_stores_every_item_once_with_correct_dates(
    make_config: Callable[..., Config], server: SnapshotServer, regenerate: bool
) -> None:
    config = make_config()
    report = fetch(config)
    result = report.sources[0]
    assert report.ok, result.error
    assert (result.found, result.new, result.pages) == (48, 48, 5 + 48)
    items = by_slug(stored(config))
    assert len(items) == len(CONTENT) == 48
    for c in CONTENT:
        item = items[key_of(c)]
        assert item.title == c.title.strip()
        assert item.language == c.language
        assert item.categories == (() if c.layout == "legacy" else (c.type,))
        assert item.url == server.url(c.path)
        if c.date_markup == "none":  # a dateline gives the day only
            assert item.date_source is DateSource.DATELINE
            assert item.published.date() <= c.published.astimezone(TIRANE).date()
            assert c.published - item.published < timedelta(days=2)
        else:
            assert item.date_source is DATE_SOURCES[c.date_markup], c.slug
            assert item.published == c.published, c.slug
        assert "<script" not in item.content_html and "onclick" not in item.content_html
        assert 'src="/' not in item.content_html and 'href="/' not in item.content_html
        assert "social-share" not in item.content_html  # dropped by article.remove
    golden = [
        {
            "id": i.id,
            "url": i.url,
            "title": i.title,
            "published": i.published.isoformat(),
            "date_source": i.date_source.value,
            "categories": list(i.categories),
            "language": i.language,
            "image": i.image_url,
            "image_alt": i.image_alt,
            "summary_html": i.summary_html,
            "content_html": i.content_html,
        }
        for i in stored(config)
    ]
    text = json.dumps(golden, ensure_ascii=False, indent=1) + "\n"
    text = text.replace(server.origin, "https://albania.iom.int")
    text = text.replace(server.origin.split("//")[1], "albania.iom.int")
    check_golden("snapshot-items.json", text, regenerate=regenerate)


def test_special_items_are_normalised(
    make_config: Callable[..., Config], server: SnapshotServer
) -> None:
    config = make_config()
    fetch(config)
    items = by_slug(stored(config))
    sq = items["antonio-vitorino-zgjidhet-drejtor-i-pergjithshem-i-iom"]
    assert sq.language == "sq" and "ë" in sq.content_html
    alias = "labour-migration-dialogue-institutions-discuss-protection-albanian-workers-abroad"
    assert items[alias].url == server.url(f"/news/{alias}")
    plain_http = "migration-counters-offer-online-counselling-returnees-prospective-migrants"
    assert items[plain_http].url == server.url(f"/news/{plain_http}")
    hostile = items["think-before-you-leave-awareness-campaign-risks-irregular-migration-launched"]
    for banned in ("<script", "<iframe", "onclick", "style=", "javascript:"):
        assert banned not in hostile.content_html
    assert all(i.image_url.startswith(server.origin) for i in items.values() if i.image_url)
    assert sum(1 for i in items.values() if i.image_url) >= 40
    assert (
        "Fatos Çoçoli"
        in items["diaspora-remittances-savings-albanias-economic-development"].summary_html
    )


def test_an_unchanged_site_costs_one_304_and_no_article(
    make_config: Callable[..., Config], server: SnapshotServer
) -> None:
    config = make_config()
    fetch(config)
    before = {i.id: i for i in stored(config)}
    server.clear()
    report = fetch(config, NOW + timedelta(hours=1))
    result = report.sources[0]
    assert report.ok
    assert (result.pages, result.not_modified, result.found, result.new) == (1, 1, 0, 0)
    assert article_hits(server) == 0
    after = {i.id: i for i in stored(config)}
    assert after == before


def test_a_new_item_is_the_only_article_fetched(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    config = make_config()
    fetch(config)
    newest = CONTENT[0]
    fresh = dataclasses.replace(
        newest,
        slug="iom-welcomes-new-diaspora-fellows",
        title="IOM welcomes new diaspora fellows",
        published=newest.published + timedelta(days=30),
        featured=False,
        teaser="Tirana, 20 July 2024 – Twelve diaspora fellows began their placements.",
        body="Tirana, 20 July 2024 – Twelve diaspora fellows began their placements.\n\n"
        "They will work with ministries for six months.",
    )
    build_site([fresh, *CONTENT], site)
    server.clear()
    report = fetch(config, NOW + timedelta(days=1))
    result = report.sources[0]
    assert report.ok, result.error
    assert (result.new, result.updated) == (1, 0)
    assert article_hits(server) == 1
    assert server.hits("/news/iom-welcomes-new-diaspora-fellows") == 1
    # Page 1 changed (an item moved down from page 0) but brought nothing new: stop there.
    assert result.pages == 1 + 2
    assert by_slug(stored(config))["iom-welcomes-new-diaspora-fellows"].published == fresh.published


def test_an_edited_teaser_refetches_and_updates_the_article(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    config = make_config()
    fetch(config)
    target = CONTENT[3]
    old = by_slug(stored(config))[target.slug]
    edited = dataclasses.replace(
        target,
        teaser=target.teaser + " (Updated.)",
        body=target.body.replace(target.teaser, target.teaser + " (Updated.)", 1),
    )
    build_site([edited if c.slug == target.slug else c for c in CONTENT], site)
    later = NOW + timedelta(days=2)
    report = fetch(config, later)
    assert report.sources[0].updated == 1 and report.sources[0].new == 0
    new = by_slug(stored(config))[target.slug]
    assert new.id == old.id and new.first_seen == old.first_seen
    assert new.updated == later and old.updated != later
    assert "(Updated.)" in new.content_html and new.content_hash != old.content_hash


def test_a_silent_body_edit_is_caught_by_the_recheck(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    target = CONTENT[0]
    config = make_config()
    soon = target.published + timedelta(days=1)
    fetch(config, soon)
    page = site / "news" / f"{target.slug}.html"
    html = page.read_text(encoding="utf-8")
    marker = '</div>\n<div class="social-share"'
    assert marker in html
    page.write_text(
        html.replace(marker, "<p>Correction: 40 participants.</p>" + marker, 1), encoding="utf-8"
    )
    server.clear()
    report = fetch(config, soon + timedelta(hours=6))
    result = report.sources[0]
    assert report.ok and result.updated == 1
    assert result.not_modified >= 1  # the listing and the other recent articles: 304
    assert "Correction: 40 participants." in by_slug(stored(config))[target.slug].content_html


def test_the_same_story_in_a_feed_is_stored_once(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    target, other = CONTENT[5], CONTENT[6]
    rss = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>IOM global</title><link>https://www.iom.int</link>
<description>d</description>
<item><title>{target.title.upper()}</title><link>https://www.iom.int/news/{target.slug}-global</link>
<pubDate>{(target.published + timedelta(hours=20)).strftime("%a, %d %b %Y %H:%M:%S %z")}</pubDate>
<description>Same story, another address</description></item>
<item><title>{other.title}</title><link>http://albania.iom.int/index.php/news/{other.slug}?utm_source=rss</link>
<pubDate>{other.published.strftime("%a, %d %b %Y %H:%M:%S %z")}</pubDate></item>
</channel></rss>"""
    (site / "global.xml").write_text(rss, encoding="utf-8")
    base = make_config()
    feed = dataclasses.replace(
        base.sources[0], name="iom-global", kind="feed", url=server.url("/global.xml")
    )
    config = dataclasses.replace(base, sources=(base.sources[0], feed))
    report = fetch(config)
    assert report.ok, [r.error for r in report.sources]
    assert report.sources[1].duplicates == 2 and report.sources[1].new == 0
    assert len(stored(config)) == 48
    from iomfeed.runtime import open_store

    with open_store(config) as store:
        twin = by_slug(store.items())[target.slug]
        assert store.links(twin.id) == [
            (f"https://www.iom.int/news/{target.slug}-global", "iom-global", "title")
        ]


def test_a_changed_layout_fails_the_source_and_keeps_its_items(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    config = make_config()
    fetch(config)
    listing = site / "news" / "index.html"
    redesigned = (
        listing.read_text(encoding="utf-8")
        .replace("views-row", "card")
        .replace("teaser-title", "card-title")
        .replace("<h3", "<h4")
        .replace("</h3>", "</h4>")
    )
    listing.write_text(redesigned, encoding="utf-8")
    report = fetch(config, NOW + timedelta(hours=1))
    result = report.sources[0]
    assert not report.ok
    assert "the listing selectors found no items" in result.error
    assert "layout" in result.error and "(page 1)" in result.error
    assert len(stored(config)) == 48


def test_a_server_error_then_success_is_retried(
    make_config: Callable[..., Config], server: SnapshotServer
) -> None:
    server.add_fault("/news", Fault(status=500))
    server.add_fault("/news?page=1", Fault(status=429, headers={"Retry-After": "1"}))
    report = fetch(make_config())
    assert report.ok, report.sources[0].error
    assert report.sources[0].new == 48
    assert server.hits("/news?page=1") == 2


def test_failing_articles_are_reported_and_retried_next_run(
    make_config: Callable[..., Config], server: SnapshotServer
) -> None:
    slow, cut, huge = CONTENT[2].slug, CONTENT[4].slug, CONTENT[7].slug
    server.add_fault(f"/news/{slow}", Fault(status=200, delay=0.6, times=3))
    server.add_fault(f"/news/{cut}", Fault(status=200, truncate=True, times=3))
    server.add_fault(
        f"/news/{huge}", Fault(status=200, raw_body=b"<p>x</p>" * 100_000, content_type="text/html")
    )
    config = make_config(timeout=0.3, retries=2, max_body_bytes=200_000)
    report = fetch(config)
    result = report.sources[0]
    assert not report.ok
    assert result.new == 45
    assert "3 articles could not be read (they will be retried next run)" in result.error
    assert "timed out" in result.error and "connection closed mid-body" in result.error
    assert "over http.max_body_bytes" in result.error
    # Next run: the listing is read again (its pages were not marked as seen) and only the
    # three missing articles are fetched.
    server.clear()
    again = fetch(config, NOW + timedelta(hours=1))
    assert again.ok, again.sources[0].error
    assert again.sources[0].new == 3
    assert article_hits(server) == 3
    assert len(stored(config)) == 48


def test_a_windows_1252_article_is_decoded(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    target = next(c for c in CONTENT if c.language == "sq")
    page = (site / "news" / f"{target.slug}.html").read_text(encoding="utf-8")
    page = page.replace('<meta charset="utf-8">', '<meta charset="windows-1252">')
    server.add_fault(
        f"/news/{target.slug}",
        Fault(
            status=200,
            raw_body=page.replace("https://albania.iom.int", server.origin).encode("cp1252"),
            content_type="text/html",
        ),
    )
    config = make_config()
    assert fetch(config).ok
    item = by_slug(stored(config))[target.slug]
    assert item.title == "António Vitorino zgjidhet Drejtor i Përgjithshëm i IOM"
    assert "Ã" not in item.content_html and "ë" in item.content_html


def test_robots_txt_disallowing_an_article_skips_and_reports_it(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    target = CONTENT[1]
    robots = site / "robots.txt"
    robots.write_text(
        robots.read_text(encoding="utf-8").replace(
            "User-agent: *\n", f"User-agent: *\nDisallow: /news/{target.slug}\n", 1
        ),
        encoding="utf-8",
    )
    config = make_config()
    report = fetch(config)
    result = report.sources[0]
    assert report.ok
    assert server.hits(f"/news/{target.slug}") == 0
    assert any("disallowed by robots.txt" in w and target.slug in w for w in result.warnings)
    item = by_slug(stored(config))[target.slug]
    assert item.content_html == "" and item.title == target.title  # from the listing alone


def test_an_article_without_a_body_fails_it_and_keeps_the_stored_one(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    target = CONTENT[0]
    config = make_config()
    soon = target.published + timedelta(days=1)
    fetch(config, soon)
    page = site / "news" / f"{target.slug}.html"
    page.write_text(
        page.read_text(encoding="utf-8").replace("field--name-body", "field--text"),
        encoding="utf-8",
    )
    report = fetch(config, soon + timedelta(hours=1))  # the recheck re-reads the article
    result = report.sources[0]
    assert not report.ok and result.updated == 0
    assert "the article.body selectors found nothing" in result.error
    assert len(by_slug(stored(config))[target.slug].content_html) > 500


def test_a_canonical_link_pointing_everywhere_at_once_is_ignored(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    for page in (site / "news").glob("*.html"):
        if page.name.startswith(("index", "page-")):
            continue
        html = page.read_text(encoding="utf-8")
        page.write_text(
            re.sub(
                r'<link rel="canonical" href="[^"]*"',
                '<link rel="canonical" href="https://albania.iom.int/news"',
                html,
            ),
            encoding="utf-8",
        )
    config = make_config()
    report = fetch(config)
    assert report.ok
    assert len(stored(config)) == 48
    assert sum("rel=canonical points to" in w for w in report.sources[0].warnings) == 47


def test_a_dead_article_link_is_a_warning_and_the_backfill_completes(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    target = CONTENT[9]
    (site / "news" / f"{target.slug}.html").unlink()
    config = make_config()
    report = fetch(config)
    result = report.sources[0]
    assert report.ok and result.new == 47
    assert any("missing article" in w and "HTTP 404" in w for w in result.warnings)
    server.clear()
    # Backfill done: one 304 and stop (the missing article's first retry is an hour later).
    again = fetch(config, NOW + timedelta(minutes=30)).sources[0]
    assert (again.pages, again.not_modified) == (1, 1) and article_hits(server) == 0


def test_a_new_articles_next_fetch_is_conditional(
    make_config: Callable[..., Config], server: SnapshotServer
) -> None:
    target = CONTENT[0]
    config = make_config()
    soon = target.published + timedelta(days=1)
    fetch(config, soon)
    server.clear()
    result = fetch(config, soon + timedelta(hours=1)).sources[0]
    recent = [c for c in CONTENT if c.published >= soon - timedelta(days=7)]
    assert result.pages == 1 + len(recent)
    assert result.not_modified == result.pages  # the listing and every rechecked article
    assert result.updated == 0


def test_the_scraped_article_wins_over_a_feed_copy_that_came_first(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    target = CONTENT[2]
    rss = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>t</title><link>https://albania.iom.int</link>
<description>d</description><item><title>{target.title}</title>
<link>https://albania.iom.int/news/{target.slug}</link><description>Teaser only</description>
<pubDate>{target.published.strftime("%a, %d %b %Y %H:%M:%S %z")}</pubDate></item>
</channel></rss>"""
    (site / "copy.xml").write_text(rss, encoding="utf-8")
    base = make_config()
    feed = dataclasses.replace(
        base.sources[0], name="copy", kind="feed", url=server.url("/copy.xml")
    )
    config = dataclasses.replace(base, sources=(feed, base.sources[0]))
    report = fetch(config)
    assert report.ok
    item = by_slug(stored(config))[target.slug]
    assert item.source == "iom-albania" and len(item.content_html) > 500
    assert len(stored(config)) == 48


def test_items_left_out_by_the_filter_are_not_fetched_again(
    make_config: Callable[..., Config], server: SnapshotServer, site: Path
) -> None:
    base = make_config()
    src = dataclasses.replace(
        base.sources[0], filter=dataclasses.replace(base.sources[0].filter, exclude=("^global$",))
    )
    config = dataclasses.replace(base, sources=(src,))
    first = fetch(config).sources[0]
    globals_ = sum(1 for c in CONTENT if c.type == "Global" and c.layout != "legacy")
    assert first.filtered == globals_ > 0
    assert first.new == 48 - globals_
    # A new item pushes every entry down a place: only the new article is fetched, not the
    # ones the filter left out before.
    fresh = dataclasses.replace(
        CONTENT[0],
        slug="new-story-after-filter",
        featured=False,
        title="A new story after the filter",
        published=CONTENT[0].published + timedelta(days=3),
    )
    build_site([fresh, *CONTENT], site)
    server.clear()
    second = fetch(config, NOW + timedelta(days=1)).sources[0]
    assert second.new == 1 and article_hits(server) == 1
    # Change the filter and the left-out items are looked at again.
    everything = dataclasses.replace(config, sources=(base.sources[0],))
    server.clear()
    third = fetch(everything, NOW + timedelta(days=2)).sources[0]
    assert third.new == globals_


def test_an_article_page_gives_its_own_modification_time() -> None:
    from datetime import UTC, datetime

    from iomfeed.config import ArticleConfig
    from iomfeed.sources.html_parse import parse_article

    cfg = ArticleConfig(body=("div.body",))
    now = datetime(2026, 11, 24, tzinfo=UTC)
    jsonld = (
        '<script type="application/ld+json">{"@graph": [{"@type": "NewsArticle",'
        ' "datePublished": "2024-03-05T10:00:00+01:00",'
        ' "dateModified": "2024-03-08T09:15:00+01:00"}]}</script>'
    )
    meta = (
        '<meta property="article:published_time" content="2024-03-05T10:00:00+01:00">'
        '<meta property="article:modified_time" content="2024-03-06T17:00:00+01:00">'
    )
    for head, want in (
        (jsonld, "2024-03-08T09:15:00+01:00"),
        (meta, "2024-03-06T17:00:00+01:00"),
        ("", None),
    ):
        page = f"<html><head>{head}</head><body><h1>T</h1><div class='body'><p>x</p></div>"
        article = parse_article(page, "https://albania.iom.int/news/t", cfg, tz=TIRANE, now=now)
        assert (article.modified.isoformat() if article.modified else None) == want
