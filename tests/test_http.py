"""The polite HTTP client against a real server on 127.0.0.1 that misbehaves on request."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iomfeed.config import HttpConfig
from iomfeed.demo.server import Fault, SnapshotServer
from iomfeed.errors import FetchError, RobotsDisallowed
from iomfeed.http import HttpClient, robots_origin
from iomfeed.transport import HttpTransport

pytestmark = pytest.mark.network

PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>T</title></head>"
    "<body><p>Fatos Çoçoli – “quoted”</p></body></html>"
)


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[SnapshotServer]:
    root = tmp_path / "tiny"
    (root / "news").mkdir(parents=True)
    (root / "news" / "index.html").write_text(PAGE, encoding="utf-8")
    (root / "news" / "a.html").write_text(PAGE, encoding="utf-8")
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n", encoding="utf-8")
    with SnapshotServer(root) as srv:
        yield srv


class FakeValidators:
    def __init__(self) -> None:
        self.saved: dict[str, tuple[str | None, str | None]] = {}

    def get_validators(self, url: str) -> tuple[str | None, str | None]:
        return self.saved.get(url, (None, None))


class Sleeps:
    """Records requested sleeps instead of sleeping; the client's clock still moves."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client(**overrides: object) -> tuple[HttpClient, Sleeps, FakeValidators]:
    settings: dict[str, Any] = {
        "timeout": 2.0,
        "retries": 2,
        "backoff": 0.5,
        "min_delay": 0.0,
        "user_agent": "iomfeed-test (+https://x.org)",
    }
    settings.update(overrides)
    sleeps, validators = Sleeps(), FakeValidators()
    return (
        HttpClient(
            HttpConfig(**settings),
            validators=validators,
            sleep=sleeps,
            jitter=lambda: 0.5,
        ),
        sleeps,
        validators,
    )


def test_get_sends_user_agent_and_decodes_utf8(tiny: SnapshotServer) -> None:
    http, _, _ = client()
    with http:
        r = http.get(tiny.url("/news"))
    assert r.status == 200
    assert "Fatos Çoçoli – “quoted”" in r.text()
    page_requests = [q for q in tiny.requests if q.path == "/news"]
    assert page_requests[0].headers["user-agent"] == "iomfeed-test (+https://x.org)"


def test_conditional_get_gets_304_and_no_body(tiny: SnapshotServer) -> None:
    http, _, validators = client()
    with http:
        first = http.get(tiny.url("/news"))
        validators.saved[tiny.url("/news")] = (first.etag, first.last_modified)
        second = http.get(tiny.url("/news"), conditional=True)
        unconditional = http.get(tiny.url("/news"))
    assert first.etag and second.status == 304 and second.body == b""
    assert unconditional.status == 200
    sent = [q for q in tiny.requests if q.path == "/news"]
    assert sent[1].headers["if-none-match"] == first.etag


def test_one_connection_is_reused(tiny: SnapshotServer) -> None:
    http, _, _ = client()
    sockets = set()
    with http:
        for _ in range(5):
            http.get(tiny.url("/news/a"))
            assert isinstance(http.transport, HttpTransport)
            (conn,) = http.transport._connections.values()
            assert conn.sock is not None
            sockets.add(conn.sock.getsockname())
    assert len(sockets) == 1  # the same local port: one TCP connection for all requests
    assert http.requests == 6  # robots.txt and five pages, no retries


def test_a_304_with_a_content_length_is_fine(tiny: SnapshotServer) -> None:
    http, _, validators = client(retries=0)
    with http:
        validators.saved[tiny.url("/news")] = ('"old"', None)
        tiny.add_fault(
            "/news", Fault(status=304, headers={"Content-Length": "5000", "ETag": '"old"'})
        )
        r = http.get(tiny.url("/news"), conditional=True)
        assert r.status == 304
        assert http.get(tiny.url("/news/a")).status == 200  # the connection is still usable


def test_validators_follow_a_redirect_to_the_final_url(tiny: SnapshotServer) -> None:
    http, _, validators = client()
    tiny.add_fault("/old", Fault(status=301, headers={"Location": "/news/a"}, times=2))
    with http:
        first = http.get(tiny.url("/old"), conditional=True)
        validators.saved[first.final_url] = (first.etag, first.last_modified)
        second = http.get(tiny.url("/old"), conditional=True)
    assert second.status == 304 and second.final_url == tiny.url("/news/a")


def test_a_slow_answer_does_not_shorten_the_next_requests_timeout(tiny: SnapshotServer) -> None:
    tiny.add_fault("/news", Fault(status=200, delay=0.7))
    tiny.add_fault("/news/a", Fault(status=200, delay=0.5))
    http, _, _ = client(timeout=1.0, retries=0)
    with http:
        http.get(tiny.url("/news"))
        assert http.get(tiny.url("/news/a")).status == 200


