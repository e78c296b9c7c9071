"""The fetch path: sources -> normalise -> decide -> store, one source and one page at a time.

A source yields what it saw, page by page (:class:`~iomfeed.sources.records.SourcePage`);
for each page, this module normalises the items, asks the store what it holds for each,
lets the pure decider (:mod:`iomfeed.decide`) say what to do, and applies the intents in one
transaction: a page's validators and 404 records are kept only together with its items. A
run killed or stopped mid-page keeps nothing of that page (the articles already fetched for
it are fetched again next run, since its listing page is not marked as seen); it never keeps
a page as seen without its items. A failing source
is reported as data in its :class:`SourceResult`; the other sources still run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from . import normalize
from .clock import zone
from .config import Config, SourceConfig
from .errors import ConfigError, SourceError, StopRequested
from .models import (
    Change,
    Item,
    KnownItem,
    MissingArticle,
    RunReport,
    SourceResult,
    StoredItem,
    StoreOutcome,
)
from .sources import FetchContext, SourceStats, build_source, site_origins, source_ranks
from .sources.records import SourcePage

if TYPE_CHECKING:
    from .http import HttpClient
    from .intents import ItemIntent, PageIntent
    from .normalize.urls import Origin
    from .store import Store

log = logging.getLogger(__name__)


class StoreView:
    """The store as a source may see it: read-only look-ups (see ``StoredView``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def known(self, url: str, *, filter_hash: str = "") -> KnownItem | None:
        return self._store.known(url, filter_hash=filter_hash)

    def missing_article(self, url: str) -> MissingArticle | None:
        return self._store.missing_article(url)

    def missing_due(self, source: str, now: datetime) -> list[MissingArticle]:
        return self._store.missing_due(source, now)

    def backfilled(self, source: str, filter_hash: str = "") -> bool:
        return self._store.backfilled(source, filter_hash)

    def recent(self, source: str, since: datetime) -> list[KnownItem]:
        return self._store.recent(source, since)

    def get(self, item_id: str) -> StoredItem | None:
        return self._store.get(item_id)


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
    _prune_history(config, store, finished)
    if config_errors:
        raise config_errors[0]  # the other sources ran; the exit code still says "config"
    return RunReport(started, finished, tuple(results))


def _prune_history(config: Config, store: Store, now: datetime) -> None:
    """Remove the runs older than ``storage.keep_runs_days`` (see :meth:`Store.prune_runs`)."""
    days = config.storage.keep_runs_days
    if days:
        removed = store.prune_runs(now - timedelta(days=days))
        if removed:
            log.info("removed %d run(s) older than %d days (storage.keep_runs_days)", removed, days)


@dataclass(slots=True)
class _SourceRun:
    """One source's run: what the pages need to be stored, and what storing them did."""

    config: Config
    src: SourceConfig
    now: datetime
    origins: tuple[Origin, ...]
    stats: SourceStats
    rank: Mapping[str, int]
    tz: tzinfo
    stop: Callable[[], bool] | None = None
    on_item: Callable[[], None] | None = None
    found: int = 0
    filtered: int = 0
    counts: dict[Change, int] = field(default_factory=lambda: dict.fromkeys(Change, 0))
    stopped: bool = False

    def normalize(self, raw: Item) -> Item:
        return normalize.normalize_item(
            raw,
            origins=self.origins,
            tz=self.tz,
            language=self.config.source_language(self.src),
            summary_length=self.src.summary_length,
            now=self.now,
        )

    def asked_to_stop(self) -> bool:
        if self.on_item is not None:
            self.on_item()
        self.stopped = self.stop is not None and self.stop()
        return self.stopped

    def count(self, intent: ItemIntent) -> None:
        self.counts[intent.change] += 1
        item = intent.item
        if item.date_note:
            kept = (
                "dated by when it was first seen"
                if intent.change is Change.NEW
                else "its stored date is kept"
            )
            self.stats.warnings.append(f"{item.url}: {item.date_note}; {kept}")
        if intent.change in (Change.NEW, Change.UPDATED):
            log.debug("%s: %s %s", self.src.name, intent.change.value, item.url)


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
    ctx = FetchContext(config, src, http, StoreView(store), now, origins, stats)
    tz = zone(config.source_timezone(src))
    run = _SourceRun(config, src, now, origins, stats, source_ranks(config), tz, stop, on_item)
    error = ""
    try:
        for page in build_source(src).fetch(ctx):
            if not store_page(store, page, run):
                break
    except StopRequested:
        run.stopped = True  # cut short on request in an HTTP pause: not a failure of the source
    except SourceError as exc:
        error = str(exc)
    result = SourceResult(
        name=src.name,
        ok=not error,
        pages=stats.pages,
        not_modified=stats.not_modified,
        found=run.found,
        new=run.counts[Change.NEW],
        updated=run.counts[Change.UPDATED],
        duplicates=run.counts[Change.DUPLICATE],
        duration=timer() - t0,
        error=error,
        filtered=run.filtered,
        warnings=tuple(stats.warnings) + (("stopped early on request",) if run.stopped else ()),
        stopped=run.stopped,
    )
    _log_result(result)
    return result


def store_page(store: Store, page: SourcePage, run: _SourceRun) -> bool:
    """Decide and apply what one page brought, in one transaction. False: asked to stop
    (the items already stored are kept; the page is not marked as seen, so the next run
    fetches it again). The decider is imported for the first page with something in it:
    a run whose listing answered 304 never loads it."""
    if page.is_empty():
        return True
    from .decide import decide_item, decide_page, filtered_out

    with store.transaction():
        for raw in page.items:
            if run.asked_to_stop():
                return False
            run.found += 1
            item = run.normalize(raw)
            skip = filtered_out(item, run.src.filter)
            if skip is not None:
                run.filtered += 1
                store.remember_skipped(
                    skip.url, skip.source, skip.listing_hash, skip.filter_hash, run.now
                )
                continue
            stored = store.stored_state(item, run.now)
            intent = decide_item(item, stored, now=run.now, rank=run.rank)
            apply_item(store, intent, run.now)
            run.count(intent)
        for fact in decide_page(page, run.src.name):
            apply_page_intent(store, fact, run.now)
    return True


def apply_item(store: Store, intent: ItemIntent, now: datetime) -> str:
    """Carry out one item's intent (inside the caller's transaction); the item's id."""
    from .intents import Duplicate, NewItem, UpdateItem

    if isinstance(intent, NewItem):
        item_id = store.insert_item(intent, now)
    elif isinstance(intent, Duplicate):
        item_id = intent.item_id
        store.link_duplicate(intent, now)
    else:
        item_id = intent.item_id
        if intent.take_over_from:
            store.set_item_source(item_id, intent.item.source)
            log.info(
                "%s now taken from %s instead of %s",
                intent.item.url,
                intent.item.source,
                intent.take_over_from,
            )
        if isinstance(intent, UpdateItem):
            store.update_item(intent, now)
        else:
            store.touch_item(intent, now)
    store.link_aliases(item_id, intent.item, now)
    return item_id


def apply_page_intent(store: Store, intent: PageIntent, now: datetime) -> None:
    from .intents import ForgetMissing, KeepValidators, MarkBackfilled, RememberMissing

    if isinstance(intent, KeepValidators):
        store.save_validators(intent.url, intent.etag, intent.last_modified, now)
    elif isinstance(intent, RememberMissing):
        store.save_missing(intent.missing)
    elif isinstance(intent, ForgetMissing):
        store.forget_missing(intent.url)
    elif isinstance(intent, MarkBackfilled):
        store.mark_backfilled(intent.source, now, intent.filter_hash)


def upsert(
    store: Store, item: Item, now: datetime, *, rank: Mapping[str, int] | None = None
) -> StoreOutcome:
    """Decide and store one normalised item in its own transaction (for tools and tests
    that add items without a source)."""
    from .decide import decide_item

    with store.transaction():
        stored = store.stored_state(item, now)
        intent = decide_item(item, stored, now=now, rank=rank or {})
        return StoreOutcome(intent.change, apply_item(store, intent, now))


def _log_result(r: SourceResult) -> None:
    summary = (
        "%s: %s, %d page(s) fetched (%d not modified), %d item(s) found: %d new,"
        " %d updated, %d duplicate(s), %d filtered out, %.1f s"
    )
    args = (
        r.name,
        "stopped on request" if r.stopped else "ok" if r.ok else "failed",
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
