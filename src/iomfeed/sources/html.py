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

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ..config import (
    ArticleConfig,
    ListingConfig,
    SourceConfig,
    check_source_selectors,
    split_selector,
)
from ..dedup import listing_hash
from ..errors import FetchError, ParseError, RobotsDisallowed, SourceError
from ..models import DateSource, Item, MissingArticle, Response
from ..normalize import (
    clean_text,
    find_dateline,
    is_web_url,
    parse_date_text,
    parse_iso,
    zone,
)
from . import FetchContext, filter_hash

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ListingEntry:
    title: str
    link: str  # absolute, as the listing gives it
    summary_html: str
    date_text: str
    image_url: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class ListingPage:
    entries: tuple[ListingEntry, ...]
    next_url: str | None
    skipped: tuple[str, ...] = ()  # why rows were left out (a link that is not http(s))


@dataclass(frozen=True, slots=True)
class Article:
    title: str
    body_html: str
    published: datetime | None
    date_source: DateSource | None
    image_url: str
    image_alt: str
    categories: tuple[str, ...]
    language: str
    canonical: str
    modified: datetime | None = None  # article:modified_time or JSON-LD dateModified


# ----------------------------------------------------------------------------- selectors


def _soup(text: str) -> BeautifulSoup:
    from bs4 import BeautifulSoup

    return BeautifulSoup(text, "lxml")


def _value(el: Tag, attr: str | None) -> str:
    if attr is None:
        return clean_text(el.get_text(" ", strip=True))
    raw = el.get(attr)
    if isinstance(raw, list):
        raw = " ".join(raw)
    return (raw or "").strip()


def select_value(root: Tag, specs: Sequence[str]) -> str:
    """The first non-empty text (or ``@attr`` value) that one of ``specs`` finds."""
    for spec in specs:
        css, attr = split_selector(spec)
        for el in root.select(css):
            value = _value(el, attr)
            if value:
                return value
    return ""


def select_values(root: Tag, specs: Sequence[str]) -> list[str]:
    """All values found by the first of ``specs`` that finds any."""
    for spec in specs:
        css, attr = split_selector(spec)
        values = [v for el in root.select(css) if (v := _value(el, attr))]
        if values:
            return values
    return []


def select_html(root: Tag, specs: Sequence[str]) -> str:
    """The inner HTML of the first element one of ``specs`` finds (or an ``@attr`` value)."""
    for spec in specs:
        css, attr = split_selector(spec)
        el = root.select_one(css)
        if el is None:
            continue
        if attr is not None:
            value = _value(el, attr)
            if value:
                return value
            continue
        html = el.decode_contents().strip()
        if html:
            return html
    return ""


# ----------------------------------------------------------------------------- pages


def parse_listing(text: str, page_url: str, cfg: ListingConfig) -> ListingPage:
    soup = _soup(text)
    elements: list[Tag] = []
    for css in cfg.item:
        elements = soup.select(css)
        if elements:
            break
    entries: list[ListingEntry] = []
    skipped: list[str] = []
    for el in elements:
        title = select_value(el, cfg.title)
        link = select_value(el, cfg.link)
        if not link:
            continue
        link = urljoin(page_url, link)
        if not is_web_url(link):
            # A "share by mail" row or a javascript: placeholder is not a news item, and it
            # is not the source failing either: the next run would meet it again.
            shown = link if len(link) <= 60 else link[:57] + "..."
            skipped.append(
                f"{page_url}: skipped the listing entry {title!r}: its link is"
                f" not http(s) ({shown})"
            )
            continue
        summary = select_html(el, cfg.summary)
        date_text = select_value(el, cfg.date)
        image = select_value(el, cfg.image)
        image = urljoin(page_url, image) if image else ""
        entries.append(
            ListingEntry(
                title,
                link,
                summary,
                date_text,
                image,
                listing_hash(title, link, summary, date_text, image),
            )
        )
    next_link = select_value(soup, cfg.next)
    next_url = urljoin(page_url, next_link) if next_link else None
    return ListingPage(tuple(entries), next_url, tuple(skipped))


