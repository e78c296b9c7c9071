"""The server under ``iomfeed serve`` (waitress, :mod:`iomfeed.web_server`) on 127.0.0.1: its
limits, the proxy headers it believes, its stop, the cron path that never imports it, and
the app factory under gunicorn (the README's alternative) as a real process."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from iomfeed.demo.server import SnapshotServer
from iomfeed.web_server import (
    IDENT,
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    REQUEST_TIMEOUT,
    Server,
    make_server,
)

from .smtp import free_port
from .test_cli_snapshot import iomfeed, write_config

pytestmark = pytest.mark.network

Environ = dict[str, Any]


def echo(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
    """What the app was told about the client, as JSON."""
    if environ["PATH_INFO"] == "/slow":
        time.sleep(2)
    seen = {
        "addr": environ["REMOTE_ADDR"],
        "scheme": environ["wsgi.url_scheme"],
        "forwarded": environ.get("HTTP_X_FORWARDED_FOR"),
        "body": len(environ["wsgi.input"].read()),
    }
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@contextmanager
def serving(**kw: Any) -> Iterator[tuple[Server, str]]:
    server = make_server("127.0.0.1", 0, echo, **kw)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown(timeout=10)
        server.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


def fetch(
    url: str, headers: dict[str, str] | None = None, data: bytes | None = None
) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_forwarded_headers_are_believed_only_from_the_trusted_proxy() -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    with serving() as (_server, base):
        status, headers, body = fetch(base + "/", forwarded)
        assert status == 200
        # No proxy trusted: the peer is the client, and the forged headers never reach the app.
        assert json.loads(body) == {
            "addr": "127.0.0.1",
            "scheme": "http",
            "forwarded": None,
            "body": 0,
        }
        assert headers["Server"] == IDENT  # no server name or version given away
    with serving(trusted_proxy="127.0.0.1") as (_server, base):
        seen = json.loads(fetch(base + "/", forwarded)[2])
        assert (seen["addr"], seen["scheme"]) == ("203.0.113.9", "https")
        # A client's own claim before the proxy's entry: one hop is trusted, the last one.
        chain = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
        assert json.loads(fetch(base + "/", chain)[2])["addr"] == "203.0.113.9"
    with serving(trusted_proxy="192.0.2.1") as (_server, base):  # another proxy: not believed
        seen = json.loads(fetch(base + "/", forwarded)[2])
        assert (seen["addr"], seen["scheme"], seen["forwarded"]) == ("127.0.0.1", "http", None)


def test_bodies_and_headers_over_the_limits_are_refused() -> None:
    with serving() as (_server, base):
        assert (
            json.loads(fetch(base + "/", data=b"x" * MAX_BODY_BYTES)[2])["body"] == MAX_BODY_BYTES
        )
        assert fetch(base + "/", data=b"x" * (MAX_BODY_BYTES + 1))[0] == 413
        assert fetch(base + "/", {"X-Big": "y" * MAX_HEADER_BYTES})[0] == 431
        assert fetch(base + "/")[0] == 200  # and it goes on answering


def test_connections_over_the_limit_wait_and_are_answered_once_idle_ones_are_cut() -> None:
    """The limit reached by idle connections: a new request is not refused nor left hanging;
    it is answered once the idle ones are closed at their deadline."""
    with serving(threads=1, connection_limit=3) as (_server, base):
        port = int(base.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(3)]
        try:
            time.sleep(0.5)  # all three accepted
            start = time.monotonic()
            status, _headers, _body = fetch(base + "/")
            waited = time.monotonic() - start
            assert status == 200
            # It waited for a place (the limit holds), and no longer than the idle ones' deadline.
            assert REQUEST_TIMEOUT - 2 < waited < REQUEST_TIMEOUT + 4, waited
            assert all(s.recv(10) == b"" for s in idle)  # they were closed, not answered
        finally:
            for s in idle:
                s.close()


def test_shutdown_finishes_the_answer_in_hand_then_stops_accepting() -> None:
    answers: list[int] = []
    with serving() as (server, base):
        slow = threading.Thread(target=lambda: answers.append(fetch(base + "/slow")[0]))
        slow.start()
        time.sleep(0.5)  # the request is in a worker thread now
        start = time.monotonic()
        server.shutdown(timeout=10)
        assert time.monotonic() - start < 5
        slow.join(timeout=10)
        assert answers == [200]
        with pytest.raises(OSError, match="refused"):
            socket.create_connection(("127.0.0.1", server.server_port), timeout=2).recv(1)


def test_a_busy_port_leaves_nothing_open() -> None:
    first = make_server("127.0.0.1", 0, None)
    try:
        assert isinstance(first.server_port, int)  # serve logs it with %d
        threads = threading.active_count()
        for _ in range(3):
            with pytest.raises(OSError, match="in use"):
                make_server("127.0.0.1", first.server_port, None)
        deadline = time.monotonic() + 5
        while threading.active_count() > threads and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() <= threads  # its worker threads were stopped
    finally:
        first.server_close()


@pytest.mark.slow
def test_the_cron_path_does_not_import_waitress(server: SnapshotServer, tmp_path: Path) -> None:
    """``run`` and ``status`` (cron, every half hour) never load the HTTP server, and the app
    module itself is server-free (plain WSGI)."""
    config = write_config(server, tmp_path)
    for args in (("run",), ("status",)):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "iomfeed", "--config", str(config), *args],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "| iomfeed.cli" in done.stderr  # the import times were printed
        assert "waitress" not in done.stderr, args
    code = "import sys, iomfeed.web; print(any(m.startswith('waitress') for m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_the_app_factory_under_gunicorn(server: SnapshotServer, tmp_path: Path) -> None:
    """``gunicorn 'iomfeed.web:make_app()'`` with IOMFEED_CONFIG, as the README shows: the
    feeds, the unsubscribe page and /healthz answered by a real gunicorn process."""
    config = write_config(server, tmp_path)
    assert iomfeed("--config", str(config), "run", cwd=tmp_path).returncode == 0
    port = free_port()
    env = {**os.environ, "IOMFEED_CONFIG": str(config)}
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "iomfeed.web:make_app()",
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=out,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                status, headers, body = fetch(base + "/atom.xml")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert status == 200 and body.startswith(b"<?xml") and headers["ETag"]
        assert fetch(base + "/unsubscribe?t=forged")[0] == 400
        # gunicorn sets no body limit: the app refuses an oversized form itself, a chunked
        # one (no Content-Length) too.
        assert fetch(base + "/subscribe")[0] == 200
        for chunked in (False, True):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            big = b"email=a%40example.org&name=" + b"x" * 20_000
            conn.request(
                "POST",
                "/subscribe",
                body=iter([big]) if chunked else big,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                encode_chunked=chunked,
            )
            assert conn.getresponse().status == 413, chunked
            conn.close()
        status, _headers, body = fetch(base + "/healthz")
        assert status in (200, 503) and "sources" in json.loads(body)
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0, log.read_text()


def test_a_server_whose_wake_up_pipe_closed_still_stops() -> None:
    """Seen once in a suite run: ``shutdown`` found the loop's wake-up pipe closed (a bad
    file descriptor) while the loop still ran. It stops the loop without the pipe."""

    def app(environ: dict[str, object], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = make_server("127.0.0.1", 0, app, threads=1)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert answer.read() == b"ok"
        server._waitress.trigger.close()  # the pipe gone, the loop still running
        assert serving.is_alive()
        started = time.monotonic()
        server.shutdown()
        serving.join(timeout=10)
        assert not serving.is_alive() and time.monotonic() - started < 10
    finally:
        server.server_close()
