"""The ``iomfeed`` command line. An entry point: it parses arguments, sets up logging, calls
the pipeline and turns the outcome into an exit code. It holds no logic of its own.

Exit codes:

====  =============================================================================="""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .clock import utc_now
from .config import CONFIG_ENV, Config, default_config_path, load_config
from .errors import BadAddress, ConfigError, InputError, IomfeedError
from .lock import DEFAULT_WAIT, AlreadyRunning

if TYPE_CHECKING:
    from .delivery.send import Stop
    from .lock import RunLock
    from .models import CycleReport
    from .store import Store

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_SOURCE_FAILED = 1
EXIT_CONFIG = 2
EXIT_INPUT = 65  # EX_DATAERR: the data given (an address, a file, a token) is unusable
EXIT_LOCKED = 75  # EX_TEMPFAIL: another run is going on; try again later
EXIT_PIPE = 141  # 128 + SIGPIPE: standard output was closed by its reader


# ----------------------------------------------------------------------------- commands


def _run_lock(args: argparse.Namespace, config: Config, command: str) -> RunLock:
    """The run lock, waited for up to ``--wait`` seconds (a cycle of ``serve`` in hand)."""
    from .lock import RunLock

    return RunLock(config.database_path, wait=args.wait, what=f"iomfeed {command}")


def cmd_fetch(args: argparse.Namespace, config: Config) -> int:
    from .http import HttpClient
    from .pipeline import fetch_all, open_store
    from .progress import Progress

    progress = Progress("items read", enabled=not args.quiet)
    with (
        _run_lock(args, config, "fetch"),
        open_store(config) as store,
        HttpClient(config.http, validators=store) as http,
    ):
        try:
            report = fetch_all(
                config,
                store=store,
                http=http,
                now=utc_now,
                only=args.source or (),
                on_item=progress.step,
            )
        finally:
            progress.close()
    return EXIT_OK if report.ok else EXIT_SOURCE_FAILED


