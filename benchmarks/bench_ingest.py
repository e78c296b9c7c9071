"""Ingest benchmarks: a cold backfill of a generated site, and a run over the unchanged site.

Every run of iomfeed is a real ``python -m iomfeed fetch`` process against a real HTTP server
on 127.0.0.1 (in this process, on its own threads), timed from outside, with the peak memory
of that process from ``wait4``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dev.sitegen import build_site, synthetic_items
from iomfeed.config import LIVE_ORIGIN
from iomfeed.demo.server import SnapshotServer

ROOT = Path(__file__).resolve().parent.parent
#: The share of the generated site's articles with no date anywhere, as in a real archive.
UNDATED = 0.03


@dataclass(frozen=True)
class Row:
    name: str
    value: float
    unit: str
    baseline: float | None
    baseline_name: str
    target: str
    ok: bool

    def cells(self) -> tuple[str, str, str, str, str, str]:
        ratio = f"{self.value / self.baseline:.2f}x" if self.baseline else "-"
        base = f"{self.baseline:.1f} ({self.baseline_name})" if self.baseline else "-"
        return (
            self.name,
            f"{self.value:.1f} {self.unit}",
            base,
            ratio,
            self.target,
            "yes" if self.ok else "NO",
        )


def timed(command: list[str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and exit code of one process."""
    wall, peak, code, _cpu = timed_cpu(command, cwd)
    return wall, peak, code


def timed_cpu(command: list[str], cwd: Path) -> tuple[float, float, int, float]:
    """Wall seconds, peak RSS in MB, exit code and CPU seconds (user + system) of one
    process: the CPU time moves far less than the wall time when the machine is shared."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="0")
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode not in (0,):
        print(stderr, file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, proc.returncode, usage.ru_utime + usage.ru_stime


def fetch_all_plain(urls: list[str]) -> None:
    """Baseline: the same article pages fetched with urllib and nothing else done."""
    for url in urls:
        with urllib.request.urlopen(url, timeout=10) as resp:
            resp.read()


@dataclass(frozen=True)
class Backfill:
    """One cold ``fetch`` of a generated site, as measured from outside."""

    articles: int
    wall: float
    cpu: float
    peak: float
    plain_rate: float  # the same article pages fetched with urllib alone, articles/s

    @property
    def rate(self) -> float:
        return self.articles / self.wall

    @property
    def cpu_ms(self) -> float:
        return self.cpu * 1000 / self.articles


def _serve_and_fetch(
    work: Path, articles: int, *, repeat: int = 0
) -> tuple[Backfill, list[float], list[float]]:
    """A cold backfill of an ``articles``-article site, then ``repeat`` runs over it
    unchanged (their wall seconds and peak MB)."""
    site = work / "site"
    items = synthetic_items(articles, undated=UNDATED)
    build_site(items, site)
    with SnapshotServer(site) as server:
        text = (ROOT / "config.toml").read_text(encoding="utf-8")
        text = text.replace(LIVE_ORIGIN, server.origin)
        text = text.replace("min_delay = 0.5", "min_delay = 0.0")
        text = text.replace("max_pages = 10", f"max_pages = {articles // 10 + 5}")
        config = work / "config.toml"
        config.write_text(text, encoding="utf-8")
        iomfeed = [sys.executable, "-m", "iomfeed", "--quiet", "--config", str(config), "fetch"]

        article_urls = [server.url(f"/news/{item.slug}") for item in items]
        t0 = time.perf_counter()
        fetch_all_plain(article_urls[:1000])
        plain_rate = min(articles, 1000) / (time.perf_counter() - t0)

        wall, peak, code, cpu = timed_cpu(iomfeed, work)
        if code != 0:
            raise SystemExit(f"backfill failed with exit code {code}")
        unchanged: list[float] = []
        peaks: list[float] = []
        for _ in range(repeat):
            w, p, code = timed(iomfeed, work)
            if code != 0:
                raise SystemExit(f"unchanged run failed with exit code {code}")
            unchanged.append(w)
            peaks.append(p)
    return Backfill(articles, wall, cpu, peak, plain_rate), unchanged, peaks


def cold_small_runs(articles: int = 50, repeat: int = 5) -> list[Backfill]:
    """``repeat`` cold runs of a small site, each on a new store."""
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="iomfeed-bench-") as tmp:
            runs.append(_serve_and_fetch(Path(tmp), articles)[0])
    return runs


def ingest_rows(*, articles: int, repeat: int, large: bool = False) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="iomfeed-bench-") as tmp:
        work = Path(tmp)
        backfill, unchanged, peaks = _serve_and_fetch(work, articles, repeat=repeat)
        imports = [timed([sys.executable, "-c", "import iomfeed"], work)[0] for _ in range(repeat)]
    unchanged_ms = statistics.median(unchanged) * 1000
    import_ms = statistics.median(imports) * 1000
    small = cold_small_runs(50, repeat)
    small_ms = statistics.median(run.wall for run in small) * 1000
    small_cpu = statistics.median(run.cpu for run in small) * 1000
    rows = [
        Row(
            "backfill: articles/s",
            backfill.rate,
            "/s",
            backfill.plain_rate,
            "urllib GET only",
            ">= 500 /s",
            backfill.rate >= 500,
        ),
        Row("backfill: CPU per article", backfill.cpu_ms, "ms", None, "", "report", True),
        Row("backfill: peak memory", backfill.peak, "MB", None, "", "report", True),
        Row("cold 50-article run: wall", small_ms, "ms", None, "", "<= 150 ms", small_ms <= 150),
        Row("cold 50-article run: CPU", small_cpu, "ms", None, "", "report", True),
        Row(
            "unchanged run: wall",
            unchanged_ms,
            "ms",
            import_ms,
            "import iomfeed",
            "< 300 ms",
            unchanged_ms < 300,
        ),
        Row("unchanged run: peak memory", max(peaks), "MB", None, "", "report", True),
    ]
    if large:
        rows += large_rows(backfill)
    return rows


def large_rows(small: Backfill, articles: int = 50_000) -> list[Row]:
    """A 50k-article backfill: its CPU per article against the 1k one's (within 1.2x)."""
    with tempfile.TemporaryDirectory(prefix="iomfeed-bench-") as tmp:
        big = _serve_and_fetch(Path(tmp), articles)[0]
    ratio = big.cpu_ms / small.cpu_ms
    return [
        Row(f"backfill {articles}: articles/s", big.rate, "/s", None, "", "report", True),
        Row(
            f"backfill {articles}: CPU per article",
            big.cpu_ms,
            "ms",
            small.cpu_ms,
            f"{small.articles} articles",
            "<= 1.2x",
            ratio <= 1.2,
        ),
        Row(f"backfill {articles}: peak memory", big.peak, "MB", None, "", "report", True),
    ]
