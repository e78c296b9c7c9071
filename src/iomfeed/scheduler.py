"""``iomfeed serve``: the long-running service. An entry point, like the CLI.

APScheduler 3 (a ``BlockingScheduler`` in the main thread, cron triggers in the site's time
zone, one worker so jobs never overlap, ``coalesce``, ``max_instances = 1``, a misfire
grace time) runs the cycle on ``schedule.fetch`` and the digest on ``schedule.digest``; a
cycle also runs at start, so a digest missed while the service was down goes out once, then.
Whether a digest is due is decided from the store, never from the scheduler's memory.
The same process answers HTTP through :class:`iomfeed.web.App` on waitress
(:mod:`iomfeed.web_server`: a fixed pool of threads, a deadline for each request), in a
thread. SIGTERM
or SIGINT: the message or page in hand is finished, the scheduler and the server stop,
exit 0; SIGHUP: the same, and the command starts the service again with the configuration
read anew. The service holds the service lock for its whole life, so a second ``serve`` on the
same database refuses to start, and the run lock only while a job runs: a ``run``,
``publish`` or ``digest --send`` started meanwhile waits for the cycle in hand (and a job
of the service waits, up to the same bound, for theirs).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .clock import utc_now
from .config import Config
from .errors import (
    ConfigError,
    DeliveryError,
    InputError,
    MailboxError,
    PublishError,
    SourceError,
    StoreError,
)
from .lock import DEFAULT_WAIT, AlreadyRunning
from .runtime import Runtime, open_runtime
from .stopping import Stop, stop_signals

if TYPE_CHECKING:
    from .web_server import Server

log = logging.getLogger(__name__)

#: A job's errors whose message says what is wrong: logged as one line, not with a trace.
_EXPLAINED: tuple[type[Exception], ...] = (ConfigError, DeliveryError, InputError, MailboxError)
_EXPLAINED += (PublishError, SourceError, StoreError)

_NAMES = {"cycle": "cycle", "digest": "digest job"}  # the jobs in the log's words


class Service:
    def __init__(self, config: Config, *, host: str | None = None, port: int | None = None) -> None:
        self.config = config
        self.host = host or config.serve.host
        self.port = port if port is not None else config.serve.port
        self.stop = Stop()
        self._busy = threading.Lock()  # held while a job runs
        self.scheduler: Any = None

    # ----------------------------------------------------------------- jobs

    def cycle(self) -> None:
        """Fetch, publish, and the digest when due (and alerts)."""
        from .pipeline import run_cycle

        def job(rt: Runtime) -> None:
            report = run_cycle(
                self.config,
                store=rt.store,
                http=rt.http,
                mailer=rt.mailer,
                clock=rt.clock,
                stop=self.stop,
            )
            log.info(
                "cycle done: %d source(s) ok, %d failed%s",
                sum(r.ok for r in report.run.sources),
                len(report.run.failed),
                f"; digest {report.digest.status}" if report.digest else "",
            )
            if report.publish_error:  # the job failed: counted for /healthz and alerts
                raise PublishError(report.publish_error)

        self._job("cycle", job)

    def digest(self) -> None:
        """The digest's scheduled time: send it if the store says it is due."""
        from .pipeline import digest_due, send_digest

        def job(rt: Runtime) -> None:
            if digest_due(self.config, rt.store, rt.clock()):
                send_digest(
                    self.config, store=rt.store, mailer=rt.mailer(), clock=rt.clock, stop=self.stop
                )

        self._job("digest", job)

    def _job(self, name: str, job: Callable[[Runtime], None]) -> None:
        """Run one job under the run lock, one at a time; its outcome is recorded (a job
        failing again and again shows in /healthz and the alerts, not only in the log) and
        never takes the service down."""
        if self.stop.requested:
            return
        with self._busy:
            try:
                with open_runtime(
                    self.config,
                    lock=f"iomfeed serve's {name} job",
                    wait=DEFAULT_WAIT,  # a run started by hand: the usual bound
                    stop=self.stop,  # SIGTERM: gives up waiting at once
                ) as rt:
                    job(rt)
            except AlreadyRunning as exc:  # the next scheduled time tries again
                log.warning("%s skipped: %s", _NAMES[name], exc)
                return
            except _EXPLAINED as exc:  # it says what is wrong (a full disk, a relay down)
                log.error("the %s failed: %s", _NAMES[name], exc)
                self._record_job(name, exc)
                return
            except Exception as exc:  # a bug: with its trace; a job must not take it down
                log.exception("the %s failed", _NAMES[name])
                self._record_job(name, exc)
                return
            self._record_job(name, None)

    def _record_job(self, job: str, error: Exception | None) -> None:
        """Jobs failing again and again (a missing password, a broken template) show in
        /healthz and the alerts, not only in the log."""
        from .health import record_job

        try:
            with open_runtime(self.config) as rt:
                record_job(rt.store, job, error)
        except Exception:
            log.exception("could not record the %s job's outcome", job)

    def next_times(self) -> Mapping[str, datetime | None]:
        if self.scheduler is None:
            return {}
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}

    # ----------------------------------------------------------------- running

    def run(self) -> int:
        config = self.config
        with open_runtime(config) as rt, rt.service_lock():
            # Create or migrate the store once, before the job and HTTP threads open it.
            with open_runtime(config, lock="iomfeed serve's start job", stop=self.stop) as start:
                start.store  # noqa: B018  (opened: created or migrated)
            self.scheduler = scheduler = self._scheduler()
            server = self._serve_http()
            log.info(
                "serving %s on http://%s:%d/ (feeds, /subscribe, /confirm, /preferences,"
                " /unsubscribe, /healthz);"
                " cycle %r, digest %r in %s",
                config.feeds_path,
                self.host,
                server.server_port,
                config.schedule.fetch,
                config.schedule.digest,
                config.site.timezone,
            )
            previous = self._stop_on_signals(scheduler)
            try:
                scheduler.start()  # blocks until a signal shuts it down
            finally:
                self.stop.set()
                with self._busy:  # the job in hand (if any) finishes and commits first
                    pass
                server.shutdown()
                server.server_close()
                app = server.app
                if app is not None and hasattr(app, "close"):
                    app.close()  # the sign-ups handed over are finished
                # Only now: a second signal while finishing must not cut the work short
                # (and release the lock under a job that is still running).
                for sig, old in previous.items():
                    signal.signal(sig, old)
            log.info("stopped")
        return 0

    @property
    def reload_asked(self) -> bool:
        """It stopped on SIGHUP: the caller starts the service again."""
        return self.stop.signal == signal.SIGHUP

    def _scheduler(self) -> Any:
        """The scheduler with its two jobs, the cycle due at once (not started)."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        from .cron import trigger

        config = self.config
        tz = config.site.timezone
        scheduler = BlockingScheduler(
            timezone=tz,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(config.schedule.misfire_grace),
            },
        )
        scheduler.add_job(
            self.cycle,
            trigger(config.schedule.fetch, tz),
            id="fetch",
            name="cycle",
            next_run_time=utc_now(),
        )
        scheduler.add_job(
            self.digest, trigger(config.schedule.digest, tz), id="digest", name="digest"
        )
        return scheduler

    def _serve_http(self) -> Server:
        """The WSGI app on its server, answering in a thread of its own."""
        from .web import App
        from .web_server import make_server

        app = App(self.config, now=utc_now, next_times=self.next_times)
        app.resume_sign_ups()
        try:
            server = make_server(
                self.host, self.port, app, trusted_proxy=self.config.serve.trusted_proxy
            )
        except (OSError, ValueError) as exc:  # taken, not this host's, or not an address
            app.close()
            raise ConfigError(
                f"serve.host, serve.port (or --host, --port) {self.host}:{self.port}:"
                f" cannot listen there: {exc}"
            ) from None
        threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
        return server

    def _stop_on_signals(self, scheduler: Any) -> dict[int, Any]:
        """SIGTERM / SIGINT: stop after the work in hand; SIGHUP: the same, then start again
        (:meth:`run` answers so), reading the configuration anew; the handlers before,
        returned."""

        def on_signal(signum: int, frame: object) -> None:
            if self.stop.requested:
                if signum != signal.SIGHUP and self.stop.signal == signal.SIGHUP:
                    self.stop.signal = signum  # a stop asked during a reload: no restart
                    name = signal.Signals(signum).name
                    log.info("%s received: stopping, not starting again", name)
                return  # a second signal: already stopping
            then = "starting again" if signum == signal.SIGHUP else "stopping"
            log.info(
                "%s received: finishing the work in hand, then %s",
                signal.Signals(signum).name,
                then,
            )
            self.stop.set(signum)
            # Not in the handler itself: shutting down takes locks the interrupted
            # main thread may hold.
            threading.Thread(
                target=_shut_down, args=(scheduler,), name="shutdown", daemon=True
            ).start()

        return {sig: signal.signal(sig, on_signal) for sig in stop_signals()}


def _shut_down(scheduler: Any, wait_for_start: float = 30.0) -> None:
    """Stop ``scheduler``; a signal that came just before it started (the handlers are in
    place before it is) waits for it to run, or its start would block for good."""
    import contextlib
    import time

    from apscheduler.schedulers import SchedulerNotRunningError

    deadline = time.monotonic() + wait_for_start
    while not scheduler.running and time.monotonic() < deadline:
        time.sleep(0.02)
    # (Never started, because it failed first: nothing to stop.)
    with contextlib.suppress(SchedulerNotRunningError):
        scheduler.shutdown(wait=False)
