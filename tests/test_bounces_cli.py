"""The bounce step through the command line: ``iomfeed bounces`` killed mid-mailbox loses
and doubles nothing, ``digests show``, ``subscribers show`` and ``status`` show the bounce
log, and a cycle without ``[bounces]`` never loads flufl.bounce."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from iomfeed.config import Config, load_config
from iomfeed.demo.server import SnapshotServer
from iomfeed.store import Store

from .bouncekit import BOUNCE_ADDRESS, deliver, fill, make_maildir, send_one
from .conftest import CONFIG_FILE, NOW
from .digestkit import add_subscribers
from .test_cli_snapshot import iomfeed, write_config

#: ``iomfeed bounces`` that kills itself (SIGKILL) when asked to mark the second message
#: read: its effect is committed, the mark is not.
KILLER = (
    "import os, signal, sys\n"
    "from iomfeed.bounces import mailbox\n"
    "done, calls = mailbox.MaildirBox.done, []\n"
    "def dying(self, key):\n"
    "    calls.append(key)\n"
    "    if len(calls) == 2:\n"
    "        os.kill(os.getpid(), signal.SIGKILL)\n"
    "    done(self, key)\n"
    "mailbox.MaildirBox.done = dying\n"
    "from iomfeed.cli import main\n"
    "sys.exit(main(['--config', sys.argv[1], 'bounces']))\n"
)

#: Runs the command and prints whether flufl.bounce was loaded.
PROBE = (
    "import sys\n"
    "from iomfeed.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('flufl.bounce' in sys.modules)\n"
    "sys.exit(code)\n"
)


def config_file(folder: Path, text: str | None = None) -> Path:
    text = text if text is not None else CONFIG_FILE.read_text(encoding="utf-8")
    text = text.replace('bounce_address = ""', f'bounce_address = "{BOUNCE_ADDRESS}"')
    text = text.replace('\nmaildir = ""', '\nmaildir = "bounces"')
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def sent_list(path: Path) -> tuple[Config, list[bytes]]:
    """A list of three that was sent digest 1; one bounce fixture per subscriber, and a
    complaint."""
    config = load_config(path)
    assert config.maildir_path is not None
    make_maildir(config.maildir_path)
    with Store(config.database_path) as store:
        add_subscribers(store, 3, NOW - timedelta(hours=2))  # before the send
        sent = send_one(config, store, NOW - timedelta(hours=1), 100)
    raws = [fill("postfix-dsn", sent[0]), fill("exim", sent[1]), fill("qmail", sent[2])]
    return config, [*raws, fill("arf", sent[2])]


def test_killed_mid_mailbox_it_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    config, raws = sent_list(path)
    maildir = config.maildir_path
    assert maildir is not None
    for i, raw in enumerate(raws, start=1):
        deliver(maildir, raw, f"{i}.msg")
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    with Store(config.database_path) as store:
        assert len({e.message_key for e in store.bounce_events()}) == 2  # two committed
    assert sorted(p.name for p in (maildir / "new").iterdir()) == ["2.msg", "3.msg", "4.msg"]
    again = iomfeed("--config", str(path), "bounces", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "2 message(s) read (1 complaint, 1 hard)" in again.stdout, again.stdout
    assert "1 already recorded, marked read now" in again.stdout
    assert "Running detector" not in again.stderr  # flufl.bounce's chatter stays quiet
    assert "bounces: hard reader2@example.org digest 1: counted" in again.stderr
    assert list((maildir / "new").iterdir()) == []
    assert len(list((maildir / "cur").iterdir())) == 4
    with Store(config.database_path) as store:
        events = store.bounce_events()
        assert len(events) == 4 and len({e.message_key for e in events}) == 4
        assert store.bounce_counts() == {"hard": 3, "complaint": 1, "ignored": 0}


def test_digests_show_subscribers_show_and_status_tell_the_same_story(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    config, raws = sent_list(path)
    assert config.maildir_path is not None
    for i, raw in enumerate(raws, start=1):
        deliver(config.maildir_path, raw, f"{i}.msg")
    done = iomfeed("--config", str(path), "bounces", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["read"] == 4 and report["unsubscribed"] == 1 and report["error"] == ""

    shown = iomfeed("--config", str(path), "digests", "show", "1", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].endswith("sent, 2 bounced, 1 complained"), lines[0]
    assert any(
        "reader2@example.org" in line and "complained" in line and "complaint" in line
        for line in lines
    ), shown.stdout
    as_json = json.loads(
        iomfeed("--config", str(path), "digests", "show", "1", "--json", cwd=tmp_path).stdout
    )
    outcomes = {r["address"]: r["outcome"] for r in as_json["recipients"]}
    assert outcomes == {
        "reader0@example.org": "bounced",
        "reader1@example.org": "bounced",
        "reader2@example.org": "complained",
    }
    missing = iomfeed("--config", str(path), "digests", "show", "9", cwd=tmp_path)
    assert missing.returncode == 65 and "bad input: no digest 9" in missing.stderr

    sub = iomfeed("--config", str(path), "subscribers", "show", "reader0@example.org", cwd=tmp_path)
    assert sub.returncode == 0, sub.stderr
    assert "bounces:      the latest 1" in sub.stdout
    assert "hard  5.1.1   1       token  counted" in sub.stdout
    assert "hard bounce 1 of 3 in a row" in sub.stdout
    sub_json = json.loads(
        iomfeed(
            "--config", str(path), "subscribers", "show", "reader0@example.org", "--json",
            cwd=tmp_path,
        ).stdout
    )  # fmt: skip
    (event,) = sub_json["bounces"]
    assert event["message_id"].startswith("<20261130070012") and event["digest_id"] == 1

    status = iomfeed("--config", str(path), "status", "--json", cwd=tmp_path)
    assert json.loads(status.stdout)["bounces"] == {"hard": 3, "complaint": 1, "ignored": 0}
    text = iomfeed("--config", str(path), "status", cwd=tmp_path).stdout
    assert "bounce mailbox (30 days): 1 complaint, 3 hard, 0 ignored" in text


def test_bounces_without_a_mailbox_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    done = iomfeed("--config", str(path), "bounces", cwd=tmp_path)
    assert done.returncode == 2 and "bounces: no mailbox configured" in done.stderr


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            'bounce_address = "a-very-long-local-part-x@example.org"',
            "at most 23 characters: each message adds '+' and a token (the digest's and the"
            " subscriber's numbers and 18 characters more), 41 characters in all while the"
            " two numbers have 22 digits or fewer together",
        ),
        ('imap_host = "mail.example.org"', "bounces.maildir: give either maildir or imap_host"),
    ],
)
def test_bad_bounce_settings_are_named(tmp_path: Path, edit: str, message: str) -> None:
    text = CONFIG_FILE.read_text(encoding="utf-8").replace('\nmaildir = ""', '\nmaildir = "b"')
    key = edit.partition(" = ")[0]
    text = text.replace(f'\n{key} = ""', f"\n{edit}")
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    done = iomfeed("--config", str(path), "check", cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.network
def test_a_cycle_reads_the_mailbox_and_without_bounces_loads_no_detector(
    server: SnapshotServer, tmp_path: Path
) -> None:
    plain = write_config(server, tmp_path)
    run = subprocess.run(
        [sys.executable, "-c", PROBE, "--config", str(plain), "run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"  # no [bounces]: flufl.bounce never imported
    path = config_file(tmp_path, plain.read_text(encoding="utf-8"))
    config = load_config(path)
    assert config.maildir_path is not None
    make_maildir(config.maildir_path)
    deliver(config.maildir_path, fill("junk", None), "1.msg")
    cycle = iomfeed("--config", str(path), "run", "--json", cwd=tmp_path)
    assert cycle.returncode == 0, cycle.stderr
    bounces = json.loads(cycle.stdout)["bounces"]
    assert bounces["read"] == 1 and bounces["kinds"] == {"unrecognised": 1}


def test_check_warns_of_a_mailbox_it_cannot_read_or_without_verp(tmp_path: Path) -> None:
    text = CONFIG_FILE.read_text(encoding="utf-8").replace(
        '\nimap_host = ""', '\nimap_host = "imap.example.org"'
    )
    path = tmp_path / "config.toml"
    path.write_text(text.replace('\nimap_user = ""', '\nimap_user = "bounces"'), "utf-8")
    env = {k: v for k, v in os.environ.items() if k != "IOMFEED_IMAP_PASSWORD"}
    done = iomfeed("--config", str(path), "check", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "IOMFEED_IMAP_PASSWORD is not set" in done.stderr, done.stderr
    assert "mail.bounce_address is not set" in done.stderr
    config_file(tmp_path, path.read_text(encoding="utf-8").replace('\nmaildir = ""', "\n"))
    quiet = iomfeed(
        "--config", str(path), "check", cwd=tmp_path, env=env | {"IOMFEED_IMAP_PASSWORD": "x"}
    )
    assert "bounce" not in quiet.stderr, quiet.stderr
