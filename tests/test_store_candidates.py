"""Near-duplicate candidates: only other sources', found through an index, and an undated
item not compared with every item that was first seen when it was."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iomfeed.ingest import upsert
from iomfeed.models import Change, Item
from iomfeed.store import Store

from .test_store import item as stored_item

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PUBLISHED = datetime(2021, 6, 14, 12, 0, tzinfo=UTC)


def item(n: int, **kw: object) -> Item:
    """The store tests' item, numbered: its own address and title."""
    values: dict[str, object] = {
        "url": f"https://albania.iom.int/news/{n}",
        "title": f"Diaspora meets in Tirana, part {n}",
    }
    values.update(kw)
    return stored_item(**values)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "iomfeed.db", tag_authority="feeds.example.org")
    yield s
    s.close()


def test_candidates_come_only_from_the_other_sources(store: Store) -> None:
    for n in range(5):
        upsert(store, item(n), T0)
    upsert(store, item(9, source="feed", url="https://www.iom.int/9"), T0)
    same = store.stored_state(item(7), T0)
    assert [c.source for c in same.candidates] == ["feed"]
    other = store.stored_state(item(7, source="feed", url="https://www.iom.int/7"), T0)
    assert sorted(c.id for c in other.candidates) == sorted(
        i.id for i in store.items(source="site")
    )


def test_an_undated_item_meets_the_dated_items_around_now_and_its_undated_namesakes(
    store: Store,
) -> None:
    undated = {"published": None, "date_source": None}
    for n in range(20):  # a backfill's undated articles: all first seen at T0
        upsert(store, item(n, **undated), T0)
    upsert(store, item(30, published=T0 - timedelta(days=1)), T0)
    upsert(store, item(31, published=T0 - timedelta(days=5)), T0)
    state = store.stored_state(item(3, source="feed", url="https://www.iom.int/3", **undated), T0)
    titles = sorted(store.get(c.id).title for c in state.candidates)  # type: ignore[union-attr]
    assert titles == ["Diaspora meets in Tirana, part 3", "Diaspora meets in Tirana, part 30"]
    # ... and so the same story, undated in both sources, is still a duplicate.
    twin = upsert(store, item(3, source="feed", url="https://www.iom.int/3", **undated), T0)
    assert twin.change is Change.DUPLICATE
    # A dated item is compared with everything of the other sources near its date.
    week_ago = item(40, source="feed", url="https://www.iom.int/40", published=T0 - timedelta(6))
    assert [c.published for c in store.stored_state(week_ago, T0).candidates] == [
        T0 - timedelta(days=5)
    ]
    near_now = item(41, source="feed", url="https://www.iom.int/41", published=T0)
    assert len(store.stored_state(near_now, T0).candidates) == 21


def test_every_candidate_query_searches_an_index(store: Store) -> None:
    traced: list[str] = []
    store.db.set_trace_callback(traced.append)
    store.stored_state(item(1), T0)
    store.stored_state(item(2, published=None, date_source=None), T0)
    store.db.set_trace_callback(None)
    queries = [q for q in traced if "title_key, published, source FROM items" in q]
    assert len(queries) == 3
    for query in queries:
        plan = " ".join(row[3] for row in store.db.execute(f"EXPLAIN QUERY PLAN {query}"))
        assert "SCAN items" not in plan and "USING INDEX items_" in plan, plan


def test_a_title_too_long_or_too_short_to_be_alike_is_no_candidate(store: Store) -> None:
    """The query leaves out titles whose length alone puts them below the ratio
    (``dedup.title_lengths``): for a dated item, and for an undated one (matched with the
    dated items around now)."""
    short = "Diaspora meets in Tirana, part 5"
    titles = [short, short + " and the mayor opened a help desk", "Diaspora meets", short + "!"]
    for n, title in enumerate(titles):
        for at in (PUBLISHED, T0):
            url = f"https://www.iom.int/{n}/{at:%Y}"
            upsert(store, item(n, source="feed", url=url, title=title, published=at), T0)
    for published in (PUBLISHED, None):  # (the item's own date is PUBLISHED)
        dated = {} if published else {"published": None, "date_source": None}
        query = item(20, title=short, **dated)
        state = store.stored_state(query, T0)
        found = sorted(store.get(c.id).title for c in state.candidates)  # type: ignore[union-attr]
        assert found == [short, short + "!"], published
