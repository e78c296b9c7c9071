"""Before and after in one run: the same workloads against a baseline commit's code and the
current code, interleaved, with the median of each and their ratio.

    python benchmarks/compare.py [--baseline REF] [--articles N] [--subscribers N]
                                 [--repeat N] [--cron-runs N] [--tolerance F]

The baseline (default: the last commit before the core reshaping of issue 10) is exported
with ``git archive`` into a temporary folder; the current code is the working tree, copied
the same way. Each copy gets its templates inside the package (as a wheel has them) and is
compiled once, and every workload runs it in a real ``python -m iomfeed`` process with
``PYTHONPATH`` pointing at it, so the harness depends only on the command line both versions
have, never on their internals. Each version uses its own shipped ``config.toml`` with the
same few substitutions (the local site, no delay, the SMTP sink).

Workloads, one round of each per version per repeat, the versions' order alternating:

* cold backfill: ``iomfeed fetch`` of the generated site on 127.0.0.1 into an empty store
  (articles per second over the process's wall time);
* cron cycle: ``iomfeed run`` with nothing new, on the store that backfill made (median of
  ``--cron-runs`` whole processes, after one untimed run that publishes);
* publish: ``iomfeed publish`` full build on a copy of that store, then the rebuild after
  one new story (fetched, untimed, from the site with that story added);
* delivery: ``iomfeed digest --send`` of the first digest to ``--subscribers`` subscribers
  (imported from CSV, untimed) into an aiosmtpd sink in child processes, on a store that
  was published first (untimed), as a send follows a cycle's publish: messages per second
  over the whole process (the sink's count is checked), and the send's own rate as the
  sink saw it (messages after the first, over the time from the first to the last). The
  whole process includes what the version does around the send: since issue 11, publishing
  the digest's web pages.

The ratio is current / baseline, so above 1 is faster for a rate and slower for a time.
A row worse than ``--tolerance`` (default 10 %) is marked, and the exit code is then 1.
The machine's load affects both versions alike only when nothing else competes for it;
the last column, the ratio of the CPU time (user + system) the versions' processes used,
moves far less with another job on the machine than the wall time does (for the backfill
and the send, the site and the sink run in this harness, outside that count). The load
average at the start and the end is printed under the table.
"""

from __future__ import annotations

import argparse
import compileall
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This folder, and the repository's root for the site generator in dev/ (not installed).
for _folder in (HERE, ROOT):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))

from loopback import SmtpSink  # noqa: E402

#: The last commit before issue 10's work began.
DEFAULT_BASELINE = "6c9e472"
LIVE_ORIGIN = "https://albania.iom.int"


@dataclass(frozen=True)
class Tree:
    """One exported version of iomfeed: ``src/`` (templates inside) and its config.toml."""

    label: str
    root: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "IOMFEED"))}
        env["PYTHONPATH"] = str(self.root / "src")
        return env

    def run(self, work: Path, *args: str) -> float:
        """Wall seconds of one ``python -m iomfeed --quiet --config work/config.toml ...``."""
        return self._run(work, args)[0]

    def timed(self, work: Path, *args: str) -> tuple[float, float]:
        """Wall and CPU seconds (user + system, the process's own) of that command."""
        wall, cpu, _ = self._run(work, args)
        return wall, cpu

    def output(self, work: Path, *args: str) -> str:
        """What that command printed."""
        return self._run(work, args)[2]

    def _run(self, work: Path, args: Sequence[str]) -> tuple[float, float, str]:
        command = [sys.executable, "-m", "iomfeed", "--quiet", "--config", "config.toml", *args]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            command, cwd=work, env=self.env(), capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(
                f"{self.label}: iomfeed {' '.join(args)} exited with {proc.returncode}\n"
                f"{proc.stdout}{proc.stderr}"
            )
        return wall, cpu, proc.stdout


