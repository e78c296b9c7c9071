"""Nothing readable that should not be: the database (with its -wal and -shm files), the lock,
the outbox and subscriber exports are the owner's alone whatever the umask, the feeds stay
world-readable; `check` warns about what would leak or not work, and a send by SMTP refuses
to start with the example address or without the SMTP password."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from iomfeed.store import Store
from iomfeed.subscribers import Subscriber

from .conftest import CONFIG_FILE, NOW
from .digestkit import add_items
from .smtp import PUBLIC_URL, smtp_config_edits, smtp_server

UMASKS = [0o022, 0o000]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def iomfeed(
    config: Path, *args: str, umask: int = -1, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iomfeed", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=config.parent,
        umask=umask,
        env=env,
    )


def environment(**values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("IOMFEED_SECRET", "IOMFEED_SMTP_PASSWORD", "IOMFEED_CONFIG")
    }
    env.update(values)
    return env


def shipped_config(folder: Path, edits: dict[str, str] | None = None) -> Path:
    text = CONFIG_FILE.read_text(encoding="utf-8")
    for old, new in (edits or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", UMASKS, ids=["umask-022", "umask-000"])
def test_private_files_are_0600_and_feeds_0644_whatever_the_umask(
    tmp_path: Path, mask: int
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[sources]]\nname = "manual"\nkind = "json"\npath = "news.json"\n', encoding="utf-8"
    )
    (tmp_path / "news.json").write_text(
        json.dumps(
            [
                {
                    "url": f"https://albania.iom.int/news/story-{n}",
                    "title": f"Story {n}",
                    "date_published": f"2026-03-0{n}T10:00:00+01:00",
                    "summary": "News.",
                    "content_html": "<p>News.</p>",
                }
                for n in (1, 2)
            ]
        ),
        encoding="utf-8",
    )
    people = tmp_path / "people.csv"
    people.write_text(
        "reader0@example.org,Ëlira Hoxha,sq\nreader1@example.org,John,en\n", encoding="utf-8"
    )
    env = environment()
    run = iomfeed(config, "subscribers", "import", str(people), umask=mask, env=env)
    assert run.returncode == 0, run.stderr
    database = tmp_path / "iomfeed.db"
    assert mode(database) == 0o600
    fetched = iomfeed(config, "-q", "fetch", umask=mask, env=env)
    assert fetched.returncode == 0, fetched.stderr
    sent = iomfeed(config, "-q", "digest", "--send", umask=mask, env=env)
    assert sent.returncode == 0, sent.stderr
    messages = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(messages) == 2 and {mode(m) for m in messages} == {0o600}
    assert mode(tmp_path / "iomfeed.db.lock") == 0o600
    export = tmp_path / "export.csv"
    assert (
        iomfeed(config, "subscribers", "export", str(export), umask=mask, env=env).returncode == 0
    )
    assert mode(export) == 0o600 and "reader0@example.org" in export.read_text("utf-8")
    published = iomfeed(config, "-q", "publish", umask=mask, env=env)
    assert published.returncode == 0, published.stderr
    feeds = [tmp_path / "feeds" / name for name in ("atom.xml", "rss.xml", "index.html")]
    assert [mode(f) for f in feeds] == [0o644] * 3


@pytest.mark.parametrize("mask", UMASKS, ids=["umask-022", "umask-000"])
def test_the_wal_and_shm_files_sqlite_makes_are_0600_too(tmp_path: Path, mask: int) -> None:
    database = tmp_path / "data" / "iomfeed.db"
    with umask(mask), Store(database) as store:
        store.add_subscriber(Subscriber("ana@example.org", "Ana", "en"), NOW)
        store.set_setting("unsubscribe_secret", "kept here when IOMFEED_SECRET is unset")
        # While a connection is open, SQLite keeps the -wal and -shm files beside it.
        files = [
            database,
            database.with_name("iomfeed.db-wal"),
            database.with_name("iomfeed.db-shm"),
        ]
        assert [mode(f) for f in files] == [0o600] * 3


def test_a_private_file_rewritten_unchanged_loses_the_mode_it_had(tmp_path: Path) -> None:
    from iomfeed.files import PRIVATE, write_if_changed

    target = tmp_path / "export.csv"
    target.write_bytes(b"address\n")
    target.chmod(0o644)  # as an older version left it
    assert write_if_changed(target, b"address\n", mode=PRIVATE) is False
    assert mode(target) == 0o600
    feed = tmp_path / "atom.xml"
    assert write_if_changed(feed, b"<feed/>") and mode(feed) == 0o644
    feed.chmod(0o640)  # an operator's choice for a published file stays
    assert write_if_changed(feed, b"<feed></feed>") and mode(feed) == 0o640


def test_check_warns_about_a_readable_database_holding_the_secret(tmp_path: Path) -> None:
    config = shipped_config(tmp_path, {"https://feeds.example.org/iom-albania/": PUBLIC_URL})
    database = tmp_path / "iomfeed.db"
    quiet = iomfeed(config, "check", env=environment())
    assert (quiet.returncode, quiet.stderr) == (0, "")  # no database yet: nothing to say
    Store(database).close()
    database.chmod(0o644)  # as iomfeed made it before, with the default umask
    run = iomfeed(config, "check", env=environment())
    assert run.returncode == 0
    assert run.stderr == (
        f"warning: {database} is readable by every user of this machine (mode 0644) and keeps"
        " the unsubscribe secret, since mail.secret_env's variable IOMFEED_SECRET is not set:"
        " whoever can read it can forge unsubscribe links and read the subscribers'"
        f" addresses; run 'chmod 600 {database}'\n"
    )
    with_secret = iomfeed(config, "check", env=environment(IOMFEED_SECRET="x" * 40))
    assert "holds the subscribers' addresses" in with_secret.stderr
    assert "forge" not in with_secret.stderr
    database.chmod(0o600)
    assert iomfeed(config, "check", env=environment()).stderr == ""


def test_check_warns_about_the_example_address_and_an_unset_smtp_password(tmp_path: Path) -> None:
    config = shipped_config(
        tmp_path,
        {'transport = "outbox"': 'transport = "smtp"', 'username = ""': 'username = "digest"'},
    )
    run = iomfeed(config, "check", env=environment())
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == [
        "warning: site.public_url: https://feeds.example.org/iom-albania/ is still the example"
        " address: the digest's links and its unsubscribe links would lead there; set it to"
        " the address the feeds and /unsubscribe are served at (a digest is not sent by SMTP"
        " until then)",
        "warning: mail.smtp.password_env: the environment variable IOMFEED_SMTP_PASSWORD is"
        " not set (the password for mail.smtp.username 'digest'): the digest cannot be sent",
        "warning: mail.from_address: news@feeds.example.org is still the example sender:"
        " relays refuse or file as spam mail from a domain that is not yours; set it to an"
        " address of your domain",
    ]
    ready = iomfeed(config, "check", env=environment(IOMFEED_SMTP_PASSWORD="pw"))
    assert "password_env" not in ready.stderr


def prepared(folder: Path, edits: dict[str, str]) -> Path:
    config = shipped_config(folder, edits)
    with Store(folder / "iomfeed.db") as store:
        store.add_subscriber(Subscriber("reader@example.org", "Reader", "en"), NOW)
        add_items(store, range(2), NOW - timedelta(days=1))
    return config


def nothing_recorded(folder: Path) -> bool:
    with Store(folder / "iomfeed.db") as store:
        return store.last_digest() is None


@pytest.mark.network
def test_a_send_by_smtp_refuses_the_example_address_before_anything_is_recorded(
    tmp_path: Path,
) -> None:
    with smtp_server() as (handler, port):
        edits = smtp_config_edits(port)
        del edits["https://feeds.example.org/iom-albania/"]  # left at the example
        config = prepared(tmp_path, edits)
        for args in (("digest", "--send"), ("digest", "--to", "editor@example.org")):
            run = iomfeed(config, *args, env=environment())
            assert run.returncode == 2, (args, run.stderr)
            assert (
                "iomfeed: configuration error: site.public_url:"
                " https://feeds.example.org/iom-albania/ is still the example address" in run.stderr
            ), args
        assert handler.received == [] and nothing_recorded(tmp_path)
        # The same with a real address goes out.
        config.write_text(
            config.read_text(encoding="utf-8").replace(
                "https://feeds.example.org/iom-albania/", PUBLIC_URL
            ),
            encoding="utf-8",
        )
        sent = iomfeed(config, "digest", "--send", env=environment())
        assert sent.returncode == 0, sent.stderr
        assert [r.rcpt_tos for r in handler.received] == [["reader@example.org"]]


@pytest.mark.network
def test_a_send_by_smtp_without_the_password_names_the_variable(tmp_path: Path) -> None:
    with smtp_server() as (handler, port):
        config = prepared(
            tmp_path, {**smtp_config_edits(port), 'username = ""': 'username = "digest"'}
        )
        run = iomfeed(config, "digest", "--send", env=environment())
        assert run.returncode == 2
        assert run.stderr == (
            "iomfeed: configuration error: mail.smtp.password_env: the environment variable"
            " IOMFEED_SMTP_PASSWORD is not set (the password for 'digest')\n"
        )
        assert handler.received == [] and nothing_recorded(tmp_path)


def test_a_lock_file_an_older_version_left_readable_is_made_private(tmp_path: Path) -> None:
    from iomfeed.lock import RunLock

    database = tmp_path / "iomfeed.db"
    lock = tmp_path / "iomfeed.db.lock"
    lock.write_text("123")
    lock.chmod(0o644)
    with RunLock(database):
        assert mode(lock) == 0o600