def cmd_publish(args: argparse.Namespace, config: Config) -> int:
    from .pipeline import open_store, publish

    with _run_lock(args, config, "publish"), open_store(config) as store:
        publish(config, store=store, now=utc_now())
    return EXIT_OK


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from .delivery.mailers import make_mailer
    from .http import HttpClient
    from .pipeline import open_store, run_cycle
    from .progress import Progress

    fetching = Progress("items read", enabled=not args.quiet)
    sending = Progress("digest messages", enabled=not args.quiet)
    with (
        _run_lock(args, config, "run"),
        open_store(config) as store,
        _stop_on_signals() as stop,
        HttpClient(config.http, validators=store, sleep=stop.sleep_or_stop) as http,
    ):
        try:
            report = run_cycle(
                config,
                store=store,
                http=http,
                mailer=lambda: make_mailer(config),
                clock=utc_now,
                stop=stop,
                on_item=fetching.step,
                on_message=sending.step,
            )
        finally:
            fetching.close()
            sending.close()
    if args.json:
        json.dump(cycle_json(report), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    return EXIT_OK if report.ok else EXIT_SOURCE_FAILED


def cycle_json(report: CycleReport) -> dict[str, object]:
    """The run report as JSON (``iomfeed run --json``)."""
    run = report.run
    out: dict[str, object] = {
        "ok": report.ok,
        "started": run.started.isoformat(),
        "finished": run.finished.isoformat(),
        "sources": [
            {
                "name": r.name,
                "ok": r.ok,
                "pages": r.pages,
                "not_modified": r.not_modified,
                "found": r.found,
                "new": r.new,
                "updated": r.updated,
                "duplicates": r.duplicates,
                "filtered": r.filtered,
                "duration": round(r.duration, 3),
                "error": r.error,
                "warnings": list(r.warnings),
            }
            for r in run.sources
        ],
        "published": None
        if report.published is None
        else {"written": list(report.published.written), "unchanged": report.published.unchanged},
        "digest": None,
        "alerts": list(report.alerts),
    }
    d = report.digest
    if d is not None:
        out["digest"] = {
            "id": d.digest_id,
            "status": d.status,
            "items": d.items,
            "more": d.more,
            "note": d.note,
            "delivery": None
            if d.delivery is None
            else {
                "sent": d.delivery.sent,
                "failed": d.delivery.failed,
                "deferred": d.delivery.deferred,
                "skipped": d.delivery.skipped,
                "bounced": d.delivery.bounced,
                "error": d.delivery.error,
                "interrupted": d.delivery.interrupted,
                "totals": dict(d.delivery.totals),
            },
        }
    return out


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    from .scheduler import Service

    return Service(config, host=args.host, port=args.port).run()


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    from .health import HealthStatus, check
    from .pipeline import open_store

    if not config.database_path.exists():
        raise ConfigError(f"{config.database_path}: no store yet; run 'iomfeed run' first")
    with open_store(config) as store:
        health = check(config, store, utc_now())
    if args.json:
        json.dump(health.as_json(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK if health.status is HealthStatus.OK else EXIT_SOURCE_FAILED

    def when(value: datetime | None) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "never"

    label = {HealthStatus.OK: "ok", HealthStatus.FAILED: "FAILED", HealthStatus.FAILING: "FAILING"}[
        health.status
    ]
    print(f"status: {label} ({when(health.checked)} UTC)")
    for problem in health.problems():
        print(f"  ! {problem}")
    print("\nsources:")
    rows: list[tuple[str, ...]] = [
        ("name", "last run", "outcome", "last success", "items", "last error")
    ]
    for s in health.sources:
        rows.append(
            (
                s.name + ("" if s.enabled else " (disabled)"),
                when(s.last_run),
                s.outcome,
                when(s.last_success),
                str(s.items),
                _cut(s.last_error, 70),
            )
        )
    _table(rows)
    print(f"\nstore: {health.items} item(s)")
    print("\ndigests:")
    rows = [("id", "made", "status", "items", "sent", "failed", "pending", "note")]
    for d in health.digests:
        rows.append(
            (
                str(d.record.id),
                when(d.record.created),
                d.record.status + (" (STUCK)" if d.stuck else ""),
                str(d.record.items),
                str(d.totals.get("sent", 0)),
                str(d.totals.get("failed", 0)),
                str(d.totals.get("pending", 0) + d.totals.get("sending", 0)),
                d.record.note,
            )
        )
    _table(rows)
    subs = health.subscribers
    print(
        "\nsubscribers: "
        + ", ".join(f"{subs.get(k, 0)} {k}" for k in ("active", "unsubscribed", "bounced"))
    )
    print("\nnext: " + ", ".join(f"{k} {when(v)} UTC" for k, v in health.next_times.items()))
    return EXIT_OK if health.status is HealthStatus.OK else EXIT_SOURCE_FAILED


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: list[tuple[str, ...]]) -> None:
    if len(rows) == 1:
        print("  (none)")
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@contextmanager
def _stop_on_signals() -> Iterator[Stop]:
    """SIGTERM / SIGINT during a send: finish the message in hand, then stop cleanly."""
    import signal

    from .delivery.send import Stop

    stop = Stop()

    def handler(signum: int, frame: object) -> None:
        log.warning("%s received: stopping after the message in hand", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def cmd_digest(args: argparse.Namespace, config: Config) -> int:
    from .pipeline import open_store

    if args.preview:
        with open_store(config) as store:
            return _digest_preview(args, config, store)
    if args.send:
        from .delivery.mailers import make_mailer
        from .pipeline import send_digest
        from .progress import Progress

        sending = Progress("digest messages", enabled=not args.quiet)
        with (
            _run_lock(args, config, "digest --send"),
            open_store(config) as store,
            _stop_on_signals() as stop,
        ):
            try:
                outcome = send_digest(
                    config,
                    store=store,
                    mailer=make_mailer(config),
                    clock=utc_now,
                    stop=stop,
                    on_message=sending.step,
                )
            finally:
                sending.close()
        d = outcome.delivery
        if d is None:
            print(f"digest skipped: {outcome.note}")
            return EXIT_OK
        totals = ", ".join(f"{n} {s}" for s, n in sorted(d.totals.items()))
        print(
            f"digest {outcome.digest_id}: {d.sent} sent now ({totals});"
            f" {'complete' if d.finished else 'NOT complete'}"
        )
        return EXIT_OK if outcome.ok else EXIT_SOURCE_FAILED
    if args.to:  # reads the store only: no lock, so a test copy goes out during a cycle
        with open_store(config) as store:
            return _digest_test_copy(args, config, store)
    with open_store(config) as store:
        return _digest_dry_run(args, config, store)


def _digest_preview(args: argparse.Namespace, config: Config, store: Store) -> int:
    from .files import write_if_changed
    from .pipeline import digest_preview

    lang = args.lang_given or "en"
    content, rendered, page = digest_preview(config, store, utc_now(), lang)
    write_if_changed(Path(args.preview), page.encode("utf-8"))
    what = "the latest" if content.first else "new"
    print(
        f"{args.preview}: digest preview ({lang}), {len(content.entries)} {what} item(s),"
        f" {rendered.shown} shown, {rendered.more} more linked,"
        f" {rendered.html_bytes / 1000:.1f} KB of HTML; subject: {rendered.subject}"
    )
    return EXIT_OK


def _digest_dry_run(args: argparse.Namespace, config: Config, store: Store) -> int:
    from .digest.steps import dry_run

    plan = dry_run(config, store, utc_now())
    content = plan.content
    if plan.resuming:
        print(
            f"digest {content.digest_id} is being sent: "
            + ", ".join(f"{n} {s}" for s, n in sorted(plan.totals.items()))
        )
    else:
        due = "due now" if plan.due else "not due yet"
        since = content.since.isoformat() if content.since else "the first digest"
        if content.first:
            print(
                f"next digest ({due} by schedule {config.schedule.digest!r}): the list's"
                f" first, the latest {len(content.entries)} item(s) (digest.first_items),"
                f" {content.more} older one(s) linked and counted as handled"
            )
        else:
            print(
                f"next digest ({due} by schedule {config.schedule.digest!r}):"
                f" {len(content.entries)} new item(s) since {since},"
                f" {content.more} more linked"
            )
        if plan.skipped_empty:
            print("nothing new: it would be skipped (digest.skip_empty)")
            return EXIT_OK
    for lang, r in plan.rendered.items():
        print(
            f"  {lang}: {plan.recipients.get(lang, 0)} subscriber(s); subject: {r.subject};"
            f" {r.shown} item(s) shown, {r.more} more; {r.html_bytes / 1000:.1f} KB HTML"
        )
    for e in content.entries:
        print(f"    {e.published:%Y-%m-%d}  [{e.category or '-'}] {e.title}")
    return EXIT_OK


def _digest_test_copy(args: argparse.Namespace, config: Config, store: Store) -> int:
    import secrets

    from .delivery.mailers import make_mailer
    from .pipeline import composers, digest_content, render_languages
    from .preflight import require_sendable
    from .subscribers import normalize_address

    try:
        address = normalize_address(args.to)
    except BadAddress as exc:
        raise InputError(f"--to {args.to}: {exc}") from None
    require_sendable(config)
    now = utc_now()
    sub = store.subscriber(address)
    lang = args.lang_given or (sub.language if sub else "en")
    content = digest_content(config, store, now)
    rendered = render_languages(config, content, (lang,))
    composer = composers(
        config, rendered, digest_id=content.digest_id, date=now, secret=b"test-copy", test=True
    )[lang]
    mid = f"<test-{now:%Y%m%d%H%M%S}.{secrets.token_hex(6)}@{config.mail.sender_domain}>"
    message = composer.compose_test(address, sub.name if sub else "", mid)
    mailer = make_mailer(config)
    try:
        reply = mailer.send(message)
    finally:
        mailer.close()
    print(f"test copy ({lang}) sent to {address}: {reply}")
    return EXIT_OK


def cmd_unsubscribe(args: argparse.Namespace, config: Config) -> int:
    from .digest.unsubscribe import BadToken, load_secret, token_subscriber, verify_token
    from .pipeline import open_store

    with open_store(config) as store:
        try:
            sub = store.subscriber_by_id(token_subscriber(args.token))
            if sub is not None:
                verify_token(load_secret(config, store), config.list_id, args.token, sub.address)
        except BadToken as exc:
            raise InputError(f"{exc}; nothing changed") from None
        if sub is None:
            raise InputError("unsubscribe token names no subscriber; nothing changed")
        if sub.status == "active":
            store.set_subscriber_status(
                sub.address, "unsubscribed", "unsubscribe link (command line)", utc_now()
            )
            print(f"{sub.address}: unsubscribed")
        else:
            print(f"{sub.address}: already {sub.status}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace, config: Config) -> int:
    from .preflight import warnings

    print(
        f"{args.config}: configuration is valid; {len(config.sources)} source(s):"
        f" {', '.join(s.name for s in config.sources) or 'none'}"
    )
    for warning in warnings(config):
        log.warning("warning: %s", warning)
    if not args.live:
        return EXIT_OK
    from .live_check import check_sources

    return EXIT_OK if check_sources(config, sys.stdout) else EXIT_SOURCE_FAILED


def cmd_items(args: argparse.Namespace, config: Config) -> int:
    from .pipeline import open_store

    if not config.database_path.exists():
        raise ConfigError(f"{config.database_path}: no store yet; run 'iomfeed fetch' first")
    with open_store(config) as store:
        if (
            args.source
            and all(s.name != args.source for s in config.sources)
            and not store.count(args.source)
        ):
            config.source(args.source)  # not configured, nothing stored: the fetch's error
        items = store.items(limit=args.limit, source=args.source)
    if args.json:
        out = [
            {
                "id": i.id,
                "url": i.url,
                "source": i.source,
                "title": i.title,
                "published": i.published.isoformat(),
                "date_source": i.date_source.value,
                "date_note": i.date_note,
                "updated": i.updated.isoformat(),
                "first_seen": i.first_seen.isoformat(),
                "last_seen": i.last_seen.isoformat(),
                "summary_html": i.summary_html,
                "content_html": i.content_html,
                "image": i.image_url,
                "image_alt": i.image_alt,
                "categories": list(i.categories),
                "language": i.language,
                "author": i.author,
                "content_hash": i.content_hash,
            }
            for i in items
        ]
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for i in items:
        print(f"{i.published:%Y-%m-%d}  {i.source:<10} {i.language:<3} {i.title}\n{'':12}{i.url}")
    return EXIT_OK


def cmd_subscribers(args: argparse.Namespace, config: Config) -> int:
    from .pipeline import open_store
    from .subscribers import Subscriber, normalize_address, normalize_language, table, to_csv

    now = utc_now()
    if args.action == "import":
        return _import_subscribers(Path(args.file), config, now)
    with open_store(config) as store:
        if args.action == "add":
            try:
                sub = Subscriber(
                    normalize_address(args.address),
                    " ".join(args.name.split()),
                    normalize_language(args.lang),
                )
            except InputError as exc:
                raise InputError(f"{args.address}: {exc}") from None
            outcome = store.add_subscriber(sub, now)
            if outcome == "left" and args.resubscribe:
                store.resubscribe(sub.address, now)
                outcome = "added"
            messages = {
                "added": "subscribed",
                "exists": "already subscribed",
                "left": "left earlier; add --resubscribe if they asked to come back",
            }
            print(f"{sub.address}: {messages[outcome]}")
            return EXIT_OK if outcome != "left" else EXIT_SOURCE_FAILED
        if args.action == "remove":
            try:
                address = normalize_address(args.address)
            except BadAddress as exc:
                # Stored by an older iomfeed whose check was looser: it can still leave.
                if store.subscriber(args.address.strip()) is None:
                    raise InputError(f"{args.address}: {exc}") from None
                address = args.address.strip()
            if not store.set_subscriber_status(address, "unsubscribed", args.reason, now):
                print(f"{address}: not a subscriber", file=sys.stderr)
                return EXIT_SOURCE_FAILED
            print(f"{address}: unsubscribed")
            return EXIT_OK
        if args.action == "list":
            subs = list(store.subscribers(args.status))
            if args.json:
                json.dump(
                    [
                        {
                            "address": s.address,
                            "name": s.name,
                            "language": s.language,
                            "status": s.status,
                            "subscribed": s.subscribed.isoformat() if s.subscribed else None,
                            "left": s.left.isoformat() if s.left else None,
                            "reason": s.reason,
                        }
                        for s in subs
                    ],
                    sys.stdout,
                    ensure_ascii=False,
                    indent=2,
                )
                sys.stdout.write("\n")
            else:
                lines = table(subs) or [" ".join(filter(None, ("no", args.status, "subscribers")))]
                print("\n".join(lines))
            return EXIT_OK
        # export
        data = to_csv(store.subscribers(args.status))
        if args.file in (None, "-"):
            sys.stdout.write(data)
        else:
            from .files import PRIVATE, write_if_changed

            write_if_changed(Path(args.file), data.encode("utf-8"), mode=PRIVATE)
        return EXIT_OK


def _import_subscribers(path: Path, config: Config, now: datetime) -> int:
    from .pipeline import open_store
    from .subscribers import RowProblem, decode_csv, parse_csv

    try:
        read = parse_csv(decode_csv(path.read_bytes()))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    added = unchanged = 0
    left = list(read.left)
    with open_store(config) as store:
        for line, sub in read.rows:
            outcome = store.add_subscriber(sub, now)
            if outcome == "added":
                added += 1
            elif outcome == "exists":  # a re-import: already there, nothing to do
                unchanged += 1
            else:
                left.append(
                    RowProblem(line, sub.address, "unsubscribed or bounced earlier; not re-added")
                )
    for note in sorted([*read.problems, *left], key=lambda p: p.line):
        print(f"{path}: {note}", file=sys.stderr)
    if read.not_utf8:
        print(
            f"{path}: {read.not_utf8} row(s) are not UTF-8 text: save the file as UTF-8"
            ' (Excel: "CSV UTF-8") and import it again; the rows imported now will count'
            " as unchanged",
            file=sys.stderr,
        )
    delimiter = {",": "comma", ";": "semicolon", "\t": "tab"}[read.delimiter]
    print(f"{path}: {delimiter}-separated, {read.columns}")
    print(
        f"{path}: {added} subscriber(s) added, {unchanged} unchanged (already subscribed),"
        f" {len(left)} not added (they left), {len(read.problems)} row(s) skipped"
    )
    return EXIT_OK if not read.problems else EXIT_SOURCE_FAILED


def cmd_demo(args: argparse.Namespace, config: None) -> int:
    from .demo.run import run_demo

    given = Path(args.config_given) if args.config_given else None  # else the packaged one
    return run_demo(given, Path(args.dir), keep_serving=args.serve, port=args.port)


def cmd_init(args: argparse.Namespace, config: None) -> int:
    from .shipped import write_config

    path = write_config(Path(args.path), force=args.force)
    print(
        f"{path}: written: the documented configuration; set site.public_url (and [mail])"
        f" before the first run, then: iomfeed --config {path} check"
    )
    return EXIT_OK


# ----------------------------------------------------------------------------- parsing


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _add_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT,
        metavar="SECONDS",
        help="how long to wait for another run (or serve's cycle) on the same"
        f" database to finish before exiting 75 (default {DEFAULT_WAIT:.0f}; 0:"
        " do not wait)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iomfeed",
        description="Scrape IOM Albania's news into a deduplicated store and publish it.",
        epilog="Exit codes: 0 success; 1 some source failed (the others still ran), some "
        "deliveries failed or some import rows were skipped; 2 bad configuration or usage; "
        "65 bad input data (an address, a file to import, a token); 75 another run is using "
        "the same database (still, after --wait seconds); 141 the reader of the output "
        "stopped early.",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help=f"configuration file (default: ${CONFIG_ENV} or ./config.toml)",
    )
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-v", "--verbose", action="store_true", help="say more (debug output)")
    noise.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines as readable text (default) or one JSON object each",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "fetch",
        help="fetch every enabled source into the store",
        description="Fetch every enabled source (or the named ones) into the "
        "store, politely, and record the run.",
    )
    p.add_argument(
        "--source", action="append", metavar="NAME", help="fetch only this source (repeatable)"
    )
    # A cron fetch that only sees 304s must not pay for compiling selectors; the html source
    # compiles them before its first parse, and `check` always does.
    _add_wait(p)
    p.set_defaults(func=cmd_fetch, compile_selectors=False)

    p = sub.add_parser(
        "publish",
        help="write the feeds, archives and index.html",
        description="Write the Atom, RSS and JSON feeds, their archives and "
        "index.html from the store into publish.folder; files whose bytes did "
        "not change are left alone.",
    )
    _add_wait(p)
    p.set_defaults(func=cmd_publish, compile_selectors=False)

    p = sub.add_parser(
        "run",
        help="fetch, publish, and send the digest when it is due",
        description="One full cycle: fetch every enabled source, publish, and "
        "send the email digest when schedule.digest says it is due (or finish "
        "one a previous run left unfinished), and mail the operator about "
        "problems. Quiet with -q unless something is wrong; meant for cron.",
    )
    p.add_argument("--json", action="store_true", help="print the run report as JSON")
    _add_wait(p)
    p.set_defaults(func=cmd_run, compile_selectors=False)

    p = sub.add_parser(
        "serve",
        help="the long-running service: schedule, feeds, unsubscribe",
        description="Run the cycle on schedule.fetch and the digest on "
        "schedule.digest (a cycle also runs at start), and serve the feeds, "
        "/unsubscribe and /healthz over HTTP. SIGTERM or Ctrl-C stops cleanly.",
    )
    p.add_argument("--host", help="address to listen on (default: serve.host)")
    p.add_argument("--port", type=int, help="port to listen on (default: serve.port)")
    p.set_defaults(func=cmd_serve, compile_selectors=True)

    p = sub.add_parser(
        "status",
        help="sources, store, digests, subscribers, next times",
        description="Show how iomfeed is doing: each source's last run "
        "(ok, failed now, failing for N runs), last success and error, the "
        "store, the last digests, subscribers by status and the next scheduled "
        "times. Exit 1 when the last run of an enabled source failed or "
        "something else needs attention.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_status, compile_selectors=False)

    p = sub.add_parser(
        "digest",
        help="preview, test or send the email digest",
        description="The email digest of the items first seen since the last "
        "digest that went out. Without an option: --dry-run.",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--dry-run",
        action="store_true",
        help="render it and report who would get what (changes nothing)",
    )
    what.add_argument(
        "--send",
        action="store_true",
        help="send it now (or finish the one being sent), whatever the schedule",
    )
    what.add_argument(
        "--to", metavar="ADDRESS", help="send one test copy, marked [TEST], to ADDRESS (no ledger)"
    )
    what.add_argument(
        "--preview", metavar="FILE.html", help="write the rendered HTML digest to FILE.html"
    )
    p.add_argument(
        "--lang",
        dest="lang_given",
        choices=("en", "sq"),
        help="language of --preview (default en) or --to (default: theirs)",
    )
    _add_wait(p)
    p.set_defaults(func=cmd_digest, compile_selectors=False)

    p = sub.add_parser(
        "unsubscribe",
        help="apply an unsubscribe token",
        description="Unsubscribe the subscriber an unsubscribe token (from a "
        "digest's link) names. A forged or malformed token changes nothing "
        "and exits with 65 (bad input).",
    )
    p.add_argument("token", help="the token (the t= value of the unsubscribe link)")
    p.set_defaults(func=cmd_unsubscribe, compile_selectors=False)

    p = sub.add_parser(
        "check",
        help="validate the configuration",
        description="Validate the configuration file and warn about what "
        "loads but would not work or would leak: site.public_url left at the "
        "example, an SMTP username whose password variable is unset, a "
        "database others can read. With --live also fetch one page of each "
        "source and report what the selectors find.",
    )
    p.add_argument(
        "--live", action="store_true", help="fetch one listing page and one article per source"
    )
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "items",
        help="list stored items, newest first",
        description="List the stored items, newest first.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument(
        "--limit",
        type=_at_least_one,
        default=None,
        metavar="N",
        help="at most N items (1 or more; default: all)",
    )
    p.add_argument(
        "--source",
        metavar="NAME",
        help="only items of this source (configured, or with items stored)",
    )
    p.set_defaults(func=cmd_items)

    p = sub.add_parser(
        "subscribers",
        help="manage the digest's subscribers",
        description="Add, remove, list, import and export the subscribers of "
        "the email digest (kept in the store).",
    )
    p.set_defaults(func=cmd_subscribers, compile_selectors=False)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True, help="what to do")
    a = actions.add_parser(
        "add", help="subscribe one address", description="Subscribe one address."
    )
    a.add_argument("address", help="the e-mail address")
    a.add_argument("--name", default="", help="the subscriber's name (any language)")
    a.add_argument("--lang", default="en", choices=("en", "sq"), help="digest language")
    a.add_argument(
        "--resubscribe",
        action="store_true",
        help="re-add someone who unsubscribed (only when they asked for it)",
    )
    a = actions.add_parser(
        "remove",
        help="unsubscribe one address",
        description="Unsubscribe one address (kept, marked unsubscribed).",
    )
    a.add_argument("address", help="the e-mail address")
    a.add_argument("--reason", default="removed by an operator", help="why they left")
    a = actions.add_parser(
        "list",
        help="list subscribers",
        description="List subscribers in the order they joined, in "
        "aligned columns (address, name, language, status, joined, left, "
        "reason).",
    )
    a.add_argument("--status", choices=("active", "unsubscribed", "bounced"), help="only these")
    a.add_argument("--json", action="store_true", help="print JSON instead of text")
    a = actions.add_parser(
        "import",
        help="import subscribers from a CSV file",
        description="Import subscribers from a CSV file: comma, semicolon "
        "or tab separated (sniffed); with a header row naming the columns "
        "(Mailchimp's and listmonk's exports and iomfeed's own are "
        "understood) or without one (address, name, language). Addresses "
        "already subscribed count as unchanged; people who left (here or "
        "by the file's status column) are not added. Every bad row is "
        "reported with its line number and the others are imported: exit "
        "code 1 when any row was skipped, 65 when the file cannot be read.",
    )
    a.add_argument("file", help="the CSV file (UTF-8, with or without a BOM, or UTF-16)")
    a = actions.add_parser(
        "export",
        help="export subscribers as CSV",
        description="Write the subscribers as CSV (a file is made readable by its owner only).",
    )
    a.add_argument("file", nargs="?", help="where to write (default: standard output)")
    a.add_argument("--status", choices=("active", "unsubscribed", "bounced"), help="only these")

    p = sub.add_parser(
        "demo",
        help="run iomfeed on the bundled snapshot of the site",
        description="Serve the bundled snapshot of the IOM Albania site on "
        "127.0.0.1 and run iomfeed against it with the packaged configuration "
        "(or --config), the site's address and site.public_url swapped for "
        "local ones. Works from any folder.",
    )
    p.add_argument(
        "--dir",
        default="demo",
        metavar="DIR",
        help="folder for the demo's database and output (default: ./demo)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=8791,
        metavar="N",
        help="port for the snapshot on 127.0.0.1, the feeds on N+1 (default 8791;"
        " 0 or busy: free ones)",
    )
    p.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after the run, keep serving the feeds (at the local address used as"
        " site.public_url) and the snapshot until Ctrl-C (default: when run from"
        " a terminal)",
    )
    p.set_defaults(func=cmd_demo, needs_config=False)

    p = sub.add_parser(
        "init",
        help="write the documented configuration file to edit",
        description="Write the configuration shipped with iomfeed (every key,"
        " commented, set for the live IOM Albania site) to PATH, to edit."
        " An existing file is kept unless --force.",
    )
    p.add_argument(
        "path",
        nargs="?",
        default="config.toml",
        metavar="PATH",
        help="where to write it (default: ./config.toml; a folder gets a config.toml)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=cmd_init, needs_config=False)
    return parser


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for a service's log collector."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(verbose: bool, quiet: bool, log_format: str = "text") -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The scheduler says "Running job ..." at INFO for every job; only worth it when asked.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point. When whoever reads standard output stops early (``iomfeed items |
    head``), the command ends quietly with 141 (128 + SIGPIPE, as a shell reports for other
    programs cut off by a pipe) instead of a BrokenPipeError traceback."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at interpreter exit, where it could not be caught
    except BrokenPipeError:
        if not _stdout_closed():
            raise  # some other pipe or socket: a bug, with its traceback
        # Point stdout at /dev/null: the interpreter flushes it again on exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_PIPE
    return code


def _stdout_closed() -> bool:
    """Whether standard output is a pipe or socket whose reading end has gone."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        events = poller.poll(0)
    except (OSError, ValueError):  # no file descriptor (output captured in memory)
        return False
    return any(mask & (select.POLLERR | select.POLLHUP) for _fd, mask in events)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet, args.log_format)
    args.config_given = args.config
    args.config = str(Path(args.config) if args.config else default_config_path())
    config: Config | None = None
    try:
        config = (
            load_config(
                Path(args.config), compile_selectors=getattr(args, "compile_selectors", True)
            )
            if getattr(args, "needs_config", True)
            else None
        )  # demo and init
        code: int = args.func(args, config)
    except ConfigError as exc:
        print(f"iomfeed: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except InputError as exc:
        print(f"iomfeed: bad input: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except AlreadyRunning as exc:
        print(f"iomfeed: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except IomfeedError as exc:
        print(f"iomfeed: {exc}", file=sys.stderr)
        return EXIT_SOURCE_FAILED
    except sqlite3.Error as exc:
        from .store_errors import explain

        if config is None:  # the demo's own store
            print(f"iomfeed: the database failed: {exc}", file=sys.stderr)
        else:
            print(f"iomfeed: {explain(config.database_path, exc, action='use')}", file=sys.stderr)
        return EXIT_SOURCE_FAILED
    except KeyboardInterrupt:
        print("iomfeed: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
