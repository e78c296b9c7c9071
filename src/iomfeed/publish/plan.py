"""Which archive and month pages a publish holds, and what each is made from. Pure: rows
and summaries in, pages out (``build.py`` reads them from the store and renders).

An archive page is planned from one of two things: the rows of its month (the one or two
months the subscription feed reaches into, part of whose items are still in the feed), or
the month's summary row (every other month: all its items, told unchanged by their count
and the count of changes the store keeps), so that no plan reads every item.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..store import IndexEntry, MonthSummary


@dataclass(frozen=True, slots=True)
class ArchivePage:
    month: str  # YYYY-MM
    ids: tuple[str, ...] | None  # None: every item of the month, read only when rendered
    rows_hash: str
    items: int = 0  # how many, when ``ids`` is None

    @property
    def path(self) -> str:
        return f"archive/{self.month}.xml"

    @property
    def count(self) -> int:
        return self.items if self.ids is None else len(self.ids)


def slug(text: str) -> str:
    """A path segment for a category or source name ("Local" -> "local"), or "" if none."""
    import unicodedata

    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")


def unique_slugs(names: Iterable[str]) -> dict[str, str]:
    """A distinct, stable path segment per name: names that fold to the same slug (or to
    none) get a short hash of the name, so no feed overwrites another."""
    names = list(names)
    plain = {name: slug(name) for name in names}
    counts: dict[str, int] = {}
    for value in plain.values():
        counts[value] = counts.get(value, 0) + 1
    out = {}
    for name, value in plain.items():
        if not value or counts[value] > 1:
            digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
            value = f"{value}-{digest}" if value else digest
        out[name] = value
    return out


def plan_archives(rows: Iterable[IndexEntry]) -> list[ArchivePage]:
    """Group (id, local published, content hash, updated) rows by month, newest month first."""
    months: dict[str, list[tuple[str, str, str]]] = {}
    for item_id, published, digest, updated in rows:
        months.setdefault(published[:7], []).append((item_id, digest, updated))
    pages = []
    for month in sorted(months, reverse=True):
        entries = months[month]
        rows_hash = hashlib.sha256(repr(entries).encode("utf-8")).hexdigest()
        pages.append(ArchivePage(month, tuple(e[0] for e in entries), rows_hash))
    return pages


def plan_months(months: Iterable[MonthSummary]) -> list[ArchivePage]:
    """A page per month from its summary row (newest month first): its hash is the month's
    count of items and of changes, which any insert, edit or removal in it moves, so the
    plan costs one row per month, not one per item."""
    return [
        ArchivePage(
            m.month,
            None,
            hashlib.sha256(f"month\x1f{m.month}\x1f{m.items}\x1f{m.changes}".encode()).hexdigest(),
            m.items,
        )
        for m in months
    ]


def plan_after(rows: list[IndexEntry], pages: list[ArchivePage], start: int) -> list[ArchivePage]:
    """``plan_archives(rows[start:])``, reusing from ``pages`` (the plan of all ``rows``) the
    months that lie wholly past ``start``: only the months split by it are hashed again."""
    split = {row[1][:7] for row in rows[:start]}
    partial = plan_archives(row for row in rows[start:] if row[1][:7] in split)
    whole = [p for p in pages if p.month not in split]
    return sorted([*partial, *whole], key=lambda p: p.month, reverse=True)
