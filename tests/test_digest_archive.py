"""The digest archive: a digest that went out is published under digests/ in each language
(a copy with nothing personal in it), listed newest first on digests/index.html and in
digests/atom.xml, linked from index.html; every message links its page ("View in
browser"). Real store, real outbox files, real publish."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import feedparser
import pytest
from lxml import etree
from lxml import html as lxml_html

from iomfeed.config import Config
from iomfeed.delivery.mailers import make_mailer
from iomfeed.digest.pages import page_stem
from iomfeed.pipeline import publish, send_digest
from iomfeed.store import Store

from .conftest import CONFIG_FILE, NOW
from .digestkit import add_items, add_subscribers, digest_config
from .test_cli_snapshot import iomfeed
from .test_delivery import ScriptedMailer

ATOM = "{http://www.w3.org/2005/Atom}"


def sent_digest(tmp_path: Path, when: datetime = NOW) -> tuple[Config, Store]:
    """A store whose digest went out through the outbox to five subscribers."""
    config = digest_config(tmp_path)
    store = Store(tmp_path / "db.sqlite")
    add_subscribers(store, 5)
    add_items(store, range(4), when - timedelta(days=1))
    outcome = send_digest(config, store=store, mailer=make_mailer(config), clock=lambda: when)
    assert outcome.status == "sent"
    return config, store


def messages(config: Config) -> list[EmailMessage]:
    out = []
    for path in sorted(config.outbox_path.iterdir()):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def archive_files(config: Config) -> dict[str, bytes]:
    folder = config.feeds_path / "digests"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_page_names_are_the_local_day_and_a_number_for_a_second_digest() -> None:
    tz = "Europe/Tirane"
    first = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)  # 24 November in Tirana
    assert page_stem(0, first, [], tz) == "2026-11-24"
    assert page_stem(1, first, [(1, first)], tz) == "2026-11-24"
    later = first + timedelta(hours=5)
    # Not yet recorded (0) or recorded as 2: the second of that day, either way.
    assert page_stem(0, later, [(1, first)], tz) == "2026-11-24-2"
    assert page_stem(2, later, [(1, first), (2, later)], tz) == "2026-11-24-2"
    # A later digest does not rename an earlier one.
    assert page_stem(1, first, [(1, first), (2, later)], tz) == "2026-11-24"
    assert page_stem(3, later + timedelta(days=1), [(1, first), (2, later)], tz) == "2026-11-25"


def test_a_sent_digest_has_a_page_per_language_that_its_messages_link(tmp_path: Path) -> None:
    config, store = sent_digest(tmp_path)
    with store:
        files = archive_files(config)
        stem = page_stem(1, NOW, store.digest_days(), config.site.timezone)
        assert set(files) == {f"{stem}-en.html", f"{stem}-sq.html", "index.html", "atom.xml"}
        base = config.site.public_url
        for msg in messages(config):
            text, html = (p.get_content() for p in msg.iter_parts())
            lang = re.search(r'<html lang="(\w+)"', html).group(1)  # type: ignore[union-attr]
            url = f"{base}digests/{stem}-{lang}.html"
            # In both parts, before the stories; and the page it names exists.
            assert text.index(url) < text.index("Story")
            doc = lxml_html.fromstring(html.encode())
            links = doc.xpath("//a[@class='view-online-link']/@href")
            assert links == [url]
            assert (config.feeds_path / url.removeprefix(base)).is_file()
        index = (config.feeds_path / "index.html").read_text(encoding="utf-8")
        assert 'href="digests/index.html"' in index
        page: Any = lxml_html.fromstring(files[f"{stem}-sq.html"])
        assert page.get("lang") == "sq"
        assert page.xpath("//a[@hreflang='en']/@href") == [f"{stem}-en.html"]
        assert "Ministria e Brendshme" in page.text_content()


def test_no_token_name_or_address_is_in_the_archive(tmp_path: Path) -> None:
    config, store = sent_digest(tmp_path)
    with store:
        subscribers = list(store.subscribers())
    secrets = [s.address for s in subscribers] + [s.name for s in subscribers if s.name]
    tokens = set()
    for msg in messages(config):
        tokens.add(str(msg["List-Unsubscribe"]).split("t=")[1].split(">")[0])
    assert len(tokens) == 5
    for name, data in archive_files(config).items():
        text = data.decode("utf-8")
        for value in [*secrets, *tokens, "%%", "?t=", "unsubscribe?"]:
            assert value not in text, (name, value)
        if name.endswith(".html") and name != "index.html":
            assert "web copy" in text or "kopja në internet" in text


def test_republishing_writes_nothing_and_feed_ids_stay(tmp_path: Path) -> None:
    config, store = sent_digest(tmp_path)
    with store:
        before = archive_files(config)
        mtimes = {p: p.stat().st_mtime_ns for p in (config.feeds_path / "digests").iterdir()}
        report = publish(config, store=store, now=NOW + timedelta(hours=1))
        assert report.written == ()
        assert archive_files(config) == before
        assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes

        # A second digest a week later: two more pages, the first ones untouched, the
        # feed and the index newest first, the first entries' ids unchanged.
        ids = [e.findtext(f"{ATOM}id") for e in etree.fromstring(before["atom.xml"])]
        week = NOW + timedelta(days=7)
        add_items(store, range(10, 12), week - timedelta(hours=1))
        send_digest(config, store=store, mailer=make_mailer(config), clock=lambda: week)
        after = archive_files(config)
        first = page_stem(1, NOW, store.digest_days(), config.site.timezone)
        second = page_stem(2, week, store.digest_days(), config.site.timezone)
        assert after[f"{first}-en.html"] == before[f"{first}-en.html"]
        feed = etree.fromstring(after["atom.xml"])
        entries = feed.findall(f"{ATOM}entry")
        assert [e.find(f"{ATOM}link").get("href").rsplit("/", 1)[1] for e in entries] == [  # type: ignore[union-attr]
            f"{second}-en.html",
            f"{second}-sq.html",
            f"{first}-en.html",
            f"{first}-sq.html",
        ]
        old_ids = [i for i in ids if i and ":digest/" in i]
        assert [e.findtext(f"{ATOM}id") for e in entries[2:]] == old_ids
        index = after["index.html"].decode()
        assert index.index(f"{second}-en.html") < index.index(f"{first}-en.html")


def test_the_digest_feed_is_valid_atom(tmp_path: Path) -> None:
    config, store = sent_digest(tmp_path)
    store.close()
    data = archive_files(config)["atom.xml"]
    feed = etree.fromstring(data, etree.XMLParser(resolve_entities=False))
    assert feed.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert feed.findtext(f"{ATOM}{name}")
    assert feed.findtext(f"{ATOM}author/{ATOM}name")
    self_link = feed.find(f"{ATOM}link[@rel='self']")
    assert self_link is not None
    assert self_link.get("href") == config.site.public_url + "digests/atom.xml"
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 2
    for entry in entries:
        assert entry.findtext(f"{ATOM}id", "").startswith("tag:")
        assert entry.findtext(f"{ATOM}title")
        updated = entry.findtext(f"{ATOM}updated", "")
        assert datetime.fromisoformat(updated).tzinfo is not None  # RFC 3339 with an offset
        link = entry.find(f"{ATOM}link[@rel='alternate']")
        assert link is not None and link.get("type") == "text/html"
        path = link.get("href", "").removeprefix(config.site.public_url)
        assert (config.feeds_path / path).is_file()
    assert feed.findtext(f"{ATOM}updated") == max(e.findtext(f"{ATOM}updated", "") for e in entries)
    parsed = feedparser.parse(data)
    assert not parsed.bozo and len(parsed.entries) == 2
    assert {e.title_detail.language for e in parsed.entries} == {"en", "sq"}


def test_skipped_digests_have_no_page_and_a_partial_send_has_one(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    with Store(tmp_path / "db.sqlite") as store:
        add_items(store, range(3), NOW - timedelta(days=1))
        # Nobody to send to: skipped, nothing archived, index.html has no archive link.
        assert (
            send_digest(config, store=store, mailer=ScriptedMailer(), clock=lambda: NOW).status
            == "skipped"
        )
        publish(config, store=store, now=NOW)
        assert not (config.feeds_path / "digests").exists()
        assert "digests/index.html" not in (config.feeds_path / "index.html").read_text()

        # One message accepted, the others deferred: the digest is still being sent, and
        # the page its sent message links is there already.
        addresses = add_subscribers(store, 3)
        mailer = ScriptedMailer({a: ["down"] * 20 for a in addresses[1:]})
        later = NOW + timedelta(hours=1)
        outcome = send_digest(config, store=store, mailer=mailer, clock=lambda: later)
        assert outcome.status != "sent" and len(mailer.sent) == 1
        html = mailer.sent[0].data.decode()
        url = re.search(r'class="view-online-link" href="([^"]+)"', html).group(1)  # type: ignore[union-attr]
        assert (config.feeds_path / url.removeprefix(config.site.public_url)).is_file()


def test_digest_send_from_the_command_line_publishes_the_pages_its_messages_link(
    tmp_path: Path,
) -> None:
    """`iomfeed digest --send` in its own process: the pages are there when it ends, and a
    later `iomfeed publish` leaves every archive file as it was."""
    config_file = tmp_path / "config.toml"
    config_file.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    with Store(tmp_path / "iomfeed.db") as store:
        add_subscribers(store, 3)
        add_items(store, range(5), NOW - timedelta(days=1))
    sent = iomfeed("--config", str(config_file), "digest", "--send", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    config = digest_config(tmp_path)
    folder = config.feeds_path / "digests"
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert len(mtimes) == 4
    for msg in messages(config):
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        url = text.split("\n")[1].strip()
        assert url.startswith(config.site.public_url + "digests/"), text[:200]
        assert (config.feeds_path / url.removeprefix(config.site.public_url)).is_file()
    again = iomfeed("--config", str(config_file), "publish", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes


def test_the_same_store_gives_the_same_archive_bytes(tmp_path: Path) -> None:
    """A publish into an empty folder writes byte for byte what the incremental ones did."""
    import shutil

    config, store = sent_digest(tmp_path)
    with store:
        before = archive_files(config)
        shutil.rmtree(config.feeds_path)
        report = publish(config, store=store, now=NOW + timedelta(days=2))
        assert {f"digests/{name}" for name in before} <= set(report.written)
        assert archive_files(config) == before


def test_a_story_edited_later_is_shown_edited_on_its_digest_pages(tmp_path: Path) -> None:
    from iomfeed.ingest import upsert

    from .digestkit import item

    config, store = sent_digest(tmp_path)
    with store:
        upsert(store, item(0, title="Corrected title of story zero"), NOW + timedelta(hours=2))
        report = publish(config, store=store, now=NOW + timedelta(hours=3))
        stem = page_stem(1, NOW, store.digest_days(), config.site.timezone)
        for code in ("en", "sq"):
            assert f"digests/{stem}-{code}.html" in report.written
        files = archive_files(config)
        assert "Corrected title of story zero" in files[f"{stem}-en.html"].decode()
        assert "Corrected title of story zero" in files["index.html"].decode()


def _published(config: Config) -> dict[str, int]:
    folder = config.feeds_path
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*.*")}


def test_a_send_after_a_current_publish_renders_only_the_digest_archive_and_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a send changes is the digest archive and the index's link to it: the feeds, their
    archives and the month pages are neither rendered nor touched, and the result is what a
    complete publish makes (which then writes nothing)."""
    from iomfeed.publish import build

    rendered: list[str] = []

    def counted(name: str) -> Callable[..., bytes]:
        real = getattr(build, name)

        def render(*args: Any, **kwargs: Any) -> bytes:
            rendered.append(name)
            return bytes(real(*args, **kwargs))

        return render

    for name in ("render_atom", "render_rss", "render_json", "render_month"):
        monkeypatch.setattr(build, name, counted(name))
    config = digest_config(tmp_path)
    with Store(tmp_path / "db.sqlite") as store:
        add_subscribers(store, 3)
        add_items(store, range(30), NOW - timedelta(days=40))
        add_items(store, range(30, 34), NOW - timedelta(days=1))
        publish(config, store=store, now=NOW - timedelta(hours=1))
        before = _published(config)
        assert any(p.startswith("months/") for p in before) and "atom.xml" in before
        assert "render_month" in rendered and "render_atom" in rendered
        rendered.clear()
        outcome = send_digest(config, store=store, mailer=make_mailer(config), clock=lambda: NOW)
        assert outcome.status == "sent"
        after = _published(config)
        changed = {p for p in after if before.get(p) != after[p]}
        stem = page_stem(1, NOW, store.digest_days(), config.site.timezone)
        assert changed == {
            "index.html",
            *(f"digests/{name}" for name in (f"{stem}-en.html", f"{stem}-sq.html")),
            "digests/index.html",
            "digests/atom.xml",
        }
        assert 'href="digests/index.html"' in (config.feeds_path / "index.html").read_text()
        assert rendered == []
        # A complete publish finds every file as it would write it...
        assert publish(config, store=store, now=NOW + timedelta(minutes=5)).written == ()
        # ...and a quiet cycle does not render at all.
        quiet = publish(config, store=store, now=NOW + timedelta(minutes=6), force=False)
        assert quiet.written == () and quiet.unchanged == len(after)


