"""The cron cycle with nothing new: it rewrites no file, loads no renderer, parser, mailer or
scheduler, and reads the next digest time from the store; ``status`` and ``items`` load none
of the heavy libraries either."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iomfeed.config import Config
from iomfeed.demo.server import SnapshotServer
from iomfeed.digest import due
from iomfeed.digest.lifecycle import next_digest
from iomfeed.health import next_scheduled
from iomfeed.runtime import open_store
from iomfeed.store import Store

from .conftest import local_config
from .schemakit import database_before
from .test_cli_snapshot import iomfeed, write_config

#: Runs the command in this process, then prints the heavy modules it loaded.
PROBE = (
    "import sys\n"
    "from iomfeed.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "heavy = ('jinja2', 'feedgen', 'bs4', 'soupsieve', 'lxml', 'premailer', 'apscheduler',\n"
    "         'email_validator', 'babel', 'feedparser', 'iomfeed.delivery.mailers',\n"
    "         'iomfeed.digest.steps', 'smtplib',\n"
    "         'iomfeed.output_records')\n"  # built only to publish or to send
    "print(sorted({m.split('.')[0] if not m.startswith('iomfeed') else m\n"
    "              for m in sys.modules if m.startswith(heavy)}), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def probe(config: Path, *command: str, script: str = PROBE) -> tuple[str, str]:
    """What the command loaded (the last line of its standard error) and the rest it said."""
    done = subprocess.run(
        [sys.executable, "-c", script, "--config", str(config), *command],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    *said, loaded = done.stderr.strip().splitlines()
    return loaded, "\n".join(said)


def files(folder: Path) -> dict[Path, tuple[int, int, bytes]]:
    return {
        p: (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.mark.network
def test_a_second_quiet_run_rewrites_nothing_and_loads_nothing_heavy(
    server: SnapshotServer, tmp_path: Path
) -> None:
    config = write_config(server, tmp_path)
    first = iomfeed("--config", str(config), "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert iomfeed("--config", str(config), "run", cwd=tmp_path).returncode == 0
    before = files(tmp_path / "feeds")
    assert len(before) > 3
    for _ in range(2):  # the second quiet run reads what the first one stored
        loaded, said = probe(config, "run")
        assert loaded == "[]", said  # a 304 answer loads no parser; no digest is due
        assert "not modified" in said and "file(s) kept" in said, said
        assert files(tmp_path / "feeds") == before


@pytest.mark.network
def test_a_truncated_file_or_an_output_setting_makes_the_quiet_run_publish(
    server: SnapshotServer, tmp_path: Path
) -> None:
    config = write_config(server, tmp_path)
    assert iomfeed("--config", str(config), "run", cwd=tmp_path).returncode == 0
    feed = tmp_path / "feeds" / "rss.xml"
    good = feed.read_bytes()
    with feed.open("r+b") as out:
        out.truncate(len(good) // 2)
    loaded, said = probe(config, "run")
    assert "feedgen" in loaded and feed.read_bytes() == good, said
    loaded, said = probe(config, "run")
    assert loaded == "[]" and "file(s) kept" in said, said
    text = config.read_text(encoding="utf-8")
    assert "\nmax_items = 50\n" in text
    config.write_text(text.replace("\nmax_items = 50\n", "\nmax_items = 5\n"), encoding="utf-8")
    loaded, said = probe(config, "run")
    assert "feedgen" in loaded and "file(s) written" in said, said
    assert feed.read_bytes().count(b"<item>") == 5


@pytest.mark.network
def test_status_and_items_load_no_heavy_library(server: SnapshotServer, tmp_path: Path) -> None:
    config = write_config(server, tmp_path)
    assert iomfeed("--config", str(config), "run", cwd=tmp_path).returncode == 0
    loaded, said = probe(config, "items", "--limit", "20")
    assert loaded == "[]", said
    loaded, said = probe(config, "status")
    assert loaded == "[]", said  # the next fetch time of '*/30 * * * *' too: quick_next


@pytest.mark.network
def test_a_quiet_run_and_items_leave_the_digest_lifecycle_unloaded(
    server: SnapshotServer, tmp_path: Path
) -> None:
    """The stored states come from ``digest.states``; the lifecycle's decisions load only
    when a digest may be due (no stored next time) or is planned."""
    config = write_config(server, tmp_path)
    assert iomfeed("--config", str(config), "run", cwd=tmp_path).returncode == 0
    script = PROBE.replace("'iomfeed.output_records')", "'iomfeed.digest.lifecycle')")
    assert script != PROBE
    for command in (("run",), ("items", "--limit", "20")):
        loaded, said = probe(config, *command, script=script)
        assert loaded == "[]", said


@pytest.mark.network
def test_status_and_items_load_neither_the_deduplication_nor_hashlib(
    server: SnapshotServer, tmp_path: Path
) -> None:
    """``dedup`` (with ``hashlib`` and ``difflib``) loads where items are fetched or a schema
    step rehashes them, not for every store open."""
    config = write_config(server, tmp_path)
    assert iomfeed("--config", str(config), "run", cwd=tmp_path).returncode == 0
    script = PROBE.replace("'iomfeed.output_records')", "'iomfeed.dedup', 'hashlib')")
    assert script != PROBE
    for command in (("status",), ("items", "--limit", "20")):
        loaded, said = probe(config, *command, script=script)
        assert loaded == "[]", said


def _config(tmp_path: Path, schedule: str) -> Config:
    config = local_config("http://127.0.0.1:9", tmp_path)
    return dataclasses.replace(
        config, schedule=dataclasses.replace(config.schedule, digest=schedule)
    )


def _expected(config: Config, store: Store, now: datetime) -> datetime | None:
    return next_digest(
        schedule=config.schedule.digest,
        timezone=config.site.timezone,
        now=now,
        last=store.last_digest(),
        open_digest=store.open_digest(),
        first_run=store.first_run_started(),
    )


def test_the_stored_next_digest_time_follows_schedule_changes_and_restarts(
    tmp_path: Path,
) -> None:
    weekly = _config(tmp_path, "0 8 * * mon")
    daily = _config(tmp_path, "30 6 * * *")
    now = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)  # a Wednesday
    with open_store(weekly) as store:
        assert due.next_digest_time(weekly, store, now) is None  # never ran
        assert store.setting(due.SETTING) is None
        store.record_run(now - timedelta(hours=1), now - timedelta(hours=1), ())
        first = due.next_digest_time(weekly, store, now)
        assert first == _expected(weekly, store, now)
        assert first == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # Monday 08:00 in Tirana
        assert not due.digest_due(weekly, store, now)
        assert due.digest_due(weekly, store, datetime(2026, 12, 7, 7, 0, tzinfo=UTC))
    with open_store(weekly) as store:  # a restart reads the stored time
        stored = store.setting(due.SETTING)
        assert stored is not None and stored.endswith(
            "|2026-12-07T08:00:00+01:00"
        )  # as the schedule says it
        store.set_setting(due.SETTING, stored.replace("2026-12-07T08", "2026-12-08T08"))
        assert due.next_digest_time(weekly, store, now) == datetime(2026, 12, 8, 7, tzinfo=UTC)
        store.set_setting(due.SETTING, stored)
    with open_store(daily) as store:  # a new schedule: computed again, and stored
        assert due.next_digest_time(daily, store, now) == _expected(daily, store, now)
        assert due.next_digest_time(daily, store, now) == datetime(2026, 12, 2, 5, 30, tzinfo=UTC)
        assert due.digest_due(daily, store, datetime(2026, 12, 2, 5, 30, tzinfo=UTC))
        assert "30 6 * * *|" in (store.setting(due.SETTING) or "")
        # A digest made (here: skipped) moves the mark: the next time is the day after.
        made = datetime(2026, 12, 2, 5, 31, tzinfo=UTC)
        store.skip_digest(created=made, since=None, note="nothing new")
        later = made + timedelta(minutes=1)
        assert due.next_digest_time(daily, store, later) == _expected(daily, store, later)
        assert due.next_digest_time(daily, store, later) == datetime(2026, 12, 3, 5, 30, tzinfo=UTC)
        assert not due.digest_due(daily, store, later)
    with open_store(weekly) as store:  # back to the weekly schedule after a restart
        expected = _expected(weekly, store, now)
        assert expected == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
        assert due.next_digest_time(weekly, store, now) == expected
        # status reads it without writing it
        store.set_setting(due.SETTING, "")
        assert next_scheduled(weekly, store, now)["digest"] == expected
        assert store.setting(due.SETTING) == ""


def test_item_counts_follow_inserts_moves_and_deletes_and_a_migrated_store(
    tmp_path: Path,
) -> None:
    db = database_before(tmp_path / "old.db", "-- issue 13 (cron)")
    row = (
        "INSERT INTO items (id, url, source, title, title_key, summary_html, content_html,"
        " published, published_utc, date_source, updated, first_seen, last_seen, image_url,"
        " image_alt, categories, language, author, content_hash, listing_hash) VALUES"
        " (?, ?, ?, 'T', 't', '', '', '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00Z',"
        " 'time', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z',"
        " '', '', '[]', 'en', '', 'h', 'l')"
    )
    for n, source in enumerate(("a", "a", "b")):
        db.execute(row, (f"i{n}", f"https://x.org/{n}", source))
    db.close()
    with Store(tmp_path / "old.db") as store:  # the step counts what was there
        assert (store.count(), store.count("a"), store.count("b"), store.count("c")) == (3, 2, 1, 0)
        store.db.execute(row, ("i3", "https://x.org/3", "c"))
        store.db.execute("UPDATE items SET source = 'b' WHERE id = 'i0'")
        store.db.execute("UPDATE items SET title = 'Edited' WHERE id = 'i1'")
        assert [store.count(s) for s in ("a", "b", "c")] == [1, 2, 1]
        store.db.execute("DELETE FROM items WHERE source = 'b'")
        assert (store.count(), store.count("a"), store.count("b"), store.count("c")) == (2, 1, 0, 1)
        truth = dict(store.db.execute("SELECT source, count(*) FROM items GROUP BY source"))
        assert {s: store.count(s) for s in truth} == truth


QUICK_EXPRESSIONS = (
    "*/30 * * * *",
    "0 * * * *",
    "15,45 */2 * * *",
    "5/15 6-22 * * *",
    "0 8 * * *",
    "30 2 * * *",  # inside the spring-forward gap of Europe/Tirane and New York
    "30 1 * * *",  # inside the fall-back fold of New York
    "0 0 1 * *",
    "0 12 31 * *",
    "59 23 28-31 2 *",
    "0 8 1 1 *",
    "* * * * *",
    "*/10 * * * * *",
    "0 0 9 * * *",
    "0 8 * * mon",  # a weekday: APScheduler's
    "0 8 * jan *",  # a name: APScheduler's
)


def test_the_quick_next_time_is_the_one_apscheduler_gives() -> None:
    from iomfeed.cron import quick_next, trigger
    from iomfeed.errors import ConfigError

    zones = ("Europe/Tirane", "America/New_York", "Australia/Lord_Howe", "UTC")
    starts = [
        datetime(2026, 3, 29, 0, 0, 0, 250_000, tzinfo=UTC) + timedelta(minutes=37) * k
        for k in range(0, 200, 7)
    ]
    starts += [
        datetime(2026, 10, 25, 0, 0, tzinfo=UTC) + timedelta(minutes=29) * k
        for k in range(0, 150, 5)
    ]
    starts += [
        datetime(2026, 11, 1, 4, 0, tzinfo=UTC) + timedelta(minutes=13) * k for k in range(0, 60, 3)
    ]
    starts += [
        datetime(2026, 2, 27, 23, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    ]
    answered = 0
    for zone in zones:
        for value in QUICK_EXPRESSIONS:
            cron = trigger(value, zone)
            for start in starts:
                quick = quick_next(value, zone, start)
                if quick is None:
                    continue
                answered += 1
                slow = cron.get_next_fire_time(None, start)
                assert quick == slow and quick.isoformat() == slow.isoformat(), (value, zone, start)
    assert answered > len(zones) * len(starts) * 10  # most expressions answered quickly
    assert quick_next("0 8 * * mon", "UTC", starts[0]) is None
    assert quick_next("0 8 * jan *", "UTC", starts[0]) is None
    assert quick_next("61 * * * *", "UTC", starts[0]) is None  # APScheduler says what is wrong
    # A step past its range is refused by APScheduler (and so by `check` and `serve`): the
    # quick path must not accept it either, or a cron run would schedule what serve refuses.
    for value in ("*/90 * * * *", "0 */30 * * *", "0 8-10/5 * * *", "0 8 5/40 * *"):
        assert quick_next(value, "UTC", starts[0]) is None, value
        with pytest.raises(ConfigError):
            trigger(value, "UTC")
    assert quick_next("0 8-10/2 * * *", "UTC", starts[0]) is not None  # within its range


def test_the_records_a_quiet_run_builds_carry_their_own_docstrings() -> None:
    """A dataclass without a docstring is given one made by ``inspect.signature``, about
    65 microseconds a class at every start: the records every command loads have theirs."""
    import importlib

    names = ("config.schema", "health", "intents", "models", "output_records", "store.records")
    for name in names:
        module = importlib.import_module(f"iomfeed.{name}")
        for value in vars(module).values():
            if dataclasses.is_dataclass(value) and value.__module__ == module.__name__:
                assert isinstance(value, type)
                written = value.__dict__.get("__doc__") or ""
                assert written and not written.startswith(f"{value.__name__}("), value


@pytest.mark.network
def test_a_quiet_run_loads_neither_the_decider_nor_the_page_reading_parts(
    server: SnapshotServer, tmp_path: Path
) -> None:
    """A listing that answered 304 brings nothing to decide, parse, date or clean: the
    decider, its intents, the HTML parser and ``normalize``'s date and markup parts stay
    unloaded (``normalize`` imports a part when one of its names is first used), and so does
    the relay's quota: no digest is sending, so the alerts' brief health check needs none."""
    config = write_config(server, tmp_path)
    assert iomfeed("--config", str(config), "run", cwd=tmp_path).returncode == 0
    parts = (
        "'iomfeed.decide', 'iomfeed.intents', 'iomfeed.sources.html_parse',"
        " 'iomfeed.normalize.datetext', 'iomfeed.normalize.markup',"
        " 'iomfeed.delivery.policy', 'iomfeed.delivery.quota')"
    )
    script = PROBE.replace("'iomfeed.output_records')", parts)
    assert script != PROBE
    loaded, said = probe(config, "run", script=script)
    assert loaded == "[]" and "not modified" in said, said