def parse_article(
    text: str, page_url: str, cfg: ArticleConfig, *, tz: tzinfo, now: datetime
) -> Article:
    soup = _soup(text)
    container: Tag = soup
    for css in cfg.container:
        found = soup.select_one(css)
        if found is not None:
            container = found
            break
    body_el: Tag | None = None
    for spec in cfg.body:
        css, _attr = split_selector(spec)
        body_el = soup.select_one(css)
        if body_el is not None:
            break
    if body_el is not None:
        for spec in cfg.remove:
            for junk in body_el.select(split_selector(spec)[0]):
                junk.decompose()
        body_html = body_el.decode_contents().strip()
        body_text = clean_text(body_el.get_text(" ", strip=True))
    else:
        body_html = body_text = ""
    html_el = soup.find("html")
    language = ""
    if html_el is not None and not isinstance(html_el, str):
        lang = html_el.get("lang")
        language = lang if isinstance(lang, str) else ""
    # The page's own language adds its month names (CLDR's) to those always known.
    published, date_source = _find_date(
        soup, container, cfg, body_text, tz=tz, now=now, language=language
    )
    image = select_value(soup, cfg.image)
    image_alt = ""
    if image:
        for spec in cfg.image:
            css, _attr = split_selector(spec)
            el = soup.select_one(css)
            if el is not None and el.name == "img":
                image_alt = _value(el, "alt")
                break
    canonical = ""
    link_el = soup.select_one("link[rel~=canonical][href]")
    if link_el is not None:
        canonical = _value(link_el, "href")
    return Article(
        title=select_value(soup, cfg.title),
        body_html=body_html,
        published=published,
        date_source=date_source,
        image_url=urljoin(page_url, image) if image else "",
        image_alt=image_alt,
        categories=tuple(select_values(soup, cfg.category)),
        language=language.split("-")[0].lower(),
        canonical=urljoin(page_url, canonical) if canonical else "",
        modified=_find_modified(soup, tz),
    )


def _find_date(
    soup: BeautifulSoup,
    container: Tag,
    cfg: ArticleConfig,
    body_text: str,
    *,
    tz: tzinfo,
    now: datetime,
    language: str = "",
) -> tuple[datetime | None, DateSource | None]:
    """The published date, from the most trusted place that has one."""
    for el in container.select("time[datetime]"):
        found = parse_iso(_value(el, "datetime"), tz)
        if found is not None:
            return found, DateSource.TIME
    for el in soup.select("meta[property='article:published_time'][content]"):
        found = parse_iso(_value(el, "content"), tz)
        if found is not None:
            return found, DateSource.META
    for el in soup.select("script[type='application/ld+json']"):
        found = _jsonld_date(el.get_text(), tz)
        if found is not None:
            return found, DateSource.JSONLD
    for spec in cfg.date:
        css, attr = split_selector(spec)
        for el in soup.select(css):
            found = parse_date_text(_value(el, attr), tz, reference=now, language=language)
            if found is not None:
                return found, DateSource.SELECTOR
    found = find_dateline(body_text, tz, reference=now, language=language) if body_text else None
    if found is not None:
        return found, DateSource.DATELINE
    return None, None


def _find_modified(soup: BeautifulSoup, tz: tzinfo) -> datetime | None:
    """The page's own last-modification time, when it states one."""
    for el in soup.select("meta[property='article:modified_time'][content]"):
        found = parse_iso(_value(el, "content"), tz)
        if found is not None:
            return found
    for el in soup.select("script[type='application/ld+json']"):
        found = _jsonld_date(el.get_text(), tz, key="dateModified")
        if found is not None:
            return found
    return None


