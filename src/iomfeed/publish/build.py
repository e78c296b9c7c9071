"""Decide what to publish from the store, render it, and write only what changed.

Files, relative to ``publish.folder``:

* ``atom.xml``, ``rss.xml``, ``feed.json``: the newest ``max_items`` items;
* ``category/<slug>/...`` and ``source/<name>/...``: the same three per category / source;
* ``archive/YYYY-MM.xml``: RFC 5005 archives (Atom), one per month of publication, holding
  every item that is no longer in the subscription feed, each linking to the one before;
  so the subscription feed plus its archives hold every item exactly once;
* ``index.html``: the latest items and the subscribe links.

An archive page is rendered only when its fingerprint (its items' ids, content hashes and
update times, its neighbours and the settings it shows) differs from the one recorded when it
was last written: a rebuild after one new item touches the subscription feeds and one archive
page, whatever the size of the store.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .. import __version__
from ..config import Config
from ..errors import PublishError
from ..files import write_if_changed
from ..models import FeedDoc, PublishReport, StoredItem
from ..store import Store
from .feeds import render_atom, render_json, render_rss
from .site import FeedLink, render_index

log = logging.getLogger(__name__)

#: Bump when the rendering of archive pages changes, so that they are all written again.
RENDER_VERSION = "1"


@dataclass(frozen=True, slots=True)
class ArchivePage:
    month: str  # YYYY-MM
    ids: tuple[str, ...]
    rows_hash: str

    @property
    def path(self) -> str:
        return f"archive/{self.month}.xml"


def slug(text: str) -> str:
    """A path segment for a category or source name ("Local" -> "local")."""
    import unicodedata

    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-") or "other"


def plan_archives(rows: Iterable[tuple[str, str, str, str]]) -> list[ArchivePage]:
    """Group (id, local published, content hash, updated) rows by month, newest month first."""
    months: dict[str, list[tuple[str, str, str]]] = {}
    for item_id, published, digest, updated in rows:
        months.setdefault(published[:7], []).append((item_id, digest, updated))
    pages = []
    for month in sorted(months, reverse=True):
        entries = months[month]
        rows_hash = hashlib.sha256(repr(entries).encode("utf-8")).hexdigest()
        pages.append(ArchivePage(month, tuple(e[0] for e in entries), rows_hash))
    return pages


class Publisher:
    """One publishing pass over a store into a folder."""

    def __init__(self, config: Config, store: Store, now: datetime) -> None:
        self.config = config
        self.store = store
        self.now = now
        self.folder = config.feeds_path
        base = config.site.public_url
        self.base = base if base.endswith("/") else base + "/"
        self.written: list[str] = []
        self.unchanged = 0

    def url(self, path: str) -> str:
        return self.base + path

    def _write(self, path: str, data: bytes) -> None:
        if write_if_changed(self.folder / path, data):
            self.written.append(path)
            log.debug("wrote %s", path)
        else:
            self.unchanged += 1

    def _doc(self, key: str, prefix: str, title: str, items: list[StoredItem],
             **extra: object) -> FeedDoc:
        site = self.config.site
        return FeedDoc(
            key=key,
            title=title,
            description=f"News from {site.author}, published by iomfeed.",
            feed_id=self.store.feed_id(key, self.now),
            atom_url=self.url(prefix + "atom.xml"),
            rss_url=self.url(prefix + "rss.xml"),
            json_url=self.url(prefix + "feed.json"),
            home_url=site.home_url,
            index_url=self.url("index.html"),
            language=site.language,
            author=site.author,
            items=tuple(items),
            updated=max(i.updated for i in items),
            hub=site.websub_hub,
            **extra,  # type: ignore[arg-type]
        )

    def _feed_set(self, doc: FeedDoc, prefix: str) -> None:
        self._write(prefix + "atom.xml", render_atom(doc))
        self._write(prefix + "rss.xml", render_rss(doc))
        self._write(prefix + "feed.json", render_json(doc))

    def run(self) -> PublishReport:
        cfg = self.config.publish
        site = self.config.site
        newest = self.store.items(limit=cfg.max_items)
        if not newest:
            log.warning("the store has no items yet: nothing published (run 'iomfeed fetch')")
            return PublishReport((), 0)
        archives = plan_archives(self.store.item_index()[cfg.max_items:]) if cfg.archives \
            else []
        main = self._doc("main", "", site.title, newest,
                         prev_archive=self.url(archives[0].path) if archives else "")
        self._feed_set(main, "")
        links = [FeedLink("All news", main.atom_url, main.rss_url, main.json_url)]
        groups: list[tuple[str, str, list[StoredItem]]] = []
        if cfg.by_category:
            for category in self.store.categories():
                items = self.store.items_in_category(category, limit=cfg.max_items)
                groups.append((f"category/{slug(category)}", f"{site.title}: {category}", items))
        if cfg.by_source:
            for source in self.store.sources():
                items = self.store.items(source=source, limit=cfg.max_items)
                groups.append((f"source/{slug(source)}", f"{site.title} ({source})", items))
        for key, title, items in groups:
            doc = self._doc(key, key + "/", title, items)
            self._feed_set(doc, key + "/")
            links.append(FeedLink(title.removeprefix(f"{site.title}: "), doc.atom_url,
                                  doc.rss_url, doc.json_url))
        for n, page in enumerate(archives):
            older = archives[n + 1] if n + 1 < len(archives) else None
            self._archive(page, older, main)
        self._write("index.html", render_index(
            title=site.title, description=main.description, language=site.language,
            home_url=site.home_url, feeds=links, items=newest, updated=main.updated))
        return PublishReport(tuple(self.written), self.unchanged)

    def _archive(self, page: ArchivePage, older: ArchivePage | None, main: FeedDoc) -> None:
        prev = self.url(older.path) if older else ""
        site = self.config.site
        fingerprint = hashlib.sha256("\x1f".join((
            RENDER_VERSION, __version__, page.rows_hash, prev, main.feed_id, main.atom_url,
            site.title, site.author, site.language, site.home_url, site.websub_hub,
        )).encode("utf-8")).hexdigest()
        if self.store.fingerprint(page.path) == fingerprint and (self.folder / page.path).exists():
            self.unchanged += 1
            return
        items = self.store.items_by_id(list(page.ids))
        doc = FeedDoc(
            key=f"archive/{page.month}",
            title=f"{site.title}: archive {page.month}",
            description=f"Items published in {page.month}.",
            feed_id=main.feed_id,  # one logical feed (RFC 5005)
            atom_url=self.url(page.path),
            rss_url="",
            json_url="",
            home_url=site.home_url,
            index_url=main.index_url,
            language=site.language,
            author=site.author,
            items=tuple(items),
            updated=max(i.updated for i in items),
            hub="",
            prev_archive=prev,
            current_url=main.atom_url,
            is_archive=True,
        )
        self._write(page.path, render_atom(doc))
        self.store.save_fingerprint(page.path, fingerprint)


def publish_all(config: Config, store: Store, *, now: datetime) -> PublishReport:
    """Write every feed, archive and the index; raises PublishError if a write fails."""
    try:
        return Publisher(config, store, now).run()
    except PublishError:
        raise
    except OSError as exc:  # pragma: no cover - write_if_changed wraps the expected ones
        raise PublishError(f"{config.feeds_path}: {exc}") from exc
