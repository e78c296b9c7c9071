"""The peers benchmark (benchmarks/peers.py), its fast parts: how a target is judged, which
rows fail the run and which only report, the table it prints, the order its repeats
interleave in, the config edits it makes, the RSS feed it serves rss2email, and that its
floor is a conditional GET. The timed rows run only from the command line."""

from __future__ import annotations

import email.utils
import importlib.util
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import ROOT


def _load(name: str) -> ModuleType:
    folder = str(ROOT / "benchmarks")
    if folder not in sys.path:
        sys.path.append(folder)  # the harness imports its neighbours by name
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


report = _load("peers_report")


def test_a_target_bounds_the_value_or_its_ratio_to_the_first_peer() -> None:
    at_most = report.Target(60, at_least=False)
    assert at_most.met(60.0, None) and not at_most.met(60.1, None)
    assert at_most.text("ms") == "<= 60 ms"
    at_least = report.Target(500, at_least=True)
    assert at_least.met(500.0, 1.0) and not at_least.met(499.0, 1e9)
    ratio = report.Target(0.95, at_least=True, of_peer=True)
    assert ratio.met(95.0, 100.0) and not ratio.met(94.0, 100.0)
    assert not ratio.met(95.0, None) and not ratio.met(95.0, 0.0)  # no peer: not met
    assert ratio.text("msg/s", "smtplib alone") == ">= 0.95x smtplib alone"
    within = report.Target(1.2, at_least=False, of_peer=True)
    assert within.met(6.0, 5.0) and not within.met(6.1, 5.0)


def test_only_a_missed_target_fails_the_run() -> None:
    met = report.Row("a", 40.0, "ms", (("peer", 80.0),), report.Target(60, False), 30.0)
    missed = report.Row("b", 70.0, "ms", (), report.Target(60, False), 30.0)
    unsupported = report.Row("c", None, "msg/s", note="not supported by this tree")
    shown = report.Row("d", 12.0, "msg/s", (("unsigned", 20.0),), peak_mb=50.0)
    assert [r.verdict() for r in (met, missed, unsupported, shown)] == [
        "ok",
        "MISSED",
        "not measured",
        "report",
    ]
    assert report.all_met([met, unsupported, shown])
    assert not report.all_met([met, missed, unsupported])


def test_memory_is_a_target_of_its_own() -> None:
    fast = report.Target(150, False)
    assert report.Row("p", 100.0, "ms", (), fast, peak_mb=79.0, max_mb=80).verdict() == "ok"
    heavy = report.Row("p", 100.0, "ms", (), fast, peak_mb=81.0, max_mb=80)
    assert heavy.verdict() == "MISSED"
    slow = report.Row("p", 151.0, "ms", (), fast, peak_mb=10.0, max_mb=80)
    assert slow.verdict() == "MISSED"
    unmeasured = report.Row("p", 100.0, "ms", (), fast, peak_mb=None, max_mb=80)
    assert unmeasured.verdict() == "MISSED"  # a memory target needs a figure


def test_the_table_shows_every_peer_the_ratio_to_the_first_and_the_target() -> None:
    rows = [
        report.Row(
            "cron | 1k",
            120.0,
            "ms",
            (("r2e run", 100.0), ("floor", 40.0)),
            report.Target(60, False),
            31.6,
            note="note",
        ),
        report.Row("connections = 2", None, "msg/s", note="not supported by this tree"),
        report.Row("publish", 90.0, "ms", (), report.Target(150, False), 60.0, 80),
    ]
    lines = report.markdown(rows)
    assert lines[0].startswith("| work |") and lines[1] == "|" + "---|" * len(report.HEADER)
    assert lines[2] == (
        "| cron \\| 1k | 120.0 ms | r2e run: 100.0 ms; floor: 40.0 ms | 1.20x | <= 60 ms"
        " | 32 MB | MISSED (note) |"
    )
    assert lines[3] == (
        "| connections = 2 | - | - | - | - | - | not measured (not supported by this tree) |"
    )
    assert lines[4] == "| publish | 90.0 ms | - | - | <= 150 ms, <= 80 MB | 60 MB | ok |"


