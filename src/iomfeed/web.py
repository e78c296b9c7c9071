"""The HTTP side of ``iomfeed serve``: one WSGI application, runnable under any WSGI server.

* the published ``feeds/`` folder, with the feed formats' own content types, ``ETag`` and
  ``Last-Modified``, ``304 Not Modified`` on conditional requests, and gzip when asked for;
* ``/unsubscribe?t=TOKEN``: a GET shows a confirmation page (in the subscriber's language)
  whose button POSTs; a POST (the button, or a mailbox provider's RFC 8058
  ``List-Unsubscribe=One-Click``) unsubscribes at once and answers 200, never a redirect;
  a forged or malformed token gets 400 and changes nothing;
* ``/healthz``: JSON about sources, digests and the schedule; 503 when something is wrong.

It reads and writes only through the store (one connection per request) and never sends mail.
:class:`BoundedServer` runs it for ``serve`` (and the demo): a fixed pool of threads, and a
few seconds for each connection to deliver its request.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from .config import Config
from .digest.unsubscribe import BadToken, load_secret, token_subscriber, verify_token
from .store import Store

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = Mapping[str, Any]

CONTENT_TYPES = {
    "atom.xml": "application/atom+xml; charset=utf-8",
    "rss.xml": "application/rss+xml; charset=utf-8",
    ".xml": "application/atom+xml; charset=utf-8",  # archive pages
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
MAX_FORM_BYTES = 10_000
MAX_PATH_CHARS = 1024  # the longest published path is far shorter; longer ones are 404
GZIP_MIN_BYTES = 512


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip;q=0`` refuses it)."""
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


def stat_is_file(stat: os.stat_result) -> bool:
    import stat as st

    return st.S_ISREG(stat.st_mode)


def content_type(path: Path) -> str | None:
    return CONTENT_TYPES.get(path.name) or CONTENT_TYPES.get(path.suffix)


@lru_cache(maxsize=16)
def _strings(code: str, folder: Path | None) -> dict[str, str]:
    """The unsubscribe pages' words in language ``code`` (its language file)."""
    from . import languages

    words = languages.load(code, folder).unsubscribe
    return {key: getattr(words, key) for key in languages.UNSUBSCRIBE_KEYS}


@lru_cache(maxsize=1)
def _page_template() -> Any:
    from .publish.site import environment

    return environment().get_template("web/unsubscribe.html.j2")


