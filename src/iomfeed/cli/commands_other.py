"""``iomfeed check``, ``items``, ``demo`` and ``init``: checking, looking, trying, starting."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..config import Config
from ..runtime import open_runtime
from .exits import EXIT_OK, EXIT_SOURCE_FAILED

log = logging.getLogger(__name__)


def cmd_check(args: argparse.Namespace, config: Config) -> int:
    from ..digest.unsubscribe import check_secret
    from ..preflight import warnings

    check_secret(config)  # an error when used: one here too
    if args.new_secret:
        from ..digest.unsubscribe import accept_secret

        with open_runtime(config) as rt:
            where = accept_secret(config, rt.store)
        print(f"the links are signed from now on with {where}")
    else:
        from ..digest.unsubscribe import SecretChanged, secret_problem

        problem = secret_problem(config, config.database_path)  # (read-only: no migration)
        if problem:
            raise SecretChanged(problem)
    print(
        f"{args.config}: configuration is valid; {len(config.sources)} source(s):"
        f" {', '.join(s.name for s in config.sources) or 'none'}"
    )
    for warning in warnings(config):
        log.warning("warning: %s", warning)
    if not args.live:
        return EXIT_OK
    from ..live_check import check_sources

    with open_runtime(config) as rt:  # the store is never opened: it reads, never writes
        return (
            EXIT_OK if check_sources(config, sys.stdout, rt.detached_http()) else EXIT_SOURCE_FAILED
        )


def cmd_items(args: argparse.Namespace, config: Config) -> int:
    if not config.database_path.exists():
        print(
            f"iomfeed: no items: no store yet at {config.database_path}; run 'iomfeed fetch'",
            file=sys.stderr,
        )
        return EXIT_SOURCE_FAILED
    with open_runtime(config) as rt:
        store = rt.store
        if (
            args.source
            and all(s.name != args.source for s in config.sources)
            and not store.count(args.source)
        ):
            config.source(args.source)  # not configured, nothing stored: the fetch's error
        items = store.items(limit=args.limit, source=args.source)
    if args.json:
        from ..jsonout import dumps

        print(dumps(items))
        return EXIT_OK
    for i in items:
        print(f"{i.published:%Y-%m-%d}  {i.source:<10} {i.language:<3} {i.title}\n{'':12}{i.url}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, config: None) -> int:
    from ..demo.run import run_demo

    given = Path(args.config_given) if args.config_given else None  # else the packaged one
    return run_demo(given, Path(args.dir), keep_serving=args.serve, port=args.port)


def cmd_init(args: argparse.Namespace, config: None) -> int:
    from ..shipped import write_config

    path = write_config(Path(args.path), force=args.force)
    print(
        f"{path}: written: the documented configuration; set site.public_url (and [mail])"
        f" before the first run, then: iomfeed --config {path} check"
    )
    return EXIT_OK


def cmd_backup(args: argparse.Namespace, config: Config) -> int:
    if not config.database_path.exists():
        print(f"iomfeed: no store at {config.database_path}: nothing to back up", file=sys.stderr)
        return EXIT_SOURCE_FAILED
    with open_runtime(config) as rt:  # no lock: the online backup is a consistent copy
        size = rt.store.backup_to(Path(args.path))
    print(
        f"{args.path}: backup written ({size:,} bytes); it holds the subscribers' addresses:"
        " keep it as private as the store"
    )
    return EXIT_OK
