"""Deciding identity: what is the same story, and what changed. Pure functions, no I/O.

* Exact duplicates share a canonical URL (see :func:`iomfeed.normalize.canonical_url`).
* Near duplicates are the same story arriving from another source (an ingested feed, say):
  titles that fold to the same words, or nearly, with the same numbers, published within a
  few days of each other. Within one source, distinct canonical URLs are distinct stories.
* An edit is a change of :func:`content_hash`, a versioned hash of the normalised fields, so a
  change to the hashing itself can be told apart from a change to the content.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from difflib import SequenceMatcher

from .normalize import title_key

HASH_VERSION = "v1"
NEAR_DUPLICATE_WINDOW = timedelta(days=3)
NEAR_DUPLICATE_RATIO = 0.92
_NUMBERS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored item that might be the same story as a new one."""

    id: str
    title_key: str
    published: datetime
    source: str


def content_hash(
    *,
    title: str,
    summary_html: str,
    content_html: str,
    published: datetime,
    image_url: str,
    categories: Iterable[str],
    language: str,
) -> str:
    """A versioned fingerprint of what a reader sees of an item."""
    payload = json.dumps(
        [
            title,
            summary_html,
            content_html,
            published.isoformat(),
            image_url,
            list(categories),
            language,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return f"{HASH_VERSION}:{hashlib.sha256(payload.encode('utf-8')).hexdigest()}"


def listing_hash(*parts: str) -> str:
    """A short fingerprint of a listing entry, to notice a changed teaser without a fetch."""
    joined = "\x1f".join(parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]


def title_similarity(a: str, b: str) -> float:
    """How alike two folded titles are, 0 to 1; symmetric, and 0 when their numbers differ.

    "Newsletter, Issue 12" and "Issue 13" are different stories however alike the words.
    """
    if a == b:
        return 1.0
    if _NUMBERS.findall(a) != _NUMBERS.findall(b):
        return 0.0
    forward = SequenceMatcher(None, a, b, autojunk=False).ratio()
    backward = SequenceMatcher(None, b, a, autojunk=False).ratio()
    return min(forward, backward)


def title_lengths(key: str) -> tuple[int, int]:
    """The lengths a folded title can have and still be :data:`NEAR_DUPLICATE_RATIO` alike
    with ``key`` (inclusive; a few more at the edges): the ratio of two titles is at most
    twice the shorter length over both lengths, so titles of lengths far apart are not
    compared (in the store's query either)."""
    n, r = len(key), NEAR_DUPLICATE_RATIO
    return math.floor(n * r / (2 - r)), math.ceil(n * (2 - r) / r)


def find_near_duplicate(
    title: str, published: datetime, source: str, candidates: Iterable[Candidate]
) -> Candidate | None:
    """The candidate that is the same story, or ``None``.

    Same story: from another source (within one source, distinct addresses are distinct
    stories), published within :data:`NEAR_DUPLICATE_WINDOW`, and folded titles at least
    :data:`NEAR_DUPLICATE_RATIO` alike. The most alike, then the closest in time, wins.
    """
    key = title_key(title)
    if not key:
        return None
    best: tuple[float, timedelta, Candidate] | None = None
    shortest, longest = title_lengths(key)
    for cand in candidates:
        if cand.source == source or not shortest <= len(cand.title_key) <= longest:
            continue
        gap = abs(cand.published - published)
        if gap > NEAR_DUPLICATE_WINDOW:
            continue
        ratio = title_similarity(key, cand.title_key)
        if ratio < NEAR_DUPLICATE_RATIO:
            continue
        if best is None or (ratio, -gap) > (best[0], -best[1]):
            best = (ratio, gap, cand)
    return best[2] if best else None