def _jsonld_date(text: str, tz: tzinfo, *, key: str = "datePublished") -> datetime | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    stack: list[Any] = [data]
    while stack:
        node = stack.pop(0)
        if isinstance(node, dict):
            value = node.get(key)
            if isinstance(value, str) and (found := parse_iso(value, tz)) is not None:
                return found
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


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

    def fetch(self, ctx: FetchContext) -> Iterator[Item]:
        cfg = self.cfg
        tz = zone(ctx.config.source_timezone(cfg))
        # A first run, or a changed filter, walks every page without validators.
        backfill = not ctx.store.backfilled(cfg.name, filter_hash(cfg.filter))
        failures: list[str] = []
        handled: set[str] = set()  # canonical URLs dealt with in this run
        listing_pages = []
        url: str | None = cfg.url
        visited: set[str] = set()
        walked_to_end = False
        previous: tuple[str, ...] = ()
        for page_index in range(cfg.max_pages):
            if url is None:
                walked_to_end = True
                break
            if url in visited:
                walked_to_end = True
                break
            visited.add(url)
            response = ctx.http.get(url, conditional=not backfill)
            ctx.stats.pages += 1
            if response.not_modified:
                ctx.stats.not_modified += 1
                log.debug("%s: %s not modified, stopping", cfg.name, url)
                break
            self._check_selectors(ctx)
            page = parse_listing(response.text(), response.final_url, cfg.listing)
            for why in page.skipped:
                ctx.warn(why)
            if not page.entries:
                where = f"{response.final_url} (page {page_index + 1})"
                if page_index == 0:
                    without = (
                        f" with an http(s) link ({len(page.skipped)} without)"
                        if page.skipped
                        else ""
                    )
                    raise ParseError(
                        f"{where}: the listing selectors found no items{without}"
                        f" (sources.listing.item / .link); has the site's layout changed?"
                        f" Stored items are kept."
                    )
                ctx.warn(f"{where}: no items found on this page; stopped paging")
                break
            links = tuple(ctx.canonical(e.link) for e in page.entries)
            if links == previous:  # an out-of-range page repeats the last one
                walked_to_end = True
                break
            previous = links
            brought_new = False
            for entry, canonical in zip(page.entries, links, strict=True):
                if canonical in handled:
                    continue
                handled.add(canonical)
                known = ctx.known(entry.link)
                if known is not None and known.listing_hash == entry.fingerprint:
                    continue
                missing = ctx.store.missing_article(canonical)
                if (
                    missing is not None
                    and missing.listing_hash == entry.fingerprint
                    and not missing.due(ctx.now)
                ):
                    continue  # a 404 waiting for its next try: the listing brings no news
                brought_new = True
                try:
                    item, article_response = self._item(ctx, entry, canonical, tz, handled)
                except FetchError as exc:
                    if exc.status in (404, 410):  # a dead link, for now: tried again later
                        self._note_missing(ctx, entry, canonical, exc, missing)
                        continue
                    failures.append(str(exc))
                    continue
                except SourceError as exc:
                    failures.append(str(exc))
                    continue
                yield item
                if article_response is not None:  # stored: its next fetch can be a 304
                    ctx.remember(article_response)
                if missing is not None:
                    ctx.store.forget_missing(canonical)
            listing_pages.append(response)
            if not backfill and not brought_new:
                break
            url = page.next_url
        else:
            walked_to_end = True
        yield from self._retry_missing(ctx, handled, tz, failures)
        yield from self._recheck(ctx, handled, tz, failures)
        if backfill and walked_to_end:
            # Every page was read; articles that failed are still unknown, so the next
            # (incremental) run retries them: the pages holding them count as bringing news.
            ctx.store.mark_backfilled(cfg.name, ctx.now, filter_hash(cfg.filter))
        if failures:
            count = len(failures)
            raise SourceError(
                f"{count} article{'s' if count > 1 else ''} could not be read"
                f" (they will be retried next run): "
                + "; ".join(failures[:5])
                + (" ..." if count > 5 else "")
            )
        # Only now is every page's content stored: remember the pages as seen.
        for response in listing_pages:
            ctx.remember(response)

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
            parse_date_text(entry.date_text, tz, reference=ctx.now) if entry.date_text else None
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
    ) -> None:
        """Remember an article that answered 404/410 and when to ask again; warn on the
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
        ctx.store.save_missing(
            MissingArticle(
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

    def _retry_missing(
        self, ctx: FetchContext, handled: set[str], tz: tzinfo, failures: list[str]
    ) -> Iterator[Item]:
        """Ask again for articles that answered 404 and whose next try has come, even when
        the listing answered 304 (their listing entries are kept with them)."""
        if not self.cfg.follow_articles:
            return
        for missing in ctx.store.missing_due(self.name, ctx.now):
            if missing.url in handled:
                continue
            handled.add(missing.url)
            self._check_selectors(ctx)
            entry = ListingEntry(
                missing.title,
                missing.link,
                missing.summary_html,
                missing.date_text,
                missing.image_url,
                missing.listing_hash,
            )
            try:
                item, response = self._item(ctx, entry, missing.url, tz, handled)
            except FetchError as exc:
                if exc.status in (404, 410):
                    self._note_missing(ctx, entry, missing.url, exc, missing)
                    continue
                failures.append(str(exc))
                continue
            except SourceError as exc:
                failures.append(str(exc))
                continue
            log.info("%s: %s answered %d before, found now", self.name, missing.url, missing.status)
            yield item
            if response is not None:
                ctx.remember(response)
            ctx.store.forget_missing(missing.url)

    def _recheck(
        self, ctx: FetchContext, handled: set[str], tz: tzinfo, failures: list[str]
    ) -> Iterator[Item]:
        """Conditional GETs of recently published articles, to catch silent edits."""
        if not self.cfg.follow_articles or self.cfg.recheck_days <= 0:
            return
        since = ctx.now - timedelta(days=self.cfg.recheck_days)
        for known in ctx.store.recent(self.name, since):
            if known.url in handled:
                continue
            handled.add(known.url)
            try:
                response = ctx.http.get(known.url, conditional=True)
            except RobotsDisallowed as exc:
                ctx.warn(str(exc))
                continue
            except FetchError as exc:
                if exc.status not in (404, 410):
                    failures.append(str(exc))
                    continue
                # Taken down, or a hiccup: what was published stays published, and the
                # source has not failed (no alert every run for the whole recheck window).
                ctx.warn(
                    f"{known.url}: a stored article now answers HTTP {exc.status}; the"
                    " stored copy is kept (checked again on the next run)"
                )
                continue
            except SourceError as exc:
                failures.append(str(exc))
                continue
            ctx.stats.pages += 1
            if response.not_modified:
                ctx.stats.not_modified += 1
                continue
            stored = ctx.store.get(known.id)
            if stored is None:
                continue
            self._check_selectors(ctx)
            try:
                article = self._parse_article(ctx, response, tz, known.url, handled)
            except SourceError as exc:
                failures.append(str(exc))
                continue
            base = Item(
                source=self.name,
                url=stored.url,
                base_url=stored.url,
                title=stored.title,
                summary_html=stored.summary_html,
                image_url=stored.image_url,
                listing_hash=stored.listing_hash,
            )
            yield _merge(base, article, response.final_url, None)
            ctx.remember(response)


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
