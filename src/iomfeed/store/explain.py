"""Why the SQLite store cannot be opened or written, in words an operator can act on.

SQLite says "disk I/O error" or "unable to open database file" for many different causes.
This module asks the system which one it is (the file-size limit, a full disk, a read-only
file system or folder, missing permissions, a folder where the file should be, a file that is
not a database) and names the file. Used only once something has already failed.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

_LOW_SPACE = 1024 * 1024  # less free space than this is "full" for a database that grows


def explain(path: Path, exc: sqlite3.Error, *, action: str = "open") -> str:
    """One line: ``cannot <action> the database <path>: <causes> (SQLite: <its words>)``."""
    said = str(exc) or type(exc).__name__
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    head = f"cannot {action} the database {path}"
    if primary == sqlite3.SQLITE_NOTADB or "not a database" in said:
        return (
            f"{head}: the file is not an SQLite database (does storage.database name"
            f" some other file?); move it away or point storage.database elsewhere"
            f" (SQLite: {said})"
        )
    if primary == sqlite3.SQLITE_CORRUPT:
        return f"{head}: the file is damaged; restore it from a backup (SQLite: {said})"
    causes = _system_causes(
        path,
        full=primary == sqlite3.SQLITE_FULL,
        writing=primary in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL),
    )
    if not causes:
        return f"{head}: {said}"
    return f"{head}: {'; '.join(causes)} (SQLite: {said})"


def _system_causes(path: Path, *, full: bool, writing: bool) -> list[str]:
    causes: list[str] = []
    folder = path.parent
    if path.is_dir():
        causes.append(f"{path} is a folder, not a file")
    limit = _file_size_limit()
    if limit is not None and writing:
        causes.append(
            f"this process may not write files larger than {limit} bytes (the"
            f" file-size limit, ulimit -f); raise it"
        )
    try:
        fs = os.statvfs(folder)
    except OSError:
        fs = None
    if fs is not None:
        free = fs.f_bavail * fs.f_frsize
        if full or free < _LOW_SPACE:
            causes.append(f"the disk holding {folder} is full ({free} bytes free)")
        if fs.f_flag & os.ST_RDONLY:
            causes.append(f"{folder} is on a file system mounted read-only")
            return causes
    elif full:
        causes.append(f"the disk holding {folder} is full")
    if not os.access(folder, os.W_OK | os.X_OK):
        causes.append(
            f"the folder {folder} is not writable by this user (uid {os.getuid()}):"
            " the database and its -wal and -shm files are created there"
        )
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if name.is_file() and not os.access(name, os.R_OK | os.W_OK):
            causes.append(f"{name} cannot be read and written by this user (uid {os.getuid()})")
    return causes


def _file_size_limit() -> int | None:
    """The soft RLIMIT_FSIZE in bytes, or None when there is none."""
    try:
        import resource
    except ImportError:  # not on this system
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)
