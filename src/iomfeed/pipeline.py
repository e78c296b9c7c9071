"""The only place that sequences stages: fetch (:mod:`iomfeed.ingest`), publish, digest.

Entry points (the CLI, the scheduler, the web app) call these functions with the clock, the
HTTP client and the store injected, and add nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from .config import Config
from .http import HttpClient
from .ingest import fetch_all as fetch_all  # the fetch stage, used here and by callers
from .models import (
    CycleReport,
    DigestContent,
    DigestOutcome,
    PublishReport,
    RenderedDigest,
    StoredItem,
)
from .store import Store

if TYPE_CHECKING:
    from .delivery.mailers import Mailer
    from .delivery.send import Stop
    from .digest.message import Composer, Sender

log = logging.getLogger(__name__)


def publish(
    config: Config, *, store: Store, now: datetime, why_empty: str = "run 'iomfeed fetch' first"
) -> PublishReport:
    """Write the feeds; then, if a WebSub hub is configured, announce the changed ones.

    An empty store publishes nothing, said in one line with ``why_empty``."""
    from .publish.build import publish_all

    if store.count() == 0:
        log.warning("nothing published: the store has no items yet (%s)", why_empty)
        return PublishReport((), 0)
    report = publish_all(config, store, now=now)
    log.info(
        "published to %s: %d file(s) written, %d unchanged",
        config.feeds_path,
        len(report.written),
        report.unchanged,
    )
    if config.site.websub_hub:
        from .publish.websub import announce

        report = announce(config, store, report, now=now)
    return report


# --------------------------------------------------------------------------- digest


def digest_content(config: Config, store: Store, now: datetime) -> DigestContent:
    """The digest to send now: the one still being sent (same items, same date), or a new
    selection of the items first seen since the last digest that went out."""
    from .digest.select import select

    current = store.open_digest()
    if current is not None:
        items = store.items_by_id(store.digest_item_ids(current.id))
        return _frozen_content(current.id, current.created, current.since, items, current.more)
    last_sent = store.last_digest("sent")
    if last_sent is None:
        # The list's first digest: everything stored is "new", back to the oldest story a
        # backfill found. Only the newest few are shown; the others count as handled.
        return select(
            store.new_items(None, now),
            max_items=config.digest.first_items,
            digest_id=0,
            created=now,
            since=None,
            first=True,
        )
    return select(
        store.new_items(last_sent, now),
        max_items=config.digest.max_items,
        digest_id=0,
        created=now,
        since=last_sent.cutoff,
    )


def _frozen_content(
    digest_id: int,
    created: datetime,
    since: datetime | None,
    items: Sequence[StoredItem],
    more: int,
) -> DigestContent:
    from .digest.select import to_entry

    # Only the first digest has no "since": every later one starts where a sent one ended.
    return DigestContent(
        digest_id=digest_id,
        created=created,
        since=since,
        entries=tuple(to_entry(i) for i in items),
        more=more,
        first=since is None,
    )


def render_languages(
    config: Config, content: DigestContent, languages: Sequence[str] | None = None
) -> dict[str, RenderedDigest]:
    """The digest rendered and inlined once per language (by default each of
    ``digest.languages``)."""
    from .digest.render import render_digest

    codes = config.digest.languages if languages is None else languages
    return {lang: render_digest(content, lang, config) for lang in codes}


def sender(config: Config, language: str = "en") -> Sender:
    from .digest.message import Sender

    return Sender(
        address=config.mail.from_address,
        name=config.mail.from_name.get(language),
        list_id=config.list_id,
        list_name=config.digest.title.get(language),
        unsubscribe_url=config.unsubscribe_url,
        unsubscribe_mailto=config.unsubscribe_mailto,
        reply_to=config.mail.reply_to,
    )


def composers(
    config: Config,
    rendered: dict[str, RenderedDigest],
    *,
    digest_id: int,
    date: datetime,
    secret: bytes,
    test: bool = False,
) -> dict[str, Composer]:
    from .digest.message import Composer

    return {
        lang: Composer(
            r, sender=sender(config, lang), digest_id=digest_id, date=date, secret=secret, test=test
        )
        for lang, r in rendered.items()
    }


def digest_due(config: Config, store: Store, now: datetime) -> bool:
    from .digest.select import is_due

    return is_due(
        schedule=config.schedule.digest,
        timezone=config.site.timezone,
        now=now,
        last=store.last_digest(),
        open_digest=store.open_digest(),
        first_run=store.first_run_started(),
    )


def send_digest(
    config: Config,
    *,
    store: Store,
    mailer: Mailer,
    clock: Callable[[], datetime],
    stop: Stop | None = None,
    on_message: Callable[[], None] | None = None,
) -> DigestOutcome:
    """Send the digest: resume the one being sent, or make one of what is new. Skips (and
    records the skip, so the schedule moves on) when there is nothing new or nobody to
    send to."""
    from .delivery.send import deliver
    from .digest.unsubscribe import load_secret
    from .preflight import require_sendable

    require_sendable(config)  # before anything is recorded
    now = clock()
    content = digest_content(config, store, now)
    record = store.digest(content.digest_id) if content.digest_id else None
    rendered: dict[str, RenderedDigest] | None = None
    if record is None:
        since = content.since.isoformat() if content.since else "the start"
        note = ""
        if not content.entries and config.digest.skip_empty:
            note = f"nothing new since {since}"
        elif store.subscriber_counts().get("active", 0) == 0:
            note = "no active subscribers"
        if note:
            digest_id = store.skip_digest(created=now, since=content.since, note=note)
            log.info("digest skipped: %s", note)
            return DigestOutcome("skipped", digest_id, 0, 0, note=note)
        # Render and make one message per language before anything is recorded: a template
        # or header problem stops here, not half-way through a recorded digest.
        rendered = render_languages(config, content)
        secret = load_secret(config, store)
        for composer in composers(config, rendered, digest_id=0, date=now, secret=secret).values():
            composer.compose(1, config.mail.from_address, "Trial Recipient")
        record = store.create_digest(
            created=now,
            since=content.since,
            cutoff=now,
            item_ids=[e.id for e in content.entries],
            more=content.more,
            left_out=content.left_out,
        )
        content = DigestContent(
            digest_id=record.id,
            created=record.created,
            since=record.since,
            entries=content.entries,
            more=content.more,
            first=content.first,
        )
        log.info(
            "digest %d: %d item(s) (%d more linked) to %d subscriber(s)",
            record.id,
            len(content.entries),
            content.more,
            sum(store.delivery_totals(record.id).values()),
        )
    else:
        secret = load_secret(config, store)
        log.info(
            "digest %d: resuming the send (%s)",
            record.id,
            ", ".join(f"{n} {s}" for s, n in sorted(store.delivery_totals(record.id).items())),
        )
    if rendered is None:  # resuming: render what the recorded digest holds
        rendered = render_languages(config, content)
    made = composers(config, rendered, digest_id=record.id, date=record.created, secret=secret)
    try:
        report = deliver(
            store,
            record,
            made,
            mailer,
            mail=config.mail,
            clock=clock,
            stop=stop,
            on_message=on_message,
        )
    finally:
        mailer.close()
    status = "sent" if report.finished else "incomplete"
    log.info(
        "digest %d: %d sent, %d failed, %d deferred, %d skipped this run; %s",
        record.id,
        report.sent,
        report.failed,
        report.deferred,
        report.skipped,
        "complete"
        if report.finished
        else "not complete: "
        + (report.error or ("stopped" if report.interrupted else "some pending")),
    )
    if report.error:
        log.error("digest %d: %s", record.id, report.error)
    return DigestOutcome(status, record.id, len(content.entries), content.more, delivery=report)


def digest_preview(
    config: Config, store: Store, now: datetime, language: str
) -> tuple[DigestContent, RenderedDigest, str]:
    """The digest to send now, rendered in ``language`` with sample subscriber values: what
    ``iomfeed digest --preview`` writes. Changes nothing."""
    import html

    from .digest.message import unsubscribe_link
    from .digest.render import ADDRESS, GREETING, UNSUBSCRIBE_URL

    content = digest_content(config, store, now)
    rendered = render_languages(config, content, (language,))[language]
    values = {
        GREETING: rendered.greeting_no_name,
        UNSUBSCRIBE_URL: unsubscribe_link(config.unsubscribe_url, "PREVIEW"),
        ADDRESS: "subscriber@example.org",
    }
    page = rendered.html
    for token, value in values.items():
        page = page.replace(token, html.escape(value))
    return content, rendered, page


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

    report = fetch_all(
        config,
        store=store,
        http=http,
        now=clock,
        stop=(lambda: stop.requested) if stop is not None else None,
        on_item=on_item,
    )
    published = publish(
        config,
        store=store,
        now=clock(),
        why_empty="the fetch failed" if report.failed else "the sources gave none",
    )
    outcome = None
    if (stop is None or not stop.requested) and digest_due(config, store, clock()):
        outcome = send_digest(
            config, store=store, mailer=mailer(), clock=clock, stop=stop, on_message=on_message
        )
    alerts = notify(config, store, mailer, clock())
    return CycleReport(run=report, published=published, digest=outcome, alerts=alerts)
