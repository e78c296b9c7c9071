"""The command line as an operator runs it: real processes against the snapshot on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from iomfeed.config import LIVE_ORIGIN
from iomfeed.demo.server import Fault, SnapshotServer
from iomfeed.store import Store

from .conftest import CONFIG_FILE, ROOT

pytestmark = pytest.mark.network


def write_config(server: SnapshotServer, folder: Path, extra: str = "") -> Path:
    text = CONFIG_FILE.read_text(encoding="utf-8").replace(LIVE_ORIGIN, server.origin)
    text = text.replace("min_delay = 0.5", "min_delay = 0.0").replace("retries = 3", "retries = 0")
    path = folder / "config.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def iomfeed(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iomfeed", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,  # not a terminal: the demo ends by itself
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_fetch_exits_0_then_items_lists_them(server: SnapshotServer, tmp_path: Path) -> None:
    config = write_config(server, tmp_path)
    run = iomfeed("--config", str(config), "fetch", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (
        "iom-albania: ok, 53 page(s) fetched (0 not modified), 48 item(s) found: 48 new"
        in run.stderr
    )
    quiet = iomfeed("--config", str(config), "--quiet", "fetch", cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    listed = iomfeed("--config", str(config), "items", "--json", "--limit", "3", cwd=tmp_path)
    items = json.loads(listed.stdout)
    assert [i["published"][:10] for i in items] == ["2024-06-20", "2024-05-14", "2024-04-04"]
    text = iomfeed("--config", str(config), "items", cwd=tmp_path)
    assert "António Vitorino zgjidhet Drejtor i Përgjithshëm i IOM" in text.stdout
    with Store(tmp_path / "iomfeed.db") as store:
        run_id = store.last_run_id()
        assert run_id == 2
        (second,) = store.source_runs(run_id)
        assert (second.ok, second.pages, second.not_modified, second.new) == (True, 1, 1, 0)


def test_a_failing_source_exits_1_and_the_others_still_run(
    server: SnapshotServer, tmp_path: Path
) -> None:
    (tmp_path / "manual.json").write_text(
        json.dumps([{"url": "https://albania.iom.int/news/manual", "title": "Added by hand"}])
    )
    config = write_config(
        server, tmp_path, '\n[[sources]]\nname = "manual"\nkind = "json"\npath = "manual.json"\n'
    )
    server.add_fault("/news", Fault(status=503, times=5))
    run = iomfeed("--config", str(config), "fetch", cwd=tmp_path)
    assert run.returncode == 1
    assert "iom-albania: FAILED" in run.stderr and "HTTP 503" in run.stderr
    assert "manual: ok" in run.stderr
    with Store(tmp_path / "iomfeed.db") as store:
        assert [i.title for i in store.items()] == ["Added by hand"]


def test_check_live_reports_what_the_selectors_found(
    server: SnapshotServer, tmp_path: Path
) -> None:
    config = write_config(server, tmp_path)
    run = iomfeed("--config", str(config), "check", "--live", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "listing.item: 10 entries" in out
    assert "listing.title: found in 10 of 10" in out
    assert f"listing.next: {server.origin}/news?page=1" in out
    assert "article.title: 'Regional dialogue on labour mobility" in out
    assert "article.date: 2024-06-20T09:30:00+00:00 (from time)" in out
    assert "article.category: Local" in out
    assert not (tmp_path / "iomfeed.db").exists()  # --live reads, never writes


def test_check_live_fails_on_a_changed_layout(server: SnapshotServer, tmp_path: Path) -> None:
    config = write_config(server, tmp_path)
    server.add_fault(
        "/news",
        Fault(
            status=200, raw_body=b"<html><body><p>new</p></body></html>", content_type="text/html"
        ),
    )
    run = iomfeed("--config", str(config), "check", "--live", cwd=tmp_path)
    assert run.returncode == 1
    assert "listing.item: 0 entries" in run.stdout


def test_a_demo_on_another_port_starts_a_new_store_instead_of_storing_every_story_twice(
    tmp_path: Path,
) -> None:
    """The stories' addresses name the snapshot's port. With the port busy, each demo ran on
    a free one: the second stored all 48 stories again (96) and sent them as new."""
    import socket

    from iomfeed.demo.run import run_demo

    config = tmp_path / "config.toml"
    text = CONFIG_FILE.read_text(encoding="utf-8")
    assert "min_delay = 0.5" in text
    config.write_text(text.replace("min_delay = 0.5", "min_delay = 0.0"), encoding="utf-8")
    out = tmp_path / "demo"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for _ in range(2):
            assert run_demo(config, out, keep_serving=False, port=port) == 0
    with Store(out / "iomfeed.db") as store:
        assert store.count() == 48
    with Store(out / "iomfeed.db.previous") as old:
        assert old.count() == 48  # put aside, not deleted


@pytest.mark.slow
def test_the_readme_demo_command_runs_on_the_bundled_snapshot(tmp_path: Path) -> None:
    """README set-up command 1, minus the install: the live config, the address swapped."""
    env = dict(os.environ, IOMFEED_CONFIG=str(CONFIG_FILE))
    run = iomfeed("demo", "--dir", str(tmp_path / "demo"), cwd=ROOT, env=env, timeout=240)
    assert run.returncode == 0, run.stderr
    assert "48 items stored in" in run.stdout
    assert (tmp_path / "demo" / "feeds" / "atom.xml").exists()
    assert (tmp_path / "demo" / "feeds" / "index.html").exists()
    assert "serving the bundled snapshot at http://127.0.0.1:" in run.stderr
    with Store(tmp_path / "demo" / "iomfeed.db") as store:
        assert store.count() == 48
    # The digest went to the two sample subscribers through the outbox, with previews.
    # The list's first digest: the newest digest.first_items, not the whole history.
    assert "Digest: 5 item(s) sent to 2 subscriber(s)" in run.stdout
    assert len(list((tmp_path / "demo" / "outbox").glob("*.eml"))) == 2
    assert (tmp_path / "demo" / "digest-sq.html").read_text(encoding="utf-8").count(
        'lang="sq"'
    ) == 1
    # The subscribe and "more" links point at the demo's local feeds address, which it serves
    # until Ctrl-C when run from a terminal (tests/test_packaging.py runs it on one).
    for page in ("feeds/index.html", "digest-en.html", "digest-sq.html"):
        text = (tmp_path / "demo" / page).read_text(encoding="utf-8")
        assert "feeds.example.org" not in text and 'href="http://127.0.0.1:' in text, page
    assert "Run from a terminal, the demo keeps serving http://127.0.0.1:" in run.stdout


def test_a_bad_selector_stops_fetch_with_exit_2_naming_it(
    server: SnapshotServer, tmp_path: Path
) -> None:
    config = write_config(server, tmp_path)
    text = config.read_text(encoding="utf-8").replace(
        'title = ["h3.teaser-title a"', 'title = ["h3.teaser-title >> a"'
    )
    config.write_text(text, encoding="utf-8")
    for command in (["check"], ["fetch"]):
        run = iomfeed("--config", str(config), *command, cwd=tmp_path)
        assert run.returncode == 2, (command, run.stderr)
        assert (
            "sources[0].listing.title[0]: invalid CSS selector 'h3.teaser-title >> a'" in run.stderr
        )


@pytest.mark.parametrize("command", ["fetch", "run"])
def test_a_second_run_on_the_same_database_exits_75(
    server: SnapshotServer, tmp_path: Path, command: str
) -> None:
    import signal
    import time

    config = write_config(server, tmp_path)
    server.add_fault("/news", Fault(status=200, delay=6.0, times=2))
    first = subprocess.Popen(
        [sys.executable, "-m", "iomfeed", "--config", str(config), command],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while server.hits("/news") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # the first run holds the lock and waits for the listing
        second = iomfeed("--config", str(config), command, "--wait", "0", cwd=tmp_path)
        assert second.returncode == 75
        assert second.stderr.count("\n") == 1 and "another iomfeed run" in second.stderr
        assert server.hits("/news") == 1  # the second run fetched nothing
        first.send_signal(signal.SIGKILL)  # a run killed while holding the lock...
        first.wait(timeout=20)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    third = iomfeed("--config", str(config), command, cwd=tmp_path)  # ...does not block the next
    assert third.returncode == 0, third.stderr


def test_run_fetches_then_publishes_and_a_quiet_rerun_writes_nothing(
    server: SnapshotServer, tmp_path: Path
) -> None:
    config = write_config(server, tmp_path)
    first = iomfeed("--config", str(config), "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "published to" in first.stderr
    feeds = tmp_path / "feeds"
    stamps = {p: p.stat().st_mtime_ns for p in feeds.rglob("*") if p.is_file()}
    assert feeds / "atom.xml" in stamps and feeds / "category" / "local" / "rss.xml" in stamps
    again = iomfeed("--config", str(config), "-q", "run", cwd=tmp_path)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert {p: p.stat().st_mtime_ns for p in feeds.rglob("*") if p.is_file()} == stamps
    only = iomfeed("--config", str(config), "publish", cwd=tmp_path)
    assert only.returncode == 0 and "0 file(s) written" in only.stderr
