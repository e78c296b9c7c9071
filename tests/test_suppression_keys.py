"""Forgotten addresses are hashed with a key of the list's own: a new signing secret
(``check --new-secret``, or a change made before any mail) cannot let an import or an
operator's ``add`` bring a forgotten person back. Entries kept before that key existed were
hashed with the signing secret, and stay matched while that secret can still be had."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from iomfeed.config import Config
from iomfeed.consent import suppression_hash
from iomfeed.digest.unsubscribe import (
    ForgottenUnchecked,
    _fingerprint,
    accept_secret,
    earlier_lost,
    load_secret,
    secret_problem,
    suppression_keys,
)
from iomfeed.runtime import open_runtime
from iomfeed.store import Store
from iomfeed.subscriptions import Joined, forget, import_rows, read_csv, subscribe

from .conftest import NOW
from .digestkit import digest_config
from .schemakit import database_before

GONE, OTHER = "gone@example.org", "other@example.org"
FIRST, SECOND = "the first secret, long enough", "a second secret, long enough"
STEP = "issue 13 (review): forgotten addresses"


def _still_forgotten(config: Config, store: Store) -> bool:
    """Whether an import and an operator's add both refuse GONE, and nothing added them."""
    keys = suppression_keys(config, store)
    read = read_csv(f"{GONE},Gone,en\n".encode(), languages=("en",))
    imported = import_rows(store, read, NOW, keys=keys)
    added = subscribe(store, GONE, "", "en", NOW, languages=("en",), keys=keys)
    refused = [p.address for p in imported.suppressed] == [GONE]
    return refused and added.joined is Joined.SUPPRESSED and store.profile(address=GONE) is None


def test_a_new_signing_secret_keeps_the_forgotten_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = digest_config(tmp_path)
    name = config.mail.secret_env
    monkeypatch.setenv(name, FIRST)
    with open_runtime(config) as rt:
        keys = suppression_keys(config, rt.store)
        subscribe(rt.store, GONE, "", "en", NOW, languages=("en",), keys=keys)
        forget(rt.store, config, GONE, NOW)
        assert keys.earlier == ()  # a new store: no entries from before its own key
        monkeypatch.setenv(name, SECOND)
        accept_secret(config, rt.store)  # check --new-secret
        assert load_secret(config, rt.store) == SECOND.encode()
        assert suppression_keys(config, rt.store) == keys  # the key did not move
        assert _still_forgotten(config, rt.store)
        monkeypatch.delenv(name)  # the database's own secret signs now: still the same
        accept_secret(config, rt.store)
        assert _still_forgotten(config, rt.store)


def _store_before_own_key(
    path: Path,
    secret: bytes,
    *,
    stored: str | None = None,
    noted: bool = True,
    also: tuple[str, ...] = (),
) -> None:
    """A store as the release before left it: GONE forgotten, hashed with ``secret``, which
    it noted (its fingerprint) as the one that signs unless not ``noted`` (older still);
    ``stored``: the database's own signing secret, when it kept one."""
    db = database_before(path, STEP)
    for address in (GONE, *also):
        db.execute(
            "INSERT INTO suppressed (hash, since) VALUES (?, ?)",
            (suppression_hash(secret, address), NOW.isoformat()),
        )
    if stored is not None:
        db.execute("INSERT INTO settings (key, value) VALUES ('unsubscribe_secret', ?)", (stored,))
    if noted:
        db.execute(
            "INSERT INTO settings (key, value) VALUES ('unsubscribe_secret_fingerprint', ?)",
            (f"{_fingerprint(secret)} {'database' if stored else 'environment'}",),
        )
    db.close()


