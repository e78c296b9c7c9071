"""Publishing from the snapshot's store: golden files, the rules of each format checked
directly, byte stability, archives that reach every item once, and safe writes."""

from __future__ import annotations

import calendar
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import jsonschema
import lxml.html
import pytest
from lxml import etree

from iomfeed.config import Config
from iomfeed.demo.server import SnapshotServer
from iomfeed.errors import PublishError
from iomfeed.ingest import upsert
from iomfeed.models import DateSource, Item, PublishReport, StoredItem
from iomfeed.pipeline import publish
from iomfeed.publish.build import plan_archives
from iomfeed.runtime import open_store
from iomfeed.store import IndexEntry

from .conftest import DATA, NOW, ROOT, fetch, local_config
from .golden import check_golden

ATOM = "{http://www.w3.org/2005/Atom}"
NS = {
    "a": "http://www.w3.org/2005/Atom",
    "fh": "http://purl.org/syndication/history/1.0",
    "media": "http://search.yahoo.com/mrss/",
}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
RFC822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|"
    r"Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}$"
)
PUBLIC = "https://feeds.example.org/iom-albania/"
MAX_ITEMS = 10
INDEX_ITEMS = 20  # publish.index_items as shipped


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The snapshot crawled once into a database; each test works on a copy of it."""
    from iomfeed.demo.server import DEFAULT_ROOT

    folder = tmp_path_factory.mktemp("crawl")
    with SnapshotServer(DEFAULT_ROOT) as server:
        config = local_config(server.origin, folder)
        assert fetch(config).ok
        yield folder / "iomfeed.db", server.origin


@pytest.fixture
def config(crawled: tuple[Path, str], tmp_path: Path) -> Config:
    db, origin = crawled
    shutil.copy(db, tmp_path / "iomfeed.db")
    base = local_config(origin, tmp_path)
    return dataclasses.replace(base, publish=dataclasses.replace(base.publish, max_items=MAX_ITEMS))


def run_publish(config: Config, now: datetime = NOW) -> PublishReport:
    with open_store(config) as store:
        return publish(config, store=store, now=now)


def parse(path: Path) -> etree._ElementTree:
    parser = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)
    return etree.parse(str(path), parser)


def scrub(text: str, origin: str) -> str:
    return text.replace(origin, "https://albania.iom.int").replace(
        origin.split("//", 1)[1], "albania.iom.int"
    )


# ----------------------------------------------------------------------------- golden


@pytest.mark.parametrize(
    "name",
    [
        "atom.xml",
        "rss.xml",
        "feed.json",
        "index.html",
        "category/global/atom.xml",
        "archive/2021-06.xml",
        "months/2021-06.html",
    ],
)
def test_published_files_match_the_golden_copies(
    config: Config, crawled: tuple[Path, str], regenerate: bool, name: str
) -> None:
    run_publish(config)
    text = (config.feeds_path / name).read_text(encoding="utf-8")
    check_golden("feeds/" + name, scrub(text, crawled[1]), regenerate=regenerate)


# ----------------------------------------------------------------------------- Atom


def atom_documents(config: Config) -> list[Path]:
    return sorted(config.feeds_path.rglob("*.xml"), key=str)


def test_every_atom_document_follows_rfc_4287(config: Config) -> None:
    run_publish(config)
    seen_ids: set[str] = set()
    docs = [p for p in atom_documents(config) if p.name != "rss.xml"]
    assert len(docs) > 5
    for path in docs:
        feed = parse(path).getroot()
        assert feed.tag == f"{ATOM}feed", path
        assert feed.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
        for required in ("id", "title", "updated", "author/a:name"):
            assert feed.findtext(f"a:{required}", namespaces=NS), (path, required)
        assert RFC3339.match(feed.findtext("a:updated", namespaces=NS) or "")
        self_links = feed.findall("a:link[@rel='self']", NS)
        assert len(self_links) == 1 and self_links[0].get("href", "").startswith(PUBLIC)
        assert (
            self_links[0].get("href", "").endswith(path.relative_to(config.feeds_path).as_posix())
        )
        assert feed.find("a:link[@rel='alternate']", NS) is not None
        entries = feed.findall("a:entry", NS)
        assert entries, path
        ids = [entry.findtext("a:id", namespaces=NS) or "" for entry in entries]
        assert len(ids) == len(set(ids)), f"duplicate entry ids in {path}"
        if path.parent.name == "archive" or path.parent == config.feeds_path:
            # The main feed and its archives: one logical feed, each entry once.
            assert not seen_ids & set(ids), path
            seen_ids.update(ids)
        updates = []
        for entry in entries:
            entry_id = entry.findtext("a:id", namespaces=NS) or ""
            assert entry_id.startswith("tag:")
            assert entry.findtext("a:title", namespaces=NS)
            for stamp in ("updated", "published"):
                assert RFC3339.match(entry.findtext(f"a:{stamp}", namespaces=NS) or ""), stamp
            updates.append(datetime.fromisoformat(entry.findtext("a:updated", namespaces=NS) or ""))
            alternates = entry.findall("a:link[@rel='alternate']", NS)
            assert len(alternates) == 1 and alternates[0].get("type") == "text/html"
            assert alternates[0].get("href", "").startswith("http")
            content = entry.find("a:content", NS)
            assert content is not None and content.get("type") == "html"
            for link in re.findall(r'(?:href|src)="([^"]*)"', content.text or ""):
                assert link.startswith(("http://", "https://", "mailto:")), link
            assert "<script" not in (content.text or "")
            for enclosure in entry.findall("a:link[@rel='enclosure']", NS):
                assert enclosure.get("type", "").startswith("image/")
        # The feed's updated is its newest entry change, not the build time.
        assert datetime.fromisoformat(feed.findtext("a:updated", namespaces=NS) or "") == max(
            updates
        )


def test_a_first_run_dates_each_entry_update_by_the_source_not_by_the_run(config: Config) -> None:
    # The W3C validator warns "Two entries with the same value for atom:updated" when every
    # item first seen in one run is stamped with that run's time.
    from dev.sitegen import load_content

    modified = {
        c.slug: c.published + timedelta(days=2, hours=3, minutes=17)
        for c in load_content()
        if c.date_markup == "meta"
    }  # article:modified_time
    run_publish(config)
    with open_store(config) as store:
        items = store.items()
    assert len(items) == 48 and len(modified) > 3
    for i in items:
        slug = i.url.rstrip("/").rsplit("/", 1)[-1]
        assert i.updated == modified.get(slug, i.published), i.url
        assert i.updated >= i.published and i.updated < i.first_seen == NOW
    assert len({i.updated for i in items}) == len(items)
    for path in atom_documents(config):
        if path.name == "rss.xml":
            continue
        stamps = [
            e.findtext("a:updated", namespaces=NS)
            for e in parse(path).getroot().findall("a:entry", NS)
        ]
        assert len(stamps) == len(set(stamps)), path
    feed = json.loads((config.feeds_path / "feed.json").read_text(encoding="utf-8"))
    assert all(
        datetime.fromisoformat(e["date_modified"]) >= datetime.fromisoformat(e["date_published"])
        for e in feed["items"]
    )
    # The feed's own updated stays the newest entry change: the newest story's.
    atom = parse(config.feeds_path / "atom.xml").getroot()
    assert datetime.fromisoformat(atom.findtext("a:updated", namespaces=NS) or "") == max(
        i.updated for i in items
    )


def test_archive_documents_follow_rfc_5005(config: Config) -> None:
    run_publish(config)
    main = parse(config.feeds_path / "atom.xml").getroot()
    assert main.find("fh:archive", NS) is None
    prev = main.find("a:link[@rel='prev-archive']", NS)
    assert prev is not None
    for path in (config.feeds_path / "archive").glob("*.xml"):
        doc = parse(path).getroot()
        assert doc.find("fh:archive", NS) is not None, path
        current = doc.find("a:link[@rel='current']", NS)
        assert current is not None and current.get("href") == PUBLIC + "atom.xml"
        assert doc.findtext("a:id", namespaces=NS) == main.findtext("a:id", namespaces=NS)


def test_walking_prev_archive_reaches_every_item_exactly_once(config: Config) -> None:
    run_publish(config)
    seen: list[str] = []
    url: str | None = PUBLIC + "atom.xml"
    hops = 0
    while url:
        hops += 1
        assert hops < 200
        doc = parse(config.feeds_path / url.removeprefix(PUBLIC)).getroot()
        seen += [e.findtext("a:id", namespaces=NS) or "" for e in doc.findall("a:entry", NS)]
        link = doc.find("a:link[@rel='prev-archive']", NS)
        url = link.get("href") if link is not None else None
    with open_store(config) as store:
        ids = [i.id for i in store.items()]
    assert len(seen) == len(set(seen)) == len(ids) == 48
    assert set(seen) == set(ids)


# ----------------------------------------------------------------------------- RSS


def test_rss_follows_the_rss_2_0_rules(config: Config) -> None:
    run_publish(config)
    for path in config.feeds_path.rglob("rss.xml"):
        rss = parse(path).getroot()
        assert rss.tag == "rss" and rss.get("version") == "2.0"
        channel = rss.find("channel")
        assert channel is not None
        for required in ("title", "link", "description", "language", "lastBuildDate"):
            assert channel.findtext(required), (path, required)
        assert RFC822.match(channel.findtext("lastBuildDate") or "")
        self_link = channel.find("a:link[@rel='self']", NS)
        assert self_link is not None and self_link.get("type") == "application/rss+xml"
        if path.parent == config.feeds_path:  # the main feed: walkable back, like atom.xml
            prev = channel.find("a:link[@rel='prev-archive']", NS)
            assert prev is not None and prev.get("href", "").startswith(PUBLIC + "archive/")
        assert self_link.get("href") == PUBLIC + path.relative_to(config.feeds_path).as_posix()
        dates = []
        for item in channel.findall("item"):
            for required in ("title", "link", "description", "pubDate", "guid"):
                assert item.findtext(required), required
            guid = item.find("guid")
            assert guid is not None and guid.get("isPermaLink") == "false"
            assert RFC822.match(item.findtext("pubDate") or "")
            assert item.find("enclosure") is None  # no enclosure without a true length
            dates.append(parsedate_to_datetime(item.findtext("pubDate") or ""))
        assert dates == sorted(dates, reverse=True)


def test_rss_images_are_bare_media_content_never_a_one_child_group(config: Config) -> None:
    # The W3C validator: "media:group must have multiple media:content children".
    run_publish(config)
    with open_store(config) as store:
        images = {i.id: i.image_url for i in store.items()}
    seen = 0
    for path in config.feeds_path.rglob("rss.xml"):
        channel = parse(path).getroot().find("channel")
        assert channel is not None
        assert not channel.findall(".//media:group", NS), path
        for item in channel.findall("item"):
            image = images[item.findtext("guid") or ""]
            media = [(m.tag, dict(m.attrib)) for m in item if m.tag.startswith("{" + NS["media"])]
            if not image:
                assert media == []
                continue
            seen += 1
            assert media == [
                (
                    f"{{{NS['media']}}}content",
                    {"url": image, "type": "image/png", "medium": "image"},
                )
            ]
    assert seen > 10


# ----------------------------------------------------------------------------- JSON Feed


def test_json_feeds_validate_against_the_1_1_schema(config: Config) -> None:
    run_publish(config)
    schema = json.loads((DATA / "jsonfeed-1.1.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    paths = list(config.feeds_path.rglob("feed.json"))
    assert len(paths) == 3
    for path in paths:
        feed = json.loads(path.read_text(encoding="utf-8"))
        errors = sorted(validator.iter_errors(feed), key=str)
        assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]]
        assert feed["feed_url"] == PUBLIC + path.relative_to(config.feeds_path).as_posix()
        ids = [i["id"] for i in feed["items"]]
        assert len(ids) == len(set(ids))


# ----------------------------------------------------------------------------- round trip


def test_every_item_and_field_survives_a_round_trip_through_feedparser(config: Config) -> None:
    run_publish(config)
    with open_store(config) as store:
        stored = {i.id: i for i in store.items(limit=MAX_ITEMS)}
    for name in ("atom.xml", "rss.xml", "feed.json"):
        if name == "feed.json":
            entries = json.loads((config.feeds_path / name).read_text())["items"]
            got = {
                e["id"]: (
                    e["title"],
                    e["url"],
                    e["date_published"],
                    e["date_modified"],
                    e.get("tags", []),
                    e.get("image", ""),
                    e["content_html"],
                    e["language"],
                )
                for e in entries
            }
            want = {
                i.id: (
                    i.title,
                    i.url,
                    i.published.isoformat(),
                    i.updated.isoformat(),
                    list(i.categories),
                    i.image_url,
                    i.content_html,
                    i.language,
                )
                for i in stored.values()
            }
            assert got == want
            continue
        # feedparser's own sanitiser drops <figure>; the comparison is with what was written.
        parsed = feedparser.parse((config.feeds_path / name).read_bytes(), sanitize_html=False)
        assert not parsed.bozo, parsed.bozo_exception
        assert len(parsed.entries) == len(stored)
        for entry in parsed.entries:
            item = stored[entry.id]
            assert entry.title == item.title
            assert entry.link == item.url
            published = datetime.fromtimestamp(calendar.timegm(entry.published_parsed), UTC)
            assert published == item.published.astimezone(UTC)
            if name == "atom.xml":
                updated = datetime.fromtimestamp(calendar.timegm(entry.updated_parsed), UTC)
                assert updated == item.updated.astimezone(UTC)
                assert entry.summary == item.summary_html
            images = [link.href for link in entry.links if link.rel == "enclosure"] + [
                m["url"] for m in entry.get("media_content", [])
            ]
            assert images == ([item.image_url] if item.image_url else [])
            assert [t.term for t in entry.tags] == list(item.categories)
            body = entry.content[0].value if "content" in entry else entry.summary
            body = re.sub(r"\s*/>", ">", body)  # feedparser re-serialises <img> as <img />
            assert body.strip() in (item.content_html.strip(), item.summary_html.strip())


def test_albanian_and_markup_characters_survive_in_every_format(config: Config) -> None:
    title = 'Takim në Tiranë & Durrës: "Çështja" <e re> – \x07fund'
    with open_store(config) as store:
        # Straight into the store, control character and all: the publisher must cope.
        upsert(
            store,
            Item(
                source="manual",
                url="https://albania.iom.int/news/manual-x",
                title=title,
                content_html="<p>Për ju\x0b</p>",
                published=datetime(2025, 1, 1, tzinfo=UTC),
                date_source=DateSource.JSON,
                categories=("Local",),
                language="sq",
            ),
            NOW,
        )
    run_publish(config)
    expected = 'Takim në Tiranë & Durrës: "Çështja" <e re> – fund'
    atom = feedparser.parse((config.feeds_path / "atom.xml").read_bytes())
    rss = feedparser.parse((config.feeds_path / "rss.xml").read_bytes())
    feed = json.loads((config.feeds_path / "feed.json").read_text(encoding="utf-8"))
    assert atom.entries[0].title == rss.entries[0].title == feed["items"][0]["title"] == expected
    index = (config.feeds_path / "index.html").read_text(encoding="utf-8")
    assert "Takim në Tiranë &amp; Durrës: &#34;Çështja&#34; &lt;e re&gt; – fund" in index
    for path in config.feeds_path.rglob("*"):
        if path.is_file():
            assert "\x07" not in path.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- stability


def mtimes(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_publishing_twice_writes_nothing_the_second_time(config: Config) -> None:
    first = run_publish(config)
    assert "atom.xml" in first.written and len(first.written) == len(mtimes(config.feeds_path))
    before = {p: (config.feeds_path / p).read_bytes() for p in mtimes(config.feeds_path)}
    stamps = mtimes(config.feeds_path)
    second = run_publish(config, NOW + timedelta(days=3))
    assert second.written == ()
    assert mtimes(config.feeds_path) == stamps
    assert {p: (config.feeds_path / p).read_bytes() for p in stamps} == before


def test_an_edited_item_changes_only_its_entry_and_the_feed_updated(config: Config) -> None:
    run_publish(config)
    old = (config.feeds_path / "atom.xml").read_text(encoding="utf-8")
    later = NOW + timedelta(days=1)
    with open_store(config) as store:
        target = store.items(limit=3)[2]
        upsert(
            store,
            Item(
                source=target.source,
                url=target.url,
                title=target.title,
                summary_html=target.summary_html,
                content_html=target.content_html + "<p>Correction.</p>",
                published=target.published,
                date_source=target.date_source,
                image_url=target.image_url,
                image_alt=target.image_alt,
                categories=target.categories,
                language=target.language,
            ),
            later,
        )
    report = run_publish(config, later)
    category = "category/" + target.categories[0].lower()
    assert set(report.written) == {
        "atom.xml",
        "rss.xml",
        "feed.json",
        "index.html",
        f"{category}/atom.xml",
        f"{category}/rss.xml",
        f"{category}/feed.json",
    }
    new = (config.feeds_path / "atom.xml").read_text(encoding="utf-8")
    changed = [line for line in new.splitlines() if line not in old.splitlines()]
    stamp = later.isoformat()
    assert changed == [
        f"  <updated>{stamp}</updated>",
        f"    <updated>{stamp}</updated>",
        next(x for x in changed if "Correction." in x),
    ]


def test_an_item_with_a_summary_and_no_body_is_published_in_every_format(config: Config) -> None:
    """A JSON or feed record may carry only a summary: Atom then needs the entry's alternate
    link (RFC 4287 4.1.1), which must be there once, with its type."""
    later = NOW + timedelta(days=1)
    url = "https://albania.iom.int/news/summary-only"
    with open_store(config) as store:
        upsert(
            store,
            Item(
                source="iom-albania",
                url=url,
                title="Only a summary",
                summary_html="<p>Just this.</p>",
                published=later,
                date_source=DateSource.JSON,
            ),
            later,
        )
    run_publish(config, later)
    entry = next(
        e
        for e in parse(config.feeds_path / "atom.xml").getroot().iter(f"{ATOM}entry")
        if e.findtext(f"{ATOM}title") == "Only a summary"
    )
    links = [dict(link.attrib) for link in entry.iter(f"{ATOM}link")]
    assert links == [{"href": url, "rel": "alternate", "type": "text/html"}]
    assert entry.find(f"{ATOM}content") is None
    assert entry.findtext(f"{ATOM}summary") == "<p>Just this.</p>"
    assert "<title>Only a summary</title>" in (config.feeds_path / "rss.xml").read_text("utf-8")
    items = json.loads((config.feeds_path / "feed.json").read_bytes())["items"]
    assert any(i["url"] == url for i in items)


def test_one_new_item_rewrites_one_archive_page(config: Config) -> None:
    run_publish(config)
    with open_store(config) as store:
        newest = store.items(limit=1)[0]
        upsert(
            store,
            Item(
                source=newest.source,
                url=newest.url + "-new",
                title="Brand new",
                content_html="<p>New.</p>",
                published=newest.published + timedelta(days=1),
                date_source=DateSource.TIME,
                categories=("Local",),
            ),
            NOW,
        )
    report = run_publish(config)
    archives = [p for p in report.written if p.startswith("archive/")]
    assert len(archives) == 1  # the item pushed out of the feed moves into its month


def archive_stamps(config: Config) -> dict[str, int]:
    return {p: t for p, t in mtimes(config.feeds_path).items() if p.startswith("archive/")}


def test_an_edited_archived_item_rewrites_only_its_archive_page(config: Config) -> None:
    run_publish(config)
    before = archive_stamps(config)
    with open_store(config) as store:
        oldest = store.items()[-1]
        upsert(
            store,
            dataclasses.replace(_as_item(oldest), content_html="<p>Corrected.</p>"),
            NOW + timedelta(days=1),
        )
    month = oldest.published.isoformat()[:7]
    report = run_publish(config, NOW + timedelta(days=1))
    # ... and the HTML page of its month, which shows it too.
    assert report.written == (f"archive/{month}.xml", f"months/{month}.html")
    after = archive_stamps(config)
    assert [p for p in after if after[p] != before[p]] == [f"archive/{month}.xml"]


def test_changed_settings_rewrite_every_archive_page(config: Config) -> None:
    run_publish(config)
    renamed = dataclasses.replace(
        config, site=dataclasses.replace(config.site, title="IOM Albania news")
    )
    report = run_publish(renamed)
    assert {p for p in report.written if p.startswith("archive/")} == set(archive_stamps(config))


def test_a_replaced_archive_file_is_written_again(config: Config) -> None:
    run_publish(config)
    page = sorted(archive_stamps(config))[0]
    good = (config.feeds_path / page).read_bytes()
    (config.feeds_path / page).write_bytes(b"<feed/>")  # restored from an old backup, say
    assert run_publish(config).written == (page,)
    assert (config.feeds_path / page).read_bytes() == good


def test_files_no_longer_published_are_removed(config: Config) -> None:
    run_publish(config)
    assert archive_stamps(config)
    everything = dataclasses.replace(
        config, publish=dataclasses.replace(config.publish, max_items=100)
    )
    report = run_publish(everything)
    assert not archive_stamps(config)
    assert all(p in report.written for p in ("archive/2021-06.xml", "atom.xml"))
    atom = parse(config.feeds_path / "atom.xml").getroot()
    assert atom.find("a:link[@rel='prev-archive']", NS) is None
    assert (config.feeds_path / "category" / "local" / "atom.xml").exists()
    assert run_publish(everything).written == ()


def test_category_names_that_fold_alike_get_distinct_paths() -> None:
    from iomfeed.publish.build import unique_slugs

    names = ["Local", "Migración", "Migracion", "Миграция", "Health & Care", "Health / Care"]
    slugs = unique_slugs(names)
    assert slugs["Local"] == "local"
    assert len(set(slugs.values())) == 6
    assert all(re.fullmatch(r"[a-z0-9-]+", v) for v in slugs.values())
    assert unique_slugs(reversed(names)) == slugs  # stable, whatever the order


def _as_item(stored: StoredItem) -> Item:
    return Item(
        source=stored.source,
        url=stored.url,
        title=stored.title,
        summary_html=stored.summary_html,
        content_html=stored.content_html,
        published=stored.published,
        date_source=stored.date_source,
        image_url=stored.image_url,
        image_alt=stored.image_alt,
        categories=stored.categories,
        language=stored.language,
    )


def test_plan_archives_groups_by_local_month_newest_first() -> None:
    rows = [
        IndexEntry("a", "2024-06-01T00:30:00+02:00", "h", "u"),
        IndexEntry("b", "2024-05-31T23:00:00+02:00", "h", "u"),
        IndexEntry("c", "2024-05-02T10:00:00+02:00", "h", "u"),
    ]
    pages = plan_archives(rows)
    assert [(p.month, p.ids) for p in pages] == [("2024-06", ("a",)), ("2024-05", ("b", "c"))]


# ----------------------------------------------------------------------------- HTML pages


def month_pages(config: Config) -> list[str]:
    """The months that have a page, newest first."""
    return sorted((p.stem for p in (config.feeds_path / "months").glob("*.html")), reverse=True)


def html_page(path: Path) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(path.read_bytes())


def stories(page: lxml.html.HtmlElement) -> list[str]:
    return [a.get("href", "") for a in page.xpath("//ol[@class='items']/li//h3/a")]


def test_the_index_shows_the_newest_stories_and_links_a_page_per_older_month(
    config: Config,
) -> None:
    assert config.publish.index_items == INDEX_ITEMS
    run_publish(config)
    with open_store(config) as store:
        items = store.items()
    index = html_page(config.feeds_path / "index.html")
    assert stories(index) == [i.url for i in items[:INDEX_ITEMS]]
    older = items[INDEX_ITEMS:]
    months = month_pages(config)
    assert months == sorted({i.published.isoformat()[:7] for i in older}, reverse=True)
    assert index.xpath("//nav[@class='months']//a/@href") == [f"months/{m}.html" for m in months]
    # Each month page holds every story of its month, newest first; together with the index
    # they show every stored story.
    shown = set(stories(index))
    for n, month in enumerate(months):
        page = html_page(config.feeds_path / "months" / f"{month}.html")
        want = [i.url for i in items if i.published.isoformat()[:7] == month]
        assert stories(page) == want, month
        shown.update(want)
        links = set(page.xpath("//nav[@class='pager']//a/@href"))
        assert links == {
            "../index.html",
            *(f"{m}.html" for m in months[max(n - 1, 0) : n + 2] if m != month),
        }
        for href in links:
            assert (config.feeds_path / "months" / href).resolve().is_file(), href
        assert page.xpath("//link[@rel='alternate']/@href")[0] == PUBLIC + "atom.xml"
        assert not page.xpath("//script")
    assert shown == {i.url for i in items}


def test_the_intro_describes_the_site_and_what_feeds_are(config: Config) -> None:
    run_publish(config)
    index = html_page(config.feeds_path / "index.html")
    intro = index.xpath("//header")[0].text_content()
    assert "iomfeed" not in intro and "http" not in intro
    lead = index.xpath("//p[@class='lead']")[0]
    assert lead.xpath(".//a/@href") == [config.site.home_url]
    assert "IOM Albania website" in lead.text_content()
    explain = " ".join(index.xpath("//section[@class='subscribe']//p")[0].text_content().split())
    assert "feed reader is an app" in explain
    assert all(word in explain for word in ("Atom", "RSS", "JSON Feed"))
    description = index.xpath("//meta[@name='description']/@content")[0]
    assert "iomfeed" not in description and "IOM Albania" in description


def test_month_pages_are_rewritten_only_when_they_change_and_removed_when_gone(
    config: Config,
) -> None:
    run_publish(config)
    before = {p: t for p, t in mtimes(config.feeds_path).items() if p.startswith("months/")}
    oldest = sorted(before)[0]
    with open_store(config) as store:
        target = next(i for i in store.items() if i.published.isoformat()[:7] == oldest[7:14])
        upsert(
            store,
            dataclasses.replace(_as_item(target), title=target.title + " (corrected)"),
            NOW + timedelta(days=1),
        )
    report = run_publish(config, NOW + timedelta(days=1))
    assert [p for p in report.written if p.startswith("months/")] == [oldest]
    after = {p: t for p, t in mtimes(config.feeds_path).items() if p.startswith("months/")}
    assert [p for p in after if after[p] != before[p]] == [oldest]
    # A page replaced behind iomfeed's back is written again.
    (config.feeds_path / oldest).write_text("<p>old backup</p>", encoding="utf-8")
    assert run_publish(config, NOW + timedelta(days=1)).written == (oldest,)
    # Every story fits on the index: no month pages, no links to them.
    everything = dataclasses.replace(
        config, publish=dataclasses.replace(config.publish, index_items=100)
    )
    report = run_publish(everything, NOW + timedelta(days=1))
    assert set(before) <= set(report.written) and month_pages(config) == []
    index = html_page(config.feeds_path / "index.html")
    assert not index.xpath("//nav[@class='months']") and len(stories(index)) == 48
    assert run_publish(everything, NOW + timedelta(days=1)).written == ()


def test_planning_the_archives_from_the_whole_plan_gives_the_same_pages() -> None:
    from iomfeed.publish.build import plan_after

    # Newest first by UTC; local months do not always follow that order across offsets.
    rows = [
        IndexEntry("a", "2024-07-02T10:00:00+02:00", "h1", "u"),
        IndexEntry("b", "2024-07-01T00:30:00+02:00", "h2", "u"),  # 2024-06-30T22:30Z
        IndexEntry("c", "2024-06-30T23:00:00+00:00", "h3", "u"),
        IndexEntry("d", "2024-06-10T10:00:00+02:00", "h4", "u"),
        IndexEntry("e", "2024-05-02T10:00:00+02:00", "h5", "u"),
        IndexEntry("f", "2024-04-02T10:00:00+02:00", "h6", "u"),
    ]
    whole = plan_archives(rows)
    for start in range(len(rows) + 1):
        assert plan_after(rows, whole, start) == plan_archives(rows[start:]), start


# ----------------------------------------------------------------------------- failures


def publish_under_file_limit(
    tmp_path: Path, limit: int, now: datetime
) -> subprocess.CompletedProcess[str]:
    """``publish`` of the store in ``tmp_path``, in a process whose files may not grow past
    ``limit`` bytes (RLIMIT_FSIZE, set after the store is opened); exit code 1 and the
    PublishError on stderr when a write hit the limit."""
    config_file = tmp_path / "publish-config.toml"
    config_file.write_text(
        (ROOT / "config.toml")
        .read_text(encoding="utf-8")
        .replace("max_items = 50", f"max_items = {MAX_ITEMS}"),
        encoding="utf-8",
    )
    script = f"""