def test_a_quiet_cycle_publishes_the_archive_again_when_an_override_template_changes(
    tmp_path: Path,
) -> None:
    """The digest's pages are rendered with the templates of ``digest.templates``: editing
    one there is a change a cycle publishes, though nothing in the store moved."""
    import dataclasses
    import importlib.resources

    config, store = sent_digest(tmp_path)
    folder = tmp_path / "templates"
    folder.mkdir()
    css = importlib.resources.files("iomfeed.templates") / "digest" / "digest.css"
    (folder / "digest.css").write_text(css.read_text(encoding="utf-8"), encoding="utf-8")
    config = dataclasses.replace(
        config, digest=dataclasses.replace(config.digest, templates=str(folder))
    )
    with store:
        publish(config, store=store, now=NOW + timedelta(minutes=1))
        quiet = publish(config, store=store, now=NOW + timedelta(minutes=2), force=False)
        assert quiet.written == () and quiet.unchanged > 0
        before = archive_files(config)
        with (folder / "digest.css").open("a", encoding="utf-8") as fh:
            fh.write("\np { letter-spacing: 0.123em; }\n")
        again = publish(config, store=store, now=NOW + timedelta(minutes=3), force=False)
        pages = sorted(p for p in again.written if p.startswith("digests/20"))
        assert len(pages) == 2, again.written  # the page in each language
        for page in pages:
            name = page.removeprefix("digests/")
            assert b"0.123em" not in before[name]
            assert b"0.123em" in archive_files(config)[name]
        later = publish(config, store=store, now=NOW + timedelta(minutes=4), force=False)
        assert later.written == () and later.unchanged == quiet.unchanged


def test_a_send_after_items_changed_publishes_everything(tmp_path: Path) -> None:
    """Stories fetched since the last publish (or during the send) are published with the
    digest's pages: the feeds are not left behind the index."""
    config = digest_config(tmp_path)
    with Store(tmp_path / "db.sqlite") as store:
        add_subscribers(store, 3)
        add_items(store, range(4), NOW - timedelta(days=2))
        publish(config, store=store, now=NOW - timedelta(days=1))
        add_items(store, range(4, 6), NOW - timedelta(hours=2))
        send_digest(config, store=store, mailer=make_mailer(config), clock=lambda: NOW)
        feed = (config.feeds_path / "atom.xml").read_text(encoding="utf-8")
        assert "https://albania.iom.int/news/story-5" in feed
        assert publish(config, store=store, now=NOW + timedelta(minutes=5)).written == ()
