"""The feed source: RSS and Atom ingested through the polite client, filtered, deduplicated."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from iomfeed.config import Config, load_config
from iomfeed.demo.server import SnapshotServer
from iomfeed.transport import Request
from iomfeed.transport.mock import MockTransport, Reply

from .conftest import fetch, stored

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>IOM news</title><link>https://www.iom.int/news</link>
<description>d</description>
<item><title>Returnees &amp; their families: a new start in Shkodër</title>
 <link>https://www.iom.int/news/returnees-families-new-start-shkoder?utm_source=rss</link>
 <description>&lt;p&gt;Summary with &lt;a href="/about"&gt;a relative link&lt;/a&gt;&lt;/p&gt;
 </description>
 <pubDate>Tue, 05 Mar 2024 10:00:00 +0100</pubDate><category>Albania</category>
 <media:content url="https://www.iom.int/img/a.jpg" medium="image"/></item>
<item><title>Sports results</title><link>https://www.iom.int/news/sports</link>
 <description>Not migration news</description><pubDate>Tue, 05 Mar 2024 11:00:00 +0100</pubDate>
 <category>Sport</category></item>
<item><title>Global report on mixed migration</title><link>https://www.iom.int/news/report</link>
 <pubDate>Wed, 06 Mar 2024 09:00:00 +0000</pubDate><category>Global</category></item>
</channel></rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id>
<updated>2024-03-06T09:00:00Z</updated>
<entry><title type="html">Atom &lt;i&gt;entry&lt;/i&gt;</title><id>urn:e1</id>
<link rel="alternate" href="https://www.iom.int/news/atom-entry"/>
<updated>2024-03-06T09:00:00Z</updated><published>2024-03-06T08:00:00Z</published>
<content type="html">&lt;p&gt;Body&lt;script&gt;alert(1)&lt;/script&gt;&lt;/p&gt;</content></entry>
</feed>
"""


@pytest.fixture
def feeds(tmp_path: Path) -> Iterator[SnapshotServer]:
    root = tmp_path / "feeds-site"
    root.mkdir()
    (root / "rss.xml").write_text(RSS, encoding="utf-8")
    (root / "atom.xml").write_text(ATOM, encoding="utf-8")
    with SnapshotServer(root) as srv:
        yield srv


def config_for(tmp_path: Path, url: str, extra: str = "", http: str = "") -> Config:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[http]\nmin_delay = 0.0\nbackoff = 0.01\n{http}[[sources]]\nname = "global"\n'
        f'kind = "feed"\nurl = "{url}"\n{extra}',
        encoding="utf-8",
    )
    return load_config(path)


@pytest.mark.network
def test_an_rss_feed_is_ingested_with_filter(feeds: SnapshotServer, tmp_path: Path) -> None:
    config = config_for(tmp_path, feeds.url("/rss.xml"), '[sources.filter]\nexclude = ["^sport"]\n')
    report = fetch(config)
    result = report.sources[0]
    assert result.ok, result.error
    assert (result.found, result.new) == (3, 2)
    assert result.filtered == 1
    items = {i.title: i for i in stored(config)}
    assert set(items) == {
        "Returnees & their families: a new start in Shkodër",
        "Global report on mixed migration",
    }
    first = items["Returnees & their families: a new start in Shkodër"]
    assert first.url == "https://www.iom.int/news/returnees-families-new-start-shkoder"
    assert first.published.isoformat() == "2024-03-05T10:00:00+01:00"  # in Europe/Tirane
    assert first.categories == ("Albania",)
    assert first.image_url == "https://www.iom.int/img/a.jpg"
    # Relative links in a feed resolve against the feed's own address (its xml:base).
    assert f'href="{feeds.url("/about")}"' in first.content_html


