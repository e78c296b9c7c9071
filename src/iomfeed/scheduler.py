"""``iomfeed serve``: the long-running service. An entry point, like the CLI.

APScheduler 3 (a ``BlockingScheduler`` in the main thread, cron triggers in the site's time
zone, one worker so jobs never overlap, ``coalesce``, ``max_instances = 1``, a misfire
grace time) runs the cycle on ``schedule.fetch`` and the digest on ``schedule.digest``; a
cycle also runs at start, so a digest missed while the service was down goes out once, then.
Whether a digest is due is decided from the store, never from the scheduler's memory.
The same process answers HTTP through :class:`iomfeed.web.App` on the standard library's
WSGI server (a fixed pool of threads, a deadline for each request), in a thread. SIGTERM
or SIGINT: the message or page in hand is finished, the scheduler and the server stop,
exit 0. The service holds the service lock for its whole life, so a second ``serve`` on the
same database refuses to start, and the run lock only while a job runs: a ``run``,
``publish`` or ``digest --send`` started meanwhile waits for the cycle in hand (and a job
of the service waits, up to the same bound, for theirs).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .clock import utc_now
from .config import Config
from .delivery.send import Stop
from .lock import DEFAULT_WAIT, AlreadyRunning, RunLock, ServiceLock

log = logging.getLogger(__name__)


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
        from .delivery.mailers import make_mailer
        from .http import HttpClient
        from .pipeline import open_store, run_cycle

        if self.stop.requested:
            return
        with self._busy:
            try:
                with (
                    self._run_lock("cycle"),
                    open_store(self.config) as store,
                    HttpClient(
                        self.config.http, validators=store, sleep=self.stop.sleep_or_stop
                    ) as http,
                ):
                    report = run_cycle(
                        self.config,
                        store=store,
                        http=http,
                        mailer=lambda: make_mailer(self.config),
                        clock=utc_now,
                        stop=self.stop,
                    )
                log.info(
                    "cycle done: %d source(s) ok, %d failed%s",
                    sum(r.ok for r in report.run.sources),
                    len(report.run.failed),
                    f"; digest {report.digest.status}" if report.digest else "",
                )
            except AlreadyRunning as exc:  # the next scheduled time tries again
                log.warning("cycle skipped: %s", exc)
                return
            except Exception as exc:  # a job must not take the service down
                log.exception("the cycle failed")
                self._record_job("cycle", exc)
                return
            self._record_job("cycle", None)

    def digest(self) -> None:
        """The digest's scheduled time: send it if the store says it is due."""
        from .delivery.mailers import make_mailer
        from .pipeline import digest_due, open_store, send_digest

        if self.stop.requested:
            return
        with self._busy:
            try:
                with self._run_lock("digest"), open_store(self.config) as store:
                    if digest_due(self.config, store, utc_now()):
                        send_digest(
                            self.config,
                            store=store,
                            mailer=make_mailer(self.config),
                            clock=utc_now,
                            stop=self.stop,
                        )
            except AlreadyRunning as exc:
                log.warning("digest job skipped: %s", exc)
                return
            except Exception as exc:
                log.exception("the digest job failed")
                self._record_job("digest", exc)
                return
            self._record_job("digest", None)

    def _run_lock(self, job: str) -> RunLock:
        """The run lock for one job: waits for a ``run`` or ``publish`` started by hand,
        up to the usual bound, and gives up at once on SIGTERM."""
        return RunLock(
            self.config.database_path,
            wait=DEFAULT_WAIT,
            what=f"iomfeed serve's {job} job",
            sleep=self.stop.sleep,
        )

    def _record_job(self, job: str, error: Exception | None) -> None:
        """Jobs failing again and again (a missing password, a broken template) show in
        /healthz and the alerts, not only in the log."""
        from .health import record_job

        try:
            record_job(self.config, job, error)
        except Exception:
            log.exception("could not record the %s job's outcome", job)

    def next_times(self) -> Mapping[str, datetime | None]:
        if self.scheduler is None:
            return {}
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}

    # ----------------------------------------------------------------- running

    def run(self) -> int:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        from .cron import trigger
        from .web import App, make_server

        config = self.config
        tz = config.site.timezone
        with ServiceLock(config.database_path):
            from .pipeline import open_store

            # Create or migrate the store once, before the job and HTTP threads open it.
            with self._run_lock("start"):
                open_store(config).close()
            self.scheduler = scheduler = BlockingScheduler(
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
            app = App(config, now=utc_now, next_times=self.next_times)
            server = make_server(self.host, self.port, app)
            web = threading.Thread(target=server.serve_forever, name="http", daemon=True)
            web.start()
            log.info(
                "serving %s on http://%s:%d/ (feeds, /unsubscribe, /healthz);"
                " cycle %r, digest %r in %s",
                config.feeds_path,
                self.host,
                server.server_port,
                config.schedule.fetch,
                config.schedule.digest,
                tz,
            )

            def on_signal(signum: int, frame: object) -> None:
                if self.stop.requested:
                    return  # a second signal: already stopping
                log.info(
                    "%s received: finishing the work in hand, then stopping",
                    signal.Signals(signum).name,
                )
                self.stop.set()
                # Not in the handler itself: shutting down takes locks the interrupted
                # main thread may hold.
                threading.Thread(
                    target=scheduler.shutdown, kwargs={"wait": False}, name="shutdown", daemon=True
                ).start()

            previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
            try:
                scheduler.start()  # blocks until a signal shuts it down
            finally:
                self.stop.set()
                with self._busy:  # the job in hand (if any) finishes and commits first
                    pass
                server.shutdown()
                server.server_close()
                # Only now: a second signal while finishing must not cut the work short
                # (and release the lock under a job that is still running).
                for s, old in previous.items():
                    signal.signal(s, old)
            log.info("stopped")
        return 0
