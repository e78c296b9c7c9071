"""Cron benchmarks: ``iomfeed run`` with nothing new, at 1k and at 50k stored items, and the
read-only commands ``status`` and ``items --limit 20``, each beside ``python -c pass``
measured in the same run (the floor every whole-process figure stands on).

The 1k store is a real backfill of a generated site served on 127.0.0.1; the 50k store adds
the other items straight through the store (a real backfill of 50k would take minutes and
measures the fetch, not the quiet cycle). The first run after the fill publishes them; the
measured runs after it have nothing new: every listing page answers 304. Each figure is the
median of ``repeat`` processes, interleaved with the ``python -c pass`` ones, with its CPU
time (user + system, from ``wait4``) and peak memory. A quiet run must leave every
published file as it was: the row says so, and fails if one was rewritten.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_ingest import ROOT, Row
from dev.sitegen import build_site, synthetic_items
from iomfeed.config import LIVE_ORIGIN
from iomfeed.demo.server import SnapshotServer
from iomfeed.intents import NewItem
from iomfeed.models import DateSource, Item
from iomfeed.store import Store

RUN_TARGET_MS = 60.0
READ_TARGET_MS = 50.0


def measure(command: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall ms, CPU ms (user + system) and peak RSS in MB of one process; exits on failure."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="0")
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(command[-3:])} failed with exit code {code}:\n{stderr}")
    return wall * 1000, (usage.ru_utime + usage.ru_stime) * 1000, usage.ru_maxrss / 1024


def snapshot(folder: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def fill(db: Path, count: int) -> None:
    """Add ``count`` items of the configured source straight through the store."""
    now = datetime.now(UTC)
    with Store(db, tag_authority="feeds.example.org") as store, store.transaction():
        for n in range(count):
            published = now - timedelta(days=30, hours=3 * n)
            item = Item(
                source="iom-albania",
                url=f"https://albania.iom.int/news/filled-{n}",
                title=f"Stored news item number {n} about migration in Albania",
                summary_html=f"<p>Summary of item {n}.</p>",
                content_html=f"<p>Body of item {n}, on migration governance.</p>",
                published=published,
                date_source=DateSource.TIME,
                categories=(("Local", "Global")[n % 2],),
                language="en",
            )
            new = NewItem(item, published, DateSource.TIME, f"v1:{n:064d}", published)
            store.insert_item(new, now - timedelta(days=1))


class Runner:
    """The commands of one store, measured interleaved with ``python -c pass``."""

    def __init__(self, work: Path, config: Path, repeat: int) -> None:
        self.work, self.repeat = work, repeat
        self.base = [sys.executable, "-m", "iomfeed", "--quiet", "--config", str(config)]
        self.floor: list[float] = []

    def series(self, *args: str) -> tuple[float, float, float]:
        """Median wall ms, median CPU ms and the largest peak MB of ``repeat`` runs."""
        walls, cpus, peaks = [], [], []
        for _ in range(self.repeat):
            wall, cpu, peak = measure([*self.base, *args], self.work)
            walls.append(wall)
            cpus.append(cpu)
            peaks.append(peak)
            self.floor.append(measure([sys.executable, "-c", "pass"], self.work)[0])
        return statistics.median(walls), statistics.median(cpus), max(peaks)

    def quiet_runs(self, label: str) -> list[Row]:
        feeds = self.work / "feeds"
        measure([*self.base, "run"], self.work)  # publishes whatever changed before
        before = snapshot(feeds)
        wall, cpu, peak = self.series("run")
        kept = snapshot(feeds) == before
        floor = statistics.median(self.floor)
        return [
            Row(
                f"cron run, nothing new, {label}" + ("" if kept else " (FILES REWRITTEN)"),
                wall,
                "ms",
                floor,
                "python -c pass",
                f"<= {RUN_TARGET_MS:.0f} ms",
                wall <= RUN_TARGET_MS and kept,
            ),
            Row(f"cron run, {label}: CPU, peak {peak:.0f} MB", cpu, "ms", None, "", "report", True),
        ]

    def reads(self, label: str) -> list[Row]:
        rows = []
        for args in (("status",), ("items", "--limit", "20")):
            wall, cpu, peak = self.series(*args)
            rows.append(
                Row(
                    f"{' '.join(args)}, {label} (CPU {cpu:.0f} ms, {peak:.0f} MB)",
                    wall,
                    "ms",
                    statistics.median(self.floor),
                    "python -c pass",
                    f"<= {READ_TARGET_MS:.0f} ms",
                    wall <= READ_TARGET_MS,
                )
            )
        return rows


def cron_rows(*, articles: int = 1000, stored: int = 50_000, repeat: int = 7) -> list[Row]:
    """The quiet cycle at ``articles`` (a real backfill) and ``stored`` items (0: skip)."""
    with tempfile.TemporaryDirectory(prefix="iomfeed-bench-cron-") as tmp:
        work = Path(tmp)
        build_site(synthetic_items(articles), work / "site")
        with SnapshotServer(work / "site") as server:
            text = (ROOT / "config.toml").read_text(encoding="utf-8")
            text = text.replace(LIVE_ORIGIN, server.origin)
            text = text.replace("min_delay = 0.5", "min_delay = 0.0")
            text = text.replace("max_pages = 10", f"max_pages = {articles // 10 + 5}")
            config = work / "config.toml"
            config.write_text(text, encoding="utf-8")
            runner = Runner(work, config, repeat)
            measure([*runner.base, "run"], work)  # the backfill
            rows = runner.quiet_runs(f"{articles} stored")
            rows += runner.reads(f"{articles} stored")
            if stored > articles:
                fill(work / "iomfeed.db", stored - articles)
                rows += runner.quiet_runs(f"{stored} stored")
                rows += runner.reads(f"{stored} stored")
        floor = statistics.median(runner.floor)
        rows.append(Row("python -c pass (the floor)", floor, "ms", None, "", "report", True))
        return rows
