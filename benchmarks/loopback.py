"""Loopback parts the benchmarks share: a free port, and an aiosmtpd sink in its own process
that accepts every message and counts them.

Nothing here imports iomfeed, so a benchmark that drives two versions of it (see
``compare.py``) can use these without depending on either version's internals.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from types import TracebackType

SINK = """
import sys
import time
from aiosmtpd.controller import Controller

class Sink:
    arrived = []  # the monotonic time each message's data was accepted

    async def handle_DATA(self, server, session, envelope):
        Sink.arrived.append(time.monotonic())
        return "250 2.0.0 Ok"

controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
for line in sys.stdin:
    if line.startswith("span "):  # the first and last arrival from message N on
        times = Sink.arrived[int(line.split()[1]):]
        print(f"{times[0]} {times[-1]}" if times else "0 0", flush=True)
    else:  # how many messages have arrived so far
        print(len(Sink.arrived), flush=True)
controller.stop()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    """An SMTP server on 127.0.0.1 (in a child process) that accepts and counts every
    message; use it as a context manager."""

    def __init__(self, port: int | None = None) -> None:
        self.port = free_port() if port is None else port
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> SmtpSink:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", SINK, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            raise SystemExit("the SMTP sink did not start")
        return self

    def received(self) -> int:
        """Messages accepted since the sink started."""
        assert self._proc is not None and self._proc.stdin and self._proc.stdout
        self._proc.stdin.write("?\n")
        self._proc.stdin.flush()
        return int(self._proc.stdout.readline())

    def span(self, since: int) -> float:
        """Seconds from the first to the last message accepted after the first ``since``."""
        assert self._proc is not None and self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(f"span {since}\n")
        self._proc.stdin.flush()
        first, last = (float(t) for t in self._proc.stdout.readline().split())
        return last - first

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is None:
            return
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)
        if self._proc.stdout:
            self._proc.stdout.close()
