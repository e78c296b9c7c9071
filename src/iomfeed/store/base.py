"""The connection every area of the store shares: opening, transactions, settings, errors.

:class:`StoreBase` opens the SQLite file (WAL, foreign keys, migrated to the newest schema)
and is the one place that turns ``sqlite3`` errors into :class:`~iomfeed.errors.StoreError`
with words an operator can act on (:func:`guard` wraps every public method of the store).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from ..errors import StoreError
from .schema import migrate


def utc(dt: datetime) -> str:
    """A fixed-width UTC timestamp that sorts as text."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _create_private(path: Path) -> None:
    """Create a missing database file readable and writable by its owner only (0600): it
    holds subscribers' addresses and perhaps the unsubscribe secret. SQLite would create it
    with the umask (0644 by default); the ``-wal`` and ``-shm`` files it makes later get the
    database file's own mode, so they are private too. An existing file keeps its mode
    (``iomfeed check`` warns when others can read it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # opening it fails the same way next, and that error is explained in words
    try:
        os.fchmod(fd, 0o600)  # a umask such as 0o200 would take the owner's write bit away
    finally:
        os.close(fd)


class StoreBase:
    """One SQLite connection in autocommit mode; areas add their methods as mixins."""

    def __init__(self, path: Path | str, *, tag_authority: str = "localhost") -> None:
        self.path = Path(path)
        self.tag_authority = tag_authority
        if str(path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{self.path}: cannot create the database folder: {exc}") from exc
            _create_private(self.path)
        try:
            self.db = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            migrate(self.db, self.path)
        except sqlite3.Error as exc:
            from .explain import explain

            raise StoreError(explain(self.path, exc)) from exc

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. Its own database errors (a busy database at ``BEGIN``, a
        full disk at ``COMMIT``, which WAL mode often reports only then) leave it as a
        :class:`StoreError`, like every store method's."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _wrapped(self, exc) from exc
        try:
            yield self.db
            self.db.execute("COMMIT")  # a failed COMMIT leaves the transaction open: rolled back
        except BaseException as exc:
            self._roll_back()
            if isinstance(exc, sqlite3.Error):
                raise _wrapped(self, exc) from exc
            raise

    def _roll_back(self) -> None:
        if not self.db.in_transaction:
            return  # SQLite rolled back by itself (a full disk, an I/O error)
        with contextlib.suppress(sqlite3.Error):  # unusable: the next call reports why
            self.db.execute("ROLLBACK")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------------ settings

    def setting(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key)"
            " DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def backup_to(self, target: Path) -> int:
        """A consistent copy of the whole store at ``target`` (what the WAL holds too), made
        with SQLite's online backup while other processes may write, as one file readable
        by its owner only; never over an existing file. Its size in bytes."""
        target = Path(target)
        if target.is_dir():
            raise StoreError(f"{target}: is a folder; give the backup file's own name")
        if not target.parent.is_dir():
            why = "is not a folder" if target.parent.exists() else "does not exist"
            raise StoreError(f"{target}: the folder {target.parent} {why}")
        # A part file of its own (a random name: a container's iomfeed is always pid 1),
        # so one a killed backup left behind blocks nothing.
        part = target.with_name(f".{target.name}.{os.urandom(6).hex()}.part")
        try:
            os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            raise StoreError(f"{target}: could not be written ({exc.strerror or exc})") from None
        try:
            copy = sqlite3.connect(str(part), isolation_level=None)
            try:
                self.db.backup(copy)
                copy.execute("PRAGMA journal_mode = DELETE")  # one file, no -wal beside it
            finally:
                copy.close()
            _publish_new(part, target)
        except FileExistsError:
            empty = target.is_file() and target.stat().st_size == 0
            why = " (empty: left by a backup killed as it finished; delete it)" if empty else ""
            raise StoreError(f"{target}: already exists{why}; not overwriting it") from None
        except OSError as exc:
            raise StoreError(f"{target}: could not be written ({exc.strerror or exc})") from None
        except sqlite3.Error as exc:
            raise _wrapped(self, exc) from exc
        finally:
            with contextlib.suppress(OSError):
                part.unlink()
        return target.stat().st_size

    def drop_setting(self, key: str) -> None:
        self.db.execute("DELETE FROM settings WHERE key = ?", (key,))

    def setting_default(self, key: str, make: Callable[[], str]) -> str:
        """The stored value of ``key``, storing ``make()`` first if there is none."""
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, make()))
            return str(db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0])


def _publish_new(part: Path, target: Path) -> None:
    """Give the finished ``part`` the name ``target``, which must not exist: a hard link,
    or, where the file system has none (FAT, many SMB shares), the name claimed with an
    empty file first and then replaced by the part (it is empty only for that instant)."""
    try:
        os.link(part, target)  # (fails on an existing file: nothing is overwritten)
        return
    except FileExistsError:
        raise
    except OSError:
        pass
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        os.replace(part, target)
    except OSError:
        with contextlib.suppress(OSError):
            target.unlink()
        raise


def guard(cls: type[StoreBase]) -> None:
    """Wrap every public method of ``cls`` (its mixins' too) so that an ``sqlite3`` error
    leaves the store as a :class:`StoreError` naming the file and the likely cause. Methods
    that stream rows (generators) are wrapped around their iteration."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        for name, attr in list(vars(klass).items()):
            if name in seen or name.startswith("_"):
                continue
            seen.add(name)  # the first in the method resolution order is the one called
            if inspect.isfunction(attr):
                setattr(cls, name, _guarded(attr))


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def stream(self: StoreBase, *args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from method(self, *args, **kwargs)
            except sqlite3.Error as exc:
                raise _wrapped(self, exc) from exc

        return stream

    @functools.wraps(method)
    def call(self: StoreBase, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise _wrapped(self, exc) from exc

    return call


def _wrapped(store: StoreBase, exc: sqlite3.Error) -> StoreError:
    from .explain import explain

    return StoreError(explain(store.path, exc, action="use"))
