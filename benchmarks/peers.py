"""iomfeed beside its peers and floors, measured in the same run: the benchmark of issue 13.

    python benchmarks/peers.py [--repeat N] [--articles N] [--subscribers N]
                               [--dkim-subscribers N] [--ref REF] [--previous REF]
                               [--large] [--large-items N]

Every row is iomfeed's command line in a child process (the working tree's code, exported
and compiled as ``compare.py`` does), beside what a user would run instead or the least the
work could cost, each measured in this run on this machine, the repeats interleaved and the
median kept:

* cron cycle (``iomfeed run``, nothing new, 1k items stored; ``--large``: 50k): rss2email
  ``r2e run`` on the same stories as an RSS feed served with ETag (the ``bench`` extra; a
  row says so when it is not installed), the floor (the interpreter, one conditional GET,
  one SQLite write), ``python -c pass`` and ``python -S -c pass`` (the interpreter without
  site's start-up, whose .pth hooks a machine may make costly); with ``--previous REF``,
  also the same cycle by that commit's code (iomfeed's previous design: ``b62beff``, before
  issue 13, rendered every page on every run and computed the next digest time through
  APScheduler), on a store of its own made by its own backfill;
* ``status`` and ``items --limit 20``, beside ``python -c pass`` and ``python -S -c pass``;
* cold backfill of the generated 1,000-article site, and of a 50-article one, beside the
  same pages fetched with nothing parsed;
* ``digest --send`` of ``--subscribers`` messages (5,000 unless told; about 69 KB) to an
  aiosmtpd sink (a
  process per connection, as a relay has: see ``loopback.SmtpSink``), beside smtplib alone
  sending the same message bytes to the same sink;
  ``mail.connections`` 2 and 4 against 1 when the tree knows the key, and the DKIM-signed
  rate (on ``--dkim-subscribers``) when signing is configured;
* ``--large``: the per-article CPU of a backfill into a store of ``--large-items`` against
  the same at 1k, and the unchanged publish and the rebuild after one new story there.

Peak memory is each row's child's ``ru_maxrss``. The load average is printed at the start
and the end, with the minutes the run took (the default run stays under five on 2 cores).
The exit code is 1 when a target is missed. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _folder in (HERE, ROOT):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))

from compare import Site, Tree, export_ref, export_worktree, write_subscribers  # noqa: E402
from loopback import SmtpSink  # noqa: E402
from peers_report import (  # noqa: E402
    Row,
    Target,
    all_met,
    interleave,
    markdown,
    median,
    replace_once,
    with_connections,
    with_dkim,
    with_outbox,
)
from peers_work import (  # noqa: E402
    FETCH_ONLY,
    FLOOR,
    SMTPLIB,
    Rss2email,
    Sample,
    copy_store,
    digest_store,
    fill_store,
    fresh,
    iomfeed,
    outbox_message,
    python,
    site_urls,
    write_feed,
)

PASS = "python -c pass"
#: The interpreter without site's start-up (its .pth hooks: an editable install's finder,
#: a sandbox's certificate hook), to tell the machine's share of every row from iomfeed's.
BARE = "python -S -c pass"


@dataclass
class Setup:
    tree: Tree
    scratch: Path
    site: Site
    origin: str
    sink: SmtpSink
    articles: int
    repeat: int
    say: Callable[[str], None]
    previous: Tree | None = None  # --previous: an older commit's code, for the cron row

    def fresh(self, name: str, pages: int | None = None) -> Path:
        pages = self.articles // 10 + 5 if pages is None else pages
        return fresh(self.tree, self.scratch, name, self.origin, self.sink.port, pages)


def ms(samples: list[Sample]) -> float:
    return median(s.wall for s in samples) * 1000


def peak(samples: list[Sample]) -> float:
    return max(s.peak_mb for s in samples)


def cron_rows(s: Setup, stored: Path) -> tuple[list[Row], tuple[tuple[str, float], ...]]:
    """``run`` with nothing new, ``status`` and ``items --limit 20`` on the 1k store; the
    rows, and the cron peers (for the 50k row)."""
    s.say("cron cycle, status, items: 1k stored, beside r2e, the floor and python -c pass")
    iomfeed(s.tree, stored, "run")  # publishes once
    feed = s.origin + write_feed(s.site, s.articles)
    floor = ("-c", FLOOR, feed, str(stored / "floor.db"))
    python(*floor, cwd=stored)  # the first GET: 200 and an ETag
    jobs: dict[str, Callable[[], Sample]] = {}
    if s.previous is not None:
        before = s.previous
        old = fresh(before, s.scratch, "previous", s.origin, s.sink.port, s.articles // 10 + 5)
        iomfeed(before, old, "run")  # its own backfill, and its first publish
        jobs["previous"] = lambda: iomfeed(before, old, "run")
    jobs |= {
        "run": lambda: iomfeed(s.tree, stored, "run"),
        "status": lambda: iomfeed(s.tree, stored, "status"),
        "items": lambda: iomfeed(s.tree, stored, "items", "--limit", "20"),
        "floor": lambda: python(*floor, cwd=stored),
        PASS: lambda: python("-c", "pass", cwd=stored),
        BARE: lambda: python("-S", "-c", "pass", cwd=stored),
    }
    note = ""
    try:
        jobs["r2e"] = Rss2email(s.scratch / "r2e", feed, s.sink.port).run
    except (FileNotFoundError, SystemExit) as exc:
        note = f"r2e: {str(exc).splitlines()[0]}"
    got = interleave(jobs, s.repeat * 2)
    peers = [("r2e run", ms(got["r2e"]))] if "r2e" in got else []
    peers += [("floor", ms(got["floor"])), (PASS, ms(got[PASS])), (BARE, ms(got[BARE]))]
    if s.previous is not None:
        peers.append((f"previous design ({s.previous.label})", ms(got["previous"])))
    passed = ((PASS, ms(got[PASS])), (BARE, ms(got[BARE])))
    rows = [
        Row(
            f"cron: `iomfeed run`, nothing new, {s.articles} stored",
            ms(got["run"]),
            "ms",
            tuple(peers),
            Target(60, at_least=False),
            peak(got["run"]),
            note=note,
        ),
        Row("`status`", ms(got["status"]), "ms", passed, Target(50, False), peak(got["status"])),
        Row(
            "`items --limit 20`",
            ms(got["items"]),
            "ms",
            passed,
            Target(50, False),
            peak(got["items"]),
        ),
    ]
    return rows, tuple(peers)


def backfill_rows(s: Setup, small: Site, small_origin: str) -> tuple[list[Row], Path]:
    """Cold backfills of the 1k and 50-article sites, beside fetching their pages only.
    Returns the rows and a store the 1k backfill made."""
    s.say(f"cold backfill: {s.articles} and 50 articles, beside fetching the pages only")
    urls = "\n".join(site_urls(s.origin, s.site, s.articles)).encode()
    small_urls = "\n".join(site_urls(small_origin, small, 50)).encode()
    kept: list[Path] = []

    def backfill() -> Sample:
        work = s.fresh("backfill")
        sample = iomfeed(s.tree, work, "fetch")
        if kept:
            shutil.rmtree(work)
        else:
            kept.append(work)
        return sample

    def backfill_small() -> Sample:
        work = fresh(s.tree, s.scratch, "small", small_origin, s.sink.port, 10)
        sample = iomfeed(s.tree, work, "fetch")
        shutil.rmtree(work)
        return sample

    got = interleave(
        {
            "big": backfill,
            "big floor": lambda: python("-c", FETCH_ONLY, cwd=s.scratch, stdin=urls),
            "small": backfill_small,
            "small floor": lambda: python("-c", FETCH_ONLY, cwd=s.scratch, stdin=small_urls),
        },
        s.repeat,
    )
    rate = s.articles / median(x.wall for x in got["big"])
    floor = s.articles / median(x.wall for x in got["big floor"])
    cpu_each = median(x.cpu for x in got["big"]) / s.articles
    rows = [
        Row(
            f"cold backfill, {s.articles} articles",
            rate,
            "articles/s",
            (("pages fetched, nothing parsed", floor),),
            Target(500, True),
            peak(got["big"]),
            note=f"{cpu_each * 1000:.2f} ms CPU each",
        ),
        Row(
            "cold backfill, 50 articles",
            ms(got["small"]),
            "ms",
            (("pages fetched, nothing parsed", ms(got["small floor"])),),
            Target(150, False),
            peak(got["small"]),
        ),
    ]
    return rows, kept[0]


def supports(s: Setup, text: str, key: str) -> bool:
    """Whether the tree accepts ``key`` in this config (an unknown key is refused at load,
    naming it)."""
    probe = Path(tempfile.mkdtemp(prefix="probe-", dir=s.scratch))
    (probe / "config.toml").write_text(text, encoding="utf-8")
    said = iomfeed(s.tree, probe, "check", check=False).output.splitlines()
    return not any(key in line and "unknown key" in line for line in said)


class Delivery:
    """One store with the digest's stories and the subscribers, copied for every send."""

    def __init__(self, s: Setup, subscribers: int) -> None:
        self.s, self.count = s, subscribers
        self.base = s.fresh("deliver", 5)
        # the first digest shows every one of its 20 stories, as a weekly one does
        shipped = (self.base / "config.toml").read_text(encoding="utf-8")
        self.text = replace_once(shipped, "first_items = 5", "first_items = 20", "[digest]")
        (self.base / "config.toml").write_text(self.text, encoding="utf-8")
        digest_store(self.base)
        sample = s.fresh("sample", 5)
        copy_store(self.base, sample)
        (sample / "config.toml").write_text(with_outbox(self.text), encoding="utf-8")
        write_subscribers(sample / "one.csv", 1)
        iomfeed(s.tree, sample, "subscribers", "import", "one.csv")
        iomfeed(s.tree, sample, "digest", "--send")
        self.message = s.scratch / "message.eml"
        self.message.write_bytes(outbox_message(sample))
        write_subscribers(self.base / "all.csv", subscribers)
        iomfeed(s.tree, self.base, "subscribers", "import", "all.csv")
        iomfeed(s.tree, self.base, "publish")

    def send(self, text: str) -> Sample:
        """``digest --send`` on a copy of the store, with this config; checks the sink."""
        work = self.s.fresh("send", 5)
        copy_store(self.base, work)
        (work / "config.toml").write_text(text, encoding="utf-8")
        before = self.s.sink.received()
        sample = iomfeed(self.s.tree, work, "digest", "--send")
        arrived = self.s.sink.received() - before
        if arrived != self.count:
            raise SystemExit(f"the sink got {arrived} messages, expected {self.count}")
        shutil.rmtree(work)
        return sample

    def smtplib(self) -> Sample:
        port = str(self.s.sink.port)
        return python("-c", SMTPLIB, port, str(self.message), str(self.count), cwd=self.s.scratch)

    def rate(self, samples: list[Sample]) -> float:
        return self.count / median(x.wall for x in samples)


