"""The runtime: what every entry point needs, built in one place from the config.

:func:`open_runtime` gives a :class:`Runtime` (a context manager) holding the config, the
clock, the store, the HTTP client, the mailer and the run lock. The command line, ``serve``
(the scheduler's jobs and the WSGI app), the demo and the tests all go through it; none of
them constructs a ``Store``, an ``HttpClient`` or a mailer itself, so how they are wired
(the database's tag authority, conditional GET validators kept in the store, the pauses
that end on a stop request, the configured mail transport) is decided here once.

Everything is built on first use: ``iomfeed status`` opens the store and never imports the
HTTP client or a mailer, so the cron path pays only for what it uses. Closing the runtime
closes what it built, the HTTP client first and the run lock last.

It holds no business rule: the pipeline, the subscriptions and the health check decide;
the runtime only hands them their tools.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

from .clock import utc_now
from .config import Config
from .lock import DEFAULT_WAIT

if TYPE_CHECKING:
    from .delivery.mailers import Mailer
    from .http import HttpClient
    from .lock import RunLock, ServiceLock
    from .stopping import Stop
    from .store import Store
    from .transport import Transport

log = logging.getLogger(__name__)


class Runtime:
    """One entry point's tools. Not thread-safe: a thread (a web request, a scheduled job)
    opens its own runtime, and so its own store connection."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], datetime] = utc_now,
        stop: Stop | None = None,
        transport: Transport | None = None,
        lock: str | None = None,
        wait: float = DEFAULT_WAIT,
    ) -> None:
        self.config = config
        #: what time it is; the one clock every stage is given
        self.clock = clock
        #: a stop request (SIGTERM): pauses between requests end the fetch early
        self.stop = stop
        self._transport = transport
        self._lock_what = lock
        self._wait = wait
        self._store: Store | None = None
        self._http: HttpClient | None = None
        self._closing = ExitStack()

    # ----------------------------------------------------------------- life

    def __enter__(self) -> Runtime:
        if self._lock_what is not None:
            # Given a stop request (a service's), waiting for the lock ends when it comes.
            sleep = self.stop.sleep if self.stop is not None else None
            self._closing.enter_context(self.lock(self._lock_what, wait=self._wait, sleep=sleep))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close what was built, in the reverse order (the lock, taken first, goes last)."""
        self._closing.close()
        self._store = self._http = None

    # ----------------------------------------------------------------- tools

    def lock(
        self, what: str, *, wait: float = DEFAULT_WAIT, sleep: Callable[[float], bool] | None = None
    ) -> RunLock:
        """The run lock of this database (not taken yet: use it in a ``with``)."""
        from .lock import RunLock

        if sleep is None:
            return RunLock(self.config.database_path, wait=wait, what=what)
        return RunLock(self.config.database_path, wait=wait, what=what, sleep=sleep)

    def service_lock(self) -> ServiceLock:
        """The service lock of this database, held for a whole ``serve`` (not taken yet)."""
        from .lock import ServiceLock

        return ServiceLock(self.config.database_path)

    @property
    def store(self) -> Store:
        """The store, opened (created or migrated) on first use."""
        if self._store is None:
            self._store = self._closing.enter_context(open_store(self.config))
        return self._store

    @property
    def http(self) -> HttpClient:
        """The run's HTTP client: conditional GET validators kept in the store, and, given
        a stop request, pauses that end the fetch when it comes."""
        if self._http is None:
            self._http = self._closing.enter_context(self._client(validators=True))
        return self._http

    def detached_http(self) -> HttpClient:
        """A client that keeps nothing in the store (``check --live`` only reads); closed
        with the runtime."""
        return self._closing.enter_context(self._client(validators=False))

    def _client(self, *, validators: bool) -> HttpClient:
        from .http import HttpClient

        store = self.store if validators else None
        if self.stop is not None:
            return HttpClient(
                self.config.http,
                validators=store,
                robots=store,
                sleep=self.stop.sleep_or_stop,
                transport=self._transport,
            )
        return HttpClient(
            self.config.http, validators=store, robots=store, transport=self._transport
        )

    @contextmanager
    def stop_on_signals(self) -> Iterator[Stop]:
        """SIGTERM / SIGINT from now on: finish the message (or page) in hand, then stop
        cleanly; the HTTP client built after this honours it. The handlers before are put
        back at the end."""
        import signal

        from .stopping import Stop, stop_signals

        stop = self.stop = Stop()

        def handler(signum: int, frame: object) -> None:
            log.warning(
                "%s received: stopping after the page or message in hand",
                signal.Signals(signum).name,
            )
            stop.set(signum)

        # (SIGHUP too, unless nohup ignores it: a terminal closed, or a reload asked of a
        # command that cannot reload, is a stop after the work in hand, not a death in it)
        previous = {sig: signal.signal(sig, handler) for sig in stop_signals()}
        try:
            yield stop
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def mailer(self) -> Mailer:
        """A new connection to the configured mail transport (the outbox folder or the SMTP
        relay); whoever sends closes it. Passed as ``runtime.mailer`` where a stage wants
        one only if it has mail to send."""
        from .delivery.mailers import make_mailer

        return make_mailer(self.config)


def open_runtime(
    config: Config,
    *,
    clock: Callable[[], datetime] = utc_now,
    lock: str | None = None,
    wait: float = DEFAULT_WAIT,
    stop: Stop | None = None,
    transport: Transport | None = None,
) -> Runtime:
    """The runtime for ``config``. ``lock``: take the run lock when entered, naming this
    work (``"iomfeed run"``) for whoever waits for it, waiting up to ``wait`` seconds for
    another run; ``stop``: a stop request the HTTP client's pauses and the wait for the lock
    honour; ``transport``: the
    wire under the HTTP client (a mock in tests)."""
    return Runtime(config, clock=clock, stop=stop, transport=transport, lock=lock, wait=wait)


def open_store(config: Config) -> Store:
    """The store of ``config``: the one place a ``Store`` is made from a config."""
    from .store import Store

    return Store(config.database_path, tag_authority=config.site.tag_authority)
