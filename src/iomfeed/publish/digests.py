"""The digest archive: every digest that went out, as a page per language, an index of
them and an Atom feed, under ``digests/`` in the publish folder.

* ``digests/<date>-<code>.html`` (names: :mod:`iomfeed.digest.pages`): the digest's web
  copy in each language of ``digest.languages``, rendered by the digest's own templates and
  CSS with ``web`` set (:func:`iomfeed.digest.render.render_digest`), so it has no token, no
  greeting, no address and no unsubscribe link, only words every reader may see;
* ``digests/index.html``: the digests, newest first, each with its pages by language;
* ``digests/atom.xml``: one Atom entry per page, ids minted once (``Store.entry_id``).

A digest is archived once it went out: sent to everyone, or still being sent with one
message accepted (its items are frozen: the page will not change when the send ends).
Skipped digests have nothing to show. The pages are made from the store at each publish,
but rendered only when their fingerprint changes (the digest's items, the templates, the
language files, the settings they show), like the month pages, and written with the rest
of the publish, all or nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..digest.pages import (
    FOLDER,
    Alternate,
    WebCopy,
    language_name,
    page_file,
    page_path,
    page_stem,
    public_base,
)
from ..models import DigestRecord, StoredItem
from ..output_records import DigestContent
from ..template_cache import template_cache

if TYPE_CHECKING:
    from ..config import Config
    from ..store import Store

#: Bump when the archive's rendering changes, so that every file is written again.
ARCHIVE_VERSION = "1"
INDEX = f"{FOLDER}/index.html"
FEED = f"{FOLDER}/atom.xml"
ATOM_NS = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True, slots=True)
class Archived:
    """A digest that went out, its page name and what it shows."""

    record: DigestRecord
    item_ids: tuple[str, ...]
    stem: str


@dataclass(frozen=True, slots=True)
class DigestLink:
    """One digest on the archive's index: its day, its pages and its first stories."""

    created: datetime
    count: int
    pages: tuple[Alternate, ...]
    titles: tuple[str, ...]


def plan(store: Store, timezone: str) -> list[Archived]:
    """The digests to publish, newest first."""
    days = store.digest_days()
    return [
        Archived(record, tuple(ids), page_stem(record.id, record.created, days, timezone))
        for record, ids in store.archived_digests()
    ]


def _inputs(config: Config) -> str:
    """A hash of everything but the store that the archive's files are made from: the
    templates (the package's and the override folder's), the language files and the
    settings the pages show."""
    import importlib.resources

    from .. import languages

    digest = hashlib.sha256(ARCHIVE_VERSION.encode())
    own = importlib.resources.files("iomfeed.templates")
    for folder in (own / "digest", own / "site"):
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_file():
                digest.update(entry.name.encode() + b"\0" + entry.read_bytes())
    override = config.templates_path
    if override is not None and override.is_dir():
        for path in sorted(p for p in override.iterdir() if p.is_file()):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for code in config.digest.languages:
        found = languages.find(code, config.languages_path)
        digest.update(code.encode() + b"\0" + (found.read_bytes() if found else b""))
    for part in (config.digest, config.site, config.mail.postal_address):
        digest.update(repr(part).encode())
    return digest.hexdigest()


