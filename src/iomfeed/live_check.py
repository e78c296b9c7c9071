"""``iomfeed check --live``: fetch one page of each source and say what the selectors found.

For an operator adjusting selectors after a site redesign. It reads, never writes: nothing is
stored and no validators are saved.
"""

from __future__ import annotations

from typing import TextIO

from .clock import utc_now
from .config import Config, SourceConfig
from .errors import BadRecord, SourceError
from .http import HttpClient
from .models import Response
from .normalize import zone


def check_sources(config: Config, out: TextIO) -> bool:
    """Report on every enabled source; True when each one gave items."""
    ok = True
    with HttpClient(config.http) as http:
        for src in config.sources:
            if not src.enabled:
                out.write(f"\n[{src.name}] disabled, skipped\n")
                continue
            out.write(f"\n[{src.name}] kind = {src.kind}\n")
            try:
                good = _check(config, src, http, out)
            except SourceError as exc:
                out.write(f"  FAILED: {exc}\n")
                good = False
            ok = ok and good
    return ok


def _check(config: Config, src: SourceConfig, http: HttpClient, out: TextIO) -> bool:
    """Report on one source; True when it gave items."""
    if src.kind == "json":
        return _check_json(config, src, out)
    response = http.get(src.url)
    out.write(f"  GET {response.final_url}: HTTP {response.status}, {len(response.body)} bytes\n")
    if src.kind == "feed":
        return _check_feed(response, out)
    return _check_html(config, src, http, response, out)


def _check_json(config: Config, src: SourceConfig, out: TextIO) -> bool:
    """Read the source's JSON records and count the ones that are not usable."""
    from .sources.json import item_from_record, read_records

    tz = zone(config.source_timezone(src))
    records = read_records(config.path(src.path))
    bad = []
    for where, record in records:
        try:
            item_from_record(record, source=src.name, tz=tz)
        except BadRecord as exc:
            bad.append(f"{where}: {exc}")
    out.write(f"  {len(records)} record(s), {len(bad)} bad\n")
    for line in bad[:10]:
        out.write(f"    {line}\n")
    return bool(records) and not bad


def _check_feed(response: Response, out: TextIO) -> bool:
    import feedparser

    parsed = feedparser.parse(response.body)
    entries = parsed.get("entries", [])
    out.write(f"  feed format {parsed.get('version') or 'unknown'}: {len(entries)} entries\n")
    return bool(entries)


def _check_html(
    config: Config, src: SourceConfig, http: HttpClient, response: Response, out: TextIO
) -> bool:
    """What each listing selector found, then (if articles are followed) the first article."""
    from .sources.html import parse_listing

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
    return _check_article(config, src, http, first.link, out)


def _check_article(
    config: Config, src: SourceConfig, http: HttpClient, link: str, out: TextIO
) -> bool:
    """What the article selectors found on the page at ``link``."""
    from .sources.html import parse_article

    article_response = http.get(link)
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
