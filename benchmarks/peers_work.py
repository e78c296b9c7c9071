"""What ``peers.py`` measures: child processes timed from outside (wall, CPU, peak RSS from
``wait4``), the peers and floors it runs beside iomfeed, and the stores they run on.

iomfeed is driven only through its command line (a :class:`compare.Tree` of the working
tree), so the harness measures whatever code the tree has; only the 50k-item store is
filled through the store's Python API, in an untimed setup step.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from compare import Site, Tree, configure
from peers_report import FeedEntry, rss

#: The floor of a cron cycle: the interpreter, one conditional GET, one SQLite write.
FLOOR = """
import http.client, sqlite3, sys, urllib.parse
url, db = sys.argv[1], sqlite3.connect(sys.argv[2])
db.execute("CREATE TABLE IF NOT EXISTS seen (url TEXT PRIMARY KEY, etag TEXT, at REAL)")
row = db.execute("SELECT etag FROM seen WHERE url = ?", (url,)).fetchone()
parts = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
conn.request("GET", parts.path, headers={"If-None-Match": row[0]} if row else {})
resp = conn.getresponse()
resp.read()
etag = resp.getheader("ETag") if resp.status == 200 else row[0]
db.execute("INSERT OR REPLACE INTO seen VALUES (?, ?, julianday('now'))", (url, etag))
db.commit()
"""

#: The floor of a backfill: the same pages fetched, nothing parsed (URLs on stdin).
FETCH_ONLY = """
import sys, urllib.request
for url in sys.stdin.read().split():
    with urllib.request.urlopen(url, timeout=10) as resp:
        resp.read()
"""

#: smtplib alone: the same message bytes COUNT times over one connection.
SMTPLIB = """
import smtplib, socket, sys
port, path, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
data = open(path, "rb").read()
smtp = smtplib.SMTP("127.0.0.1", port)
smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for n in range(count):
    smtp.sendmail("news@feeds.example.org", [f"r{n}@example.org"], data,
                  mail_options=["BODY=8BITMIME"])
smtp.quit()
"""


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # seconds, user + system, of the child alone
    peak_mb: float  # its ru_maxrss
    code: int
    output: str


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "IOMFEED"))}


def measure(
    command: Sequence[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: bytes = b"",
    check: bool = True,
) -> Sample:
    """One child process, timed from outside; its own rusage from ``wait4``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as given:
        given.write(stdin)
        given.seek(0)
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=clean_env() if env is None else env,
            stdin=given,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if check and code != 0:
        raise SystemExit(f"{' '.join(command)} exited with {code}\n{text}")
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code, text)


def iomfeed(tree: Tree, work: Path, *args: str, check: bool = True) -> Sample:
    command = [sys.executable, "-m", "iomfeed", "--quiet", "--config", "config.toml", *args]
    return measure(command, work, tree.env(), check=check)


def python(*args: str, cwd: Path, stdin: bytes = b"") -> Sample:
    return measure([sys.executable, *args], cwd, stdin=stdin)


def fresh(tree: Tree, scratch: Path, name: str, origin: str, smtp_port: int, pages: int) -> Path:
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch))
    configure(tree, work, origin, smtp_port, pages)
    return work


def copy_store(src: Path, dst: Path) -> None:
    for path in src.glob("iomfeed.db*"):
        shutil.copy2(path, dst / path.name)


def site_urls(origin: str, site: Site, articles: int) -> list[str]:
    """The listing pages and articles a backfill of the served site fetches."""
    pages = [f"{origin}/news?page={n}" for n in range(articles // 10 + 1)]
    slugs = sorted(p.stem for p in (site.served / "news").glob("*.html"))
    return pages + [f"{origin}/news/{s}" for s in slugs if not s.startswith(("index", "page-"))]


def write_feed(site: Site, articles: int) -> str:
    """``rss.xml`` in the served site: the same stories as the site, for rss2email; returns
    its path on the server."""
    from dev.sitegen import synthetic_items

    items = synthetic_items(articles + 1)[1:]  # the stories Site serves before a new one
    entries = [FeedEntry(i.title, i.url, i.published, i.teaser) for i in items]
    (site.served / "rss.xml").write_bytes(
        rss("IOM Albania news", "https://albania.iom.int", entries)
    )
    return "/rss.xml"


def r2e_command() -> list[str] | None:
    """The rss2email command line, or None when the ``bench`` extra is not installed."""
    beside = Path(sys.executable).parent / "r2e"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("r2e")
    return [found] if found else None


class Rss2email:
    """rss2email subscribed to the feed, its first run (every entry seen) done untimed."""

    def __init__(self, folder: Path, feed_url: str, smtp_port: int) -> None:
        command = r2e_command()
        if command is None:
            raise FileNotFoundError("rss2email is not installed (pip install '.[bench]')")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.base = [*command, "-c", str(folder / "r2e.cfg"), "-d", str(folder / "r2e.json")]
        measure([*self.base, "new", "reader@example.org"], folder)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(folder / "r2e.cfg")
        parser["DEFAULT"]["email-protocol"] = "smtp"
        parser["DEFAULT"]["smtp-server"] = f"127.0.0.1:{smtp_port}"
        parser["DEFAULT"]["smtp-auth"] = "False"
        with (folder / "r2e.cfg").open("w", encoding="utf-8") as fh:
            parser.write(fh)
        measure([*self.base, "add", "iom", feed_url], folder)
        measure([*self.base, "run", "--no-send"], folder)

    def run(self) -> Sample:
        return measure([*self.base, "run"], self.folder)


def fill_store(work: Path, count: int, undated_every: int = 30) -> None:
    """``count`` items of another source in ``work``'s store, over the last 15 years (one
    in ``undated_every`` without a date, so dated when first seen: all on the same day),
    through the store's API: setup, not timed."""
    from bench_publish import make_item
    from iomfeed.intents import NewItem
    from iomfeed.models import DateSource
    from iomfeed.store import Store

    now = datetime.now(UTC)
    with Store(work / "iomfeed.db", tag_authority="feeds.example.org") as store:
        store.db.execute("BEGIN")
        for n in range(1, count + 1):
            item = dataclasses.replace(
                make_item(n % 15_000, now - timedelta(days=1)),
                source="archive",
                url=f"https://archive.example.org/story-{n}",
                title=f"Archived story {n} about migration in the Western Balkans",
            )
            assert item.published is not None
            source, published = DateSource.TIME, item.published
            if n % undated_every == 0:
                # as the store keeps an undated item: dated when it was first seen
                source, published = DateSource.FIRST_SEEN, now - timedelta(days=1)
            new = NewItem(item, published, source, f"bench-{n}", published)
            store.insert_item(new, now - timedelta(days=1))
        store.db.execute("COMMIT")


def digest_store(work: Path, stories: int = 20) -> None:
    """``stories`` recent items (the digest benchmark's, about 61 KB a message)."""
    from bench_digest import make_item
    from iomfeed.ingest import upsert
    from iomfeed.store import Store

    now = datetime.now(UTC)
    with Store(work / "iomfeed.db", tag_authority="feeds.example.org") as store:
        for n in range(stories):
            upsert(store, make_item(n, now - timedelta(hours=1)), now - timedelta(hours=2))


def outbox_message(work: Path) -> bytes:
    """The one message an outbox send wrote in ``work``."""
    files = sorted((work / "outbox").rglob("*.eml"))
    if not files:
        raise SystemExit("the outbox send wrote no message")
    return files[0].read_bytes()
