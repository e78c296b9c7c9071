"""Sources: where items come from. One narrow interface, chosen by ``kind`` in the config.

A source is an object with ``name`` and ``fetch(ctx) -> Iterator[SourcePage]``. It never
touches the store: it reads what is stored through ``ctx.stored`` (a read-only
:class:`~iomfeed.sources.records.StoredView`) and yields what it saw, one
:class:`~iomfeed.sources.records.SourcePage` at a time (items, the validators of the pages they
came from, 404s). The pipeline decides and stores each page, in one transaction, before asking
for the next one. A source raises :class:`~iomfeed.errors.SourceError` when it cannot do its
job; it never touches another source.

Each kind is declared once, in :data:`KINDS`: how to build it, its rank when two sources give
the same story, whether it reads a URL or a local path, whether its site is one of the
configured origins, its own config checks and its ``check --live`` report. A new kind is a
module here, one entry in :data:`KINDS` and its name in ``config.SourceKind``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol, TextIO

from ..config import Config, FilterConfig, SourceConfig
from ..models import KnownItem
from ..normalize.urls import Origin, canonical_url
from .records import SourcePage, StoredView

if TYPE_CHECKING:
    from ..http import HttpClient


@dataclass(slots=True)
class SourceStats:
    """Counters a source fills in while it works (pages fetched, 304s, warnings)."""

    pages: int = 0
    not_modified: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FetchContext:
    """What a source may use: the HTTP client, read access to what is stored, the time."""

    config: Config
    source: SourceConfig
    http: HttpClient
    stored: StoredView
    now: datetime
    origins: tuple[Origin, ...]
    stats: SourceStats = field(default_factory=SourceStats)

    def canonical(self, url: str) -> str:
        return canonical_url(url, self.origins)

    def known(self, url: str) -> KnownItem | None:
        """The stored item behind ``url`` (any of its addresses), if any."""
        return self.stored.known(self.canonical(url), filter_hash=filter_hash(self.source.filter))

    def warn(self, message: str) -> None:
        self.stats.warnings.append(message)


def passes_filter(title: str, categories: tuple[str, ...], cfg: FilterConfig) -> bool:
    """Keep an item if it matches an include pattern (when any) and no exclude pattern.

    Patterns are case-insensitive regular expressions, searched in the title and categories.
    """
    texts = (title, *categories)

    def matches(patterns: tuple[str, ...]) -> bool:
        return any(re.search(p, t, re.IGNORECASE) for p in patterns for t in texts)

    if cfg.include and not matches(cfg.include):
        return False
    return not (cfg.exclude and matches(cfg.exclude))


def filter_hash(cfg: FilterConfig) -> str:
    """A fingerprint of a filter: change the filter and what it left out is looked at again."""
    import hashlib

    text = "\x1f".join((*cfg.include, "\x1e", *cfg.exclude))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Source(Protocol):
    name: str

    def fetch(self, ctx: FetchContext) -> Iterator[SourcePage]: ...


#: ``check --live``: fetch a little of the source and say what was found; True when good.
LiveCheck = Callable[[Config, SourceConfig, "HttpClient", TextIO], bool]


@dataclass(frozen=True, slots=True)
class Kind:
    """Everything iomfeed knows of one ``kind`` of source, outside the source itself."""

    build: Callable[[SourceConfig], Source]
    #: When two sources give the same URL, the higher rank's content is kept.
    rank: int
    #: What the config must give it: a ``url`` to fetch or a local ``path`` to read.
    reads: Literal["url", "path"]
    #: Whether its ``url``'s site is one of ours (its http and https addresses are the same).
    site_origin: bool
    live_check: LiveCheck
    #: Further config checks of its own: (source config, its key such as "sources[0]").
    check: Callable[[SourceConfig, str], None] | None = None


def _html(cfg: SourceConfig) -> Source:
    from .html import HtmlSource

    return HtmlSource(cfg)


def _feed(cfg: SourceConfig) -> Source:
    from .feed import FeedSource

    return FeedSource(cfg)


def _json(cfg: SourceConfig) -> Source:
    from .json import JsonSource

    return JsonSource(cfg)


def _html_live(config: Config, src: SourceConfig, http: HttpClient, out: TextIO) -> bool:
    from .html_live import check_live

    return check_live(config, src, http, out)


def _feed_live(config: Config, src: SourceConfig, http: HttpClient, out: TextIO) -> bool:
    from .feed import check_live

    return check_live(config, src, http, out)


def _json_live(config: Config, src: SourceConfig, http: HttpClient, out: TextIO) -> bool:
    from .json import check_live

    return check_live(config, src, http, out)


def _check_html(src: SourceConfig, key: str) -> None:
    from ..errors import ConfigError

    for sub in ("item", "title", "link"):
        if not getattr(src.listing, sub):
            raise ConfigError(f"{key}.listing.{sub}: required for kind = 'html'")
    if src.follow_articles and not src.article.body:
        raise ConfigError(f"{key}.article.body: required when follow_articles = true")


#: ``kind`` in the config -> what it is (its module is imported only when used). Ranks: the
#: article page scraped from the site beats a feed's copy, which beats a hand-written record.
KINDS: dict[str, Kind] = {
    "html": Kind(_html, 3, "url", True, _html_live, _check_html),
    "feed": Kind(_feed, 2, "url", False, _feed_live),
    "json": Kind(_json, 1, "path", False, _json_live),
}


def build_source(cfg: SourceConfig) -> Source:
    return KINDS[cfg.kind].build(cfg)


def check_source_config(src: SourceConfig, key: str) -> None:
    """What each kind needs in its config (url or path, and its own checks)."""
    from ..errors import ConfigError

    kind = KINDS[src.kind]
    if kind.reads == "url" and not src.url:
        raise ConfigError(f"{key}.url: required for kind = {src.kind!r}")
    if kind.reads == "path" and not src.path:
        raise ConfigError(f"{key}.path: required for kind = {src.kind!r}")
    if kind.reads != "path" and src.path:
        readers = " or ".join(repr(name) for name, k in KINDS.items() if k.reads == "path")
        raise ConfigError(f"{key}.path: only for kind = {readers} (use url)")
    if kind.check is not None:
        kind.check(src, key)


def source_ranks(config: Config) -> dict[str, int]:
    """Each configured source's rank, by name."""
    return {s.name: KINDS[s.kind].rank for s in config.sources}


def site_origins(config: Config) -> tuple[Origin, ...]:
    """The sites whose http and https addresses are the same pages: the configured ones."""
    urls = [config.site.home_url] + [
        s.url for s in config.sources if KINDS[s.kind].site_origin and s.url
    ]
    seen: dict[str, Origin] = {}
    for url in urls:
        origin = Origin.of(url)
        seen.setdefault(origin.host, origin)
    return tuple(seen.values())
