"""The HTTP server of ``iomfeed serve`` (and the demo): waitress, a pure-Python production
WSGI server, set up for pages that face the internet behind a reverse proxy. It knows
nothing of iomfeed: :class:`iomfeed.web.App` is what it serves, and any other WSGI server
(gunicorn, see the README) can serve that app instead.

waitress reads requests and writes answers in one event loop and hands only complete
requests to a fixed pool of worker threads, so a slow client never holds a thread. On top
of its own settings, one rule of ours: a connection with nothing to answer must deliver its
whole request within :data:`REQUEST_TIMEOUT` of beginning it (or of its last activity, when
idle), or it is closed. waitress's own ``channel_timeout`` only closes *inactive*
connections, and a client trickling a byte a second is never inactive.

Only ``serve`` and the demo import this module (and so waitress): never the cron path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer

log = logging.getLogger(__name__)

#: A connection must deliver its whole request (line, headers, body) within this many
#: seconds of beginning it, or of its last answer when it is kept alive; else it is closed.
REQUEST_TIMEOUT = 5.0
#: Worker threads: at most this many requests are answered at once.
THREADS = 8
#: Open connections at most (answered, waiting for a thread, or arriving); beyond it new
#: ones wait in the listen backlog of ``BACKLOG`` until a connection closes. Idle and slow
#: ones are closed within :data:`REQUEST_TIMEOUT`, so a place frees up within seconds.
CONNECTION_LIMIT = 72  # THREADS answering + 64 waiting
BACKLOG = 128
#: Sending an answer to a client that reads slowly (a phone on a bad line) may stall this
#: long between two writes before the connection is closed (waitress's channel_timeout).
WRITE_TIMEOUT = 30
#: The largest request body (413 beyond it; the forms are far smaller) and header block
#: (431 beyond it).
MAX_BODY_BYTES = 40_000
MAX_HEADER_BYTES = 16_384
#: What the ``Server`` header says: no server name, no version.
IDENT = "iomfeed"
#: The headers a trusted proxy (``serve.trusted_proxy``) may set: the client's address
#: (``REMOTE_ADDR``) and the scheme it used (``wsgi.url_scheme``).
PROXY_HEADERS = frozenset({"x-forwarded-for", "x-forwarded-proto"})

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def settings(*, threads: int, connection_limit: int, trusted_proxy: str) -> dict[str, Any]:
    """waitress's settings (its ``Adjustments``) for the bounds above."""
    proxy: dict[str, Any] = {}
    if trusted_proxy:
        proxy = {
            "trusted_proxy": trusted_proxy,
            "trusted_proxy_count": 1,
            "trusted_proxy_headers": set(PROXY_HEADERS),
        }
    return {
        "threads": threads,
        # waitress counts its own listening socket and wake-up pipe among the connections.
        "connection_limit": connection_limit + 2,
        "backlog": BACKLOG,
        "channel_timeout": WRITE_TIMEOUT,
        "cleanup_interval": 1,  # how often the deadlines below are checked, in seconds
        # waitress refuses a size equal to its limit: ours are the largest accepted.
        "max_request_body_size": MAX_BODY_BYTES + 1,
        "max_request_header_size": MAX_HEADER_BYTES + 1,
        "asyncore_use_poll": True,  # no limit of 1024 open files, as select() has
        "ident": IDENT,
        "url_scheme": "http",  # what nginx talks to us; X-Forwarded-Proto says "https"
        # Without a trusted proxy, forwarded headers are removed, never believed.
        "clear_untrusted_proxy_headers": True,
        **proxy,
    }


class _Channel(HTTPChannel):  # type: ignore[misc]  # waitress has no type hints
    """One connection; remembers when its request in progress began."""

    request_started = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None:
            self.request_started = time.time()
        return bool(super().received(data))


