"""What every cron run reads of its own history does not grow with it: the sources that ever
ran, the first run's start and the recent digests' failed deliveries are each a few index
seeks, however many runs and recipients the store holds. Measured in SQLite's virtual
machine steps (a progress handler), not in seconds, so the comparison is exact."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from iomfeed.config import Config
from iomfeed.health import check
from iomfeed.store import Store

from .conftest import NOW, local_config
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


def add_runs(store: Store, count: int) -> None:
    """``count`` runs a minute apart, each of every source, the last ones failed."""
    start = NOW - timedelta(minutes=count)
    runs = [(n, (start + timedelta(minutes=n)).isoformat(), n >= count - 5) for n in range(count)]
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
