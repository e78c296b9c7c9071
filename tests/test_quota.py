"""The relay's quotas (mail.hourly_limit, mail.daily_limit): the pure rule, the lifecycle's
answer to a full quota, and a send stopped half-way that goes on in the next window with
an injected clock, nobody getting two."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from iomfeed.delivery.policy import DAY, HOUR, Quota
from iomfeed.digest.lifecycle import Create, DigestState, Resume, Skip, Wait, decide
from iomfeed.models import DigestRecord
from iomfeed.output_records import DigestContent
from iomfeed.pipeline import send_digest
from iomfeed.store import Store

from .conftest import NOW
from .digestkit import add_items, add_subscribers, digest_config
from .schemakit import database_before
from .test_delivery import ScriptedMailer
from .test_digest_lifecycle import content as lifecycle_content
from .test_digest_lifecycle import record as lifecycle_record


def test_no_limit_means_no_count() -> None:
    state = Quota().state(NOW, [NOW] * 10_000)
    assert state.room is None and not state.full and state.frees_at is None


def test_rolling_windows_and_when_a_full_one_frees_up() -> None:
    quota = Quota(hourly=3, daily=5)
    sends = [NOW - timedelta(hours=5), NOW - timedelta(minutes=50), NOW - timedelta(minutes=20)]
    state = quota.state(NOW, sends)
    assert (state.room, state.full, dict(state.used)) == (1, False, {"hour": 2, "day": 3})
    sends.append(NOW - timedelta(minutes=5))  # the hour is full: frees when the 50-min one ages
    state = quota.state(NOW, sends)
    assert state.full and state.frees_at == NOW + timedelta(minutes=10)
    assert "3/3 in the last hour" in state.note() and "10:10:00 UTC" not in state.note()
    assert state.note().endswith((NOW + timedelta(minutes=10)).strftime("%H:%M:%S UTC"))
    # At that instant the oldest of the hour is out: room again.
    assert quota.state(NOW + timedelta(minutes=10), sends).room == 1
    # Both full: the later of the two times.
    sends = [NOW - timedelta(hours=h) for h in (20, 10, 2)] + [
        NOW - timedelta(minutes=m) for m in (30, 1)
    ]
    state = quota.state(NOW, sends)
    assert state.full and state.frees_at == NOW - timedelta(hours=20) + DAY
    # Over the limit (a limit lowered after sends): still the right time, never negative room.
    state = Quota(hourly=1).state(NOW, [NOW - timedelta(minutes=m) for m in (40, 30, 20)])
    assert state.room == 0 and state.frees_at == NOW - timedelta(minutes=20) + HOUR


def record() -> DigestRecord:
    return lifecycle_record(DigestState.SENDING, 4)


def content(entries: int = 3) -> DigestContent:
    return lifecycle_content(entries)


def test_a_full_quota_neither_resumes_nor_makes_a_digest_and_a_skip_still_records() -> None:
    full = Quota(hourly=1).state(NOW, [NOW - timedelta(minutes=1)])
    room = Quota(hourly=2).state(NOW, [NOW - timedelta(minutes=1)])
    args: dict[str, Any] = {"skip_empty": True, "active_subscribers": 5}
    step = decide(open_digest=record(), content=content(), quota=full, **args)
    assert (
        isinstance(step, Wait)
        and step.record == record()
        and step.until == NOW + timedelta(minutes=59)
    )
    assert isinstance(decide(open_digest=record(), content=content(), quota=room, **args), Resume)
    step = decide(open_digest=None, content=content(), quota=full, **args)
    assert isinstance(step, Wait) and step.record is None
    assert isinstance(decide(open_digest=None, content=content(), quota=room, **args), Create)
    assert isinstance(decide(open_digest=None, content=content(0), quota=full, **args), Skip)


def clock_at(when: list[datetime]) -> Callable[[], datetime]:
    return lambda: when[0]


def test_a_send_stopped_by_the_hourly_limit_goes_on_next_window_and_nobody_gets_two(
    tmp_path: Path,
) -> None:
    config = digest_config(tmp_path, mail={"hourly_limit": 3, "daily_limit": 7, "retries": 0})
    now = [NOW]
    mailer = ScriptedMailer()
    with Store(tmp_path / "db.sqlite") as store:
        add_subscribers(store, 8)
        add_items(store, range(3), NOW - timedelta(days=1))
        first = send_digest(config, store=store, mailer=mailer, clock=clock_at(now))
        assert first.status is DigestState.PARTIAL and first.delivery is not None
        assert first.ok and not first.delivery.error and first.delivery.sent == 3
        assert first.delivery.quota_frees_at == NOW + HOUR
        assert "3/3 in the last hour" in first.delivery.quota_note
        digest_id = first.digest_id
        # Nobody charged: the rows left are pending and untried.
        rows = list(store.deliveries(digest_id))
        assert len(rows) == 5 and all(r.status == "pending" and r.attempts == 0 for r in rows)
        # Half an hour on: the quota is still full; the digest waits as it is.
        now[0] = NOW + timedelta(minutes=30)
        waiting = send_digest(config, store=store, mailer=mailer, clock=clock_at(now))
        assert waiting.status is DigestState.PARTIAL and waiting.delivery is None
        assert waiting.digest_id == digest_id and "sending again from" in waiting.note
        assert store.delivery_totals(digest_id) == {"sent": 3, "pending": 5}
        # The next window: three more; then the day's limit (7) holds the last one.
        now[0] = NOW + HOUR
        second = send_digest(config, store=store, mailer=mailer, clock=clock_at(now))
        assert second.delivery is not None and second.delivery.sent == 3
        now[0] = NOW + 2 * HOUR
        third = send_digest(config, store=store, mailer=mailer, clock=clock_at(now))
        assert third.delivery is not None and third.delivery.sent == 1
        assert third.delivery.quota_frees_at == NOW + DAY
        assert store.delivery_totals(digest_id) == {"sent": 7, "pending": 1}
        now[0] = NOW + DAY
        last = send_digest(config, store=store, mailer=mailer, clock=clock_at(now))
        assert last.status is DigestState.SENT and last.delivery is not None
        assert last.delivery.sent == 1
    recipients = [m.recipient for m in mailer.sent]
    assert len(recipients) == 8 and len(set(recipients)) == 8  # everyone once, nobody twice


def test_a_new_digest_is_not_made_while_the_quota_is_full(tmp_path: Path) -> None:
    config = digest_config(tmp_path, mail={"daily_limit": 2})
    with Store(tmp_path / "db.sqlite") as store:
        add_subscribers(store, 2)
        add_items(store, range(3), NOW - timedelta(days=1))
        store.record_sent(NOW - timedelta(hours=3), "confirm")
        store.record_sent(NOW - timedelta(hours=1), "welcome")
        mailer = ScriptedMailer()
        outcome = send_digest(config, store=store, mailer=mailer, clock=lambda: NOW)
        assert outcome.status is DigestState.DUE and outcome.digest_id == 0
        assert store.last_digest() is None and not mailer.sent  # not made: nothing recorded
        later = NOW + timedelta(hours=21)  # the first notice is a day old: room for one
        outcome = send_digest(config, store=store, mailer=mailer, clock=lambda: later)
        assert outcome.status is DigestState.PARTIAL and len(mailer.sent) == 1


def test_the_schema_step_counts_deliveries_as_they_become_sent(tmp_path: Path) -> None:
    db = database_before(tmp_path / "old.db", "issue 12 (quotas)")
    db.close()
    with Store(tmp_path / "old.db") as store:
        add_subscribers(store, 2)
        add_items(store, range(2), NOW - timedelta(days=1))
        made = store.create_digest(
            created=NOW, since=None, cutoff=NOW, item_ids=[i.id for i in store.items()], more=0
        )
        rows = list(store.deliveries(made.id))
        store.mark_delivered(made.id, rows[0].subscriber_id, "250", NOW, reset_failures=False)
        store.mark_delivered(made.id, rows[1].subscriber_id, "250", NOW + timedelta(seconds=5))
        assert store.sent_times(NOW - HOUR) == [NOW, NOW + timedelta(seconds=5)]
        store.prune_sent(NOW + DAY)
        assert store.sent_times(NOW - HOUR) == [NOW + timedelta(seconds=5)]
    raw = sqlite3.connect(tmp_path / "old.db")
    assert raw.execute("SELECT kind FROM mail_sent").fetchall() == [("digest",)]
    raw.close()


@pytest.mark.parametrize("limit", [0, 1])
def test_limits_come_from_the_config(tmp_path: Path, limit: int) -> None:
    config = digest_config(tmp_path, mail={"hourly_limit": limit})
    assert Quota.from_config(config.mail).windows == ((("hour", HOUR, 1),) if limit else ())


def test_sign_up_notices_count_and_wait_for_a_full_quota(tmp_path: Path) -> None:
    from iomfeed.consent import ConsentVia
    from iomfeed.signup import sign_up

    config = digest_config(tmp_path, mail={"hourly_limit": 2})
    mailer = ScriptedMailer()

    def ask(address: str, now: datetime) -> str:
        done = sign_up(
            store,
            config,
            mailer,
            address=address,
            name="",
            language="en",
            categories=(),
            via=ConsentVia.WEB_FORM,
            now=now,
        )
        return done.mail_error

    with Store(tmp_path / "db.sqlite") as store:
        assert ask("ana@example.org", NOW) == "" and ask("ben@example.org", NOW) == ""
        assert [t.isoformat() for t in store.sent_times(NOW - HOUR)] == [NOW.isoformat()] * 2
        held = ask("cleo@example.org", NOW + timedelta(minutes=10))
        assert "sending quota reached (2/2 in the last hour)" in held
        assert len(mailer.sent) == 2  # not sent, not queued
        assert ask("cleo@example.org", NOW + HOUR) == ""  # asked again in the next window
        assert len(mailer.sent) == 3


def test_a_digest_the_quota_holds_is_waiting_not_stuck(tmp_path: Path) -> None:
    from iomfeed.health import check

    config = digest_config(tmp_path, mail={"daily_limit": 1})
    with Store(tmp_path / "db.sqlite") as store:
        add_subscribers(store, 2)
        add_items(store, range(2), NOW - timedelta(days=1))
        send_digest(config, store=store, mailer=ScriptedMailer(), clock=lambda: NOW)
        later = NOW + timedelta(hours=config.operator.stuck_hours + 1)
        store.record_sent(later - timedelta(minutes=5), "confirm")  # a full day again
        for brief in (False, True):  # status's check, and the alerts' on every run
            health = check(config, store, later, brief=brief)
            assert health.quota is not None and health.quota.full
            assert health.stuck_digest is None
            # Room again, and no progress: stuck.
            assert check(config, store, later + DAY, brief=brief).stuck_digest is not None
        # Sending, but not for long: the brief check leaves the quota unread.
        assert check(config, store, NOW, brief=True).quota is None
        assert check(config, store, NOW).quota is not None


@pytest.mark.network
def test_healthz_says_when_a_full_quota_frees_up(tmp_path: Path) -> None:
    import json
    import threading
    from wsgiref.simple_server import make_server

    from iomfeed.web import App

    from .test_web import _Quiet, request

    config = digest_config(tmp_path, mail={"hourly_limit": 1})
    with Store(config.database_path) as store:
        store.record_sent(NOW - timedelta(minutes=15), "confirm")
    server = make_server("127.0.0.1", 0, App(config, now=lambda: NOW), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code, _headers, body = request(f"http://127.0.0.1:{server.server_port}", "GET", "/healthz")
    finally:
        server.shutdown()
        server.server_close()
    quota = json.loads(body)["quota"]
    assert code == 200  # a full quota is not a health problem
    assert quota == {
        "limits": {"hour": 1},
        "used": {"hour": 1},
        "room": 0,
        "full": True,
        "frees_at": (NOW + timedelta(minutes=45)).isoformat(),
    }


def test_the_gate_sees_what_another_process_sent_even_with_much_room(tmp_path: Path) -> None:
    from iomfeed.delivery.quota import RECHECK_EVERY, QuotaGate

    config = digest_config(tmp_path, mail={"hourly_limit": 100})
    now = [NOW]
    with Store(tmp_path / "db.sqlite") as store:
        gate = QuotaGate(config, store, lambda: now[0])
        assert gate.allows() and gate.state.room == 100
        for _ in range(100):  # the web server's notices, meanwhile
            store.record_sent(NOW, "confirm")
        assert gate.allows()  # counted room left: not asked again yet
        now[0] = NOW + RECHECK_EVERY
        assert not gate.allows()  # read again: the hour's 100 are spent
        assert gate.state.full


def test_the_gate_reads_the_store_only_when_the_caller_was_told_so(tmp_path: Path) -> None:
    # The send asks reads_store() and, when it says yes, commits the 'sent' it holds
    # before allows() reads the count; the recheck time passing between the two calls must
    # not make allows() read a count that misses that message.
    from iomfeed.delivery.quota import RECHECK_EVERY, QuotaGate

    config = digest_config(tmp_path, mail={"hourly_limit": 100})
    now = [NOW]
    with Store(tmp_path / "db.sqlite") as store:
        gate = QuotaGate(config, store, lambda: now[0])
        for _ in range(100):
            store.record_sent(NOW, "confirm")
        assert not gate.reads_store()
        now[0] = NOW + RECHECK_EVERY  # between the two calls
        assert gate.allows(read=False) and gate.state.room == 100  # as told: not read
        assert gate.reads_store()
        assert not gate.allows(read=True)  # read now
        assert gate.state.full