class App:
    """The WSGI application. ``now`` and ``next_times`` are injected (the scheduler knows
    when its jobs run next)."""

    def __init__(
        self,
        config: Config,
        *,
        now: Callable[[], datetime],
        next_times: Callable[[], Mapping[str, datetime | None]] | None = None,
    ) -> None:
        self.config = config
        self.now = now
        self.next_times = next_times
        self.root = config.feeds_path.resolve()
        self.prefix = urlsplit(config.site.public_url).path.rstrip("/")
        self.unsubscribe_path = urlsplit(config.unsubscribe_url).path

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        try:
            if path in ("/unsubscribe", self.unsubscribe_path):
                return self.unsubscribe(environ, start_response, method)
            if path == "/healthz":
                return self.healthz(start_response, method)
            if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
                path = path[len(self.prefix) :] or "/"
            return self.static(environ, start_response, method, path)
        except Exception:  # an entry point: log the bug, answer 500, keep serving
            log.exception("error answering %s %.200s", method, path)  # (paths can be long)
            return self._plain(
                start_response,
                "500 Internal Server Error",
                "internal error; see the service's log\n",
            )

    # ----------------------------------------------------------------- helpers

    @staticmethod
    def _plain(
        start_response: StartResponse,
        status: str,
        text: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        body = text.encode("utf-8")
        start_response(
            status,
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
            + (headers or []),
        )
        return [body]

    # ----------------------------------------------------------------- feeds

    def static(
        self, environ: Environ, start_response: StartResponse, method: str, path: str
    ) -> list[bytes]:
        if method not in ("GET", "HEAD"):
            return self._plain(
                start_response,
                "405 Method Not Allowed",
                "GET or HEAD only\n",
                [("Allow", "GET, HEAD")],
            )
        found = self._lookup(path)
        if found is None:
            return self._plain(start_response, "404 Not Found", "not found\n")
        target, stat, kind = found
        tag = hashlib.sha1(f"{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()[:20]
        modified = datetime.fromtimestamp(int(stat.st_mtime), UTC)
        wants_gzip = (
            accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", "")) and stat.st_size >= GZIP_MIN_BYTES
        )
        etag = f'"{tag}-gz"' if wants_gzip else f'"{tag}"'
        headers = [
            ("Content-Type", kind),
            ("ETag", etag),
            ("Last-Modified", format_datetime(modified, usegmt=True)),
            ("Cache-Control", "public, max-age=300"),
            ("Vary", "Accept-Encoding"),
        ]
        if self._not_modified(environ, tag, modified):
            start_response("304 Not Modified", headers)
            return []
        data = target.read_bytes()
        if wants_gzip:
            data = gzip.compress(data, compresslevel=6, mtime=0)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(data))))
        start_response("200 OK", headers)
        return [] if method == "HEAD" else [data]

    def _lookup(self, path: str) -> tuple[Path, os.stat_result, str] | None:
        """The published file a request path names, with its stat and content type; None
        for anything else. Odd paths (too long, NUL bytes, dot segments, ``..`` however it
        was encoded, a file asked for as a folder) are answered 404, never an error."""
        if len(path) > MAX_PATH_CHARS or "\0" in path:
            return None
        parts = [p for p in path.split("/") if p]
        # WSGI servers decode %2F and %2E before this, so "..%2F" arrives as "../".
        if any(p.startswith(".") or len(p.encode("utf-8", "replace")) > 255 for p in parts):
            return None
        try:
            target = self.root.joinpath(*parts) if parts else self.root
            if target.is_dir():
                target = target / "index.html"
            elif path.endswith("/"):
                return None  # "/atom.xml/": a file is not a folder
            target = target.resolve()
            target.relative_to(self.root)  # a symlink out of the folder: ValueError
            stat = target.stat()
        except (ValueError, OSError):
            return None
        kind = content_type(target)
        if kind is None or not stat_is_file(stat):
            return None
        return target, stat, kind

    @staticmethod
    def _not_modified(environ: Environ, tag: str, modified: datetime) -> bool:
        match = environ.get("HTTP_IF_NONE_MATCH")
        if match is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
            wanted = {m.strip().removeprefix("W/") for m in match.split(",")}
            return "*" in wanted or bool(wanted & {f'"{tag}"', f'"{tag}-gz"'})
        since = environ.get("HTTP_IF_MODIFIED_SINCE")
        if since:
            try:
                return modified <= parsedate_to_datetime(since)
            except (TypeError, ValueError):
                return False
        return False

    # ----------------------------------------------------------------- health

    def healthz(self, start_response: StartResponse, method: str) -> list[bytes]:
        from .health import check

        if method not in ("GET", "HEAD"):
            return self._plain(
                start_response, "405 Method Not Allowed", "GET only\n", [("Allow", "GET, HEAD")]
            )
        with Store(
            self.config.database_path, tag_authority=self.config.site.tag_authority
        ) as store:
            health = check(
                self.config,
                store,
                self.now(),
                next_times=self.next_times() if self.next_times else None,
            )
        body = json.dumps(health.as_json(), ensure_ascii=False, indent=2).encode() + b"\n"
        start_response(
            "200 OK" if health.ok else "503 Service Unavailable",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [] if method == "HEAD" else [body]

    # ----------------------------------------------------------------- unsubscribe

    def unsubscribe(
        self, environ: Environ, start_response: StartResponse, method: str
    ) -> list[bytes]:
        if method not in ("GET", "HEAD", "POST"):
            return self._plain(
                start_response,
                "405 Method Not Allowed",
                "GET or POST\n",
                [("Allow", "GET, HEAD, POST")],
            )
        query = parse_qs(environ.get("QUERY_STRING", ""))
        form: dict[str, list[str]] = {}
        if method == "POST":
            try:
                length = max(0, int(environ.get("CONTENT_LENGTH") or 0))
            except ValueError:
                length = 0
            if length > MAX_FORM_BYTES:
                return self._plain(start_response, "413 Content Too Large", "too large\n")
            body = environ["wsgi.input"].read(length) if length else b""
            form = parse_qs(body.decode("utf-8", "replace"))
        token = (form.get("t") or query.get("t") or [""])[0]
        config = self.config
        with Store(config.database_path, tag_authority=config.site.tag_authority) as store:
            sub = None
            refused = "no such subscriber"
            try:
                sub = store.subscriber_by_id(token_subscriber(token))
                if sub is not None:
                    verify_token(load_secret(config, store), config.list_id, token, sub.address)
            except BadToken as exc:
                sub, refused = None, str(exc)
            if sub is None:
                log.info("unsubscribe refused: %s", refused)
                # Not in the named subscriber's language: the token did not prove who it is.
                return self._page(
                    start_response,
                    "400 Bad Request",
                    config.site.language,
                    "invalid_title",
                    ["invalid"],
                    address="",
                    head=method == "HEAD",
                )
            if method == "POST":
                if sub.status == "active":
                    one_click = form.get("List-Unsubscribe") == ["One-Click"]
                    store.set_subscriber_status(
                        sub.address,
                        "unsubscribed",
                        "one-click unsubscribe (RFC 8058)" if one_click else "unsubscribe page",
                        self.now(),
                    )
                    log.info(
                        "unsubscribed %s (%s)", sub.address, "one-click" if one_click else "page"
                    )
                    return self._page(
                        start_response,
                        "200 OK",
                        sub.language,
                        "done_title",
                        ["done"],
                        address=sub.address,
                    )
                return self._page(
                    start_response,
                    "200 OK",
                    sub.language,
                    "done_title",
                    ["already"],
                    address=sub.address,
                )
            if sub.status != "active":
                return self._page(
                    start_response,
                    "200 OK",
                    sub.language,
                    "done_title",
                    ["already"],
                    address=sub.address,
                    head=method == "HEAD",
                )
            return self._page(
                start_response,
                "200 OK",
                sub.language,
                "title",
                ["confirm", "explain"],
                address=sub.address,
                token=token,
                head=method == "HEAD",
            )

    def _page(
        self,
        start_response: StartResponse,
        status: str,
        lang: str,
        heading: str,
        paragraphs: list[str],
        *,
        address: str,
        token: str = "",
        head: bool = False,
    ) -> list[bytes]:
        if lang not in self.config.digest.languages:
            lang = self.config.digest.languages[0]
        strings = _strings(lang, self.config.languages_path)
        list_name = self.config.digest.title.get(lang)
        values = {"address": address, "list": list_name}
        html = (
            _page_template()
            .render(
                lang=lang,
                heading=strings[heading],
                paragraphs=[strings[p].format(**values) for p in paragraphs],
                form=bool(token),
                token=token,
                action=self.unsubscribe_path or "/unsubscribe",
                button=strings["button"],
                list_name=list_name,
            )
            .encode("utf-8")
        )
        start_response(
            status,
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(html))),
                ("Cache-Control", "no-store"),
                ("Referrer-Policy", "no-referrer"),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        return [] if head else [html]


