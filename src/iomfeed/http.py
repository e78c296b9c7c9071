"""The one polite HTTP client every source fetches through.

What it promises a site: the configured User-Agent; robots.txt read once per origin and obeyed
(RFC 9309, read by protego: the longest matching rule wins, ``*`` and ``$`` in paths; kept for
a day when the run's store is given as ``robots``, as 2.4 allows, so a cron run every few
minutes asks for it once a day; a 4xx robots.txt allows everything; an unreachable one (no
connection, a timeout, a 5xx after the retries, a redirect loop) forbids everything, is not
kept, and the request fails with :class:`RobotsUnreachable` naming the cause, not as if
robots.txt disallowed it); one request at a time per host, spaced by ``min_delay`` (or the
site's Crawl-delay, if longer); retries with exponential backoff and jitter on connection
errors, 429 and 5xx, honouring ``Retry-After``; a body size cap; a redirect limit; conditional
GET from stored validators.

What it must not do: parse pages, touch the store directly (validators come through the small
:class:`ValidatorStore` interface) or read the clock or sleep other than through the injected
functions, so tests can drive it without waiting.

The wire itself is a :class:`~iomfeed.transport.Transport` (the ``transport`` argument):
by default :class:`~iomfeed.transport.HttpTransport`, the standard library's ``http.client``
with the environment's proxies (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``), chosen over
httpx by measurement (see that module); tests may plug in a
:class:`~iomfeed.transport.mock.MockTransport`. Every rule above holds whichever transport it
is, and robots.txt and redirects travel the same way as the pages.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import random
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urljoin, urlsplit

from .clock import utc_now
from .config import HttpConfig
from .errors import FetchError, RobotsDisallowed, RobotsUnreachable
from .models import Response
from .transport import HttpTransport, ProxyError, Request, Transport, TransportResponse

if TYPE_CHECKING:
    from protego import Protego

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 507, 508, 509, 520, 521, 522, 523, 524})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
#: How long a fetched robots.txt is used (RFC 9309 2.4: "SHOULD NOT" be more than 24 hours).
ROBOTS_MAX_AGE = timedelta(hours=24)


class ValidatorStore(Protocol):
    """Where conditional-GET validators (ETag, Last-Modified) are kept between runs."""

    def get_validators(self, url: str) -> tuple[str | None, str | None]: ...


def _parse_robots(text: str) -> Protego:
    """robots.txt read as RFC 9309 says (protego): the longest matching rule wins, an
    ``Allow`` on a tie, with ``*`` and ``$`` in paths; the standard library's parser takes
    the first rule that matches and reads ``*`` as a character."""
    from protego import Protego

    return Protego.parse(text)


def robots_origin(url: str) -> str:
    """The origin whose robots.txt governs ``url`` (RFC 9309 2.3: scheme, host and port):
    lower-case, without a default port, user information or a trailing dot, so that
    ``http://Example.org:80/a`` and ``http://example.org/b`` share one robots.txt, fetched
    and kept once."""
    from .normalize.urls import Origin

    origin = Origin.of(url)
    return f"{origin.scheme}://{origin.netloc}"


class RobotsCache(Protocol):
    """Where each origin's robots.txt is kept between runs (the store)."""

    def cached_robots(self, origin: str, fetched_after: datetime) -> str | None: ...

    def save_robots(self, origin: str, body: str, now: datetime) -> None: ...


@dataclass(slots=True)
class _Pace:
    """Politeness state of one host name, shared by its http and https addresses."""

    last_request: float | None = None
    crawl_delay: float = 0.0


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one attempt got back from the server: status, headers (lower-case names), body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Retry:
    """An attempt that failed in a way worth another try; ``wait`` is the server's
    Retry-After in seconds, if it sent one."""

    reason: str
    status: int | None = None
    wait: float | None = None


