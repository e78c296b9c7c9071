"""Where a request target lands in the snapshot folder, the way the live Drupal site routes.

Pure path logic over a folder (no HTTP, no sockets); the URL scheme is described in
:mod:`iomfeed.demo.server`. It must not read files, only look at what exists.
"""

from __future__ import annotations

import os
import re
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

_PAGE_FILE = re.compile(r"page-(\d+)\.html")
_PHP_INT = re.compile(r"\s*([+-]?\d+)")


def _php_int(text: str) -> int:
    """PHP's ``(int)`` cast, which Drupal's pager applies to ``?page=``."""
    match = _PHP_INT.match(text)
    return int(match.group(1)) if match else 0


def _inside_root(root: Path, path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):
        return False


def _file(root: Path, path: Path) -> Path | None:
    return path if path.is_file() and _inside_root(root, path) else None


def _page(root: Path, directory: Path, index: Path, page: int) -> Path:
    if page <= 0:
        return index
    exact = _file(root, directory / f"page-{page}.html")
    if exact is not None:
        return exact
    # Drupal clamps a page number beyond the end to the last page.
    numbers = []
    with os.scandir(directory) as entries:
        for entry in entries:
            match = _PAGE_FILE.fullmatch(entry.name)
            if match:
                numbers.append(int(match.group(1)))
    for number in sorted(numbers, reverse=True):
        last = _file(root, directory / f"page-{number}.html")
        if last is not None:
            return last
    return index


def route(root: Path, target: str) -> tuple[HTTPStatus, Path | None]:
    """Map a request target to a file under ``root`` (resolved): ``(OK, path)``, or an error
    status and None."""
    if target.startswith("/"):
        # Origin form; urlsplit would read "//x/y" as a host name.
        raw_path, _, query = target.partition("#")[0].partition("?")
    else:
        parts = urlsplit(target)
        raw_path, query = parts.path, parts.query
    try:
        decoded = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        return HTTPStatus.BAD_REQUEST, None
    if "\x00" in decoded or "\\" in decoded:
        return HTTPStatus.BAD_REQUEST, None
    segments = [segment for segment in decoded.split("/") if segment not in ("", ".")]
    if ".." in segments:
        return HTTPStatus.BAD_REQUEST, None
    if segments[:1] == ["index.php"]:
        segments = segments[1:]
    page_values = [value for name, value in parse_qsl(query, True) if name == "page"]
    # PHP keeps the last duplicate; "2,1" addresses several pagers, the first is ours.
    page = max(0, _php_int(page_values[-1].split(",")[0])) if page_values else 0

    base = root.joinpath(*segments)
    if segments:
        found = _file(root, base) or _file(root, base.with_name(segments[-1] + ".html"))
        if found is not None:
            return HTTPStatus.OK, found
    index = _file(root, base / "index.html")
    if index is not None:
        return HTTPStatus.OK, _page(root, base, index, page)
    return HTTPStatus.NOT_FOUND, None
