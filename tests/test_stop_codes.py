"""A command stopped cleanly by a signal says so in its exit code: 128 + the signal (130 for
Ctrl-C, 143 for SIGTERM), as a shell reports a process it ended, so cron, systemd or a
wrapper script sees the work was cut short. A real ``iomfeed`` process against the snapshot
server on 127.0.0.1, stopped in its pause between two requests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iomfeed.config import LIVE_ORIGIN
from iomfeed.demo.server import SnapshotServer
from iomfeed.store import Store

from .conftest import CONFIG_FILE

pytestmark = pytest.mark.network

#: The pause between two requests to the site: far longer than the test waits for the stop.
PAUSE = 60.0


@pytest.mark.parametrize(
    ("command", "sig", "code"),
    [
        ("run", signal.SIGINT, 130),
        ("fetch", signal.SIGTERM, 143),
        ("run", signal.SIGTERM, 143),
        ("run", signal.SIGHUP, 129),  # a terminal closed: stopped cleanly, not killed
    ],
)
def test_a_run_or_fetch_stopped_in_a_pause_exits_128_plus_the_signal(
    server: SnapshotServer, tmp_path: Path, command: str, sig: signal.Signals, code: int
) -> None:
    text = CONFIG_FILE.read_text(encoding="utf-8").replace(LIVE_ORIGIN, server.origin)
    assert "min_delay = 0.5" in text
    config = tmp_path / "config.toml"
    config.write_text(text.replace("min_delay = 0.5", f"min_delay = {PAUSE}"), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "iomfeed", "--config", str(config), command],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not server.requests and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.requests, "the first request never came"
        started = time.monotonic()
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    assert time.monotonic() - started < PAUSE / 2  # the pause was cut short, not waited out
    assert f"{sig.name} received: stopping after the page or message in hand" in err
    assert "Traceback" not in err
    with Store(tmp_path / "iomfeed.db") as store:
        assert store.last_run_id() is not None  # the run was recorded, stopped, not lost


def test_under_nohup_a_hangup_does_not_stop_a_run(server: SnapshotServer, tmp_path: Path) -> None:
    """nohup ignores SIGHUP so that a closed terminal does not stop the command: iomfeed
    leaves it ignored (a second reader found it took SIGHUP over)."""
    text = CONFIG_FILE.read_text(encoding="utf-8").replace(LIVE_ORIGIN, server.origin)
    config = tmp_path / "config.toml"
    config.write_text(text.replace("min_delay = 0.5", f"min_delay = {PAUSE}"), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "iomfeed", "--config", str(config), "run"],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),  # as nohup does
    )
    try:
        deadline = time.monotonic() + 30
        while not server.requests and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.requests, "the first request never came"
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert proc.poll() is None  # still going
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    assert "SIGHUP" not in err