class HttpClient:
    """Fetch URLs politely. One instance per run; not thread-safe (one request at a time)."""

    def __init__(
        self,
        config: HttpConfig,
        *,
        validators: ValidatorStore | None = None,
        robots: RobotsCache | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        wall_clock: Callable[[], datetime] = utc_now,
        transport: Transport | None = None,
    ) -> None:
        self.config = config
        self._validators = validators
        self._robots_cache = robots
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._wall_clock = wall_clock
        #: what sends each request; closed with the client
        self.transport: Transport = HttpTransport() if transport is None else transport
        self._paces: dict[str, _Pace] = {}
        # Per origin: its parsed robots.txt, or why it could not be fetched (for this run).
        self._robots: dict[str, Protego | str] = {}  # by robots_origin()
        self.requests = 0  # requests sent over the wire, retries included

    # ------------------------------------------------------------------ public API

    def get(self, url: str, *, conditional: bool = False) -> Response:
        """GET ``url`` following redirects. Returns a 200 or (if ``conditional``) a 304.

        Raises :class:`RobotsDisallowed` for a URL robots.txt forbids and :class:`FetchError`
        for anything else that did not give a usable answer.
        """
        started = self._clock()
        current = url
        for _hop in range(self.config.max_redirects + 1):
            self._check_url(current)
            if self.config.respect_robots_txt and not self._allowed(current):
                raise RobotsDisallowed(current)  # (_allowed raises RobotsUnreachable)
            headers = {}
            etag = last_modified = None
            if conditional and self._validators is not None:
                # Validators are kept per final URL, so a redirected page still gets its 304.
                etag, last_modified = self._validators.get_validators(current)
                if etag:
                    headers["If-None-Match"] = etag
                if last_modified:
                    headers["If-Modified-Since"] = last_modified
            status, resp_headers, body = self._request_with_retries(current, headers)
            if status in _REDIRECTS:
                location = resp_headers.get("location")
                if not location:
                    raise FetchError(current, f"HTTP {status} redirect without a Location")
                current = urljoin(current, location)
                continue
            if status == 304 and (etag or last_modified):
                return Response(url, current, 304, resp_headers, b"", self._clock() - started)
            if status != 200:
                raise FetchError(current, f"HTTP {status} {_reason(status)}", status=status)
            return Response(url, current, 200, resp_headers, body, self._clock() - started)
        raise FetchError(
            url, f"more than {self.config.max_redirects} redirects (http.max_redirects)"
        )

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ robots.txt

    def _allowed(self, url: str) -> bool:
        """Whether robots.txt allows ``url``; raises :class:`RobotsUnreachable` when the
        site's robots.txt could not be fetched this run (asked once per origin and run)."""
        key = robots_origin(url)
        parser = self._robots.get(key)
        if parser is None:
            parser = self._load_robots(key)
            self._robots[key] = parser
            if not isinstance(parser, str):
                delay = parser.crawl_delay(self.config.user_agent)
                if delay is not None:
                    self._pace(url).crawl_delay = float(delay)
        if isinstance(parser, str):
            raise RobotsUnreachable(url, parser)
        return bool(parser.can_fetch(url, self.config.user_agent))

    def _load_robots(self, origin: str) -> Protego | str:
        """The parsed robots.txt of ``origin`` (kept for a day, or fetched), or why it is
        unreachable (RFC 9309 2.3.1.4: then assume complete disallow; not kept, so the next
        run asks again). The caller reports the cause once, in the source's error."""
        robots_url = f"{origin}/robots.txt"
        now = self._wall_clock()
        cache = self._robots_cache
        cached = None if cache is None else cache.cached_robots(origin, now - ROBOTS_MAX_AGE)
        if cached is not None:
            return _parse_robots(cached)
        try:
            status, _headers, body = self._request_with_retries(robots_url, {}, redirects=5)
        except FetchError as exc:
            log.debug("robots.txt at %s unreachable: %s", robots_url, exc.reason)
            return exc.reason
        if 200 <= status < 300:
            from .charset import decode_body

            text = decode_body(body, "text/plain; charset=utf-8")
        elif 400 <= status < 500:
            text = ""  # RFC 9309 2.3.1.3: unavailable means no rules
        elif status in _REDIRECTS:
            return "more than 5 redirects"
        else:
            return f"HTTP {status} {_reason(status)}".rstrip()
        if cache is not None:
            cache.save_robots(origin, text, now)
        return _parse_robots(text)

    # ------------------------------------------------------------------ the wire

    def _check_url(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError as exc:
            raise FetchError(url, f"malformed URL: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(url, "not an http(s) URL")

    def _pace(self, url: str) -> _Pace:
        """The politeness state of the URL's host name (shared by http and https)."""
        return self._paces.setdefault((urlsplit(url).hostname or "").lower(), _Pace())

    def post_form(self, url: str, fields: dict[str, str]) -> int:
        """POST a form (a WebSub ping, say) with the same retries; any 2xx is success.

        Not subject to robots.txt: it is a notification sent to a service, not crawling.
        """
        from urllib.parse import urlencode

        self._check_url(url)
        body = urlencode(fields).encode("ascii")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _headers, _body = self._request_with_retries(url, headers, method="POST", body=body)
        if not 200 <= status < 300:
            raise FetchError(url, f"HTTP {status} {_reason(status)}", status=status)
        return status

    def _request_with_retries(
        self,
        url: str,
        headers: dict[str, str],
        *,
        redirects: int = 0,
        method: str = "GET",
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        attempts = self.config.retries + 1
        failures = 0  # a redirect followed is not a failed attempt
        while True:
            outcome = self._request_once(url, headers, method, body)
            if isinstance(outcome, _Retry):
                failures += 1
                if failures >= attempts:
                    tries = f" (gave up after {attempts} attempts)" if attempts > 1 else ""
                    raise FetchError(url, outcome.reason + tries, status=outcome.status)
                self._wait_to_retry(url, outcome, failures - 1)
                continue
            location = outcome.headers.get("location")
            if redirects and outcome.status in _REDIRECTS and location:
                redirects -= 1
                url = urljoin(url, location)
                self._check_url(url)
                continue
            return outcome.status, outcome.headers, outcome.body

    def _wait_to_retry(self, url: str, retry: _Retry, count: int) -> None:
        """Pause before retry number ``count`` (from 0), or give up when the server asks
        for a longer wait than ``http.max_retry_after``."""
        delay = self._backoff(count, retry.wait)
        if delay is None:
            raise FetchError(
                url,
                f"{retry.reason}; the server asked to wait {retry.wait:.0f} s, longer than"
                f" http.max_retry_after",
                status=retry.status,
            )
        log.info("retrying %s in %.1f s (%s)", url, delay, retry.reason)
        self._sleep(delay)

    def _backoff(self, retry: int, server_wait: float | None) -> float | None:
        if server_wait is not None:
            if server_wait > self.config.max_retry_after:
                return None
            return server_wait
        base: float = self.config.backoff * 2.0**retry
        return base / 2 + self._jitter() * base / 2  # "equal jitter"

    def _request_once(
        self, url: str, extra: dict[str, str], method: str = "GET", payload: bytes | None = None
    ) -> _Answer | _Retry:
        """One request on the wire: the server's answer, or a :class:`_Retry` saying why
        another try is worth it. Raises :class:`FetchError` for what no retry can mend."""
        pace = self._pace(url)
        self._wait_politely(pace)
        headers = {
            "User-Agent": self.config.user_agent,
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,"
            "application/atom+xml,application/rss+xml,*/*;q=0.8",
            "Accept-Encoding": "gzip",
            **extra,
        }
        request = Request(method, url, headers, payload, self.config.timeout)
        deadline = self._clock() + self.config.timeout
        self.requests += 1
        try:
            resp = self.transport.send(request)
            try:
                status = resp.status
                resp_headers = dict(resp.headers)
                body = self._read_body(url, resp, resp_headers, deadline)
            finally:
                resp.close()
        except ProxyError as exc:
            if exc.permanent:
                raise FetchError(url, str(exc)) from exc
            return _Retry(str(exc))
        except (OSError, http.client.HTTPException) as exc:
            return _Retry(_describe_error(exc))
        finally:
            pace.last_request = self._clock()
        if status in _RETRY_STATUSES:
            return _Retry(
                f"HTTP {status} {_reason(status)}",
                status=status,
                wait=_retry_after(resp_headers.get("retry-after"), self._wall_clock()),
            )
        return _Answer(status, resp_headers, body)

    def _read_body(
        self, url: str, resp: TransportResponse, headers: dict[str, str], deadline: float
    ) -> bytes:
        """The body, within the deadline and the size cap, un-gzipped. An error leaves it
        unread; the caller's ``resp.close()`` then abandons the connection."""
        limit = self.config.max_body_bytes
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise FetchError(
                url, f"body of {int(length)} bytes is over http.max_body_bytes ({limit})"
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise TimeoutError(f"body not complete within {self.config.timeout} s")
            chunk = resp.read(_CHUNK, remaining)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise FetchError(url, f"body over http.max_body_bytes ({limit}), stopped reading")
            chunks.append(chunk)
        body = b"".join(chunks)
        # A 304 (or 204) may carry the Content-Length of the full page but never a body.
        if resp.status not in (204, 304) and length.isdigit() and len(body) < int(length):
            raise http.client.IncompleteRead(body, int(length) - len(body))
        if headers.get("content-encoding", "").lower() in ("gzip", "x-gzip"):
            body = self._gunzip(url, body)
            headers.pop("content-encoding", None)
        return body

    def _gunzip(self, url: str, body: bytes) -> bytes:
        limit = self.config.max_body_bytes
        try:
            out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, limit + 1)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise FetchError(url, f"corrupt gzip body: {exc}") from exc
        if len(out) > limit:
            raise FetchError(url, f"decompressed body over http.max_body_bytes ({limit})")
        return out

    def _wait_politely(self, pace: _Pace) -> None:
        if pace.last_request is None:
            return
        gap = max(self.config.min_delay, pace.crawl_delay)
        wait = pace.last_request + gap - self._clock()
        if wait > 0:
            self._sleep(wait)


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _reason(status: int) -> str:
    try:
        return http.client.responses[status]
    except KeyError:
        return ""


def _describe_error(exc: BaseException) -> str:
    """One phrase for a connection-level failure, each cause said once."""
    if isinstance(exc, TimeoutError | socket.timeout):
        detail = str(exc)
        # socket timeouts say only "timed out"; our own deadline says what timed out.
        return f"timed out ({detail})" if detail and detail != "timed out" else "timed out"
    if isinstance(exc, socket.gaierror):
        return f"host name not found (DNS: {exc.strerror or exc})"
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed mid-body ({len(exc.partial)} bytes read, more expected)"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "server closed the connection without answering"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc}"
