"""Tests for the snapshot server that stands in for the live site."""

from __future__ import annotations

import email.utils
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import iomfeed.demo.server as server_module
from iomfeed.demo.server import Fault, SnapshotServer

pytestmark = pytest.mark.network

LIVE = "https://albania.iom.int"
TIMEOUT = 5.0
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16 + b"https://albania.iom.int" + b"\x00" * 8
PDF = b"%PDF-1.4\n% https://albania.iom.int/report\n%%EOF\n"

SITE: Mapping[str, bytes] = {
    "index.html": (
        b'<html><body>HOME <a href="https://albania.iom.int/news">News</a>'
        b' <img src="http://albania.iom.int/sites/default/files/logo.png">'
        b' <script>{"path":"https:\\/\\/albania.iom.int\\/news"}</script></body></html>'
    ),
    "news/index.html": b"<html><body>LIST PAGE 0</body></html>",
    "news/page-1.html": b"<html><body>LIST PAGE 1</body></html>",
    "news/page-2.html": b"<html><body>LIST PAGE 2</body></html>",
    "news/first-story.html": (
        b'<html><head><link rel="canonical" href="https://albania.iom.int/news/first-story">'
        b"</head><body>FIRST STORY</body></html>"
    ),
    "47-legacy-story.html": b"<html><body>LEGACY STORY</body></html>",
    "about/index.html": b"<html><body>ABOUT PAGE</body></html>",
    "robots.txt": b"User-agent: *\nDisallow: /admin/\nSitemap: https://albania.iom.int/sitemap.xml\n",
    "sitemap.xml": b"<urlset><url><loc>https://albania.iom.int/news/first-story</loc></url></urlset>",
    "sites/default/files/logo.png": PNG,
    "sites/default/files/report.pdf": PDF,
}


