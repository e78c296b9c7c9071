"""Publishing a store of a few thousand items: a rebuild after one new item rewrites exactly
the files that must change and reads only what it shows (never every item), archive pages
that went missing come back, and the summaries the publish plans from (one row per month,
one per category, kept by triggers) always agree with the items."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import iomfeed.publish.build as build
from iomfeed.config import Config
from iomfeed.decide import decide_item
from iomfeed.ingest import upsert
from iomfeed.intents import NewItem, StoredState
from iomfeed.models import DateSource, Item, PublishReport
from iomfeed.output_records import FeedDoc
from iomfeed.pipeline import publish
from iomfeed.runtime import open_store
from iomfeed.store import Store

from .conftest import NOW, local_config
from .schemakit import database_before

ITEMS = 3000
ORIGIN = "https://albania.iom.int"
CATEGORIES = ("Local", "Global", "Diaspora")
#: The newest stored item: its month also holds items beyond the index, so it has a page.
NEWEST = datetime(2026, 10, 30, 12, 0, tzinfo=timezone(timedelta(hours=1)))


def make_item(n: int, when: datetime) -> Item:
    """Item ``n``; every seventh one at half past eleven at night in a +02:00 offset, so
    that its local month is often not its UTC month."""
    if n % 7 == 0:
        when = when.astimezone(timezone(timedelta(hours=2))).replace(hour=23, minute=30)
    return Item(
        source="iom-albania",
        url=f"{ORIGIN}/news/story-{n}",
        title=f"Story number {n} on migration in Albania",
        summary_html=f"<p>Summary of story {n}.</p>",
        content_html=f"<p>Body of story {n}, with Tiranë and Shkodër.</p>",
        published=when,
        date_source=DateSource.TIME,
        image_url=f"{ORIGIN}/files/{n}.png",
        categories=(CATEGORIES[n % 3],) if n % 11 else (),
        language="en",
    )


def fill(store: Store, items: int) -> None:
    """``items`` items, one every 29 hours back from ``NEWEST`` (about eight years)."""
    with store.transaction():
        for n in range(items):
            item = make_item(n, NEWEST - timedelta(hours=29 * n))
            intent = decide_item(item, StoredState(), now=NOW, rank={})
            assert isinstance(intent, NewItem)
            store.insert_item(intent, NOW)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of ``ITEMS`` items published once; each test works on a copy of the folder."""
    folder = tmp_path_factory.mktemp("scale")
    config = local_config(ORIGIN, folder)
    with open_store(config) as store:
        fill(store, ITEMS)
        publish(config, store=store, now=NOW)
    return folder


@pytest.fixture
def config(published: Path, tmp_path: Path) -> Config:
    shutil.copytree(published, tmp_path, dirs_exist_ok=True)  # copy2: mtimes kept to the ns
    return local_config(ORIGIN, tmp_path)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def run_publish(config: Config, now: datetime = NOW) -> PublishReport:
    with open_store(config) as store:
        return publish(config, store=store, now=now)


def add_newest(config: Config) -> None:
    """One story newer than every other, in a month of its own, in category Local."""
    with open_store(config) as store:
        item = dataclasses.replace(
            make_item(ITEMS + 1, NEWEST + timedelta(days=5)), categories=("Local",)
        )
        upsert(store, item, NOW + timedelta(days=6))


def test_a_copy_of_the_published_folder_publishes_nothing(config: Config) -> None:
    assert run_publish(config).written == ()


def test_a_rebuild_after_one_new_item_rewrites_exactly_the_files_that_must_change(
    config: Config,
) -> None:
    folder = config.feeds_path
    before = snapshot(folder)
    archives = [p for p in before if p.startswith("archive/")]
    assert len(archives) > 80  # eight years of months
    add_newest(config)
    with open_store(config) as store:
        pushed_out = store.items(limit=config.publish.max_items + 1)[-1]
    report = run_publish(config, NOW + timedelta(days=6))
    after = snapshot(folder)
    assert set(before) <= set(after)  # no page goes (the archive's newest may be new)
    changed = {p for p in after if p not in before or after[p][0] != before[p][0]}
    month = pushed_out.published.isoformat()[:7]
    assert changed == {
        *(
            f"{prefix}{name}"
            for prefix in ("", "category/local/")
            for name in build.SUBSCRIPTION_FILES
        ),
        "index.html",
        f"archive/{month}.xml",  # the one archive page: the item pushed out of the feed
    }
    assert set(report.written) == changed
    # Every other file is the very file that was there: not written again.
    assert all(after[p][1] == before[p][1] for p in before if p not in changed)


