"""Publish benchmarks: a store of 20,000 items, feeds of 50 items plus all the archives; with
``--large``, also a store of 50,000 items (dated over the last 15 years, as a real site's).

The 20,000 rows time whole ``python -m iomfeed publish`` processes (wall time, and peak memory
from wait4): the first full build, and a rebuild after one new item, which must touch only the
subscription feeds, the index and one archive page.

The 50,000 rows measure what must not grow with the store: the unchanged publish (``iomfeed
publish`` with nothing new since the last one) and the rebuild after one new item. Each run
is a child process that does what ``iomfeed publish`` does and times the publish itself
(``pipeline.publish``: the publish work, wall and CPU), with the peak memory of the whole
process (its ``ru_maxrss``); the whole process's wall time is shown beside it. Medians of
several runs; every rebuild must rewrite exactly one archive page.

The store is filled through the store API (the decider's intents, one transaction), not by a
backfill: setting it up takes seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_ingest import ROOT, Row, timed
from iomfeed.decide import decide_item
from iomfeed.ingest import upsert
from iomfeed.intents import NewItem, StoredState
from iomfeed.models import DateSource, Item
from iomfeed.store import Store

CATEGORIES = ("Local", "Global")
START = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
#: Hours between two items of the large store: 50,000 items over 15 years.
LARGE_SPACING = 15 * 365.25 * 24 / 50_000
#: Targets of the large store's rows (issue 13): publish work and peak memory.
LARGE_MS = 150
LARGE_MB = 80

#: The child process: what ``iomfeed publish`` does, with the publish itself timed.
CHILD = """
import json, resource, sys, time
from pathlib import Path
from iomfeed.config import load_config
from iomfeed.pipeline import publish
from iomfeed.runtime import open_runtime

config = load_config(Path(sys.argv[1]), compile_selectors=False)
with open_runtime(config, lock="iomfeed publish") as rt:
    store = rt.store  # opened (and checked) as every command does, before the clock starts
    wall, cpu = time.perf_counter(), time.process_time()
    report = publish(config, store=store, now=rt.clock())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "cpu": cpu, "peak": peak, "written": list(report.written)}))
"""


def make_item(n: int, start: datetime, *, hours: float = 9.0) -> Item:
    """Item ``n``, published ``n * hours`` hours before ``start`` (newer for smaller n)."""
    published = start - timedelta(hours=hours * n)
    body = "".join(
        f"<p>Paragraph {k} of item {n}: IOM Albania worked with partners in Tiranë,"
        f" Durrës and Shkodër on migration governance.</p>"
        for k in range(6)
    )
    return Item(
        source="iom-albania",
        url=f"https://albania.iom.int/news/item-{n}",
        title=f"Generated news item number {n} about migration in Albania",
        summary_html=f"<p>Summary of item {n}.</p>",
        content_html=body,
        published=published,
        date_source=DateSource.TIME,
        image_url=f"https://albania.iom.int/files/{n}.png",
        categories=(CATEGORIES[n % 2],),
        language="en",
    )


def fill(path: Path, items: int, *, hours: float = 9.0) -> None:
    """A store of ``items`` generated items, through the store API in one transaction."""
    with Store(path, tag_authority="feeds.example.org") as store, store.transaction():
        for n in range(1, items + 1):
            intent = decide_item(
                make_item(n, START, hours=hours), StoredState(), now=START, rank={}
            )
            assert isinstance(intent, NewItem)
            store.insert_item(intent, START)


def _setup(work: Path, items: int, *, hours: float = 9.0) -> list[str]:
    """Fill a store in ``work`` and write its config; the publish command."""
    fill(work / "iomfeed.db", items, hours=hours)
    config = work / "config.toml"
    config.write_text((ROOT / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
    return [sys.executable, "-m", "iomfeed", "--quiet", "--config", str(config), "publish"]


def _add_item(work: Path, n: int, *, hours: float = 9.0) -> None:
    """Item ``n`` (negative: newer than every other), fetched a day after ``START``."""
    with Store(work / "iomfeed.db", tag_authority="feeds.example.org") as store:
        upsert(store, make_item(n, START, hours=hours), START + timedelta(days=1))


def publish_rows(*, items: int, large: bool = False, repeat: int = 5) -> list[Row]:
    """The 20,000-item rows (``items``), and with ``large`` the 50,000-item ones."""
    rows = _whole_process_rows(items=items)
    if large:
        rows += large_rows(items=50_000, repeat=repeat)
    return rows


def _whole_process_rows(*, items: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="iomfeed-bench-publish-") as tmp:
        work = Path(tmp)
        command = _setup(work, items)
        full, full_peak, code = timed(command, work)
        if code != 0:
            raise SystemExit(f"full build failed with exit code {code}")
        feeds = work / "feeds"
        before = {p: p.stat().st_mtime_ns for p in feeds.rglob("*") if p.is_file()}
        _add_item(work, 0)
        again, again_peak, code = timed(command, work)
        rewritten = [
            p for p in feeds.rglob("*") if p.is_file() and before.get(p) != p.stat().st_mtime_ns
        ]
        archives_rewritten = sum(1 for p in rewritten if p.parent.name == "archive")
        if code != 0:
            raise SystemExit(f"rebuild failed with exit code {code}")
        startup = min(timed([sys.executable, "-m", "iomfeed", "--help"], work)[0] for _ in range(3))
        archives = len(list((work / "feeds" / "archive").glob("*.xml")))
    return [
        Row(
            f"publish {items} items: full build ({archives} archives)",
            full * 1000,
            "ms",
            startup * 1000,
            "iomfeed --help",
            "report",
            True,
        ),
        Row("publish: full build peak memory", full_peak, "MB", None, "", "report", True),
        Row(
            f"publish: rebuild after one new item ({len(rewritten)} files,"
            f" {archives_rewritten} archive)",
            again * 1000,
            "ms",
            startup * 1000,
            "iomfeed --help",
            "< 500 ms, 1 archive",
            again < 0.5 and archives_rewritten == 1,
        ),
        Row(
            "publish: rebuild peak memory", again_peak, "MB", None, "", "< 150 MB", again_peak < 150
        ),
    ]


@dataclass(frozen=True, slots=True)
class Measured:
    """One publish in a child process."""

    wall: float  # seconds of the publish itself
    cpu: float  # its CPU seconds (user + system)
    peak: float  # MB, the whole process's ru_maxrss
    process: float  # seconds, the whole process
    written: tuple[str, ...]


def child_publish(work: Path) -> Measured:
    """What ``iomfeed publish`` does, in a child process, with the publish itself timed."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="0")
    start = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(work / "config.toml")],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        out, err = proc.communicate()
    process = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"publish failed with exit code {proc.returncode}:\n{err.decode()}")
    got = json.loads(out)
    return Measured(got["wall"], got["cpu"], got["peak"], process, tuple(got["written"]))


