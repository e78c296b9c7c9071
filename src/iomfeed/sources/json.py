"""The ``json`` source: items an operator adds by hand or another system exports.

Reads a local file: a JSON array of items, an object with an ``items`` array (so a JSON Feed
1.1 file works as it is), or JSON Lines (``.jsonl`` / ``.ndjson``, one item per line). Each
item needs ``url`` and ``title``; optional: ``summary``, ``content_html`` (or ``content_text``),
``date_published``, ``date_modified``, ``image``, ``tags``, ``language``, ``author`` (or JSON
Feed ``authors``). A bad item is reported with its position and the others are still stored.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..config import Config, SourceConfig
from ..dedup import listing_hash
from ..errors import BadRecord, ParseError, SourceError
from ..models import DateSource, Item
from ..normalize import parse_iso, zone
from . import FetchContext
from .records import SourcePage

if TYPE_CHECKING:
    from ..http import HttpClient

_KNOWN_FIELDS = frozenset(
    {
        "id",
        "url",
        "external_url",
        "title",
        "summary",
        "content_html",
        "content_text",
        "date_published",
        "date_modified",
        "image",
        "banner_image",
        "tags",
        "language",
        "author",
        "authors",
        "category",
        "categories",
    }
)


def read_records(path: Path) -> list[tuple[str, Any]]:
    """(where, record) pairs from a JSON, JSON Feed or JSON Lines file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError(f"{path}: file not found (sources.path)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read: {exc}") from exc
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((f"{path}:{number}", json.loads(line)))
            except ValueError as exc:
                records.append((f"{path}:{number}", _Invalid(f"not valid JSON: {exc}")))
        return records
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ParseError(f"{path}: not valid JSON: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list):
        raise ParseError(f"{path}: expected a JSON array of items or an object with 'items'")
    # Counted from 1, as a person counts them (and as the lines of a JSON Lines file are).
    return [(f"{path}: item {i}", record) for i, record in enumerate(data, start=1)]


class _Invalid:
    def __init__(self, reason: str) -> None:
        self.reason = reason


def item_from_record(record: Any, *, source: str, tz: tzinfo) -> Item:
    """One JSON object as an Item; raises BadRecord saying what is wrong."""
    if isinstance(record, _Invalid):
        raise BadRecord(record.reason)
    if not isinstance(record, dict):
        raise BadRecord("expected an object")
    unknown = sorted(set(record) - _KNOWN_FIELDS)
    if unknown:
        raise BadRecord(f"unknown field {unknown[0]!r}")

    def text(key: str) -> str:
        value = record.get(key, "")
        if not isinstance(value, str):
            raise BadRecord(f"{key!r} must be a string")
        return value.strip()

    url = text("url") or text("external_url")
    if not url.startswith(("http://", "https://")):
        raise BadRecord("'url' is missing or not an absolute http(s) URL")
    title = text("title")
    if not title:
        raise BadRecord("'title' is missing or empty")
    published = _date(record, "date_published", tz)
    modified = _date(record, "date_modified", tz)
    tags = record.get("tags", record.get("categories", []))
    if isinstance(record.get("category"), str):
        tags = [record["category"], *tags] if isinstance(tags, list) else tags
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadRecord("'tags' must be a list of strings")
    author = text("author")
    authors = record.get("authors")
    if not author and isinstance(authors, list) and authors and isinstance(authors[0], dict):
        author = str(authors[0].get("name", ""))
    content = text("content_html")
    if not content and text("content_text"):
        content = "".join(
            f"<p>{html.escape(p.strip())}</p>"
            for p in text("content_text").split("\n\n")
            if p.strip()
        )
    summary = text("summary")
    return Item(
        source=source,
        url=url,
        base_url=url,
        title=title,
        summary_html=html.escape(summary) if summary else "",
        content_html=content,
        published=published or modified,
        date_source=DateSource.JSON if (published or modified) else None,
        modified=modified,
        image_url=text("image") or text("banner_image"),
        categories=tuple(tags),
        language=text("language"),
        author=author,
        listing_hash=listing_hash(title, url, summary),
    )


def _date(record: dict[str, Any], key: str, tz: tzinfo) -> datetime | None:
    value = record.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise BadRecord(f"{key!r} must be an ISO 8601 string")
    found = parse_iso(value, tz)
    if found is None:
        raise BadRecord(f"{key!r} is not an ISO 8601 date: {value!r}")
    return found


class JsonSource:
    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name

    def fetch(self, ctx: FetchContext) -> Iterator[SourcePage]:
        path = ctx.config.path(self.cfg.path)
        tz = zone(ctx.config.source_timezone(self.cfg))
        ctx.stats.pages += 1
        problems: list[str] = []
        items: list[Item] = []
        for where, record in read_records(path):
            try:
                items.append(item_from_record(record, source=self.name, tz=tz))
            except BadRecord as exc:
                problems.append(f"{where}: {exc}")
        yield SourcePage(items=tuple(items))  # the good ones are stored whatever the bad
        if problems:
            raise ParseError(
                f"{len(problems)} bad item(s) skipped, the others stored: "
                + "; ".join(problems[:5])
                + (" ..." if len(problems) > 5 else "")
            )


def check_live(config: Config, src: SourceConfig, http: HttpClient, out: TextIO) -> bool:
    """``check --live``: read the file and say how many records are good."""
    tz = zone(config.source_timezone(src))
    records = read_records(config.path(src.path))
    bad = []
    for where, record in records:
        try:
            item_from_record(record, source=src.name, tz=tz)
        except BadRecord as exc:
            bad.append(f"{where}: {exc}")
    out.write(f"  {len(records)} record(s), {len(bad)} bad\n")
    for line in bad[:10]:
        out.write(f"    {line}\n")
    return bool(records) and not bad