def test_a_rebuild_renders_and_reads_only_what_it_shows(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_newest(config)
    rendered: list[str] = []
    from iomfeed.publish.feeds import render_atom as real

    def render_atom(doc: FeedDoc) -> bytes:
        rendered.append(doc.key)
        return real(doc)

    monkeypatch.setattr(build, "render_atom", render_atom)
    statements: list[str] = []
    with open_store(config) as store:
        store.db.set_trace_callback(statements.append)
        publish(config, store=store, now=NOW + timedelta(days=6))
        store.db.set_trace_callback(None)
    archived = [key for key in rendered if key.startswith("archive/")]
    assert len(archived) == 1
    # The feeds the new story is in; not those of the other categories, unchanged.
    assert sorted(k for k in rendered if k not in archived) == ["category/local", "main"]
    # No statement reads every item: each one that reads the items table is limited, or
    # picks rows by id, month or category.
    reads = [s for s in statements if " FROM items" in s and "count(*)" not in s]
    assert reads
    unbounded = [s for s in reads if not any(k in s for k in ("LIMIT", "WHERE"))]
    assert unbounded == []
    # By month: only the months the subscription feed reaches into, and the archive page
    # rendered.
    read = [m.group(1) for s in reads if (m := re.search(r"\) = '(\d{4}-\d\d)'", s))]
    with open_store(config) as store:
        feed = {i.published.isoformat()[:7] for i in store.items(limit=config.publish.max_items)}
    assert set(read) <= feed | {archived[0][len("archive/") :]}
    assert len(read) <= len(feed) + 1
    # The stories of a month are read once, for its archive page and its month page.
    whole = [s for s in reads if "content_html" in s and "LIMIT" not in s]
    by_month = [m.group(1) for s in whole if (m := re.search(r"\) = '(\d{4}-\d\d)'", s))]
    assert whole and len(by_month) == len(whole) == len(set(by_month)), whole


def test_an_archive_page_deleted_by_hand_is_recreated(config: Config) -> None:
    folder = config.feeds_path
    before = snapshot(folder)
    pages = sorted(p for p in before if p.startswith("archive/"))
    for page in (pages[0], pages[len(pages) // 2]):
        (folder / page).unlink()
    report = run_publish(config)
    assert sorted(report.written) == [pages[0], pages[len(pages) // 2]]
    after = snapshot(folder)
    assert {p: v[0] for p, v in after.items()} == {p: v[0] for p, v in before.items()}
    assert run_publish(config).written == ()


def test_a_month_page_deleted_by_hand_is_recreated(config: Config) -> None:
    folder = config.feeds_path
    page = sorted(p.relative_to(folder).as_posix() for p in (folder / "months").iterdir())[3]
    good = (folder / page).read_bytes()
    (folder / page).unlink()
    assert run_publish(config).written == (page,)
    assert (folder / page).read_bytes() == good


# ----------------------------------------------------------------------------- summaries


def summaries(db: sqlite3.Connection | Store) -> tuple[dict[str, int], dict[str, int]]:
    """(items per local month, items per category) as the summary tables hold them."""
    conn = db.db if isinstance(db, Store) else db
    months = dict(conn.execute("SELECT month, items FROM item_months WHERE items > 0"))
    categories = dict(conn.execute("SELECT category, items FROM item_categories WHERE items > 0"))
    return months, categories


def counted(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    """The same, counted from every item."""
    items = store.items()
    months = Counter(i.published.isoformat()[:7] for i in items)
    categories = Counter(c for i in items for c in set(i.categories))
    return dict(months), dict(categories)


def category_index(db: sqlite3.Connection | Store) -> set[tuple[str, str, str]]:
    """(category, published UTC, id) as the category index holds them."""
    conn = db.db if isinstance(db, Store) else db
    rows = conn.execute("SELECT category, published_utc, id FROM category_items")
    return {(str(r[0]), str(r[1]), str(r[2])) for r in rows}


def category_members(db: sqlite3.Connection | Store) -> set[tuple[str, str, str]]:
    """The same, read from every item's categories."""
    conn = db.db if isinstance(db, Store) else db
    rows = conn.execute("SELECT id, published_utc, categories FROM items")
    return {(c, str(r[1]), str(r[0])) for r in rows for c in json.loads(r[2])}


def newest_in(store: Store, category: str, limit: int) -> list[str]:
    """The ids of the newest ``limit`` items in ``category``, from every item."""
    items = [i for i in store.items() if category in i.categories]
    return [i.id for i in items[:limit]]


def month_changes(store: Store) -> dict[str, int]:
    return dict(store.db.execute("SELECT month, changes FROM item_months"))


def test_the_summaries_follow_every_insert_edit_move_and_delete(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", tag_authority="example.org") as store:
        fill(store, 200)
        assert summaries(store) == counted(store)
        assert category_index(store) == category_members(store)
        newest = store.items(limit=1)[0]
        oldest = store.items()[-1]
        # An edit that moves a story to another month and category.
        start = month_changes(store)
        moved = dataclasses.replace(
            make_item(0, newest.published - timedelta(days=400)), categories=("Elsewhere", "Local")
        )
        upsert(store, moved, NOW)
        assert summaries(store) == counted(store)
        assert category_index(store) == category_members(store)
        assert {(c, i) for c, _, i in category_index(store) if i == newest.id} == {
            ("Elsewhere", newest.id),
            ("Local", newest.id),
        }
        now = month_changes(store)
        assert moved.published is not None
        for month in (newest.published.isoformat()[:7], moved.published.isoformat()[:7]):
            assert now[month] > start.get(month, 0)
        # Seen again, unchanged: nothing a page shows moved.
        upsert(store, moved, NOW + timedelta(hours=1))
        assert month_changes(store) == now
        # An edit that drops a category and moves the story back in time.
        upsert(
            store,
            dataclasses.replace(
                moved, categories=("Global",), published=moved.published - timedelta(days=3)
            ),
            NOW,
        )
        assert category_index(store) == category_members(store)
        # Deleted, and a month emptied: its row stays, at no items, its count still moving.
        with store.transaction():
            store.db.execute("DELETE FROM items WHERE id = ?", (oldest.id,))
        month = oldest.published.isoformat()[:7]
        assert summaries(store) == counted(store)
        with store.transaction():
            store.db.execute("DELETE FROM items WHERE substr(published, 1, 7) = ?", (month,))
        assert month not in summaries(store)[0]
        assert month_changes(store)[month] > now[month]
        assert category_index(store) == category_members(store)
        for category in ("Local", "Global", "Diaspora", "Elsewhere", "None such"):
            got = [i.id for i in store.items_in_category(category, limit=7)]
            assert got == newest_in(store, category, 7)
        assert store.categories() == sorted(counted(store)[1])
        assert [m.month for m in store.item_months()] == sorted(counted(store)[0], reverse=True)


def test_the_schema_step_counts_the_items_an_older_iomfeed_stored(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Store(tmp_path / "new.db", tag_authority="example.org") as store:
        fill(store, 150)
        want = counted(store)
        columns = [r[1] for r in store.db.execute("PRAGMA table_info(items)")]
        rows = store.db.execute(f"SELECT {', '.join(columns)} FROM items").fetchall()
    db = database_before(path, "-- issue 13 (publish)")
    marks = ", ".join("?" * len(columns))
    db.executemany(f"INSERT INTO items ({', '.join(columns)}) VALUES ({marks})", rows)
    db.close()
    with Store(path, tag_authority="example.org") as store:
        assert summaries(store) == want
        assert category_index(store) == category_members(store)
        assert len(category_index(store)) > 100


def test_a_category_feed_reads_its_items_by_one_index_range(tmp_path: Path) -> None:
    """Not by walking every item newest first: the plan seeks the category's rows."""
    from iomfeed.store.items import _ITEMS_COLUMNS

    with Store(tmp_path / "s.db", tag_authority="example.org") as store:
        fill(store, 50)
        statements: list[str] = []
        store.db.set_trace_callback(statements.append)
        store.items_in_category("Global", limit=5)
        store.db.set_trace_callback(None)
        (sql,) = statements
        assert _ITEMS_COLUMNS in sql
        plan = [
            r[3]
            for r in store.db.execute(
                "EXPLAIN QUERY PLAN " + sql.replace("'Global'", "?").replace("LIMIT 5", "LIMIT ?"),
                ("Global", 5),
            )
        ]
    assert not any(step.startswith("SCAN") for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_a_months_marks_are_read_from_its_index_alone(tmp_path: Path) -> None:
    """The rows an archive page of a month in the feed is planned from: not through the
    table, where each row's hash lies past its content."""
    with Store(tmp_path / "s.db", tag_authority="example.org") as store:
        fill(store, 50)
        month = store.items(limit=1)[0].published.isoformat()[:7]
        statements: list[str] = []
        store.db.set_trace_callback(statements.append)
        rows = store.month_index(month)
        store.db.set_trace_callback(None)
        assert [r.id for r in rows] == [
            i.id for i in store.items() if i.published.isoformat()[:7] == month
        ]
        (sql,) = statements
        plan = [r[3] for r in store.db.execute("EXPLAIN QUERY PLAN " + sql)]
    assert any("COVERING INDEX items_month" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_a_story_seen_again_renders_nothing(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a story was last seen is no part of any page: a publish after a fetch that only
    saw the feed's stories again keeps every file, without rendering one."""
    with open_store(config) as store:
        newest = store.items(limit=1)[0]
        item = make_item(0, NEWEST)
        assert item.url == newest.url
        upsert(store, item, NOW + timedelta(days=2))
        assert store.items(limit=1)[0].last_seen > newest.last_seen
    rendered: list[str] = []

    def spy(*args: object, **kwargs: object) -> bytes:
        rendered.append("page")
        raise AssertionError("nothing should be rendered")

    for name in ("render_atom", "render_rss", "render_json", "render_index", "render_month"):
        monkeypatch.setattr(build, name, spy)
    report = run_publish(config, NOW + timedelta(days=2))
    assert report.written == () and rendered == []


def test_a_fingerprint_does_not_depend_on_the_string_hash_seed() -> None:
    """A set's repr is in hash order, which changes from one process to the next: the
    record values a fingerprint is made of give sets in order."""
    script = (
        "from iomfeed.forms import SignUpView\n"
        "from iomfeed.publish.fingerprints import fingerprint, record_values\n"
        "ticked = frozenset(f'category {n}' for n in range(40))\n"
        "view = SignUpView('a', 'en', '', '', '', 'en', (), (), ticked, {})\n"
        "print(fingerprint(record_values(view)), repr(ticked))\n"
    )
    out = [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.split(" ", 1)
        for seed in ("1", "2")
    ]
    assert out[0][1] != out[1][1]  # the sets' reprs differ: the test can tell
    assert out[0][0] == out[1][0]


def test_changed_rendering_code_or_built_in_words_render_what_shows_them(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between releases (an update from a checkout) the rendering code or the built-in
    words may change: the files they make are rendered again, the others are not."""
    from iomfeed.publish import fingerprints, site

    rendered: list[str] = []

    def spy(name: str) -> object:
        real = getattr(build, name)

        def render(*args: object, **kwargs: object) -> bytes:
            rendered.append(name)
            return real(*args, **kwargs)  # type: ignore[no-any-return]

        return render

    for name in ("render_atom", "render_rss", "render_json", "render_index", "render_month"):
        monkeypatch.setattr(build, name, spy(name))
    words = site.forms_words()
    monkeypatch.setattr(
        build, "forms_words", lambda: dataclasses.replace(words, subscribe_button="Join")
    )
    run_publish(config)  # (the page is rendered with the real words: the same bytes)
    assert rendered == ["render_index"]
    rendered.clear()
    monkeypatch.setattr(fingerprints, "code_digest", lambda: "other code")
    assert run_publish(config).written == ()  # the same bytes: rendered, not rewritten
    assert set(rendered) == {
        "render_atom",
        "render_rss",
        "render_json",
        "render_index",
        "render_month",
    }
    assert rendered.count("render_index") == 1
