"""The transport seam: HttpClient over a MockTransport keeps every rule above the wire
(robots.txt, redirects, retries, the body cap, gzip, conditional GET), with no socket."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from iomfeed.config import HttpConfig
from iomfeed.errors import FetchError, RobotsDisallowed
from iomfeed.http import HttpClient
from iomfeed.transport import Request
from iomfeed.transport.mock import MockTransport, Reply

ROBOTS = Reply(200, b"User-agent: *\nDisallow: /private/\n", {"Content-Type": "text/plain"})


def client(transport: MockTransport, **overrides: object) -> tuple[HttpClient, list[float]]:
    settings: dict[str, Any] = {"timeout": 2.0, "retries": 2, "backoff": 0.5, "min_delay": 0.0}
    settings.update(overrides)
    sleeps: list[float] = []
    http = HttpClient(
        HttpConfig(**settings),
        transport=transport,
        sleep=sleeps.append,
        jitter=lambda: 0.5,
    )
    return http, sleeps


def test_robots_redirects_and_the_request_sent_go_through_the_transport() -> None:
    def answer(request: Request) -> Reply:
        return {
            "/robots.txt": ROBOTS,
            "/old": Reply(301, headers={"Location": "/new"}),
            "/new": Reply(200, b"<p>new</p>", {"Content-Type": "text/html"}),
        }[request.url.removeprefix("https://example.org")]

    mock = MockTransport(answer)
    http, _ = client(mock, user_agent="iomfeed-test (+https://x.org)")
    with http:
        r = http.get("https://example.org/old")
        with pytest.raises(RobotsDisallowed):
            http.get("https://example.org/private/x")
    assert r.final_url == "https://example.org/new" and r.text() == "<p>new</p>"
    assert [q.url for q in mock.requests] == [
        "https://example.org/robots.txt",
        "https://example.org/old",
        "https://example.org/new",
    ]
    assert mock.requests[1].headers["User-Agent"] == "iomfeed-test (+https://x.org)"
    assert mock.requests[1].method == "GET" and mock.requests[1].timeout == 2.0


def test_a_failure_the_handler_raises_is_retried_with_backoff() -> None:
    failures = [ConnectionResetError("reset"), TimeoutError()]

    def answer(request: Request) -> Reply:
        if request.url.endswith("/robots.txt"):
            return Reply(404)
        if failures:
            raise failures.pop(0)
        return Reply(200, gzip.compress(b"unzipped"), {"Content-Encoding": "gzip"})

    http, sleeps = client(MockTransport(answer))
    with http:
        assert http.get("http://example.org/page").body == b"unzipped"
    assert sleeps == [0.375, 0.75] and http.requests == 4


@pytest.mark.parametrize("retries", [0, 2])
def test_a_robots_txt_redirect_is_followed_without_using_up_an_attempt(retries: int) -> None:
    """http -> https is the usual redirect of a robots.txt; with no retries configured it
    used to end the loop with nothing to return."""

    def answer(request: Request) -> Reply:
        if request.url == "http://example.org/robots.txt":
            return Reply(301, headers={"Location": "https://example.org/robots.txt"})
        if request.url.endswith("/robots.txt"):
            return Reply(200, b"User-agent: *\nAllow: /\n", {"Content-Type": "text/plain"})
        return Reply(200, b"<p>ok</p>", {"Content-Type": "text/html"})

    http, sleeps = client(MockTransport(answer), retries=retries)
    with http:
        assert http.get("http://example.org/page").status == 200
    assert sleeps == []


def test_a_failure_after_a_redirect_still_gets_every_attempt() -> None:
    answers = [Reply(503), Reply(503), Reply(200, b"<p>at last</p>")]

    def answer(request: Request) -> Reply:
        if request.url.endswith("/robots.txt"):
            return Reply(404)
        if request.url.endswith("/old"):
            return Reply(302, headers={"Location": "/new"})
        return answers.pop(0)

    http, sleeps = client(MockTransport(answer), retries=2)
    with http:
        assert http.get("https://example.org/old").text() == "<p>at last</p>"
    assert sleeps == [0.375, 0.75]


def test_the_body_cap_and_the_304_hold_over_the_mock() -> None:
    def answer(request: Request) -> Reply:
        if request.url.endswith("/robots.txt"):
            return Reply(404)
        if request.headers.get("If-None-Match") == '"v1"':
            return Reply(304, b"ignored: a 304 has no body", {"ETag": '"v1"'})
        return Reply(200, b"x" * 5000)

    class Validators:
        def get_validators(self, url: str) -> tuple[str | None, str | None]:
            return '"v1"', None

    mock = MockTransport(answer)
    http = HttpClient(
        HttpConfig(max_body_bytes=1000, min_delay=0.0), transport=mock, validators=Validators()
    )
    with http:
        not_modified = http.get("http://example.org/feed", conditional=True)
        with pytest.raises(FetchError, match=r"body over http.max_body_bytes \(1000\)"):
            http.get("http://example.org/feed")
    assert not_modified.status == 304 and not_modified.body == b""
    assert len(mock.requests) == 3  # robots.txt, the 304, the refused body (not retried)


def test_without_proxy_variables_the_proxy_code_and_the_mock_are_not_imported() -> None:
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from iomfeed.config import HttpConfig\n"
        "from iomfeed.http import HttpClient\n"
        "HttpClient(HttpConfig()).close()\n"
        "print(sorted(m for m in sys.modules if m.startswith('iomfeed.transport')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "['iomfeed.transport']"
    env["HTTPS_PROXY"] = "http://proxy.example:3128"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "['iomfeed.transport', 'iomfeed.transport.proxy']"