def delivery_rows(s: Setup, subscribers: int, signed: int) -> list[Row]:
    """The send beside smtplib alone; more connections; DKIM, each when the tree has it."""
    s.say(f"delivery: {subscribers} messages, beside smtplib alone; connections; DKIM")
    d = Delivery(s, subscribers)
    s.say(f"delivery: the store and the sink ready; {s.repeat} rounds")
    size = f"{d.message.stat().st_size / 1000:.0f} KB"
    jobs: dict[str, Callable[[], Sample]] = {
        "iomfeed": lambda: d.send(d.text),
        "smtplib": d.smtplib,
    }
    many = [n for n in (2, 4) if supports(s, with_connections(d.text, n), "mail.connections")]
    for n in many:
        jobs[f"c{n}"] = lambda n=n: d.send(with_connections(d.text, n))  # type: ignore[misc]
    got = interleave(jobs, s.repeat)
    one = d.rate(got["iomfeed"])
    rows = [
        Row(
            f"`digest --send`, {subscribers} x {size}, whole process",
            one,
            "msg/s",
            (("smtplib alone, same bytes, same sink", d.rate(got["smtplib"])),),
            Target(0.95, True, of_peer=True),
            peak(got["iomfeed"]),
        )
    ]
    for n in (2, 4):
        name = f"`digest --send`, mail.connections = {n}"
        if n not in many:
            rows.append(Row(name, None, "msg/s", note="not supported by this tree"))
            continue
        rate = d.rate(got[f"c{n}"])
        peers = (("mail.connections = 1", one),)
        rows.append(Row(name, rate, "msg/s", peers, Target(1.3, True, True), peak(got[f"c{n}"])))
    rows.append(dkim_row(s, signed))
    return rows


