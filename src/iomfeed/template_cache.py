"""Compiled templates kept between runs: a Jinja2 bytecode cache, in ``storage.cache``.

Jinja2 compiles a template into Python the first time a process uses it, and a cron run is a
new process each time: lexing, parsing and compiling the pages' and the digest's templates
was about a tenth of a publish that renders. The compiled code is kept in files, one per
template, in Jinja2's own format (which holds the template source's hash, so a template
that changed, an edited ``digest.templates`` override among them, is compiled again). Each
entry's name also holds what compiled it: the environment (pages, digest, notices: they
escape differently), iomfeed's release and Jinja2's, so no code compiled under other rules
is ever run.

The entries are code this process runs, so the folder must be this user's and writable by
nobody else (it is made so when missing); one that is not, or a link in its place, is not
used (a warning; ``iomfeed check`` says so too). The folder is opened once, checked through
what was opened, and every entry is read and written through that open folder, never by a
path someone could swap for another meanwhile. A cache that cannot be made, read or written
never fails a render: the template is compiled as it would be without one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import weakref
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import BytecodeCache
    from jinja2.bccache import Bucket

    from .config import Config

log = logging.getLogger(__name__)

#: The folder under ``storage.cache`` that holds the compiled templates.
TEMPLATES = "templates"

#: How to silence what is said about an unusable cache.
OFF = 'cache = "" turns it off'


def template_cache(config: Config, flavour: str) -> BytecodeCache | None:
    """The bytecode cache of the template environment ``flavour`` (``"pages"``,
    ``"digest"``, ``"notices"``) for ``config``; None when ``storage.cache`` is empty or
    its folder unusable."""
    folder = config.cache_path
    return _cache(str(folder / TEMPLATES), flavour) if folder is not None else None


@lru_cache(maxsize=8)
def _cache(folder: str, flavour: str) -> BytecodeCache | None:
    import jinja2

    from . import __version__

    fd = _open_folder(Path(folder))
    if fd is None:
        return None
    prefix = f"{flavour}\0iomfeed {__version__}\0jinja2 {jinja2.__version__}\0"

    class FolderCache(jinja2.BytecodeCache):
        """Entries read and written through the open folder ``fd``; one that cannot be
        read (missing, damaged) or written is passed over."""

        def get_cache_key(self, name: str, filename: str | None = None) -> str:
            return super().get_cache_key(prefix + name, filename)

        def load_bytecode(self, bucket: Bucket) -> None:
            try:
                entry = os.open(_entry(bucket), os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:  # not there yet, mostly
                return
            with os.fdopen(entry, "rb") as f:
                try:
                    bucket.load_bytecode(f)
                except Exception as exc:  # a damaged entry: pickle and marshal raise many kinds
                    log.debug("template cache: %s: not read (%s); compiling", bucket.key, exc)
                    bucket.reset()

        def dump_bytecode(self, bucket: Bucket) -> None:
            name = _entry(bucket)
            temporary = f"{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            try:
                with os.fdopen(os.open(temporary, flags, 0o600, dir_fd=fd), "wb") as f:
                    bucket.write_bytecode(f)
                os.replace(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)
            except OSError as exc:
                log.debug("template cache: %s: not written (%s)", bucket.key, exc)
                with contextlib.suppress(OSError):
                    os.unlink(temporary, dir_fd=fd)

    cache = FolderCache()
    weakref.finalize(cache, os.close, fd)  # the folder stays open while the cache is in use
    return cache


def _entry(bucket: Bucket) -> str:
    return f"{bucket.key}.cache"


def _open_folder(folder: Path) -> int | None:
    """``folder`` (and its parent) made if missing, owner only; then opened, never through
    a link, and checked through what was opened. None (said why) when it cannot be used."""
    for level in (folder.parent, folder):
        try:
            if not level.exists():
                level.mkdir(mode=stat.S_IRWXU)
        except OSError as exc:  # a read-only place, say: only slower
            log.info("storage.cache: %s cannot be made (%s); templates are compiled", level, exc)
            return None
    problem = _unsafe(folder)
    fd = None
    if not problem:
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            problem = _unsafe_stat(os.fstat(fd), folder)
        except OSError as exc:
            problem = f"{folder}: {exc.strerror or exc}"
    if problem:
        if fd is not None:
            os.close(fd)
        log.warning("storage.cache: %s; the cache is not used (%s)", problem, OFF)
        return None
    return fd


def cache_problem(config: Config) -> str:
    """Why the cache would not be used, for ``iomfeed check`` ("" if it would): a folder
    that is not safe to run code from, or one that cannot be made. Nothing is made."""
    if config.cache_path is None:
        return ""
    folder = config.cache_path / TEMPLATES
    for level in (config.cache_path, folder):
        if not level.exists():
            if os.access(level.parent, os.W_OK | os.X_OK):
                return ""  # made on first use
            return f"storage.cache: {level} cannot be made: {level.parent} is not writable ({OFF})"
    problem = _unsafe(folder)
    return f"storage.cache: {problem}, so it is not used ({OFF})" if problem else ""


def _unsafe(folder: Path) -> str:
    """Why the folder may not hold code to run, by its path ("" if it may)."""
    try:
        info = folder.lstat()
    except OSError as exc:
        return f"{folder}: {exc.strerror or exc}"
    if not stat.S_ISDIR(info.st_mode):
        return f"{folder} is not a folder"
    return _unsafe_stat(info, folder)


def _unsafe_stat(info: os.stat_result, folder: Path) -> str:
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"{folder} belongs to user {info.st_uid}, not to this one"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"others may write to {folder}"
    return ""
