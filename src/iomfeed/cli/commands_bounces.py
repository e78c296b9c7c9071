"""``iomfeed bounces`` (read the bounce mailbox now) and ``iomfeed digests show N`` (one
digest's recipients, from the ledger and the bounce log). Thin: the logic is in
:mod:`iomfeed.bounces`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import ConfigError, InputError
from ..runtime import open_runtime
from .exits import EXIT_OK, EXIT_SOURCE_FAILED

if TYPE_CHECKING:
    from ..bounces.audit import DigestAudit
    from ..bounces.process import BounceReport
    from ..bounces.records import BounceEvent


def cmd_bounces(args: argparse.Namespace, config: Config) -> int:
    from ..pipeline import read_bounces

    if not config.bounces.configured:
        raise ConfigError(
            "bounces: no mailbox configured; set bounces.maildir or bounces.imap_host"
        )
    with (
        open_runtime(config, lock="iomfeed bounces", wait=args.wait) as rt,
        rt.stop_on_signals() as stop,
    ):
        report = read_bounces(config, store=rt.store, clock=rt.clock, stop=stop)
    if args.json:
        from ..jsonout import dumps

        print(dumps(report))
    else:
        print(report_line(report))
    return EXIT_OK if report.ok else EXIT_SOURCE_FAILED


def report_line(r: BounceReport) -> str:
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(r.kinds.items())) or "nothing new"
    line = (
        f"{r.where}: {r.read} message(s) read ({kinds}); {r.bounced} subscriber(s) marked"
        f" bounced, {r.unsubscribed} unsubscribed by a complaint, {r.ignored} not acted on"
    )
    if r.requests:
        line += f"; {r.requests} unsubscribed by their own mail (List-Unsubscribe)"
    if r.again:
        line += f"; {r.again} already recorded, marked read now"
    if r.error:
        line += f"; stopped: {r.error}"
    return line


def cmd_digests(args: argparse.Namespace, config: Config) -> int:
    from ..bounces.audit import digest_audit

    with open_runtime(config) as rt:
        audit = digest_audit(rt.store, args.id)
    if audit is None:  # an id the store never had: bad input, as an unknown token is
        raise InputError(f"no digest {args.id} (`iomfeed status` lists the last digests)")
    if args.json:
        from ..jsonout import dumps

        print(dumps(audit_json(audit)))
    else:
        print("\n".join(audit_lines(audit)))
    return EXIT_OK


def audit_json(audit: DigestAudit) -> dict[str, Any]:
    return {
        "digest": audit.record,
        "counts": audit.counts,
        "recipients": [
            {
                "address": r.address,
                "outcome": r.outcome,
                "delivery": r.delivery,
                "reply": r.reply,
                "bounces": list(r.events),
            }
            for r in audit.recipients
        ],
    }


def audit_lines(audit: DigestAudit) -> list[str]:
    from ..subscribers import aligned

    d = audit.record
    counts = ", ".join(f"{n} {k}" for k, n in sorted(audit.counts.items())) or "no recipients"
    lines = [f"digest {d.id} of {d.created:%Y-%m-%d %H:%M} UTC: {d.status}, {counts}"]
    table = [("address", "outcome", "ledger", "came back")]
    for r in audit.recipients:
        back = "; ".join(_event_words(e) for e in r.events) or "-"
        table.append((r.address or "(forgotten)", r.outcome, r.delivery, back[:90]))
    return [*lines, *("  " + row for row in aligned(table))]


def _event_words(e: BounceEvent) -> str:
    status = f" {e.status}" if e.status else ""
    return f"{e.kind.value}{status} {e.received:%Y-%m-%d} ({e.action.value})"


def bounce_lines(events: list[BounceEvent]) -> list[str]:
    """``subscribers show``: the latest bounce-mailbox events about them."""
    from ..subscribers import aligned

    if not events:
        return ["bounces:      none"]
    table = [("read", "kind", "status", "digest", "trust", "action", "detail")]
    table += [
        (
            f"{e.received:%Y-%m-%d %H:%M}",
            e.kind.value,
            e.status or "-",
            str(e.digest_id or "-"),
            e.trust.value,
            e.action.value,
            e.detail[:60],
        )
        for e in events
    ]
    return [f"bounces:      the latest {len(events)}", *("  " + r for r in aligned(table))]
