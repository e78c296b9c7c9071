"""The HTTP server of ``iomfeed serve`` (and the demo): the standard library's WSGI server
with a fixed pool of worker threads and a deadline for each request, so idle or slow
clients cannot pile up. It knows nothing of iomfeed: :class:`iomfeed.web.App` is what it
serves.
"""

from __future__ import annotations

import io
import logging
import queue
import socket
import sys
import threading
import time
from typing import Any, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

log = logging.getLogger(__name__)

#: The largest request body read (the unsubscribe form is far smaller).
MAX_BODY_BYTES = 40_000

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
        if length > MAX_BODY_BYTES:
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
