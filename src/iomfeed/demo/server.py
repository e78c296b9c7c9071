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

This module holds the server's lifecycle, request log and command line; the parts live
beside it: :mod:`.routing` (target to file), :mod:`.resources` (bytes, validators,
responses), :mod:`.faults` (what tests inject) and :mod:`.httpd` (sockets and handler).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Final

from .faults import Fault, FaultQueue, fault_response
from .httpd import LocalHTTPServer, LocalHTTPServer6, RequestRecord
from .resources import (
    ResourceCache,
    Response,
    content_type,
    error_response,
    file_response,
    origin_replacements,
)
from .routing import route

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
        self._httpd: LocalHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._faults = FaultQueue()
        self._cache = ResourceCache()

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
        server_class = LocalHTTPServer6 if ":" in self.host else LocalHTTPServer
        httpd = server_class((self.host, self.port), self)
        port = httpd.server_port
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._origin = f"http://{host}:{port}"
        self._cache.reset(origin_replacements(self.live_origins, self._origin))
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
        self._faults.add(path, fault)

    def clear(self) -> None:
        """Forget logged requests, pending faults and recorded errors."""
        self._faults.clear()
        with self._lock:
            self._requests.clear()
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

    def _response(
        self, target: str, request_headers: Mapping[str, str], *, conditional: bool = True
    ) -> Response:
        status, path = route(self.root, target)
        if path is None:
            text = (
                "The requested page could not be found."
                if status == HTTPStatus.NOT_FOUND
                else "The request could not be understood."
            )
            return error_response(status, text)
        try:
            resource = self._cache.load(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            # Deleted or replaced between routing and reading.
            return error_response(HTTPStatus.NOT_FOUND, "The requested page is gone.")
        return file_response(resource, request_headers, conditional=conditional)

    def _fault_response(
        self, target: str, fault: Fault, request_headers: Mapping[str, str]
    ) -> Response:
        def real(conditional: bool) -> Response:
            return self._response(target, request_headers, conditional=conditional)

        def routed_type() -> str:
            _, path = route(self.root, target)
            return content_type(path) if path else "application/octet-stream"

        return fault_response(fault, real=real, routed_type=routed_type)


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
