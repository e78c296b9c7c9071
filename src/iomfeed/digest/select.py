"""Which items a digest holds. Pure: records in, records out.

A digest holds the items first seen since the last digest that actually went out (not a fixed
window: after a missed week it catches up), newest first, at most ``digest.max_items``; the
rest are counted and linked. The list's first digest (none went out before) would hold the
whole history a backfill brought: it shows only the newest ``digest.first_items`` as "the
latest stories", and the older ones count as handled.

Whether one is due, and what a send does with it, is the lifecycle's to decide
(:mod:`.lifecycle`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..models import StoredItem
from ..normalize import text_blocks
from ..output_records import DigestContent, DigestEntry

SUMMARY_LIMIT = 300
#: A paragraph that would have to be cut shorter than this to fit the summary is left out
#: (the story's "Read more" link follows), unless it is the first.
MIN_TAIL = 60


def shorten(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """At most ``limit`` characters, cut at a word, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:.-·") + "…"


def summarize(parts: Sequence[str], limit: int = SUMMARY_LIMIT) -> str:
    """The first paragraphs of ``parts``, at most ``limit`` characters in all (the line
    breaks between them not counted), one a line: the paragraph that does not fit is cut
    at a word with an ellipsis, or left out when too little of it would remain."""
    kept: list[str] = []
    left = limit
    for part in parts:
        if len(part) <= left:
            kept.append(part)
            left -= len(part)
            continue
        if not kept or left >= MIN_TAIL:
            kept.append(shorten(part, left))
        break
    return "\n".join(kept)


def to_entry(item: StoredItem) -> DigestEntry:
    summary = text_blocks(item.summary_html) or text_blocks(item.content_html)
    return DigestEntry(
        id=item.id,
        title=item.title,
        url=item.url,
        published=item.published,
        summary=summarize(summary),
        image_url=item.image_url,
        image_alt=item.image_alt,
        category=item.categories[0] if item.categories else "",
    )


def select(
    items: Sequence[StoredItem],
    *,
    max_items: int,
    digest_id: int,
    created: datetime,
    since: datetime | None,
    first: bool = False,
) -> DigestContent:
    """The digest of ``items`` (the new items, any order): the newest ``max_items`` by their
    date, and how many more there are (all of them the digest's: the next one does not hold
    them). ``first``: the list's first digest (``max_items`` is then its ``first_items``)."""
    ordered = sorted(items, key=lambda i: (i.published, i.id), reverse=True)
    shown = ordered[:max_items]
    return DigestContent(
        digest_id=digest_id,
        created=created,
        since=since,
        entries=tuple(to_entry(i) for i in shown),
        more=len(ordered) - len(shown),
        left_out=tuple(i.id for i in ordered[max_items:]),
        rest=tuple(ordered[max_items:]),
        first=first,
    )
