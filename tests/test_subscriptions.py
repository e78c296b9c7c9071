"""The subscriptions core, without the command line or the web pages that call it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from iomfeed.consent import SuppressionKeys
from iomfeed.digest.unsubscribe import BadToken, load_secret, make_token, suppression_keys
from iomfeed.errors import InputError
from iomfeed.runtime import open_runtime
from iomfeed.subscriptions import (
    Joined,
    Via,
    import_rows,
    leave,
    read_csv,
    remove,
    subscribe,
    token_holder,
)

from .conftest import CONFIG_FILE, NOW
from .digestkit import digest_config

LANGS = ("en", "sq")
KEYS = SuppressionKeys(b"a test key of some length")


def test_who_left_comes_back_only_when_they_ask(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    with open_runtime(config, clock=lambda: NOW) as rt:
        store = rt.store
        first = subscribe(
            store, " Ana@Example.ORG ", "  Ana   Hoxha ", "sq", NOW, languages=LANGS, keys=KEYS
        )
        assert first.address == "Ana@example.org" and first.joined is Joined.ADDED
        assert getattr(store.subscriber(first.address), "name", None) == "Ana Hoxha"
        assert (
            subscribe(store, first.address, "", "sq", NOW, languages=LANGS, keys=KEYS).joined
            is Joined.EXISTS
        )
        address, before = remove(store, first.address, "asked by phone", NOW)
        assert address == first.address and before is not None and before.status == "active"
        # Removed again, later: the record of when and why they left stays as it was.
        again = remove(store, first.address, "removed by an operator", NOW + timedelta(days=3))
        assert again[1] is not None and again[1].status == "unsubscribed"
        kept = store.subscriber(first.address)
        assert kept is not None and (kept.left, kept.reason) == (NOW, "asked by phone")
        assert (
            subscribe(store, first.address, "", "sq", NOW, languages=LANGS, keys=KEYS).joined
            is Joined.LEFT
        )
        back = subscribe(
            store, first.address, "", "sq", NOW, languages=LANGS, keys=KEYS, resubscribe=True
        )
        assert back.joined is Joined.ADDED
        assert getattr(store.subscriber(first.address), "status", None) == "active"
        assert remove(store, "nobody@example.org", "x", NOW) == ("nobody@example.org", None)
        with pytest.raises(InputError, match=r"^not-an-address: "):
            subscribe(store, "not-an-address", "", "en", NOW, languages=LANGS, keys=KEYS)


def test_a_token_proves_who_leaves_and_leaving_twice_changes_nothing(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    with open_runtime(config) as rt:
        store = rt.store
        subscribe(store, "reader@example.org", "", "en", NOW, languages=LANGS, keys=KEYS)
        sub = store.subscriber("reader@example.org")
        assert sub is not None
        token = make_token(load_secret(config, store), config.list_id, sub.id, sub.address)
        holder = token_holder(store, config, token)
        assert holder == sub
        assert leave(store, holder, Via.ONE_CLICK, NOW + timedelta(days=1))
        gone = store.subscriber(sub.address)
        assert gone is not None and (gone.status, gone.reason) == (
            "unsubscribed",
            Via.ONE_CLICK.value,
        )
        assert not leave(store, gone, Via.PAGE, NOW + timedelta(days=2))
        assert store.subscriber(sub.address) == gone  # the first reason and date are kept
        forged = make_token(b"another secret", config.list_id, sub.id, sub.address)
        with pytest.raises(BadToken):
            token_holder(store, config, forged)
        unknown = make_token(load_secret(config, store), config.list_id, 999, "x@example.org")
        assert token_holder(store, config, unknown) is None


def test_an_import_adds_new_rows_and_lists_who_left(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    read = read_csv(
        b"address,name,language\na@example.org,A,sq\nb@example.org,B,en\nbad,C,en\n",
        languages=LANGS,
    )
    with open_runtime(config) as rt:
        subscribe(rt.store, "b@example.org", "", "en", NOW, languages=LANGS, keys=KEYS)
        remove(rt.store, "b@example.org", "left", NOW)
        done = import_rows(rt.store, read, NOW, keys=KEYS)
    assert (done.added, done.unchanged) == (1, 0)
    assert [(p.line, p.address) for p in done.notes] == [(3, "b@example.org"), (4, "bad")]


def test_the_secret_that_signed_mail_already_sent_is_not_swapped_silently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cron job that lost IOMFEED_SECRET once signed with the database's secret instead,
    and every link already mailed stopped working, with nothing said. Once mail with links
    went out, another secret is refused (a send, a page, ``check``) until the operator
    says so; before that, a change is only noted."""
    from iomfeed.cli import main
    from iomfeed.digest.unsubscribe import SecretChanged

    config = digest_config(tmp_path)
    name = config.mail.secret_env
    monkeypatch.setenv(name, "the first secret, long enough")
    with open_runtime(config) as rt:
        store = rt.store
        first = load_secret(config, store)
        monkeypatch.setenv(name, "a second secret, long enough")
        second = load_secret(config, store)  # nothing mailed yet: a change is fine
        assert second != first
        subscribe(
            store,
            "reader@example.org",
            "",
            "en",
            NOW,
            languages=LANGS,
            keys=suppression_keys(config, store),
        )
        sub = store.subscriber("reader@example.org")
        assert sub is not None
        store.mark_sign_up_mail(sub.id, "confirm_sent", NOW)  # its links went out
        assert load_secret(config, store) == second
        monkeypatch.delenv(name)  # the environment lost it: the database's would sign
        with pytest.raises(
            SecretChanged, match=rf"^mail\.secret_env: .*environment variable {name}"
        ):
            load_secret(config, store)
        monkeypatch.setenv(name, "a third secret, long enough")
        with pytest.raises(SecretChanged, match="would stop working"):
            token_holder(store, config, make_token(second, config.list_id, sub.id, sub.address))
    config_file = tmp_path / "config.toml"  # the same store, through the command line
    config_file.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["--config", str(config_file), "check"]) == 2
    assert "iomfeed check --new-secret" in capsys.readouterr().err
    assert main(["--config", str(config_file), "check", "--new-secret"]) == 0
    assert main(["--config", str(config_file), "check"]) == 0
    monkeypatch.setenv(name, "a second secret, long enough")  # the old one is not taken back
    with open_runtime(config) as rt, pytest.raises(SecretChanged):
        load_secret(config, rt.store)


