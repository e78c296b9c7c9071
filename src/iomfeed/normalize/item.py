"""The stored form of a found item: canonical URL, clean HTML, aware date."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, tzinfo
from urllib.parse import urljoin

from ..models import Item
from .markup import clean_text, sanitize_html
from .summary import summary_from_body, teaser_is_cut
from .urls import Origin, canonical_url, same_site


def _host(url: str) -> str:
    try:
        return Origin.of(url).host
    except ValueError:
        return ""


def _local(value: datetime | None, tz: tzinfo) -> datetime | None:
    """An aware datetime in the source's time zone (a naive one is taken to be local)."""
    if value is None:
        return None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for v in values:
        v = clean_text(v)
        if v and v.casefold() not in {s.casefold() for s in seen}:
            seen[v] = None
    return tuple(seen)


#: A date further than this after the fetch is a mistake on the page, not news to come.
FUTURE_DATE_GRACE = timedelta(days=1)


def _addresses(item: Item, base: str, origins: Sequence[Origin]) -> tuple[str, tuple[str, ...]]:
    """The item's canonical URL and its other known addresses (rel=canonical, when trusted,
    becomes the URL and the listing's address joins the others)."""
    link = urljoin(base, item.url.strip())
    url = canonical_url(link, origins)
    also_at = tuple(canonical_url(u, origins) for u in item.also_at)
    if item.canonical_hint:
        hint = urljoin(base, item.canonical_hint.strip())
        # rel=canonical is trusted only when it stays on the same site as the page.
        if same_site(hint, origins) and same_site(link, origins) and _host(hint) == _host(link):
            preferred = canonical_url(hint, origins)
            if preferred != url:
                also_at = (*also_at, url)  # the listing's address stays known
                url = preferred
    return url, also_at


def _published(item: Item, tz: tzinfo, now: datetime) -> tuple[datetime | None, str]:
    """The item's date in the source's zone and its date note; a date more than
    :data:`FUTURE_DATE_GRACE` after ``now`` is dropped, and the note says why."""
    published = _local(item.published, tz)
    if published is None or published <= now + FUTURE_DATE_GRACE:
        return published, item.date_note
    # A typo in the year would pin the item above every real story for years.
    note = (
        f"ignored the date {published.isoformat()}"
        f" ({item.date_source or 'unknown source'}): more than a day after it"
        f" was fetched ({now.astimezone(tz).isoformat()})"
    )
    return None, note


def _summary_and_content(item: Item, base: str, summary_length: int) -> tuple[str, str]:
    """Sanitised summary and body; a teaser cut from the body is remade from the body."""
    summary = sanitize_html(item.summary_html, base)
    content = sanitize_html(item.content_html, base)
    if summary and content and teaser_is_cut(summary, content):
        summary = summary_from_body(content, summary_length)
    return summary, content


def normalize_item(
    item: Item,
    *,
    origins: Sequence[Origin],
    tz: tzinfo,
    language: str,
    summary_length: int,
    now: datetime,
) -> Item:
    """The stored form of a found item: canonical URL, clean HTML, aware date.

    A teaser the site cut mid-word (see :func:`teaser_is_cut`) is replaced by a summary
    made from the body, at most ``summary_length`` characters, cut at a word. A date more
    than :data:`FUTURE_DATE_GRACE` after ``now`` (the fetch) is dropped, and ``date_note``
    says so: the store then dates the item by when it was first seen.
    """
    base = item.base_url or item.url
    url, also_at = _addresses(item, base, origins)
    published, date_note = _published(item, tz, now)
    image = urljoin(base, item.image_url.strip()) if item.image_url.strip() else ""
    summary, content = _summary_and_content(item, base, summary_length)
    return dataclasses.replace(
        item,
        url=url,
        base_url="",
        title=clean_text(item.title),
        summary_html=summary,
        content_html=content,
        published=published,
        date_source=item.date_source if published is not None else None,
        image_url=image if image.startswith(("http://", "https://")) else "",
        image_alt=clean_text(item.image_alt),
        categories=_unique(item.categories),
        language=(item.language or language).strip().lower(),
        author=clean_text(item.author),
        canonical_hint="",
        also_at=also_at,
        date_note=date_note,
    )
