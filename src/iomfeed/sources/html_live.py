"""``check --live`` for an ``html`` source: what its selectors find on the first listing page
and on the first article."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from ..clock import utc_now, zone
from ..config import Config, SourceConfig

if TYPE_CHECKING:
    from ..http import HttpClient


def check_live(config: Config, src: SourceConfig, http: HttpClient, out: TextIO) -> bool:
    """Fetch the listing and its first article; say what each selector found."""
    response = http.get(src.url)
    out.write(f"  GET {response.final_url}: HTTP {response.status}, {len(response.body)} bytes\n")
    from .html_parse import parse_article, parse_listing

    page = parse_listing(response.text(), response.final_url, src.listing)
    entries = page.entries
    out.write(f"  listing.item: {len(entries)} entries\n")
    for key, field in (
        ("title", "title"),
        ("summary", "summary_html"),
        ("date", "date_text"),
        ("image", "image_url"),
    ):
        have = sum(1 for e in entries if getattr(e, field))
        out.write(f"  listing.{key}: found in {have} of {len(entries)}\n")
    out.write(f"  listing.next: {page.next_url or 'none (single page)'}\n")
    if not entries:
        return False
    first = entries[0]
    out.write(f"  first entry: {first.title!r}\n    {first.link}\n")
    if not src.follow_articles:
        return True
    article_response = http.get(first.link)
    article = parse_article(
        article_response.text(),
        article_response.final_url,
        src.article,
        tz=zone(config.source_timezone(src)),
        now=utc_now(),
    )
    date = (
        f"{article.published.isoformat()} (from {article.date_source})"
        if article.published and article.date_source
        else "none found"
    )
    out.write(
        f"  article.title: {article.title!r}\n"
        f"  article.date: {date}\n"
        f"  article.body: {len(article.body_html)} characters of HTML\n"
        f"  article.image: {article.image_url or 'none'}\n"
        f"  article.category: {', '.join(article.categories) or 'none'}\n"
        f"  language: {article.language or 'not declared'}\n"
    )
    return bool(article.title and article.body_html)