def dkim_row(s: Setup, subscribers: int) -> Row:
    """The DKIM-signed send beside the unsigned one, on fewer messages (signing is slow)."""
    from tests.dkimkit import make_key

    name = f"`digest --send`, DKIM-signed (rsa 2048), {subscribers} messages"
    s.say(f"DKIM: {subscribers} messages signed, beside the same unsigned")
    d = Delivery(s, subscribers)
    key = make_key(s.scratch, name="bench-dkim.pem")
    signed_text = with_dkim(d.text, str(key.path))
    if not supports(s, signed_text, "mail.dkim"):
        return Row(name, None, "msg/s", note="DKIM not supported by this tree")
    got = interleave(
        {"signed": lambda: d.send(signed_text), "plain": lambda: d.send(d.text)}, s.repeat
    )
    peers = (("unsigned, same run", d.rate(got["plain"])),)
    return Row(name, d.rate(got["signed"]), "msg/s", peers, peak_mb=peak(got["signed"]))


def rebuild(s: Setup, kept: Path) -> Sample:
    """On a copy of ``kept`` (store and published files), the story the site adds fetched
    (untimed), then the ``publish`` that puts it in the feeds."""
    work = Path(tempfile.mkdtemp(prefix="rebuild-", dir=s.scratch)) / "w"
    shutil.copytree(kept, work)
    with s.site.with_new_story():
        iomfeed(s.tree, work, "fetch")
    index = (work / "feeds" / "index.html").read_bytes()
    sample = iomfeed(s.tree, work, "publish")
    if (work / "feeds" / "index.html").read_bytes() == index:
        raise SystemExit("the rebuild did not put the new story on index.html")
    shutil.rmtree(work.parent)
    return sample