class FeedSite:
    """A site played by a MockTransport, in process: files by path, a strong ETag each and
    304s for a matching If-None-Match, no robots.txt (404), and replacement replies."""

    ORIGIN = "https://feeds.example.org"

    def __init__(self, files: dict[str, str]) -> None:
        self.files = dict(files)
        self.replace: dict[str, Reply | OSError] = {}
        self.transport = MockTransport(self.answer)

    def url(self, path: str) -> str:
        return self.ORIGIN + path

    def answer(self, request: Request) -> Reply:
        path = urlsplit(request.url).path
        if path in self.replace:
            reply = self.replace.pop(path)
            if isinstance(reply, OSError):
                raise reply
            return reply
        if path not in self.files:
            return Reply(404, b"not here")
        body = self.files[path].encode("utf-8")
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        if request.headers.get("If-None-Match") == etag:
            return Reply(304, headers={"ETag": etag})
        return Reply(
            200,
            body,
            {"Content-Type": "application/xml", "ETag": etag, "Content-Length": str(len(body))},
        )

    def paths(self) -> list[str]:
        return [urlsplit(r.url).path for r in self.transport.requests]


@pytest.fixture
def mock_feeds() -> FeedSite:
    return FeedSite({"/rss.xml": RSS, "/atom.xml": ATOM})


def test_include_filter_keeps_only_matches(mock_feeds: FeedSite, tmp_path: Path) -> None:
    config = config_for(
        tmp_path, mock_feeds.url("/rss.xml"), '[sources.filter]\ninclude = ["albania", "shkod"]\n'
    )
    fetch(config, transport=mock_feeds.transport)
    assert [i.title for i in stored(config)] == [
        "Returnees & their families: a new start in Shkodër"
    ]
    assert mock_feeds.paths() == ["/robots.txt", "/rss.xml"]


def test_an_unchanged_feed_costs_a_304_and_no_parsing(mock_feeds: FeedSite, tmp_path: Path) -> None:
    config = config_for(tmp_path, mock_feeds.url("/atom.xml"))
    assert fetch(config, transport=mock_feeds.transport).sources[0].new == 1
    again = fetch(config, transport=mock_feeds.transport).sources[0]
    assert (again.pages, again.not_modified, again.found) == (1, 1, 0)
    last = mock_feeds.transport.requests[-1]
    assert last.url == mock_feeds.url("/atom.xml") and "If-None-Match" in last.headers
    item = stored(config)[0]
    assert item.title == "Atom entry"  # an HTML title becomes plain text
    assert "script" not in item.content_html and "alert" not in item.content_html


def test_a_broken_feed_fails_the_source_and_keeps_items(
    mock_feeds: FeedSite, tmp_path: Path
) -> None:
    config = config_for(tmp_path, mock_feeds.url("/rss.xml"))
    fetch(config, transport=mock_feeds.transport)
    mock_feeds.replace["/rss.xml"] = Reply(
        200, b"<html>maintenance</html>", {"Content-Type": "text/html"}
    )
    result = fetch(config, transport=mock_feeds.transport).sources[0]
    assert not result.ok and "RSS or Atom" in result.error
    assert len(stored(config)) == 3


def test_a_dropped_connection_is_retried_and_the_feed_read(
    mock_feeds: FeedSite, tmp_path: Path
) -> None:
    config = config_for(tmp_path, mock_feeds.url("/atom.xml"))
    mock_feeds.replace["/atom.xml"] = ConnectionResetError("reset by peer")
    result = fetch(config, transport=mock_feeds.transport).sources[0]
    assert result.ok and result.new == 1
    assert mock_feeds.paths() == ["/robots.txt", "/atom.xml", "/atom.xml"]


def test_a_feed_over_the_body_cap_fails_the_source(mock_feeds: FeedSite, tmp_path: Path) -> None:
    config = config_for(tmp_path, mock_feeds.url("/rss.xml"), http="max_body_bytes = 2000\n")
    mock_feeds.files["/rss.xml"] = RSS.replace(
        "<description>d</description>", f"<description>{'x' * 4000}</description>"
    )
    result = fetch(config, transport=mock_feeds.transport).sources[0]
    assert not result.ok and "over http.max_body_bytes (2000)" in result.error
    assert mock_feeds.paths() == ["/robots.txt", "/rss.xml"]  # refused, not retried


def test_an_entry_updated_by_the_feed_dates_the_stored_update(
    mock_feeds: FeedSite, tmp_path: Path
) -> None:
    config = config_for(tmp_path, mock_feeds.url("/atom.xml"))
    fetch(config, transport=mock_feeds.transport)
    item = stored(config)[0]
    assert item.published.isoformat() == "2024-03-06T09:00:00+01:00"  # 08:00Z in Tirane
    assert item.updated.isoformat() == "2024-03-06T09:00:00+00:00"  # the entry's updated
