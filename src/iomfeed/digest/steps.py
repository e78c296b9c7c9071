"""The digest steps the pipeline and the commands call: what the next digest holds, whether
it is due, the send, the preview and the dry run.

Each step reads the store, asks :mod:`.lifecycle` what to do and applies the answer: the
rules (when a digest is due, when it is skipped, which state follows which) are there, the
retry and bounce rules in :mod:`..delivery.policy`, the per-message loop in
:mod:`..delivery.send`. Heavy imports (the renderer, premailer) stay inside the functions, so
a cron run with nothing to send does not load them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ..models import DigestOutcome, StoredItem
from ..output_records import DigestContent, DigestPlan, RenderedDigest
from .lifecycle import (
    NOTHING_FOR_THEM,
    Create,
    DeliveryStatus,
    DigestState,
    Resume,
    Skip,
    Wait,
    advance,
    after_send,
    decide,
    first_status,
    state_of,
)
from .pages import page_stem
from .segments import Key, Renderings, Segment, for_segment, has_stories, offered_categories

if TYPE_CHECKING:
    from ..config import Config
    from ..delivery.mailers import Mailer
    from ..delivery.send import Stop
    from ..models import DigestRecord
    from ..output_records import DeliveryReport
    from ..store import Store
    from .message import Composer, Sender

log = logging.getLogger(__name__)


def digest_content(config: Config, store: Store, now: datetime) -> DigestContent:
    """The digest to send now: the one still being sent (same items, same date), or a new
    selection of the items first seen since the last digest that went out."""
    from .select import select

    current = store.open_digest()
    if current is not None:
        items = store.items_by_id(store.digest_item_ids(current.id))
        rest = store.items_by_id(store.digest_left_out(current.id))
        content = _frozen_content(current, items, rest)
    elif (last_sent := store.last_digest(DigestState.SENT)) is None:
        # The list's first digest: everything stored is "new", back to the oldest story a
        # backfill found. Only the newest few are shown; the others count as handled.
        content = select(
            store.new_items(None, now),
            max_items=config.digest.first_items,
            digest_id=0,
            created=now,
            since=None,
            first=True,
        )
    else:
        content = select(
            store.new_items(last_sent, now),
            max_items=config.digest.max_items,
            digest_id=0,
            created=now,
            since=last_sent.cutoff,
        )
    # Its web page's name, for the "View in browser" link of every message.
    stem = page_stem(content.digest_id, content.created, store.digest_days(), config.site.timezone)
    return dataclasses.replace(content, page=stem)


def _frozen_content(
    record: DigestRecord, items: Sequence[StoredItem], rest: Sequence[StoredItem]
) -> DigestContent:
    """The digest being sent, as recorded: the items it shows, and those it left out (its
    category segments may show some of them: :func:`.segments.for_segment`)."""
    from .select import to_entry

    # Only the first digest has no "since": every later one starts where a sent one ended.
    return DigestContent(
        digest_id=record.id,
        created=record.created,
        since=record.since,
        entries=tuple(to_entry(i) for i in items),
        more=record.more,
        left_out=tuple(i.id for i in rest),
        rest=tuple(rest),
        first=record.since is None,
    )


def render_languages(
    config: Config, content: DigestContent, languages: Sequence[str] | None = None
) -> dict[str, RenderedDigest]:
    """The digest rendered and inlined once per language (by default each of
    ``digest.languages``)."""
    from .render import render_digest

    codes = config.digest.languages if languages is None else languages
    return {lang: render_digest(content, lang, config) for lang in codes}


def render_segments(
    config: Config, content: DigestContent, keys: Sequence[Key] = ()
) -> Renderings[RenderedDigest]:
    """The digest rendered and inlined once per (language, segment): those of ``keys`` now,
    any other on first use (:mod:`.segments`). A language ``digest.languages`` no longer
    has is not rendered: its subscribers' messages cannot be made (failed, as before
    segments), and the others are sent."""
    from ..errors import ConfigError
    from .render import render_digest

    codes = config.digest.languages

    def render(key: Key) -> RenderedDigest:
        if key[0] not in codes:
            raise ConfigError(
                f"language {key[0]!r} is not in digest.languages ({', '.join(codes)})"
            )
        return render_digest(for_segment(content, key[1]), key[0], config)

    return Renderings(render, [k for k in keys if k[0] in codes])


def segment_composers(
    config: Config,
    rendered: Renderings[RenderedDigest],
    *,
    digest_id: int,
    date: datetime,
    secret: bytes,
) -> Renderings[Composer]:
    """One message skeleton per (language, segment), from its once-inlined rendering."""
    from .message import Composer

    def make(key: Key) -> Composer:
        return Composer(
            rendered[key],
            sender=sender(config, key[0]),
            digest_id=digest_id,
            date=date,
            secret=secret,
        )

    return Renderings(make, list(rendered))


def router(
    config: Config, content: DigestContent
) -> Callable[[Sequence[str]], tuple[Segment, bool]]:
    """A recipient's segment from the categories they chose, and whether they get a
    message: with ``digest.skip_empty``, not when their segment has nothing new."""
    from .segments import segment_of

    offered = offered_categories(config)
    known: dict[tuple[str, ...], tuple[Segment, bool]] = {}  # a few choices, many subscribers

    def route(chosen: Sequence[str]) -> tuple[Segment, bool]:
        key = tuple(chosen)
        if key not in known:
            segment = segment_of(key, offered)
            status = first_status(
                has_stories=has_stories(content, segment), skip_empty=config.digest.skip_empty
            )
            known[key] = segment, status is DeliveryStatus.PENDING
        return known[key]

    return route


def sender(config: Config, language: str = "en") -> Sender:
    from .message import Sender

    return Sender(
        address=config.mail.from_address,
        name=config.mail.from_name.get(language),
        list_id=config.list_id,
        list_name=config.digest.title.get(language),
        unsubscribe_url=config.unsubscribe_url,
        unsubscribe_mailto=config.unsubscribe_mailto,
        preferences_url=config.preferences_url,
        reply_to=config.mail.reply_to,
        bounce_address=config.mail.bounce_address,
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
    from .message import Composer

    return {
        lang: Composer(
            r, sender=sender(config, lang), digest_id=digest_id, date=date, secret=secret, test=test
        )
        for lang, r in rendered.items()
    }


def digest_due(config: Config, store: Store, now: datetime) -> bool:
    """Whether a run should send a digest now (its next time kept in the store: :mod:`.due`)."""
    from .due import digest_due as due

    return due(config, store, now)


# --------------------------------------------------------------------------- the send


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
    from ..delivery.quota import quota_state
    from ..preflight import require_sendable

    require_sendable(config)  # before anything is recorded
    now = clock()
    content = digest_content(config, store, now)
    route = router(config, content)
    planned = [] if content.digest_id else store.recipient_choices(now)
    keys = sorted({(lang, route(chosen)[0]) for lang, chosen, _n in planned if route(chosen)[1]})
    step = decide(
        open_digest=store.digest(content.digest_id) if content.digest_id else None,
        content=content,
        skip_empty=config.digest.skip_empty,
        active_subscribers=store.subscriber_counts().get("active", 0),
        # None with no recipient at all (all paused): not a question of categories.
        wanted=sum(n for _l, c, n in planned if route(c)[1]) if planned else None,
        quota=quota_state(config, store, now),
    )
    if isinstance(step, Wait):
        log.info("digest not sent now: %s", step.note)
        held = DigestState.PARTIAL if step.record else DigestState.DUE
        return DigestOutcome(held, step.record.id if step.record else 0, 0, 0, note=step.note)
    if isinstance(step, Skip):
        state = advance(DigestState.DUE, DigestState.SKIPPED)
        digest_id = store.skip_digest(created=now, since=content.since, note=step.note)
        log.info("digest skipped: %s", step.note)
        return DigestOutcome(state, digest_id, 0, 0, note=step.note)
    skipped = 0
    if isinstance(step, Create):
        state, record, content, made = _create(config, store, content, now, keys)
        skipped = store.delivery_totals(record.id).get(DeliveryStatus.SKIPPED, 0)
    else:
        state, record, made = _resume(config, store, step, content)
    state = advance(state, DigestState.SENDING)
    report = _deliver(config, store, record, made, mailer, clock, stop, on_message)
    report = dataclasses.replace(report, skipped=report.skipped + skipped)
    # Kept on the digest until a send of it goes without one: `status` shows it.
    stopped = f"{STOPPED_ON_ERROR}{report.error}"[:500] if report.error else ""
    if stopped != record.note:
        store.set_digest_note(record.id, stopped)
    state = advance(state, after_send(report.finished))
    _log_outcome(record, report)
    return DigestOutcome(state, record.id, len(content.entries), content.more, delivery=report)


def _create(
    config: Config, store: Store, content: DigestContent, now: datetime, keys: Sequence[Key]
) -> tuple[DigestState, DigestRecord, DigestContent, Renderings[Composer]]:
    """Record the digest and its ledger. Renders and makes one message per (language,
    segment) its recipients have first: a template or header problem stops here, not
    half-way through a recorded digest. Each ledger row keeps its subscriber's segment; a
    subscriber whose segment has nothing new gets a 'skipped' row (``digest.skip_empty``)."""
    from .segments import encode
    from .unsubscribe import load_secret

    rendered = render_segments(config, content, keys)
    secret = load_secret(config, store)
    trial = segment_composers(config, rendered, digest_id=0, date=now, secret=secret)
    for composer in trial.values():
        composer.compose(1, config.mail.from_address, "Trial Recipient")
    route = router(config, content)

    def stored(chosen: tuple[str, ...]) -> tuple[str, bool]:
        segment, wanted = route(chosen)
        return encode(segment), wanted

    state = advance(DigestState.DUE, DigestState.CREATED)
    record = store.create_digest(
        created=now,
        since=content.since,
        cutoff=now,
        item_ids=[e.id for e in content.entries],
        more=content.more,
        left_out=content.left_out,
        route=stored,
        skip_note=NOTHING_FOR_THEM,
    )
    content = dataclasses.replace(
        content, digest_id=record.id, created=record.created, since=record.since
    )
    totals = store.delivery_totals(record.id)
    log.info(
        "digest %d: %d item(s) (%d more linked) to %d subscriber(s) in %d segment(s)%s",
        record.id,
        len(content.entries),
        content.more,
        sum(totals.values()),
        len(rendered),
        f"; {n} with nothing new in their categories" if (n := totals.get("skipped")) else "",
    )
    made = segment_composers(
        config, rendered, digest_id=record.id, date=record.created, secret=secret
    )
    return state, record, content, made


#: The note of a digest whose last send stopped on an error (the relay unreachable).
STOPPED_ON_ERROR = "the send stopped on an error: "


def _resume(
    config: Config, store: Store, step: Resume, content: DigestContent
) -> tuple[DigestState, DigestRecord, Renderings[Composer]]:
    """Render what the recorded digest holds, once per (language, segment) its ledger
    still has due (the segments frozen in its rows), to send what is still due."""
    from .unsubscribe import load_secret

    record = step.record
    state = state_of(record)
    secret = load_secret(config, store)
    log.info(
        "digest %d: resuming the send (%s)",
        record.id,
        ", ".join(f"{n} {s}" for s, n in sorted(store.delivery_totals(record.id).items())),
    )
    rendered = render_segments(config, content, store.digest_segments(record.id))
    made = segment_composers(
        config, rendered, digest_id=record.id, date=record.created, secret=secret
    )
    return state, record, made


def _deliver(
    config: Config,
    store: Store,
    record: DigestRecord,
    made: Renderings[Composer],
    mailer: Mailer,
    clock: Callable[[], datetime],
    stop: Stop | None,
    on_message: Callable[[], None] | None,
) -> DeliveryReport:
    from ..delivery.policy import DeliveryPolicy
    from ..delivery.quota import QuotaGate
    from ..delivery.send import deliver

    try:
        return deliver(
            store,
            record,
            made,
            mailer,
            policy=DeliveryPolicy.from_config(config.mail),
            clock=clock,
            stop=stop,
            on_message=on_message,
            quota=QuotaGate(config, store, clock),
            connections=config.mail.connections,
        )
    finally:
        mailer.close()


def _log_outcome(record: DigestRecord, report: DeliveryReport) -> None:
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
        + (
            report.error
            or report.quota_note
            or ("stopped" if report.interrupted else "some pending")
        ),
    )
    if report.error:
        log.error("digest %d: %s", record.id, report.error)


# --------------------------------------------------------------------------- looking ahead


def digest_preview(
    config: Config, store: Store, now: datetime, language: str
) -> tuple[DigestContent, RenderedDigest, str]:
    """The digest to send now, rendered in ``language`` with sample subscriber values: what
    ``iomfeed digest --preview`` writes. Changes nothing."""
    import html

    from .message import unsubscribe_link
    from .render import ADDRESS, GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL

    content = digest_content(config, store, now)
    rendered = render_languages(config, content, (language,))[language]
    values = {
        GREETING: rendered.greeting_no_name,
        UNSUBSCRIBE_URL: unsubscribe_link(config.unsubscribe_url, "PREVIEW"),
        ADDRESS: "subscriber@example.org",
        PREFERENCES_URL: f"{config.preferences_url}?t=PREVIEW",
    }
    page = rendered.html
    for token, value in values.items():
        page = page.replace(token, html.escape(value))
    return content, rendered, page


def dry_run(config: Config, store: Store, now: datetime) -> DigestPlan:
    """What a send would do now, changing nothing: resume the digest being sent (with its
    ledger's totals), or make the next one (whether it is due, and whether it would be
    skipped for having nothing new); who would get it in each language and each category
    segment (and who would be skipped for having nothing new in theirs); how it renders."""
    content = digest_content(config, store, now)
    recipients = dict.fromkeys(config.digest.languages, 0)
    segments: dict[Key, int] = {}
    paused = 0
    if content.digest_id:
        totals = store.delivery_totals(content.digest_id)
        for d in store.deliveries(content.digest_id):
            recipients[d.language] = recipients.get(d.language, 0) + 1
        due, empty, skip = True, False, ""
    else:
        totals = {}
        active = store.subscriber_counts().get("active", 0)
        due = digest_due(config, store, now)
        route = router(config, content)
        planned = store.recipient_choices(now)  # the active ones not paused
        for lang, chosen, n in planned:
            segment, wanted = route(chosen)
            key = (lang, segment) if wanted else ("", ())
            segments[key] = segments.get(key, 0) + n
            if wanted:  # who would get it, per language, as the send counts them
                recipients[lang] = recipients.get(lang, 0) + n
        paused = active - sum(n for _lang, _chosen, n in planned)
        step = decide(
            open_digest=None,
            content=content,
            skip_empty=config.digest.skip_empty,
            active_subscribers=active,
            wanted=sum(n for key, n in segments.items() if key[0]) if segments else None,
        )  # the same rule as the send's
        skip = step.note if isinstance(step, Skip) else ""
        empty = bool(skip) and not content.entries and config.digest.skip_empty
    return DigestPlan(
        content=content,
        resuming=bool(content.digest_id),
        due=due,
        totals=totals,
        recipients=recipients,
        skipped_empty=empty,
        rendered={} if empty else render_languages(config, content),
        skip=skip,
        segments=segments,
        paused=paused,
    )
