"""Proxies from the environment: a real forwarding proxy on 127.0.0.1 that the test starts,
http through it in absolute form, https through a CONNECT tunnel to a local TLS site signed by
the tests' CA, credentials, NO_PROXY, and failures that name the proxy."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from iomfeed.config import HttpConfig
from iomfeed.demo.server import Fault, SnapshotServer
from iomfeed.errors import ConfigError, FetchError
from iomfeed.http import HttpClient
from iomfeed.transport import HttpTransport
from iomfeed.transport.proxy import proxies_from_environment

from . import smtp
from .conftest import fetch, local_config
from .proxy import ForwardingProxy, TlsSite, forwarding_proxy, tls_site
from .smtp import make_test_ca

pytestmark = pytest.mark.network

FAST = HttpConfig(timeout=2.0, retries=1, backoff=0.01, min_delay=0.0)


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[SnapshotServer]:
    root = tmp_path / "tiny"
    (root / "news").mkdir(parents=True)
    (root / "news" / "a.html").write_text("<html><body>a</body></html>", encoding="utf-8")
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n", encoding="utf-8")
    with SnapshotServer(root) as srv:
        yield srv


@pytest.fixture
def proxy() -> Iterator[ForwardingProxy]:
    with forwarding_proxy() as p:
        yield p


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> smtp.TestCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tls(ca: smtp.TestCA) -> Iterator[TlsSite]:
    with tls_site(ca.server_context()) as s:
        yield s


def trusting(ca: smtp.TestCA) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.ca_file))


def test_http_goes_through_the_proxy_robots_and_redirects_too(
    tiny: SnapshotServer, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    tiny.add_fault("/old", Fault(status=301, headers={"Location": "/news/a"}))
    with HttpClient(FAST) as http:
        r = http.get(tiny.url("/old"))
    assert r.status == 200 and r.final_url == tiny.url("/news/a")
    assert [(p.method, p.target) for p in proxy.passed] == [
        ("GET", tiny.url("/robots.txt")),
        ("GET", tiny.url("/old")),
        ("GET", tiny.url("/news/a")),
    ]
    assert [q.path for q in tiny.requests] == ["/robots.txt", "/old", "/news/a"]
    assert all(p.authorization is None for p in proxy.passed)


def test_proxy_credentials_are_sent_as_basic_auth(
    tiny: SnapshotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with forwarding_proxy(credentials=("office", "p@ss:word")) as proxy:
        port = proxy.server_address[1]
        monkeypatch.setenv("http_proxy", f"http://office:p%40ss%3Aword@127.0.0.1:{port}")
        with HttpClient(FAST) as http:
            assert http.get(tiny.url("/news/a")).status == 200
        assert len(proxy.passed) == 2
        assert {p.authorization for p in proxy.passed} == {proxy.expected_authorization()}

        monkeypatch.setenv("http_proxy", f"http://office:wrong@127.0.0.1:{port}")
        with (
            HttpClient(FAST) as http,
            pytest.raises(FetchError, match="HTTP 407 Proxy Authentication"),
        ):
            http.get(tiny.url("/news/a"))
    assert tiny.hits("/news") == 1  # the refused request never reached the site


def test_https_is_tunnelled_with_connect_and_the_sites_certificate_checked(
    tls: TlsSite, ca: smtp.TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    with forwarding_proxy(credentials=("office", "secret")) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"office:secret@127.0.0.1:{proxy.server_address[1]}")
        with HttpClient(FAST, transport=HttpTransport(ssl_context=trusting(ca))) as http:
            r = http.get(tls.origin + "/old")
            again = http.get(tls.origin + "/news/b")
        assert r.final_url == tls.origin + "/news" and "page /news" in r.text()
        assert "page /news/b" in again.text()
        # One tunnel, kept alive, carried robots.txt, the redirect and both pages.
        assert proxy.passed == [proxy.passed[0]]
        assert proxy.passed[0].method == "CONNECT"
        assert proxy.passed[0].target == f"localhost:{tls.server_address[1]}"
        assert proxy.passed[0].authorization == proxy.expected_authorization()
    assert tls.paths == ["/robots.txt", "/old", "/news", "/news/b"]


def test_a_tunnel_refused_for_credentials_fails_at_once_naming_the_proxy(
    tls: TlsSite, ca: smtp.TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    with forwarding_proxy(credentials=("office", "secret")) as proxy:
        port = proxy.server_address[1]
        monkeypatch.setenv("HTTPS_PROXY", f"http://office:nope@127.0.0.1:{port}")
        http = HttpClient(FAST, transport=HttpTransport(ssl_context=trusting(ca)))
        with http, pytest.raises(FetchError) as caught:
            http.get(tls.origin + "/news")
        assert len(proxy.passed) == 1  # a 407 is not retried
    assert f"proxy 127.0.0.1:{port} (from HTTPS_PROXY) refused the tunnel: 407" in str(caught.value)
    assert tls.paths == []


def test_the_sites_certificate_is_checked_through_the_tunnel(
    tls: TlsSite, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    http = HttpClient(FAST)  # the system's CAs: the test CA is not among them
    with http, pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
        http.get(tls.origin + "/news")
    assert proxy.passed and proxy.passed[0].method == "CONNECT"


def test_no_proxy_hosts_are_reached_directly(
    tiny: SnapshotServer, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", f"example.org, {tiny.origin.removeprefix('http://')}")
    with HttpClient(FAST) as http:
        assert http.get(tiny.url("/news/a")).status == 200
    assert proxy.passed == []
    assert tiny.hits("/news/a") == 1
    monkeypatch.setenv("NO_PROXY", "example.org, 127.0.0.0/8")  # a network, as curl reads it
    with HttpClient(FAST) as http:
        assert http.get(tiny.url("/news/a")).status == 200
    assert proxy.passed == []
    assert tiny.hits("/news/a") == 2


def test_an_unreachable_proxy_is_named(
    tiny: SnapshotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with HttpClient(FAST) as http, pytest.raises(FetchError) as caught:
        http.get(tiny.url("/news/a"))
    assert "proxy 127.0.0.1:9 (from HTTP_PROXY) refused the connection" in str(caught.value)
    assert tiny.requests == []


def test_a_whole_fetch_run_goes_through_the_proxy(
    server: SnapshotServer,
    proxy: ForwardingProxy,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    config = local_config(server.origin, tmp_path / "run")
    report = fetch(config)
    assert report.ok and report.sources[0].new > 0
    assert len(proxy.passed) == len(server.requests) > report.sources[0].new
    assert {p.target for p in proxy.passed} == {server.origin + q.path for q in server.requests}


# ---------------------------------------------------------------------- the rules, no sockets


def settings(**env: str) -> dict[str, str]:
    return env


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypass"),
    [
        ("example.org", "http://example.org/x", True),
        ("example.org", "http://www.example.org/x", True),
        (".example.org", "https://www.example.org/x", True),
        ("example.org", "http://badexample.org/x", False),
        ("*", "https://albania.iom.int/news", True),
        ("albania.iom.int:443", "https://albania.iom.int/news", True),
        ("albania.iom.int:443", "http://albania.iom.int/news", False),
        ("localhost:8080, ALBANIA.iom.int", "https://albania.iom.int/news", True),
        ("localhost:8080", "http://localhost:8081/", False),
        ("", "http://example.org/", False),
        # Networks, as curl and Go read them; urllib alone knows names and suffixes.
        ("10.0.0.0/8", "http://10.20.30.40/news", True),
        ("192.168.1.0/24, example.org", "http://192.168.2.1/news", False),
        ("example.org,192.168.1.0/24", "http://192.168.1.77:8080/news", True),
        ("fd00::/8", "http://[fd12::1]/news", True),
        ("10.0.0.0/8", "http://[fd12::1]/news", False),
        ("10.0.0.0/8", "http://ten.example.org/news", False),  # a name is not resolved
        ("not/a-network", "http://10.0.0.1/news", False),
    ],
)
def test_no_proxy_matching(no_proxy: str, url: str, bypass: bool) -> None:
    from urllib.parse import urlsplit

    proxies = proxies_from_environment(
        settings(http_proxy="proxy:3128", https_proxy="proxy:3128", no_proxy=no_proxy)
    )
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    chosen = proxies.for_url(parts.scheme, parts.hostname or "", port)
    assert (chosen is None) is bypass


def test_lower_case_wins_and_an_empty_one_turns_the_proxy_off() -> None:
    both = proxies_from_environment(settings(http_proxy="http://low:1", HTTP_PROXY="http://up:2"))
    assert both.http is not None and (both.http.host, both.http.variable) == ("low", "http_proxy")
    off = proxies_from_environment(settings(https_proxy="", HTTPS_PROXY="http://up:2"))
    assert off.https is None
    upper = proxies_from_environment(settings(HTTPS_PROXY="proxy.corp"))
    assert upper.https is not None and (upper.https.port, upper.https.variable) == (
        80,
        "HTTPS_PROXY",
    )
    assert upper.http is None  # https_proxy is not used for http URLs


def test_http_proxy_is_ignored_under_cgi() -> None:
    assert (
        proxies_from_environment(settings(HTTP_PROXY="http://evil:1", REQUEST_METHOD="GET")).http
        is None
    )


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("socks5://proxy:1080", "only http:// proxies are supported"),
        ("http://proxy:notaport", "not a proxy URL"),
        ("http://:3128", "the proxy URL names no host"),
    ],
)
def test_an_unusable_proxy_variable_is_a_config_error_naming_it(value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=f"HTTPS_PROXY='{value}': {says}"):
        proxies_from_environment(settings(HTTPS_PROXY=value))
