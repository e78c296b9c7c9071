"""Records by direction on the fetch path: a source sees a read-only view of the store and
yields pages; the pipeline stores each page in one transaction."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import iomfeed.ingest
from iomfeed.config import Config
from iomfeed.demo.server import SnapshotServer
from iomfeed.http import HttpClient
from iomfeed.ingest import fetch_all
from iomfeed.intents import ItemIntent
from iomfeed.models import KnownItem, MissingArticle, StoredItem
from iomfeed.runtime import open_store
from iomfeed.sources import FetchContext, build_source, site_origins
from iomfeed.sources.records import SourcePage
from iomfeed.store import Store

from .conftest import NOW, fetch, local_config
from .test_source_feed import RSS, FeedSite, config_for


class EmptyView:
    """A store that holds nothing, as a source sees it: no database at all."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def known(self, url: str, *, filter_hash: str = "") -> KnownItem | None:
        self.asked.append(url)
        return None

    def missing_article(self, url: str) -> MissingArticle | None:
        return None

    def missing_due(self, source: str, now: datetime) -> list[MissingArticle]:
        return []

    def backfilled(self, source: str, filter_hash: str = "") -> bool:
        return False

    def recent(self, source: str, since: datetime) -> list[KnownItem]:
        return []

    def get(self, item_id: str) -> StoredItem | None:
        return None


def pages_of(config: Config, view: EmptyView) -> list[SourcePage]:
    src = config.sources[0]
    with HttpClient(config.http) as http:
        ctx = FetchContext(config, src, http, view, NOW, site_origins(config))
        return list(build_source(src).fetch(ctx))


@pytest.mark.network
def test_the_html_source_yields_one_page_per_listing_page_and_the_listing_validators_last(
    server: SnapshotServer, tmp_path: Path
) -> None:
    config = local_config(server.origin, tmp_path)
    src = dataclasses.replace(config.sources[0], max_pages=2, recheck_days=0)
    config = dataclasses.replace(config, sources=(src,))
    view = EmptyView()
    pages = pages_of(config, view)
    listing, articles, done, seen = pages[:2], pages[2:-2], pages[-2], pages[-1]
    assert [len(p.items) for p in listing] == [10, 10]
    for page in listing:  # each article's validators travel with the page that brought it
        assert {v.url for v in page.validators} == {i.base_url for i in page.items}
    assert articles == [SourcePage(), SourcePage()]  # nothing to retry, nothing to recheck
    assert done.backfilled and not done.items  # two pages were all it may read
    assert [urlsplit(v.url).path for v in seen.validators] == ["/news", "/news"]
    assert urlsplit(seen.validators[1].url).query  # the second listing page
    assert not seen.items and len(view.asked) == 20
    assert not config.database_path.exists()  # no store was opened


def test_a_run_killed_mid_page_keeps_nothing_of_that_page_and_the_next_refetches_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = FeedSite({"/rss.xml": RSS})
    config = config_for(tmp_path, site.url("/rss.xml"))
    applied: list[ItemIntent] = []
    real_apply = iomfeed.ingest.apply_item

    def dies_on_the_second(store: Store, intent: ItemIntent, now: datetime) -> str:
        if applied:
            raise KeyboardInterrupt  # stands for SIGKILL between two items of one page
        applied.append(intent)
        return real_apply(store, intent, now)

    monkeypatch.setattr(iomfeed.ingest, "apply_item", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        fetch(config, transport=site.transport)
    with open_store(config) as store:
        assert applied and store.count() == 0  # the first item went with the page
        assert store.get_validators(site.url("/rss.xml")) == (None, None)
    monkeypatch.setattr(iomfeed.ingest, "apply_item", real_apply)
    report = fetch(config, transport=site.transport)
    assert report.sources[0].new == 3
    assert "If-None-Match" not in site.transport.requests[-1].headers  # fetched afresh
    with open_store(config) as store:
        assert store.get_validators(site.url("/rss.xml"))[0]  # now kept, with its items


def test_a_stop_mid_page_keeps_the_items_stored_but_not_the_page_as_seen(
    tmp_path: Path,
) -> None:
    site = FeedSite({"/rss.xml": RSS})
    config = config_for(tmp_path, site.url("/rss.xml"))
    read: list[int] = []
    with (
        open_store(config) as store,
        HttpClient(config.http, validators=store, transport=site.transport) as http,
    ):
        report = fetch_all(
            config,
            store=store,
            http=http,
            now=lambda: NOW,
            stop=lambda: len(read) > 1,
            on_item=lambda: read.append(1),
        )
        assert store.count() == 1 and "stopped early on request" in report.sources[0].warnings
        assert store.get_validators(site.url("/rss.xml")) == (None, None)
    again = fetch(config, transport=site.transport).sources[0]
    assert (again.not_modified, again.new, again.duplicates + again.updated) == (0, 2, 0)


def test_every_kind_the_config_accepts_is_declared_in_the_registry_once() -> None:
    from typing import get_args

    from iomfeed.config import SourceKind
    from iomfeed.sources import KINDS, source_ranks

    assert set(KINDS) == set(get_args(SourceKind))
    ranks = [k.rank for k in KINDS.values()]
    assert len(set(ranks)) == len(ranks)  # a tie between kinds would be decided by run order
    config = local_config("http://127.0.0.1:9", Path("."))
    assert source_ranks(config) == {"iom-albania": KINDS["html"].rank}
    html = config.sources[0]
    more = (
        dataclasses.replace(html, name="mirror", url="https://mirror.example.org/news"),
        dataclasses.replace(html, name="feed", kind="feed", url="https://feeds.example.net/rss"),
    )
    config = dataclasses.replace(config, sources=(html, *more))
    # The sites of html sources are ours (http and https the same pages); a feed's is not.
    assert [o.host for o in site_origins(config)] == ["127.0.0.1", "mirror.example.org"]
    assert source_ranks(config) == {"iom-albania": 3, "mirror": 3, "feed": 2}
