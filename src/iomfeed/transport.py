"""The wire under the polite client: send one request, hand back status, headers and a body
to read. Two transports: :class:`HttpTransport` (the real one, with proxies from the
environment) and :class:`MockTransport` (answers from a function, for fast tests).

What a transport must not do: retry, follow redirects, read robots.txt, pace requests, cap or
decode bodies. All of that is :class:`~iomfeed.http.HttpClient`'s, so it holds whichever
transport is plugged in. A transport signals a connection-level failure with an ``OSError``
(or an ``http.client.HTTPException``), which the client retries like any other.

Why the standard library and not httpx (measured for issue 10 on the 2-core build machine,
``python -X importtime``, median of 21 runs, other jobs running): importing httpx on top of
what a cron run already loads costs 47 ms at best and 79 ms median, while ``urllib.request``
(whose ``proxy_bypass_environment`` matches ``NO_PROXY`` here) is already imported by
``urllib.robotparser``, so proxy support costs no import at all. The unchanged cron run
(``benchmarks/run.py --only ingest``) measured 351 ms under that load against a 300 ms target:
httpx would add about a fifth to it. ``http.client`` already speaks CONNECT
(``set_tunnel``), so the proxy code here is small.

Proxies (read once, when the transport is made): ``http_proxy``/``HTTP_PROXY`` for http URLs,
``https_proxy``/``HTTPS_PROXY`` for https URLs (tunnelled with CONNECT, so TLS is end to end
and the certificate checked is the site's), ``no_proxy``/``NO_PROXY`` for hosts reached
directly. The lower-case name wins when both are set, as in curl and urllib; ``HTTP_PROXY`` is
ignored when ``REQUEST_METHOD`` is set (CGI, "httpoxy"). A user and password in the proxy URL
are sent as ``Proxy-Authorization: Basic``.
"""

from __future__ import annotations

import http.client
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)

__all__ = [
    "HttpTransport",
    "MockTransport",
    "Proxy",
    "ProxyError",
    "Reply",
    "Request",
    "Transport",
    "TransportResponse",
    "proxies_from_environment",
]


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


