"""A small HTTP server that replays a static snapshot of the IOM Albania news site.

The live site (a Drupal install) cannot be reached from tests, demos or benchmarks, so a
snapshot of it lives in a folder and this module serves that folder on ``127.0.0.1`` with
the same URL scheme as the real site:

========================================  ==============================================
URL                                       file (relative to the snapshot root)
========================================  ==============================================
``/``                                     ``index.html``
``/news``, ``/news?page=0``               ``news/index.html``
``/news?page=N``                          ``news/page-N.html``; a page beyond the last
                                          one answers the *last* page with 200 (Drupal's
                                          pager clamps), a non-numeric page is page 0
``/news/<slug>``                          ``news/<slug>.html``
``/index.php/<rest>``                     same as ``/<rest>`` (Drupal's front controller)
``/X`` (generic)                          the file ``X`` if it exists, else ``X.html``,
                                          else ``X/index.html``
========================================  ==============================================

Trailing slashes and query parameters other than ``page`` do not affect routing. Paths
with ``..`` segments are answered with 400 and files reached through symlinks that lead
out of the root with 404. Unknown addresses get a small HTML 404 page.

Text files (HTML, XML, plain text, JSON, CSS, JavaScript) contain absolute links to the
live origin; those are rewritten to the server's own origin in the bytes served. Every
response carries a strong ``ETag`` (a hash of the bytes served) and ``Last-Modified`` (the
file's mtime), and conditional requests get ``304 Not Modified``.

Tests can inject :class:`Fault` objects per request target (error statuses, delays,
truncated bodies, replacement bodies) and inspect the :attr:`SnapshotServer.requests` log.

Run ``python -m iomfeed.demo.server [--root DIR] [--port N]`` to serve the bundled
snapshot until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import hashlib
import mimetypes
import os
import re
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "DEFAULT_LIVE_ORIGINS",
    "DEFAULT_ROOT",
    "Fault",
    "RequestRecord",
    "SnapshotServer",
    "main",
]

DEFAULT_LIVE_ORIGINS: Final[tuple[str, ...]] = (
    "https://albania.iom.int",
    "http://albania.iom.int",
)
"""Origins of the live site that are rewritten to the local origin in text responses."""

DEFAULT_ROOT: Final[Path] = Path(__file__).resolve().parent / "site"
"""The snapshot bundled with the package."""

SERVER_SOFTWARE: Final = "iomfeed-snapshot/1.0"

_CACHE_CONTROL: Final = "public, max-age=0, must-revalidate"
_CACHE_ENTRIES: Final = 8192
_KEEP_ALIVE_TIMEOUT: Final = 30.0

# Files whose bytes are searched for the live origin.
_TEXT_SUFFIXES: Final = frozenset(
    {".html", ".htm", ".xml", ".txt", ".json", ".rss", ".atom", ".css", ".js", ".csv"}
)

# Explicit types for the usual suspects so results do not depend on the host's mime.types.
_CONTENT_TYPES: Final[Mapping[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".ico": "image/vnd.microsoft.icon",
    ".pdf": "application/pdf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}

_PAGE_FILE = re.compile(r"page-(\d+)\.html")
_PHP_INT = re.compile(r"\s*([+-]?\d+)")
_ENTITY_TAG = re.compile(r'(?:W/)?"[^"]*"')

_ERROR_PAGE: Final = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    "<title>{title} | IOM Albania</title>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n"
    "<p>{text}</p>\n</main>\n</body>\n</html>\n"
)


class _FrozenHeaders(Mapping[str, str]):
    """An immutable, hashable header mapping (the default of :attr:`Fault.headers`)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items: tuple[tuple[str, str], ...] = tuple((items or {}).items())

    def __getitem__(self, key: str) -> str:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return repr(dict(self._items))


_NO_HEADERS: Final = _FrozenHeaders()