def large_rows(s: Setup, items: int, cron_peers: tuple[tuple[str, float], ...]) -> list[Row]:
    """The backfill's CPU per article, the cron cycle, the unchanged publish and the rebuild
    after one new story, on a store of ``items`` (the site's stories and older ones). The
    backfill into the filled store is interleaved with the same into an empty one, so the
    ratio is of rounds made at the same time, not of runs minutes apart."""
    s.say(f"--large: filling a store to {items} items (untimed)")
    filled = s.fresh("filled")
    fill_store(filled, items - s.articles)
    works: list[Path] = []

    def backfill(into: Path | None) -> Sample:
        work = s.fresh("large")
        if into is not None:
            copy_store(into, work)
            works.append(work)
        sample = iomfeed(s.tree, work, "fetch")
        if into is None:
            shutil.rmtree(work)
        return sample

    s.say(f"--large: cold backfill into {items - s.articles} stored and into none, cron, publish")
    got = interleave(
        {"filled": lambda: backfill(filled), "empty": lambda: backfill(None)}, s.repeat
    )
    fetched = got["filled"]
    kept = works[0]
    for extra in works[1:]:
        shutil.rmtree(extra)
    cpu_each = median(x.cpu for x in fetched) / s.articles
    cpu_empty = median(x.cpu for x in got["empty"]) / s.articles
    iomfeed(s.tree, kept, "run")  # publishes once
    got = interleave(
        {
            "run": lambda: iomfeed(s.tree, kept, "run"),
            "publish": lambda: iomfeed(s.tree, kept, "publish"),
        },
        s.repeat * 2,
    )

    rebuilt = interleave({"rebuild": lambda: rebuild(s, kept)}, s.repeat)["rebuild"]
    at = f"{items // 1000}k stored" if items % 1000 == 0 else f"{items} stored"
    return [
        Row(
            f"cold backfill, {s.articles} articles into {at}: CPU per article",
            cpu_each * 1000,
            "ms",
            (("the same into an empty store, same rounds", cpu_empty * 1000),),
            Target(1.2, False, of_peer=True),
            peak(fetched),
        ),
        Row(
            f"cron: `iomfeed run`, nothing new, {at}",
            ms(got["run"]),
            "ms",
            cron_peers,
            Target(60, False),
            peak(got["run"]),
        ),
        Row(
            f"`publish`, unchanged, {at}",
            ms(got["publish"]),
            "ms",
            target=Target(150, False),
            peak_mb=peak(got["publish"]),
            max_mb=80,
        ),
        Row(
            f"`publish` after one new story, {at}",
            ms(rebuilt),
            "ms",
            target=Target(150, False),
            peak_mb=peak(rebuilt),
            max_mb=80,
        ),
    ]


