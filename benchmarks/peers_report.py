"""The pure parts of ``peers.py``: what a row holds, how its target is judged, the table it
prints, the order repeats interleave in, and the few texts it writes (config edits, the RSS
feed the rss2email peer reads). Nothing here measures, so the unit tests can check it fast.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import TypeVar
from xml.sax.saxutils import escape

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """``value >= bound`` (``at_least``) or ``value <= bound``; with ``of_peer`` the value
    judged is the row's ratio to its first peer, not the value itself."""

    bound: float
    at_least: bool
    of_peer: bool = False

    def met(self, value: float, peer: float | None) -> bool:
        judged = value
        if self.of_peer:
            if not peer:
                return False
            judged = value / peer
        return judged >= self.bound if self.at_least else judged <= self.bound

    def text(self, unit: str, peer_name: str = "") -> str:
        sign = ">=" if self.at_least else "<="
        if self.of_peer:
            return f"{sign} {self.bound:g}x {peer_name}".rstrip()
        return f"{sign} {self.bound:g} {unit}"


@dataclass(frozen=True)
class Row:
    """One line of the table. ``value`` is None when the row could not be measured on this
    tree or machine (``note`` says why): such a row is shown and never fails."""

    name: str
    value: float | None
    unit: str
    peers: tuple[tuple[str, float], ...] = ()
    target: Target | None = None
    peak_mb: float | None = None
    max_mb: float | None = None
    note: str = ""

    @property
    def first_peer(self) -> float | None:
        return self.peers[0][1] if self.peers else None

    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        if self.target is None and self.max_mb is None:
            return "report"
        ok = self.target is None or self.target.met(self.value, self.first_peer)
        if self.max_mb is not None and (self.peak_mb is None or self.peak_mb > self.max_mb):
            ok = False
        return "ok" if ok else "MISSED"

    def cells(self) -> tuple[str, ...]:
        value = "-" if self.value is None else f"{self.value:.1f} {self.unit}"
        peers = "; ".join(f"{name}: {v:.1f} {self.unit}" for name, v in self.peers) or "-"
        ratio = "-"
        if self.value is not None and self.first_peer:
            ratio = f"{self.value / self.first_peer:.2f}x"
        target = ""
        if self.target is not None:
            target = self.target.text(self.unit, self.peers[0][0] if self.peers else "")
        if self.max_mb is not None:
            target = f"{target}, <= {self.max_mb:g} MB".lstrip(", ")
        peak = "-" if self.peak_mb is None else f"{self.peak_mb:.0f} MB"
        verdict = self.verdict()
        if self.note:
            verdict = f"{verdict} ({self.note})"
        return (self.name, value, peers, ratio, target or "-", peak, verdict)


HEADER = (
    "work",
    "iomfeed (median)",
    "peer / floor, same run (median)",
    "iomfeed / first peer",
    "target",
    "peak RSS",
    "verdict",
)


def markdown(rows: Sequence[Row]) -> list[str]:
    """The table as Markdown lines, as the README shows it."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row.cells()) + " |")
    return lines


def all_met(rows: Iterable[Row]) -> bool:
    return all(row.verdict() != "MISSED" for row in rows)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def interleave(jobs: Mapping[str, Callable[[], T]], repeat: int) -> dict[str, list[T]]:
    """Each job ``repeat`` times, the order rotated by one every round, so no job always
    runs first (or right after the same neighbour) while the machine's load drifts."""
    names = list(jobs)
    found: dict[str, list[T]] = {name: [] for name in names}
    for r in range(repeat):
        shift = r % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            found[name].append(jobs[name]())
    return found


def replace_once(text: str, old: str, new: str, what: str) -> str:
    """``text`` with its first ``old`` replaced; a config that lacks it is a clear error."""
    if old not in text:
        raise SystemExit(f"{what}: config.toml has no {old!r} to replace")
    return text.replace(old, new, 1)


def with_connections(text: str, count: int) -> str:
    """The config with ``mail.connections = count`` (a key not every tree knows: added
    after ``rate`` where the shipped config does not set it already)."""
    if "\nconnections = 1\n" in text:
        return replace_once(text, "\nconnections = 1\n", f"\nconnections = {count}\n", "[mail]")
    return replace_once(text, "\nrate = 0\n", f"\nrate = 0\nconnections = {count}\n", "[mail]")


def with_dkim(text: str, key_file: str, selector: str = "bench") -> str:
    """The config signing every message with ``key_file`` under ``selector``."""
    section = text.index("[mail.dkim]")
    head, tail = text[:section], text[section:]
    tail = replace_once(tail, '\nselector = ""\n', f'\nselector = "{selector}"\n', "[mail.dkim]")
    tail = replace_once(tail, '\nkey_file = ""\n', f'\nkey_file = "{key_file}"\n', "[mail.dkim]")
    return head + tail


def with_outbox(text: str) -> str:
    """The config writing messages to files instead of sending them."""
    return replace_once(text, '\ntransport = "smtp"\n', '\ntransport = "outbox"\n', "[mail]")


@dataclass(frozen=True)
class FeedEntry:
    title: str
    link: str
    published: datetime
    summary: str


def rss(title: str, link: str, entries: Sequence[FeedEntry]) -> bytes:
    """An RSS 2.0 document of ``entries`` (what an rss2email user would subscribe to)."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>{escape(link)}</link>",
        f"<description>{escape(title)}</description>",
    ]
    for e in entries:
        parts.append(
            f"<item><title>{escape(e.title)}</title><link>{escape(e.link)}</link>"
            f'<guid isPermaLink="true">{escape(e.link)}</guid>'
            f"<pubDate>{format_datetime(e.published)}</pubDate>"
            f"<description>{escape(e.summary)}</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")