class Reply:
    """A fully read response."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.body = response.read()
        self.will_close = response.will_close

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def fetch(
    server: SnapshotServer,
    target: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> Reply:
    """One request on a fresh connection; the target is sent as-is."""
    conn = http.client.HTTPConnection("127.0.0.1", port(server), timeout=timeout)
    try:
        conn.request(method, target, headers=dict(headers or {}))
        with conn.getresponse() as response:
            return Reply(response)
    finally:
        conn.close()


def port(server: SnapshotServer) -> int:
    return int(server.origin.rsplit(":", 1)[1])


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    for name, data in SITE.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (tmp_path / "secret.txt").write_bytes(b"TOP SECRET")
    return root


@pytest.fixture
def server(site: Path) -> Iterator[SnapshotServer]:
    with SnapshotServer(site) as running:
        yield running
        assert running.errors == []


# -- routing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "marker"),
    [
        ("/", "HOME"),
        ("/index.php", "HOME"),
        ("/news", "LIST PAGE 0"),
        ("/news/", "LIST PAGE 0"),
        ("/news?page=0", "LIST PAGE 0"),
        ("/news?page=1", "LIST PAGE 1"),
        ("/news?page=2", "LIST PAGE 2"),
        ("/news?page=3", "LIST PAGE 2"),
        ("/news?page=999999", "LIST PAGE 2"),
        ("/news?page=abc", "LIST PAGE 0"),
        ("/news?page=", "LIST PAGE 0"),
        ("/news?page=-4", "LIST PAGE 0"),
        ("/news?utm_source=x&page=1", "LIST PAGE 1"),
        ("/index.php/news?page=1", "LIST PAGE 1"),
        ("/news/first-story", "FIRST STORY"),
        ("/news/first-story/", "FIRST STORY"),
        ("/news/first-story?utm_source=x&utm_medium=email", "FIRST STORY"),
        ("/index.php/news/first-story", "FIRST STORY"),
        ("/news/first-story.html", "FIRST STORY"),
        ("//news//first-story", "FIRST STORY"),
        ("/news/./first-story", "FIRST STORY"),
        ("/news/first%2Dstory", "FIRST STORY"),
        ("/news?page=%32", "LIST PAGE 2"),
        ("/news?page=1&page=2", "LIST PAGE 2"),
        ("/news?page=1,0", "LIST PAGE 1"),
        ("/47-legacy-story", "LEGACY STORY"),
        ("/index.php/47-legacy-story", "LEGACY STORY"),
        ("/about", "ABOUT PAGE"),
        ("/about/", "ABOUT PAGE"),
        ("/robots.txt", "Disallow: /admin/"),
    ],
)
def test_routes_to_expected_file(server: SnapshotServer, target: str, marker: str) -> None:
    reply = fetch(server, target)
    assert reply.status == 200
    assert marker in reply.text
    assert reply.headers["Content-Length"] == str(len(reply.body))


def test_page_markers_are_distinct(server: SnapshotServer) -> None:
    # Guards the parametrized test: "LIST PAGE 1" must not also match other pages.
    assert "LIST PAGE 1" not in fetch(server, "/news?page=2").text
    assert "LIST PAGE 2" not in fetch(server, "/news").text


def test_out_of_range_page_uses_highest_page_file(site: Path) -> None:
    (site / "news" / "page-10.html").write_bytes(b"LIST PAGE 10")
    with SnapshotServer(site) as server:
        assert fetch(server, "/news?page=11").body == b"LIST PAGE 10"
        assert fetch(server, "/news?page=10").body == b"LIST PAGE 10"


@pytest.mark.parametrize(
    "target",
    ["/nope", "/news/missing-story", "/index.php/nope", "/sites/default/files", "/news/page-9"],
)
def test_unknown_is_404_html(server: SnapshotServer, target: str) -> None:
    reply = fetch(server, target)
    assert reply.status == 404
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Not Found" in reply.text
    assert reply.headers["Content-Length"] == str(len(reply.body))


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/news/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/news/..%2f..%2fsecret.txt",
        "/index.php/../../secret.txt",
        "/..%5csecret.txt",
        "/%00",
    ],
)
def test_traversal_is_rejected(server: SnapshotServer, target: str) -> None:
    reply = fetch(server, target)
    assert reply.status == 400
    assert b"SECRET" not in reply.body


def test_symlink_out_of_root_is_not_served(site: Path) -> None:
    (site / "leak.txt").symlink_to(site.parent / "secret.txt")
    (site / "leakdir").symlink_to(site.parent)
    (site / "inside.txt").symlink_to(site / "robots.txt")
    with SnapshotServer(site) as server:
        for target in ("/leak.txt", "/leakdir/secret.txt", "/leakdir/secret"):
            reply = fetch(server, target)
            assert (target, reply.status) == (target, 404)
            assert b"SECRET" not in reply.body
        assert fetch(server, "/inside.txt").status == 200


# -- content -----------------------------------------------------------------------


def test_live_origin_rewritten_in_text(server: SnapshotServer) -> None:
    home = fetch(server, "/").text
    assert f'href="{server.origin}/news"' in home
    assert f'src="{server.origin}/sites/default/files/logo.png"' in home
    escaped = server.origin.replace("/", "\\/")
    assert f'"path":"{escaped}\\/news"' in home
    assert "albania.iom.int" not in home
    for target in ("/robots.txt", "/sitemap.xml", "/news/first-story"):
        text = fetch(server, target).text
        assert server.origin in text
        assert "albania.iom.int" not in text


def test_binary_files_served_verbatim(server: SnapshotServer) -> None:
    png = fetch(server, "/sites/default/files/logo.png")
    assert png.body == PNG
    assert png.headers["Content-Type"] == "image/png"
    pdf = fetch(server, "/sites/default/files/report.pdf")
    assert pdf.body == PDF
    assert pdf.headers["Content-Type"] == "application/pdf"


@pytest.mark.parametrize(
    ("target", "content_type"),
    [
        ("/news", "text/html; charset=utf-8"),
        ("/robots.txt", "text/plain; charset=utf-8"),
        ("/sitemap.xml", "application/xml; charset=utf-8"),
    ],
)
def test_content_types(server: SnapshotServer, target: str, content_type: str) -> None:
    assert fetch(server, target).headers["Content-Type"] == content_type


def test_standard_headers(server: SnapshotServer) -> None:
    reply = fetch(server, "/news/first-story")
    assert reply.headers["Server"].startswith("iomfeed-snapshot/")
    assert email.utils.parsedate_to_datetime(reply.headers["Date"]).tzinfo is not None
    assert "max-age=0" in reply.headers["Cache-Control"]


def test_server_origin_and_url(site: Path) -> None:
    server = SnapshotServer(site)
    with pytest.raises(RuntimeError):
        _ = server.origin
    with server:
        assert server.origin.startswith("http://127.0.0.1:")
        assert port(server) > 0
        assert server.url("/news?page=1") == server.origin + "/news?page=1"
        assert server.url("news") == server.origin + "/news"
        with urllib.request.urlopen(server.url("/news"), timeout=TIMEOUT) as response:
            assert b"LIST PAGE 0" in response.read()
    server.stop()  # idempotent
    with (
        pytest.raises(urllib.error.URLError),
        urllib.request.urlopen(server.url("/"), timeout=TIMEOUT),
    ):
        pass


def test_urllib_sees_404_as_http_error(server: SnapshotServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server.url("/missing"), timeout=TIMEOUT)
    with caught.value as error:
        assert error.code == 404
        assert b"Not Found" in error.read()


# -- validators and conditional requests -------------------------------------------


def test_etag_and_last_modified(server: SnapshotServer, site: Path) -> None:
    reply = fetch(server, "/news/first-story")
    etag = reply.headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert len(etag) > 10
    assert fetch(server, "/news/first-story").headers["ETag"] == etag
    assert fetch(server, "/news").headers["ETag"] != etag
    mtime = (site / "news" / "first-story.html").stat().st_mtime
    modified = email.utils.parsedate_to_datetime(reply.headers["Last-Modified"])
    assert int(modified.timestamp()) == int(mtime)


@pytest.mark.parametrize(
    "template",
    ["{etag}", 'W/"zzz", {etag}', "W/{etag}", "*", '"nope", {etag}'],
)
def test_if_none_match_gives_304(server: SnapshotServer, template: str) -> None:
    etag = fetch(server, "/news/first-story").headers["ETag"]
    reply = fetch(
        server, "/news/first-story", headers={"If-None-Match": template.format(etag=etag)}
    )
    assert reply.status == 304
    assert reply.body == b""
    assert reply.headers["ETag"] == etag
    assert reply.headers["Last-Modified"]


def test_if_none_match_mismatch_gives_200(server: SnapshotServer) -> None:
    late = email.utils.formatdate(time.time() + 3600, usegmt=True)
    reply = fetch(
        server,
        "/news/first-story",
        headers={"If-None-Match": '"stale"', "If-Modified-Since": late},
    )
    # If-None-Match wins over If-Modified-Since.
    assert reply.status == 200
    assert b"FIRST STORY" in reply.body


def test_if_modified_since(server: SnapshotServer, site: Path) -> None:
    last_modified = fetch(server, "/news").headers["Last-Modified"]
    assert fetch(server, "/news", headers={"If-Modified-Since": last_modified}).status == 304
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert fetch(server, "/news", headers={"If-Modified-Since": later}).status == 304
    mtime = (site / "news" / "index.html").stat().st_mtime
    earlier = email.utils.formatdate(mtime - 60, usegmt=True)
    reply = fetch(server, "/news", headers={"If-Modified-Since": earlier})
    assert reply.status == 200
    assert b"LIST PAGE 0" in reply.body
    assert fetch(server, "/news", headers={"If-Modified-Since": "garbage"}).status == 200


def test_conditional_does_not_apply_to_404(server: SnapshotServer) -> None:
    assert fetch(server, "/nope", headers={"If-None-Match": "*"}).status == 404


def test_editing_a_file_changes_validators(server: SnapshotServer, site: Path) -> None:
    path = site / "news" / "first-story.html"
    first = fetch(server, "/news/first-story")
    path.write_bytes(b"<html><body>EDITED STORY https://albania.iom.int/x</body></html>")
    later = path.stat().st_mtime + 10
    os.utime(path, (later, later))
    second = fetch(server, "/news/first-story")
    assert second.text == f"<html><body>EDITED STORY {server.origin}/x</body></html>"
    assert second.headers["ETag"] != first.headers["ETag"]
    assert second.headers["Last-Modified"] != first.headers["Last-Modified"]
    stale = fetch(server, "/news/first-story", headers={"If-None-Match": first.headers["ETag"]})
    assert stale.status == 200
    # Same size, same mtime: only a rewrite through a new inode can tell; the cache
    # key includes it, so an atomic replace is picked up too.
    replacement = site / "news" / "tmp.html"
    replacement.write_bytes(b"<html><body>EDITED STORI https://albania.iom.int/x</body></html>")
    os.utime(replacement, (later, later))
    os.replace(replacement, path)
    assert b"EDITED STORI" in fetch(server, "/news/first-story").body


# -- connection handling -----------------------------------------------------------


def test_keep_alive_two_requests_on_one_connection(server: SnapshotServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port(server), timeout=TIMEOUT)
    try:
        conn.request("GET", "/news")
        with conn.getresponse() as response:
            assert response.status == 200
            assert b"LIST PAGE 0" in response.read()
            assert not response.will_close
        sock = conn.sock
        assert sock is not None
        conn.request("GET", "/news/first-story")
        with conn.getresponse() as response:
            assert response.status == 200
            assert b"FIRST STORY" in response.read()
        assert conn.sock is sock
        conn.request("GET", "/missing")
        with conn.getresponse() as response:
            assert response.status == 404
            response.read()
        conn.request("HEAD", "/news")
        with conn.getresponse() as response:
            assert response.read() == b""
        conn.request("GET", "/robots.txt")
        with conn.getresponse() as response:
            assert b"Disallow" in response.read()
        assert conn.sock is sock
    finally:
        conn.close()


def test_head(server: SnapshotServer) -> None:
    full = fetch(server, "/news/first-story")
    head = fetch(server, "/news/first-story", method="HEAD")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["Content-Length"] == str(len(full.body))
    assert head.headers["ETag"] == full.headers["ETag"]
    assert fetch(server, "/nope", method="HEAD").status == 404
    assert server.requests[-2].method == "HEAD"


def test_other_methods_not_allowed(server: SnapshotServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port(server), timeout=TIMEOUT)
    try:
        conn.request("POST", "/news", body=b"a=1")
        with conn.getresponse() as response:
            assert response.status == 405
            assert response.headers["Allow"] == "GET, HEAD"
            response.read()
        # The request body was consumed, so the connection is still usable.
        conn.request("GET", "/news")
        with conn.getresponse() as response:
            assert response.status == 200
            assert b"LIST PAGE 0" in response.read()
    finally:
        conn.close()
    assert [(r.method, r.status) for r in server.requests] == [("POST", 405), ("GET", 200)]


def test_concurrent_requests(server: SnapshotServer) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port(server), timeout=TIMEOUT)
        try:
            for _ in range(10):
                conn.request("GET", "/news/first-story")
                with conn.getresponse() as response:
                    body = response.read()
                with lock:
                    results.append(response.status if b"FIRST STORY" in body else -1)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert results == [200] * 80
    assert server.hits("/news/first-story") == 80


def test_stop_closes_idle_keep_alive_connections(site: Path) -> None:
    server = SnapshotServer(site).start()
    conn = http.client.HTTPConnection("127.0.0.1", port(server), timeout=TIMEOUT)
    try:
        conn.request("GET", "/")
        with conn.getresponse() as response:
            response.read()
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2
    finally:
        conn.close()


# -- faults ------------------------------------------------------------------------


def test_fault_500_then_normal(server: SnapshotServer) -> None:
    server.add_fault("/news", Fault())
    first = fetch(server, "/news")
    assert first.status == 500
    assert first.body == b""
    assert first.headers["Content-Length"] == "0"
    assert fetch(server, "/news").status == 200
    assert [r.status for r in server.requests] == [500, 200]


def test_faults_queue_in_order_and_repeat(server: SnapshotServer) -> None:
    server.add_fault("/news", Fault(status=503, body=b"busy", times=2))
    server.add_fault("/news", Fault(status=502))
    statuses = [fetch(server, "/news").status for _ in range(4)]
    assert statuses == [503, 503, 502, 200]


def test_fault_matches_exact_target(server: SnapshotServer) -> None:
    server.add_fault("/news?page=1", Fault(status=500))
    assert fetch(server, "/news").status == 200
    assert fetch(server, "/news?page=2").status == 200
    assert fetch(server, "/news?page=1").status == 500
    assert fetch(server, "/news?page=1").status == 200


def test_fault_429_with_retry_after(server: SnapshotServer) -> None:
    server.add_fault("/news/first-story", Fault(status=429, headers={"Retry-After": "1"}))
    reply = fetch(server, "/news/first-story")
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "1"
    assert fetch(server, "/news/first-story").headers["Retry-After"] is None


def test_fault_delay_causes_client_timeout(server: SnapshotServer) -> None:
    server.add_fault("/news", Fault(status=200, delay=1.5))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        fetch(server, "/news", timeout=0.3)
    assert time.monotonic() - started < 1.2
    assert server.hits("/news") == 1
    assert fetch(server, "/news").status == 200


def test_fault_delay_then_real_content(server: SnapshotServer) -> None:
    server.add_fault("/news", Fault(status=200, delay=0.3, headers={"X-Slow": "yes"}))
    started = time.monotonic()
    reply = fetch(server, "/news")
    assert time.monotonic() - started >= 0.3
    assert reply.status == 200
    assert b"LIST PAGE 0" in reply.body
    assert reply.headers["X-Slow"] == "yes"


def test_fault_truncate(server: SnapshotServer) -> None:
    full = fetch(server, "/news/first-story").body
    server.add_fault("/news/first-story", Fault(status=200, truncate=True))
    conn = http.client.HTTPConnection("127.0.0.1", port(server), timeout=TIMEOUT)
    try:
        conn.request("GET", "/news/first-story")
        with conn.getresponse() as response:
            assert response.status == 200
            assert response.headers["Content-Length"] == str(len(full))
            with pytest.raises(http.client.IncompleteRead) as caught:
                response.read()
        assert caught.value.partial == full[: len(full) // 2]
    finally:
        conn.close()
    assert fetch(server, "/news/first-story").body == full


def test_fault_truncate_seen_by_urllib(server: SnapshotServer) -> None:
    server.add_fault("/robots.txt", Fault(truncate=True))
    with (
        urllib.request.urlopen(server.url("/robots.txt"), timeout=TIMEOUT) as response,
        pytest.raises(http.client.IncompleteRead),
    ):
        response.read()


def test_fault_raw_body(server: SnapshotServer) -> None:
    page = "<html><body>Migracioni në Shqipëri – €</body></html>".encode("cp1252")
    server.add_fault(
        "/news/first-story",
        Fault(status=200, raw_body=page, content_type="text/html; charset=windows-1252"),
    )
    reply = fetch(server, "/news/first-story")
    assert reply.status == 200
    assert reply.body == page
    assert reply.headers["Content-Type"] == "text/html; charset=windows-1252"
    assert reply.headers["Content-Length"] == str(len(page))
    assert b"FIRST STORY" in fetch(server, "/news/first-story").body


def test_fault_raw_body_defaults_to_routed_type_and_is_not_rewritten(
    server: SnapshotServer,
) -> None:
    big = b"<html>" + b"x" * 300_000 + LIVE.encode() + b"</html>"
    server.add_fault("/news", Fault(status=200, raw_body=big, times=2))
    for _ in range(2):
        reply = fetch(server, "/news")
        assert reply.body == big
        assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert fetch(server, "/news").body != big


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="times"):
        Fault(times=0)
    with pytest.raises(ValueError, match="status"):
        Fault(status=99)
    fault = Fault(headers={"Retry-After": "2"})
    assert dict(fault.headers) == {"Retry-After": "2"}
    assert hash(fault) == hash(Fault(headers={"Retry-After": "2"}))
    assert Fault().headers == {}


# -- request log -------------------------------------------------------------------


def test_request_log_and_hits(server: SnapshotServer) -> None:
    before = time.time()
    fetch(server, "/news?page=1", headers={"User-Agent": "iomfeed-test", "X-Trace": "7"})
    fetch(server, "/news/first-story")
    fetch(server, "/missing", method="HEAD")
    records = server.requests
    assert [(r.method, r.path, r.status) for r in records] == [
        ("GET", "/news?page=1", 200),
        ("GET", "/news/first-story", 200),
        ("HEAD", "/missing", 404),
    ]
    assert records[0].headers["user-agent"] == "iomfeed-test"
    assert records[0].headers["x-trace"] == "7"
    assert all(key == key.lower() for key in records[0].headers)
    assert before <= records[0].time <= records[2].time <= time.time()
    assert server.hits("/news") == 2
    assert server.hits("/news/") == 1
    assert server.hits("/news?page=") == 1
    assert server.hits("/") == 3
    assert server.hits("/nothing") == 0


def test_clear_forgets_requests_and_faults(server: SnapshotServer) -> None:
    server.add_fault("/news", Fault(status=500))
    fetch(server, "/")
    server.clear()
    assert server.requests == []
    assert server.hits("/") == 0
    assert fetch(server, "/news").status == 200
    assert server.hits("/news") == 1


def test_requests_are_a_snapshot(server: SnapshotServer) -> None:
    log = server.requests
    fetch(server, "/")
    assert log == []
    assert len(server.requests) == 1


# -- command line ------------------------------------------------------------------


def test_main_serves_until_interrupted(site: Path) -> None:
    src = str(Path(server_module.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with subprocess.Popen(
        [sys.executable, "-m", "iomfeed.demo.server", "--root", str(site)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None
            origin = proc.stdout.readline().decode().strip()
            assert origin.startswith("http://127.0.0.1:")
            with urllib.request.urlopen(origin + "/news/first-story", timeout=TIMEOUT) as resp:
                assert f"{origin}/news/first-story".encode() in resp.read()
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err
        assert b"Traceback" not in err


def test_main_rejects_missing_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        server_module.main(["--root", str(tmp_path / "absent")])
    assert caught.value.code == 2
    assert "not found" in capsys.readouterr().err
