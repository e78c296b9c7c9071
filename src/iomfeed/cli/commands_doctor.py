"""``iomfeed doctor``: the preflight checklist before the first send. Thin: the checks are
:mod:`iomfeed.doctor`'s (imported here, when the command runs: dnspython and dkimpy stay
off every other command's path)."""

from __future__ import annotations

import argparse
import os

from ..config import Config
from ..runtime import open_runtime
from .exits import EXIT_OK, EXIT_SOURCE_FAILED


def cmd_doctor(args: argparse.Namespace, config: Config) -> int:
    from ..doctor import lines, run_doctor
    from ..doctor.dns import Dns

    dns = Dns(args.resolver)
    if not config.database_path.exists():  # a preflight reads; it makes no store
        from ..clock import utc_now

        report = run_doctor(config, dns=dns, store=None, now=utc_now(), environ=os.environ)
    else:
        with open_runtime(config) as rt:
            report = run_doctor(config, dns=dns, store=rt.store, now=rt.clock(), environ=os.environ)
    if args.json:
        from ..jsonout import dumps

        print(
            dumps(
                {
                    "passed": report.passed(strict=args.strict),
                    "counts": report.counts(),
                    "checks": report.checks,
                }
            )
        )
    else:
        print("\n".join(lines(report)))
    return EXIT_OK if report.passed(strict=args.strict) else EXIT_SOURCE_FAILED
