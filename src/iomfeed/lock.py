"""One run at a time: exclusive locks on files beside the database.

Two locks, both ``flock`` locks on a file named after the database's *resolved* path (so a
symlink or another spelling of the same file meets the same lock):

* the run lock (``iomfeed.db.lock``), held only while work is done on the database: a
  ``fetch``, ``publish``, ``run``, ``digest --send``, or one cycle of ``serve``. Whoever
  finds it taken waits for it, up to a bound (``wait`` seconds), then gives up with
  :class:`AlreadyRunning` (exit code 75), naming the process that holds it;
* the service lock (``iomfeed.db.serve.lock``), held by ``serve`` for its whole life, never
  waited for: a second ``serve`` on the same database refuses to start.

``flock`` locks belong to the open file, so the kernel drops them when the process dies:
a lock left by a killed run never blocks the next one. Linux and other POSIX systems.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from .errors import IomfeedError, StoreError

log = logging.getLogger(__name__)

#: How long a command waits for another run's lock before exiting 75 (``--wait``).
DEFAULT_WAIT = 60.0
POLL = 0.2


class AlreadyRunning(IomfeedError):
    """Another iomfeed process holds the lock on this database."""


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def _open_private(path: Path) -> int:
    """The lock file, readable and writable by its owner only, like the database: whatever
    the umask, and also when an older version left it readable."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(
            f"cannot open the lock file {path} ({exc.strerror or exc}); check that this user"
            " may write the folder and the file"
        ) from exc
    with contextlib.suppress(PermissionError):  # another user's file: theirs to keep
        os.fchmod(fd, 0o600)
    return fd


class RunLock:
    """The run lock. ``what`` names this process's work for whoever waits for it;
    ``sleep(seconds)`` pauses between tries and returns True to give up (a stop request)."""

    suffix = ".lock"

    def __init__(
        self,
        database: Path,
        *,
        wait: float = 0.0,
        what: str = "iomfeed",
        sleep: Callable[[float], bool] = _sleep,
    ) -> None:
        # Resolved: two spellings of one database (a symlink, "../x/iomfeed.db") share a lock.
        self.database = database.resolve()
        self.path = self.database.with_name(self.database.name + self.suffix)
        self.wait = max(0.0, wait)
        self.what = what
        self._sleep = sleep
        self._fd: int | None = None

    def _holder(self, fd: int) -> str:
        return _named(os.pread(fd, 200, 0)) or "another process"

    def _refuse(self, holder: str, waited: float) -> AlreadyRunning:
        during = f"; waited {waited:.2g} s" if self.wait else ""
        return AlreadyRunning(
            f"another iomfeed run is using {self.database} ({holder}){during};"
            " not starting a second one"
        )

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = _open_private(self.path)
        start = time.monotonic()
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited >= self.wait:
                    holder = self._holder(fd)
                    os.close(fd)
                    raise self._refuse(holder, waited) from None
                if not told:
                    log.info(
                        "%s is in use (%s); waiting up to %.0f s",
                        self.database,
                        self._holder(fd),
                        self.wait,
                    )
                    told = True
                if self._sleep(min(POLL, self.wait - waited)):
                    os.close(fd)
                    raise AlreadyRunning(f"stopped while waiting for {self.database}") from None
        os.ftruncate(fd, 0)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        os.pwrite(fd, f"{os.getpid()} {self.what}\n{since}".encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # nobody named in it: see holders()
            os.close(self._fd)  # releases the lock; the file stays, harmlessly
            self._fd = None


class ServiceLock(RunLock):
    """Held by ``iomfeed serve`` for its whole life; never waited for."""

    suffix = ".serve.lock"

    def __init__(self, database: Path) -> None:
        super().__init__(database, wait=0.0, what="iomfeed serve")

    def _refuse(self, holder: str, waited: float) -> AlreadyRunning:
        return AlreadyRunning(
            f"another iomfeed serve is already running on {self.database}"
            f" ({holder}); not starting a second one"
        )


def _named(data: bytes) -> str:
    """``pid N: what, since T UTC`` from a lock file's bytes ("" when it names nobody)."""
    first, _, since = data.decode("utf-8", "replace").strip().partition("\n")
    pid, _, what = first.partition(" ")
    if not pid:
        return ""
    return f"pid {pid}" + (f": {what}" if what else "") + (f", since {since} UTC" if since else "")


def holders(database: Path) -> tuple[str, ...]:
    """Who holds the locks on ``database`` now (``serve``, then a run), as their files name
    them, for ``iomfeed status``. Read, never locked: a look must not stand in the way of a
    run or a ``serve`` starting that very moment. A holder that was killed left its name
    behind; its process is gone, so it is not listed (a process that took its number since
    would be, until the next run writes the file again)."""
    found = []
    resolved = database.resolve()
    for lock in (ServiceLock, RunLock):
        path = resolved.with_name(resolved.name + lock.suffix)
        try:
            data = path.read_bytes()[:200]
        except OSError:
            continue
        named = _named(data)
        pid = data.split(b" ", 1)[0]
        if named and pid.isdigit() and _alive(int(pid)):
            found.append(named)
    return tuple(found)


def _alive(pid: int) -> bool:
    if pid <= 0:  # 0 would ask about this process's group: not a holder's number
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or no process's number at all
        return False
    except PermissionError:  # another user's process
        return True
    return True
