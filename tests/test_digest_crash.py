"""Crash safety, for real: `iomfeed digest --send` in a subprocess, killed with SIGKILL at
several points of a send by the SMTP server itself (so the point is exact), then run again.
Every active subscriber ends with exactly one copy, except at most the one message in flight
at each kill, which is re-sent with the same Message-ID. SIGTERM finishes the message in hand
and stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from iomfeed.ingest import upsert
from iomfeed.store import Store

from .conftest import CONFIG_FILE, NOW
from .digestkit import add_items, add_subscribers, item, stories_in
from .smtp import Behaviour, Handler, smtp_config_edits, smtp_server

pytestmark = [pytest.mark.network, pytest.mark.slow]

SUBSCRIBERS = 24


def write_config(folder: Path, port: int, rate: float = 0.0) -> Path:
    text = CONFIG_FILE.read_text(encoding="utf-8")
    edits = {**smtp_config_edits(port, rate), "backoff = 2.0": "backoff = 0.05"}
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def prepare(folder: Path) -> None:
    with Store(folder / "iomfeed.db") as store:
        add_subscribers(store, SUBSCRIBERS)
        add_items(store, range(6), NOW - timedelta(days=1))


class Killer:
    """Kills the running subprocess when the server sees the n-th event of a kind."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.target: tuple[str, int] | None = None
        self.sig = signal.SIGKILL
        self.fired = threading.Event()

    def __call__(self, event: str, n: int) -> None:
        if self.proc is not None and self.target == (event, n) and not self.fired.is_set():
            self.fired.set()
            os.kill(self.proc.pid, self.sig)