# ----------------------------------------------------------------------------- the server

#: A connection must deliver its whole request (line, headers, body) within this many
#: seconds of being accepted, or it is closed: idle and slow clients cannot pile up.
REQUEST_TIMEOUT = 5.0
#: Worker threads: at most this many requests are answered at once, whatever the number of
#: connections; others wait in a queue of ``QUEUE_SIZE`` (beyond that they are closed).
THREADS = 8
QUEUE_SIZE = 64
#: Sending a response to a client that reads slowly (a phone on a bad line) may take longer.
WRITE_TIMEOUT = 30.0
#: Seconds a request that waited in the queue still has to arrive once a worker takes it.
QUEUED_GRACE = 1.0


class _DeadlineSocket(io.RawIOBase):
    """The connection's reading side: every ``recv`` may take only what is left of the
    request's deadline, so a client trickling a byte a second is closed on time too."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete request in time")
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


class _Writer(io.BufferedIOBase):
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sock.settimeout(WRITE_TIMEOUT)
        self.sock.sendall(data)
        return len(data)


class _Handler(WSGIRequestHandler):
    """One request per connection (as wsgiref does), read whole under the deadline before
    the application sees it; request lines go to the log at debug level."""

    server: BoundedServer

    def setup(self) -> None:
        self.connection = self.request
        deadline = getattr(self.server.accepted, "deadline", time.monotonic() + REQUEST_TIMEOUT)
        self.rfile = io.BufferedReader(_DeadlineSocket(self.connection, deadline))
        self.wfile = _Writer(self.connection)

    def handle(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414)
                return
            if not self.parse_request():  # an error was sent
                return
            body = self._body()
        except (TimeoutError, ConnectionError) as exc:
            log.debug("closing %s: %s", self.address_string(), exc)
            self.close_connection = True
            return
        if body is None:
            return
        handler = ServerHandler(
            io.BytesIO(body),
            cast(Any, self.wfile),
            sys.stderr,
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self  # type: ignore[attr-defined]  # logs the request line
        handler.run(cast(Any, self.server.get_app()))

    def _body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return None
        if length > MAX_FORM_BYTES * 4:
            self.send_error(413)
            return None
        return self.rfile.read(length) if length > 0 else b""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class BoundedServer(WSGIServer):
    """The standard library's WSGI server with a fixed pool of worker threads (instead of a
    thread per connection) and a deadline for each request (:data:`REQUEST_TIMEOUT`)."""

    request_queue_size = 128  # the listen backlog

    def __init__(self, address: tuple[str, int], app: Any, *, threads: int = THREADS) -> None:
        # Set before binding: a failed bind calls server_close(), which reads them.
        self._queue: queue.Queue[tuple[socket.socket, Any, float] | None] = queue.Queue(QUEUE_SIZE)
        self._workers: list[threading.Thread] = []
        super().__init__(address, _Handler)
        self.set_app(app)
        self.accepted = threading.local()
        self._workers = [
            threading.Thread(target=self._work, name=f"http-{n}", daemon=True)
            for n in range(threads)
        ]
        for worker in self._workers:
            worker.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        try:
            self._queue.put_nowait((request, client_address, time.monotonic() + REQUEST_TIMEOUT))
        except queue.Full:
            log.warning(
                "%d connections waiting: closing one from %s", QUEUE_SIZE, client_address[0]
            )
            self.shutdown_request(request)

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            request, client_address, deadline = job
            # A request that waited in the queue behind busy workers has usually arrived in
            # full by now: give it a moment to be read rather than closing it unanswered.
            self.accepted.deadline = max(deadline, time.monotonic() + QUEUED_GRACE)
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("error answering %s", client_address[0])

    def server_close(self) -> None:
        super().server_close()
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout=WRITE_TIMEOUT)


def make_server(host: str, port: int, app: Any, *, threads: int = THREADS) -> BoundedServer:
    return BoundedServer((host, port), app, threads=threads)
