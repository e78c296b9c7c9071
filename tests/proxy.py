"""A real forwarding HTTP proxy on 127.0.0.1 for the tests: absolute-form requests for http
URLs are forwarded, CONNECT opens a tunnel for https. It counts what passed through it and
can ask for credentials (407). Plus a small HTTPS site signed by the tests' CA."""

from __future__ import annotations

import base64
import http.client
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
}


@dataclass(frozen=True)
class Passed:
    """One request through the proxy: ``GET http://...`` or ``CONNECT host:port``."""

    method: str
    target: str
    authorization: str | None


class ForwardingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.credentials = credentials
        self.passed: list[Passed] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, passed: Passed) -> None:
        with self.lock:
            self.passed.append(passed)

    def expected_authorization(self) -> str | None:
        if self.credentials is None:
            return None
        return "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ForwardingProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _authorised(self) -> bool:
        got = self.headers.get("Proxy-Authorization")
        self.server.record(Passed(self.command, self.path, got))
        expected = self.server.expected_authorization()
        if expected is None or got == expected:
            return True
        self.send_response(407)
        self.send_header("Proxy-Authenticate", 'Basic realm="test"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_GET(self) -> None:
        if not self._authorised():
            return
        parts = urlsplit(self.path)
        if parts.scheme != "http" or not parts.hostname:
            self.send_error(400, "absolute-form http URL expected")
            return
        upstream = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=5)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            upstream.request("GET", target, headers=headers)
            resp = upstream.getresponse()
            body = resp.read()
        finally:
            upstream.close()
        self.send_response(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:
        if not self._authorised():
            return
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            self.send_error(502, "cannot reach the site")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        client = self.connection
        try:
            while True:
                ready, _, _ = select.select([client, upstream], [], [], 5)
                if not ready:
                    break
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()
            self.close_connection = True


@contextmanager
def forwarding_proxy(credentials: tuple[str, str] | None = None) -> Iterator[ForwardingProxy]:
    proxy = ForwardingProxy(credentials)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(5)


class TlsSite(ThreadingHTTPServer):
    """An HTTPS site on 127.0.0.1: ``/robots.txt`` allows all, every other path answers a
    small page naming its path. ``paths`` lists what was asked, in order."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _SiteHandler)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.paths: list[str] = []

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.server_address[1]}"


class _SiteHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TlsSite

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        if self.path == "/robots.txt":
            body, kind = b"User-agent: *\nDisallow: /private/\n", "text/plain"
        elif self.path == "/old":
            self.send_response(301)
            self.send_header("Location", "/news")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        else:
            body, kind = f"<html><body><p>page {self.path}</p></body></html>".encode(), "text/html"
        self.send_response(200)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def tls_site(context: ssl.SSLContext) -> Iterator[TlsSite]:
    site = TlsSite(context)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.shutdown()
        site.server_close()
        thread.join(5)