class _Waitress(TcpWSGIServer):  # type: ignore[misc]
    """waitress's server with the request deadline, and a stop that lets the answers in
    hand finish."""

    channel_class = _Channel
    stopping = False
    closed = False

    def bind_server_socket(self) -> None:
        try:
            super().bind_server_socket()
        except OSError:  # e.g. the port is taken: nothing made before binding is left open
            self.task_dispatcher.shutdown(timeout=1)
            self.close()
            self.closed = True
            raise

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # answers whose writes stalled for WRITE_TIMEOUT
        cutoff = now - REQUEST_TIMEOUT
        for channel in list(self.active_channels.values()):
            if channel.requests or channel.total_outbufs_len:
                continue  # being answered
            started = (
                channel.request_started if channel.request is not None else channel.last_activity
            )
            if self.stopping or started < cutoff:
                if not self.stopping:
                    log.debug("closing %s: no complete request in time", channel.addr[0])
                channel.will_close = True
        if self.stopping and not self.active_channels:
            self.close_all()

    def begin_stop(self) -> None:
        """In the loop's thread: accept nothing more; connections close once answered."""
        self.stopping = True
        self.accepting = False
        self.next_channel_cleanup = 0  # maintenance at the loop's next turn

    def close_all(self) -> None:
        """Every connection, the listening socket and the wake-up pipe: the loop ends."""
        if self.closed:
            return
        self.closed = True
        for channel in list(self.active_channels.values()):
            channel.handle_close()
        self.close()


class Server:
    """One WSGI app on waitress, with the face the service and the demo use: bound at once
    (``server_port``), served by :meth:`serve_forever` in a thread, stopped by
    :meth:`shutdown` from another, then :meth:`server_close`."""

    def __init__(
        self,
        host: str,
        port: int,
        app: WsgiApp | None,
        *,
        threads: int = THREADS,
        connection_limit: int = CONNECTION_LIMIT,
        trusted_proxy: str = "",
    ) -> None:
        self.app = app  # may be set later (the demo binds first, for its public URL)
        self._ended = threading.Event()
        kw = settings(
            threads=threads, connection_limit=connection_limit, trusted_proxy=trusted_proxy
        )
        self._waitress = _Waitress(self._call, host=host, port=port, **kw)
        # (waitress gives the port as text: a str in a %d log line was a logging error)
        self.server_port: int = int(self._waitress.effective_port)

    def _call(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.app is None:
            raise RuntimeError("no application set")
        return self.app(environ, start_response)

    def set_app(self, app: WsgiApp) -> None:
        self.app = app

    def serve_forever(self) -> None:
        try:
            self._waitress.run()
        finally:
            self._ended.set()

    def shutdown(self, timeout: float = WRITE_TIMEOUT) -> None:
        """Stop accepting; the answers in hand are finished (for up to ``timeout``
        seconds, then the rest are closed); returns once :meth:`serve_forever` has. Only
        for a server whose :meth:`serve_forever` runs; else :meth:`server_close` alone."""
        if self._ended.is_set():
            return  # stopped already
        self._in_loop(self._waitress.begin_stop)
        if not self._ended.wait(timeout):
            log.warning("answers still in hand after %.0f s: closing them", timeout)
            self._in_loop(self._waitress.close_all)
            self._ended.wait(5)

    def _in_loop(self, thunk: Callable[[], None]) -> None:
        """``thunk`` run by the loop's thread, woken through its pipe; here, when that pipe
        is closed already (seen once in a suite run: the loop closing, or having lost it).
        The flags of a stop are safe to set from here, and the loop's next maintenance,
        every second, closes what is left."""
        try:
            self._waitress.trigger.pull_trigger(thunk)
        except OSError:
            log.debug("the server's wake-up pipe is closed; %s from here", thunk.__name__)
            thunk()

    def server_close(self) -> None:
        """Close what is still open and stop the worker threads."""
        self._waitress.close_all()
        self._waitress.task_dispatcher.shutdown(timeout=WRITE_TIMEOUT)


def make_server(
    host: str,
    port: int,
    app: WsgiApp | None,
    *,
    threads: int = THREADS,
    connection_limit: int = CONNECTION_LIMIT,
    trusted_proxy: str = "",
) -> Server:
    """Bound now (an OSError when the address is taken); serving once
    :meth:`Server.serve_forever` runs."""
    return Server(
        host,
        port,
        app,
        threads=threads,
        connection_limit=connection_limit,
        trusted_proxy=trusted_proxy,
    )
