"""Snapshot files as served: bytes with the live origin rewritten, validators, responses.

Builds the answer for a routed file (``200`` with ``ETag`` and ``Last-Modified``, or ``304``
for a matching conditional request) and the small HTML error pages. Knows nothing of
sockets or of routing.
"""

from __future__ import annotations

import email.utils
import hashlib
import mimetypes
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Final

CACHE_CONTROL: Final = "public, max-age=0, must-revalidate"
_CACHE_ENTRIES: Final = 8192

# Files whose bytes are searched for the live origin.
_TEXT_SUFFIXES: Final = frozenset(
    {".html", ".htm", ".xml", ".txt", ".json", ".rss", ".atom", ".css", ".js", ".csv"}
)

# Explicit types for the usual suspects so results do not depend on the host's mime.types.
_CONTENT_TYPES: Final[Mapping[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".ico": "image/vnd.microsoft.icon",
    ".pdf": "application/pdf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}

_ENTITY_TAG = re.compile(r'(?:W/)?"[^"]*"')

_ERROR_PAGE: Final = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    "<title>{title} | IOM Albania</title>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n"
    "<p>{text}</p>\n</main>\n</body>\n</html>\n"
)


@dataclass(frozen=True)
class Resource:
    """A file as served: rewritten bytes plus validators."""

    body: bytes
    etag: str
    mtime: float
    content_type: str


@dataclass
class Response:
    """An answer about to be sent (``truncate``: only half of the body, then close)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    truncate: bool = False


def content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    known = _CONTENT_TYPES.get(suffix)
    if known is not None:
        return known
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if guessed.startswith("text/"):
        guessed += "; charset=utf-8"
    return guessed


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison of ``etag`` against an ``If-None-Match`` value."""
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.removeprefix("W/") == opaque for tag in _ENTITY_TAG.findall(header))


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def error_response(status: HTTPStatus, text: str) -> Response:
    body = _ERROR_PAGE.format(title=status.phrase, text=text).encode()
    return Response(
        status=status,
        headers=[
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
        ],
        body=body,
    )


def _not_modified(resource: Resource, request_headers: Mapping[str, str]) -> bool:
    if_none_match = request_headers.get("if-none-match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, resource.etag)
    if_modified_since = request_headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        return False
    return int(resource.mtime) <= since.timestamp()


def file_response(
    resource: Resource, request_headers: Mapping[str, str], *, conditional: bool = True
) -> Response:
    """``200`` with the file, or ``304`` when ``conditional`` and the client's copy is current."""
    validators = [
        ("ETag", resource.etag),
        ("Last-Modified", _http_date(resource.mtime)),
        ("Cache-Control", CACHE_CONTROL),
    ]
    if conditional and _not_modified(resource, request_headers):
        return Response(status=HTTPStatus.NOT_MODIFIED, headers=validators)
    return Response(
        status=HTTPStatus.OK,
        headers=[
            ("Content-Type", resource.content_type),
            ("Content-Length", str(len(resource.body))),
            *validators,
            ("X-Content-Type-Options", "nosniff"),
        ],
        body=resource.body,
    )


def origin_replacements(
    live_origins: Sequence[str], origin: str
) -> tuple[tuple[bytes, bytes], ...]:
    """Byte pairs (live, local) that point the snapshot's absolute links at ``origin``."""
    pairs: list[tuple[bytes, bytes]] = []
    for live in live_origins:
        pairs.append((live.encode(), origin.encode()))
    # Links inside JSON (drupalSettings, JSON-LD) have their slashes escaped.
    for live in live_origins:
        pairs.append((live.replace("/", "\\/").encode(), origin.replace("/", "\\/").encode()))
    return tuple(pairs)


class ResourceCache:
    """Files read and rewritten once per ``(path, mtime_ns, size, inode)``; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[tuple[int, int, int], Resource]] = {}
        self._replacements: tuple[tuple[bytes, bytes], ...] = ()

    def reset(self, replacements: tuple[tuple[bytes, bytes], ...]) -> None:
        """Forget every cached file; text files are rewritten with ``replacements`` from now."""
        with self._lock:
            self._replacements = replacements
            self._cache.clear()

    def _rewrite(self, data: bytes) -> bytes:
        for old, new in self._replacements:
            if old in data:
                data = data.replace(old, new)
        return data

    def load(self, path: Path) -> Resource:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            with self._lock:
                cached = self._cache.get(path)
            if cached is not None and cached[0] == key:
                return cached[1]
            data = handle.read()
        if path.suffix.lower() in _TEXT_SUFFIXES:
            data = self._rewrite(data)
        resource = Resource(
            body=data,
            etag=strong_etag(data),
            mtime=stat.st_mtime,
            content_type=content_type(path),
        )
        with self._lock:
            self._cache.pop(path, None)
            if len(self._cache) >= _CACHE_ENTRIES:
                del self._cache[next(iter(self._cache))]
            self._cache[path] = (key, resource)
        return resource
