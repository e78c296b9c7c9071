"""``iomfeed backup``: a consistent copy of the store while it is in use, one private file,
never over an existing one."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from iomfeed.cli import main
from iomfeed.store import Store

from .conftest import CONFIG_FILE, NOW
from .digestkit import add_items, add_subscribers


def test_a_backup_holds_what_the_wal_holds_and_is_private(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    store = Store(tmp_path / "iomfeed.db")
    with store:
        add_subscribers(store, 2)
        add_items(store, range(3), NOW)
        # Still open, nothing checkpointed: the rows are in iomfeed.db-wal, which a plain
        # copy of iomfeed.db would miss.
        assert (tmp_path / "iomfeed.db-wal").stat().st_size > 0
        target = tmp_path / "backups" / "iomfeed-copy.db"
        target.parent.mkdir()
        assert main(["--config", str(config), "backup", str(target)]) == 0
        assert "backup written" in capsys.readouterr().out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["iomfeed-copy.db"]  # one file
    copy = sqlite3.connect(target)
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert copy.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 2
    assert copy.execute("SELECT count(*) FROM items").fetchone()[0] == 3
    copy.close()
    with Store(target) as restored:  # a store iomfeed opens as it is
        assert restored.count() == 3
    before = target.read_bytes()
    assert main(["--config", str(config), "backup", str(target)]) == 1
    assert "already exists; not overwriting it" in capsys.readouterr().err
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["iomfeed-copy.db"]


def test_no_store_no_backup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["--config", str(config), "backup", str(tmp_path / "b.db")]) == 1
    assert "nothing to back up" in capsys.readouterr().err
    assert not (tmp_path / "iomfeed.db").exists() and not (tmp_path / "b.db").exists()


def test_a_backup_onto_a_file_system_without_hard_links_or_after_a_killed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAT and many SMB shares have no hard links (``link`` says EPERM or EOPNOTSUPP): the
    copy still appears whole under its name and never over a file. A part file a killed
    backup left behind blocks nothing."""
    import errno
    import os

    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    with Store(tmp_path / "iomfeed.db") as store:
        add_subscribers(store, 2)
    folder = tmp_path / "usb"
    folder.mkdir()
    (folder / ".iomfeed-copy.db.part").write_bytes(b"left by a killed backup")
    # ... and by one with this process's id: a container's iomfeed is pid 1 every time.
    (folder / f".iomfeed-copy.db.{os.getpid()}.part").write_bytes(b"and by another one")
    linked: list[str] = []

    def no_links(src: object, dst: object, *args: object, **kwargs: object) -> None:
        linked.append(str(dst))
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    target = folder / "iomfeed-copy.db"
    assert main(["--config", str(config), "backup", str(target)]) == 0
    assert linked == [str(target)]  # tried, refused, done the other way
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with Store(target) as restored:
        assert len(list(restored.subscribers())) == 2
    leftovers = {".iomfeed-copy.db.part", f".iomfeed-copy.db.{os.getpid()}.part"}
    assert {p.name for p in folder.iterdir()} == leftovers | {"iomfeed-copy.db"}
    before = target.read_bytes()
    capsys.readouterr()
    assert main(["--config", str(config), "backup", str(target)]) == 1
    assert "already exists; not overwriting it" in capsys.readouterr().err
    assert target.read_bytes() == before
    assert {p.name for p in folder.iterdir()} == leftovers | {"iomfeed-copy.db"}
    empty = folder / "killed.db"  # what a backup killed between claiming and replacing leaves
    empty.touch()
    assert main(["--config", str(config), "backup", str(empty)]) == 1
    assert "already exists (empty: left by a backup killed" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["--config", str(config), "backup", str(folder)]) == 1
    assert f"{folder}: is a folder; give the backup file's own name" in capsys.readouterr().err
    missing = tmp_path / "nowhere" / "sub" / "b.db"
    assert main(["--config", str(config), "backup", str(missing)]) == 1
    assert f"the folder {missing.parent} does not exist" in capsys.readouterr().err
