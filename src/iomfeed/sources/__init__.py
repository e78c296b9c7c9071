"""Sources: where items come from. One narrow interface, chosen by ``kind`` in the config.

A source is an object with ``name`` and ``fetch(ctx) -> Iterator[Item]``. It yields items as
it finds them; the pipeline normalises and stores each one before asking for the next, so code a
source runs after a ``yield`` sees the item stored (that is where it remembers HTTP validators:
a page is marked as seen only once what it brought is safe). A source raises
:class:`~iomfeed.errors.SourceError` when it cannot do its job; it never touches another
source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from ..config import Config, FilterConfig, SourceConfig
from ..models import Item, KnownItem, Response
from ..normalize import Origin, canonical_url

if TYPE_CHECKING:
    from ..http import HttpClient
    from ..store import Store


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
    store: Store
    now: datetime
    origins: tuple[Origin, ...]
    stats: SourceStats = field(default_factory=SourceStats)

    def canonical(self, url: str) -> str:
        return canonical_url(url, self.origins)

    def known(self, url: str) -> KnownItem | None:
        """The stored item behind ``url`` (any of its addresses), if any."""
        return self.store.known(self.canonical(url), filter_hash=filter_hash(self.source.filter))

    def remember(self, response: Response) -> None:
        """Keep the validators of a page whose content is now safely stored."""
        if response.status == 200:
            self.store.save_validators(
                response.final_url, response.etag, response.last_modified, self.now
            )

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

    def fetch(self, ctx: FetchContext) -> Iterator[Item]: ...


def _html(cfg: SourceConfig) -> Source:
    from .html import HtmlSource

    return HtmlSource(cfg)


def _feed(cfg: SourceConfig) -> Source:
    from .feed import FeedSource

    return FeedSource(cfg)


def _json(cfg: SourceConfig) -> Source:
    from .json import JsonSource

    return JsonSource(cfg)


#: ``kind`` in the config -> the class that reads it (imported only when used).
REGISTRY: dict[str, Callable[[SourceConfig], Source]] = {
    "html": _html,
    "feed": _feed,
    "json": _json,
}


def build_source(cfg: SourceConfig) -> Source:
    return REGISTRY[cfg.kind](cfg)
