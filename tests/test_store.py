"""The SQLite store: identity minted once, edits bump updated, duplicates stored once."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iomfeed.dedup import Candidate, find_near_duplicate
from iomfeed.errors import StoreError
from iomfeed.models import Change, DateSource, Item, SourceResult
from iomfeed.store import MIGRATIONS, Store

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PUB = datetime(2021, 6, 14, 12, 0, tzinfo=UTC)


def item(**kw: object) -> Item:
    values: dict[str, object] = {
        "source": "site", "url": "https://albania.iom.int/news/a", "title": "Diaspora meets",
        "summary_html": "<p>s</p>", "content_html": "<p>body</p>", "published": PUB,
        "date_source": DateSource.TIME, "categories": ("Local",), "language": "en",
        "listing_hash": "h1",
    }
    values.update(kw)
    return Item(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "db" / "iomfeed.db", tag_authority="feeds.example.org")
    yield s  # type: ignore[misc]
    s.close()


def test_new_item_gets_a_tag_id_that_never_changes(store: Store) -> None:
    out = store.upsert(item(), T0)
    assert out.change is Change.NEW
    assert out.item_id == "tag:feeds.example.org,2026-11-01:albania.iom.int/news/a"
    edited = store.upsert(item(content_html="<p>body, corrected</p>"), T0 + timedelta(days=3))
    assert edited == type(out)(Change.UPDATED, out.item_id)
    stored = store.get(out.item_id)
    assert stored is not None
    assert stored.content_html == "<p>body, corrected</p>"
    assert stored.updated == T0 + timedelta(days=3)
    assert stored.first_seen == T0
    assert stored.published == PUB


def test_storing_the_same_item_again_changes_nothing_but_last_seen(store: Store) -> None:
    first = store.upsert(item(), T0)
    before = store.get(first.item_id)
    again = store.upsert(item(), T0 + timedelta(hours=1))
    after = store.get(first.item_id)
    assert again.change is Change.UNCHANGED
    assert before is not None and after is not None
    assert after.content_hash == before.content_hash and after.updated == before.updated
    assert after.last_seen == T0 + timedelta(hours=1)


def test_an_item_without_a_date_keeps_its_first_seen_date(store: Store) -> None:
    out = store.upsert(item(published=None, date_source=None), T0)
    later = store.upsert(item(published=None, date_source=None, content_html="<p>x</p>"),
                         T0 + timedelta(days=10))
    stored = store.get(out.item_id)
    assert later.change is Change.UPDATED
    assert stored is not None
    assert stored.published == T0 and stored.date_source is DateSource.FIRST_SEEN


def test_a_near_duplicate_from_another_source_is_linked_not_stored(store: Store) -> None:
    original = store.upsert(item(), T0)
    twin = store.upsert(
        item(source="global-feed", url="https://www.iom.int/news/diaspora-meets",
             title="Diaspora Meets!", published=PUB + timedelta(days=1)), T0)
    assert twin.change is Change.DUPLICATE and twin.item_id == original.item_id
    assert store.count() == 1
    assert store.links(original.item_id) == [
        ("https://www.iom.int/news/diaspora-meets", "global-feed", "title")]
    # Seen again: recognised by its recorded address at once.
    assert store.upsert(item(source="global-feed", url="https://www.iom.int/news/diaspora-meets",
                             title="Changed title"), T0).change is Change.DUPLICATE


def test_the_same_title_a_year_later_is_a_different_story(store: Store) -> None:
    store.upsert(item(title="International Day of Family Remittances (IDFR)"), T0)
    out = store.upsert(item(url="https://albania.iom.int/news/idfr-0",
                            title="International Day of Family Remittances (IDFR)",
                            published=PUB + timedelta(days=365)), T0)
    assert out.change is Change.NEW
    assert store.count() == 2


def test_the_same_url_from_another_source_does_not_overwrite(store: Store) -> None:
    out = store.upsert(item(), T0)
    dup = store.upsert(item(source="feed", content_html="<p>feed version</p>"), T0)
    assert dup.change is Change.DUPLICATE
    stored = store.get(out.item_id)
    assert stored is not None and stored.content_html == "<p>body</p>"


def test_items_are_listed_newest_first(store: Store) -> None:
    for n in range(5):
        store.upsert(item(url=f"https://albania.iom.int/news/{n}", title=f"Story number {n}",
                          published=PUB + timedelta(days=10 * n)), T0)
    titles = [i.title for i in store.items()]
    assert titles == [f"Story number {n}" for n in (4, 3, 2, 1, 0)]
    assert [i.title for i in store.items(limit=2)] == ["Story number 4", "Story number 3"]


def test_schema_is_migrated_once_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with Store(path) as s:
        assert s.schema_version == len(MIGRATIONS)
    with Store(path) as s:  # reopening runs no migration again
        assert s.schema_version == len(MIGRATIONS)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this iomfeed understands"):
        Store(path)


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=str(path)):
        Store(path)


def test_runs_are_recorded_per_source(store: Store) -> None:
    results = (SourceResult("a", True, pages=3, not_modified=1, found=10, new=2, duration=1.5),
               SourceResult("b", False, error="HTTP 500", warnings=("w",)))
    run_id = store.record_run(T0, T0 + timedelta(seconds=5), results)
    assert store.last_run_id() == run_id
    assert store.source_runs(run_id) == list(results)


def test_validators_round_trip(store: Store) -> None:
    store.save_validators("https://x/a", '"e1"', "Mon, 01 Jan 2024 00:00:00 GMT", T0)
    assert store.get_validators("https://x/a") == ('"e1"', "Mon, 01 Jan 2024 00:00:00 GMT")
    store.save_validators("https://x/a", None, None, T0)
    assert store.get_validators("https://x/a") == (None, None)


def test_near_duplicate_matching_is_pure_and_picks_the_closest() -> None:
    cands = [Candidate("a", "diaspora meets", PUB - timedelta(days=2), "site"),
             Candidate("b", "diaspora meets", PUB + timedelta(hours=1), "site"),
             Candidate("c", "something else entirely", PUB, "site")]
    found = find_near_duplicate("Diaspora meets", PUB, "feed", cands)
    assert found is not None and found.id == "b"
    assert find_near_duplicate("Diaspora meets", PUB + timedelta(days=30), "feed", cands) is None
    # Within one source, another address is another story.
    assert find_near_duplicate("Diaspora meets", PUB, "site", cands) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Diaspora mentors support young entrepreneurs in Lezhë",
         "Diaspora mentors support young entrepreneurs in Shkodër"),
        ("IOM Albania Newsletter, Issue 12", "IOM Albania Newsletter, Issue 13"),
        ("International Migrants Day 2023", "International Migrants Day 2024"),
    ],
)
def test_similar_titles_of_different_stories_are_not_merged(a: str, b: str) -> None:
    from iomfeed.dedup import title_similarity
    from iomfeed.normalize import title_key

    ka, kb = title_key(a), title_key(b)
    assert title_similarity(ka, kb) == title_similarity(kb, ka)
    assert find_near_duplicate(a, PUB, "feed", [Candidate("x", kb, PUB, "site")]) is None
    assert find_near_duplicate(b, PUB, "feed", [Candidate("x", ka, PUB, "site")]) is None


def test_a_higher_ranked_source_takes_over_a_shared_url(store: Store) -> None:
    rank = {"site": 2, "feed": 1}
    first = store.upsert(item(source="feed", content_html="<p>teaser only</p>"), T0, rank=rank)
    better = store.upsert(item(content_html="<p>the full article</p>"), T0, rank=rank)
    assert better.change is Change.UPDATED and better.item_id == first.item_id
    stored = store.get(first.item_id)
    assert stored is not None
    assert (stored.source, stored.content_html) == ("site", "<p>the full article</p>")
    again = store.upsert(item(source="feed", content_html="<p>teaser only</p>"), T0, rank=rank)
    assert again.change is Change.DUPLICATE


def test_an_empty_body_never_replaces_a_stored_one(store: Store) -> None:
    out = store.upsert(item(), T0)
    store.upsert(item(content_html="", title="Diaspora meets (updated)"), T0 + timedelta(days=1))
    stored = store.get(out.item_id)
    assert stored is not None
    assert stored.content_html == "<p>body</p>" and stored.title == "Diaspora meets (updated)"
