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
    return wall, usage.ru_maxrss / 1024, proc.returncode


def fetch_all_plain(urls: list[str]) -> None:
    """Baseline: the same article pages fetched with urllib and nothing else done."""
    for url in urls:
        with urllib.request.urlopen(url, timeout=10) as resp:
            resp.read()


def ingest_rows(*, articles: int, repeat: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="iomfeed-bench-") as tmp:
        work = Path(tmp)
        site = work / "site"
        build_site(synthetic_items(articles), site)
        with SnapshotServer(site) as server:
            text = (ROOT / "config.toml").read_text(encoding="utf-8")
            text = text.replace(LIVE_ORIGIN, server.origin)
            text = text.replace("min_delay = 0.5", "min_delay = 0.0")
            text = text.replace("max_pages = 10", f"max_pages = {articles // 10 + 5}")
            config = work / "config.toml"
            config.write_text(text, encoding="utf-8")
            iomfeed = [sys.executable, "-m", "iomfeed", "--quiet", "--config", str(config), "fetch"]

            article_urls = [server.url(f"/news/{item.slug}") for item in synthetic_items(articles)]
            t0 = time.perf_counter()
            fetch_all_plain(article_urls)
            plain_rate = articles / (time.perf_counter() - t0)

            wall, peak, code = timed(iomfeed, work)
            if code != 0:
                raise SystemExit(f"backfill failed with exit code {code}")
            rate = articles / wall

            unchanged = []
            peaks = []
            for _ in range(repeat):
                w, p, code = timed(iomfeed, work)
                if code != 0:
                    raise SystemExit(f"unchanged run failed with exit code {code}")
                unchanged.append(w)
                peaks.append(p)
            imports = [
                timed([sys.executable, "-c", "import iomfeed"], work)[0] for _ in range(repeat)
            ]
        unchanged_ms = statistics.median(unchanged) * 1000
        import_ms = statistics.median(imports) * 1000
        return [
            Row(
                "backfill: articles/s",
                rate,
                "/s",
                plain_rate,
                "urllib GET only",
                ">= 100 /s",
                rate >= 100,
            ),
            Row("backfill: peak memory", peak, "MB", None, "", "report", True),
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
