"""Atomic, quiet file writes: a reader never sees half a file, and an unchanged file is not
touched (its mtime stays, so static hosting keeps its ETag and readers fetch nothing new).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import PublishError

PRIVATE = 0o600  # subscriber exports, outbox messages: the owner's eyes only


def write_if_changed(path: Path, data: bytes, *, mode: int | None = None) -> bool:
    """Write ``data`` to ``path`` unless it already holds exactly these bytes.

    The bytes go to a temporary file in the same folder, are flushed to disk, and replace
    the old file in one rename. Returns whether the file was written. Any failure (disk
    full, a file size limit, permissions) leaves the previous file intact and raises
    :class:`PublishError` naming the file.

    ``mode``: the permissions the file gets, whatever the umask (:data:`PRIVATE` for files
    with personal data). ``None``, for published files: the mode the file had, and 0644
    (world-readable, for static hosting) for a new one.
    """
    chmod = False
    existed = True
    try:
        if path.read_bytes() == data:
            if mode is not None and path.stat().st_mode & 0o777 != mode:
                chmod = True  # same bytes, but left readable by an older version
                os.chmod(path, mode)
            return False
    except (FileNotFoundError, NotADirectoryError):  # none yet (or its folder is not one)
        existed = False
    except IsADirectoryError:
        raise PublishError(f"{path}: is a folder; name a file to write") from None
    except OSError as exc:
        what = "cannot change its mode" if chmod else "cannot read the current file"
        raise PublishError(f"{path}: {what}: {exc}") from exc
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if mode is None:  # keep the mode the file had; a new one is world-readable
            try:
                mode = path.stat().st_mode & 0o777
            except FileNotFoundError:
                mode = 0o644
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
        tmp_name = None
        _fsync_folder(path.parent)  # make the rename itself durable
    except OSError as exc:
        kept = "the previous version is intact" if existed else "nothing was left in its place"
        raise PublishError(f"{path}: could not be written ({exc.strerror or exc}); {kept}") from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return True


TEMP_PATTERN = ".*.tmp"


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_leftovers(folder: Path) -> int:
    """Delete temporary files a killed run left in ``folder`` (callers hold the run lock)."""
    removed = 0
    if folder.is_dir():
        for leftover in folder.rglob(TEMP_PATTERN):
            with contextlib.suppress(OSError):
                leftover.unlink()
                removed += 1
    return removed


class FileSet:
    """The files of one publish, replaced together: each changed file is written to a
    temporary file beside it first, and only when every one was written are they renamed
    into place, one after the other, so a reader sees the old set or the new one (the
    renames take milliseconds and need no space). A failure while writing replaces nothing.

    Use as a context manager: leaving it with an exception removes the temporary files.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, str]] = []  # (target, temporary file), in order

    def __enter__(self) -> FileSet:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is not None:
            self.discard()

    def stage(self, path: Path, data: bytes, *, mode: int | None = None) -> bool:
        """Write ``data`` to a temporary file beside ``path`` unless ``path`` already holds
        exactly these bytes. Returns whether it was staged. ``mode``: the new file's mode
        (default: the current file's, or 0644 for a new one, for static hosting). Raises
        :class:`PublishError` naming the file; nothing is replaced."""
        try:
            if path.read_bytes() == data:
                return False
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise PublishError(f"{path}: cannot read the current file: {exc}") from exc
        tmp_name = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            if mode is None:
                try:
                    mode = path.stat().st_mode & 0o777
                except FileNotFoundError:
                    mode = 0o644
            os.chmod(tmp_name, mode)
        except OSError as exc:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
            raise PublishError(
                f"{path}: could not be written ({exc.strerror or exc}); the previous version"
                " is intact, as is every other file of this publish"
            ) from exc
        self._staged.append((path, tmp_name))
        return True

    def commit(self) -> list[Path]:
        """Rename every staged file into place, in the order staged; returns their paths."""
        done: list[Path] = []
        folders: dict[Path, None] = {}
        try:
            for path, tmp_name in self._staged:
                os.replace(tmp_name, path)
                done.append(path)
                folders[path.parent] = None
            for folder in folders:  # make the renames themselves durable
                _fsync_folder(folder)
        except OSError as exc:
            failed = self._staged[len(done)][0] if len(done) < len(self._staged) else None
            self._staged = self._staged[len(done) :]
            self.discard()
            raise PublishError(
                f"{failed or exc.filename}: could not be put in place ({exc.strerror or exc});"
                f" {len(done)} file(s) of this publish were already replaced"
            ) from exc
        self._staged = []
        return done

    def discard(self) -> None:
        """Remove the temporary files of everything staged and not committed."""
        for _path, tmp_name in self._staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        self._staged = []