import resource, signal, sys
from datetime import datetime
from pathlib import Path
from iomfeed.config import load_config
from iomfeed.errors import PublishError
from iomfeed.pipeline import publish
from iomfeed.runtime import open_store
config = load_config(Path({str(config_file)!r}))
store = open_store(config)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY))
try:
    publish(config, store=store, now=datetime.fromisoformat({now.isoformat()!r}))
except PublishError as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
"""
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )


def grow_newest_item(config: Config) -> None:
    """Edit the newest story so its body is 300 times longer: every feed holding it grows."""
    with open_store(config) as store:
        target = store.items(limit=1)[0]
        upsert(
            store,
            Item(
                source=target.source,
                url=target.url,
                title=target.title,
                content_html=target.content_html * 300,
                published=target.published,
                date_source=target.date_source,
                categories=target.categories,
            ),
            NOW + timedelta(days=1),
        )


def test_a_failed_write_leaves_the_previous_feed_intact(config: Config, tmp_path: Path) -> None:
    run_publish(config)
    before = (config.feeds_path / "atom.xml").read_bytes()
    grow_newest_item(config)  # the next atom.xml will be larger than the limit below
    # A real process whose files may not grow much past the old feed's size: enough for the
    # store's journal, not for the new feed (the store is opened before the limit is set).
    result = publish_under_file_limit(tmp_path, len(before) + 300_000, NOW)
    assert result.returncode == 1, result.stderr
    assert "atom.xml: could not be written (File too large)" in result.stderr
    assert "the previous version is intact" in result.stderr
    assert (config.feeds_path / "atom.xml").read_bytes() == before
    assert not list(config.feeds_path.rglob(".*.tmp"))


def test_a_failed_write_of_a_new_file_or_to_a_folder_says_what_happened(tmp_path: Path) -> None:
    """No previous version to be intact: the message said there was one; and a folder
    named as the file was 'cannot read the current file: Is a directory'."""
    from iomfeed.files import write_if_changed

    (tmp_path / "plain").write_text("a file, not a folder")
    with pytest.raises(PublishError, match="could not be written") as caught:
        write_if_changed(tmp_path / "plain" / "page.html", b"<p>x</p>")
    assert "nothing was left in its place" in str(caught.value)
    assert "previous version" not in str(caught.value)
    with pytest.raises(PublishError, match=r"is a folder; name a file to write"):
        write_if_changed(tmp_path, b"<p>x</p>")


def test_a_publish_that_fails_part_way_replaces_no_file(config: Config, tmp_path: Path) -> None:
    run_publish(config)
    before = {p: (config.feeds_path / p).read_bytes() for p in mtimes(config.feeds_path)}
    stamps = mtimes(config.feeds_path)
    grow_newest_item(config)  # one big edit: every feed holding it grows
    # What the publish would write, measured on a copy: the limit lets every changed file
    # but the largest be written, so a publish writing file by file would replace some.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    shutil.copy(tmp_path / "iomfeed.db", scratch / "iomfeed.db")
    shutil.copytree(config.feeds_path, scratch / "feeds")
    trial = dataclasses.replace(config, base_dir=scratch)
    changed = run_publish(trial, NOW + timedelta(days=1)).written
    sizes = {p: (scratch / "feeds" / p).stat().st_size for p in changed}
    largest = max(sizes, key=lambda p: sizes[p])
    limit = sizes[largest] - 1
    assert largest == "atom.xml"
    assert [p for p in changed if sizes[p] < limit and p.startswith("category/")]
    result = publish_under_file_limit(tmp_path, limit, NOW + timedelta(days=1))
    assert result.returncode == 1, result.stderr
    assert "feeds/atom.xml: could not be written (File too large)" in result.stderr
    assert "as is every other file of this publish" in result.stderr
    assert {p: (config.feeds_path / p).read_bytes() for p in mtimes(config.feeds_path)} == before
    assert mtimes(config.feeds_path) == stamps
    assert not list(config.feeds_path.rglob(".*.tmp"))
    # Without the limit, the same publish puts the whole new set in place.
    assert set(run_publish(config, NOW + timedelta(days=1)).written) == set(changed)


# ----------------------------------------------------------------------------- in a browser


@pytest.mark.browser
def test_the_index_and_month_pages_read_well_on_a_desktop_and_a_phone(config: Config) -> None:
    from .browser import browser, screenshot_path

    run_publish(config)
    months = month_pages(config)
    with open_store(config) as store:
        items = store.items()
    per_month = {m: sum(1 for i in items if i.published.isoformat()[:7] == m) for m in months}
    busiest = max(per_month, key=lambda m: (per_month[m], m))
    pages = [
        ("index", config.feeds_path / "index.html", INDEX_ITEMS),
        ("month", config.feeds_path / "months" / f"{busiest}.html", per_month[busiest]),
    ]
    assert per_month[busiest] > 1
    with browser() as chromium:
        for name, path, count in pages:
            for width in (1280, 375):
                page = chromium.new_page(viewport={"width": width, "height": 900})
                page.goto(path.as_uri())
                # Lazy images load when scrolled to; load them all, and wait for what is read.
                page.evaluate("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
                page.wait_for_function("[...document.images].every(i => i.complete)")
                page.screenshot(path=str(screenshot_path(f"{name}-{width}.png")), full_page=True)
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, f"{overflow}px of horizontal overflow at {width}px"
                assert page.locator("ol.items > li").count() == count
                loaded = page.evaluate(
                    "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length"
                )
                assert loaded == page.locator("ol.items img").count() > 0
                too_wide = page.evaluate(
                    f"[...document.querySelectorAll('body *')].filter("
                    f"e => e.getBoundingClientRect().right > {width} + 1).length"
                )
                assert too_wide == 0
                if name == "index":  # the way to older stories is on the page, no script
                    nav = page.locator("nav.months")
                    nav.screenshot(path=str(screenshot_path(f"index-months-{width}.png")))
                    assert nav.locator("a").count() == len(months)
                    assert page.locator("script").count() == 0
                    nav.locator("a").last.click()
                    page.wait_for_load_state()
                    assert page.url.endswith(f"months/{min(months)}.html")
                page.close()


# ----------------------------------------------------------------------------- WebSub


class Hub:
    """A WebSub hub on 127.0.0.1 that records publish pings and answers a set status."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs

        hub = self
        self.pings: list[dict[str, list[str]]] = []
        self.status = 202

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hub.pings.append(parse_qs(body.decode("ascii")))
                self.send_response(hub.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub()
    yield h
    h.close()


def test_websub_hub_is_linked_and_pinged_only_for_changed_feeds(config: Config, hub: Hub) -> None:
    config = dataclasses.replace(config, site=dataclasses.replace(config.site, websub_hub=hub.url))
    config = dataclasses.replace(config, http=dataclasses.replace(config.http, retries=0))
    first = run_publish(config)
    atom = parse(config.feeds_path / "atom.xml").getroot()
    assert atom.find("a:link[@rel='hub']", NS).get("href") == hub.url  # type: ignore[union-attr]
    rss = parse(config.feeds_path / "rss.xml").getroot()
    assert rss.find("channel/a:link[@rel='hub']", NS) is not None
    assert json.loads((config.feeds_path / "feed.json").read_text())["hubs"] == [
        {"type": "WebSub", "url": hub.url}
    ]
    pinged = sorted(p["hub.url"][0] for p in hub.pings)
    assert all(p["hub.mode"] == ["publish"] for p in hub.pings)
    assert pinged == sorted(first.pinged)
    assert PUBLIC + "atom.xml" in pinged and PUBLIC + "category/local/rss.xml" in pinged
    assert not any("archive/" in url or url.endswith(".html") for url in pinged)
    hub.pings.clear()
    assert run_publish(config).pinged == () and hub.pings == []  # nothing changed: no ping


def test_feeds_written_by_a_run_that_failed_later_are_still_announced(
    config: Config, hub: Hub
) -> None:
    config = dataclasses.replace(config, site=dataclasses.replace(config.site, websub_hub=hub.url))
    (config.feeds_path / "index.html").mkdir(parents=True)  # the last write will fail
    with pytest.raises(PublishError, match=r"index\.html"):
        run_publish(config)
    # All or nothing: no feed was put in place, so there is nothing to announce.
    assert not (config.feeds_path / "atom.xml").exists() and hub.pings == []
    (config.feeds_path / "index.html").rmdir()
    # Now the files are put in place and then the pass fails (a stale file that cannot be
    # removed), before the hub is pinged: the next run announces them.
    with open_store(config) as store:
        store.record_published("gone/atom.xml", "x", 1, 1)
    (config.feeds_path / "gone" / "atom.xml" / "stuck").mkdir(parents=True)
    with pytest.raises(PublishError, match=r"gone/atom\.xml: could not be removed"):
        run_publish(config)
    assert (config.feeds_path / "atom.xml").exists() and hub.pings == []
    shutil.rmtree(config.feeds_path / "gone")
    report = run_publish(config)
    assert PUBLIC + "atom.xml" in report.pinged
    assert PUBLIC + "atom.xml" in [p["hub.url"][0] for p in hub.pings]


def test_the_ping_is_owed_before_the_files_are_renamed(
    config: Config, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed right after the renames (here: the renames done, then the process
    'dies') still announces the new feeds on the next run, which sees identical bytes."""
    from iomfeed.files import FileSet

    config = dataclasses.replace(config, site=dataclasses.replace(config.site, websub_hub=hub.url))
    renames = FileSet.commit

    def renamed_then_killed(self: FileSet) -> None:
        renames(self)
        raise KeyboardInterrupt  # stands for SIGKILL: nothing after the renames runs

    monkeypatch.setattr(FileSet, "commit", renamed_then_killed)
    with pytest.raises(KeyboardInterrupt):
        run_publish(config)
    monkeypatch.undo()
    assert (config.feeds_path / "atom.xml").exists() and hub.pings == []
    report = run_publish(config)
    assert "atom.xml" not in report.written  # the same bytes: nothing to write
    assert PUBLIC + "atom.xml" in report.pinged


def test_a_failed_ping_is_retried_on_the_next_run_and_never_fatal(config: Config, hub: Hub) -> None:
    config = dataclasses.replace(config, site=dataclasses.replace(config.site, websub_hub=hub.url))
    config = dataclasses.replace(config, http=dataclasses.replace(config.http, retries=0))
    hub.status = 503
    failed = run_publish(config)
    assert failed.ping_failures and not failed.pinged
    hub.status = 204
    hub.pings.clear()
    retried = run_publish(config)  # no feed changed, but the failed pings are sent again
    assert sorted(retried.pinged) == sorted(failed.ping_failures)
    assert len(hub.pings) == len(failed.ping_failures)
    assert run_publish(config).pinged == ()