def test_a_malformed_url_is_a_fetch_error() -> None:
    http, _, _ = client()
    with http, pytest.raises(FetchError, match="malformed URL"):
        http.get("https://albania.iom.int:80x/news")


def test_robots_txt_is_read_once_and_obeyed(tiny: SnapshotServer) -> None:
    http, _, _ = client()
    with http:
        http.get(tiny.url("/news"))
        with pytest.raises(RobotsDisallowed, match=r"disallowed by robots\.txt"):
            http.get(tiny.url("/private/page"))
        http.get(tiny.url("/news/a"))
    assert tiny.hits("/robots.txt") == 1
    assert tiny.hits("/private") == 0


def test_robots_txt_is_read_as_rfc_9309_says(tiny: SnapshotServer) -> None:
    """The longest matching rule wins; ``*`` stands for any characters and ``$`` for the
    end; the group of the User-Agent's product token, case-insensitively, over ``*`` (the
    standard library's parser took the first rule that matched, and ``*`` as itself)."""
    (tiny.root / "news" / "en").mkdir()
    (tiny.root / "news" / "en" / "media.html").write_text(PAGE, encoding="utf-8")
    (tiny.root / "news" / "a.pdf").write_text("%PDF", encoding="utf-8")
    (tiny.root / "robots.txt").write_text(
        "User-agent: *\nDisallow: /\n\n"
        "User-agent: IOMFEED\nDisallow: /news\nAllow: /news/a\nDisallow: /*/media\n"
        "Disallow: /news/*.pdf$\n",
        encoding="utf-8",
    )
    http, _, _ = client(user_agent="iomfeed/0.1 (+https://example.org/bot)")
    with http:
        assert http.get(tiny.url("/news/a")).status == 200  # Allow: /news/a is longer
        for refused in ("/news", "/news/en/media", "/news/a.pdf"):
            with pytest.raises(RobotsDisallowed):
                http.get(tiny.url(refused))
    assert tiny.hits("/news/en") == 0 and tiny.hits("/news/a.pdf") == 0


def test_robots_txt_is_kept_in_the_store_for_a_day(tiny: SnapshotServer, tmp_path: Path) -> None:
    """RFC 9309 2.4: a cached robots.txt may be used for up to 24 hours, so the runs of one
    day ask for it once; after that, and after an answer that was not kept, it is asked
    again. Its rules and its Crawl-delay hold the same, whether fetched or kept."""
    from datetime import UTC, datetime, timedelta

    from iomfeed.store import Store

    robots = tiny.root / "robots.txt"
    robots.write_text("User-agent: *\nCrawl-delay: 2\nDisallow: /private/\n", encoding="utf-8")
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)

    def run(at: datetime, store: Store) -> list[float]:
        sleeps = Sleeps()
        config = HttpConfig(timeout=2.0, retries=0, min_delay=0.0, user_agent="iomfeed-test")
        with HttpClient(config, robots=store, sleep=sleeps, wall_clock=lambda: at) as http:
            http.get(tiny.url("/news"))
            http.get(tiny.url("/news/a"))
            with pytest.raises(RobotsDisallowed):
                http.get(tiny.url("/private/page"))
        return sleeps.calls

    with Store(tmp_path / "db.sqlite") as store:
        assert run(start, store) and tiny.hits("/robots.txt") == 1
        robots.write_text("User-agent: *\nDisallow: /private/\nDisallow: /news/a\n", "utf-8")
        paused = run(start + timedelta(hours=23, minutes=59), store)  # the kept copy
        assert tiny.hits("/robots.txt") == 1 and paused  # and its Crawl-delay
        with pytest.raises(RobotsDisallowed):  # a day on: asked again, the new rules hold
            run(start + timedelta(hours=24, seconds=1), store)
        assert tiny.hits("/robots.txt") == 2
    with Store(tmp_path / "other.sqlite") as store:
        tiny.add_fault("/robots.txt", Fault(status=503, times=1))
        with pytest.raises(FetchError, match=r"robots\.txt unreachable"):
            run(start, store)
        assert store.cached_robots(tiny.origin, start - timedelta(days=1)) is None
        robots.write_text("User-agent: *\nDisallow: /private/\n", encoding="utf-8")
        run(start, store)  # the next run asks again
        assert tiny.hits("/robots.txt") == 4
        assert store.cached_robots(tiny.origin, start - timedelta(days=1)) == robots.read_text()


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://Example.ORG:80/a?b", "http://example.org"),
        ("https://example.org:443/", "https://example.org"),
        ("http://example.org:443/", "http://example.org:443"),
        ("http://reader:secret@example.org/news", "http://example.org"),
        ("https://example.org./news", "https://example.org"),
        ("http://[::1]:8080/a", "http://[::1]:8080"),
    ],
)
def test_the_robots_origin_is_scheme_host_and_port_only(url: str, origin: str) -> None:
    assert robots_origin(url) == origin


