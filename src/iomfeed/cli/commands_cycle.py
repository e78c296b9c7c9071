"""The cycle's commands: ``fetch``, ``publish``, ``run``, ``serve`` and ``status``.

Each opens the runtime (with the run lock where it writes), calls the pipeline or the health
check, and renders what came back; none holds a rule of its own.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import ConfigError, IomfeedError, PublishError
from ..runtime import open_runtime
from .exits import EXIT_OK, EXIT_SOURCE_FAILED, exit_stopped

if TYPE_CHECKING:
    from ..health import DigestHealth, Health


def cmd_fetch(args: argparse.Namespace, config: Config) -> int:
    from ..ingest import fetch_all
    from ..progress import Progress

    progress = Progress("items read", enabled=not args.quiet)
    with (
        open_runtime(config, lock="iomfeed fetch", wait=args.wait) as rt,
        rt.stop_on_signals() as stop,
    ):
        try:
            report = fetch_all(
                config,
                store=rt.store,
                http=rt.http,
                now=rt.clock,
                only=args.source or (),
                stop=lambda: stop.requested,
                on_item=progress.step,
            )
        finally:
            progress.close()
    if stop.requested:
        return exit_stopped(stop.signal)
    return EXIT_OK if report.ok else EXIT_SOURCE_FAILED


def cmd_publish(args: argparse.Namespace, config: Config) -> int:
    from ..pipeline import publish

    with open_runtime(config, lock="iomfeed publish", wait=args.wait) as rt:
        publish(config, store=rt.store, now=rt.clock(), render_all=args.force)
    return EXIT_OK


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from ..pipeline import run_cycle
    from ..progress import Progress

    fetching = Progress("items read", enabled=not args.quiet)
    sending = Progress("digest messages", enabled=not args.quiet)
    with (
        open_runtime(config, lock="iomfeed run", wait=args.wait) as rt,
        rt.stop_on_signals() as stop,
    ):
        from ..health import record_job

        try:
            report = run_cycle(
                config,
                store=rt.store,
                http=rt.http,
                mailer=rt.mailer,
                clock=rt.clock,
                stop=stop,
                on_item=fetching.step,
                on_message=sending.step,
            )
        except IomfeedError as exc:  # as serve counts a failed cycle: for status, alerts
            with contextlib.suppress(IomfeedError):  # (the store may be why it failed)
                record_job(rt.store, "cycle", exc)
            raise
        finally:
            fetching.close()
            sending.close()
        failed = PublishError(report.publish_error) if report.publish_error else None
        record_job(rt.store, "cycle", failed)
    if args.json:
        from ..jsonout import dumps

        print(dumps(report))
    if stop.requested:
        return exit_stopped(stop.signal)
    return EXIT_OK if report.ok else EXIT_SOURCE_FAILED


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    """``iomfeed serve``; SIGHUP (``systemctl reload``) stops it after the work in hand
    and starts it again in the same process, with the configuration file read anew."""
    import logging

    from ..config import load_config
    from ..scheduler import Service

    while True:
        service = Service(config, host=args.host, port=args.port)
        code = service.run()
        if code or not service.reload_asked:
            return code
        log = logging.getLogger(__name__)
        try:
            config = load_config(Path(args.config))
        except ConfigError as exc:  # a bad edit must not take the service (and /unsubscribe) down
            log.error("configuration not read again: %s; going on with the one before", exc)
            continue
        log.info("configuration read again from %s", args.config)


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    from ..health import HealthStatus, check

    if not config.database_path.exists():  # not a configuration error: nothing ran yet
        problem = f"no store yet at {config.database_path}: run 'iomfeed run'"
        if args.json:
            from ..jsonout import dumps

            print(dumps({"status": "never_run", "problems": [problem]}))
        else:
            print(f"status: never run\n! {problem}")
        return EXIT_SOURCE_FAILED
    from dataclasses import replace

    from ..lock import holders

    with open_runtime(config) as rt:
        health = check(config, rt.store, rt.clock())
    health = replace(health, running=holders(config.database_path))
    if args.json:
        from ..jsonout import dumps

        print(dumps(health))
    else:
        _print_status(health)
    return EXIT_OK if health.status is HealthStatus.OK else EXIT_SOURCE_FAILED


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "never"


def _print_status(health: Health) -> None:
    from ..health import HealthStatus

    label = {HealthStatus.OK: "ok", HealthStatus.FAILED: "FAILED", HealthStatus.FAILING: "FAILING"}
    print(f"status: {label[health.status]} ({_when(health.checked)} UTC)")
    for holder in health.running:
        print(f"  running now: {holder}")
    for problem in health.problems():
        print(f"  ! {problem}")
    print("\nsources:")
    _table(
        [("name", "last run", "outcome", "last success", "items", "last error")]
        + [
            (
                s.name + ("" if s.enabled else " (disabled)"),
                _when(s.last_run),
                s.outcome,
                _when(s.last_success),
                str(s.items),
                _cut(s.last_error, 70),
            )
            for s in health.sources
        ]
    )
    print(f"\nstore: {health.items} item(s)")
    print("\ndigests:")
    _table(
        [("id", "made", "status", "items", "sent", "failed", "pending", "skipped", "note")]
        + [_digest_row(d) for d in health.digests]
    )
    subs = health.subscribers
    print(
        "\nsubscribers: "
        + ", ".join(f"{subs.get(k, 0)} {k}" for k in ("active", "unsubscribed", "bounced"))
    )
    if any(health.bounces.values()):
        print(
            "bounce mailbox (30 days): "
            + ", ".join(f"{n} {k}" for k, n in sorted(health.bounces.items()))
        )
    quota = health.quota
    if quota is not None and quota.limits:
        used = dict(quota.used)
        print(
            "sending quota: "
            + ", ".join(f"{used[w]}/{n} in the last {w}" for w, n in quota.limits)
            + (f"; full until {quota.frees_at:%Y-%m-%d %H:%M:%S} UTC" if quota.full else "")
        )
    print("\nnext: " + ", ".join(f"{k} {_when(v)} UTC" for k, v in health.next_times.items()))


def _digest_row(d: DigestHealth) -> tuple[str, ...]:
    return (
        str(d.record.id),
        _when(d.record.created),
        d.record.status + (" (STUCK)" if d.stuck else ""),
        str(d.record.items),
        str(d.totals.get("sent", 0)),
        str(d.totals.get("failed", 0)),
        str(d.totals.get("pending", 0) + d.totals.get("sending", 0)),
        str(d.totals.get("skipped", 0)),
        d.record.note,
    )


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    if len(rows) == 1:
        print("  (none)")
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
