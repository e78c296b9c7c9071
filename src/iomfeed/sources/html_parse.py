"""Reading the pages of an ``html`` source: its listing pages and its article pages, by the
configured CSS selectors with fall-backs (the first that matches wins). Pure functions of the
page text; bs4 is imported only when a page must be parsed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from ..config import ArticleConfig, ListingConfig, split_selector
from ..dedup import listing_hash
from ..models import DateSource
from ..normalize import clean_text, find_dateline, is_web_url, parse_date_text, parse_iso
from .html_select import PageIndex, Root, select, select_one

if TYPE_CHECKING:
    from bs4 import Tag


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


#: What an article page is read by besides its configured selectors.
_ARTICLE_FIXED = (
    "time[datetime]",
    "meta[property='article:published_time'][content]",
    "meta[property='article:modified_time'][content]",
    "script[type='application/ld+json']",
    "link[rel~=canonical][href]",
)


def _page(text: str, *groups: tuple[str, ...]) -> tuple[PageIndex, str]:
    """The page parsed (only the parts the selectors in ``groups`` can reach, when that can
    be told from them) and indexed, with its ``<html lang>``."""
    from .html_strain import parse_walked

    specs = tuple(dict.fromkeys(split_selector(spec)[0] for group in groups for spec in group))
    soup, html_attrs, walked = parse_walked(text, specs)
    if html_attrs is None:  # parsed whole
        html_el = soup.find("html")
        lang = html_el.get("lang") if html_el is not None and not isinstance(html_el, str) else ""
    else:
        lang = html_attrs.get("lang", "")
    return PageIndex(soup, walked), lang if isinstance(lang, str) else ""


def _value(el: Tag, attr: str | None) -> str:
    if attr is None:
        return clean_text(el.get_text(" ", strip=True))
    raw = el.get(attr)
    if isinstance(raw, list):
        raw = " ".join(raw)
    return (raw or "").strip()


def select_value(root: Root, specs: Sequence[str]) -> str:
    """The first non-empty text (or ``@attr`` value) that one of ``specs`` finds."""
    for spec in specs:
        css, attr = split_selector(spec)
        for el in select(root, css):
            value = _value(el, attr)
            if value:
                return value
    return ""


def select_values(root: Root, specs: Sequence[str]) -> list[str]:
    """All values found by the first of ``specs`` that finds any."""
    for spec in specs:
        css, attr = split_selector(spec)
        values = [v for el in select(root, css) if (v := _value(el, attr))]
        if values:
            return values
    return []


def select_html(root: Root, specs: Sequence[str]) -> str:
    """The inner HTML of the first element one of ``specs`` finds (or an ``@attr`` value)."""
    for spec in specs:
        css, attr = split_selector(spec)
        el = select_one(root, css)
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
    page, _lang = _page(
        text, cfg.item, cfg.title, cfg.link, cfg.summary, cfg.date, cfg.image, cfg.next
    )
    elements: list[Tag] = []
    for css in cfg.item:
        elements = page.select(css)
        if elements:
            break
    entries: list[ListingEntry] = []
    skipped: list[str] = []
    for element in elements:
        el = page.within(element)
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
    next_link = select_value(page, cfg.next)
    next_url = urljoin(page_url, next_link) if next_link else None
    return ListingPage(tuple(entries), next_url, tuple(skipped))


def _article_selectors(cfg: ArticleConfig) -> tuple[tuple[str, ...], ...]:
    """Every selector an article page is read by."""
    return (
        cfg.container,
        cfg.body,
        cfg.remove,
        cfg.title,
        cfg.date,
        cfg.image,
        cfg.category,
        _ARTICLE_FIXED,
    )


def parse_article(
    text: str, page_url: str, cfg: ArticleConfig, *, tz: tzinfo, now: datetime
) -> Article:
    page, language = _page(text, *_article_selectors(cfg))
    container: Root = page
    for css in cfg.container:
        found = page.select(css, 1)
        if found:
            container = page.within(found[0])
            break
    body_el: Tag | None = None
    for spec in cfg.body:
        css, _attr = split_selector(spec)
        body_el = select_one(page, css)
        if body_el is not None:
            break
    if body_el is not None:
        for spec in cfg.remove:
            for junk in page.within(body_el).select(split_selector(spec)[0]):
                page.decompose(junk)
        body_html = body_el.decode_contents().strip()
        body_text = clean_text(body_el.get_text(" ", strip=True))
    else:
        body_html = body_text = ""
    # The page's own language adds its month names (CLDR's) to those always known.
    published, date_source = _find_date(
        page, container, cfg, body_text, tz=tz, now=now, language=language
    )
    image = select_value(page, cfg.image)
    image_alt = ""
    if image:
        for spec in cfg.image:
            css, _attr = split_selector(spec)
            el = select_one(page, css)
            if el is not None and el.name == "img":
                image_alt = _value(el, "alt")
                break
    canonical = ""
    link_el = select_one(page, "link[rel~=canonical][href]")
    if link_el is not None:
        canonical = _value(link_el, "href")
    return Article(
        title=select_value(page, cfg.title),
        body_html=body_html,
        published=published,
        date_source=date_source,
        image_url=urljoin(page_url, image) if image else "",
        image_alt=image_alt,
        categories=tuple(select_values(page, cfg.category)),
        language=language.split("-")[0].lower(),
        canonical=urljoin(page_url, canonical) if canonical else "",
        modified=_find_modified(page, tz),
    )


def _find_date(
    page: PageIndex,
    container: Root,
    cfg: ArticleConfig,
    body_text: str,
    *,
    tz: tzinfo,
    now: datetime,
    language: str = "",
) -> tuple[datetime | None, DateSource | None]:
    """The published date, from the most trusted place that has one."""
    for el in select(container, "time[datetime]"):
        found = parse_iso(_value(el, "datetime"), tz)
        if found is not None:
            return found, DateSource.TIME
    for el in page.select("meta[property='article:published_time'][content]"):
        found = parse_iso(_value(el, "content"), tz)
        if found is not None:
            return found, DateSource.META
    for el in page.select("script[type='application/ld+json']"):
        found = _jsonld_date(el.get_text(), tz)
        if found is not None:
            return found, DateSource.JSONLD
    for spec in cfg.date:
        css, attr = split_selector(spec)
        for el in page.select(css):
            found = parse_date_text(_value(el, attr), tz, reference=now, language=language)
            if found is not None:
                return found, DateSource.SELECTOR
    found = find_dateline(body_text, tz, reference=now, language=language) if body_text else None
    if found is not None:
        return found, DateSource.DATELINE
    return None, None


def _find_modified(page: PageIndex, tz: tzinfo) -> datetime | None:
    """The page's own last-modification time, when it states one."""
    for el in page.select("meta[property='article:modified_time'][content]"):
        found = parse_iso(_value(el, "content"), tz)
        if found is not None:
            return found
    for el in page.select("script[type='application/ld+json']"):
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
