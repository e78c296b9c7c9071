"""The only place that sequences stages: sources -> normalise -> store, one source at a time.

Entry points (the CLI now; the scheduler and the web app later) call these functions with the
clock, the HTTP client and the store injected, and add nothing else. A failing source is
reported as data in its :class:`SourceResult`; the other sources still run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from .config import Config, SourceConfig

# The digest's steps live in digest/steps.py; re-exported here, where callers found them.
from .digest.steps import LANGUAGES as LANGUAGES
from .digest.steps import composers as composers
from .digest.steps import digest_content as digest_content
from .digest.steps import digest_due as digest_due
from .digest.steps import digest_preview as digest_preview
from .digest.steps import render_languages as render_languages
from .digest.steps import send_digest as send_digest
from .digest.steps import sender as sender
from .errors import ConfigError, SourceError, StopRequested
from .http import HttpClient
from .models import (
    Change,
    CycleReport,
    PublishReport,
    RunReport,
    SourceResult,
)
from .normalize import Origin, normalize_item, zone
from .sources import FetchContext, SourceStats, build_source, filter_hash, passes_filter
from .store import Store

if TYPE_CHECKING:
    from .delivery.mailers import Mailer
    from .delivery.send import Stop

log = logging.getLogger(__name__)


#: When two sources give the same URL, whose content is kept: the article page scraped from
#: the site beats a feed's copy, which beats a hand-written JSON record.
SOURCE_RANK_BY_KIND = {"html": 3, "feed": 2, "json": 1}


def site_origins(config: Config) -> tuple[Origin, ...]:
    """The sites whose http and https addresses are the same pages: the configured ones."""
    urls = [config.site.home_url] + [s.url for s in config.sources if s.kind == "html" and s.url]
    seen: dict[str, Origin] = {}
    for url in urls:
        origin = Origin.of(url)
        seen.setdefault(origin.host, origin)
    return tuple(seen.values())


def select_sources(config: Config, names: Sequence[str] = ()) -> list[SourceConfig]:
    if names:
        return [config.source(n) for n in names]
    return [s for s in config.sources if s.enabled]


def fetch_all(
    config: Config,
    *,
    store: Store,
    http: HttpClient,
    now: Callable[[], datetime],
    only: Sequence[str] = (),
    timer: Callable[[], float] = time.monotonic,
    stop: Callable[[], bool] | None = None,
    on_item: Callable[[], None] | None = None,
) -> RunReport:
    """Run every enabled source (or the named ones) and record the run in the store."""
    sources = select_sources(config, only)
    if not sources:
        raise ConfigError("no enabled sources to fetch (add [[sources]] to the config)")
    started = now()
    origins = site_origins(config)
    results = []
    config_errors: list[ConfigError] = []
    for src in sources:
        if stop is not None and stop():
            break  # asked to stop: the sources not run yet wait for the next run
        try:
            results.append(
                fetch_source(
                    config,
                    src,
                    store=store,
                    http=http,
                    now=started,
                    origins=origins,
                    timer=timer,
                    stop=stop,
                    on_item=on_item,
                )
            )
        except ConfigError as exc:  # found late (a selector compiled at first use)
            config_errors.append(exc)
            results.append(SourceResult(name=src.name, ok=False, error=str(exc)))
    finished = now()
    store.record_run(started, finished, tuple(results))
    if config_errors:
        raise config_errors[0]  # the other sources ran; the exit code still says "config"
    return RunReport(started, finished, tuple(results))


def fetch_source(
    config: Config,
    src: SourceConfig,
    *,
    store: Store,
    http: HttpClient,
    now: datetime,
    origins: tuple[Origin, ...],
    timer: Callable[[], float] = time.monotonic,
    stop: Callable[[], bool] | None = None,
    on_item: Callable[[], None] | None = None,
) -> SourceResult:
    """Run one source; its failure becomes the result's ``error``, never an exception."""
    t0 = timer()
    stats = SourceStats()
    ctx = FetchContext(config, src, http, store, now, origins, stats)
    tz = zone(config.source_timezone(src))
    language = config.source_language(src)
    rank = {s.name: SOURCE_RANK_BY_KIND[s.kind] for s in config.sources}
    counts = dict.fromkeys(Change, 0)
    found = filtered = 0
    error = ""
    stopped = False
    try:
        for raw in build_source(src).fetch(ctx):
            if on_item is not None:
                on_item()
            if stop is not None and stop():
                # The item in hand is not stored and its listing page not marked as seen,
                # so the next run picks up from here.
                stopped = True
                break
            found += 1
            item = normalize_item(
                raw,
                origins=origins,
                tz=tz,
                language=language,
                summary_length=src.summary_length,
                now=now,
            )
            if not passes_filter(item.title, item.categories, src.filter):
                filtered += 1
                store.remember_skipped(
                    item.url, src.name, item.listing_hash, filter_hash(src.filter), now
                )
                continue
            outcome = store.upsert(item, now, rank=rank)
            counts[outcome.change] += 1
            if item.date_note:
                kept = (
                    "dated by when it was first seen"
                    if outcome.change is Change.NEW
                    else "its stored date is kept"
                )
                stats.warnings.append(f"{item.url}: {item.date_note}; {kept}")
            if outcome.change in (Change.NEW, Change.UPDATED):
                log.debug("%s: %s %s", src.name, outcome.change.value, item.url)
    except StopRequested:
        stopped = True  # cut short on request in an HTTP pause: not a failure of the source
    except SourceError as exc:
        error = str(exc)
    result = SourceResult(
        name=src.name,
        ok=not error,
        pages=stats.pages,
        not_modified=stats.not_modified,
        found=found,
        new=counts[Change.NEW],
        updated=counts[Change.UPDATED],
        duplicates=counts[Change.DUPLICATE],
        duration=timer() - t0,
        error=error,
        filtered=filtered,
        warnings=tuple(stats.warnings) + (("stopped early on request",) if stopped else ()),
    )
    _log_result(result)
    return result


def _log_result(r: SourceResult) -> None:
    summary = (
        "%s: %s, %d page(s) fetched (%d not modified), %d item(s) found: %d new,"
        " %d updated, %d duplicate(s), %d filtered out, %.1f s"
    )
    args = (
        r.name,
        "ok" if r.ok else "failed",
        r.pages,
        r.not_modified,
        r.found,
        r.new,
        r.updated,
        r.duplicates,
        r.filtered,
        r.duration,
    )
    log.info(summary, *args)
    if not r.ok:
        log.error("%s: FAILED: %s", r.name, r.error)
    for warning in r.warnings:
        log.warning("%s: %s", r.name, warning)


def open_store(config: Config) -> Store:
    return Store(config.database_path, tag_authority=config.site.tag_authority)


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