@dataclass(frozen=True)
class Fault:
    """A misbehaviour to inject for one request target (see :meth:`SnapshotServer.add_fault`).

    The kind of response depends on the fields:

    * ``raw_body`` set: answer ``status`` with exactly these bytes (not rewritten) and
      ``content_type`` (default: the routed file's type, else ``application/octet-stream``).
      With ``status=200`` this replaces a page's content, e.g. with a windows-1252 page or
      an oversized body.
    * ``truncate``: send the real response's headers, including the full
      ``Content-Length``, then only half of the body, then close the connection.
    * ``status == 200`` and empty ``body``: serve the real response (useful with
      ``delay`` or extra ``headers``).
    * otherwise: answer ``status`` with ``body`` (``content_type`` defaults to HTML).

    ``headers`` are added to (and override) the response headers in every case, ``delay``
    seconds are slept before answering, and the fault is used for ``times`` requests.
    """

    status: int = 500
    headers: Mapping[str, str] = _NO_HEADERS
    body: bytes = b""
    delay: float = 0.0
    truncate: bool = False
    raw_body: bytes | None = None
    content_type: str | None = None
    times: int = 1

    def __post_init__(self) -> None:
        if not 200 <= self.status <= 599:
            raise ValueError(f"fault status must be in 200..599, got {self.status}")
        if self.times < 1:
            raise ValueError(f"fault times must be at least 1, got {self.times}")
        if self.delay < 0:
            raise ValueError(f"fault delay must not be negative, got {self.delay}")
        if not isinstance(self.headers, _FrozenHeaders):
            object.__setattr__(self, "headers", _FrozenHeaders(self.headers))


@dataclass(frozen=True)
class RequestRecord:
    """One request as received by the server."""

    method: str
    """``GET``, ``HEAD``, …"""
    path: str
    """The request target exactly as sent, including any query string."""
    headers: Mapping[str, str]
    """Request headers with lower-case names (repeated headers joined with ``, ``)."""
    status: int
    """Status code of the answer (recorded just before the answer is sent)."""
    time: float
    """Wall-clock time (``time.time()``) when the request was received."""


@dataclass(frozen=True)
class _Resource:
    """A file as served: rewritten bytes plus validators."""

    body: bytes
    etag: str
    mtime: float
    content_type: str


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    truncate: bool = False


@dataclass
class _PendingFault:
    fault: Fault
    remaining: int = field(init=False)

    def __post_init__(self) -> None:
        self.remaining = self.fault.times


def _content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    known = _CONTENT_TYPES.get(suffix)
    if known is not None:
        return known
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if guessed.startswith("text/"):
        guessed += "; charset=utf-8"
    return guessed


