"""The decider alone: what the store holds + what a source saw + the clock -> intents.

No database, no HTTP: stored state is written out as records, as the store would return it.
"""

from __future__ import annotations

import ast
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from iomfeed.config import FilterConfig
from iomfeed.decide import (
    decide_item,
    decide_page,
    entry_updated,
    filtered_out,
    item_hash,
)
from iomfeed.dedup import Candidate
from iomfeed.intents import (
    Duplicate,
    DuplicateOf,
    ForgetMissing,
    KeepValidators,
    MarkBackfilled,
    NewItem,
    RememberMissing,
    SkipFiltered,
    StoredRow,
    StoredState,
    Unchanged,
    UpdateItem,
)
from iomfeed.models import Change, DateSource, Item, MissingArticle
from iomfeed.normalize import title_key
from iomfeed.sources import filter_hash
from iomfeed.sources.records import SourcePage, Validators

from .conftest import ROOT

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PUB = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
URL = "https://albania.iom.int/news/a"
RANK = {"site": 3, "feed": 2, "manual": 1, "other-site": 3}


def seen(**changes: object) -> Item:
    base = Item(
        source="site",
        url=URL,
        title="Diaspora meets in Tirana",
        content_html="<p>The body.</p>",
        published=PUB,
        date_source=DateSource.TIME,
        categories=("Local",),
        language="en",
        listing_hash="l1",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def stored_as(intent: NewItem, item_id: str = "tag:x,2026:a") -> StoredState:
    """What the store holds after applying ``intent``."""
    return StoredState(
        row=StoredRow(
            id=item_id,
            source=intent.item.source,
            published=intent.published,
            date_source=intent.date_source,
            content_hash=intent.content_hash,
            content_html=intent.item.content_html,
            listing_hash=intent.item.listing_hash,
        )
    )


def first(item: Item, now: datetime = NOW) -> NewItem:
    intent = decide_item(item, StoredState(), now=now, rank=RANK)
    assert isinstance(intent, NewItem)
    return intent


# ----------------------------------------------------------------------------- new


def test_an_item_nothing_is_stored_for_is_new_with_its_own_date_and_hash() -> None:
    intent = first(seen())
    assert intent.change is Change.NEW
    assert (intent.published, intent.date_source) == (PUB, DateSource.TIME)
    assert intent.content_hash == item_hash(seen(), PUB) and intent.content_hash.startswith("v1:")
    assert intent.updated == PUB  # no modification time given: its publication time


def test_a_new_item_without_a_date_is_dated_by_when_it_was_first_seen() -> None:
    intent = first(seen(published=None, date_source=None))
    assert (intent.published, intent.date_source) == (NOW, DateSource.FIRST_SEEN)
    assert intent.content_hash == item_hash(seen(), NOW)


def test_a_new_item_is_updated_when_the_source_says_within_published_and_now() -> None:
    assert first(seen(modified=PUB + timedelta(days=1))).updated == PUB + timedelta(days=1)
    assert first(seen(modified=PUB - timedelta(days=5))).updated == PUB
    assert first(seen(modified=NOW + timedelta(days=5))).updated == NOW
    assert entry_updated(PUB, None, NOW) == PUB


# ----------------------------------------------------------------------------- seen again


def test_the_same_item_seen_again_is_unchanged_and_keeps_a_new_listing_fingerprint() -> None:
    state = stored_as(first(seen()))
    again = decide_item(seen(listing_hash="l2"), state, now=NOW + timedelta(hours=1), rank=RANK)
    assert isinstance(again, Unchanged)
    assert (again.item_id, again.listing_hash, again.take_over_from) == ("tag:x,2026:a", "l2", "")
    no_listing = decide_item(seen(listing_hash=""), state, now=NOW, rank=RANK)
    assert isinstance(no_listing, Unchanged) and no_listing.listing_hash == "l1"


def test_changed_content_is_an_update_with_a_new_hash_dated_now() -> None:
    state = stored_as(first(seen()))
    later = NOW + timedelta(days=1)
    edit = decide_item(seen(content_html="<p>Corrected.</p>"), state, now=later, rank=RANK)
    assert isinstance(edit, UpdateItem) and edit.change is Change.UPDATED
    assert edit.item_id == "tag:x,2026:a"
    assert edit.content_hash == item_hash(seen(content_html="<p>Corrected.</p>"), PUB)
    assert edit.content_hash != state.row.content_hash  # type: ignore[union-attr]
    assert edit.updated == later
    redated = decide_item(seen(published=PUB + timedelta(hours=2)), state, now=later, rank=RANK)
    assert isinstance(redated, UpdateItem) and redated.published == PUB + timedelta(hours=2)
    ahead = later + timedelta(
        hours=5
    )  # an edit dated ahead of the clock is not "updated" before it
    future = decide_item(seen(published=ahead), state, now=later, rank=RANK)
    assert isinstance(future, UpdateItem) and future.updated == ahead


def test_an_item_seen_again_without_a_date_keeps_the_stored_one() -> None:
    undated = first(seen(published=None, date_source=None))
    state = stored_as(undated)
    later = NOW + timedelta(days=3)
    again = decide_item(seen(published=None, date_source=None), state, now=later, rank=RANK)
    assert isinstance(again, Unchanged)  # the first-seen date did not move to "later"
    dated_later = decide_item(seen(), state, now=later, rank=RANK)
    assert isinstance(dated_later, UpdateItem)
    assert (dated_later.published, dated_later.date_source) == (PUB, DateSource.TIME)
    assert dated_later.updated == later


def test_a_page_that_suddenly_has_no_body_keeps_the_stored_body() -> None:
    state = stored_as(first(seen()))
    empty = decide_item(seen(content_html=""), state, now=NOW, rank=RANK)
    assert isinstance(empty, Unchanged) and empty.item.content_html == "<p>The body.</p>"
    retitled = decide_item(seen(content_html="", title="New title"), state, now=NOW, rank=RANK)
    assert isinstance(retitled, UpdateItem)
    assert retitled.item.content_html == "<p>The body.</p>"


# ----------------------------------------------------------------------------- duplicates


def test_the_same_url_from_a_lower_or_equal_ranked_source_is_a_duplicate() -> None:
    state = stored_as(first(seen()))
    for source in ("feed", "manual", "other-site"):
        dup = decide_item(seen(source=source, content_html="<p>x</p>"), state, now=NOW, rank=RANK)
        assert isinstance(dup, Duplicate), source
        assert (dup.item_id, dup.why, dup.change) == (
            "tag:x,2026:a",
            DuplicateOf.RANK,
            Change.DUPLICATE,
        )


def test_the_same_url_from_a_higher_ranked_source_takes_the_item_over() -> None:
    state = stored_as(first(seen(source="feed", content_html="<p>teaser</p>")))
    better = decide_item(seen(), state, now=NOW, rank=RANK)
    assert isinstance(better, UpdateItem) and better.take_over_from == "feed"
    assert better.item.source == "site" and better.item.content_html == "<p>The body.</p>"
    same = stored_as(first(seen(source="feed")))
    taken = decide_item(seen(), same, now=NOW, rank=RANK)
    assert isinstance(taken, Unchanged) and taken.take_over_from == "feed"


def test_an_unranked_source_never_takes_over() -> None:
    state = stored_as(first(seen(source="unknown")))
    assert isinstance(decide_item(seen(source="elsewhere"), state, now=NOW, rank={}), Duplicate)


def test_a_url_recorded_as_another_address_is_that_item() -> None:
    dup = decide_item(seen(), StoredState(linked_id="tag:x,2026:b"), now=NOW, rank=RANK)
    assert isinstance(dup, Duplicate)
    assert (dup.item_id, dup.why) == ("tag:x,2026:b", DuplicateOf.ADDRESS)


def candidate(title: str, *, source: str = "feed", published: datetime = PUB) -> Candidate:
    return Candidate("tag:x,2026:feed-a", title_key(title), published, source)


def test_a_near_identical_title_from_another_source_close_in_time_is_a_duplicate() -> None:
    near = StoredState(candidates=(candidate("Diaspora meets in Tirana!"),))
    dup = decide_item(seen(), near, now=NOW, rank=RANK)
    assert isinstance(dup, Duplicate)
    assert (dup.item_id, dup.why) == ("tag:x,2026:feed-a", DuplicateOf.TITLE)


def test_near_titles_are_distinct_stories_from_one_source_far_apart_or_numbered_apart() -> None:
    same_source = StoredState(candidates=(candidate("Diaspora meets in Tirana", source="site"),))
    far = StoredState(
        candidates=(candidate("Diaspora meets in Tirana", published=PUB - timedelta(days=4)),)
    )
    other = StoredState(candidates=(candidate("Diaspora meets in Tirana 2"),))
    for state in (same_source, far, other):
        assert isinstance(decide_item(seen(), state, now=NOW, rank=RANK), NewItem), state


def test_an_undated_item_is_compared_with_candidates_around_now() -> None:
    around_now = StoredState(candidates=(candidate("Diaspora meets in Tirana", published=NOW),))
    undated = seen(published=None, date_source=None)
    assert isinstance(decide_item(undated, around_now, now=NOW, rank=RANK), Duplicate)
    assert isinstance(
        decide_item(seen(), around_now, now=NOW + timedelta(days=9), rank=RANK), NewItem
    )


# ----------------------------------------------------------------------------- filter, page


def test_an_item_the_filter_leaves_out_is_remembered_with_the_filter() -> None:
    cfg = FilterConfig(exclude=("vacancy",))
    item = seen(title="Vacancy: driver", url="https://albania.iom.int/jobs/1")
    assert filtered_out(item, cfg) == SkipFiltered(
        "https://albania.iom.int/jobs/1", "site", "l1", filter_hash(cfg)
    )
    assert filtered_out(seen(), cfg) is None
    only_local = FilterConfig(include=("^local$",))
    assert filtered_out(seen(), only_local) is None  # the category matches
    assert filtered_out(seen(categories=("Global",)), only_local) is not None
    assert filter_hash(cfg) != filter_hash(only_local)


def test_a_page_keeps_its_validators_404s_and_backfill_as_intents() -> None:
    missing = MissingArticle(
        url="https://albania.iom.int/news/gone",
        source="site",
        link="/news/gone",
        title="Gone",
        summary_html="",
        date_text="",
        image_url="",
        listing_hash="l9",
        first_missing=NOW,
        last_try=NOW,
        attempts=1,
        status=404,
        next_try=NOW + timedelta(hours=1),
    )
    page = SourcePage(
        items=(seen(),),
        validators=(Validators(URL, '"e1"', None),),
        missing=(missing,),
        found_again=("https://albania.iom.int/news/back",),
        backfilled=True,
        filter_hash="f1",
    )
    assert decide_page(page, "site") == (
        KeepValidators(URL, '"e1"', None),
        RememberMissing(missing),
        ForgetMissing("https://albania.iom.int/news/back"),
        MarkBackfilled("site", "f1"),
    )
    assert decide_page(SourcePage(items=(seen(),)), "site") == ()


# ----------------------------------------------------------------------------- boundaries


def _imports(path: Path) -> set[str]:
    """Modules a file imports, relative ones resolved within the iomfeed package."""
    package = ".".join(path.relative_to(ROOT / "src").with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = node.module or ""
            name = f"{base}.{module}".rstrip(".") if node.level else module
            found.add(name)
            found.update(f"{name}.{a.name}" for a in node.names)
    return found


def test_the_decider_and_the_sources_do_no_storage_and_the_decider_no_http() -> None:
    pkg = ROOT / "src" / "iomfeed"
    for path in [pkg / "decide.py", pkg / "intents.py", *sorted((pkg / "sources").glob("*.py"))]:
        imported = _imports(path)
        storage = {
            m
            for m in imported
            if m in ("iomfeed.store", "sqlite3") or m.startswith("iomfeed.store.")
        }
        assert not storage, path
    assert not {m for m in _imports(pkg / "decide.py") if m.startswith(("iomfeed.http", "http"))}
    # The check itself sees a relative import of the store.
    assert "iomfeed.store" in _imports(pkg / "ingest.py")
