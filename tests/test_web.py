"""The WSGI application over real HTTP on 127.0.0.1: one-click unsubscribe (RFC 8058), the
confirmation page (and its button, in Chromium), forged tokens, feeds with validators."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from iomfeed.config import Config
from iomfeed.digest.message import unsubscribe_link
from iomfeed.digest.unsubscribe import load_secret, make_token
from iomfeed.store import Store
from iomfeed.web import App

from .conftest import NOW
from .digestkit import add_subscribers, digest_config

pytestmark = pytest.mark.network


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Config, str, dict[str, str]]]:
    config = digest_config(tmp_path)
    feeds = config.feeds_path
    feeds.mkdir(parents=True)
    (feeds / "atom.xml").write_text("<?xml version='1.0'?><feed/>" + " " * 800)
    with Store(config.database_path) as store:
        addresses = add_subscribers(store, 3)
        secret = load_secret(config, store)
        tokens = {
            s.address: make_token(secret, config.list_id, s.id, s.address)
            for s in store.subscribers()
        }
    server = make_server("127.0.0.1", 0, App(config, now=lambda: NOW), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield config, f"http://127.0.0.1:{server.server_port}", {a: tokens[a] for a in addresses}
    finally:
        server.shutdown()
        server.server_close()


def request(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def status_of(config: Config, address: str) -> str:
    with Store(config.database_path) as store:
        sub = store.subscriber(address)
        assert sub is not None
        return sub.status


def test_one_click_post_unsubscribes_without_a_redirect(
    site: tuple[Config, str, dict[str, str]],
) -> None:
    config, base, tokens = site
    address = "reader1@example.org"
    path = urlsplit(unsubscribe_link(config.unsubscribe_url, tokens[address]))
    target = f"{path.path}?{path.query}"
    # What a mailbox provider sends: a POST with no cookies, the RFC 8058 body.
    code, headers, page = request(
        base,
        "POST",
        target,
        b"List-Unsubscribe=One-Click",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert code == 200 and "Location" not in headers
    assert status_of(config, address) == "unsubscribed"
    assert "reader1@example.org" in page
    with Store(config.database_path) as store:
        sub = store.subscriber(address)
        assert sub is not None and "one-click" in sub.reason
    # Again: still 200, still unsubscribed.
    assert request(base, "POST", target, b"List-Unsubscribe=One-Click")[0] == 200


def test_one_click_sent_as_multipart_form_data_is_recorded_as_one_click(
    site: tuple[Config, str, dict[str, str]],
) -> None:
    """RFC 8058 says the request SHOULD be multipart/form-data (RFC 7578): read as a form,
    it unsubscribes as one-click, not as the page's button."""
    config, base, tokens = site
    address = "reader1@example.org"
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        b"One-Click\r\n--XyZ--\r\n"
    )
    code, headers, _page = request(
        base,
        "POST",
        f"/unsubscribe?t={tokens[address]}",
        body,
        {"Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    assert code == 200 and "Location" not in headers
    with Store(config.database_path) as store:
        sub = store.subscriber(address)
        assert sub is not None and sub.status == "unsubscribed"
        assert sub.reason == "one-click unsubscribe (RFC 8058)", sub.reason
    # A multipart body that is not a form is a POST without fields: the page's button.
    other = "reader2@example.org"
    code, _h, _p = request(
        base,
        "POST",
        f"/unsubscribe?t={tokens[other]}",
        b"garbage",
        {"Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    assert code == 200 and status_of(config, other) == "unsubscribed"


def test_the_unsubscribe_page_may_not_be_framed(site: tuple[Config, str, dict[str, str]]) -> None:
    """One button that acts: no other page may frame it (and click it through)."""
    _config, base, tokens = site
    for path in ("/unsubscribe?t=junk", f"/unsubscribe?t={tokens['reader0@example.org']}"):
        _code, headers, _page = request(base, "GET", path)
        assert headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert (
            headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
        )


def test_get_alone_unsubscribes_nobody(site: tuple[Config, str, dict[str, str]]) -> None:
    config, base, tokens = site
    address = "reader0@example.org"  # an Albanian subscriber
    code, headers, page = request(base, "GET", f"/unsubscribe?t={tokens[address]}")
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    assert status_of(config, address) == "active"
    assert '<html lang="sq">' in page and "Çregjistrohu" in page
    assert 'method="post"' in page and tokens[address] in page
    code, _h, _p = request(base, "HEAD", f"/unsubscribe?t={tokens[address]}")
    assert code == 200 and status_of(config, address) == "active"


@pytest.mark.parametrize("token", ["", "junk", "1.AAAAAAAAAAAAAAAAAAAAAA", "999.abc"])
def test_forged_or_malformed_tokens_get_400_and_change_nothing(
    site: tuple[Config, str, dict[str, str]], token: str
) -> None:
    config, base, tokens = site
    for method in ("GET", "POST"):
        code, _h, page = request(
            base,
            method,
            f"/unsubscribe?t={token}",
            b"List-Unsubscribe=One-Click" if method == "POST" else None,
        )
        assert code == 400 and "does not work" in page
    sid, mac = tokens["reader2@example.org"].split(".")
    other = f"{int(sid) - 1}.{mac}"  # a real MAC on someone else's id
    assert request(base, "POST", f"/unsubscribe?t={other}", b"List-Unsubscribe=One-Click")[0] == 400
    assert all(status_of(config, a) == "active" for a in tokens)


def test_feeds_are_served_with_validators(site: tuple[Config, str, dict[str, str]]) -> None:
    _config, base, _tokens = site
    code, headers, _body = request(base, "GET", "/atom.xml")
    assert code == 200 and headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert request(base, "GET", "/atom.xml", headers={"If-None-Match": headers["ETag"]})[0] == 304
    assert request(base, "GET", "/missing.xml")[0] == 404
    assert request(base, "POST", "/atom.xml", b"")[0] == 405


@pytest.mark.browser
def test_the_confirmation_button_unsubscribes_in_chromium(
    site: tuple[Config, str, dict[str, str]],
) -> None:
    from .browser import browser, screenshot_path

    config, base, tokens = site
    address = "reader2@example.org"
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 375, "height": 700})
        page.goto(f"{base}/unsubscribe?t={tokens[address]}")
        page.screenshot(path=str(screenshot_path("unsubscribe-confirm-375.png")))
        assert status_of(config, address) == "active"
        with page.expect_navigation():
            page.get_by_role("button", name="Unsubscribe").click()
        page.screenshot(path=str(screenshot_path("unsubscribe-done-375.png")))
        assert "You are unsubscribed" in page.content()
        assert page.url.startswith(f"{base}/") and "unsubscribe" in page.url
    assert status_of(config, address) == "unsubscribed"


def test_edge_requests(site: tuple[Config, str, dict[str, str]]) -> None:
    from iomfeed.web import accepts_gzip

    _config, base, _tokens = site
    code, _h, body = request(base, "HEAD", "/unsubscribe?t=junk")
    assert code == 400 and body == ""
    assert (
        request(base, "GET", "/unsubscribe?t=9999999999999999999.AAAAAAAAAAAAAAAAAAAAAA")[0] == 400
    )
    _c, headers, _b = request(base, "GET", "/atom.xml", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in headers
    _c, headers, _b = request(base, "GET", "/atom.xml", headers={"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip" and headers["ETag"].endswith('-gz"')
    assert accepts_gzip("br, gzip;q=0.5") and not accepts_gzip("identity")


def test_a_secret_that_changed_is_a_503_in_one_line_and_unsubscribes_nobody(
    site: tuple[Config, str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A service whose environment brought another signing secret than the one that
    signed the mail already sent: the store refuses it (``SecretChanged``). The page says
    to come back later, as a relay retries a one-click POST, and the log says why once,
    with no traceback: it is the operator's to fix, not a bug."""
    config, base, tokens = site
    address = "reader1@example.org"
    with Store(config.database_path) as store:
        sub = store.subscriber(address)
        assert sub is not None
        store.mark_sign_up_mail(sub.id, "confirm_sent", NOW)  # links went out
    monkeypatch.setenv(config.mail.secret_env, "another secret, long enough to sign")
    path = urlsplit(unsubscribe_link(config.unsubscribe_url, tokens[address]))
    with caplog.at_level("ERROR", logger="iomfeed.web"):
        code, headers, page = request(
            base,
            "POST",
            f"{path.path}?{path.query}",
            b"List-Unsubscribe=One-Click",
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert (code, headers.get("Retry-After")) == (503, "3600")
    assert headers["Content-Type"].startswith("text/html")
    assert "Temporarily unavailable" in page and "Nothing has changed" in page
    assert "secret" not in page and "IOMFEED" not in page  # the operator's business
    assert status_of(config, address) == "active"
    [record] = [r for r in caplog.records if r.name == "iomfeed.web"]
    assert record.exc_info is None and "mail.secret_env" in record.getMessage()
    # Someone reading Albanian, who followed the link from an Albanian digest.
    code, _headers, page = request(base, "GET", f"{path.path}?{path.query}&lang=sq")
    assert code == 503 and "Përkohësisht e padisponueshme" in page and 'lang="sq"' in page
    assert f'href="?{path.query}&amp;lang=en"' in page  # its English link keeps the token
