"""The only place that sequences stages: fetch (:mod:`iomfeed.ingest`), publish, digest.

Entry points (the CLI, the scheduler, the web app) call these functions with the clock, the
HTTP client and the store injected, and add nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from .config import Config
from .errors import PublishError
from .models import (
    CycleReport,
    DigestOutcome,
    PublishReport,
    RunReport,
)

# The digest's steps live in digest/steps.py; re-exported here, where callers found them,
# on first use (__getattr__ below): a quiet cycle does not load them.
if TYPE_CHECKING:
    from .bounces.process import BounceReport
    from .delivery.mailers import Mailer
    from .digest.steps import composers as composers
    from .digest.steps import digest_content as digest_content
    from .digest.steps import digest_due as digest_due
    from .digest.steps import digest_preview as digest_preview
    from .digest.steps import render_languages as render_languages
    from .digest.steps import sender as sender
    from .http import HttpClient
    from .stopping import Stop
    from .store import Store

log = logging.getLogger(__name__)

_STEPS = frozenset(
    ("composers", "digest_content", "digest_due", "digest_preview", "render_languages", "sender")
)


def __getattr__(name: str) -> object:
    """The digest steps re-exported above, imported when first asked for."""
    if name in _STEPS:
        from .digest import steps

        return getattr(steps, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def publish(
    config: Config,
    *,
    store: Store,
    now: datetime,
    why_empty: str = "run 'iomfeed fetch' first",
    force: bool = True,
    only_digests: bool = False,
    render_all: bool = False,
) -> PublishReport:
    """Write the feeds; then, if a WebSub hub is configured, announce the changed ones.

    An empty store publishes nothing, said in one line with ``why_empty``. Without
    ``force`` (a cycle), nothing is rendered when nothing a publish reads changed since the
    last one and its files are intact (:mod:`iomfeed.publish.inputs`). ``only_digests``:
    render only the digest archive and the index, for a caller that knows nothing else a
    publish reads changed since the last complete one (see :func:`send_digest`).
    ``render_all``: every file rendered again, also those whose recorded fingerprint says
    they are what their inputs make (:func:`iomfeed.publish.build.publish_all`)."""
    from .publish import inputs

    if store.count() == 0:
        log.warning("nothing published: the store has no items yet (%s)", why_empty)
        return PublishReport((), 0)
    mark = inputs.mark(config, store)
    same = None if force else inputs.unchanged(config, store, mark)
    if same is not None:
        log.info("published to %s: nothing changed, %d file(s) kept", config.feeds_path, same)
        report = PublishReport((), same)
    else:
        from .publish.build import publish_all

        report = publish_all(config, store, now=now, feeds=not only_digests, render_all=render_all)
        store.set_setting(inputs.SETTING, mark)
        log.info(
            "published to %s: %d file(s) written, %d unchanged",
            config.feeds_path,
            len(report.written),
            report.unchanged,
        )
    if config.site.websub_hub and (report.written or store.pending_pings()):
        from .publish.websub import announce

        report = announce(config, store, report, now=now)
    return report


def send_digest(
    config: Config,
    *,
    store: Store,
    mailer: Mailer,
    clock: Callable[[], datetime],
    stop: Stop | None = None,
    on_message: Callable[[], None] | None = None,
) -> DigestOutcome:
    """Send the digest (:func:`iomfeed.digest.steps.send_digest`); then, when a message of
    it went out, publish, so that the page each message links ("View in browser") is on
    the web at once, not at the next cycle. A publish that fails then is logged, not
    raised: the digest went out, and the next publish writes the page.

    When the last complete publish was current before the send (its mark, its files
    intact) and no item changed meanwhile, only the digest archive and the index are
    rendered: a send changes nothing else a publish reads."""
    from .digest.steps import send_digest as send
    from .publish import inputs

    feeds_current = inputs.unchanged(config, store, inputs.mark(config, store)) is not None
    items_before = store.changes().get("items")
    outcome = send(
        config, store=store, mailer=mailer, clock=clock, stop=stop, on_message=on_message
    )
    if outcome.delivery is not None and (outcome.delivery.sent or outcome.delivery.finished):
        only_digests = feeds_current and store.changes().get("items") == items_before
        try:
            # Always rendered: whether a digest has a page depends on its ledger (a first
            # message accepted), which the quiet-cycle mark does not count.
            publish(config, store=store, now=clock(), only_digests=only_digests)
        except PublishError as exc:
            log.error("digest %d: its web page was not published: %s", outcome.digest_id, exc)
    return outcome


def run_cycle(
    config: Config,
    *,
    store: Store,
    http: HttpClient,
    mailer: Callable[[], Mailer],
    clock: Callable[[], datetime],
    stop: Stop | None = None,
    on_item: Callable[[], None] | None = None,
    on_message: Callable[[], None] | None = None,
) -> CycleReport:
    """Fetch, publish, send the digest when it is due, tell the operator what went wrong:
    what ``iomfeed run`` does once and ``iomfeed serve`` on its schedule."""
    from .alerts import notify
    from .ingest import fetch_all  # the fetch stage (a publish alone never loads it)

    report = fetch_all(
        config,
        store=store,
        http=http,
        now=clock,
        stop=(lambda: stop.requested) if stop is not None else None,
        on_item=on_item,
    )
    published, publish_error = None, ""
    try:
        published = _cycle_publish(config, store, clock, report)
    except PublishError as exc:  # the fetch is stored; the mailbox and the digest go on
        publish_error = str(exc)
        log.error("publish failed: %s", exc)
    bounces = None
    if config.bounces.configured and (stop is None or not stop.requested):
        bounces = read_bounces_safely(config, store=store, clock=clock, stop=stop)
    outcome = None
    from .digest.due import digest_due  # the stored next time: no APScheduler

    if (stop is None or not stop.requested) and digest_due(config, store, clock()):
        outcome = send_digest(
            config, store=store, mailer=mailer(), clock=clock, stop=stop, on_message=on_message
        )
    alerts = notify(config, store, mailer, clock())
    return CycleReport(
        run=report,
        published=published,
        digest=outcome,
        alerts=alerts,
        bounces=bounces,
        publish_error=publish_error,
    )


def _cycle_publish(
    config: Config, store: Store, clock: Callable[[], datetime], report: RunReport
) -> PublishReport:
    """A cycle's publish: nothing rendered when nothing it reads changed."""
    stopped = any(r.stopped for r in report.sources)
    return publish(
        config,
        store=store,
        now=clock(),
        why_empty=(
            "the fetch failed"
            if report.failed
            else "the run was stopped"
            if stopped
            else "the sources gave none"
        ),
        force=False,
    )