def run_send(
    config: Path,
    killer: Killer,
    target: tuple[str, int] | None,
    sig: signal.Signals = signal.SIGKILL,
) -> subprocess.CompletedProcess[str]:
    killer.target, killer.sig = target, sig
    killer.fired.clear()
    proc = subprocess.Popen(
        [sys.executable, "-m", "iomfeed", "--config", str(config), "digest", "--send"],
        cwd=config.parent,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    killer.proc = proc
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        killer.proc = None
    if target is not None:
        assert killer.fired.is_set(), f"the kill at {target} never happened: {err}"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def ledger(folder: Path) -> tuple[dict[str, int], list[str], str]:
    with Store(folder / "iomfeed.db") as store:
        digest = store.last_digest()
        assert digest is not None
        ambiguous = [
            d.address
            for d in store.deliveries(
                digest.id, ("pending", "sending", "sent", "failed", "skipped")
            )
            if d.ambiguous
        ]
        return store.delivery_totals(digest.id), ambiguous, digest.status


def test_sigkill_at_several_points_then_resume(tmp_path: Path) -> None:
    prepare(tmp_path)
    killer = Killer()
    with smtp_server(Behaviour(hook=killer)) as (handler, port):
        config = write_config(tmp_path, port)
        # 1. Killed at RCPT of message 4: in flight, not delivered.
        first = run_send(config, killer, ("rcpt", 4))
        assert first.returncode == -signal.SIGKILL
        totals, _, status = ledger(tmp_path)
        assert totals == {"sent": 3, "sending": 1, "pending": SUBSCRIBERS - 4}
        assert status == "sending"
        # 2. Killed after the server took message 9's data but before it answered:
        #    delivered, yet the ledger cannot know; it will be sent again.
        base = handler.data_count
        second = run_send(config, killer, ("data", base + 6))
        assert second.returncode == -signal.SIGKILL
        # 3. Killed at the RCPT right after a resumed start.
        third = run_send(config, killer, ("rcpt", handler.rcpt_count + 2))
        assert third.returncode == -signal.SIGKILL
        # 4. Runs to the end.
        last = run_send(config, killer, None)
        assert last.returncode == 0, last.stderr
        assert "complete" in last.stdout
    check_exactly_once(handler, tmp_path, kills=3)


def check_exactly_once(handler: Handler, folder: Path, kills: int) -> None:
    copies = Counter(r.rcpt_tos[0] for r in handler.received)
    everyone = {f"reader{i}@example.org" for i in range(SUBSCRIBERS)}
    assert set(copies) == everyone, "somebody was skipped"
    doubled = {a for a, n in copies.items() if n > 1}
    assert all(n <= 2 for n in copies.values())
    assert len(doubled) <= kills
    for address in doubled:  # a re-sent copy is recognisably the same message
        ids = {r.message()["Message-ID"] for r in handler.received if r.rcpt_tos[0] == address}
        assert len(ids) == 1
    totals, ambiguous, status = ledger(folder)
    assert totals == {"sent": SUBSCRIBERS} and status == "sent"
    assert doubled <= set(ambiguous) and len(ambiguous) <= kills


def test_sigkill_at_random_moments_never_skips_anyone(tmp_path: Path) -> None:
    import random
    import time

    prepare(tmp_path)
    killer = Killer()
    rng = random.Random(4)
    with smtp_server(Behaviour(hook=killer)) as (handler, port):
        config = write_config(tmp_path, port, rate=40.0)  # a send of about 0.6 s
        kills = 0
        for _ in range(3):
            before = handler.data_count
            proc = subprocess.Popen(
                [sys.executable, "-m", "iomfeed", "--config", str(config), "digest", "--send"],
                cwd=tmp_path,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + 60
            while (
                handler.data_count == before and proc.poll() is None and time.monotonic() < deadline
            ):
                time.sleep(0.005)  # mid-send for sure: this run has delivered something
            time.sleep(rng.uniform(0.0, 0.1))
            proc.kill()
            proc.communicate(timeout=60)
            kills += proc.returncode == -signal.SIGKILL
        assert kills == 3
        last = run_send(config, killer, None)
        assert last.returncode == 0, last.stderr
    check_exactly_once(handler, tmp_path, kills=kills)


def test_sigterm_finishes_the_message_in_hand_and_stops_cleanly(tmp_path: Path) -> None:
    prepare(tmp_path)
    killer = Killer()
    with smtp_server(Behaviour(hook=killer)) as (handler, port):
        config = write_config(tmp_path, port)
        stopped = run_send(config, killer, ("rcpt", 5), sig=signal.SIGTERM)
        # Stopped, not done: 128 + SIGTERM, and the send says it is not complete.
        assert stopped.returncode == 143, stopped.stderr
        assert "SIGTERM received" in stopped.stderr and "NOT complete" in stopped.stdout
        totals, ambiguous, status = ledger(tmp_path)
        # The fifth message was finished, not abandoned; nothing is left in flight.
        assert totals == {"sent": 5, "pending": SUBSCRIBERS - 5} and not ambiguous
        assert len(handler.received) == 5 and status == "sending"
        last = run_send(config, killer, None)
        assert last.returncode == 0
    check_exactly_once(handler, tmp_path, kills=0)


#: The segmented send's stories, newest first: 0 without a category, then Local and Global
#: in turn (the list's first digest shows the newest five: 5 is only counted in "more").
SEGMENT_STORIES = {0: "", 1: "Local", 2: "Global", 3: "Local", 4: "Global", 5: "Local"}
#: Subscriber i chooses CHOICES[i % 4]; what each gets. The list's first digest shows its
#: newest five (``first_items``): 0-4. Local's newest five are 1, 3 and 5, beyond the whole
#: digest's five: a resumed send must find it in what the digest recorded.
CHOICES = [([], {0, 1, 2, 3, 4}), (["Local"], {1, 3, 5}), (["Global"], {2, 4})]
CHOICES.append((["Local", "Global"], CHOICES[0][1]))


def test_sigkill_during_a_segmented_send_then_resume(tmp_path: Path) -> None:
    with Store(tmp_path / "iomfeed.db") as store:
        addresses = add_subscribers(store, SUBSCRIBERS)
        for n, category in SEGMENT_STORIES.items():
            upsert(store, item(n, category=category), NOW - timedelta(days=1))
        for i, address in enumerate(addresses):
            profile = store.profile(address=address)
            assert profile is not None
            store.set_preferences(
                profile.id,
                language=profile.language,
                categories=CHOICES[i % 4][0],
                paused_until=None,
            )
    killer = Killer()
    with smtp_server(Behaviour(hook=killer)) as (handler, port):
        config = write_config(tmp_path, port)
        first = run_send(config, killer, ("rcpt", 5))  # in flight, not delivered
        assert first.returncode == -signal.SIGKILL
        # Delivered but not answered: the ledger cannot know, and sends it again.
        second = run_send(config, killer, ("data", handler.data_count + 7))
        assert second.returncode == -signal.SIGKILL
        last = run_send(config, killer, None)
        assert last.returncode == 0, last.stderr
    check_exactly_once(handler, tmp_path, kills=2)
    for r in handler.received:  # every copy, the re-sent ones too: only their categories
        i = int(r.rcpt_tos[0].removeprefix("reader").partition("@")[0])
        assert stories_in(r.message()) == CHOICES[i % 4][1], r.rcpt_tos[0]


def test_sigkill_with_several_connections_then_resume(tmp_path: Path) -> None:
    """Two connections: up to two messages in flight at each kill, each re-sent with its
    Message-ID; nobody skipped, nobody given three copies, one ledger."""
    prepare(tmp_path)
    killer = Killer()
    with smtp_server(Behaviour(hook=killer)) as (handler, port):
        config = write_config(tmp_path, port)
        text = config.read_text(encoding="utf-8")
        assert "connections = 1" in text
        config.write_text(text.replace("connections = 1", "connections = 2", 1), "utf-8")
        first = run_send(config, killer, ("rcpt", 6))
        assert first.returncode == -signal.SIGKILL
        totals, _, status = ledger(tmp_path)
        assert 1 <= totals.get("sending", 0) <= 2 and status == "sending"
        assert sum(totals.values()) == SUBSCRIBERS
        second = run_send(config, killer, ("data", handler.data_count + 7))
        assert second.returncode == -signal.SIGKILL
        last = run_send(config, killer, None)
        assert last.returncode == 0, last.stderr
        assert "complete" in last.stdout
    check_exactly_once(handler, tmp_path, kills=2 * 2)