def _finish(label: str, root: Path) -> Tree:
    """Put the templates inside the package, compile it, and check that it is what runs."""
    shutil.copytree(root / "templates", root / "src" / "iomfeed" / "templates")
    compileall.compile_dir(root / "src", quiet=1)
    tree = Tree(label, root)
    probe = "import iomfeed, iomfeed.templates; print(iomfeed.__file__, iomfeed.templates.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=root,
        env=tree.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for path in out:
        if not Path(path).is_relative_to(root):
            raise SystemExit(f"{label}: {path} is imported from outside {root}")
    return tree


def export_ref(ref: str, dest: Path) -> Tree:
    """The commit ``ref``'s src/, templates/ and config.toml, from ``git archive``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src", "templates", "config.toml"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(f"git archive {ref}: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    short = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return _finish(f"baseline {short}", dest)


def export_worktree(dest: Path) -> Tree:
    """The working tree's src/, templates/ and config.toml, as they are now."""
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    package = ROOT / "src" / "iomfeed"

    def ignore(folder: str, names: list[str]) -> set[str]:
        # A development checkout may link the templates into the package; they are put
        # there from templates/ below, as a wheel has them.
        skip = set(junk(folder, names))
        if Path(folder) == package and (package / "templates").is_symlink():
            skip.add("templates")
        return skip

    shutil.copytree(ROOT / "src", dest / "src", ignore=ignore)
    shutil.copytree(ROOT / "templates", dest / "templates", ignore=junk)
    shutil.copy2(ROOT / "config.toml", dest / "config.toml")
    return _finish("current", dest)


def configure(tree: Tree, work: Path, origin: str, smtp_port: int, max_pages: int) -> None:
    """Write ``work/config.toml``: the tree's own shipped one, pointed at the local site and
    sink. Every substitution must apply, so a changed config file is a clear error."""
    text = (tree.root / "config.toml").read_text(encoding="utf-8")
    if LIVE_ORIGIN not in text:
        raise SystemExit(f"{tree.label}: config.toml does not name {LIVE_ORIGIN}")
    text = text.replace(LIVE_ORIGIN, origin)
    for old, new in [
        # (the example address is refused for a real send)
        ('public_url = "https://feeds.example.org/', 'public_url = "https://news.iomfeed.test/'),
        ("min_delay = 0.5", "min_delay = 0.0"),
        ("max_pages = 10", f"max_pages = {max_pages}"),
        ('transport = "outbox"', 'transport = "smtp"'),
        ('host = "localhost"', 'host = "127.0.0.1"'),
        ("port = 587", f"port = {smtp_port}"),
        ('security = "starttls"', 'security = "none"'),
    ]:
        if old not in text:
            raise SystemExit(f"{tree.label}: config.toml has no {old!r} to replace")
        text = text.replace(old, new, 1)
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.toml").write_text(text, encoding="utf-8")


class Site:
    """The generated site served on 127.0.0.1, with or without one extra, newest story."""

    def __init__(self, folder: Path, articles: int) -> None:
        from dev.sitegen import build_site, synthetic_items

        items = synthetic_items(articles + 1)
        self.before, self.after, self.served = folder / "before", folder / "after", folder / "site"
        build_site(items[1:], self.before)
        build_site(items, self.after)
        shutil.copytree(self.before, self.served)
        names = {p.relative_to(self.before) for p in self.before.rglob("*") if p.is_file()}
        names |= {p.relative_to(self.after) for p in self.after.rglob("*") if p.is_file()}
        self._differ = sorted(
            rel for rel in names if _bytes(self.before / rel) != _bytes(self.after / rel)
        )

    @contextmanager
    def with_new_story(self) -> Iterator[None]:
        """Serve the site with the extra story, then the same bytes as before again."""
        self._show(self.after)
        try:
            yield
        finally:
            self._show(self.before)

    def _show(self, source: Path) -> None:
        for rel in self._differ:
            src, dst = source / rel, self.served / rel
            if src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
            else:
                dst.unlink(missing_ok=True)


def _bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


@dataclass(frozen=True)
class Workload:
    name: str
    unit: str
    higher_is_better: bool