def read_bounces(
    config: Config, *, store: Store, clock: Callable[[], datetime], stop: Stop | None = None
) -> BounceReport:
    """Read the bounce mailbox (``[bounces]``) and apply what came back
    (:mod:`iomfeed.bounces`); a mailbox that cannot be opened raises."""
    from .bounces.mailbox import open_mailbox
    from .bounces.process import process_mailbox
    from .digest.unsubscribe import load_secret

    secret = load_secret(config, store)
    mailbox = open_mailbox(config)
    try:
        return process_mailbox(
            config,
            store,
            mailbox,
            secret=secret,
            clock=clock,
            stopping=(lambda: stop.requested) if stop is not None else (lambda: False),
        )
    finally:
        mailbox.close()


def read_bounces_safely(
    config: Config, *, store: Store, clock: Callable[[], datetime], stop: Stop | None = None
) -> BounceReport:
    """The cycle's bounce step: a mailbox that cannot be read is reported, and the cycle
    goes on to the digest (whose bounced addresses are then only those known so far)."""
    from .bounces.process import BounceReport
    from .errors import ConfigError, MailboxError

    try:
        return read_bounces(config, store=store, clock=clock, stop=stop)
    except (MailboxError, ConfigError) as exc:
        log.error("bounces: %s", exc)
        return BounceReport(
            where=config.bounces.maildir or config.bounces.imap_host, error=str(exc)
        )
