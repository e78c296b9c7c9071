"""A cycle whose fetch changed nothing renders nothing: it keeps the files the last publish
left, as long as nothing a publish reads moved and the files are intact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from iomfeed.demo.server import SnapshotServer
from iomfeed.store import Store

from .test_cli_snapshot import iomfeed, write_config

pytestmark = pytest.mark.network

#: Prints the heavy modules a ``run`` loaded, after running it in the same process.
PROBE = (
    "import sys\n"
    "from iomfeed.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "heavy = ('jinja2', 'feedgen', 'babel', 'premailer', 'bs4', 'lxml.html')\n"
    "print(sorted(m for m in heavy if m in sys.modules))\n"
    "sys.exit(code)\n"
)


def run_probe(config: Path, *command: str, seed: str = "0") -> tuple[str, str]:
    """The heavy modules ``command`` (``run`` by default) loaded, and what it said; with
    string hashing seeded by ``seed`` (a fingerprint must not depend on it)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--config", str(config), *(command or ("run",))],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": seed},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr


def test_a_cycle_with_nothing_new_renders_nothing_and_loads_no_renderer(
    server: SnapshotServer, tmp_path: Path
) -> None:
    config = write_config(server, tmp_path)
    first = iomfeed("--config", str(config), "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    index = tmp_path / "feeds" / "index.html"
    before = index.stat().st_mtime_ns
    loaded, said = run_probe(config)
    assert loaded == "[]", said  # no Jinja2, feedgen, Babel or parser for a quiet cycle
    assert "nothing changed" in said and "file(s) kept" in said
    assert index.stat().st_mtime_ns == before
    # An explicit publish checks every file against what it shows: nothing to render, in
    # processes whose string hashes differ (no set's order in a fingerprint).
    for seed in ("1", "2", "3"):
        loaded, said = run_probe(config, "publish", seed=seed)
        assert loaded == "[]" and "0 file(s) written" in said, said
    assert index.stat().st_mtime_ns == before
    # --force renders every file again (and finds them the same), with the dates and month
    # names of the built-in languages written from the kept CLDR table, not Babel.
    loaded, said = run_probe(config, "publish", "--force")
    assert loaded == "['feedgen', 'jinja2']" and "0 file(s) written" in said, said
    assert index.stat().st_mtime_ns == before


def test_a_file_removed_or_replaced_is_written_again(
    server: SnapshotServer, tmp_path: Path
) -> None:
    config = write_config(server, tmp_path)
    assert iomfeed("--config", str(config), "run", cwd=tmp_path).returncode == 0
    feed = tmp_path / "feeds" / "atom.xml"
    good = feed.read_bytes()
    feed.unlink()
    assert iomfeed("--config", str(config), "run", cwd=tmp_path).returncode == 0
    assert feed.read_bytes() == good
    feed.write_bytes(b"<feed/>")
    assert iomfeed("--config", str(config), "run", cwd=tmp_path).returncode == 0
    assert feed.read_bytes() == good


def test_a_changed_config_or_item_publishes_again(server: SnapshotServer, tmp_path: Path) -> None:
    config = write_config(server, tmp_path)
    assert iomfeed("--config", str(config), "run", cwd=tmp_path).returncode == 0
    index = tmp_path / "feeds" / "index.html"
    text = config.read_text(encoding="utf-8")
    assert '\ntitle = "IOM Albania: Latest News on Migration"\n' in text
    config.write_text(
        text.replace(
            '\ntitle = "IOM Albania: Latest News on Migration"\n',
            '\ntitle = "IOM Albania: News"\n',
        ),
        encoding="utf-8",
    )
    assert iomfeed("--config", str(config), "run", cwd=tmp_path).returncode == 0
    assert "<title>IOM Albania: News" in index.read_text(encoding="utf-8")
    with Store(tmp_path / "iomfeed.db") as store:
        (newest, *_rest) = store.items(limit=1)
        store.db.execute("UPDATE items SET title = 'Edited by hand' WHERE id = ?", (newest.id,))
    assert iomfeed("--config", str(config), "run", cwd=tmp_path).returncode == 0
    assert "Edited by hand" in index.read_text(encoding="utf-8")


def test_seeing_an_item_again_is_not_a_change_and_editing_one_is(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        store.db.execute(
            "INSERT INTO items (id, url, source, title, title_key, summary_html, content_html,"
            " published, published_utc, date_source, updated, first_seen, last_seen, image_url,"
            " image_alt, categories, language, author, content_hash, listing_hash) VALUES"
            " ('i', 'https://x.org/a', 's', 'T', 't', '', '', '2024-01-01T00:00:00+00:00',"
            " '2024-01-01T00:00:00Z', 'time', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z',"
            " '2024-01-01T00:00:00Z', '', '', '[]', 'en', '', 'h', 'l')"
        )
        start = store.changes()
        store.db.execute("UPDATE items SET last_seen = '2025-01-01T00:00:00Z', listing_hash = 'm'")
        assert store.changes() == start
        store.db.execute("UPDATE items SET content_hash = 'h2'")
        assert store.changes()["items"] == start["items"] + 1
        store.db.execute(
            "INSERT INTO digests (created, cutoff, status, items, more)"
            " VALUES ('2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z', 'sending', 0, 0)"
        )
        store.db.execute("UPDATE digests SET status = 'sent'")
        assert store.changes()["digests"] == start["digests"] + 2
