"""Compiled templates kept between runs: Jinja2's bytecode cache, in ``storage.cache``.

Jinja2 compiles a template into Python the first time a process uses it, and a cron run is a
new process each time: lexing, parsing and compiling the pages' and the digest's templates
was about a tenth of a publish that renders. Jinja2's own file cache keeps the compiled code;
an entry is named by the template's name and file and holds its source's hash, so a template
that changed (a new release, an edited ``digest.templates`` override) is compiled again.

The cache's files are code this process runs, so the folder is made readable by its owner
only, and a folder someone else owns, or others may write to, is not used (with a warning;
``iomfeed check`` says so too). A cache that cannot be made, read or written never fails a
render: the template is compiled as it would be without one.
"""

from __future__ import annotations

import logging
import os
import stat
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


def template_cache(config: Config) -> BytecodeCache | None:
    """The bytecode cache for ``config`` (None when ``storage.cache`` is empty or unusable)."""
    folder = config.cache_path
    return _cache(str(folder / TEMPLATES)) if folder is not None else None


@lru_cache(maxsize=4)
def _cache(folder: str) -> BytecodeCache | None:
    from jinja2 import FileSystemBytecodeCache

    class QuietCache(FileSystemBytecodeCache):
        """Jinja2's file cache, which passes over an entry it cannot read or write."""

        def load_bytecode(self, bucket: Bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except Exception as exc:  # a damaged entry: pickle and marshal raise many kinds
                log.debug("template cache: %s: not read (%s); compiling", bucket.key, exc)
                bucket.reset()

        def dump_bytecode(self, bucket: Bucket) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError as exc:
                log.debug("template cache: %s: not written (%s)", bucket.key, exc)

    path = Path(folder)
    for level in (path.parent, path):
        try:
            if not level.exists():
                level.mkdir(mode=stat.S_IRWXU)
        except OSError as exc:  # a read-only place, say: only slower
            log.info("storage.cache: %s cannot be made (%s); templates are compiled", level, exc)
            return None
        problem = _unsafe(level)
        if problem:
            log.warning("storage.cache: %s; the cache is not used (%s)", problem, OFF)
            return None
    return QuietCache(folder)


#: How to silence what is said about an unusable cache.
OFF = 'cache = "" turns it off'


def cache_problem(config: Config) -> str:
    """Why the cache would not be used, for ``iomfeed check`` ("" if it would): a folder
    that is not safe to run code from, or one that cannot be made. Nothing is made."""
    if config.cache_path is None:
        return ""
    for level in (config.cache_path, config.cache_path / TEMPLATES):
        if not level.exists():
            if os.access(level.parent, os.W_OK | os.X_OK):
                return ""  # made on first use
            return f"storage.cache: {level} cannot be made: {level.parent} is not writable ({OFF})"
        problem = _unsafe(level)
        if problem:
            return f"storage.cache: {problem}, so it is not used ({OFF})"
    return ""


def _unsafe(level: Path) -> str:
    """Why the folder ``level`` may not hold code to run ("" if it may): the cache's own
    folder and its parent are both held to this, since whoever may write to the parent may
    put another folder in the cache's place."""
    try:
        info = level.lstat()
    except OSError as exc:
        return f"{level}: {exc.strerror or exc}"
    if not stat.S_ISDIR(info.st_mode):
        return f"{level} is not a folder"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"{level} belongs to user {info.st_uid}, not to this one"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"others may write to {level}"
    return ""