def test_one_origin_written_two_ways_reads_robots_txt_once(
    tiny: SnapshotServer, tmp_path: Path
) -> None:
    """The user information is not part of the origin (RFC 9309 2.3), so it is neither asked
    for twice nor kept in the store under the credentials."""
    from datetime import UTC, datetime, timedelta

    from iomfeed.store import Store

    at = datetime(2026, 12, 1, 8, tzinfo=UTC)
    config = HttpConfig(timeout=2.0, retries=0, min_delay=0.0, user_agent="iomfeed-test")
    with_user = tiny.origin.replace("http://", "http://reader:secret@") + "/news"
    with (
        Store(tmp_path / "db.sqlite") as store,
        HttpClient(config, robots=store, sleep=Sleeps(), wall_clock=lambda: at) as http,
    ):
        http.get(with_user)
        http.get(tiny.url("/news/a"))
        assert tiny.hits("/robots.txt") == 1
        assert store.cached_robots(tiny.origin, at - timedelta(days=1)) is not None
        rows = store.db.execute("SELECT origin FROM robots_txt").fetchall()
    assert [r[0] for r in rows] == [tiny.origin]


def test_robots_txt_can_be_ignored_when_configured(tiny: SnapshotServer) -> None:
    http, _, _ = client(respect_robots_txt=False)
    with http, pytest.raises(FetchError, match="HTTP 404"):
        http.get(tiny.url("/private/page"))
    assert tiny.hits("/robots.txt") == 0


def test_a_server_error_is_retried_with_backoff(tiny: SnapshotServer) -> None:
    tiny.add_fault("/news", Fault(status=500))
    tiny.add_fault("/news", Fault(status=503))
    http, sleeps, _ = client()
    with http:
        r = http.get(tiny.url("/news"))
    assert r.status == 200
    assert tiny.hits("/news") == 3
    assert sleeps.calls == [0.375, 0.75]  # equal jitter: base/2 + 0.5 * base/2, base doubling


def test_retry_after_is_honoured(tiny: SnapshotServer) -> None:
    tiny.add_fault("/news", Fault(status=429, headers={"Retry-After": "7"}))
    http, sleeps, _ = client()
    with http:
        assert http.get(tiny.url("/news")).status == 200
    assert sleeps.calls == [7.0]


def test_a_retry_after_beyond_the_limit_fails_at_once(tiny: SnapshotServer) -> None:
    tiny.add_fault("/news", Fault(status=503, headers={"Retry-After": "3600"}))
    http, sleeps, _ = client(max_retry_after=60)
    with http, pytest.raises(FetchError, match="asked to wait 3600 s"):
        http.get(tiny.url("/news"))
    assert sleeps.calls == []


def test_persistent_failure_names_url_status_and_attempts(tiny: SnapshotServer) -> None:
    tiny.add_fault("/news", Fault(status=502, times=10))
    http, _, _ = client(retries=2)
    with http, pytest.raises(FetchError) as caught:
        http.get(tiny.url("/news"))
    message = str(caught.value)
    assert tiny.url("/news") in message and "HTTP 502" in message and "3 attempts" in message
    assert caught.value.status == 502


def test_a_404_is_not_retried(tiny: SnapshotServer) -> None:
    http, _, _ = client()
    with http, pytest.raises(FetchError, match="HTTP 404 Not Found"):
        http.get(tiny.url("/news/missing"))
    assert tiny.hits("/news/missing") == 1


def test_a_timeout_is_retried_then_reported(tiny: SnapshotServer) -> None:
    tiny.add_fault("/news", Fault(status=200, delay=1.0, times=5))
    http, _, _ = client(timeout=0.2, retries=1)
    with http, pytest.raises(FetchError, match="timed out"):
        http.get(tiny.url("/news"))
    assert tiny.hits("/news") == 2


def test_a_truncated_body_is_retried(tiny: SnapshotServer) -> None:
    tiny.add_fault("/news/a", Fault(status=200, truncate=True))
    http, _, _ = client()
    with http:
        r = http.get(tiny.url("/news/a"))
    assert r.body == PAGE.encode("utf-8")
    assert tiny.hits("/news/a") == 2


def test_a_body_that_stays_truncated_fails_clearly(tiny: SnapshotServer) -> None:
    tiny.add_fault("/news/a", Fault(status=200, truncate=True, times=5))
    http, _, _ = client(retries=1)
    with http, pytest.raises(FetchError, match="connection closed mid-body"):
        http.get(tiny.url("/news/a"))