def test_check_sees_a_lost_secret_without_touching_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the variable always set, the store never made a secret of its own; once the
    variable is lost, 'check' still says so, reading the store without migrating or
    writing it (a new release's check against the store an older one still serves)."""
    import sqlite3

    from iomfeed.cli import main

    config = digest_config(tmp_path)
    name = config.mail.secret_env
    monkeypatch.setenv(name, "the only secret, long enough")
    with open_runtime(config) as rt:
        load_secret(config, rt.store)  # as mailing the confirmation does: noted as the one
        keys = suppression_keys(config, rt.store)
        subscribe(rt.store, "reader@example.org", "", "en", NOW, languages=LANGS, keys=keys)
        sub = rt.store.subscriber("reader@example.org")
        assert sub is not None
        rt.store.mark_sign_up_mail(sub.id, "confirm_sent", NOW)
    config_file = tmp_path / "config.toml"
    config_file.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    database = tmp_path / "iomfeed.db"

    def state() -> tuple[object, ...]:
        db = sqlite3.connect(database)
        try:
            return (
                db.execute("PRAGMA user_version").fetchone()[0],
                db.execute("SELECT key, value FROM settings ORDER BY key").fetchall(),
            )
        finally:
            db.close()

    before = state()
    monkeypatch.delenv(name)
    assert main(["--config", str(config_file), "check"]) == 2
    err = capsys.readouterr().err
    assert "signed with a secret from the environment variable IOMFEED_SECRET" in err
    assert state() == before  # nothing written: no secret made, no migration
    assert main(["--config", str(config_file), "check", "--new-secret"]) == 0
    assert "signed from now on with the secret kept in the database" in capsys.readouterr().out
    assert main(["--config", str(config_file), "check"]) == 0
