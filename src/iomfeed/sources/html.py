"""The ``html`` source: a paginated listing page plus one page per article, read by selectors.

Walks the listing from its first page following ``rel="next"`` (or the configured next-link
selectors), at most ``max_pages`` pages. The first run walks every page (backfill); later runs
stop at the first page that brings nothing new, or at a 304. Each new or changed entry is
followed to its article page for the body, the date, the image and the category. Articles
published within ``recheck_days`` are re-checked with a conditional GET, so an edit the listing
does not show is still noticed. An article that answers 404 is remembered with its listing
entry and tried again on later runs with backoff (:func:`next_missing_try`), whether or not
the listing changed, for ``retry_missing_days``.

Nothing here is specific to one site: every element is found by configured CSS selectors with
fall-backs (the first that matches wins). bs4 is imported only when a page must be parsed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .. import normalize
from ..clock import zone
from ..config import SourceConfig, check_source_selectors
from ..errors import FetchError, ParseError, RobotsDisallowed, SourceError
from ..models import DateSource, Item, KnownItem, MissingArticle, Response
from . import FetchContext, filter_hash
from .records import SourcePage, validators_of

if TYPE_CHECKING:
    from .html_parse import Article, ListingEntry, ListingPage

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- 404s

#: A listed article that answered 404 is tried again after 1 h, then 2 h, 4 h ... at most a
#: day apart, until ``retry_missing_days`` after the first 404.
MISSING_FIRST_RETRY = timedelta(hours=1)
MISSING_MAX_INTERVAL = timedelta(days=1)


def next_missing_try(
    first_missing: datetime, attempts: int, now: datetime, *, give_up_after: timedelta, status: int
) -> datetime | None:
    """When to ask again for an article whose ``attempts``-th request answered ``status``
    (404 or 410) at ``now``; ``None``: give up (410 Gone says so at once)."""
    if status == 410 or now - first_missing >= give_up_after:
        return None
    interval = MISSING_FIRST_RETRY * (1 << min(max(attempts - 1, 0), 16))
    return now + min(interval, MISSING_MAX_INTERVAL)


def _days(value: float) -> str:
    return f"{value:g} day{'' if value == 1 else 's'}"


# ----------------------------------------------------------------------------- the source


@dataclass(slots=True)
class _Walk:
    """What one run over the source has done so far."""

    backfill: bool  # a first run (or a changed filter): every page, no validators
    handled: set[str] = field(default_factory=set)  # canonical URLs dealt with
    failures: list[str] = field(default_factory=list)  # articles that could not be read
    listing_pages: list[Response] = field(default_factory=list)
    walked_to_end: bool = False


@dataclass(slots=True)
class _Draft:
    """A :class:`SourcePage` being filled in."""

    items: list[Item] = field(default_factory=list)
    responses: list[Response | None] = field(default_factory=list)
    missing: list[MissingArticle] = field(default_factory=list)
    found_again: list[str] = field(default_factory=list)

    def page(self) -> SourcePage:
        return SourcePage(
            items=tuple(self.items),
            validators=validators_of(self.responses),
            missing=tuple(self.missing),
            found_again=tuple(self.found_again),
        )


class HtmlSource:
    """Scrape a listing and its articles. See the module docstring for the walk."""

    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self._selectors_checked = False

    def _check_selectors(self, ctx: FetchContext) -> None:
        """Compile the selectors before the first parse: a bad one is a ConfigError."""
        if not self._selectors_checked:
            check_source_selectors(self.cfg, f"sources[{ctx.config.sources.index(self.cfg)}]")
            self._selectors_checked = True

    def fetch(self, ctx: FetchContext) -> Iterator[SourcePage]:
        cfg = self.cfg
        tz = zone(ctx.config.source_timezone(cfg))
        walk = _Walk(backfill=not ctx.stored.backfilled(cfg.name, filter_hash(cfg.filter)))
        yield from self._walk_listing(ctx, walk, tz)
        yield self._retry_missing(ctx, walk, tz)
        yield self._recheck(ctx, walk, tz)
        if walk.backfill and walk.walked_to_end:
            # Every page was read; articles that failed are still unknown, so the next
            # (incremental) run retries them: the pages holding them count as bringing news.
            yield SourcePage(backfilled=True, filter_hash=filter_hash(cfg.filter))
        if walk.failures:
            count = len(walk.failures)
            raise SourceError(
                f"{count} article{'s' if count > 1 else ''} could not be read"
                f" (they will be retried next run): "
                + "; ".join(walk.failures[:5])
                + (" ..." if count > 5 else "")
            )
        # Only now is every page's content stored: remember the listing pages as seen.
        yield SourcePage(validators=validators_of(walk.listing_pages))

    def _walk_listing(self, ctx: FetchContext, walk: _Walk, tz: tzinfo) -> Iterator[SourcePage]:
        """One :class:`SourcePage` per listing page, with the articles it brought."""
        url: str | None = self.cfg.url
        visited: set[str] = set()
        previous: tuple[str, ...] = ()
        for page_index in range(self.cfg.max_pages):
            if url is None or url in visited:
                walk.walked_to_end = True
                return
            visited.add(url)
            response = ctx.http.get(url, conditional=not walk.backfill)
            ctx.stats.pages += 1
            if response.not_modified:
                ctx.stats.not_modified += 1
                log.debug("%s: %s not modified, stopping", self.name, url)
                return
            listing = self._listing(ctx, response, page_index)
            if listing is None:
                return
            links = tuple(ctx.canonical(e.link) for e in listing.entries)
            if links == previous:  # an out-of-range page repeats the last one
                walk.walked_to_end = True
                return
            previous = links
            draft = _Draft()
            brought_new = False
            for entry, canonical in zip(listing.entries, links, strict=True):
                brought_new |= self._entry(ctx, walk, draft, entry, canonical, tz)
            yield draft.page()
            walk.listing_pages.append(response)
            if not walk.backfill and not brought_new:
                return
            url = listing.next_url
        walk.walked_to_end = True

    def _listing(
        self, ctx: FetchContext, response: Response, page_index: int
    ) -> ListingPage | None:
        """The listing page's entries; ``None`` (with a warning) for a later empty page."""
        self._check_selectors(ctx)
        from .html_parse import parse_listing  # bs4 and the patterns: only for a page to read

        page = parse_listing(response.text(), response.final_url, self.cfg.listing)
        for why in page.skipped:
            ctx.warn(why)
        if page.entries:
            return page
        where = f"{response.final_url} (page {page_index + 1})"
        if page_index == 0:
            without = f" with an http(s) link ({len(page.skipped)} without)" if page.skipped else ""
            raise ParseError(
                f"{where}: the listing selectors found no items{without}"
                f" (sources.listing.item / .link); has the site's layout changed?"
                f" Stored items are kept."
            )
        ctx.warn(f"{where}: no items found on this page; stopped paging")
        return None

    def _entry(
        self,
        ctx: FetchContext,
        walk: _Walk,
        draft: _Draft,
        entry: ListingEntry,
        canonical: str,
        tz: tzinfo,
    ) -> bool:
        """Follow a listing entry that is new or changed; True when it brought news."""
        if canonical in walk.handled:
            return False
        walk.handled.add(canonical)
        known = ctx.known(entry.link)
        if known is not None and known.listing_hash == entry.fingerprint:
            return False
        missing = ctx.stored.missing_article(canonical)
        if (
            missing is not None
            and missing.listing_hash == entry.fingerprint
            and not missing.due(ctx.now)
        ):
            return False  # a 404 waiting for its next try: the listing brings no news
        self._follow(ctx, walk, draft, entry, canonical, missing, tz)
        return True

    def _follow(
        self,
        ctx: FetchContext,
        walk: _Walk,
        draft: _Draft,
        entry: ListingEntry,
        canonical: str,
        missing: MissingArticle | None,
        tz: tzinfo,
    ) -> bool:
        """Fetch the entry's article into ``draft``; a 404 is noted, another failure kept
        for the end of the run. True when the item was read."""
        try:
            item, response = self._item(ctx, entry, canonical, tz, walk.handled)
        except FetchError as exc:
            if exc.status in (404, 410):  # a dead link, for now: tried again later
                draft.missing.append(self._note_missing(ctx, entry, canonical, exc, missing))
            else:
                walk.failures.append(str(exc))
            return False
        except SourceError as exc:
            walk.failures.append(str(exc))
            return False
        draft.items.append(item)
        draft.responses.append(response)  # stored with it: its next fetch can be a 304
        if missing is not None:
            draft.found_again.append(canonical)
        return True

    def _item(
        self,
        ctx: FetchContext,
        entry: ListingEntry,
        canonical: str,
        tz: tzinfo,
        handled: set[str],
    ) -> tuple[Item, Response | None]:
        base = Item(
            source=self.name,
            url=canonical,
            base_url=entry.link,
            title=entry.title,
            summary_html=entry.summary_html,
            image_url=entry.image_url,
            language="",
            listing_hash=entry.fingerprint,
        )
        listing_date = (
            normalize.parse_date_text(entry.date_text, tz, reference=ctx.now)
            if entry.date_text
            else None
        )
        if not self.cfg.follow_articles:
            return _with_listing_date(base, listing_date), None
        try:
            response = ctx.http.get(canonical)
        except RobotsDisallowed as exc:
            ctx.warn(str(exc))
            return _with_listing_date(base, listing_date), None
        ctx.stats.pages += 1
        article = self._parse_article(ctx, response, tz, canonical, handled)
        return _merge(base, article, response.final_url, listing_date), response

    def _parse_article(
        self,
        ctx: FetchContext,
        response: Response,
        tz: tzinfo,
        canonical: str,
        handled: set[str],
    ) -> Article:
        """Parse an article page; a page without a body is an error, not an empty item."""
        from .html_parse import parse_article

        article = parse_article(
            response.text(), response.final_url, self.cfg.article, tz=tz, now=ctx.now
        )
        if not article.body_html:
            raise ParseError(
                f"{response.final_url}: the article.body selectors found nothing; has the"
                f" article layout changed? Stored items are kept."
            )
        if article.canonical:
            hint = ctx.canonical(article.canonical)
            path = urlsplit(hint).path
            if hint != canonical and (
                path in ("", "/") or hint == ctx.canonical(self.cfg.url) or hint in handled
            ):
                # A template bug pointing every page at one address must not merge stories.
                ctx.warn(
                    f"{response.final_url}: rel=canonical points to {article.canonical},"
                    f" not to this article; ignored"
                )
                article = replace(article, canonical="")
            else:
                handled.add(hint)
        return article

    def _note_missing(
        self,
        ctx: FetchContext,
        entry: ListingEntry,
        canonical: str,
        exc: FetchError,
        previous: MissingArticle | None,
    ) -> MissingArticle:
        """The record of an article that answered 404/410 and when to ask again; warn on the
        first 404 and when giving up, not on every try in between."""
        now, days = ctx.now, self.cfg.retry_missing_days
        if previous is not None and previous.listing_hash == entry.fingerprint:
            first, attempts = previous.first_missing, previous.attempts + 1
        else:  # new, or its listing entry changed: the clock starts again
            first, attempts = now, 1
        status = exc.status or 404
        next_try = next_missing_try(
            first, attempts, now, give_up_after=timedelta(days=days), status=status
        )
        missing = MissingArticle(
            url=canonical,
            source=self.name,
            link=entry.link,
            title=entry.title,
            summary_html=entry.summary_html,
            date_text=entry.date_text,
            image_url=entry.image_url,
            listing_hash=entry.fingerprint,
            first_missing=first,
            last_try=now,
            attempts=attempts,
            status=status,
            next_try=next_try,
        )
        again = "it is tried again only if its listing entry changes"
        if attempts == 1:
            later = (
                f"tried again from {next_try.isoformat()}, with backoff, for {_days(days)}"
                if next_try is not None
                else again
            )
            ctx.warn(f"listing links to a missing article: {exc}; {later}")
        elif next_try is None:
            ctx.warn(
                f"gave up on a missing article after {_days(days)} and {attempts} tries:"
                f" {exc}; {again}"
            )
        else:
            log.info(
                "%s: still missing (try %d): %s; next try %s",
                self.name,
                attempts,
                exc,
                next_try.isoformat(),
            )
        return missing

    def _retry_missing(self, ctx: FetchContext, walk: _Walk, tz: tzinfo) -> SourcePage:
        """Ask again for articles that answered 404 and whose next try has come, even when
        the listing answered 304 (their listing entries are kept with them)."""
        draft = _Draft()
        if not self.cfg.follow_articles:
            return draft.page()
        for missing in ctx.stored.missing_due(self.name, ctx.now):
            if missing.url in walk.handled:
                continue
            walk.handled.add(missing.url)
            self._check_selectors(ctx)
            from .html_parse import ListingEntry

            entry = ListingEntry(
                missing.title,
                missing.link,
                missing.summary_html,
                missing.date_text,
                missing.image_url,
                missing.listing_hash,
            )
            if self._follow(ctx, walk, draft, entry, missing.url, missing, tz):
                log.info(
                    "%s: %s answered %d before, found now", self.name, missing.url, missing.status
                )
        return draft.page()

    def _recheck(self, ctx: FetchContext, walk: _Walk, tz: tzinfo) -> SourcePage:
        """Conditional GETs of recently published articles, to catch silent edits."""
        draft = _Draft()
        if not self.cfg.follow_articles or self.cfg.recheck_days <= 0:
            return draft.page()
        since = ctx.now - timedelta(days=self.cfg.recheck_days)
        for known in ctx.stored.recent(self.name, since):
            if known.url in walk.handled:
                continue
            walk.handled.add(known.url)
            try:
                found = self._recheck_one(ctx, walk, known, tz)
            except SourceError as exc:
                walk.failures.append(str(exc))
                continue
            if found is not None:
                draft.items.append(found[0])
                draft.responses.append(found[1])
        return draft.page()

    def _recheck_one(
        self, ctx: FetchContext, walk: _Walk, known: KnownItem, tz: tzinfo
    ) -> tuple[Item, Response] | None:
        """A stored article as its page reads now, or ``None`` when it did not change (or
        cannot be read now without that being a failure)."""
        try:
            response = ctx.http.get(known.url, conditional=True)
        except RobotsDisallowed as exc:
            ctx.warn(str(exc))
            return None
        except FetchError as exc:
            if exc.status not in (404, 410):
                raise
            # Taken down, or a hiccup: what was published stays published, and the
            # source has not failed (no alert every run for the whole recheck window).
            ctx.warn(
                f"{known.url}: a stored article now answers HTTP {exc.status}; the"
                " stored copy is kept (checked again on the next run)"
            )
            return None
        ctx.stats.pages += 1
        if response.not_modified:
            ctx.stats.not_modified += 1
            return None
        stored = ctx.stored.get(known.id)
        if stored is None:
            return None
        self._check_selectors(ctx)
        article = self._parse_article(ctx, response, tz, known.url, walk.handled)
        base = Item(
            source=self.name,
            url=stored.url,
            base_url=stored.url,
            title=stored.title,
            summary_html=stored.summary_html,
            image_url=stored.image_url,
            listing_hash=stored.listing_hash,
        )
        return _merge(base, article, response.final_url, None), response


def _with_listing_date(item: Item, listing_date: datetime | None) -> Item:
    if listing_date is None:
        return item
    return replace(item, published=listing_date, date_source=DateSource.LISTING)


def _merge(base: Item, article: Article, page_url: str, listing_date: datetime | None) -> Item:
    published, date_source = article.published, article.date_source
    if published is None and listing_date is not None:
        published, date_source = listing_date, DateSource.LISTING
    if date_source is DateSource.DATELINE and listing_date is not None:
        published, date_source = listing_date, DateSource.LISTING
    return replace(
        base,
        base_url=page_url,
        title=article.title or base.title,
        content_html=article.body_html,
        published=published,
        date_source=date_source,
        image_url=article.image_url or base.image_url,
        image_alt=article.image_alt,
        categories=article.categories,
        language=article.language,
        canonical_hint=article.canonical,
        modified=article.modified,
    )
