"""The HTTP/1.1 plumbing of the snapshot server: a threading server on one address, and the
handler that asks :class:`iomfeed.demo.server.SnapshotServer` for each answer, logs it and
sends it (keep-alive, HEAD, 405 for other methods, half bodies for a truncating fault).
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final

from .resources import Response, error_response

if TYPE_CHECKING:
    from .server import SnapshotServer

SERVER_SOFTWARE: Final = "iomfeed-snapshot/1.0"

_KEEP_ALIVE_TIMEOUT: Final = 30.0


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


class LocalHTTPServer(ThreadingHTTPServer):
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


class LocalHTTPServer6(LocalHTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: LocalHTTPServer
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
            fault = snapshot._faults.take(self.path) if allowed else None
            if not allowed:
                response = error_response(
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
                    error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "Server error."),
                    send_body=send_body,
                )

    def _send(self, response: Response, *, send_body: bool) -> None:
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
