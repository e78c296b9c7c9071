"""The SQLite store: identity minted once, edits bump updated, duplicates stored once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iomfeed.dedup import Candidate, find_near_duplicate
from iomfeed.errors import StoreError
from iomfeed.ingest import upsert
from iomfeed.models import Change, DateSource, Item, SourceResult
from iomfeed.store import MIGRATIONS, Store

from .schemakit import database_before, step_of

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PUB = datetime(2021, 6, 14, 12, 0, tzinfo=UTC)


def item(**kw: object) -> Item:
    values: dict[str, object] = {
        "source": "site",
        "url": "https://albania.iom.int/news/a",
        "title": "Diaspora meets",
        "summary_html": "<p>s</p>",
        "content_html": "<p>body</p>",
        "published": PUB,
        "date_source": DateSource.TIME,
        "categories": ("Local",),
        "language": "en",
        "listing_hash": "h1",
    }
    values.update(kw)
    return Item(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "db" / "iomfeed.db", tag_authority="feeds.example.org")
    yield s
    s.close()


def test_new_item_gets_a_tag_id_that_never_changes(store: Store) -> None:
    out = upsert(store, item(), T0)
    assert out.change is Change.NEW
    assert out.item_id == "tag:feeds.example.org,2026-11-01:albania.iom.int/news/a"
    edited = upsert(store, item(content_html="<p>body, corrected</p>"), T0 + timedelta(days=3))
    assert edited == type(out)(Change.UPDATED, out.item_id)
    stored = store.get(out.item_id)
    assert stored is not None
    assert stored.content_html == "<p>body, corrected</p>"
    assert stored.updated == T0 + timedelta(days=3)
    assert stored.first_seen == T0
    assert stored.published == PUB


def test_an_entry_is_updated_when_the_source_says_until_a_change_is_seen(store: Store) -> None:
    modified = PUB + timedelta(days=2)
    out = upsert(store, item(modified=modified), T0)  # first seen years after publication
    stored = store.get(out.item_id)
    assert stored is not None and stored.updated == modified and stored.first_seen == T0
    upsert(store, item(modified=modified + timedelta(days=1)), T0 + timedelta(days=1))
    assert (store.get(out.item_id) or stored).updated == modified  # nothing changed
    upsert(store, item(content_html="<p>new</p>", modified=modified), T0 + timedelta(days=2))
    assert (store.get(out.item_id) or stored).updated == T0 + timedelta(days=2)
    # No modification time: the publication time; a silly one is bounded by both ends.
    for n, (mod, want) in enumerate(
        [(None, PUB), (PUB - timedelta(days=9), PUB), (T0 + timedelta(days=400), T0)]
    ):
        got = upsert(
            store,
            item(
                url=f"https://albania.iom.int/news/b{n}",
                title=f"Other {n}",
                published=PUB + timedelta(days=30 * n + 30),
                modified=mod,
            ),
            T0,
        )
        entry = store.get(got.item_id)
        assert entry is not None
        assert entry.updated == max(want, entry.published), n


def test_stored_entries_get_the_source_time_on_migration(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = database_before(path, "issue 9 (feeds)")
    seen, changed = "2026-11-01T08:00:00Z", "2026-11-04T08:00:00Z"
    rows = [  # (name, published, published_utc, updated as stamped before, history)
        ("old", "2016-03-01T10:00:00+01:00", "2016-03-01T09:00:00Z", seen, [seen]),
        ("edited", "2021-06-14T14:00:00+02:00", "2021-06-14T12:00:00Z", changed, [seen, changed]),
        (
            "ahead",
            "2027-01-01T00:00:00+00:00",
            "2027-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
            [seen],
        ),
    ]
    for name, published, published_utc, updated, history in rows:
        db.execute(
            "INSERT INTO items (id, url, source, title, title_key, summary_html, content_html,"
            " published, published_utc, date_source, updated, first_seen, last_seen,"
            " image_url, image_alt, categories, language, author, content_hash, listing_hash)"
            " VALUES (?, ?, 's', ?, ?, '', '', ?, ?, 'time', ?, ?, ?, '', '', '[]', 'en', '',"
            " ?, '')",
            (
                name,
                f"https://x.example/{name}",
                name,
                name,
                published,
                published_utc,
                updated,
                seen,
                history[-1],
                f"h{len(history)}",
            ),
        )
        for n, stamp in enumerate(history):
            db.execute(
                "INSERT INTO item_history (item_id, content_hash, seen) VALUES (?, ?, ?)",
                (name, f"h{n + 1}", stamp),
            )
    db.close()
    with Store(path) as s:
        assert s.schema_version == len(MIGRATIONS)
        got = {name: (s.get(name) or pytest.fail(name)).updated.isoformat() for name, *_ in rows}
    assert got == {
        "old": "2016-03-01T09:00:00+00:00",
        "edited": "2026-11-04T08:00:00+00:00",
        "ahead": "2027-01-01T00:00:00+00:00",
    }


def test_storing_the_same_item_again_changes_nothing_but_last_seen(store: Store) -> None:
    first = upsert(store, item(), T0)
    before = store.get(first.item_id)
    again = upsert(store, item(), T0 + timedelta(hours=1))
    after = store.get(first.item_id)
    assert again.change is Change.UNCHANGED
    assert before is not None and after is not None
    assert after.content_hash == before.content_hash and after.updated == before.updated
    assert after.last_seen == T0 + timedelta(hours=1)


def test_an_item_without_a_date_keeps_its_first_seen_date(store: Store) -> None:
    out = upsert(store, item(published=None, date_source=None), T0)
    later = upsert(
        store,
        item(published=None, date_source=None, content_html="<p>x</p>"),
        T0 + timedelta(days=10),
    )
    stored = store.get(out.item_id)
    assert later.change is Change.UPDATED
    assert stored is not None
    assert stored.published == T0 and stored.date_source is DateSource.FIRST_SEEN


def test_a_near_duplicate_from_another_source_is_linked_not_stored(store: Store) -> None:
    original = upsert(store, item(), T0)
    twin = upsert(
        store,
        item(
            source="global-feed",
            url="https://www.iom.int/news/diaspora-meets",
            title="Diaspora Meets!",
            published=PUB + timedelta(days=1),
        ),
        T0,
    )
    assert twin.change is Change.DUPLICATE and twin.item_id == original.item_id
    assert store.count() == 1
    assert store.links(original.item_id) == [
        ("https://www.iom.int/news/diaspora-meets", "global-feed", "title")
    ]
    # Seen again: recognised by its recorded address at once.
    assert (
        upsert(
            store,
            item(
                source="global-feed",
                url="https://www.iom.int/news/diaspora-meets",
                title="Changed title",
            ),
            T0,
        ).change
        is Change.DUPLICATE
    )


def test_the_same_title_a_year_later_is_a_different_story(store: Store) -> None:
    upsert(store, item(title="International Day of Family Remittances (IDFR)"), T0)
    out = upsert(
        store,
        item(
            url="https://albania.iom.int/news/idfr-0",
            title="International Day of Family Remittances (IDFR)",
            published=PUB + timedelta(days=365),
        ),
        T0,
    )
    assert out.change is Change.NEW
    assert store.count() == 2


def test_the_same_url_from_another_source_does_not_overwrite(store: Store) -> None:
    out = upsert(store, item(), T0)
    dup = upsert(store, item(source="feed", content_html="<p>feed version</p>"), T0)
    assert dup.change is Change.DUPLICATE
    stored = store.get(out.item_id)
    assert stored is not None and stored.content_html == "<p>body</p>"


def test_items_are_listed_newest_first(store: Store) -> None:
    for n in range(5):
        upsert(
            store,
            item(
                url=f"https://albania.iom.int/news/{n}",
                title=f"Story number {n}",
                published=PUB + timedelta(days=10 * n),
            ),
            T0,
        )
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
    results = (
        SourceResult("a", True, pages=3, not_modified=1, found=10, new=2, duration=1.5),
        SourceResult("b", False, error="HTTP 500", warnings=("w",)),
    )
    run_id = store.record_run(T0, T0 + timedelta(seconds=5), results)
    assert store.last_run_id() == run_id
    assert store.source_runs(run_id) == list(results)


def test_validators_round_trip(store: Store) -> None:
    store.save_validators("https://x/a", '"e1"', "Mon, 01 Jan 2024 00:00:00 GMT", T0)
    assert store.get_validators("https://x/a") == ('"e1"', "Mon, 01 Jan 2024 00:00:00 GMT")
    store.save_validators("https://x/a", None, None, T0)
    assert store.get_validators("https://x/a") == (None, None)


def test_near_duplicate_matching_is_pure_and_picks_the_closest() -> None:
    cands = [
        Candidate("a", "diaspora meets", PUB - timedelta(days=2), "site"),
        Candidate("b", "diaspora meets", PUB + timedelta(hours=1), "site"),
        Candidate("c", "something else entirely", PUB, "site"),
    ]
    found = find_near_duplicate("Diaspora meets", PUB, "feed", cands)
    assert found is not None and found.id == "b"
    assert find_near_duplicate("Diaspora meets", PUB + timedelta(days=30), "feed", cands) is None
    # Within one source, another address is another story.
    assert find_near_duplicate("Diaspora meets", PUB, "site", cands) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "Diaspora mentors support young entrepreneurs in Lezhë",
            "Diaspora mentors support young entrepreneurs in Shkodër",
        ),
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


_LETTERS = st.text(alphabet="abcde 12", min_size=0, max_size=40)


@settings(max_examples=400, deadline=None)
@given(_LETTERS, st.lists(st.tuples(st.integers(0, 40), _LETTERS), max_size=4))
def test_titles_alike_enough_are_always_within_each_others_lengths(
    a: str, edits: list[tuple[int, str]]
) -> None:
    """The length bound the store and the matcher leave candidates out by never leaves out
    one the similarity would have matched: ``b`` is ``a`` with a few pieces put in or cut."""
    from iomfeed.dedup import NEAR_DUPLICATE_RATIO, title_lengths, title_similarity

    b = a
    for at, piece in edits:
        b = b[:at] + piece[: len(piece) // 4] + b[at + len(piece) // 8 :]
    for x, y in ((a, b), (b, a)):
        shortest, longest = title_lengths(x)
        if title_similarity(x, y) >= NEAR_DUPLICATE_RATIO:
            assert shortest <= len(y) <= longest, (x, y)
    n = len(a)
    assert title_lengths(a)[0] <= n <= title_lengths(a)[1]


def test_a_title_of_a_length_too_far_off_is_not_compared() -> None:
    from iomfeed.dedup import title_lengths

    key = "diaspora mentors support young entrepreneurs in lezhe"
    shortest, longest = title_lengths(key)
    # 53 characters: 46 and 62 are the last lengths that can reach 0.92 (2 x 46 / 99,
    # 2 x 53 / 115); one more is kept at each end, against rounding.
    assert (shortest, longest) == (45, 63)
    far = Candidate("x", key + " and in shkoder too", PUB, "site")
    near = Candidate("y", key + "s", PUB, "site")
    assert find_near_duplicate(key, PUB, "feed", [far]) is None
    found = find_near_duplicate(key, PUB, "feed", [far, near])
    assert found is not None and found.id == "y"


def test_a_higher_ranked_source_takes_over_a_shared_url(store: Store) -> None:
    rank = {"site": 2, "feed": 1}
    first = upsert(store, item(source="feed", content_html="<p>teaser only</p>"), T0, rank=rank)
    better = upsert(store, item(content_html="<p>the full article</p>"), T0, rank=rank)
    assert better.change is Change.UPDATED and better.item_id == first.item_id
    stored = store.get(first.item_id)
    assert stored is not None
    assert (stored.source, stored.content_html) == ("site", "<p>the full article</p>")
    again = upsert(store, item(source="feed", content_html="<p>teaser only</p>"), T0, rank=rank)
    assert again.change is Change.DUPLICATE


def test_an_empty_body_never_replaces_a_stored_one(store: Store) -> None:
    out = upsert(store, item(), T0)
    upsert(store, item(content_html="", title="Diaspora meets (updated)"), T0 + timedelta(days=1))
    stored = store.get(out.item_id)
    assert stored is not None
    assert stored.content_html == "<p>body</p>" and stored.title == "Diaspora meets (updated)"


def test_every_database_error_leaves_the_store_as_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    with Store(path) as store:
        store.db.execute("DROP TABLE alerts")
        with pytest.raises(StoreError, match=rf"cannot use the database {path}.*no such table"):
            store.active_alerts()
        store.db.execute("DROP TABLE deliveries")
        rows = store.deliveries(1)  # a method that streams rows fails when it is read
        with pytest.raises(StoreError, match=r"no such table: deliveries"):
            next(iter(rows))


def test_no_public_store_method_lets_a_sqlite_error_through() -> None:
    import inspect

    from iomfeed.store.base import StoreBase

    unwrapped = [
        name
        for name, attr in inspect.getmembers(Store, inspect.isfunction)
        if not name.startswith("_")
        and name not in vars(StoreBase)  # plumbing: close, transaction
        and not hasattr(attr, "__wrapped__")
    ]
    assert unwrapped == []


def test_a_transaction_that_cannot_begin_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    store = Store(path)
    store.db.execute("PRAGMA busy_timeout = 0")  # instead of waiting 30 s for the other writer
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with (
            pytest.raises(StoreError, match=rf"cannot use the database {path}.*locked"),
            store.transaction(),
        ):
            pass
    finally:
        other.execute("ROLLBACK")
        other.close()
        store.close()


def test_a_commit_that_fails_is_a_store_error_and_keeps_nothing(tmp_path: Path) -> None:
    path = tmp_path / "commit.db"
    with Store(path) as store:
        store.db.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
        store.db.execute(
            "CREATE TABLE c (pid INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)"
        )
        with pytest.raises(StoreError, match="FOREIGN KEY"), store.transaction() as db:
            db.execute("INSERT INTO c VALUES (5)")  # no parent: refused only at COMMIT
        assert store.db.execute("SELECT count(*) FROM c").fetchone()[0] == 0
        assert not store.db.in_transaction


def _database_before_the_languages_step(path: Path) -> sqlite3.Connection:
    db = database_before(path, "issue 10 (languages)")
    db.execute(
        "INSERT INTO subscribers (id, address, name, language, status, subscribed) VALUES"
        " (1, 'a@example.org', 'A', 'sq', 'active', '2026-01-01T00:00:00Z'),"
        " (2, 'b@example.org', 'B', 'en', 'active', '2026-01-01T00:00:00Z')"
    )
    db.execute(
        "INSERT INTO digests (id, created, cutoff, status, items, more)"
        " VALUES (1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'sent', 0, 0)"
    )
    db.execute(
        "INSERT INTO deliveries (digest_id, subscriber_id, status, updated) VALUES"
        " (1, 1, 'sent', '2026-01-01T00:00:00Z'), (1, 2, 'sent', '2026-01-01T00:00:00Z')"
    )
    return db


def test_rows_a_hand_edit_orphaned_before_do_not_stop_the_rebuild(tmp_path: Path) -> None:
    """Someone erased a subscriber in the sqlite3 shell (foreign keys off there): the
    languages step still runs, and leaves those rows as they were."""
    path = tmp_path / "orphans.db"
    db = _database_before_the_languages_step(path)
    db.execute("DELETE FROM subscribers WHERE id = 2")
    db.close()
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 2
        store.db.execute(
            "INSERT INTO subscribers (address, name, language, status, subscribed)"
            " VALUES ('c@example.org', '', 'it', 'active', '2026-02-01T00:00:00Z')"
        )


def test_a_rebuild_that_would_break_a_foreign_key_changes_nothing(tmp_path: Path) -> None:
    from iomfeed.store import schema

    path = tmp_path / "breaks.db"
    _database_before_the_languages_step(path).close()
    step = step_of("issue 10 (languages)")
    broken = MIGRATIONS[step].replace(
        "        FROM subscribers;", "        FROM subscribers WHERE id = 1;"
    )
    assert broken != MIGRATIONS[step]
    patched = (*MIGRATIONS[:step], broken)
    original = schema.MIGRATIONS
    schema.MIGRATIONS = patched
    try:
        with pytest.raises(StoreError, match=r"would break foreign keys.*'deliveries'"):
            Store(path)
    finally:
        schema.MIGRATIONS = original
    db = sqlite3.connect(str(path))
    assert db.execute("PRAGMA user_version").fetchone()[0] == step
    assert db.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 2
    db.close()


def test_queued_sign_ups_are_claimed_once_and_taken_over_from_a_dead_worker(
    tmp_path: Path,
) -> None:
    lease = timedelta(minutes=5)
    with Store(tmp_path / "db.sqlite") as store:
        for n, address in enumerate(("a@example.org", "b@example.org")):
            assert store.queue_sign_up(
                address=address, name="", language="en", categories=("Local",), ip="",
                now=T0, limit=2,
            )  # fmt: skip
            assert store.queued_sign_ups() == n + 1
        assert not store.queue_sign_up(
            address="c@example.org", name="", language="en", categories=(), ip="", now=T0,
            limit=2,
        )  # fmt: skip
        first = store.claim_sign_up(T0, lease, worker="h:1")
        second = store.claim_sign_up(T0, lease, worker="h:2")
        assert first is not None and second is not None
        assert (first.address, first.categories, second.address) == (
            "a@example.org", ("Local",), "b@example.org",
        )  # fmt: skip
        assert store.claim_sign_up(T0, lease, worker="h:3") is None  # both are in hand
        assert sorted(store.sign_up_claimers()) == ["h:1", "h:2"]
        # Worker 1 is gone: its sign-up is taken over at once; worker 2's after the lease.
        again = store.claim_sign_up(T0, lease, worker="h:3", dead=["h:1"])
        assert again is not None and again.id == first.id
        store.finish_sign_up(first.id)  # done
        assert store.queued_sign_ups() == 1
        assert store.claim_sign_up(T0 + timedelta(minutes=4), lease, worker="h:3") is None
        late = store.claim_sign_up(T0 + timedelta(minutes=6), lease, worker="h:3")
        assert late is not None and late.id == second.id
        # Forgotten on request while worker 3 has it: erased at once and marked, so that the
        # worker erases what it adds; one nobody has is deleted.
        assert store.queue_sign_up(
            address="b@example.org", name="B", language="en", categories=(), ip="",
            now=T0, limit=5,
        )  # fmt: skip
        assert store.drop_queued_sign_ups("B@example.org") == 2
        assert store.queued_sign_ups() == 1 and store.sign_up_forgotten(late.id)
        row = store.db.execute("SELECT address, name FROM signup_queue").fetchone()
        assert tuple(row) == ("", "")
        assert store.finish_sign_up(late.id)  # True: it was forgotten meanwhile
        assert store.queued_sign_ups() == 0 and not store.finish_sign_up(late.id)
        # A forgotten one whose worker died is cleared by the next claim, not taken up.
        assert store.queue_sign_up(
            address="c@example.org", name="", language="en", categories=(), ip="",
            now=T0, limit=5,
        )  # fmt: skip
        third = store.claim_sign_up(T0, lease, worker="h:4")
        assert third is not None and store.drop_queued_sign_ups("c@example.org") == 1
        assert store.claim_sign_up(T0, lease, worker="h:5", dead=["h:4"]) is None
        assert store.queued_sign_ups() == 0