def test_repeats_interleave_with_the_order_rotated_every_round() -> None:
    calls: list[str] = []

    def job(name: str) -> object:
        def run() -> str:
            calls.append(name)
            return f"{name}{len(calls)}"

        return run

    found = report.interleave({n: job(n) for n in "abc"}, 4)
    assert calls == list("abcbcacababc")
    assert found == {
        "a": ["a1", "a6", "a8", "a10"],
        "b": ["b2", "b4", "b9", "b11"],
        "c": ["c3", "c5", "c7", "c12"],
    }
    assert report.median([3.0, 1.0, 2.0]) == 2.0
    assert report.interleave({}, 3) == {}


def test_the_config_edits_apply_to_the_shipped_config_or_say_what_is_missing() -> None:
    shipped = (ROOT / "config.toml").read_text(encoding="utf-8")
    smtp = shipped.replace('transport = "outbox"', 'transport = "smtp"', 1)
    import tomllib

    two = report.with_connections(smtp, 2)
    assert tomllib.loads(two)["mail"]["connections"] == 2  # valid TOML: set once, in [mail]
    # A tree whose shipped config does not set it yet (before the key existed) gets it added.
    older = smtp.replace("\nconnections = 1\n", "\n")
    assert tomllib.loads(report.with_connections(older, 4))["mail"]["connections"] == 4
    signed = report.with_dkim(smtp, "/keys/dkim.pem")
    dkim = signed[signed.index("[mail.dkim]") :]
    assert 'selector = "bench"' in dkim and 'key_file = "/keys/dkim.pem"' in dkim
    assert signed[: signed.index("[mail.dkim]")] == smtp[: smtp.index("[mail.dkim]")]
    assert 'transport = "outbox"' in report.with_outbox(smtp)
    with pytest.raises(SystemExit, match="transport"):
        report.with_outbox(shipped)  # already the outbox: nothing to replace
    with pytest.raises(SystemExit, match="rate = 0"):
        report.with_connections(older.replace("\nrate = 0\n", "\nrate = 5\n"), 2)


def test_the_rss_feed_lists_every_story_escaped_with_its_date() -> None:
    when = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    entries = [
        report.FeedEntry(f"Story {n} <&> Tiranë", f"https://h.example/news/s{n}", when, "a & b")
        for n in range(3)
    ]
    root = ET.fromstring(report.rss("News & more", "https://h.example", entries))
    items = root.findall("./channel/item")
    assert root.findtext("./channel/title") == "News & more"
    assert [i.findtext("title") for i in items] == [f"Story {n} <&> Tiranë" for n in range(3)]
    assert [i.findtext("guid") for i in items] == [f"https://h.example/news/s{n}" for n in range(3)]
    assert all(
        email.utils.parsedate_to_datetime(i.findtext("pubDate") or "") == when for i in items
    )
    assert items[0].findtext("description") == "a & b"


def test_the_floor_asks_again_with_the_etag_and_gets_not_modified(tmp_path: Path) -> None:
    from iomfeed.demo.server import SnapshotServer

    work = _load("peers_work")
    site = tmp_path / "site"
    site.mkdir()
    (site / "rss.xml").write_bytes(report.rss("t", "https://h.example", []))
    with SnapshotServer(site) as server:
        url = server.url("/rss.xml")
        for _ in range(2):
            sample = work.python("-c", work.FLOOR, url, str(tmp_path / "f.db"), cwd=tmp_path)
            assert sample.code == 0 and sample.peak_mb > 0 and sample.wall > 0
        first, second = server.requests
    assert first.status == 200 and "if-none-match" not in first.headers
    assert second.status == 304 and second.headers["if-none-match"]


def test_the_rss2email_peer_runs_on_an_unchanged_feed_with_its_etag(tmp_path: Path) -> None:
    from iomfeed.demo.server import SnapshotServer

    work = _load("peers_work")
    if work.r2e_command() is None:
        pytest.skip("rss2email (the bench extra) is not installed")
    when = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    site = tmp_path / "site"
    site.mkdir()
    entries = [report.FeedEntry(f"S{n}", f"https://h.example/s{n}", when, "x") for n in range(5)]
    (site / "rss.xml").write_bytes(report.rss("t", "https://h.example", entries))
    with SnapshotServer(site) as server:
        peer = work.Rss2email(tmp_path / "r2e", server.url("/rss.xml"), 9)  # nothing sent
        assert peer.run().code == 0
        requests = [r for r in server.requests if r.path == "/rss.xml"]
    assert [r.status for r in requests] == [200, 304]
    assert requests[1].headers["if-none-match"]
