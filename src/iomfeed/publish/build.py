"""Decide what to publish from the store, render it, and write only what changed.

Files, relative to ``publish.folder``:

* ``atom.xml``, ``rss.xml``, ``feed.json``: the newest ``max_items`` items;
* ``category/<slug>/...`` and ``source/<name>/...``: the same three per category / source;
* ``archive/YYYY-MM.xml``: RFC 5005 archives (Atom), one per month of publication, holding
  every item that is no longer in the subscription feed, each linking to the one before;
  so the subscription feed plus its archives hold every item exactly once;
* ``months/YYYY-MM.html``: one HTML page per month holding a story older than those on
  the index (every story of that month), linked from the index and to its neighbours;
* ``digests/...``: every digest that went out, a page per language, their index and an
  Atom feed (:mod:`.digests`);
* ``index.html``: the newest ``index_items`` items, the subscribe links, the month pages
  and the digest archive.

A file is rendered only when its fingerprint (what it shows: its items but when they were
seen, its neighbours, the settings it shows) differs from the one recorded when it was last
written, or the file on disk is not the one written: a rebuild after one new item touches the
subscription feeds the item is in, one archive page and the index, whatever the size of the
store. The fingerprints of the subscription feeds, the index and the month pages also hold
a hash of the rendering code (:func:`.fingerprints.code_digest`), those of the index and the
month pages the templates' and the built-in words, and those of the feeds and the index
iomfeed's release; archive pages change only with :data:`RENDER_VERSION`. A publish that
renders nothing imports neither feedgen nor Jinja2; ``render_all`` renders every file again.

No pass reads every item. The plan comes from the newest rows (those the feeds and the index
show) and one summary row per month of publication (``Store.item_months``: its count of items
and a count of changes that every insert, edit or removal in it moves, kept by triggers). A
month the subscription feed does not reach into is told unchanged by its summary row alone;
the one or two it reaches into are planned from their own rows; a page's items are read only
when it is rendered.

All or nothing: every changed file is first written to a temporary file beside it, and only
when all of them were written are they renamed into place (``files.FileSet``), so a failed
publish (a full disk, a size limit) replaces nothing and a reader never sees category feeds
newer than ``atom.xml``. The renames keep an order that suits readers who fetch meanwhile:
archive pages first (oldest first), then the category and source feeds, then the main feeds
that link to the archives, then the index. Every generated file is recorded in the store; one
no longer generated (a category gone, an archive month emptied) is removed after a
successful pass. Archive pages are not strictly immutable: the newest month grows as items
leave the subscription feed, and a story found late joins the month it was published in.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from .. import __version__
from ..config import Config
from ..errors import PublishError
from ..files import FileSet, remove_leftovers
from ..models import PublishReport, StoredItem
from ..output_records import FeedDoc
from ..store import IndexEntry, PublishedFile, Store
from ..template_cache import template_cache
from . import fingerprints
from .digests import INDEX as DIGESTS_INDEX
from .digests import DigestArchive
from .feeds import render_atom, render_json, render_rss
from .plan import ArchivePage, plan_after, plan_archives, plan_months, slug, unique_slugs
from .site import (
    PAGES_LANGUAGE,
    FeedLink,
    MonthLink,
    forms_words,
    pages_words,
    render_index,
    render_month,
    templates_digest,
)

if TYPE_CHECKING:
    from jinja2 import BytecodeCache

__all__ = [
    "SUBSCRIPTION_FILES",
    "ArchivePage",
    "Publisher",
    "plan_after",
    "plan_archives",
    "plan_months",
    "publish_all",
    "slug",
    "unique_slugs",
]

log = logging.getLogger(__name__)

#: Bump when the rendering of archive pages changes, so that they are all written again.
RENDER_VERSION = "2"
SUBSCRIPTION_FILES = ("atom.xml", "rss.xml", "feed.json")
FEED_DESCRIPTION = "News from {author}."
INDEX_DESCRIPTION = "News stories from {author}, newest first, with Atom, RSS and JSON feeds."


class Publisher:
    """One publishing pass over a store into a folder."""

    def __init__(
        self,
        config: Config,
        store: Store,
        now: datetime,
        *,
        feeds: bool = True,
        render_all: bool = False,
    ) -> None:
        self.config = config
        self.render_all = render_all  # no file kept by its fingerprint
        self.store = store
        self.now = now
        # False: only the digest archive and the index are rendered; the caller knows that
        # every other file is what the last publish wrote from the same inputs.
        self.feeds = feeds
        self.folder = config.feeds_path
        base = config.site.public_url
        self.base = base if base.endswith("/") else base + "/"
        self.written: list[str] = []
        self.produced: set[str] = set()
        self.fingerprints: dict[str, str] = {}  # path -> what to record once in place
        self.unchanged = 0
        self.files = FileSet()
        self._recorded: dict[str, PublishedFile] | None = None
        self._last_month: tuple[str, list[StoredItem]] | None = None  # see _page_items

    @functools.cached_property
    def cache(self) -> BytecodeCache | None:
        """The pages' template cache, opened when a page is rendered (it imports Jinja2)."""
        return template_cache(self.config, "pages")

    def url(self, path: str) -> str:
        return self.base + path

    def _write(self, path: str, data: bytes, fingerprint: str = "") -> None:
        """Stage ``path`` (when its bytes changed); :meth:`_commit` puts every staged file
        in place once all of them were written."""
        self.produced.add(path)
        self.fingerprints[path] = fingerprint or hashlib.sha256(data).hexdigest()
        if self.files.stage(self.folder / path, data):
            self.written.append(path)
        else:
            self.unchanged += 1

    def _commit(self) -> None:
        for path in self.written:
            if self.config.site.websub_hub and path.rsplit("/", 1)[-1] in SUBSCRIPTION_FILES:
                # Remembered before the renames: a run killed right after them, or failing
                # later, still announces the feed next time. (A commit that fails leaves the
                # ping pending for a feed that did not change: a hub fetches it for nothing.)
                self.store.set_ping_pending(self.url(path), True, self.now)
        self.files.commit()
        for path in self.written:
            log.debug("wrote %s", path)
        for path, fingerprint in self.fingerprints.items():
            stat = (self.folder / path).stat()
            self.store.record_published(path, fingerprint, stat.st_size, stat.st_mtime_ns)

    def _doc(
        self, key: str, prefix: str, title: str, items: list[StoredItem], **extra: object
    ) -> FeedDoc:
        site = self.config.site
        return FeedDoc(
            key=key,
            title=title,
            description=FEED_DESCRIPTION.format(author=site.author),
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
        """Its Atom, RSS and JSON files; rendered only when what they show changed, or one
        of them is not, untouched, what was written."""
        if not self.feeds:
            return
        marks = fingerprints.feed_set(doc, __version__)
        paths = [prefix + name for name in SUBSCRIPTION_FILES]
        if all(self._still_there(path, marks) for path in paths):
            self.produced.update(paths)
            self.unchanged += len(paths)
            return
        for path, render in zip(paths, (render_atom, render_rss, render_json), strict=True):
            self._write(path, render(doc), marks)

    def run(self) -> PublishReport:
        with self.files:  # an error on the way removes what was staged
            return self._run()

    def _run(self) -> PublishReport:
        cfg = self.config.publish
        site = self.config.site
        if remove_leftovers(self.folder):
            log.info("removed temporary files left by an interrupted run in %s", self.folder)
        newest = self.store.items(limit=cfg.max_items)
        if not newest:
            log.warning("the store has no items yet: nothing published (run 'iomfeed fetch')")
            return PublishReport((), 0)
        # The newest rows and one summary row per month: never every item (see the
        # module docstring).
        head = self.store.item_index(limit=max(cfg.max_items, cfg.index_items))
        by_month = plan_months(self.store.item_months())
        archives = self._archives(head, by_month) if cfg.archives else []
        main = self._doc(
            "main",
            "",
            site.title,
            newest,
            prev_archive=self.url(archives[0].path) if archives else "",
        )
        # Oldest archive first: each page's prev-archive exists before the page is written.
        for n in reversed(range(len(archives))):
            older = archives[n + 1] if n + 1 < len(archives) else None
            self._archive(archives[n], older, main)
        links = [FeedLink("All news", main.atom_url, main.rss_url, main.json_url)]
        for key, title, label, items in self._groups():
            doc = self._doc(key, key + "/", title, items)
            self._feed_set(doc, key + "/")
            links.append(FeedLink(label, doc.atom_url, doc.rss_url, doc.json_url))
        self._feed_set(main, "")
        digests = DigestArchive(self.config, self.store, self.now, self._keep_or_write)
        archive = DIGESTS_INDEX if digests.publish() else ""
        months = self._month_pages(head, by_month, links[0])
        self._index(newest, links, main.updated, months, archive)
        self._commit()
        if self.feeds:
            self._remove_stale()
        return PublishReport(tuple(self.written), self.unchanged)

    def _archives(self, head: list[IndexEntry], by_month: list[ArchivePage]) -> list[ArchivePage]:
        """The archive pages, newest first: the months the subscription feed reaches into
        (the newest one or two) from their rows, every older month from its summary."""
        start = self.config.publish.max_items
        in_feed = {row.id for row in head[:start]}
        split = sorted({row.published[:7] for row in head[:start]}, reverse=True)
        rest = [r for month in split for r in self.store.month_index(month) if r.id not in in_feed]
        return plan_after(head[:start] + rest, by_month, start)

    def _groups(self) -> list[tuple[str, str, str, list[StoredItem]]]:
        """The feeds by category and by source that are configured: (key, feed title, label
        on the index, items) each."""
        cfg = self.config.publish
        site = self.config.site
        groups: list[tuple[str, str, str, list[StoredItem]]] = []
        if cfg.by_category:
            categories = self.store.categories()
            for category, segment in unique_slugs(categories).items():
                items = self.store.items_in_category(category, limit=cfg.max_items)
                groups.append((f"category/{segment}", f"{site.title}: {category}", category, items))
        if cfg.by_source:
            for source, segment in unique_slugs(self.store.sources()).items():
                items = self.store.items(source=source, limit=cfg.max_items)
                groups.append(
                    (f"source/{segment}", f"{site.title}: from {source}", f"From {source}", items)
                )
        return groups

    def _index(
        self,
        newest: list[StoredItem],
        links: list[FeedLink],
        updated: datetime,
        months: list[MonthLink],
        archive: str,
    ) -> None:
        """Write ``index.html``: the feeds, the newest stories, the month pages, the
        digest archive (``archive``: its index, or "" while no digest went out) and the
        sign-up form (no form token: see the README's "The web forms")."""
        from ..forms import sign_up_view

        cfg = self.config.publish
        site = self.config.site
        items = (
            newest[: cfg.index_items]
            if cfg.index_items <= cfg.max_items
            else self.store.items(limit=cfg.index_items)
        )
        description = INDEX_DESCRIPTION.format(author=site.author)
        form = sign_up_view(
            self.config, action=urljoin(site.public_url, "subscribe"), lang=PAGES_LANGUAGE
        )
        marks = fingerprints.fingerprint(
            fingerprints.PAGES_VERSION,
            __version__,
            fingerprints.code_digest(),
            templates_digest(),
            (site.title, description, site.language, site.home_url, site.author),
            (links, updated, months, archive, fingerprints.record_values(form)),
            # The built-in words of the page and of its form (a developer may edit them).
            (pages_words(), forms_words()),
            fingerprints.shown(items),
        )

        def render() -> bytes:
            return render_index(
                title=site.title,
                description=description,
                language=site.language,
                home_url=site.home_url,
                author=site.author,
                feeds=links,
                items=items,
                updated=updated,
                months=months,
                digests=archive,
                form=form,
                cache=self.cache,
            )

        self._keep_or_write("index.html", marks, render)

    def _remove_stale(self) -> None:
        """Delete generated files this pass no longer produces (and only those)."""
        for path in self.store.published_paths():
            if path in self.produced:
                continue
            target = self.folder / path
            try:
                target.unlink()
                log.info("removed %s, no longer published", path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise PublishError(f"{target}: could not be removed: {exc}") from exc
            self.store.forget_published(path)
            self.written.append(path)

    def _month_pages(
        self, head: list[IndexEntry], by_month: list[ArchivePage], feed: FeedLink
    ) -> list[MonthLink]:
        """Write one page per month that holds a story not on ``index.html`` (each with
        every story of its month); returns them, newest first, for the index to link.
        ``head``: the newest rows, at least those on the index."""
        on_index = Counter(row.published[:7] for row in head[: self.config.publish.index_items])
        pages = [p for p in by_month if p.count > on_index[p.month]]
        links = [MonthLink(p.month, p.count) for p in pages]
        site = self.config.site
        shared = fingerprints.month_pages(site, feed)
        for n, page in enumerate(pages if self.feeds else ()):
            newer = links[n - 1] if n > 0 else None
            before = links[n + 1] if n + 1 < len(links) else None
            fingerprint = hashlib.sha256(
                "\x1f".join(
                    (
                        shared,
                        page.rows_hash,
                        newer.month if newer else "",
                        before.month if before else "",
                    )
                ).encode("utf-8")
            ).hexdigest()
            path = links[n].path
            if self._still_there(path, fingerprint):
                self.produced.add(path)
                self.unchanged += 1
                continue
            self._write(
                path,
                render_month(
                    title=site.title,
                    language=site.language,
                    home_url=site.home_url,
                    author=site.author,
                    feeds=[feed],
                    month=links[n],
                    items=self._page_items(page),
                    newer=newer,
                    older=before,
                    cache=self.cache,
                ),
                fingerprint,
            )
        return links

    def _archive(self, page: ArchivePage, older: ArchivePage | None, main: FeedDoc) -> None:
        if not self.feeds:
            return
        prev = self.url(older.path) if older else ""
        site = self.config.site
        fingerprint = hashlib.sha256(
            "\x1f".join(
                (
                    RENDER_VERSION,
                    page.rows_hash,
                    prev,
                    main.feed_id,
                    main.atom_url,
                    site.title,
                    site.author,
                    site.language,
                    site.home_url,
                )
            ).encode("utf-8")
        ).hexdigest()
        if self._still_there(page.path, fingerprint):
            self.produced.add(page.path)
            self.unchanged += 1
            return
        items = self._page_items(page)
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
            hub="",  # archives do not change in ways worth a push
            prev_archive=prev,
            current_url=main.atom_url,
            is_archive=True,
        )
        self._write(page.path, render_atom(doc), fingerprint)

    def _page_items(self, page: ArchivePage) -> list[StoredItem]:
        """The items of an archive or month page, newest first. The month read last is
        kept: the newest archive page is rendered last and its month page first, and a
        month of an undated backfill holds thousands of stories (kept one month at a
        time, so that rendering every page holds no more)."""
        kept = self._last_month
        if kept is not None and kept[0] == page.month:
            items = kept[1]
        else:  # (a page with ids is of a month the feed reaches into: the rest of it, at
            # most the feed's length, is read too)
            items = self.store.items_in_month(page.month)
            self._last_month = (page.month, items)
        if page.ids is None:
            return items
        wanted = set(page.ids)
        return [item for item in items if item.id in wanted]

    def _keep_or_write(self, path: str, fingerprint: str, render: Callable[[], bytes]) -> None:
        """Keep ``path`` when it is what ``fingerprint`` made, else stage ``render()``."""
        if self._still_there(path, fingerprint):
            self.produced.add(path)
            self.unchanged += 1
        else:
            self._write(path, render(), fingerprint)

    def _still_there(self, path: str, fingerprint: str) -> bool:
        """Whether ``path`` is, untouched, what was written from the same inputs."""
        if self.render_all:
            return False
        if self._recorded is None:  # one query for every file, not one per page
            self._recorded = self.store.published_files()
        recorded = self._recorded.get(path)
        if recorded is None or recorded[0] != fingerprint:
            return False
        try:
            stat = (self.folder / path).stat()
        except FileNotFoundError:
            return False
        return (stat.st_size, stat.st_mtime_ns) == recorded[1:]


def publish_all(
    config: Config, store: Store, *, now: datetime, feeds: bool = True, render_all: bool = False
) -> PublishReport:
    """Write every feed, archive and the index; raises PublishError if a write fails.
    ``feeds=False``: only the digest archive and the index (the caller knows that nothing
    else a publish reads changed since the last one, whose files are intact).
    ``render_all``: every file rendered, also those whose fingerprint is the recorded one
    (a file whose bytes come out the same is still left alone)."""
    try:
        return Publisher(config, store, now, feeds=feeds, render_all=render_all).run()
    except PublishError:
        raise
    except OSError as exc:  # pragma: no cover - write_if_changed wraps the expected ones
        raise PublishError(f"{config.feeds_path}: {exc}") from exc
