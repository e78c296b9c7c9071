"""What every cron run reads of its own history does not grow with it: the sources that ever
ran, the first run's start and the recent digests' failed deliveries are each a few index
seeks, however many runs and recipients the store holds. Measured in SQLite's virtual
machine steps (a progress handler), not in seconds, so the comparison is exact. Nor does
the history itself grow for ever: runs older than ``storage.keep_runs_days`` are removed,
and what ``status`` says does not change."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from iomfeed.config import Config
from iomfeed.demo.server import SnapshotServer
from iomfeed.digest.due import next_digest_time
from iomfeed.health import check, source_health
from iomfeed.store import Store

from .conftest import NOW, fetch, local_config
from .digestkit import add_subscribers

SOURCES = ("feed-copy", "iom-albania", "json-notes")


def steps(store: Store, call: Callable[[], object]) -> int:
    """SQLite's virtual machine instructions ``call`` ran on ``store``, in hundreds."""
    count = 0

    def tick() -> int:
        nonlocal count
        count += 1
        return 0

    store.db.set_progress_handler(tick, 100)
    try:
        call()
    finally:
        store.db.set_progress_handler(None, 100)
    return count


def add_runs(store: Store, count: int, every: timedelta = timedelta(minutes=1)) -> None:
    """``count`` runs ``every`` apart up to now, each of every source, the last ones failed."""
    start = NOW - every * count
    runs = [(n, (start + every * n).isoformat(), n >= count - 5) for n in range(count)]
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO runs (id, started, finished, ok) VALUES (?, ?, ?, ?)",
            [(n + 1, at, at, int(not failed)) for n, at, failed in runs],
        )
        db.executemany(
            "INSERT INTO source_runs (run_id, source, ok, pages, not_modified, found, new,"
            " updated, duplicates, filtered, duration, error, warnings)"
            " VALUES (?, ?, ?, 1, 1, 0, 0, 0, 0, 0, 0.1, ?, '[]')",
            [
                (n + 1, source, int(not failed), "HTTP 503" if failed else "")
                for n, _at, failed in runs
                for source in SOURCES
            ],
        )


def config_for(tmp_path: Path) -> Config:
    return local_config("http://127.0.0.1:9", tmp_path)


def test_the_sources_that_ran_and_the_first_run_are_read_alike_at_30000_runs_and_300(
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "small.db") as small, Store(tmp_path / "big.db") as big:
        assert small.run_sources() == [] and small.first_run_started() is None
        add_runs(small, 300)
        add_runs(big, 30_000)
        for store, runs in ((small, 300), (big, 30_000)):
            assert store.run_sources() == sorted(SOURCES)
            assert store.first_run_started() == NOW - timedelta(minutes=runs)
        assert steps(big, big.run_sources) <= steps(small, small.run_sources) + 1
        assert steps(big, big.first_run_started) <= steps(small, small.first_run_started) + 1


def test_the_brief_health_check_does_not_grow_with_runs_or_recipients(tmp_path: Path) -> None:
    """The check every cron run makes for the operator alerts: the same SQL work with 30,000
    runs and a digest to 1,500 recipients as with 300 runs and one to 15, and the same
    alerts (the failing sources, the digest's failed deliveries)."""
    config = config_for(tmp_path)
    found: dict[str, dict[str, str]] = {}
    work: dict[str, int] = {}
    for name, runs, recipients in (("small", 300, 15), ("big", 30_000, 1_500)):
        with Store(tmp_path / f"{name}.db") as store:
            add_runs(store, runs)
            add_subscribers(store, recipients, NOW - timedelta(days=2))
            digest = store.create_digest(
                created=NOW - timedelta(days=1), since=None, cutoff=NOW, item_ids=[], more=0
            )
            with store.transaction() as db:
                db.execute(
                    "UPDATE deliveries SET status = 'sent' WHERE digest_id = ?", (digest.id,)
                )
                db.execute(
                    "UPDATE deliveries SET status = 'failed' WHERE digest_id = ?"
                    " AND subscriber_id IN (SELECT subscriber_id FROM deliveries"
                    " WHERE digest_id = ? ORDER BY subscriber_id LIMIT 3)",
                    (digest.id, digest.id),
                )
                db.execute("UPDATE digests SET status = 'sent' WHERE id = ?", (digest.id,))
            health = check(config, store, NOW, brief=True)
            found[name] = health.alert_problems()
            work[name] = steps(store, functools.partial(check, config, store, NOW, brief=True))
            full = check(config, store, NOW)  # status: every count, as before
            assert full.digests[0].totals == {"sent": recipients - 3, "failed": 3}
            assert health.digests[0].totals == {"failed": 3}
    assert found["big"] == found["small"]
    assert "digest:1:failed" in found["big"] and "3 delivery(ies) failed" in str(found["big"])
    assert "source:iom-albania:failing" in found["big"]
    assert work["big"] <= work["small"] * 1.1 + 5, work