class DigestArchive:
    """The archive's part of one publish. ``write(path, fingerprint, render)`` stages
    ``render()`` unless ``path`` is, untouched, what was written from that fingerprint."""

    def __init__(
        self,
        config: Config,
        store: Store,
        now: datetime,
        write: Callable[[str, str, Callable[[], bytes]], None],
    ) -> None:
        self.config = config
        self.store = store
        self.now = now
        self.write = write
        self.rows: dict[str, str] = {}  # item id -> "content hash,updated", of those shown
        self.base = public_base(config.site.public_url)
        self.inputs = ""

    def publish(self) -> int:
        """Stage the pages, the feed and the index; returns how many digests there are."""
        archived = plan(self.store, self.config.site.timezone)
        if not archived:
            return 0
        self.rows = self.store.item_marks(sorted({i for one in archived for i in one.item_ids}))
        self.inputs = _inputs(self.config)
        codes = self.config.digest.languages
        for one in reversed(archived):  # oldest first, like the archive feeds
            for code in codes:
                self.write(
                    page_path(one.stem, code),
                    self._fingerprint(one, code, ",".join(codes)),
                    lambda one=one, code=code: self._page(one, code),  # type: ignore[misc]
                )
        whole = "\n".join(self._fingerprint(one, "*", ",".join(codes)) for one in archived)
        self.write(FEED, self._hash("feed", whole), lambda: self._feed(archived))
        self.write(INDEX, self._hash("index", whole), lambda: self._index(archived))
        return len(archived)

    def _hash(self, *parts: str) -> str:
        return hashlib.sha256("\x1f".join((self.inputs, *parts)).encode()).hexdigest()

    def _fingerprint(self, one: Archived, code: str, codes: str) -> str:
        r = one.record
        items = ";".join(f"{i},{self.rows.get(i, '')}" for i in one.item_ids)
        return self._hash(
            str(r.id), str(r.created), str(r.since), str(r.more), one.stem, code, codes, items
        )

    def _content(self, one: Archived) -> tuple[DigestContent, list[StoredItem]]:
        from ..digest.select import to_entry
        from .feeds import xml_safe

        r = one.record
        items = list(xml_safe(self.store.items_by_id(list(one.item_ids))))
        content = DigestContent(
            digest_id=r.id,
            created=r.created,
            since=r.since,
            entries=tuple(to_entry(i) for i in items),
            more=r.more,
            first=r.since is None,
            page=one.stem,
        )
        return content, items

    def _alternates(self, one: Archived, but: str = "") -> tuple[Alternate, ...]:
        return tuple(
            Alternate(code, language_name(code), page_file(one.stem, code))
            for code in self.config.digest.languages
            if code != but
        )

    def _page(self, one: Archived, code: str) -> bytes:
        from ..digest.render import render_digest

        content, _ = self._content(one)
        web = WebCopy(alternates=self._alternates(one, code))
        html = render_digest(content, code, self.config, web=web).html
        return html.encode("utf-8")

    def _index(self, archived: list[Archived]) -> bytes:
        from zoneinfo import ZoneInfo

        from .site import render_digests

        zone = ZoneInfo(self.config.site.timezone)
        links = []
        for one in archived:
            _, items = self._content(one)
            links.append(
                DigestLink(
                    created=one.record.created.astimezone(zone),
                    count=len(items),
                    pages=self._alternates(one),
                    titles=tuple(i.title for i in items[:3]),
                )
            )
        site = self.config.site
        return render_digests(
            title=site.title,
            home_url=site.home_url,
            author=site.author,
            digests=links,
            feed_url=self.base + FEED,
            updated=archived[0].record.created.astimezone(zone),
            cache=template_cache(self.config, "pages"),
        )

    def _feed(self, archived: list[Archived]) -> bytes:
        from lxml import etree

        from .. import __version__
        from ..digest.render import digest_subject
        from .feeds import GENERATOR_URI
        from .site import pages_words

        site = self.config.site
        atom = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})  # type: ignore[dict-item]
        atom.set("{http://www.w3.org/XML/1998/namespace}lang", site.language)

        def add(parent: etree._Element, name: str, text: str = "", **attrs: str) -> None:
            child = etree.SubElement(parent, f"{{{ATOM_NS}}}{name}", attrs)
            child.text = text or None

        add(atom, "id", self.store.feed_id("digests", self.now))
        add(atom, "title", f"{site.title}: {pages_words().digests_heading}")
        add(atom, "updated", archived[0].record.created.isoformat())
        author = etree.SubElement(atom, f"{{{ATOM_NS}}}author")
        add(author, "name", site.author)
        add(atom, "link", rel="self", type="application/atom+xml", href=self.base + FEED)
        add(atom, "link", rel="alternate", type="text/html", href=self.base + INDEX)
        add(atom, "generator", "iomfeed", uri=GENERATOR_URI, version=__version__)
        for one in archived:
            content, items = self._content(one)
            for code in self.config.digest.languages:
                entry = etree.SubElement(atom, f"{{{ATOM_NS}}}entry")
                entry.set("{http://www.w3.org/XML/1998/namespace}lang", code)
                add(entry, "id", self.store.entry_id(f"digest/{one.record.id}/{code}", self.now))
                add(entry, "title", digest_subject(content, code, self.config))
                add(entry, "updated", one.record.created.isoformat())
                add(entry, "published", one.record.created.isoformat())
                href = self.base + page_path(one.stem, code)
                add(entry, "link", rel="alternate", type="text/html", hreflang=code, href=href)
                add(entry, "summary", " · ".join(i.title for i in items) or "-")
        data: bytes = etree.tostring(
            atom, xml_declaration=True, encoding="UTF-8", pretty_print=True
        )
        return data
