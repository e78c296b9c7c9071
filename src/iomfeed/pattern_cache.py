"""Regular expressions compiled once per install.

Python keeps the bytecode of modules between runs, not the compiled form of the regular
expressions they make, so every process parses and compiles each pattern again. Some
libraries make many while they are imported: soupsieve's CSS parser alone, about 40 ms of
every process that imports bs4, which is every scrape. :func:`install` has :mod:`re` build
a pattern seen in an earlier run from what was compiled then, and :func:`save` keeps what
this run compiled. The pattern made is the very one :mod:`re` makes, built by the same
``_sre.compile`` call from the same arguments: only parsing and compiling a pattern text
seen before is skipped (the text and the flags are the key).

A pattern whose parsing warns (a possible nested set or set operation, a group name Python
is about to refuse) is never kept, so its warning comes every time, from the same line.
Which ones do is found by the parser itself, not guessed: a pattern whose text could
warn is parsed again when the cache is saved, warnings recorded, and kept only if that
parse gave none. (Recording warnings is process-wide, so this waits for a save with no
other thread running.) With ``re.DEBUG`` the pattern is compiled as usual, printout and all.

Only the command line's entry point installs it; importing iomfeed as a library changes
nothing. The file (:mod:`iomfeed.pycache_file`) sits beside the package's bytecode and is
trusted as that is. It is tied to the interpreter's exact build, and :mod:`re`'s internals
it calls were checked to be the same in the releases it is used on (3.11 to 3.13).
"""

from __future__ import annotations

import itertools
import re
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from re import _compiler, _parser  # type: ignore[attr-defined]
from typing import Any

from . import pycache_file

_sre = _compiler._sre  # the C module re itself builds patterns with

__all__ = ["Patterns", "active", "default_path", "install", "save", "uninstall"]

_KIND = b"iomfeed pattern cache 1"
#: More patterns than this (some programs make them from data) and a save keeps only what
#: its own run used.
LIMIT = 4096
#: A pattern no run used in this many saves is dropped: some texts differ in every process
#: (the email package builds a few from sets, whose order follows the hash seed), and a
#: command run rarely compiles its own again at worst.
KEEP = 16
#: The releases whose ``re._compiler.compile`` was checked to be what :meth:`Patterns.compile`
#: does: parse, ``_code``, then ``_sre.compile`` with the state's flags and groups.
_CHECKED = ((3, 11), (3, 12), (3, 13))
#: Text without which a pattern's parser cannot warn: a set in a set, set operations,
#: a conditional's group.
_WARNED = ("[[", "--", "&&", "~~", "||", "(?(")

#: What ``_sre.compile`` takes after the pattern: flags, code, groups, group index, names.
Entry = tuple[int, list[int], int, dict[str, int], tuple[str | None, ...]]
Key = tuple[str | bytes, int]
#: What the file keeps for a pattern: its entry, and how many saves ago a run last used it.
Kept = tuple[Entry, int]


def _may_warn(pattern: str | bytes) -> bool:
    """Whether parsing ``pattern`` could warn; when not, it surely does not."""
    if isinstance(pattern, bytes):
        if not pattern.isascii():  # a non-ASCII group name in a bytes pattern (3.11)
            return True
        pattern = pattern.decode("ascii")
    return any(w in pattern for w in _WARNED)


class Patterns:
    """Compiled patterns, keyed by text and flags; :meth:`compile` stands in for
    ``re._compiler.compile``."""

    def __init__(
        self, path: Path | None, kept: Mapping[Key, Kept], original: Callable[..., Any]
    ) -> None:
        self.path = path
        self.known = {key: entry for key, (entry, _) in kept.items()}
        self.ages = {key: age for key, (_, age) in kept.items()}
        self.used: set[Key] = set()
        #: Compiled by this run but not yet known not to warn (see :func:`save`).
        self.unchecked: dict[Key, Entry] = {}
        self.compiled = 0
        self.loaded = len(self.known)
        self.original = original

    def compile(self, p: Any, flags: int = 0) -> re.Pattern[Any]:
        # (a str or bytes subclass is compiled as usual: marshal keeps exact types only)
        if type(p) not in (str, bytes) or flags & _compiler.SRE_FLAG_DEBUG:
            return self.original(p, flags)  # type: ignore[no-any-return]
        key = (p, int(flags))
        entry = self.known.get(key)
        if entry is None:
            # As re._compiler.compile does, in a frame at the same depth: a warning points
            # where it would without the cache.
            parsed = _parser.parse(p, flags)
            code = _compiler._code(parsed, flags)
            state = parsed.state
            names: list[str | None] = [None] * state.groups
            for name, index in state.groupdict.items():
                names[index] = name
            entry = (
                int(flags | state.flags),
                [int(c) for c in code],
                state.groups - 1,
                dict(state.groupdict),
                tuple(names),
            )
            if _may_warn(p):
                self.unchecked[key] = entry  # kept by save() if its parse gives no warning
                return _sre.compile(p, *entry)  # type: ignore[no-any-return]
            self.known[key] = entry
            self.compiled += 1
        self.used.add(key)
        return _sre.compile(p, *entry)  # type: ignore[no-any-return]