def _php_int(text: str) -> int:
    """PHP's ``(int)`` cast, which Drupal's pager applies to ``?page=``."""
    match = _PHP_INT.match(text)
    return int(match.group(1)) if match else 0


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison of ``etag`` against an ``If-None-Match`` value."""
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.removeprefix("W/") == opaque for tag in _ENTITY_TAG.findall(header))


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def _error_page(status: HTTPStatus, text: str) -> bytes:
    return _ERROR_PAGE.format(title=status.phrase, text=text).encode()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], snapshot: SnapshotServer) -> None:
        self.snapshot = snapshot
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(), which may block on DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket, active: bool) -> None:
        with self._connections_lock:
            if active:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Unblock handler threads waiting on idle keep-alive connections."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        if error is not None:
            self.snapshot._record_error(error)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = SERVER_SOFTWARE
    timeout = _KEEP_ALIVE_TIMEOUT
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def version_string(self) -> str:
        return SERVER_SOFTWARE

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.snapshot.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch(send_body=True)

    def do_HEAD(self) -> None:
        self._dispatch(send_body=False)

    def _not_allowed(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit():
            self.rfile.read(int(length))
        elif self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # an unread chunked body: do not reuse
        self._dispatch(send_body=True, allowed=False)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _dispatch(self, *, send_body: bool, allowed: bool = True) -> None:
        snapshot = self.server.snapshot
        received = time.time()
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self._headers_sent = False
        recorded = False
        try:
            fault = snapshot._take_fault(self.path) if allowed else None
            if not allowed:
                response = snapshot._error_response(
                    HTTPStatus.METHOD_NOT_ALLOWED, "Only GET and HEAD are supported."
                )
                response.headers.append(("Allow", "GET, HEAD"))
            elif fault is not None:
                response = snapshot._fault_response(self.path, fault, headers)
            else:
                response = snapshot._response(self.path, headers)
            snapshot._record(
                RequestRecord(self.command, self.path, headers, response.status, received)
            )
            recorded = True
            if fault is not None and fault.delay:
                self.server.stopping.wait(fault.delay)
            self._send(response, send_body=send_body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as error:
            snapshot._record_error(error)
            self.close_connection = True
            if not recorded:
                snapshot._record(RequestRecord(self.command, self.path, headers, 500, received))
            if not self._headers_sent:
                self._send(
                    snapshot._error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "Server error."),
                    send_body=send_body,
                )

    def _send(self, response: _Response, *, send_body: bool) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        self._headers_sent = True
        if response.truncate:
            if send_body:
                self.wfile.write(response.body[: len(response.body) // 2])
            self.close_connection = True
        elif send_body and response.body:
            self.wfile.write(response.body)


class SnapshotServer:
    """Serve a snapshot folder of the site over HTTP on a local port.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`)::

        with SnapshotServer(root) as server:
            urllib.request.urlopen(server.url("/news"), timeout=5)

    The server runs in a background thread; each connection gets its own daemon thread
    and connections are kept alive (HTTP/1.1). Files are looked up on every request, so
    edits to the snapshot show up immediately; the rewritten bytes are cached per
    ``(path, mtime_ns, size, inode)``.
    """

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        live_origins: Sequence[str] = DEFAULT_LIVE_ORIGINS,
        verbose: bool = False,
    ) -> None:
        """Prepare a server for ``root``; nothing is bound until :meth:`start`."""
        self.root = Path(root).resolve()
        self.host = host
        self.port = port
        self.live_origins: tuple[str, ...] = tuple(
            sorted((o.rstrip("/") for o in live_origins), key=len, reverse=True)
        )
        self.verbose = verbose
        self.errors: list[BaseException] = []
        """Unexpected exceptions raised while answering (connection resets excluded)."""
        self._origin: str | None = None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._faults: dict[str, deque[_PendingFault]] = {}
        self._cache: dict[Path, tuple[tuple[int, int, int], _Resource]] = {}
        self._replacements: tuple[tuple[bytes, bytes], ...] = ()

    # -- lifecycle ------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._origin is None:
            raise RuntimeError("the server has not been started")
        return self._origin

    @property
    def running(self) -> bool:
        """Whether the server is currently accepting connections."""
        return self._httpd is not None

    def url(self, path: str) -> str:
        """The local URL for ``path`` (e.g. ``/news?page=2``)."""
        return self.origin + (path if path.startswith("/") else "/" + path)

    def start(self) -> SnapshotServer:
        """Bind the port and serve in a background thread; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("the server is already running")
        if not self.root.is_dir():
            raise FileNotFoundError(f"snapshot root is not a directory: {self.root}")
        server_class = _HTTPServer6 if ":" in self.host else _HTTPServer
        httpd = server_class((self.host, self.port), self)
        port = httpd.server_port
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._origin = f"http://{host}:{port}"
        self._replacements = self._make_replacements(self._origin)
        with self._lock:
            self._cache.clear()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"snapshot-server-{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the port and open connections. Safe to call twice."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SnapshotServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- test helpers ---------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def hits(self, path_prefix: str) -> int:
        """How many logged requests have a target starting with ``path_prefix``."""
        with self._lock:
            return sum(1 for record in self._requests if record.path.startswith(path_prefix))

    def add_fault(self, path: str, fault: Fault) -> None:
        """Queue ``fault`` for the request target ``path`` (exact path and query).

        Faults for one target are used in the order added, each for ``fault.times``
        requests; afterwards the target is served normally again.
        """
        with self._lock:
            self._faults.setdefault(path, deque()).append(_PendingFault(fault))

    def clear(self) -> None:
        """Forget logged requests, pending faults and recorded errors."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self.errors.clear()

    # -- internals used by the handler --------------------------------------------

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _record_error(self, error: BaseException) -> None:
        with self._lock:
            self.errors.append(error)
        if self.verbose:
            traceback.print_exception(error, file=sys.stderr)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(path)
            if not queue:
                return None
            pending = queue[0]
            pending.remaining -= 1
            if pending.remaining <= 0:
                queue.popleft()
                if not queue:
                    del self._faults[path]
            return pending.fault

    def _make_replacements(self, origin: str) -> tuple[tuple[bytes, bytes], ...]:
        pairs: list[tuple[bytes, bytes]] = []
        for live in self.live_origins:
            pairs.append((live.encode(), origin.encode()))
        # Links inside JSON (drupalSettings, JSON-LD) have their slashes escaped.
        for live in self.live_origins:
            pairs.append((live.replace("/", "\\/").encode(), origin.replace("/", "\\/").encode()))
        return tuple(pairs)

    def _rewrite(self, data: bytes) -> bytes:
        for old, new in self._replacements:
            if old in data:
                data = data.replace(old, new)
        return data

    def _inside_root(self, path: Path) -> bool:
        try:
            return path.resolve().is_relative_to(self.root)
        except (OSError, RuntimeError):
            return False

    def _file(self, path: Path) -> Path | None:
        return path if path.is_file() and self._inside_root(path) else None

    def _page(self, directory: Path, index: Path, page: int) -> Path:
        if page <= 0:
            return index
        exact = self._file(directory / f"page-{page}.html")
        if exact is not None:
            return exact
        # Drupal clamps a page number beyond the end to the last page.
        numbers = []
        with os.scandir(directory) as entries:
            for entry in entries:
                match = _PAGE_FILE.fullmatch(entry.name)
                if match:
                    numbers.append(int(match.group(1)))
        for number in sorted(numbers, reverse=True):
            last = self._file(directory / f"page-{number}.html")
            if last is not None:
                return last
        return index

    def _route(self, target: str) -> tuple[HTTPStatus, Path | None]:
        """Map a request target to a file: ``(OK, path)``, or an error status and None."""
        if target.startswith("/"):
            # Origin form; urlsplit would read "//x/y" as a host name.
            raw_path, _, query = target.partition("#")[0].partition("?")
        else:
            parts = urlsplit(target)
            raw_path, query = parts.path, parts.query
        try:
            decoded = unquote(raw_path, errors="strict")
        except UnicodeDecodeError:
            return HTTPStatus.BAD_REQUEST, None
        if "\x00" in decoded or "\\" in decoded:
            return HTTPStatus.BAD_REQUEST, None
        segments = [segment for segment in decoded.split("/") if segment not in ("", ".")]
        if ".." in segments:
            return HTTPStatus.BAD_REQUEST, None
        if segments[:1] == ["index.php"]:
            segments = segments[1:]
        page_values = [value for name, value in parse_qsl(query, True) if name == "page"]
        # PHP keeps the last duplicate; "2,1" addresses several pagers, the first is ours.
        page = max(0, _php_int(page_values[-1].split(",")[0])) if page_values else 0

        base = self.root.joinpath(*segments)
        if segments:
            found = self._file(base) or self._file(base.with_name(segments[-1] + ".html"))
            if found is not None:
                return HTTPStatus.OK, found
        index = self._file(base / "index.html")
        if index is not None:
            return HTTPStatus.OK, self._page(base, index, page)
        return HTTPStatus.NOT_FOUND, None

    def _load(self, path: Path) -> _Resource:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            with self._lock:
                cached = self._cache.get(path)
            if cached is not None and cached[0] == key:
                return cached[1]
            data = handle.read()
        if path.suffix.lower() in _TEXT_SUFFIXES:
            data = self._rewrite(data)
        resource = _Resource(
            body=data,
            etag='"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"',
            mtime=stat.st_mtime,
            content_type=_content_type(path),
        )
        with self._lock:
            self._cache.pop(path, None)
            if len(self._cache) >= _CACHE_ENTRIES:
                del self._cache[next(iter(self._cache))]
            self._cache[path] = (key, resource)
        return resource

    def _error_response(self, status: HTTPStatus, text: str) -> _Response:
        body = _error_page(status, text)
        return _Response(
            status=status,
            headers=[
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-cache"),
            ],
            body=body,
        )

    def _response(
        self, target: str, request_headers: Mapping[str, str], *, conditional: bool = True
    ) -> _Response:
        status, path = self._route(target)
        if path is None:
            text = (
                "The requested page could not be found."
                if status == HTTPStatus.NOT_FOUND
                else "The request could not be understood."
            )
            return self._error_response(status, text)
        try:
            resource = self._load(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            # Deleted or replaced between routing and reading.
            return self._error_response(HTTPStatus.NOT_FOUND, "The requested page is gone.")
        validators = [
            ("ETag", resource.etag),
            ("Last-Modified", _http_date(resource.mtime)),
            ("Cache-Control", _CACHE_CONTROL),
        ]
        if conditional and self._not_modified(resource, request_headers):
            return _Response(status=HTTPStatus.NOT_MODIFIED, headers=validators)
        return _Response(
            status=HTTPStatus.OK,
            headers=[
                ("Content-Type", resource.content_type),
                ("Content-Length", str(len(resource.body))),
                *validators,
                ("X-Content-Type-Options", "nosniff"),
            ],
            body=resource.body,
        )

    @staticmethod
    def _not_modified(resource: _Resource, request_headers: Mapping[str, str]) -> bool:
        if_none_match = request_headers.get("if-none-match")
        if if_none_match is not None:
            return _etag_matches(if_none_match, resource.etag)
        if_modified_since = request_headers.get("if-modified-since")
        if if_modified_since is None:
            return False
        try:
            since = email.utils.parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            return False
        return int(resource.mtime) <= since.timestamp()

    def _fault_response(
        self, target: str, fault: Fault, request_headers: Mapping[str, str]
    ) -> _Response:
        if fault.raw_body is not None:
            content_type = fault.content_type
            if content_type is None:
                _, path = self._route(target)
                content_type = _content_type(path) if path else "application/octet-stream"
            body = fault.raw_body
            response = _Response(
                status=fault.status,
                headers=[
                    ("Content-Type", content_type),
                    ("Content-Length", str(len(body))),
                    ("ETag", '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'),
                    ("Cache-Control", _CACHE_CONTROL),
                ],
                body=body,
            )
        elif fault.truncate or (fault.status == HTTPStatus.OK and not fault.body):
            response = self._response(target, request_headers, conditional=not fault.truncate)
        else:
            response = _Response(
                status=fault.status,
                headers=[
                    ("Content-Type", fault.content_type or "text/html; charset=utf-8"),
                    ("Content-Length", str(len(fault.body))),
                    ("Cache-Control", "no-cache"),
                ],
                body=fault.body,
            )
        response.truncate = fault.truncate
        if fault.headers:
            overridden = {name.lower() for name in fault.headers}
            response.headers = [
                (name, value) for name, value in response.headers if name.lower() not in overridden
            ]
            response.headers.extend(fault.headers.items())
        return response


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a snapshot folder until interrupted; prints the origin on standard output."""
    parser = argparse.ArgumentParser(
        prog="python -m iomfeed.demo.server",
        description="Serve a static snapshot of the IOM Albania news site on this machine.",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        help="snapshot folder to serve (default: the snapshot bundled with iomfeed)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: any free port)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"snapshot folder not found: {args.root}")
    server = SnapshotServer(args.root, host=args.host, port=args.port, verbose=args.verbose)
    try:
        server.start()
    except OSError as error:
        print(f"cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    print(server.origin, flush=True)
    print(f"Serving {server.root} at {server.origin} (press Ctrl-C to stop)", file=sys.stderr)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