def large_rows(*, items: int, repeat: int) -> list[Row]:
    """The unchanged publish and the rebuild after one new item at ``items`` stored."""
    with tempfile.TemporaryDirectory(prefix="iomfeed-bench-publish-large-") as tmp:
        work = Path(tmp)
        command = _setup(work, items, hours=LARGE_SPACING)
        full, full_peak, code = timed(command, work)
        if code != 0:
            raise SystemExit(f"full build failed with exit code {code}")
        archives = len(list((work / "feeds" / "archive").glob("*.xml")))
        unchanged = [child_publish(work) for _ in range(repeat)]
        rebuilds = []
        for n in range(repeat):
            _add_item(work, -n, hours=LARGE_SPACING)
            rebuilds.append(child_publish(work))
    rows = [
        Row(
            f"publish {items} items: full build ({archives} archives)",
            full * 1000,
            "ms",
            None,
            "",
            "report",
            True,
        ),
        Row(f"publish {items}: full build peak memory", full_peak, "MB", None, "", "report", True),
    ]
    for name, want, runs in (
        ("unchanged publish", 0, unchanged),
        ("rebuild after one new item", 1, rebuilds),
    ):
        rows += _large(f"publish {items}: {name}", want, runs)
    return rows


def _large(name: str, want: int, runs: list[Measured]) -> list[Row]:
    """Three rows for ``runs``: publish work (medians), its CPU, the peak memory (the
    highest); ``want``: the archive pages each run must rewrite."""
    archived = sorted({sum(p.startswith("archive/") for p in r.written) for r in runs})
    ms = statistics.median(r.wall for r in runs) * 1000
    files = statistics.median(len(r.written) for r in runs)
    peak = max(r.peak for r in runs)
    return [
        Row(
            f"{name}, publish work ({files:g} files, {archived} archive pages)",
            ms,
            "ms",
            statistics.median(r.process for r in runs) * 1000,
            "whole process",
            f"<= {LARGE_MS} ms, {want} archive",
            ms <= LARGE_MS and archived == [want],
        ),
        Row(
            f"{name}, publish CPU",
            statistics.median(r.cpu for r in runs) * 1000,
            "ms",
            None,
            "",
            "report",
            True,
        ),
        Row(f"{name}, peak memory", peak, "MB", None, "", f"<= {LARGE_MB} MB", peak <= LARGE_MB),
    ]
