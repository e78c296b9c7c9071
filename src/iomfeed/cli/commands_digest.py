"""``iomfeed digest``: preview, dry run, test copy, or send the email digest now.

The digest's rules (what is new, when it is due, who gets what) are the pipeline's and the
digest package's; this module opens the runtime, calls them and says what they did.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import BadAddress, ConfigError, InputError
from ..runtime import Runtime, open_runtime
from .exits import EXIT_OK, EXIT_SOURCE_FAILED, exit_stopped

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from ..store import Store


def cmd_digest(args: argparse.Namespace, config: Config) -> int:
    codes = config.digest.languages
    if args.lang_given is not None and args.lang_given not in codes:
        raise InputError(f"--lang {args.lang_given}: not in digest.languages ({', '.join(codes)})")
    if args.lang_given is not None and not (args.preview or args.to):
        # A send (or its dry run) gives every subscriber their own: it would be ignored.
        raise ConfigError(
            "--lang goes with --preview or --to: a send gives every subscriber the digest"
            " in their own language"
        )
    if args.send:
        return _digest_send(args, config)
    if not config.database_path.exists():
        # A dry run, a preview and a test copy change nothing: they make no store either.
        print(
            f"iomfeed: no store at {config.database_path}: nothing to send yet"
            " (run 'iomfeed run' first)",
            file=sys.stderr,
        )
        return EXIT_SOURCE_FAILED
    with open_runtime(config) as rt:
        if args.preview:
            return _digest_preview(args, rt)
        if args.to:  # reads the store only: no lock, so a test copy goes out during a cycle
            return _digest_test_copy(args, rt)
        return _digest_dry_run(args, config, rt.store, rt.clock)


def _digest_send(args: argparse.Namespace, config: Config) -> int:
    from ..pipeline import send_digest
    from ..progress import Progress

    sending = Progress("digest messages", enabled=not args.quiet)
    with (
        open_runtime(config, lock="iomfeed digest --send", wait=args.wait) as rt,
        rt.stop_on_signals() as stop,
    ):
        try:
            outcome = send_digest(
                config,
                store=rt.store,
                mailer=rt.mailer(),
                clock=rt.clock,
                stop=stop,
                on_message=sending.step,
            )
        finally:
            sending.close()
    d = outcome.delivery
    if d is None:  # skipped, or held by the relay's quota (mail.*_limit)
        print(
            f"digest {'skipped' if outcome.status == 'skipped' else 'not sent now'}: {outcome.note}"
        )
        return EXIT_OK
    totals = ", ".join(f"{n} {s}" for s, n in sorted(d.totals.items()))
    print(
        f"digest {outcome.digest_id}: {d.sent} sent now ({totals});"
        f" {'complete' if d.finished else 'NOT complete'}"
        + (f"; {d.quota_note}" if d.quota_note else "")
    )
    if stop.requested and not d.finished:
        return exit_stopped(stop.signal)
    return EXIT_OK if outcome.ok else EXIT_SOURCE_FAILED


def _digest_preview(args: argparse.Namespace, rt: Runtime) -> int:
    from ..files import write_if_changed
    from ..pipeline import digest_preview

    lang = args.lang_given or rt.config.digest.languages[0]
    content, rendered, page = digest_preview(rt.config, rt.store, rt.clock(), lang)
    write_if_changed(Path(args.preview), page.encode("utf-8"))
    what = "the latest" if content.first else "new"
    print(
        f"{args.preview}: digest preview ({lang}), {len(content.entries)} {what} item(s),"
        f" {rendered.shown} shown, {rendered.more} more linked,"
        f" {rendered.html_bytes / 1000:.1f} KB of HTML; subject: {rendered.subject}"
    )
    return EXIT_OK


def _digest_dry_run(
    args: argparse.Namespace, config: Config, store: Store, clock: Callable[[], datetime]
) -> int:
    from ..digest.steps import dry_run

    plan = dry_run(config, store, clock())
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
        if plan.skip:
            print(f"{plan.skip}: it would be skipped")
    for lang, r in plan.rendered.items():
        print(
            f"  {lang}: {plan.recipients.get(lang, 0)} subscriber(s); subject: {r.subject};"
            f" {r.shown} item(s) shown, {r.more} more; {r.html_bytes / 1000:.1f} KB HTML"
        )
    _print_segments(plan.segments)
    if plan.paused:
        print(f"  {plan.paused} subscriber(s) who paused the digest: not sent to")
    for e in content.entries:
        print(f"    {e.published:%Y-%m-%d}  [{e.category or '-'}] {e.title}")
    return EXIT_OK


def _print_segments(segments: Mapping[tuple[str, tuple[str, ...]], int]) -> None:
    """Recipients per (language, category segment), rendered once each."""
    parts = [
        f"{lang} {', '.join(segment) or 'every category'}: {n}"
        for (lang, segment), n in sorted(segments.items())
        if lang
    ]
    if parts:
        print(f"  {len(parts)} segment(s), each rendered once: " + "; ".join(parts))
    if skipped := segments.get(("", ()), 0):
        print(f"  {skipped} subscriber(s) with nothing new in their categories: skipped")


def _digest_test_copy(args: argparse.Namespace, rt: Runtime) -> int:
    import secrets

    from ..pipeline import composers, digest_content, render_languages
    from ..preflight import require_sendable
    from ..subscribers import normalize_address

    config, store = rt.config, rt.store
    try:
        address = normalize_address(args.to)
    except BadAddress as exc:
        raise InputError(f"--to {args.to}: {exc}") from None
    require_sendable(config)
    now = rt.clock()
    sub = store.subscriber(address)
    lang = args.lang_given or (sub.language if sub else rt.config.digest.languages[0])
    content = digest_content(config, store, now)
    rendered = render_languages(config, content, (lang,))
    composer = composers(
        config, rendered, digest_id=content.digest_id, date=now, secret=b"test-copy", test=True
    )[lang]
    mid = f"<test-{now:%Y%m%d%H%M%S}.{secrets.token_hex(6)}@{config.mail.sender_domain}>"
    message = composer.compose_test(address, sub.name if sub else "", mid)
    mailer = rt.mailer()
    try:
        reply = mailer.send(message)
    finally:
        mailer.close()
    store.record_sent(rt.clock(), "test")  # the relay counts it (mail.*_limit)
    print(f"test copy ({lang}) sent to {address}: {reply}")
    return EXIT_OK
