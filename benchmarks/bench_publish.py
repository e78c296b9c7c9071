"""Publish benchmarks: a store of 20,000 items, feeds of 50 items plus all the archives.

Times whole ``python -m iomfeed publish`` processes (wall time, and peak memory from wait4):
the first full build, and a rebuild after one new item, which must touch only the
subscription feeds, the index and one archive page.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_ingest import ROOT, Row, timed
from iomfeed.ingest import upsert
from iomfeed.models import DateSource, Item
from iomfeed.store import Store

CATEGORIES = ("Local", "Global")


def make_item(n: int, start: datetime) -> Item:
    published = start - timedelta(hours=9 * n)
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


def publish_rows(*, items: int) -> list[Row]:
    start = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="iomfeed-bench-publish-") as tmp:
        work = Path(tmp)
        with Store(work / "iomfeed.db", tag_authority="feeds.example.org") as store:
            store.db.execute("BEGIN")
            for n in range(1, items + 1):
                store._insert(store.db, make_item(n, start), start)
            store.db.execute("COMMIT")
        config = work / "config.toml"
        config.write_text((ROOT / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
        command = [sys.executable, "-m", "iomfeed", "--quiet", "--config", str(config), "publish"]
        full, full_peak, code = timed(command, work)
        if code != 0:
            raise SystemExit(f"full build failed with exit code {code}")
        feeds = work / "feeds"
        before = {p: p.stat().st_mtime_ns for p in feeds.rglob("*") if p.is_file()}
        with Store(work / "iomfeed.db", tag_authority="feeds.example.org") as store:
            upsert(store, make_item(0, start + timedelta(hours=9)), start + timedelta(days=1))
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
