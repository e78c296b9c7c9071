"""`iomfeed digest` and `iomfeed unsubscribe` as an operator uses them, with the outbox
transport, and `iomfeed run` sending the digest when the schedule says it is due."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from pathlib import Path

import pytest

from iomfeed.cli import main
from iomfeed.demo.server import SnapshotServer
from iomfeed.store import Store

from .conftest import CONFIG_FILE, NOW
from .digestkit import add_items, add_subscribers
from .test_cli_snapshot import iomfeed, write_config


@pytest.fixture
def setup(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    with Store(tmp_path / "iomfeed.db") as store:
        add_subscribers(store, 3)
        add_items(store, range(5), NOW - timedelta(days=1))
    return config


def outbox(folder: Path) -> list[email.message.EmailMessage]:
    messages = []
    for path in sorted((folder / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        messages.append(msg)
    return messages


def test_dry_run_reports_and_changes_nothing(
    setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(setup), "digest", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "the list's first, the latest 5 item(s)" in out
    assert "en: 2 subscriber(s)" in out and "sq: 1 subscriber(s)" in out
    assert main(["--config", str(setup), "digest"]) == 0  # the default is a dry run
    with Store(setup.parent / "iomfeed.db") as store:
        assert store.last_digest() is None
    assert not (setup.parent / "outbox").exists()


def test_dry_run_counts_only_who_would_get_it(
    setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new user's trial paused one subscriber: the dry run still counted them in their
    language's line, and the send then went to one fewer."""
    with Store(setup.parent / "iomfeed.db") as store:
        sub = store.subscriber("reader1@example.org")
        assert sub is not None and sub.language == "en"
        store.set_preferences(
            sub.id, language="en", categories=(), paused_until=NOW + timedelta(days=30)
        )
    assert main(["--config", str(setup), "digest", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "en: 1 subscriber(s)" in out and "sq: 1 subscriber(s)" in out
    assert "1 subscriber(s) who paused the digest: not sent to" in out
    assert main(["--config", str(setup), "digest", "--send"]) == 0
    assert sorted(str(m["To"]).split("<")[-1].rstrip(">") for m in outbox(setup.parent)) == [
        "reader0@example.org",
        "reader2@example.org",
    ]


def test_dry_run_of_a_digest_being_sent_reports_its_ledger(
    setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store(setup.parent / "iomfeed.db") as store:
        ids = [i.id for i in store.items()]
        record = store.create_digest(created=NOW, since=None, cutoff=NOW, item_ids=ids, more=0)
        first = next(iter(store.deliveries(record.id)))
        store.mark_delivered(record.id, first.subscriber_id, "250 OK", NOW)
    assert main(["--config", str(setup), "digest", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"digest {record.id} is being sent: 2 pending, 1 sent" in out
    # Those still due, by language (reader0 is Albanian and has it; reader1, reader2 not).
    assert "en: 2 subscriber(s)" in out and "sq: 0 subscriber(s)" in out
    with Store(setup.parent / "iomfeed.db") as store:
        assert store.delivery_totals(record.id) == {"pending": 2, "sent": 1}


def test_dry_run_with_nothing_new_says_it_would_be_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    with Store(tmp_path / "iomfeed.db") as store:
        add_subscribers(store, 2)
    assert main(["--config", str(config), "digest", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "the list's first, the latest 0 item(s)" in out
    assert "nothing new: it would be skipped (digest.skip_empty)" in out
    assert "subscriber(s); subject" not in out  # nothing rendered
    with Store(tmp_path / "iomfeed.db") as store:
        assert store.last_digest() is None


def test_dry_run_with_nobody_to_send_to_says_it_would_be_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dry run applies the send's own rule: with items but no active subscriber, the
    send records a skipped digest, so the dry run must not say it would go out."""
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    with Store(tmp_path / "iomfeed.db") as store:
        add_items(store, range(3), NOW - timedelta(days=1))
    assert main(["--config", str(config), "digest", "--dry-run"]) == 0
    assert "no active subscribers: it would be skipped" in capsys.readouterr().out
    assert main(["--config", str(config), "digest", "--send"]) == 0
    with Store(tmp_path / "iomfeed.db") as store:
        last = store.last_digest()
        assert (
            last is not None and last.status == "skipped" and last.note == "no active subscribers"
        )


def test_preview_writes_the_rendered_digest(
    setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = setup.parent / "preview.html"
    assert main(["--config", str(setup), "digest", "--preview", str(target), "--lang", "sq"]) == 0
    page = target.read_text(encoding="utf-8")
    assert '<html lang="sq"' in page and "%%" not in page
    assert "digest preview (sq)" in capsys.readouterr().out


def test_test_copy_is_marked_and_leaves_the_ledger_alone(setup: Path) -> None:
    assert main(["--config", str(setup), "digest", "--to", "editor@example.org"]) == 0
    (msg,) = outbox(setup.parent)
    assert str(msg["Subject"]).startswith("[TEST] ") and msg["To"] == "editor@example.org"
    with Store(setup.parent / "iomfeed.db") as store:
        assert store.last_digest() is None


def test_send_then_unsubscribe_with_the_token(
    setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(setup), "digest", "--send"]) == 0
    assert "digest 1: 3 sent now (3 sent); complete" in capsys.readouterr().out
    messages = outbox(setup.parent)
    assert len(messages) == 3
    by_address = {m["To"].addresses[0].addr_spec: m for m in messages}
    link = str(by_address["reader1@example.org"]["List-Unsubscribe"]).split(",")[0].strip("<> ")
    token = link.split("t=", 1)[1]
    sid, mac = token.split(".")
    forged = f"{int(sid) + 1}.{mac}"
    assert main(["--config", str(setup), "unsubscribe", forged]) == 65  # bad input
    assert "does not match" in capsys.readouterr().err
    assert main(["--config", str(setup), "unsubscribe", "junk"]) == 65
    assert main(["--config", str(setup), "unsubscribe", token]) == 0
    assert "reader1@example.org: unsubscribed" in capsys.readouterr().out
    with Store(setup.parent / "iomfeed.db") as store:
        statuses = {s.address: s.status for s in store.subscribers()}
    assert statuses == {
        "reader0@example.org": "active",
        "reader1@example.org": "unsubscribed",
        "reader2@example.org": "active",
    }
    # Sent again: nothing new, skipped.
    assert main(["--config", str(setup), "digest", "--send"]) == 0
    assert "digest skipped: nothing new" in capsys.readouterr().out


def test_secret_from_the_environment_must_be_long(
    setup: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IOMFEED_SECRET", "short")
    assert main(["--config", str(setup), "digest", "--send"]) == 2
    assert "mail.secret_env" in capsys.readouterr().err


@pytest.mark.network
def test_run_sends_the_digest_when_due_and_only_then(
    server: SnapshotServer, tmp_path: Path
) -> None:
    config = write_config(server, tmp_path)
    first = iomfeed("--config", str(config), "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert not (tmp_path / "outbox").exists()  # installed just now: the first Monday is ahead
    with Store(tmp_path / "iomfeed.db") as store:
        add_subscribers(store, 2)
        # As if iomfeed had been installed eight days ago: a Monday 08:00 has passed.
        store.db.execute("UPDATE runs SET started = '2000-01-01T00:00:00Z'")
    second = iomfeed("--config", str(config), "run", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert len(outbox(tmp_path)) == 2
    assert "digest 1:" in second.stderr
    third = iomfeed("--config", str(config), "-q", "run", cwd=tmp_path)
    assert (third.returncode, third.stderr) == (0, "")
    assert len(outbox(tmp_path)) == 2


@pytest.mark.browser
def test_the_preview_file_is_looked_at_in_chromium(setup: Path) -> None:
    from .browser import browser, screenshot_path

    with browser() as chromium:
        for lang in ("en", "sq"):
            target = setup.parent / f"preview-{lang}.html"
            assert (
                main(
                    [
                        "--config",
                        str(setup),
                        "-q",
                        "digest",
                        "--preview",
                        str(target),
                        "--lang",
                        lang,
                    ]
                )
                == 0
            )
            for width in (600, 375):
                page = chromium.new_page(viewport={"width": width, "height": 900})
                page.route(
                    "**/*",
                    lambda route: (
                        route.abort()
                        if not route.request.url.startswith("file:")
                        else route.continue_()
                    ),
                )
                page.goto(target.as_uri())
                page.screenshot(
                    path=str(screenshot_path(f"digest-preview-{lang}-{width}.png")), full_page=True
                )
                got = page.evaluate("""() => ({
                    container: document.querySelector('table.container')
                        .getBoundingClientRect().width,
                    scroll: document.documentElement.scrollWidth,
                    lang: document.documentElement.lang,
                    unsubscribe: [...document.querySelectorAll('a')]
                        .filter(a => a.href.includes('unsubscribe?t=PREVIEW')).length,
                })""")
                page.close()
                assert got["lang"] == lang and got["unsubscribe"] >= 1
                assert got["container"] == min(width, 600) and got["scroll"] <= width


def test_reading_commands_make_no_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An operator's trial found an empty iomfeed.db made by 'digest --dry-run' (documented
    as changing nothing) and 'subscribers list': a mistyped storage.database then looked
    like a new, empty store."""
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    for args in (
        ["digest", "--dry-run"],
        ["digest", "--preview", str(tmp_path / "preview.html")],
        ["subscribers", "list"],
        ["subscribers", "show", "ana@example.org"],
    ):
        assert main(["--config", str(config), *args]) == 1, args
        assert "no store at" in capsys.readouterr().err
    assert not (tmp_path / "iomfeed.db").exists()