def run_ids(store: Store) -> list[int]:
    return [int(r[0]) for r in store.db.execute("SELECT id FROM runs ORDER BY id")]


def source_run_ids(store: Store) -> set[int]:
    return {int(r[0]) for r in store.db.execute("SELECT DISTINCT run_id FROM source_runs")}


def test_old_runs_go_but_the_first_and_the_newest_stay_and_status_reads_the_same(
    tmp_path: Path,
) -> None:
    """300 daily runs, the last five failed: a prune at 90 days removes the runs before,
    with what each source did in them, but keeps the first run (a digest never sent is due
    counting from it) and the newest 100 (what a source's health reads), so the failures in
    a row, the last success and the digest's due time are what they were."""
    config = config_for(tmp_path)
    with Store(tmp_path / "runs.db") as store:
        add_runs(store, 300, every=timedelta(days=1))
        before = {name: source_health(store, name, enabled=True) for name in SOURCES}
        due = next_digest_time(config, store, NOW, save=False)
        first = store.first_run_started()

        assert store.prune_runs(NOW - timedelta(days=90)) == 199  # runs 2..200
        assert run_ids(store) == [1, *range(201, 301)]
        assert source_run_ids(store) == set(run_ids(store))
        after = {name: source_health(store, name, enabled=True) for name in SOURCES}
        assert after == before
        assert after["iom-albania"].consecutive_failures == 5
        assert store.first_run_started() == first
        assert next_digest_time(config, store, NOW, save=False) == due
        assert store.prune_runs(NOW - timedelta(days=90)) == 0  # nothing more is old

        # Fewer kept: only the age counts. Run n started 301 - n days ago.
        assert store.prune_runs(NOW - timedelta(days=90), keep=10) == 10  # 201..210
        assert run_ids(store) == [1, *range(211, 301)]


def test_a_prune_removes_a_bounded_batch_and_catches_up_over_runs(tmp_path: Path) -> None:
    with Store(tmp_path / "runs.db") as store:
        add_runs(store, 2_500)
        removed = [store.prune_runs(NOW, keep=1, batch=1000) for _ in range(4)]
        assert removed == [1000, 1000, 498, 0]
        assert run_ids(store) == [1, 2_500]
        assert source_run_ids(store) == {1, 2_500}


def test_a_prune_stops_at_the_first_run_not_old_enough(tmp_path: Path) -> None:
    """Ids follow start times, except after the clock was set back: a run that is not old
    is kept even when older ones follow it."""
    with Store(tmp_path / "runs.db") as store:
        add_runs(store, 300, every=timedelta(days=1))
        with store.transaction() as db:
            db.execute("UPDATE runs SET started = ? WHERE id = 50", (NOW.isoformat(),))
        assert store.prune_runs(NOW - timedelta(days=90), keep=1) == 48  # runs 2..49
        assert run_ids(store)[:3] == [1, 50, 51]


def test_a_prune_with_nothing_to_remove_reads_alike_at_30000_runs_and_300(
    tmp_path: Path,
) -> None:
    """What every cron run pays once the history is pruned: the first run, the newest kept
    and the oldest after the first, whatever the history holds."""
    with Store(tmp_path / "small.db") as small, Store(tmp_path / "big.db") as big:
        add_runs(small, 300)
        add_runs(big, 30_000)
        at = NOW - timedelta(days=30)  # every run is younger
        assert small.prune_runs(at) == big.prune_runs(at) == 0
        small_work = steps(small, functools.partial(small.prune_runs, at))
        assert steps(big, functools.partial(big.prune_runs, at)) <= small_work + 1
        assert len(run_ids(big)) == 30_000


@pytest.mark.parametrize(("days", "left"), [(90, 1 + 100), (0, 400)])
def test_a_fetch_prunes_the_history_older_than_storage_keep_runs_days(
    server: SnapshotServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    days: int,
    left: int,
) -> None:
    """399 daily runs before this one: ``keep_runs_days = 90`` keeps the first and the newest
    100 (this run among them) and says so; 0 keeps them all."""
    config = local_config(server.origin, tmp_path)
    config = dataclasses.replace(
        config, storage=dataclasses.replace(config.storage, keep_runs_days=days)
    )
    with Store(config.database_path) as store:
        add_runs(store, 399, every=timedelta(days=1))
    with caplog.at_level(logging.INFO, logger="iomfeed.ingest"):
        report = fetch(config)
    assert report.ok
    with Store(config.database_path) as store:
        ids = run_ids(store)
        assert len(ids) == left
        assert ids[0] == 1 and ids[-1] == 400
        assert source_run_ids(store) == set(ids)
    said = [r.getMessage() for r in caplog.records if "storage.keep_runs_days" in r.getMessage()]
    assert said == (
        ["removed 299 run(s) older than 90 days (storage.keep_runs_days)"] if days else []
    )
