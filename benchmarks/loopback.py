"""Loopback parts the benchmarks share: a free port, and an aiosmtpd sink in child processes
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
import asyncio
import socket
import sys
import threading
import time
from aiosmtpd.smtp import SMTP

arrived = []  # the monotonic time each message's data was accepted


class Sink:
    async def handle_DATA(self, server, session, envelope):
        arrived.append(time.monotonic())
        return "250 2.0.0 Ok"


class OneConnection(SMTP):
    def __init__(self, done, loop):
        super().__init__(Sink(), hostname="sink.test", enable_SMTPUTF8=True, loop=loop)
        self.done = done

    def connection_lost(self, error):
        super().connection_lost(error)
        if not self.done.done():
            self.done.set_result(None)


def serve(listener):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def one(conn):
        done = loop.create_future()
        await loop.connect_accepted_socket(lambda: OneConnection(done, loop), sock=conn)
        await done

    while True:
        # Accepted only while idle, so each open connection has a process of its own.
        conn, _ = listener.accept()
        try:
            loop.run_until_complete(one(conn))
        except Exception as exc:  # one connection's failure: the next is served all the same
            print(f"sink: {exc!r}", file=sys.stderr, flush=True)


listener = socket.socket(fileno=int(sys.argv[1]))
threading.Thread(target=serve, args=(listener,), daemon=True).start()
print("ready", flush=True)
for line in sys.stdin:
    if line.startswith("times"):  # every arrival so far
        print(" ".join(repr(t) for t in arrived), flush=True)
    else:  # how many messages have arrived so far
        print(len(arrived), flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    """An SMTP server on 127.0.0.1 that accepts and counts every message; use it as a
    context manager.

    It is a relay that takes several connections at once, as a real one does (Postfix
    runs an smtpd process per connection): ``workers`` child processes share the
    listening socket, each takes a connection only while it has none, so up to
    ``workers`` connections are served in parallel, each by aiosmtpd in its own process.
    One process for them all would measure its own ceiling: it spends about three times
    the CPU a message costs the sender, so on two cores it caps any sender, smtplib with
    two connections included, near the one-connection rate."""

    def __init__(self, port: int | None = None, workers: int = 4) -> None:
        self.port = 0 if port is None else port
        self.workers = workers
        self._listener: socket.socket | None = None
        self._procs: list[subprocess.Popen[str]] = []

    def __enter__(self) -> SmtpSink:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener, self.port = listener, int(listener.getsockname()[1])
        for _ in range(self.workers):
            proc = subprocess.Popen(
                [sys.executable, "-c", SINK, str(listener.fileno())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                pass_fds=(listener.fileno(),),
            )
            self._procs.append(proc)
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                self.__exit__(None, None, None)
                raise SystemExit("the SMTP sink did not start")
        return self

    def _ask(self, question: str) -> list[str]:
        answers = []
        for proc in self._procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(question + "\n")
            proc.stdin.flush()
            answers.append(proc.stdout.readline())
        return answers

    def received(self) -> int:
        """Messages accepted since the sink started."""
        return sum(int(answer) for answer in self._ask("?"))

    def span(self, since: int) -> float:
        """Seconds from the first to the last message accepted after the first ``since``."""
        times = sorted(float(t) for answer in self._ask("times") for t in answer.split())
        times = times[since:]
        return times[-1] - times[0] if times else 0.0

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            for proc in self._procs:
                if proc.stdin:
                    proc.stdin.close()
            for proc in self._procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                if proc.stdout:
                    proc.stdout.close()
        finally:
            self._procs.clear()
            if self._listener is not None:
                self._listener.close()
                self._listener = None
