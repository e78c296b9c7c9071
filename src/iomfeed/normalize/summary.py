"""Summaries: whether a site's teaser is its body cut short, and a summary made from the
body instead, cut at a word.

Pure functions only, over sanitised HTML.
"""

from __future__ import annotations

import re

from .markup import text_blocks

_SENTENCE_END_RE = re.compile(r"[.!?…][\"'”’»)\]]*$")
_MIN_PART = 40  # characters of a further block worth starting in a summary
_ELLIPSIS_RE = re.compile(r"\s*(?:\.\.\.|…)$")


def teaser_is_cut(summary_html: str, content_html: str) -> bool:
    """Whether a teaser is visibly the start of the body cut short: it ends without sentence
    punctuation (or with an ellipsis glued to the cut) and the body starts with it."""
    teaser = " ".join(text_blocks(summary_html))
    marked = _ELLIPSIS_RE.search(teaser)
    if marked:
        teaser = teaser[: marked.start()]
    elif _SENTENCE_END_RE.search(teaser):
        return False
    if not teaser:
        return False
    body = " ".join(text_blocks(content_html))
    return len(body) > len(teaser) and body.startswith(teaser)


def _cut_at_word(text: str, room: int) -> str:
    """The longest start of ``text`` of at most ``room`` characters that ends at a word
    boundary, without trailing punctuation that would dangle ("", if no word fits)."""
    if room <= 0:
        return ""
    if len(text) <= room:
        return text
    cut = text[:room]
    if not text[room].isspace():
        space = cut.rfind(" ")
        cut = cut[:space] if space > 0 else ""
    return cut.rstrip(" ,;:-–—(")


def summary_from_body(content_html: str, length: int) -> str:
    """A summary made of the body's first blocks, at most ``length`` characters of text
    (blocks count one character apart). It ends with the last paragraph that fits when that
    one ends a sentence; otherwise the next block is cut at a word, with an ellipsis.
    Sanitised HTML: one ``<p>`` per block."""
    import html as htmlmod

    kept: list[str] = []
    used = 0
    for block in text_blocks(content_html):
        gap = 1 if kept else 0
        if used + gap + len(block) <= length:
            kept.append(block)
            used += gap + len(block)
            continue
        if kept and _SENTENCE_END_RE.search(kept[-1]):
            break  # whole paragraphs read better than a few words of the next one
        room = length - used - gap - 1  # the ellipsis takes one
        part = _cut_at_word(block, room) if not kept or room >= _MIN_PART else ""
        if part:
            kept.append(part + "…")
        elif kept:  # not enough of this block fits: end with the previous one
            last = kept[-1] if used < length else _cut_at_word(kept[-1], len(kept[-1]) - 1)
            kept[-1] = (last or kept[-1][: len(kept[-1]) - 1]) + "…"
        else:  # one word longer than the whole summary
            kept.append(block[: max(room, 0)] + "…")
        break
    return "".join(f"<p>{htmlmod.escape(block, quote=False)}</p>" for block in kept)