def test_entries_from_before_the_own_key_stay_matched_with_the_signing_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator's trial: the environment's secret changed, and an address forgotten
    under the old one was subscribed again, exit 0. While no secret at hand matches those
    entries, an add or import is refused and ``check`` says why; an address matched once
    is kept under the list's own key from then on; ``check --new-secret`` accepts the loss
    in so many words."""
    config = digest_config(tmp_path)
    name = config.mail.secret_env
    monkeypatch.setenv(name, FIRST)
    _store_before_own_key(config.database_path, FIRST.encode(), also=(OTHER,))
    with open_runtime(config) as rt:
        assert suppression_keys(config, rt.store).earlier == (FIRST.encode(),)
        assert _still_forgotten(config, rt.store)  # GONE matched: kept under the own key too
        monkeypatch.setenv(name, SECOND)  # changed before any mail: load_secret takes it
        assert load_secret(config, rt.store) == SECOND.encode()
        with pytest.raises(ForgottenUnchecked, match=rf"^mail\.secret_env: .* neither {name}"):
            suppression_keys(config, rt.store, adding=True)
        problem = secret_problem(config, config.database_path)
        assert problem is not None and "iomfeed check --new-secret" in problem
        keys = suppression_keys(config, rt.store)  # (a forget or a confirmation goes on)
        assert keys.earlier == () and "no longer recognised" in caplog.text
        gone = subscribe(rt.store, GONE, "", "en", NOW, languages=("en",), keys=keys)
        assert gone.joined is Joined.SUPPRESSED  # re-keyed when it was matched
        monkeypatch.setenv(name, FIRST)  # the old secret given back: all matched again
        assert secret_problem(config, config.database_path) is None
        keys = suppression_keys(config, rt.store, adding=True)
        other = subscribe(rt.store, OTHER, "", "en", NOW, languages=("en",), keys=keys)
        assert other.joined is Joined.SUPPRESSED
        monkeypatch.setenv(name, SECOND)
        words = accept_secret(config, rt.store)  # the loss accepted, in so many words
        assert "no longer recognised" in words and "could add them back" in words
        assert not earlier_lost(config, rt.store)
        keys = suppression_keys(config, rt.store, adding=True)  # adds go on
        assert (
            subscribe(rt.store, GONE, "", "en", NOW, languages=("en",), keys=keys).joined
            is Joined.SUPPRESSED
        )
        assert (
            subscribe(  # OTHER was matched (and re-keyed) above, while FIRST was back
                rt.store, OTHER, "", "en", NOW, languages=("en",), keys=keys
            ).joined
            is Joined.SUPPRESSED
        )


@pytest.mark.parametrize("how", ["check --new-secret", "before any mail, silently"])
def test_entries_hashed_with_the_databases_secret_outlive_a_move_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The database's secret hashed them, then the environment brings one: with the
    operator's word, or (nothing mailed yet) by :func:`load_secret` alone. The database's
    secret stays kept, and so they stay matched."""
    config = digest_config(tmp_path)
    name = config.mail.secret_env
    monkeypatch.delenv(name, raising=False)
    kept = "the database's own secret, long enough"
    _store_before_own_key(config.database_path, kept.encode(), stored=kept)
    with open_runtime(config) as rt:
        assert load_secret(config, rt.store) == kept.encode()
        assert _still_forgotten(config, rt.store)
        monkeypatch.setenv(name, SECOND)
        if how == "check --new-secret":
            assert "no longer" not in accept_secret(config, rt.store)
        else:
            assert load_secret(config, rt.store) == SECOND.encode()  # taken without a word
        assert suppression_keys(config, rt.store).earlier == (kept.encode(),)
        assert not earlier_lost(config, rt.store)
        assert _still_forgotten(config, rt.store)


def test_entries_from_a_store_that_noted_no_secret_are_tried_with_each_at_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = digest_config(tmp_path)
    name = config.mail.secret_env
    monkeypatch.setenv(name, FIRST)
    kept = "the database's own secret, long enough"
    _store_before_own_key(config.database_path, FIRST.encode(), stored=kept, noted=False)
    with open_runtime(config) as rt:
        assert rt.store.setting("suppressed_with_signing_secret") == "1"
        assert suppression_keys(config, rt.store).earlier == (FIRST.encode(), kept.encode())
        assert _still_forgotten(config, rt.store)
        load_secret(config, rt.store)  # signs from now on, noted
        monkeypatch.setenv(name, SECOND)
        assert "no longer recognised" in accept_secret(config, rt.store)  # FIRST noted now


def test_the_step_notes_earlier_entries_only_when_there_are_some(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    database_before(empty, STEP).close()
    with Store(empty) as store:
        assert store.setting("suppressed_with_signing_secret") is None
    full = tmp_path / "full.db"
    _store_before_own_key(full, b"whatever signed then")
    with Store(full) as store:
        noted = store.setting("suppressed_with_signing_secret")
        assert noted == _fingerprint(b"whatever signed then")
    rows = sqlite3.connect(full).execute("SELECT count(*) FROM suppressed").fetchone()
    assert rows == (1,)  # kept as it was


def test_the_command_line_refuses_an_add_it_cannot_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from iomfeed.cli import main

    from .conftest import CONFIG_FILE

    config = digest_config(tmp_path)
    config_file = tmp_path / "config.toml"  # the shipped one: the same store
    config_file.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    _store_before_own_key(config.database_path, FIRST.encode())
    monkeypatch.setenv(config.mail.secret_env, SECOND)
    cli = ["--config", str(config_file)]
    assert main([*cli, "subscribers", "add", GONE]) == 2
    assert "an add or import cannot tell" in capsys.readouterr().err
    (tmp_path / "list.csv").write_text(f"{GONE},Gone,en\n", encoding="utf-8")
    assert main([*cli, "subscribers", "import", str(tmp_path / "list.csv")]) == 2
    assert main([*cli, "check"]) == 2
    assert "iomfeed check --new-secret" in capsys.readouterr().err
    with Store(config.database_path) as store:
        assert store.profile(address=GONE) is None  # nobody added
    assert main([*cli, "check", "--new-secret"]) == 0
    assert "no longer recognised" in capsys.readouterr().out
    assert main([*cli, "subscribers", "add", "new@example.org"]) == 0