class ProxyError(ConnectionError):
    """The proxy could not be reached or refused the request. ``permanent`` when retrying
    cannot help (the proxy answered CONNECT with a 4xx, such as 407 for wrong credentials)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


# ---------------------------------------------------------------------- proxies


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy: where it is, its credentials (if any) and the variable that named it."""

    host: str
    port: int
    variable: str
    authorization: str | None = None  # the whole Proxy-Authorization value

    def __str__(self) -> str:
        return f"{self.host}:{self.port} (from {self.variable})"


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """The proxies of the environment: one per URL scheme, and the hosts that bypass them."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: str = ""

    def for_url(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or not self.no_proxy:
            return proxy
        # Loaded by urllib.robotparser already; undocumented but stable since Python 3.0
        # (typeshed leaves it out), and the same matching urllib itself does.
        from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

        # With the port always given, "host:port" entries match default ports too.
        name = f"[{host}]" if ":" in host else host
        if bool(proxy_bypass_environment(f"{name}:{port}", {"no": self.no_proxy})):
            return None
        return proxy


def _environment_value(environ: Mapping[str, str], lower: str) -> tuple[str, str] | None:
    """(variable name, value) of ``lower`` or its upper-case twin; lower case wins, and a
    set but empty lower-case variable turns the proxy off."""
    if lower in environ:
        value = environ[lower].strip()
        return (lower, value) if value else None
    upper = lower.upper()
    if upper == "HTTP_PROXY" and "REQUEST_METHOD" in environ:
        return None  # a CGI request header could have set it ("httpoxy")
    value = environ.get(upper, "").strip()
    return (upper, value) if value else None


def parse_proxy(variable: str, value: str) -> Proxy:
    """A proxy URL such as ``http://user:secret@proxy.example:3128``; ``proxy:3128`` means
    http. Raises :class:`~iomfeed.errors.ConfigError` naming the variable when it is not
    usable (no guessing: a proxy ignored would send the requests past it)."""
    from .errors import ConfigError

    url = value if "://" in value else f"http://{value}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{variable}={value!r}: not a proxy URL ({exc})") from None
    if parts.scheme != "http":
        raise ConfigError(
            f"{variable}={value!r}: only http:// proxies are supported"
            f" (https URLs go through them with CONNECT)"
        )
    if not parts.hostname:
        raise ConfigError(f"{variable}={value!r}: the proxy URL names no host")
    authorization = None
    if parts.username is not None:
        import base64

        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    return Proxy(parts.hostname, port or 80, variable, authorization)


def proxies_from_environment(environ: Mapping[str, str] | None = None) -> ProxySettings:
    """The proxy settings of ``environ`` (the process environment by default)."""
    env = os.environ if environ is None else environ
    found: dict[str, Proxy | None] = {}
    for scheme in ("http", "https"):
        named = _environment_value(env, f"{scheme}_proxy")
        found[scheme] = parse_proxy(*named) if named else None
    no_proxy = _environment_value(env, "no_proxy")
    return ProxySettings(found["http"], found["https"], no_proxy[1] if no_proxy else "")


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

    ``proxies`` defaults to :func:`proxies_from_environment`; ``ssl_context`` to the system's
    default (which honours ``SSL_CERT_FILE``, for an office proxy that inspects TLS).
    """

    def __init__(
        self, *, proxies: ProxySettings | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.proxies = proxies_from_environment() if proxies is None else proxies
        self._ssl_context = ssl_context
        self._connections: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def send(self, request: Request) -> TransportResponse:
        parts = urlsplit(request.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (parts.scheme, host, port)
        proxy = self.proxies.for_url(parts.scheme, host, port)
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
            raise _proxy_error(proxy, exc) from exc
        return conn

    def _drop(self, key: tuple[str, str, int]) -> None:
        conn = self._connections.pop(key, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for key in list(self._connections):
            self._drop(key)


def _proxy_error(proxy: Proxy, exc: OSError) -> OSError:
    """The failure to reach a site through ``proxy``, said with the proxy's name."""
    import ssl

    if isinstance(exc, ssl.SSLError | TimeoutError):
        return exc  # the tunnel was up: the site's TLS, or slowness, is not the proxy's fault
    text = str(exc)
    if text.startswith("Tunnel connection failed: "):
        answer = text.removeprefix("Tunnel connection failed: ")
        code = answer[:3]
        return ProxyError(
            f"proxy {proxy} refused the tunnel: {answer}",
            permanent=code.isdigit() and 400 <= int(code) < 500,
        )
    if isinstance(exc, ConnectionRefusedError):
        return ProxyError(f"proxy {proxy} refused the connection")
    return ProxyError(f"proxy {proxy} not reachable: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------- the mock transport


@dataclass(frozen=True, slots=True)
class Reply:
    """What :class:`MockTransport`'s function answers. Header names in any case."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class _MockResponse:
    def __init__(self, reply: Reply) -> None:
        self.status = reply.status
        self.headers = {k.lower(): v for k, v in reply.headers.items()}
        self._body = b"" if reply.status in (204, 304) else reply.body
        self._at = 0

    def read(self, amount: int, timeout: float) -> bytes:
        chunk = self._body[self._at : self._at + amount]
        self._at += len(chunk)
        return chunk

    def close(self) -> None:
        pass


class MockTransport:
    """A transport that answers every request from ``handler(request) -> Reply``, in
    process, without a socket (like httpx's ``MockTransport``). The handler may raise an
    ``OSError`` (``ConnectionRefusedError``, ``TimeoutError``...) to play a network failure.
    Everything the client does above the wire (robots.txt, retries, redirects, the body cap,
    gzip, conditional GET) runs as usual. ``requests`` lists what was sent, in order.
    """

    def __init__(self, handler: Callable[[Request], Reply]) -> None:
        self.handler = handler
        self.requests: list[Request] = []

    def send(self, request: Request) -> TransportResponse:
        self.requests.append(request)
        return _MockResponse(self.handler(request))

    def close(self) -> None:
        pass
