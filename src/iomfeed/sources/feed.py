"""The ``feed`` source: ingest an existing RSS or Atom feed with feedparser.

Fetched through the same polite HTTP client (conditional GET: an unchanged feed costs no
parsing). The pipeline applies the source's include/exclude filter to what it yields.
feedparser is imported only when a feed must be parsed.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urljoin

from ..config import Config, SourceConfig
from ..dedup import listing_hash
from ..errors import ParseError
from ..models import DateSource, Item
from ..normalize import html_to_text, is_web_url
from . import FetchContext
from .records import SourcePage, validators_of

if TYPE_CHECKING:
    from ..http import HttpClient

log = logging.getLogger(__name__)


def _when(entry: Any, key: str) -> datetime | None:
    # dict.get, not entry.get: feedparser maps a missing "updated" to "published" (with a
    # deprecation warning), and iomfeed wants to know which of the two the feed gave.
    parsed = dict.get(entry, f"{key}_parsed")
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def _image(entry: Any) -> str:
    for media in entry.get("media_content", []) or []:
        if media.get("url") and (
            media.get("medium") == "image" or str(media.get("type", "")).startswith("image/")
        ):
            return str(media["url"])
    for thumb in entry.get("media_thumbnail", []) or []:
        if thumb.get("url"):
            return str(thumb["url"])
    for link in entry.get("links", []) or []:
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return str(link.get("href", ""))
    return ""


class FeedSource:
    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name

    def fetch(self, ctx: FetchContext) -> Iterator[SourcePage]:
        response = ctx.http.get(self.cfg.url, conditional=True)
        ctx.stats.pages += 1
        if response.not_modified:
            ctx.stats.not_modified += 1
            return
        import feedparser

        parsed = feedparser.parse(
            response.body,
            response_headers={
                "content-type": response.content_type,
                "content-location": response.final_url,
            },
        )
        entries = parsed.get("entries", [])
        if parsed.get("bozo") and not entries:
            raise ParseError(
                f"{response.final_url}: not a readable RSS or Atom feed"
                f" ({parsed.get('bozo_exception')})"
            )
        if not parsed.get("version") and not entries:
            raise ParseError(f"{response.final_url}: no RSS or Atom feed found at this address")
        items = [self._item(ctx, entry, response.final_url) for entry in entries]
        yield SourcePage(
            items=tuple(i for i in items if i is not None), validators=validators_of([response])
        )

    def _item(self, ctx: FetchContext, entry: Any, feed_url: str) -> Item | None:
        link = entry.get("link") or ""
        if not link and str(entry.get("id", "")).startswith(("http://", "https://")):
            link = entry["id"]
        title = entry.get("title", "")
        title_type = dict.get(entry, "title_detail", {}).get("type")
        if title_type in ("text/html", "application/xhtml+xml"):
            title = html_to_text(title)  # titles are plain text everywhere iomfeed puts them
        if not link or not title:
            log.info("%s: skipping an entry without link or title in %s", self.name, feed_url)
            return None
        if not is_web_url(urljoin(feed_url, link)):
            # Not a news item on the web (a mailto: or javascript: link): the feed is fine.
            shown = link if len(link) <= 60 else link[:57] + "..."
            ctx.warn(
                f"{feed_url}: skipped the entry {html_to_text(title)!r}: its link is not"
                f" http(s) ({shown})"
            )
            return None
        content = ""
        if entry.get("content"):
            content = entry["content"][0].get("value", "")
        summary = entry.get("summary", "")
        published = _when(entry, "published") or _when(entry, "updated")
        categories = tuple(t.get("term", "") for t in entry.get("tags", []) or [] if t.get("term"))
        return Item(
            source=self.name,
            url=link,
            base_url=feed_url,
            title=title,
            summary_html=summary if summary != content else "",
            content_html=content or summary,
            published=published,
            date_source=DateSource.FEED if published else None,
            modified=_when(entry, "updated"),
            image_url=_image(entry),
            categories=categories,
            language=(entry.get("language") or "").split("-")[0],
            author=entry.get("author", ""),
            listing_hash=listing_hash(title, link, summary),
        )


def check_live(config: Config, src: SourceConfig, http: HttpClient, out: TextIO) -> bool:
    """``check --live``: fetch the feed and say how many entries it has."""
    response = http.get(src.url)
    out.write(f"  GET {response.final_url}: HTTP {response.status}, {len(response.body)} bytes\n")
    import feedparser

    parsed = feedparser.parse(response.body)
    entries = parsed.get("entries", [])
    out.write(f"  feed format {parsed.get('version') or 'unknown'}: {len(entries)} entries\n")
    return bool(entries)
