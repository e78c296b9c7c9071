"""Category segments: which of a digest's stories a subscriber gets. Pure: no store, no I/O.

- A story's category is the one the digest shows it under: the first of the categories its
  source gave (``DigestEntry.category``); a story with none has no category.
- The categories on offer are those the config names in its ``[digest.categories.<code>]``
  tables (every language's, matched ignoring case); what a subscriber chose is matched
  against them ignoring case and spacing.
- A subscriber's segment is the set of offered categories they chose. None chosen, every
  offered one chosen, or only categories the config no longer offers (removed since): the
  whole digest, :data:`EVERY` (uncategorised stories and categories that appear later
  included). A removed category is dropped from a choice that keeps others. A config that
  offers none keeps every choice as it was made.
- A segment gets the stories whose category it holds, in the digest's order.

A digest is rendered once per (language, segment) some recipient has (:class:`Renderings`),
and each of those once-inlined renderings is then personalised per subscriber.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Generic, TypeVar

from ..normalize import clean_text

if TYPE_CHECKING:
    from ..config import Config
    from ..models import DigestContent

#: A segment: casefolded category names, sorted; the empty tuple is every category.
Segment = tuple[str, ...]
#: The whole digest.
EVERY: Segment = ()
#: What a digest is rendered once for.
Key = tuple[str, Segment]

V = TypeVar("V")


def fold(name: str) -> str:
    """A category name as segments compare it: spaces tidied, case folded."""
    return clean_text(name).casefold()


def offered_categories(config: Config) -> tuple[str, ...]:
    """The categories the config offers (as written, first spelling kept, in order)."""
    seen: dict[str, str] = {}
    for _code, names in config.digest.categories.languages:
        for name, _shown in names:
            seen.setdefault(fold(name), clean_text(name))
    return tuple(seen.values())


def segment_of(chosen: Iterable[str], offered: Sequence[str]) -> Segment:
    """The segment of a subscriber who chose ``chosen`` (empty: every category)."""
    wanted = {fold(c) for c in chosen} - {""}
    if offered:
        on_offer = {fold(c) for c in offered}
        wanted &= on_offer
        if wanted == on_offer:
            return EVERY
    return tuple(sorted(wanted))


def for_segment(content: DigestContent, segment: Segment) -> DigestContent:
    """The digest as a subscriber of ``segment`` gets it: only the stories of its
    categories (the "N more" line still counts and links every story left out)."""
    if segment == EVERY:
        return content
    keep = frozenset(segment)
    return replace(content, entries=tuple(e for e in content.entries if fold(e.category) in keep))


def has_stories(content: DigestContent, segment: Segment) -> bool:
    """Whether a subscriber of ``segment`` has anything new in ``content``."""
    return bool(for_segment(content, segment).entries)


def encode(segment: Segment) -> str:
    """A segment as the ledger stores it (a JSON array; ``[]``: every category)."""
    return json.dumps(list(segment), ensure_ascii=False)


@lru_cache(maxsize=256)
def decode(text: str) -> Segment:
    """A stored segment (cached: a ledger of thousands of rows holds a few segments)."""
    return tuple(sorted(fold(str(c)) for c in json.loads(text or "[]")))


class Renderings(Mapping[Key, V], Generic[V]):
    """Values made once per key, on first use: a digest rendered (and inlined) once per
    (language, segment), whichever recipient needs it first. ``made`` counts the keys made,
    so a test (or a log line) can tell how often the costly step ran."""

    def __init__(self, make: Callable[[Key], V], keys: Iterable[Key] = ()) -> None:
        self._make = make
        self._made: dict[Key, V] = {}
        for key in keys:  # made now, so that a problem shows before anything is sent
            if key not in self._made:
                self._made[key] = make(key)

    def __getitem__(self, key: Key) -> V:
        if key not in self._made:
            self._made[key] = self._make(key)
        return self._made[key]

    def __iter__(self) -> Iterator[Key]:
        return iter(self._made)

    def __len__(self) -> int:
        return len(self._made)

    @property
    def made(self) -> int:
        return len(self._made)