def test_an_oversized_body_is_refused_without_retry(tiny: SnapshotServer) -> None:
    tiny.add_fault("/news/a", Fault(status=200, raw_body=b"x" * 5000, content_type="text/html"))
    http, _, _ = client(max_body_bytes=1000)
    with http, pytest.raises(FetchError, match=r"5000 bytes is over http.max_body_bytes \(1000\)"):
        http.get(tiny.url("/news/a"))
    assert tiny.hits("/news/a") == 1


def test_a_gzip_bomb_is_refused(tiny: SnapshotServer) -> None:
    bomb = gzip.compress(b"a" * 200_000)
    tiny.add_fault(
        "/news/a",
        Fault(
            status=200,
            raw_body=bomb,
            content_type="text/html",
            headers={"Content-Encoding": "gzip"},
        ),
    )
    http, _, _ = client(max_body_bytes=10_000)
    with http, pytest.raises(FetchError, match="decompressed body over"):
        http.get(tiny.url("/news/a"))


def test_gzip_bodies_are_decompressed(tiny: SnapshotServer) -> None:
    tiny.add_fault(
        "/news/a",
        Fault(
            status=200,
            raw_body=gzip.compress(PAGE.encode()),
            content_type="text/html; charset=utf-8",
            headers={"Content-Encoding": "gzip"},
        ),
    )
    http, _, _ = client()
    with http:
        assert http.get(tiny.url("/news/a")).text() == PAGE


def test_windows_1252_is_decoded_not_mangled(tiny: SnapshotServer) -> None:
    body = "<html><body><p>“Migration” – Përgjithshëm</p></body></html>".encode("cp1252")
    tiny.add_fault(
        "/news/a", Fault(status=200, raw_body=body, content_type="text/html; charset=windows-1252")
    )
    tiny.add_fault("/news", Fault(status=200, raw_body=body, content_type="text/html"))
    http, _, _ = client()
    with http:
        declared = http.get(tiny.url("/news/a")).text()
        sniffed = http.get(tiny.url("/news")).text()
    assert "“Migration” – Përgjithshëm" in declared
    assert "“Migration” – Përgjithshëm" in sniffed


def test_redirects_are_followed_up_to_the_limit(tiny: SnapshotServer) -> None:
    tiny.add_fault("/old", Fault(status=301, headers={"Location": "/news/a"}))
    http, _, _ = client()
    with http:
        r = http.get(tiny.url("/old"))
    assert r.final_url == tiny.url("/news/a") and r.url == tiny.url("/old")
    for _ in range(3):
        tiny.add_fault("/loop", Fault(status=302, headers={"Location": "/loop"}))
    http, _, _ = client(max_redirects=2)
    with http, pytest.raises(FetchError, match="more than 2 redirects"):
        http.get(tiny.url("/loop"))


def test_min_delay_spaces_requests_to_one_host(tiny: SnapshotServer) -> None:
    http, sleeps, _ = client(min_delay=5.0)
    with http:
        http.get(tiny.url("/news"))
        http.get(tiny.url("/news/a"))
    # robots.txt, then /news (waits), then /news/a (waits): each wait close to 5 s.
    assert len(sleeps.calls) == 2
    assert all(4.0 < s <= 5.0 for s in sleeps.calls)


def test_an_unreachable_host_is_a_fetch_error() -> None:
    http, _, _ = client(retries=0, respect_robots_txt=False)
    with http, pytest.raises(FetchError, match="connection refused"):
        http.get("http://127.0.0.1:9/news")


def test_only_http_urls_are_fetched() -> None:
    http, _, _ = client()
    with http, pytest.raises(FetchError, match="not an http"):
        http.get("file:///etc/passwd")


def test_a_longer_crawl_delay_in_robots_txt_wins(tiny: SnapshotServer) -> None:
    robots = tiny.root / "robots.txt"
    robots.write_text("User-agent: *\nCrawl-delay: 3\nDisallow: /private/\n", encoding="utf-8")
    http, sleeps, _ = client(min_delay=0.5)
    with http:
        http.get(tiny.url("/news"))
        http.get(tiny.url("/news/a"))
    assert len(sleeps.calls) == 2
    assert all(2.5 < s <= 3.0 for s in sleeps.calls)


def test_http_and_https_of_one_host_share_one_pace() -> None:
    http, sleeps, _ = client(min_delay=5.0)
    one = http._pace("http://albania.iom.int/news")
    other = http._pace("https://albania.iom.int/news")
    assert one is other
    one.last_request = http._clock()
    http._wait_politely(other)
    assert len(sleeps.calls) == 1 and 4.0 < sleeps.calls[0] <= 5.0
