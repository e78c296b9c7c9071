"""Seeing what happens: `iomfeed status` (table and JSON), `run --json`, JSON log lines,
and operator alerts (at most once a day per problem, recoveries, digest failures)."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest

from iomfeed.alerts import notify
from iomfeed.cli import JsonFormatter, main
from iomfeed.config import Config, load_config
from iomfeed.delivery.mailers import OutboxMailer
from iomfeed.demo.server import Fault, SnapshotServer
from iomfeed.errors import ConfigError
from iomfeed.health import check
from iomfeed.jsonout import to_json
from iomfeed.models import SourceResult
from iomfeed.runtime import open_runtime
from iomfeed.store import Store

from .conftest import CONFIG_FILE, NOW
from .digestkit import add_items, add_subscribers, digest_config
from .test_cli_snapshot import iomfeed, write_config


def record(store: Store, when_hours: float, ok: bool, error: str = "") -> None:
    started = NOW + timedelta(hours=when_hours)
    store.record_run(started, started, (SourceResult(name="iom-albania", ok=ok, error=error),))


def test_health_counts_failures_in_a_row_and_stuck_digests(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    with Store(config.database_path) as store:
        record(store, 0, True)
        record(store, 1, False, "HTTP 500")
        record(store, 2, False, "HTTP 503")
        health = check(config, store, NOW + timedelta(hours=3))
        (src,) = health.sources
        assert (src.consecutive_failures, src.last_error, src.ok) == (2, "HTTP 503", False)
        assert src.last_success == NOW
        assert health.ok  # 2 < operator.failures = 3
        record(store, 3, False, "HTTP 500")
        assert check(config, store, NOW + timedelta(hours=4)).failing[0].name == "iom-albania"
        add_subscribers(store, 1)
        store.create_digest(created=NOW, since=None, cutoff=NOW, item_ids=[], more=0)
        record(store, 4, True)
        assert check(config, store, NOW + timedelta(hours=5)).ok
        late = check(config, store, NOW + timedelta(hours=25))
        assert not late.ok and late.stuck_digest is not None
        assert to_json(late)["status"] == "failing"


def test_status_and_the_alerts_word_a_problem_the_same(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    with Store(config.database_path) as store:
        for hour in range(3):
            record(store, hour, False, "HTTP 503")
        add_subscribers(store, 1)
        store.create_digest(created=NOW, since=None, cutoff=NOW, item_ids=[], more=0)
        health = check(config, store, NOW + timedelta(hours=25))
    alerts = health.alert_problems()
    assert set(alerts) == {
        "source:iom-albania:failing",
        f"digest:{health.digests[0].record.id}:stuck",
    }
    assert sorted(alerts.values()) == sorted(health.problems())
    assert "source iom-albania failed 3 runs in a row: HTTP 503" in alerts.values()


def test_status_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = tmp_path / "config.toml"
    from .conftest import CONFIG_FILE

    config_path.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    with Store(tmp_path / "iomfeed.db") as store:
        record(store, 0, True)
        add_items(store, range(3), NOW)
        add_subscribers(store, 2)
    assert main(["--config", str(config_path), "status"]) == 0
    out = capsys.readouterr().out
    assert "status: ok" in out and "iom-albania" in out and "store: 3 item(s)" in out
    assert "subscribers: 2 active, 0 unsubscribed, 0 bounced" in out and "next: fetch" in out
    assert main(["--config", str(config_path), "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "ok" and data["items"] == 3
    assert data["sources"][0]["name"] == "iom-albania"
    assert set(data["next"]) == {"fetch", "digest"}


def test_json_log_lines() -> None:
    record_ = logging.LogRecord(
        "iomfeed.x", logging.WARNING, __file__, 1, "a %s line", ("ëë",), None
    )
    line = json.loads(JsonFormatter().format(record_))
    assert line["level"] == "warning" and line["message"] == "a ëë line"
    assert line["logger"] == "iomfeed.x" and line["time"].endswith("+00:00")


def alert_config(tmp_path: Path) -> Config:
    config = digest_config(tmp_path)
    return dataclasses.replace(
        config, operator=dataclasses.replace(config.operator, email="ops@example.org", failures=2)
    )


def outbox_messages(config: Config) -> list[email.message.EmailMessage]:
    out = []
    for path in sorted(config.outbox_path.glob("alert-*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        out.append(msg)
    return out


def test_alerts_once_a_day_then_recovery(tmp_path: Path) -> None:
    config = alert_config(tmp_path)

    def mailer() -> OutboxMailer:
        return OutboxMailer(config.outbox_path)

    with Store(config.database_path) as store:
        record(store, 0, False, "HTTP 500")
        assert notify(config, store, mailer, NOW) == ()  # one failure is not a problem yet
        record(store, 1, False, "HTTP 500")
        sent = notify(config, store, mailer, NOW + timedelta(hours=1))
        assert len(sent) == 1 and "failed 2 runs in a row" in sent[0]
        for h in range(2, 12):  # cron every hour: no repeats the same day
            record(store, h, False, "HTTP 500")
            assert notify(config, store, mailer, NOW + timedelta(hours=h)) == ()
        record(store, 26, False, "HTTP 500")
        assert len(notify(config, store, mailer, NOW + timedelta(hours=26))) == 1  # a day later
        record(store, 27, True)
        assert notify(config, store, mailer, NOW + timedelta(hours=27)) == (
            "source iom-albania works again",
        )
        assert notify(config, store, mailer, NOW + timedelta(hours=28)) == ()
        # Each alert mailed counts for the relay's quotas (the first is a day old: pruned).
        assert store.sent_times(NOW) == [NOW + timedelta(hours=26), NOW + timedelta(hours=27)]
    messages = outbox_messages(config)
    assert len(messages) == 3
    assert str(messages[0]["To"]) == "ops@example.org"
    # (.strip(): Python folds a 70-78 character subject onto its own continuation line.)
    assert str(messages[0]["Subject"]).strip().startswith("[iomfeed] source iom-albania failed")
    assert messages[0]["Auto-Submitted"] == "auto-generated"


def test_digest_failures_are_alerted_once(tmp_path: Path) -> None:
    config = alert_config(tmp_path)
    with Store(config.database_path) as store:
        add_subscribers(store, 2)
        record_ = store.create_digest(created=NOW, since=None, cutoff=NOW, item_ids=[], more=0)
        rows = list(store.deliveries(record_.id))
        store.mark_failed(record_.id, rows[0].subscriber_id, "550 no", NOW, bounce_after=3)
        store.mark_delivered(record_.id, rows[1].subscriber_id, "250 ok", NOW)
        store.finish_digest(record_.id, NOW)
        mailer = lambda: OutboxMailer(config.outbox_path)  # noqa: E731
        sent = notify(config, store, mailer, NOW)
        assert len(sent) == 1 and "failed permanently" in sent[0]
        assert notify(config, store, mailer, NOW + timedelta(days=2)) == ()


def test_a_digest_that_reached_nobody_is_a_failure_in_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator's trial: the relay refused every recipient (the sender's domain), the
    digest was final, and ``status`` said ok with exit 0. Now it says FAILED, exit 1, and
    why; some deliveries failing among many that went through stays an alert only."""
    config = alert_config(tmp_path)
    config_file = tmp_path / "config.toml"  # the shipped one: the same store, for the CLI
    config_file.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    with Store(config.database_path) as store:
        add_subscribers(store, 3)
        refused = store.create_digest(created=NOW, since=None, cutoff=NOW, item_ids=[], more=0)
        for row in list(store.deliveries(refused.id)):
            store.mark_failed(
                refused.id, row.subscriber_id, "550 5.7.1 sender", NOW, bounce_after=3
            )
        store.finish_digest(refused.id, NOW)
        for brief in (False, True):  # what status reads, and what every cron run reads
            health = check(config, store, NOW, brief=brief)
            assert health.undelivered is not None and health.status.value == "failed"
            assert health.ok  # not an alert threshold: /healthz stays 200
        [problem] = check(config, store, NOW).problems()
        assert problem.startswith(f"digest {refused.id} of 2026-11-24 reached nobody: all 3")
    code = main(["--config", str(config_file), "status"])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("status: FAILED") and "reached nobody" in out
    with Store(config.database_path) as store:  # the next is skipped: nobody left, say
        after = NOW + timedelta(hours=12)
        skipped = store.skip_digest(created=after, since=None, note="nobody to send to")
        assert store.digests(limit=1)[0].id == skipped
        assert check(config, store, after, brief=True).undelivered is not None
    with Store(config.database_path) as store:  # the next digest reaches one of them
        later = NOW + timedelta(days=1)
        mixed = store.create_digest(created=later, since=None, cutoff=later, item_ids=[], more=0)
        first, *rest = list(store.deliveries(mixed.id))
        store.mark_delivered(mixed.id, first.subscriber_id, "250 ok", later)
        for row in rest:
            store.mark_failed(
                mixed.id, row.subscriber_id, "550 no such user", later, bounce_after=3
            )
        store.finish_digest(mixed.id, later)
        health = check(config, store, later, brief=True)
        assert health.undelivered is None and health.status.value == "ok"
        assert f"digest:{mixed.id}:failed" in health.alert_problems()


