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
- A segment's stories are the digest's stories of its categories: all the items this digest
  holds (those it shows and those beyond its cap, counted in "N more"), newest first, at most
  as many as the digest shows (``digest.max_items``, or ``first_items`` for the list's first
  digest). Its "N more" counts its own stories left out, not those of other categories. So
  a rare category's subscriber gets their new stories in a busy week, not only a count.
- The segment is made only from what the digest freezes (its entries and left-out items, in
  their recorded order, and how many it shows): a resumed send renders it the same.

A digest is rendered once per (language, segment) some recipient has (:class:`Renderings`),
and each of those once-inlined renderings is then personalised per subscriber.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Generic, TypeVar

from .. import normalize

if TYPE_CHECKING:
    from ..config import Config
    from ..languages import Language
    from ..models import StoredItem
    from ..output_records import DigestContent

#: A segment: casefolded category names, sorted; the empty tuple is every category.
Segment = tuple[str, ...]
#: The whole digest.
EVERY: Segment = ()
#: What a digest is rendered once for.
Key = tuple[str, Segment]

V = TypeVar("V")


def fold(name: str) -> str:
    """A category name as segments compare it: spaces tidied, case folded."""
    return normalize.clean_text(name).casefold()


def offered_categories(config: Config) -> tuple[str, ...]:
    """The categories the config offers (as written, first spelling kept, in order)."""
    seen: dict[str, str] = {}
    for _code, names in config.digest.categories.languages:
        for name, _shown in names:
            seen.setdefault(fold(name), normalize.clean_text(name))
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
    """The digest as a subscriber of ``segment`` gets it: the newest stories of its
    categories among all the digest holds, as many at most as the digest shows, and a
    "N more" that counts the segment's own stories left out."""
    if segment == EVERY:
        return content
    from .select import to_entry

    keep = frozenset(segment)
    shown = tuple(e for e in content.entries if fold(e.category) in keep)
    # The cap is the whole digest's: it shows that many when it left any out (``rest``).
    room = len(content.entries) - len(shown)
    rest = [i for i in content.rest if _category(i) in keep]
    left = rest[room:]
    return replace(
        content,
        entries=(*shown, *(to_entry(i) for i in rest[:room])),
        more=len(left),
        left_out=tuple(i.id for i in left),
        rest=tuple(left),
    )


def _category(item: StoredItem) -> str:
    """An item's category as segments compare it (the first its source gave, as shown)."""
    return fold(item.categories[0]) if item.categories else ""


def has_stories(content: DigestContent, segment: Segment) -> bool:
    """Whether a subscriber of ``segment`` has anything new in ``content``."""
    if segment == EVERY:
        return bool(content.entries)
    keep = frozenset(segment)
    return any(fold(e.category) in keep for e in content.entries) or any(
        _category(i) in keep for i in content.rest
    )


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


def category_name(config: Config, language: Language, name: str) -> str:
    """Category ``name`` in ``language``: the config's table for it when there is one, else
    the language file's ``[categories]``; a name neither gives is shown as stored."""
    names = config.digest.categories
    if names.has(language.code):
        return names.get(name, language.code)
    return language.category(name) or name
