"""``iomfeed subscribers add|show|forget|import`` with the consent record and the
suppression list, run as real subprocesses on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from .conftest import CONFIG_FILE


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iomfeed", "--config", str(config), "subscribers", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=config.parent,
    )


def test_show_forget_and_import_from_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    added = run(config, "add", "ana@example.org", "--name", "Ana Hoxha", "--lang", "sq")
    assert added.returncode == 0, added.stderr

    shown = run(config, "show", "ana@Example.ORG")
    assert shown.returncode == 0, shown.stderr
    lines = {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in shown.stdout.splitlines()[:13])
    }
    assert lines["address"] == "ana@example.org" and lines["status"] == "active"
    assert lines["consent"].endswith("by command line") and lines["client"] == "not recorded"
    assert lines["categories"] == "all" and lines["paused"] == "no"
    assert lines["failures"].startswith("0 ") and "deliveries:   none" in shown.stdout
    as_json = json.loads(run(config, "show", "ana@example.org", "--json").stdout)
    assert as_json["subscriber"]["consent"]["via"] == "command line"
    assert as_json["deliveries"] == []

    forgot = run(config, "forget", "ana@example.org")
    assert forgot.returncode == 0 and "forgotten" in forgot.stdout
    db = sqlite3.connect(tmp_path / "iomfeed.db")
    assert "ana@" not in "\n".join(db.iterdump())
    missing = run(config, "show", "ana@example.org")
    assert missing.returncode == 1 and "not a subscriber" in missing.stderr

    csv_file = tmp_path / "people.csv"
    csv_file.write_text("ana@example.org,Ana,sq\nben@example.org,Ben,en\n", encoding="utf-8")
    imported = run(config, "import", str(csv_file))
    assert imported.returncode == 0, imported.stderr
    assert "line 1: ana@example.org: forgotten on request (suppressed)" in imported.stderr
    assert (
        "1 subscriber(s) added" in imported.stdout and "1 not added (forgotten)" in imported.stdout
    )
    readded = run(config, "add", "ana@example.org")
    assert readded.returncode == 1 and "forgotten on request earlier" in readded.stdout
    again = run(config, "import", str(csv_file), "--resubscribe")
    assert again.returncode == 0, again.stderr
    assert "1 of those added had left or were forgotten" in again.stdout
    back = json.loads(run(config, "show", "ana@example.org", "--json").stdout)
    assert back["subscriber"]["state"] == "active"
    assert back["subscriber"]["consent"]["via"] == "CSV import"
    listed = run(config, "list", "--status", "pending")
    assert listed.returncode == 0 and "no pending subscribers" in listed.stdout


def test_show_never_prints_control_characters_from_a_name(tmp_path: Path) -> None:
    """A name from the public form may hold escape sequences (a window title, colours) and
    NULs: ``show`` prints them as U+FFFD, as ``list`` does."""
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    assert run(config, "add", "esc@example.org").returncode == 0
    db = sqlite3.connect(tmp_path / "iomfeed.db")
    with db:  # as a sign-up through the form stores it
        db.execute(
            "UPDATE subscribers SET name = ?, reason = ? WHERE address = 'esc@example.org'",
            ("\x1b]0;PWNED\x07\x1b[31mRED\x1b[0m\x00", "why\x1b[2J"),
        )
    db.close()
    shown = run(config, "show", "esc@example.org")
    assert shown.returncode == 0, shown.stderr
    assert not any(c in shown.stdout for c in "\x1b\x07\x00")
    assert "\ufffd]0;PWNED\ufffd\ufffd[31mRED" in shown.stdout
