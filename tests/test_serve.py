"""`iomfeed serve` as a real process on a free port: the scheduler runs cycles, the feeds are
served with validators and gzip, /healthz reflects a failing source, SIGTERM stops cleanly
(also in the middle of a digest), a missed digest goes out once at start, and a second
service on the same database refuses to start."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from iomfeed.demo.server import Fault, SnapshotServer
from iomfeed.store import Store

from .conftest import NOW
from .digestkit import add_subscribers
from .smtp import Behaviour, free_port, smtp_config_edits, smtp_server
from .test_cli_snapshot import write_config

pytestmark = [pytest.mark.network, pytest.mark.slow]


def service_config(
    server: SnapshotServer,
    folder: Path,
    port: int,
    *,
    fetch: str,
    extra: dict[str, str] | None = None,
) -> Path:
    path = write_config(server, folder)
    text = path.read_text(encoding="utf-8")
    replacements = {
        'fetch = "*/30 * * * *"': f'fetch = "{fetch}"',
        "port = 8080": f"port = {port}",
        "failures = 3": "failures = 2",
        **(extra or {}),
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    return path


class Service:
    def __init__(self, config: Path, port: int) -> None:
        self.port = port
        self.log = config.parent / "serve.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "iomfeed", "--config", str(config), "serve"],
                cwd=config.parent,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(
        self, path: str, headers: dict[str, str] | None = None, data: bytes | None = None
    ) -> tuple[int, Message, bytes]:
        """Headers as the client sees them: their names are case-insensitive (waitress
        sends "Etag", the app says "ETag")."""
        request = urllib.request.Request(self.url(path), headers=headers or {}, data=data)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"serve exited: {self.log.read_text()}"
            try:
                if check():
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log.read_text()}")

    def health(self) -> tuple[int, dict[str, object]]:
        status, _h, body = self.get("/healthz")
        return status, json.loads(body)

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def test_serve_runs_cycles_serves_feeds_and_stops_on_sigterm(
    server: SnapshotServer, tmp_path: Path, services: list[Service]
) -> None:
    port = free_port()
    config = service_config(server, tmp_path, port, fetch="*/2 * * * * *")
    svc = Service(config, port)
    services.append(svc)
    # Wait for every file read below: index.html is written after the feeds.
    files = ("/atom.xml", "/rss.xml", "/feed.json", "/")
    svc.wait_for(lambda: all(svc.get(f)[0] == 200 for f in files), "the first cycle's files")
    _status, headers, body = svc.get("/atom.xml")
    assert headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert body.startswith(b"<?xml") and b"<feed" in body
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert svc.get("/atom.xml", {"If-None-Match": etag})[0] == 304
    assert svc.get("/atom.xml", {"If-Modified-Since": modified})[0] == 304
    _status, headers, zipped = svc.get("/rss.xml", {"Accept-Encoding": "gzip"})
    assert headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    assert headers["Content-Encoding"] == "gzip" and b"<rss" in gzip.decompress(zipped)
    assert svc.get("/feed.json")[1]["Content-Type"] == "application/feed+json; charset=utf-8"
    assert svc.get("/")[1]["Content-Type"] == "text/html; charset=utf-8"
    assert svc.get("/../config.toml")[0] == 404 and svc.get("/.iomfeed.db")[0] == 404
    code, health = svc.health()
    assert code == 200 and health["status"] == "ok"
    assert health["next"]["fetch"] and health["next"]["digest"]  # type: ignore[index]
    # A second service on the same database refuses to start.
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "iomfeed",
            "--config",
            str(config),
            "serve",
            "--port",
            str(free_port()),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 75 and "another iomfeed serve is already running" in second.stderr
    # The site breaks: after two failed cycles in a row /healthz answers 503, naming it.
    server.add_fault("/news", Fault(status=500, times=1000))
    svc.wait_for(lambda: svc.health()[0] == 503, "/healthz to report the failing source")
    code, health = svc.health()
    assert health["failing_sources"] == ["iom-albania"]
    assert svc.terminate() == 0
    assert "stopped" in svc.log.read_text()


def test_missed_digest_goes_out_once_at_start(
    server: SnapshotServer, tmp_path: Path, services: list[Service]
) -> None:
    port = free_port()
    config = service_config(server, tmp_path, port, fetch="*/2 * * * * *")
    with Store(tmp_path / "iomfeed.db") as store:
        add_subscribers(store, 3)
        # Installed two weeks ago; the service was down over last Monday's 08:00.
        store.db.execute(
            "INSERT INTO runs (started, finished, ok) VALUES (?, ?, 1)",
            ((NOW - timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ"),) * 2,
        )
    svc = Service(config, port)
    services.append(svc)
    outbox = tmp_path / "outbox"
    svc.wait_for(lambda: len(list(outbox.glob("*.eml"))) == 3, "the catch-up digest")
    # Several more cycles: nothing more is sent.
    runs_before = Store(tmp_path / "iomfeed.db").last_run_id()
    svc.wait_for(
        lambda: (Store(tmp_path / "iomfeed.db").last_run_id() or 0) >= (runs_before or 0) + 2,
        "two more cycles",
    )
    assert len(list(outbox.glob("*.eml"))) == 3
    _code, health = svc.health()
    assert health["last_digest"]["sent"] == 3  # type: ignore[index]
    assert svc.terminate() == 0


def test_sigterm_during_a_digest_send_leaves_the_ledger_consistent(
    server: SnapshotServer, tmp_path: Path, services: list[Service]
) -> None:
    port = free_port()
    sent_signal: list[bool] = []
    holder: list[Service] = []

    def hook(event: str, n: int) -> None:
        if event == "rcpt" and n == 4 and holder and not sent_signal:
            sent_signal.append(True)
            os.kill(holder[0].proc.pid, signal.SIGTERM)

    with smtp_server(Behaviour(hook=hook)) as (handler, smtp_port):
        config = service_config(
            server, tmp_path, port, fetch="0 0 1 1 *", extra=smtp_config_edits(smtp_port, rate=20)
        )
        with Store(tmp_path / "iomfeed.db") as store:
            add_subscribers(store, 12)
            store.db.execute(
                "INSERT INTO runs (started, finished, ok) VALUES (?, ?, 1)",
                ("2000-01-01T00:00:00Z",) * 2,
            )
        svc = Service(config, port)
        holder.append(svc)
        services.append(svc)
        assert svc.proc.wait(timeout=120) == 0, svc.log.read_text()
    assert sent_signal
    with Store(tmp_path / "iomfeed.db") as store:
        digest = store.last_digest()
        assert digest is not None and digest.status == "sending"
        totals = store.delivery_totals(digest.id)
    assert "sending" not in totals  # the message in hand was finished
    assert totals["sent"] == len(handler.received) >= 4
    assert totals["sent"] + totals["pending"] == 12


def test_a_web_sign_up_survives_a_sigkill_before_its_confirmation_went(
    server: SnapshotServer, tmp_path: Path, services: list[Service]
) -> None:
    # The answer goes out once the sign-up is kept; the service is killed while its worker
    # is still talking to the relay; the next start takes the sign-up up and the
    # confirmation goes, once.
    from urllib.parse import urlencode

    from iomfeed.clock import utc_now
    from iomfeed.config import load_config
    from iomfeed.digest.unsubscribe import load_secret
    from iomfeed.forms import form_token

    reached, release = threading.Event(), threading.Event()

    def hook(event: str, n: int) -> None:
        if event == "rcpt" and n == 1:
            reached.set()
            release.wait(30)  # the first worker never gets past RCPT: it is killed there

    port = free_port()
    with smtp_server(Behaviour(hook=hook)) as (handler, smtp_port):
        path = service_config(
            server, tmp_path, port, fetch="0 0 1 1 *", extra=smtp_config_edits(smtp_port)
        )
        config = load_config(path)
        db = tmp_path / "iomfeed.db"
        svc = Service(path, port)
        services.append(svc)
        svc.wait_for(lambda: svc.health()[0] in (200, 503), "the service to answer")
        with Store(db) as store:  # a form loaded a minute ago
            token = form_token(
                load_secret(config, store), config.list_id, utc_now() - timedelta(minutes=1)
            )
        fields = {
            "form_token": token, "email": "ana@example.org", "name": "Ana", "language": "en",
            "category": "Local", "lang": "en",
        }  # fmt: skip
        status, _h, body = svc.get(
            "/iom-albania/subscribe",
            {"Content-Type": "application/x-www-form-urlencoded"},
            urlencode(fields).encode(),
        )
        assert status == 200, body.decode()
        assert reached.wait(30), svc.log.read_text()
        svc.proc.kill()
        svc.proc.wait(10)
        with Store(db) as store:
            assert store.queued_sign_ups() == 1  # kept: claimed by a process now gone
        release.set()
        again = Service(path, port)
        services.append(again)

        def confirmed() -> bool:
            with Store(db) as store:
                return store.queued_sign_ups() == 0 and len(handler.received) == 1

        again.wait_for(confirmed, "the sign-up taken up again")
        assert again.terminate() == 0
    (message,) = handler.received
    assert message.rcpt_tos == ["ana@example.org"]
    with Store(db) as store:
        profile = store.profile(address="ana@example.org")
        assert profile is not None and profile.state.value == "pending"


def test_a_second_signal_while_stopping_does_not_cut_the_work_short(
    server: SnapshotServer, tmp_path: Path, services: list[Service]
) -> None:
    port = free_port()
    config = service_config(server, tmp_path, port, fetch="0 0 1 1 *")
    server.add_fault("/news", Fault(status=200, delay=3.0))  # a slow page in hand
    svc = Service(config, port)
    services.append(svc)
    svc.wait_for(lambda: server.hits("/news") > 0, "the first cycle to ask for the listing")
    svc.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    svc.proc.send_signal(signal.SIGINT)  # an impatient second Ctrl-C
    assert svc.proc.wait(timeout=60) == 0, svc.log.read_text()
    log = svc.log.read_text()
    assert "stopped" in log and "interrupted" not in log
    assert "iom-albania: stopped on request" in log
    with Store(tmp_path / "iomfeed.db") as store:
        # The run is recorded; what the stopped source did is not (neither a success nor a
        # failure of it), so its health is what it was.
        assert store.last_run_id() is not None
        assert store.source_runs(store.last_run_id() or 0) == []


def test_commands_wait_for_the_service_cycle_instead_of_refusing(
    server: SnapshotServer, tmp_path: Path, services: list[Service]
) -> None:
    """serve holds the run lock only while a cycle runs: a command started during one waits
    for it (or, with --wait 0, exits 75 naming it), and runs at once between cycles."""
    port = free_port()
    config = service_config(server, tmp_path, port, fetch="0 0 1 1 *")
    server.add_fault("/news", Fault(status=200, delay=8.0, times=1))  # a slow first cycle
    svc = Service(config, port)
    services.append(svc)
    svc.wait_for(lambda: server.hits("/news") > 0, "the first cycle to ask for the listing")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "iomfeed", "--config", str(config), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    refused = cli("publish", "--wait", "0")
    assert refused.returncode == 75
    assert "iomfeed serve's cycle job" in refused.stderr and str(svc.proc.pid) in refused.stderr
    waited = cli("publish")  # waits (up to 60 s) for the cycle in hand, then publishes
    assert waited.returncode == 0, waited.stderr
    assert "published to" in waited.stderr
    # Between cycles nothing waits: run, publish and digest --send go ahead at once.
    for args in (("run",), ("publish",), ("digest", "--send")):
        done = cli(*args, "--wait", "0")
        assert done.returncode == 0, (args, done.stderr)
    assert svc.proc.poll() is None
    assert svc.terminate() == 0


def test_idle_and_slow_connections_are_closed_and_threads_are_bounded(
    server: SnapshotServer, tmp_path: Path, services: list[Service]
) -> None:
    """A connection must deliver its request within REQUEST_TIMEOUT; THREADS + 1 clients
    trickling bytes do not get a thread each, and the service keeps answering."""
    import socket

    from iomfeed.web_server import REQUEST_TIMEOUT, THREADS

    port = free_port()
    config = service_config(server, tmp_path, port, fetch="0 0 1 1 *")
    svc = Service(config, port)
    services.append(svc)
    # Threads are counted once the first cycle is over.
    svc.wait_for(lambda: "cycle done" in svc.log.read_text(), "the first cycle to end")

    def threads() -> int:
        return len(os.listdir(f"/proc/{svc.proc.pid}/task"))

    before = threads()
    idle = socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT + 10)
    slow = [
        socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT + 10)
        for _ in range(THREADS + 1)
    ]
    start = time.monotonic()
    try:
        most = before
        closed_at: dict[int, float] = {}
        for tick in range(int(REQUEST_TIMEOUT * 4) + 20):  # a byte from each every 0.25 s
            for n, s in enumerate(slow):
                if n not in closed_at:
                    try:
                        s.sendall(b"GET /atom.xml HTTP/1.1\r\n"[tick % 24 : tick % 24 + 1])
                    except OSError:
                        closed_at[n] = time.monotonic() - start
            most = max(most, threads())
            if len(closed_at) == len(slow):
                break
            time.sleep(0.25)
        # Each trickling client was cut off near its deadline, none got a thread of its own.
        assert len(closed_at) == len(slow), closed_at
        assert max(closed_at.values()) < REQUEST_TIMEOUT + 4
        assert most <= before + 1, (before, most)
        # The idle one was closed too: the server's end reads as end of file.
        assert idle.recv(100) == b""
        assert time.monotonic() - start < REQUEST_TIMEOUT + 5
        assert svc.get("/atom.xml")[0] == 200  # and the service still answers
    finally:
        idle.close()
        for s in slow:
            s.close()
    assert svc.terminate() == 0


def test_a_busy_port_is_an_os_error_the_caller_can_handle() -> None:
    """The demo falls back to a free port when its usual one is taken (another demo, a second
    test run): binding must fail with OSError, not break on the way out."""
    from iomfeed.web_server import make_server

    first = make_server("127.0.0.1", 0, None)
    try:
        with pytest.raises(OSError, match="in use"):
            make_server("127.0.0.1", first.server_port, None)
    finally:
        first.server_close()


def test_a_prompt_request_queued_behind_a_slow_one_is_answered() -> None:
    """One worker busy for longer than the request deadline: the request that waited in the
    queue meanwhile had arrived in full, so it is answered, not closed."""
    import threading

    from iomfeed.web_server import REQUEST_TIMEOUT, make_server

    def app(environ: dict[str, object], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            time.sleep(REQUEST_TIMEOUT + 1)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = make_server("127.0.0.1", 0, app, threads=1)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        slow = threading.Thread(
            target=lambda: urllib.request.urlopen(base + "/slow", timeout=30).read()
        )
        slow.start()
        time.sleep(0.5)  # the worker is now inside the slow request
        with urllib.request.urlopen(base + "/fast", timeout=30) as answer:
            assert answer.status == 200 and answer.read() == b"ok"
        slow.join(timeout=30)
    finally:
        server.shutdown()
        server.server_close()


def test_a_signal_just_before_the_scheduler_starts_still_stops_it(tmp_path: Path) -> None:
    # The handlers are in place before the scheduler runs: a SIGTERM in between must stop
    # it as soon as it starts, not leave its start blocking for good.
    from apscheduler.schedulers.blocking import BlockingScheduler

    from iomfeed.scheduler import Service as Serve

    from .digestkit import digest_config

    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(lambda: None, "interval", hours=1)
    service = Serve(digest_config(tmp_path))
    watchdog = threading.Timer(20, lambda: scheduler.shutdown(wait=False))  # the bug's bound
    previous = service._stop_on_signals(scheduler)
    try:
        signal.raise_signal(signal.SIGTERM)  # handled at once, in this (the main) thread
        assert service.stop.requested
        watchdog.start()
        started = time.monotonic()
        scheduler.start()  # returns once the shutdown thread sees it running
        assert time.monotonic() - started < 10
    finally:
        watchdog.cancel()
        for sig, old in previous.items():
            signal.signal(sig, old)


def test_sighup_reloads_the_configuration_in_the_same_process(
    server: SnapshotServer, tmp_path: Path, services: list[Service]
) -> None:
    """An operator's trial sent SIGHUP (what `systemctl reload` sends): serve died at once,
    with no log line, and an edited configuration was never read. Now it finishes the work
    in hand, reads the file again and goes on, in the same process."""
    port = free_port()
    config = service_config(server, tmp_path, port, fetch="0 0 1 1 *")
    svc = Service(config, port)
    services.append(svc)

    def title_served(title: str) -> Callable[[], bool]:
        return lambda: title.encode() in svc.get("/iom-albania/atom.xml")[2]

    svc.wait_for(title_served("IOM Albania: Latest News on Migration"), "the first publish")
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("Latest News on Migration", "News, reloaded", 1), "utf-8")
    svc.proc.send_signal(signal.SIGHUP)
    svc.wait_for(title_served("IOM Albania: News, reloaded"), "the publish after the reload")
    log = svc.log.read_text()
    assert "SIGHUP received: finishing the work in hand, then starting again" in log
    assert "configuration read again" in log
    assert sum(line.startswith("serving ") for line in log.splitlines()) == 2
    assert svc.terminate() == 0


def test_a_reload_onto_a_broken_file_keeps_the_service(
    server: SnapshotServer, tmp_path: Path, services: list[Service]
) -> None:
    """A second reader found that a reload onto a file that no longer loads ended the
    service (and /unsubscribe with it): it goes on with the configuration it had."""
    port = free_port()
    config = service_config(server, tmp_path, port, fetch="0 0 1 1 *")
    svc = Service(config, port)
    services.append(svc)
    svc.wait_for(lambda: "cycle done" in svc.log.read_text(), "the first cycle")
    config.write_text(config.read_text(encoding="utf-8") + "\n[nonsense]\nkey = 1\n", "utf-8")
    svc.proc.send_signal(signal.SIGHUP)
    svc.wait_for(lambda: "configuration not read again" in svc.log.read_text(), "the refusal")
    assert "nonsense" in svc.log.read_text()  # the error names the key
    svc.wait_for(lambda: svc.health()[0] in (200, 503), "the service to answer again")
    assert svc.terminate() == 0


def test_a_stop_while_a_reload_finishes_its_work_stops(
    server: SnapshotServer, tmp_path: Path, services: list[Service]
) -> None:
    """SIGTERM (systemctl stop) after SIGHUP, while the work in hand finishes: it stops, and
    does not start again (systemd would kill the new one at its stop timeout)."""
    port = free_port()
    config = service_config(server, tmp_path, port, fetch="0 0 1 1 *")
    server.add_fault("/news", Fault(status=200, delay=3.0))  # a slow page in hand
    svc = Service(config, port)
    services.append(svc)
    svc.wait_for(lambda: server.hits("/news") > 0, "the first cycle to ask for the listing")
    svc.proc.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    svc.proc.send_signal(signal.SIGTERM)
    assert svc.proc.wait(timeout=60) == 0, svc.log.read_text()
    log = svc.log.read_text()
    assert "SIGTERM received: stopping, not starting again" in log
    assert sum(line.startswith("serving ") for line in log.splitlines()) == 1
