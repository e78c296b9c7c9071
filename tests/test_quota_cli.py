"""Quotas across processes and a restart: real SQLite file, `iomfeed` in subprocesses,
aiosmtpd as the relay. What one process sent counts for the next."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .smtp import smtp_server
from .test_digest_crash import prepare, write_config

pytestmark = pytest.mark.network

LIMIT = 5


def iomfeed(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iomfeed", "--config", str(config), *args],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def an_hour_passes(db: Path) -> None:
    """What the clock would do: every counted send an hour and a minute older."""
    raw = sqlite3.connect(db)
    rows = raw.execute("SELECT id, at FROM mail_sent").fetchall()
    for rowid, at in rows:
        older = datetime.fromisoformat(at) - timedelta(hours=1, minutes=1)
        raw.execute(
            "UPDATE mail_sent SET at = ? WHERE id = ?",
            (older.strftime("%Y-%m-%dT%H:%M:%SZ"), rowid),
        )
    raw.commit()
    raw.close()


def test_the_hourly_limit_holds_across_processes_and_a_restart(tmp_path: Path) -> None:
    prepare(tmp_path)  # 24 subscribers, 6 items
    with smtp_server() as (handler, port):
        config = write_config(tmp_path, port)
        text = config.read_text(encoding="utf-8").replace(
            "hourly_limit = 0", f"hourly_limit = {LIMIT}", 1
        )
        config.write_text(text, encoding="utf-8")
        # One process sends a test copy: the relay counts it, so the quota does.
        copy = iomfeed(config, "digest", "--to", "operator@example.org")
        assert copy.returncode == 0, copy.stderr
        # Another sends the digest: four more, then it stops cleanly, not as a failure.
        first = iomfeed(config, "digest", "--send")
        assert first.returncode == 0, first.stderr
        assert "4 sent now" in first.stdout and "NOT complete" in first.stdout
        assert f"{LIMIT}/{LIMIT} in the last hour" in first.stdout
        assert len(handler.received) == LIMIT
        # A restart (the next cron run) sends nothing until the window moves on.
        again = iomfeed(config, "digest", "--send")
        assert again.returncode == 0, again.stderr
        assert "not sent now: sending quota reached" in again.stdout
        assert len(handler.received) == LIMIT
        status = iomfeed(config, "status", "--json")
        quota = json.loads(status.stdout)["quota"]
        assert quota["full"] and quota["used"] == {"hour": LIMIT} and quota["room"] == 0
        frees = datetime.fromisoformat(quota["frees_at"])
        assert timedelta(minutes=58) < frees - datetime.now(UTC) <= timedelta(hours=1)
        shown = iomfeed(config, "status")
        assert f"sending quota: {LIMIT}/{LIMIT} in the last hour; full until" in shown.stdout
        # The next window: the send goes on where it stopped, five at a time.
        for _ in range(4):
            an_hour_passes(tmp_path / "iomfeed.db")
            more = iomfeed(config, "digest", "--send")
            assert more.returncode == 0, more.stderr
        assert "complete" in more.stdout and "NOT" not in more.stdout
    digests = [r for r in handler.received if r.rcpt_tos != ["operator@example.org"]]
    addresses = sorted(a for r in digests for a in r.rcpt_tos)
    assert len(addresses) == 24 and len(set(addresses)) == 24  # each once
