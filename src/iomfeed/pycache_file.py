"""The files that keep what Python would otherwise compile again in every process
(:mod:`iomfeed.method_cache`, :mod:`iomfeed.pattern_cache`), beside the package's bytecode.

A file is a line naming what it holds, the interpreter's exact build and ``-O`` level, a
CRC-32 of the payload and the payload in :mod:`marshal`'s format (which only the same build
is sure to read). One that is missing, torn, from another build or not what this module
wrote reads as nothing. Writing goes through a new file renamed over the old, so a reader
sees the old file or the new one; a folder that refuses only means compiling again next
time. Nothing is written under ``python -B`` or ``PYTHONDONTWRITEBYTECODE``, and there is
no file with a ``pycache_prefix`` (where the package's bytecode then lives is Python's
business).
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import sys
import zlib
from pathlib import Path
from typing import Any, cast

__all__ = ["default_path", "read", "write"]

log = logging.getLogger(__name__)


def default_path(name: str) -> Path | None:
    """Where this install keeps the file called ``name``: the package's ``__pycache__``, the
    name tagged with the interpreter as bytecode's are; None where Python keeps bytecode
    elsewhere or not at all."""
    tag = sys.implementation.cache_tag
    if tag is None or sys.pycache_prefix is not None:
        return None
    level = f".opt-{sys.flags.optimize}" if sys.flags.optimize else ""  # as bytecode's names
    return Path(__file__).parent / "__pycache__" / f"{name}.{tag}{level}.bin"


def _header(kind: bytes) -> bytes:
    """What the file holds, the interpreter's build and its optimization level (``-O``
    compiles the same text differently where it asserts or reads ``__debug__``)."""
    build = f"{sys.version} -O{sys.flags.optimize}"
    return kind + b"\n" + build.encode("utf-8", "replace") + b"\n"


def read(path: Path, kind: bytes) -> object:
    """The payload of the ``kind`` file at ``path``; None when there is none to trust."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header = _header(kind)
    start = len(header) + 4
    if not data.startswith(header) or len(data) < start:
        return None
    payload = data[start:]
    if zlib.crc32(payload) != int.from_bytes(data[len(header) : start], "big"):
        log.debug("%s: checksum mismatch, ignored", path)
        return None
    try:
        return marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None


def write(path: Path, kind: bytes, value: object) -> bool:
    """Keep ``value`` as the ``kind`` file at ``path``; whether it was written."""
    if sys.dont_write_bytecode:
        return False
    try:
        payload = marshal.dumps(cast(Any, value))
    except ValueError as exc:  # a value marshal cannot keep: a caller's mistake, not fatal
        log.debug("%s not written: %s", path, exc)
        return False
    data = _header(kind) + zlib.crc32(payload).to_bytes(4, "big") + payload
    part = path.with_name(f"{path.name}.{os.urandom(6).hex()}.part")  # (not pid 1's)
    made = False
    try:
        path.parent.mkdir(exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(part, flags, 0o644)
        made = True
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(part, path)
    except OSError as exc:
        log.debug("%s not written: %s", path, exc)
        if made:
            with contextlib.suppress(OSError):
                part.unlink()
        return False
    return True
