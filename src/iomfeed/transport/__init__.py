"""The wire under the polite client: send one request, hand back status, headers and a body
to read. Two transports: :class:`HttpTransport` here (the real one, with the proxies of
:mod:`.proxy`) and :class:`~iomfeed.transport.mock.MockTransport` (answers from a function,
for fast tests). Add another by writing a class with ``send`` and ``close``.

What a transport must not do: retry, follow redirects, read robots.txt, pace requests, cap or
decode bodies. All of that is :class:`~iomfeed.http.HttpClient`'s, so it holds whichever
transport is plugged in. A transport signals a connection-level failure with an ``OSError``
(or an ``http.client.HTTPException``), which the client retries like any other.

Why the standard library and not httpx (measured for issue 10 on the 2-core build machine
with other jobs running, so read the ratios rather than the milliseconds): ``python -X
importtime``, 21 runs each, importing httpx 0.28 on top of what a cron run already loads
(``http.client``, ``ssl``, ``urllib.robotparser``...) costs 42-47 ms at best and 57-79 ms
median, as much again as ``http.client`` itself; ``urllib.request``, whose
``proxy_bypass_environment`` matches ``NO_PROXY`` here, is imported only when a proxy has
a ``NO_PROXY`` list (robots.txt is read by protego, not ``urllib.robotparser``, which
imports it). The unchanged cron run
(``benchmarks/run.py --only ingest``) measured 351 ms under that load against its 300 ms
target, so httpx would add a sixth to a fifth; with this module, 25 interleaved runs of the
unchanged fetch gave a median of 460 ms against 457 ms before it (minimum 230 against 237),
no difference. ``http.client`` already speaks CONNECT
(``set_tunnel``), so the proxy code is small. Creating a frozen dataclass costs about a
millisecond at import here, so the proxy records and the mock live in their own modules,
imported only when used: a run without a proxy loads this module alone.

Through a proxy an https URL is tunnelled with CONNECT, so TLS runs end to end and the
certificate checked is the site's; an http URL is sent to the proxy in absolute form.
"""

from __future__ import annotations

import http.client
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from ..errors import SourceError

if TYPE_CHECKING:
    import ssl

    from .proxy import Proxy, ProxySettings

log = logging.getLogger(__name__)

__all__ = ["HttpTransport", "ProxyError", "Request", "Transport", "TransportResponse"]

_PROXY_VARIABLES = (
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the client sends it: absolute URL, all headers, the read timeout."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None
    timeout: float = 30.0


class TransportResponse(Protocol):
    """A response whose status and headers have arrived and whose body is still to read."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Header names in lower case."""
        ...

    def read(self, amount: int, timeout: float) -> bytes:
        """Up to ``amount`` bytes of the body (``b""`` at its end), waiting at most
        ``timeout`` seconds; raises ``OSError`` or ``http.client.HTTPException``."""
        ...

    def close(self) -> None:
        """Done with it: a body not read to its end is abandoned (and its connection)."""
        ...


class Transport(Protocol):
    """Sends one request at a time and returns the answer; keeps connections as it likes."""

    def send(self, request: Request) -> TransportResponse: ...

    def close(self) -> None: ...


class ProxyError(SourceError):
    """The proxy could not be reached or refused the request. ``permanent`` when retrying
    cannot help (the proxy answered CONNECT with a 4xx, such as 407 for wrong credentials)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


# ---------------------------------------------------------------------- the real transport


class _Response:
    """An ``http.client`` response; reading it to the end gives its connection back."""

    def __init__(
        self,
        owner: HttpTransport,
        key: tuple[str, str, int],
        conn: http.client.HTTPConnection,
        resp: http.client.HTTPResponse,
    ) -> None:
        self._owner, self._key, self._conn, self._resp = owner, key, conn, resp
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
        self._done = False

    def read(self, amount: int, timeout: float) -> bytes:
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        chunk = self._resp.read(amount)  # read(), not read1(): it frees the connection at the end
        if not chunk:
            self._done = True
        return chunk

    def close(self) -> None:
        # Kept alive only after a whole body: a short one (Content-Length not reached,
        # ``length`` left over) leaves the connection out of step with the server.
        if self._done and not self._resp.will_close and not self._resp.length:
            return
        self._resp.close()
        self._owner._drop(self._key)


class HttpTransport:
    """The real wire: one kept-alive ``http.client`` connection per origin, through the
    environment's proxy when there is one for the URL.

    ``proxies`` defaults to :func:`.proxy.proxies_from_environment` (``None`` when no proxy
    variable is set at all); ``ssl_context`` to the system's
    default (which honours ``SSL_CERT_FILE``, for an office proxy that inspects TLS).
    """

    def __init__(
        self, *, proxies: ProxySettings | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        if proxies is None and any(name in os.environ for name in _PROXY_VARIABLES):
            from .proxy import proxies_from_environment

            proxies = proxies_from_environment()
        self.proxies = proxies
        self._ssl_context = ssl_context
        self._connections: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def send(self, request: Request) -> TransportResponse:
        parts = urlsplit(request.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (parts.scheme, host, port)
        proxy = self.proxies.for_url(parts.scheme, host, port) if self.proxies else None
        conn = self._connections.get(key)
        try:
            if conn is None:
                conn = self._connections[key] = self._open(
                    parts.scheme, host, port, proxy, request.timeout
                )
            conn.timeout = request.timeout
            if conn.sock is not None:  # a reused socket keeps the last read's short timeout
                conn.sock.settimeout(request.timeout)
            headers = dict(request.headers)
            if proxy is not None and parts.scheme == "http":
                # Absolute form (RFC 9112 3.2.2): the proxy needs to know where to go.
                target = request.url.split("#", 1)[0]
                if proxy.authorization:
                    headers["Proxy-Authorization"] = proxy.authorization
            else:
                target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request(request.method, target, body=request.body, headers=headers)
            resp = conn.getresponse()
        except BaseException:
            self._drop(key)
            raise
        return _Response(self, key, conn, resp)

    def _open(
        self, scheme: str, host: str, port: int, proxy: Proxy | None, timeout: float
    ) -> http.client.HTTPConnection:
        """A connected connection (through the proxy's tunnel for https)."""
        if proxy is not None:
            log.debug("%s://%s:%s through proxy %s", scheme, host, port, proxy)
        conn: http.client.HTTPConnection
        if scheme == "https":
            import ssl

            context = self._ssl_context or ssl.create_default_context()
            if proxy is None:
                return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
            conn = http.client.HTTPSConnection(
                proxy.host, proxy.port, timeout=timeout, context=context
            )
            tunnel_headers = (
                {"Proxy-Authorization": proxy.authorization} if proxy.authorization else None
            )
            conn.set_tunnel(host, port, headers=tunnel_headers)
        elif proxy is None:
            return http.client.HTTPConnection(host, port, timeout=timeout)
        else:
            conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)
        try:
            conn.connect()  # now, so that a failure can name the proxy
        except OSError as exc:
            conn.close()
            from .proxy import proxy_error

            raise proxy_error(proxy, exc) from exc
        return conn

    def _drop(self, key: tuple[str, str, int]) -> None:
        conn = self._connections.pop(key, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for key in list(self._connections):
            self._drop(key)
