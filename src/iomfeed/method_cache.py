"""The code :mod:`dataclasses` writes for each record class, compiled once per install.

For every ``@dataclass`` the standard library writes ``__init__``, ``__repr__``, ``__eq__``,
``__hash__`` and, when frozen, ``__setattr__`` and ``__delattr__`` as source text and compiles
it while the class's module is imported. Python keeps the bytecode of modules between runs,
not of that text, so a process pays for it every time: the 48 record classes a quiet cron run
imports cost a fifth of the run. :func:`install` makes dataclasses run code compiled from an
identical text in an earlier run instead, and :func:`save` keeps what this run compiled. The
functions made are the very ones dataclasses makes: only the compile of a text seen before
is skipped (the text is the key).

Only the command line's entry point installs it; importing iomfeed as a library changes
nothing. The file sits beside the package's own bytecode and is trusted as that is (whoever
may write there can change the bytecode anyway). It is tied to the interpreter's exact
build, guarded by a checksum, and ignored when anything about it is wrong. Nothing is
written under ``python -B`` or ``PYTHONDONTWRITEBYTECODE``, nor read or written with a
``pycache_prefix`` (where the package's bytecode then lives is Python's business). Python
releases whose dataclasses were not checked to compile through ``exec`` are left alone.
"""

from __future__ import annotations

import builtins
import dataclasses
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import pycache_file

__all__ = ["Cache", "active", "default_path", "install", "save", "uninstall"]

#: The file's first line (:mod:`iomfeed.pycache_file` keeps the rest of its format).
_KIND = b"iomfeed method cache 1"
#: More entries than this (edits of the records pile up in a development tree) and a save
#: keeps only what its own run used.
LIMIT = 2048
#: The releases whose dataclasses compile each generated text through ``exec`` with the
#: module's globals: checked for 3.11, 3.12 and 3.13.
_CHECKED = ((3, 11), (3, 12), (3, 13))


class Cache:
    """Compiled generated methods, keyed by their source text; ``exec`` stands in for the
    builtin within :mod:`dataclasses`."""

    def __init__(self, path: Path | None, known: Mapping[str, types.CodeType]) -> None:
        self.path = path
        self.known = dict(known)
        self.used: set[str] = set()
        self.compiled = 0
        self.loaded = len(self.known)

    def exec(
        self,
        source: str | types.CodeType,
        globals: dict[str, Any] | None = None,
        locals: Mapping[str, object] | None = None,
        /,
    ) -> None:
        if isinstance(source, str):
            code = self.known.get(source)
            if code is None:
                # As ``exec`` of text in dataclasses compiles it: no future flags, for that
                # module has none (this one's would make the annotations strings).
                code = compile(source, "<string>", "exec", dont_inherit=True)
                self.known[source] = code
                self.compiled += 1
            self.used.add(source)
            source = code
        builtins.exec(source, globals, locals)


_active: Cache | None = None


def active() -> Cache | None:
    """The installed cache, if any."""
    return _active


def default_path() -> Path | None:
    """Where this install keeps the cache: its ``__pycache__``, named for the interpreter;
    None where Python keeps bytecode elsewhere or not at all."""
    return pycache_file.default_path("method_cache")


def install(path: Path | None = None) -> Cache | None:
    """Read the cache (at ``path``, else :func:`default_path`) and have dataclasses use it
    from now on in this process. Does nothing on a Python release not checked, and once
    installed, returns the installed one."""
    global _active
    if _active is not None:
        return _active
    if sys.implementation.name != "cpython" or sys.version_info[:2] not in _CHECKED:
        return None
    if "exec" in vars(dataclasses):
        return None  # someone else's stand-in: leave it be
    where = path if path is not None else default_path()
    _active = Cache(where, _read(where) if where is not None else {})
    setattr(dataclasses, "exec", _active.exec)  # noqa: B010 - a module global, on purpose
    return _active


def uninstall() -> None:
    """Give dataclasses the builtin ``exec`` back."""
    global _active
    if _active is not None and vars(dataclasses).get("exec") == _active.exec:
        delattr(dataclasses, "exec")
    _active = None


def save() -> bool:
    """Write the cache when this run compiled something it did not hold; whether it did.
    A folder that cannot be written only means compiling again next time."""
    cache = _active
    if cache is None or cache.path is None or not cache.compiled:
        return False
    kept = cache.known if len(cache.known) <= LIMIT else {k: cache.known[k] for k in cache.used}
    if not pycache_file.write(cache.path, _KIND, kept):
        return False
    cache.compiled = 0
    return True


def _read(path: Path) -> dict[str, types.CodeType]:
    """What the file at ``path`` holds; nothing when it is missing, from another build,
    torn or not what this module writes."""
    found = pycache_file.read(path, _KIND)
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, types.CodeType)}