@pytest.mark.network
def test_run_json_report_and_quiet_failure_output(server: SnapshotServer, tmp_path: Path) -> None:
    config = write_config(server, tmp_path)
    ok = iomfeed("--config", str(config), "-q", "run", "--json", cwd=tmp_path)
    assert ok.returncode == 0 and ok.stderr == ""
    report = json.loads(ok.stdout)
    assert report["ok"] and report["sources"][0]["new"] == 48 and report["digest"] is None
    assert "atom.xml" in report["published"]["written"]
    server.add_fault("/news", Fault(status=500, times=100))
    bad = iomfeed("--config", str(config), "-q", "--log-format", "json", "run", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stdout == ""
    lines = [json.loads(line) for line in bad.stderr.splitlines()]
    assert any(line["level"] == "error" and "iom-albania" in line["message"] for line in lines)


def test_progress_only_on_a_terminal() -> None:
    import io

    from iomfeed.progress import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet_pipe = io.StringIO()
    p = Progress("digest messages", 3, stream=quiet_pipe)
    for _ in range(3):
        p.step()
    p.close()
    assert quiet_pipe.getvalue() == ""  # cron, systemd: nothing
    tty = Tty()
    p = Progress("digest messages", 3, stream=tty)
    for _ in range(3):
        p.step()
    p.close()
    assert "digest messages [" in tty.getvalue() and "3/3" in tty.getvalue()
    silenced = Tty()
    p = Progress("x", 3, stream=silenced, enabled=False)  # --quiet
    p.step()
    assert silenced.getvalue() == ""


def test_a_stop_request_ends_fetching_between_items(tmp_path: Path) -> None:
    from iomfeed.ingest import fetch_all

    items = tmp_path / "items.json"
    items.write_text(
        json.dumps(
            [
                {
                    "url": f"https://albania.iom.int/news/n{i}",
                    "title": f"Story {i}",
                    "date_published": "2026-11-20T10:00:00Z",
                }
                for i in range(5)
            ]
        ),
        encoding="utf-8",
    )
    config = digest_config(tmp_path)
    from iomfeed.config import SourceConfig

    config = dataclasses.replace(
        config, sources=(SourceConfig(name="manual", kind="json", path=str(items)),)
    )
    seen: list[int] = []
    with open_runtime(config, clock=lambda: NOW) as rt:
        report = fetch_all(
            config,
            store=rt.store,
            http=rt.http,
            now=rt.clock,
            stop=lambda: len(seen) > 2,
            on_item=lambda: seen.append(1),
        )
        assert rt.store.count() == 2
    assert "stopped early on request" in report.sources[0].warnings


def test_a_stop_request_during_a_polite_pause_ends_the_fetch_as_stopped_not_failed(
    server: SnapshotServer, tmp_path: Path
) -> None:
    """A stop that arrives while the HTTP client waits out http.min_delay ends the fetch at
    once, reports the source as stopped (ok, with a warning), leaves its health as it was
    (a service restart must not reset a failing source's streak), and asks for nothing
    more."""
    import threading
    import time

    from iomfeed.delivery.send import Stop
    from iomfeed.ingest import fetch_all

    from .conftest import local_config

    config = local_config(server.origin, tmp_path, min_delay=30.0)
    stop = Stop()
    timer = threading.Timer(0.5, stop.set)  # robots.txt is asked, then the pause begins
    started = time.monotonic()
    with Store(config.database_path) as store:  # it failed twice before
        record(store, -3, True)
        record(store, -2, False, "HTTP 500")
        record(store, -1, False, "HTTP 500")
    with open_runtime(config, stop=stop) as rt:
        timer.start()
        report = fetch_all(
            config,
            store=rt.store,
            http=rt.http,
            now=lambda: NOW,
            only=("iom-albania",),
            stop=lambda: stop.requested,
        )
    timer.join()
    assert time.monotonic() - started < 10  # not the 30 s pause
    (result,) = report.sources
    assert (result.ok, result.error, result.found) == (True, "", 0)
    assert "stopped early on request" in result.warnings and result.stopped
    assert server.hits("/robots.txt") == 1 and server.hits("/news") == 0
    # A stop is neither a success nor a failure: the streak and the last success stay.
    with Store(config.database_path) as store:
        (src,) = check(config, store, NOW).sources
    assert src.consecutive_failures == 2 and src.last_success == NOW + timedelta(hours=-3)


def test_a_flapping_source_is_mailed_at_most_once_a_day(tmp_path: Path) -> None:
    config = alert_config(tmp_path)

    def mailer() -> OutboxMailer:
        return OutboxMailer(config.outbox_path)

    with Store(config.database_path) as store:
        hour = 0
        mailed: list[str] = []
        for _episode in range(4):  # fail twice, recover, again and again, within a day
            for _ in range(2):
                record(store, hour, False, "HTTP 500")
                mailed += notify(config, store, mailer, NOW + timedelta(hours=hour))
                hour += 1
            record(store, hour, True)
            mailed += notify(config, store, mailer, NOW + timedelta(hours=hour))
            hour += 1
    assert mailed == [mailed[0], "source iom-albania works again"]


def test_a_disabled_source_is_not_failing(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    with Store(config.database_path) as store:
        for h in range(5):
            record(store, h, False, "HTTP 500")
        assert check(config, store, NOW + timedelta(hours=6)).failing
        off = dataclasses.replace(
            config, sources=tuple(dataclasses.replace(s, enabled=False) for s in config.sources)
        )
        health = check(off, store, NOW + timedelta(hours=6))
        assert health.ok and health.sources[0].consecutive_failures == 5


def test_a_digest_failure_alert_is_retried_until_mailed(tmp_path: Path) -> None:
    config = alert_config(tmp_path)
    with Store(config.database_path) as store:
        add_subscribers(store, 1)
        rec = store.create_digest(created=NOW, since=None, cutoff=NOW, item_ids=[], more=0)
        sid = next(store.deliveries(rec.id)).subscriber_id
        store.mark_failed(rec.id, sid, "550 no", NOW, bounce_after=3)
        store.finish_digest(rec.id, NOW)
        config.outbox_path.parent.mkdir(parents=True, exist_ok=True)
        config.outbox_path.write_text("not a folder: the mail cannot go out")
        assert notify(config, store, lambda: OutboxMailer(config.outbox_path), NOW) == ()
        config.outbox_path.unlink()
        sent = notify(
            config, store, lambda: OutboxMailer(config.outbox_path), NOW + timedelta(hours=1)
        )
        assert len(sent) == 1 and "failed permanently" in sent[0]


def test_a_scheduled_job_failing_again_and_again_shows_in_health(tmp_path: Path) -> None:
    from iomfeed.health import record_job

    config = digest_config(tmp_path)
    for _ in range(3):
        with open_runtime(config) as rt:
            record_job(rt.store, "cycle", ConfigError("mail.smtp.password_env: not set"))
    with Store(config.database_path) as store:
        health = check(config, store, NOW)
    assert not health.ok
    assert any("cycle job failed 3 times" in p and "password_env" in p for p in health.problems())
    with open_runtime(config) as rt:
        record_job(rt.store, "cycle", None)
    with Store(config.database_path) as store:
        assert check(config, store, NOW).ok


def test_the_lock_is_taken_on_the_resolved_database_path(tmp_path: Path) -> None:
    from iomfeed.lock import AlreadyRunning, RunLock

    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "iomfeed.db"
    alias = tmp_path / "alias.db"
    alias.symlink_to(real)  # the database named through a symlink...
    (tmp_path / "linked").symlink_to(tmp_path / "data")  # ...or through a linked folder
    with RunLock(real, what="iomfeed run"):
        for other in (
            alias,
            tmp_path / "linked" / "iomfeed.db",
            tmp_path / "linked" / ".." / "data" / "iomfeed.db",
        ):
            with (
                pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}: iomfeed run"),
                RunLock(other),
            ):
                pass
    with RunLock(alias):  # released: any spelling takes it
        pass


def test_the_run_lock_waits_for_its_holder_up_to_a_bound(tmp_path: Path) -> None:
    import threading
    import time

    from iomfeed.lock import AlreadyRunning, RunLock

    database = tmp_path / "iomfeed.db"
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with RunLock(database, what="iomfeed serve's cycle job"):
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(10)
        start = time.monotonic()
        with (
            pytest.raises(
                AlreadyRunning, match=r"cycle job, since [-\d]+ [:\d]+ UTC\); waited 0\.[45]\d* s"
            ),
            RunLock(database, wait=0.4),
        ):
            pass
        assert 0.35 <= time.monotonic() - start < 3
        threading.Timer(0.5, release.set).start()
        with RunLock(database, wait=10):  # the holder lets go after 0.5 s: this one goes on
            assert release.is_set()
    finally:
        release.set()
        holder.join()


def test_a_service_cycle_waits_for_a_run_started_by_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    import iomfeed.scheduler
    from iomfeed.config import SourceConfig
    from iomfeed.lock import RunLock
    from iomfeed.scheduler import Service

    items = tmp_path / "items.json"
    items.write_text(
        json.dumps(
            [
                {
                    "url": "https://albania.iom.int/news/a",
                    "title": "A story",
                    "date_published": "2026-11-20T10:00:00Z",
                }
            ]
        )
    )
    config = dataclasses.replace(
        digest_config(tmp_path),
        sources=(SourceConfig(name="manual", kind="json", path=str(items)),),
    )
    Store(config.database_path).close()
    monkeypatch.setattr(iomfeed.scheduler, "DEFAULT_WAIT", 1.0)
    service = Service(config)
    with RunLock(config.database_path, what="iomfeed publish"):
        service.cycle()  # still held after the wait: skipped, said why
    assert any(
        "cycle skipped: another iomfeed run" in r.getMessage()
        and "iomfeed publish" in r.getMessage()
        for r in caplog.records
    )
    with Store(config.database_path) as store:
        assert store.last_run_id() is None
    release = threading.Event()

    def hand_run() -> None:
        with RunLock(config.database_path, what="iomfeed publish"):
            release.set()
            threading.Event().wait(0.4)

    holder = threading.Thread(target=hand_run)
    holder.start()
    assert release.wait(10)
    service.cycle()  # waits the 0.4 s out, then runs
    holder.join()
    with Store(config.database_path) as store:
        assert store.last_run_id() == 1


def test_a_job_error_that_explains_itself_is_one_log_line_and_a_bug_keeps_its_trace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """serve logged a full traceback, once a minute, for a publish folder that was read-only;
    an error iomfeed words itself is one line now, and only a bug comes with its trace."""
    from iomfeed.errors import PublishError
    from iomfeed.scheduler import Service

    service = Service(digest_config(tmp_path))

    def read_only(rt: object) -> None:
        raise PublishError("feeds/atom.xml: could not be written (Read-only file system)")

    def bug(rt: object) -> None:
        raise KeyError("oops")

    with caplog.at_level(logging.ERROR, logger="iomfeed.scheduler"):
        service._job("cycle", read_only)
        service._job("cycle", bug)
        service._job("cycle", bug)
    first, second, _third = [r for r in caplog.records if r.name == "iomfeed.scheduler"]
    assert first.getMessage() == (
        "the cycle failed: feeds/atom.xml: could not be written (Read-only file system)"
    )
    assert first.exc_info is None
    assert second.exc_info is not None and second.getMessage() == "the cycle failed"
    with Store(service.config.database_path) as store:
        health = check(service.config, store, NOW)
    assert any("cycle job failed 3 times" in p and "KeyError" in p for p in health.problems())


def test_a_cron_run_that_cannot_publish_reports_it_and_status_sees_it(
    server: SnapshotServer, tmp_path: Path
) -> None:
    """An operator's trial put the feeds on a read-only disk: each cron run failed, `run
    --json` printed nothing (the fetch's report lost too), and `status` said ok. Now the
    report is printed with the publish's error, and failed cycles count as serve's do."""
    import shutil

    config_file = write_config(server, tmp_path)
    first = iomfeed("--config", str(config_file), "-q", "run", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    feeds = load_config(config_file).feeds_path
    shutil.rmtree(feeds)
    feeds.write_text("a file where the folder was: nothing can be written under it")
    for _ in range(3):
        bad = iomfeed("--config", str(config_file), "-q", "run", "--json", cwd=tmp_path)
        assert bad.returncode == 1
        report = json.loads(bad.stdout)
        assert not report["ok"] and report["sources"][0]["ok"]  # the fetch is reported
        assert str(feeds) in report["published"]["error"]
        assert "Traceback" not in bad.stderr
    status = iomfeed("--config", str(config_file), "status", "--json", cwd=tmp_path)
    assert status.returncode == 1
    problems = json.loads(status.stdout)["problems"]
    assert any("cycle job failed 3 times" in p and "PublishError" in p for p in problems)
    feeds.unlink()  # mended: the next run publishes, and the streak ends
    assert iomfeed("--config", str(config_file), "-q", "run", cwd=tmp_path).returncode == 0
    assert iomfeed("--config", str(config_file), "status", cwd=tmp_path).returncode == 0