_active: Patterns | None = None


def active() -> Patterns | None:
    """The installed cache, if any."""
    return _active


def default_path() -> Path | None:
    """Where this install keeps the cache: its ``__pycache__``, named for the interpreter;
    None where Python keeps bytecode elsewhere or not at all."""
    return pycache_file.default_path("pattern_cache")


def install(path: Path | None = None) -> Patterns | None:
    """Read the cache (at ``path``, else :func:`default_path`) and have :mod:`re` use it from
    now on in this process. Does nothing on a release not checked or when someone else's
    stand-in is there; once installed, returns the installed one."""
    global _active
    if _active is not None:
        return _active
    if sys.implementation.name != "cpython" or sys.version_info[:2] not in _CHECKED:
        return None
    original = _compiler.compile
    if getattr(original, "__module__", None) != _compiler.__name__:
        return None  # someone else's stand-in: leave it be
    where = path if path is not None else default_path()
    _active = Patterns(where, _read(where) if where is not None else {}, original)
    _compiler.compile = _active.compile
    return _active


def uninstall() -> None:
    """Give :mod:`re` its own compile back."""
    global _active
    if _active is not None and _compiler.compile == _active.compile:
        _compiler.compile = _active.original
    _active = None


def save() -> bool:
    """Write the cache when this run compiled a pattern it did not hold; whether it did."""
    cache = _active
    if cache is None or cache.path is None or sys.dont_write_bytecode:
        return False
    _check(cache)
    if not cache.compiled:
        return False
    kept = {
        key: (entry, 0 if key in cache.used else cache.ages.get(key, 0) + 1)
        for key, entry in cache.known.items()
    }
    kept = {key: value for key, value in kept.items() if value[1] <= KEEP}
    if len(kept) > LIMIT:  # what this run used, then as much as fits
        kept = {key: kept[key] for key in itertools.islice(cache.used, LIMIT)}
    if not pycache_file.write(cache.path, _KIND, kept):
        return False
    cache.compiled = 0
    cache.known = {key: entry for key, (entry, _) in kept.items()}  # what the file holds
    cache.ages = {key: age for key, (_, age) in kept.items()}
    return True


def _check(cache: Patterns) -> None:
    """Know the patterns parsing gives no warning: parse each again, recording warnings.
    Recording is process-wide, so with another thread running nothing is checked now (a
    later run compiles them again and tries once more)."""
    if not cache.unchecked or threading.active_count() > 1:
        return
    for key, entry in cache.unchecked.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _parser.parse(*key)
        if not caught:
            cache.known[key] = entry
            cache.used.add(key)
            cache.compiled += 1
    cache.unchecked.clear()


def _kept(value: object) -> bool:
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int)):
        return False
    entry = value[0]
    if not (isinstance(entry, tuple) and len(entry) == 5):
        return False
    flags, code, groups, index, names = entry
    return (
        isinstance(flags, int)
        and isinstance(code, list)
        and isinstance(groups, int)
        and isinstance(index, dict)
        and isinstance(names, tuple)
    )


def _read(path: Path) -> dict[Key, Kept]:
    """What the file at ``path`` holds; nothing when it is missing, from another build,
    torn or not what this module writes."""
    found = pycache_file.read(path, _KIND)
    if not isinstance(found, dict):
        return {}
    return {
        k: v
        for k, v in found.items()
        if isinstance(k, tuple)
        and len(k) == 2
        and isinstance(k[0], (str, bytes))
        and isinstance(k[1], int)
        and _kept(v)
    }
