"""One run at a time: an exclusive lock on a file beside the database.

``flock`` locks belong to the open file, so the kernel drops them when the process dies:
a lock left by a killed run never blocks the next one. Linux and other POSIX systems.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from .errors import IomfeedError


class AlreadyRunning(IomfeedError):
    """Another iomfeed process holds the lock on this database."""


class RunLock:
    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # like the database
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            raise AlreadyRunning(
                f"another iomfeed run (pid {holder}) is using {self.path.with_suffix('')};"
                f" not starting a second one"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock; the file stays, harmlessly
            self._fd = None