def benchmark(args: argparse.Namespace, say: Callable[[str], None]) -> list[Row]:
    from iomfeed.demo.server import SnapshotServer

    with tempfile.TemporaryDirectory(prefix="iomfeed-peers-") as tmp:
        scratch = Path(tmp)
        say(f"exporting and compiling {args.ref or 'the working tree'}; generating the sites")
        code = scratch / "tree"
        tree = export_ref(args.ref, code) if args.ref else export_worktree(code)
        site = Site(scratch / "site", args.articles)
        small = Site(scratch / "small", 50)
        with (
            SnapshotServer(site.served) as server,
            SnapshotServer(small.served) as small_server,
            SmtpSink() as sink,
        ):
            s = Setup(tree, scratch, site, server.origin, sink, args.articles, args.repeat, say)
            if args.previous:
                s.previous = export_ref(args.previous, scratch / "previous")
            rows, stored = backfill_rows(s, small, small_server.origin)
            cron, cron_peers = cron_rows(s, stored)
            rows = cron + rows
            if args.subscribers:
                rows += delivery_rows(s, args.subscribers, args.dkim_subscribers)
            if args.large:
                rows += large_rows(s, args.large_items, cron_peers)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds per row")
    parser.add_argument("--articles", type=int, default=1000, help="articles in the site")
    parser.add_argument(
        "--subscribers",
        type=int,
        default=5_000,
        help="digest recipients (0: no delivery rows; 10000 for issue 13's size, which takes"
        " the whole run past five minutes on 2 cores)",
    )
    parser.add_argument(
        "--dkim-subscribers", type=int, default=500, help="recipients of the DKIM-signed send"
    )
    parser.add_argument(
        "--ref",
        help="measure this commit's code (git archive) instead of the working tree's; the"
        " harness, the local site and the 50k store's filling stay the working tree's",
    )
    parser.add_argument(
        "--previous",
        metavar="REF",
        help="also measure the cron cycle by this commit's code, beside the tree's (b62beff:"
        " the design before issue 13)",
    )
    parser.add_argument("--large", action="store_true", help="also the rows at 50k stored")
    parser.add_argument("--large-items", type=int, default=50_000, help="items for --large")
    args = parser.parse_args(argv)

    started = time.monotonic()

    def say(text: str) -> None:
        print(f"-- {time.monotonic() - started:5.0f} s: {text}", file=sys.stderr, flush=True)

    load_start = os.getloadavg()
    rows = benchmark(args, say)
    load_end = os.getloadavg()
    print("\n".join(markdown(rows)))
    print(
        f"\nload average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in load_start)} at the start,"
        f" {' '.join(f'{x:.2f}' for x in load_end)} at the end; {os.cpu_count()} CPUs;"
        f" {(time.monotonic() - started) / 60:.1f} min in all"
    )
    ok = all_met(rows)
    print("\nevery target met" if ok else "\nSOME TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