WORKLOADS = (
    Workload("cold backfill", "articles/s", True),
    Workload("cron cycle, nothing new (iomfeed run)", "ms", False),
    Workload("publish: full build", "ms", False),
    Workload("publish: rebuild after one new story", "ms", False),
    Workload("delivery (digest --send, whole process)", "msg/s", True),
    Workload("delivery: the send itself, at the sink", "msg/s", True),
)


@dataclass(frozen=True)
class Setup:
    site: Site
    origin: str
    sink: SmtpSink
    articles: int
    subscribers_csv: Path
    subscribers: int
    cron_runs: int


def _copy_store(src: Path, dst: Path) -> None:
    for path in src.glob("iomfeed.db*"):
        shutil.copy2(path, dst / path.name)


def one_round(tree: Tree, setup: Setup, scratch: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Every workload once for ``tree``, each in fresh folders under ``scratch``: what each
    measures (a rate or milliseconds of wall time) and the CPU milliseconds its process used."""
    pages = setup.articles // 10 + 5

    def fresh(name: str) -> Path:
        work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch))
        configure(tree, work, setup.origin, setup.sink.port, pages)
        return work

    found: dict[str, float] = {}
    cpu: dict[str, float] = {}
    backfilled = fresh("backfill")
    wall, cpu[WORKLOADS[0].name] = tree.timed(backfilled, "fetch")
    found[WORKLOADS[0].name] = setup.articles / wall
    _expect(tree, "stored after the backfill", _stored(tree, backfilled), setup.articles)
    pristine = fresh("store")
    _copy_store(backfilled, pristine)  # as backfill left it: nothing published, no digest

    tree.run(backfilled, "run")  # publishes (and settles the first digest) once
    cron = [tree.timed(backfilled, "run") for _ in range(setup.cron_runs)]
    found[WORKLOADS[1].name] = statistics.median(w for w, _ in cron) * 1000
    cpu[WORKLOADS[1].name] = statistics.median(c for _, c in cron)

    publish = fresh("publish")
    _copy_store(pristine, publish)
    wall, cpu[WORKLOADS[2].name] = tree.timed(publish, "publish")
    found[WORKLOADS[2].name] = wall * 1000
    with setup.site.with_new_story():
        tree.run(publish, "fetch")
    _expect(tree, "stored with the new story", _stored(tree, publish), setup.articles + 1)
    index = (publish / "feeds" / "index.html").read_bytes()
    wall, cpu[WORKLOADS[3].name] = tree.timed(publish, "publish")
    found[WORKLOADS[3].name] = wall * 1000
    if (publish / "feeds" / "index.html").read_bytes() == index:
        raise SystemExit(f"{tree.label}: the rebuild did not put the new story on index.html")

    deliver = fresh("deliver")
    _copy_store(pristine, deliver)
    tree.run(deliver, "subscribers", "import", str(setup.subscribers_csv))
    tree.run(deliver, "publish")
    before = setup.sink.received()
    wall, cpu[WORKLOADS[4].name] = tree.timed(deliver, "digest", "--send")
    arrived = setup.sink.received() - before
    _expect(tree, "messages the sink got", arrived, setup.subscribers)
    found[WORKLOADS[4].name] = setup.subscribers / wall
    found[WORKLOADS[5].name] = (setup.subscribers - 1) / setup.sink.span(before)
    for work in (backfilled, pristine, publish, deliver):
        shutil.rmtree(work)
    return found, {name: seconds * 1000 for name, seconds in cpu.items()}


def _stored(tree: Tree, work: Path) -> int:
    """Items in the store, from ``iomfeed items --json`` (a JSON list, or one per line)."""
    text = tree.output(work, "items", "--json")
    try:
        return len(json.loads(text))
    except json.JSONDecodeError:
        return sum(1 for line in text.splitlines() if line.strip())


def _expect(tree: Tree, what: str, got: int, wanted: int) -> None:
    if got != wanted:
        raise SystemExit(f"{tree.label}: {got} {what}, expected {wanted}")


def write_subscribers(path: Path, count: int) -> None:
    lines = ["address,name,language"]
    for n in range(count):
        name, language = (("Ëlira Hoxha", "sq"), ("John Smith", "en"))[n % 2]
        lines.append(f"reader{n}@example.org,{name},{language}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def table(
    results: dict[str, dict[str, list[float]]],
    labels: Sequence[str],
    tolerance: float,
    cpu: dict[str, dict[str, list[float]]] | None = None,
) -> tuple[list[tuple[str, ...]], bool]:
    """One row per workload: medians, the ratio and a verdict, and beside them the ratio of
    the CPU time the processes used (``cpu``: milliseconds per workload, when measured),
    which another job on the machine moves far less than the wall time."""
    base, current = labels
    rows: list[tuple[str, ...]] = [
        (
            "workload",
            f"{base} (median)",
            f"{current} (median)",
            "current/baseline",
            "verdict",
            "CPU current/baseline",
        )
    ]
    ok = True
    for w in WORKLOADS:
        b = statistics.median(results[base][w.name])
        c = statistics.median(results[current][w.name])
        ratio = c / b
        worse = ratio < 1 - tolerance if w.higher_is_better else ratio > 1 + tolerance
        ok = ok and not worse
        better = "higher" if w.higher_is_better else "lower"
        used = "-"
        if cpu is not None and w.name in cpu[base] and w.name in cpu[current]:
            spent = statistics.median(cpu[current][w.name]) / statistics.median(cpu[base][w.name])
            used = f"{spent:.2f}x"
        rows.append(
            (
                w.name,
                f"{b:.1f} {w.unit}",
                f"{c:.1f} {w.unit}",
                f"{ratio:.2f}x ({better} is better)",
                "SLOWER" if worse else "ok",
                used,
            )
        )
    return rows, ok


def print_rows(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def compare(args: argparse.Namespace, say: Callable[[str], None]) -> bool:
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="iomfeed-compare-") as tmp:
        scratch = Path(tmp)
        say(f"exporting {args.baseline} and the working tree")
        trees = [export_ref(args.baseline, scratch / "baseline"), export_worktree(scratch / "cur")]
        say(f"generating a site of {args.articles} articles")
        site = Site(scratch / "site", args.articles)
        csv_path = scratch / "subscribers.csv"
        write_subscribers(csv_path, args.subscribers)
        from iomfeed.demo.server import SnapshotServer

        results: dict[str, dict[str, list[float]]] = {t.label: {} for t in trees}
        spent: dict[str, dict[str, list[float]]] = {t.label: {} for t in trees}
        with SnapshotServer(site.served) as server, SmtpSink() as sink:
            setup = Setup(
                site,
                server.origin,
                sink,
                args.articles,
                csv_path,
                args.subscribers,
                args.cron_runs,
            )
            for r in range(args.repeat):
                for tree in trees if r % 2 == 0 else trees[::-1]:
                    say(f"round {r + 1}/{args.repeat}: {tree.label}")
                    found, cpu = one_round(tree, setup, scratch)
                    for name, value in found.items():
                        results[tree.label].setdefault(name, []).append(value)
                    for name, value in cpu.items():
                        spent[tree.label].setdefault(name, []).append(value)
        rows, ok = table(results, [t.label for t in trees], args.tolerance, spent)
    print_rows(rows)
    print(
        f"\nload average (1 min): {load_start:.2f} at the start,"
        f" {os.getloadavg()[0]:.2f} at the end"
    )
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="commit to compare with")
    parser.add_argument("--articles", type=int, default=1000, help="articles in the site")
    parser.add_argument("--subscribers", type=int, default=2000, help="digest recipients")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per version")
    parser.add_argument("--cron-runs", type=int, default=5, help="timed runs per round")
    parser.add_argument(
        "--tolerance", type=float, default=0.10, help="a worse ratio than this is marked"
    )
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        print(f"-- {text}", file=sys.stderr, flush=True)

    ok = compare(args, say)
    print("\nno workload slower than the tolerance" if ok else "\nSOME WORKLOAD IS SLOWER")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
