"""Run every benchmark and print one table: measured value, baseline measured in the same run,
their ratio, and the target.

    python benchmarks/run.py [--articles N] [--repeat N] [--only GROUP] [--cron-items N]
                             [--large]

Targets live here, never in unit tests. Each row's baseline is measured on this machine in
this run, so the ratio means something on any machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The repository's root, for the site generator in dev/ (a development tool, not installed).
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from bench_cron import cron_rows
from bench_digest import digest_rows
from bench_ingest import Row, ingest_rows
from bench_publish import publish_rows
from bench_segments import segment_rows


def print_table(rows: list[Row]) -> bool:
    header = ("benchmark", "value", "baseline", "ratio", "target", "ok")
    lines = [header] + [r.cells() for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    return all(r.ok for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=1000, help="articles in the test site")
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs of the unchanged fetch and publish"
    )
    parser.add_argument("--items", type=int, default=20_000, help="items in the publish store")
    parser.add_argument(
        "--large",
        action="store_true",
        help="also the 50,000-item rows: a 50,000-article backfill (many minutes), and the"
        " unchanged publish and a one-item rebuild from 50,000 items",
    )
    parser.add_argument(
        "--subscribers", type=int, default=10_000, help="subscribers of the digest benchmark"
    )
    parser.add_argument(
        "--only",
        choices=("ingest", "publish", "digest", "segments", "cron"),
        help="run one group only (segments: the digest over 8 category segments, also in"
        " digest; cron: the quiet cycle at 1k and --cron-items stored, status, items)",
    )
    parser.add_argument(
        "--cron-items",
        type=int,
        default=50_000,
        help="items in the larger store of the cron benchmark (0: the 1k store only)",
    )
    args = parser.parse_args()
    rows = []
    if args.only in (None, "ingest"):
        rows += ingest_rows(articles=args.articles, repeat=args.repeat, large=args.large)
    if args.only in (None, "cron"):
        rows += cron_rows(stored=args.cron_items)
    if args.only in (None, "publish"):
        rows += publish_rows(items=args.items, large=args.large, repeat=args.repeat)
    if args.only in (None, "digest"):
        rows += digest_rows(subscribers=args.subscribers)
    if args.only in (None, "digest", "segments"):
        rows += segment_rows(subscribers=args.subscribers)
    ok = print_table(rows)
    print("\nall targets met" if ok else "\nSOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
