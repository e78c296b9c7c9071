"""Render a :class:`FeedDoc` as Atom 1.0, RSS 2.0 or JSON Feed 1.1 bytes. Pure: no I/O.

Byte-stable by construction: every date comes from the items (the feed's ``updated`` is the
newest item change, never the build time), entries keep the store's order, and JSON keys
have a fixed order. Atom and RSS go through feedgen; JSON Feed is plain ``json``.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from .. import __version__
from ..errors import PublishError
from ..models import StoredItem
from ..normalize import html_to_text
from ..output_records import FeedDoc

ATOM_TYPE = "application/atom+xml"
RSS_TYPE = "application/rss+xml"
JSON_FEED_TYPE = "application/feed+json"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"
GENERATOR_URI = "https://github.com/iomfeed/iomfeed"


#: Image types by extension: a fixed table, so the output does not depend on the host's
#: MIME database.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".svg": "image/svg+xml",
}


def image_type(url: str) -> str | None:
    """The MIME type of an image URL, from its extension (``None`` when it cannot be told)."""
    path = urlsplit(url).path.lower()
    dot = path.rfind(".")
    return IMAGE_TYPES.get(path[dot:]) if dot >= 0 else None


@lru_cache(maxsize=1)
def _extensions() -> tuple[type[Any], type[Any], type[Any], type[Any]]:
    """feedgen extensions, defined once and lazily, so feedgen loads only when a feed is
    rendered."""
    from feedgen.ext.base import BaseEntryExtension, BaseExtension
    from lxml import etree

    class ArchiveExtension(BaseExtension):  # type: ignore[misc]
        """RFC 5005 section 4: <fh:archive/> marks an immutable archive document."""

        def extend_ns(self) -> dict[str, str]:
            return {"fh": HISTORY_NS}

        def extend_atom(self, feed: Any) -> Any:
            feed.insert(0, etree.Element(f"{{{HISTORY_NS}}}archive"))
            return feed

    class HubExtension(BaseExtension):  # type: ignore[misc]
        """<atom:link>s in an RSS channel besides 'self', the only one feedgen writes:
        rel="hub" (WebSub) and rel="prev-archive" (RFC 5005)."""

        def __init__(self) -> None:
            self.links: list[dict[str, str]] = []

        def extend_rss(self, feed: Any) -> Any:
            channel = feed[0]
            for attrs in self.links:
                link = etree.SubElement(channel, f"{{{ATOM_NS}}}link")
                for key in ("href", "rel", "type"):
                    if attrs.get(key):
                        link.set(key, attrs[key])
            return feed

    class AtomLinksExtension(BaseEntryExtension):  # type: ignore[misc]
        """Entry <link>s with their rel and type: feedgen 1.0 drops both for entries."""

        def __init__(self) -> None:
            self.links: list[dict[str, str]] = []
            self.language = ""

        def extend_atom(self, entry: Any) -> Any:
            if self.language:  # an entry in another language than the feed's
                entry.set("{http://www.w3.org/XML/1998/namespace}lang", self.language)
            for bare in entry.findall("link"):  # feedgen's, given only to pass its own check
                entry.remove(bare)
            for attrs in self.links:
                # Unqualified, like feedgen's own Atom elements: the feed's default namespace.
                link = etree.SubElement(entry, "link")
                for key in ("href", "rel", "type"):
                    if attrs.get(key):
                        link.set(key, attrs[key])
            return entry

    return ArchiveExtension, HubExtension, BaseEntryExtension, AtomLinksExtension


def _generator(doc: FeedDoc, *, rss: bool) -> Any:
    from feedgen.feed import FeedGenerator

    archive_ext, hub_ext, entry_ext, links_ext = _extensions()
    fg = FeedGenerator()
    fg.id(doc.feed_id)
    fg.title(doc.title)
    fg.subtitle(doc.description)
    fg.author({"name": doc.author})
    fg.language(doc.language)
    fg.generator("iomfeed", version=__version__, uri=GENERATOR_URI)
    fg.updated(doc.updated)  # also RSS lastBuildDate: the last content change
    if rss:
        fg.link(href=doc.rss_url, rel="self", type=RSS_TYPE)
        fg.register_extension("channel", hub_ext, entry_ext, atom=False, rss=True)
        if doc.hub:
            fg.channel.links.append({"href": doc.hub, "rel": "hub"})
        if doc.prev_archive:
            fg.channel.links.append(
                {"href": doc.prev_archive, "rel": "prev-archive", "type": ATOM_TYPE}
            )
        fg.load_extension("media", atom=False, rss=True)
    else:
        fg.link(href=doc.atom_url, rel="self", type=ATOM_TYPE)
        if doc.hub:
            fg.link(href=doc.hub, rel="hub")
        if doc.current_url:
            fg.link(href=doc.current_url, rel="current", type=ATOM_TYPE)
        if doc.prev_archive:
            fg.link(href=doc.prev_archive, rel="prev-archive", type=ATOM_TYPE)
        if doc.is_archive:
            fg.register_extension("fh", archive_ext, entry_ext, atom=True, rss=False)
    # feedgen takes the RSS channel <link> from the last link added: the site itself.
    fg.link(href=doc.home_url, rel="alternate", type="text/html")
    if not rss:
        fg.register_extension("links", entry_ext, links_ext, atom=True, rss=False)
    for item in doc.items:
        _entry(fg.add_entry(order="append"), item, rss=rss, feed_language=doc.language)
    return fg


def _entry(fe: Any, item: StoredItem, *, rss: bool, feed_language: str) -> None:
    fe.id(item.id)
    fe.guid(item.id, permalink=False)
    fe.title(item.title)
    fe.published(item.published)
    fe.updated(item.updated)
    summary = item.summary_html or item.content_html
    if rss:
        fe.link(href=item.url)
        fe.description(summary or item.title)
        if item.content_html and item.content_html != summary:
            fe.content(item.content_html, type="CDATA")
        if item.image_url:
            # An RSS enclosure needs a true length, which is unknown: Media RSS instead, as a
            # bare media:content (group=None): a media:group must hold several of them.
            fe.media.content(
                {
                    "url": item.image_url,
                    "medium": "image",
                    **({"type": t} if (t := image_type(item.image_url)) else {}),
                },
                group=None,
            )
    else:
        if item.summary_html:
            fe.summary(item.summary_html, type="html")
        content = item.content_html
        mime = image_type(item.image_url) if item.image_url else None
        if item.image_url and not mime:  # no type to put on an enclosure: show it instead
            content = (
                f'<p><img src="{html.escape(item.image_url)}"'
                f' alt="{html.escape(item.image_alt)}"></p>{content}'
            )
        if content:
            fe.content(content, type="html")
        else:  # feedgen refuses an entry with neither content nor an alternate link of its own
            fe.link(href=item.url, rel="alternate")
        fe.links.links.append({"href": item.url, "rel": "alternate", "type": "text/html"})
        if mime:
            fe.links.links.append({"href": item.image_url, "rel": "enclosure", "type": mime})
        if item.language and item.language != feed_language:
            fe.links.language = item.language
    for category in item.categories:
        fe.category(term=category)
    if item.author:
        fe.author({"name": item.author})


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def xml_safe(items: Sequence[StoredItem]) -> tuple[StoredItem, ...]:
    """The items without any character XML 1.0 (and HTML) forbids, whatever the store holds."""

    def text(value: str) -> str:
        return _CONTROL.sub("", value)

    def clean(i: StoredItem) -> StoredItem:
        if not _CONTROL.search(
            i.title
            + i.summary_html
            + i.content_html
            + i.author
            + i.image_alt
            + "".join(i.categories)
        ):
            return i
        return dataclasses.replace(
            i,
            title=text(i.title),
            summary_html=text(i.summary_html),
            content_html=text(i.content_html),
            author=text(i.author),
            image_alt=text(i.image_alt),
            categories=tuple(text(c) for c in i.categories),
        )

    return tuple(clean(i) for i in items)


def _clean(doc: FeedDoc) -> FeedDoc:
    return dataclasses.replace(doc, items=xml_safe(doc.items))


def render_atom(doc: FeedDoc) -> bytes:
    try:
        data: bytes = _generator(_clean(doc), rss=False).atom_str(pretty=True, encoding="UTF-8")
    except ValueError as exc:  # lxml: a configured string XML cannot hold
        raise PublishError(f"{doc.atom_url}: cannot be written as XML: {exc}") from exc
    return data


def render_rss(doc: FeedDoc) -> bytes:
    try:
        data: bytes = _generator(_clean(doc), rss=True).rss_str(pretty=True, encoding="UTF-8")
    except ValueError as exc:
        raise PublishError(f"{doc.rss_url}: cannot be written as XML: {exc}") from exc
    return data


def render_json(doc: FeedDoc) -> bytes:
    """JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/)."""
    feed: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": doc.title,
        "home_page_url": doc.home_url,
        "feed_url": doc.json_url,
        "description": doc.description,
        "language": doc.language,
        "authors": [{"name": doc.author}],
    }
    if doc.hub:
        feed["hubs"] = [{"type": "WebSub", "url": doc.hub}]
    feed["items"] = [_json_item(item, doc.author) for item in _clean(doc).items]
    text = json.dumps(feed, ensure_ascii=False, indent=2) + "\n"
    return text.encode("utf-8")


def _json_item(item: StoredItem, author: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": item.id,
        "url": item.url,
        "title": item.title,
        "content_html": item.content_html or item.summary_html or "",
    }
    if item.summary_html:
        out["summary"] = html_to_text(item.summary_html)
    if item.image_url:
        out["image"] = item.image_url
    out["date_published"] = item.published.isoformat()
    out["date_modified"] = item.updated.isoformat()
    if item.categories:
        out["tags"] = list(item.categories)
    out["authors"] = [{"name": item.author or author}]
    if item.language:
        out["language"] = item.language
    return out
