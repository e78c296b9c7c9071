"""Normalisation: canonical URLs, clean HTML with absolute links, time-zone aware dates.

Pure functions only: no network, no store, no clock (``now`` and time zones are passed in).
Sources call :func:`canonical_url` to recognise items they already stored; the pipeline calls
:func:`normalize_item` on everything a source yields before it reaches the store.

Each part lives in its own module, and every name is importable from here:
:mod:`.urls` (canonical URLs, origins), :mod:`.markup` (plain text, sanitised HTML, text
blocks, title keys), :mod:`.summary` (cut teasers, summaries from the body), :mod:`.datetext`
(dates in ISO form, in words and in datelines), :mod:`.item` (:func:`normalize_item`).

A part is imported when one of its names is first asked for: a cron run that finds nothing
new never compiles the date and markup patterns it would not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as the type checker sees them (re-exported)
    from ..clock import zone as zone
    from .datetext import DATELINE_WINDOW as DATELINE_WINDOW
    from .datetext import YEARLESS_MAX_AGE as YEARLESS_MAX_AGE
    from .datetext import find_dateline as find_dateline
    from .datetext import parse_date_text as parse_date_text
    from .datetext import parse_iso as parse_iso
    from .item import FUTURE_DATE_GRACE as FUTURE_DATE_GRACE
    from .item import normalize_item as normalize_item
    from .markup import ALLOWED_ATTRIBUTES as ALLOWED_ATTRIBUTES
    from .markup import ALLOWED_TAGS as ALLOWED_TAGS
    from .markup import clean_text as clean_text
    from .markup import html_to_text as html_to_text
    from .markup import sanitize_html as sanitize_html
    from .markup import text_blocks as text_blocks
    from .markup import title_key as title_key
    from .summary import summary_from_body as summary_from_body
    from .summary import teaser_is_cut as teaser_is_cut
    from .urls import TRACKING_PARAMS as TRACKING_PARAMS
    from .urls import Origin as Origin
    from .urls import canonical_url as canonical_url
    from .urls import is_web_url as is_web_url
    from .urls import same_site as same_site

#: Where each name lives (the module is imported on first use).
_HOMES = {
    "DATELINE_WINDOW": ".datetext",
    "YEARLESS_MAX_AGE": ".datetext",
    "find_dateline": ".datetext",
    "parse_date_text": ".datetext",
    "parse_iso": ".datetext",
    "FUTURE_DATE_GRACE": ".item",
    "normalize_item": ".item",
    "ALLOWED_ATTRIBUTES": ".markup",
    "ALLOWED_TAGS": ".markup",
    "clean_text": ".markup",
    "html_to_text": ".markup",
    "sanitize_html": ".markup",
    "text_blocks": ".markup",
    "title_key": ".markup",
    "summary_from_body": ".summary",
    "teaser_is_cut": ".summary",
    "TRACKING_PARAMS": ".urls",
    "Origin": ".urls",
    "canonical_url": ".urls",
    "is_web_url": ".urls",
    "same_site": ".urls",
    "zone": "..clock",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # asked for once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
