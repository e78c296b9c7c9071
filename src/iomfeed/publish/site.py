"""Render ``index.html``: the latest items and how to subscribe, for people who land on the
feeds folder. Pure: records in, bytes out. Jinja2 with autoescape; item HTML is already
sanitised by the normaliser and is marked safe explicitly, nothing else is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from ..models import StoredItem

if TYPE_CHECKING:
    from jinja2 import Environment


@dataclass(frozen=True, slots=True)
class FeedLink:
    """One subscribe link: a feed set's title and its three addresses."""

    title: str
    atom_url: str
    rss_url: str
    json_url: str


MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")


def long_date(value: datetime) -> str:
    """'20 June 2024', whatever the machine's locale."""
    return f"{value.day} {MONTHS_EN[value.month - 1]} {value.year}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """iomfeed's own templates (the package ``iomfeed.templates``), autoescaped."""
    import importlib.resources

    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    own = importlib.resources.files("iomfeed.templates")
    env = Environment(loader=FileSystemLoader(str(own)), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["longdate"] = long_date
    return env


def render_index(
    *,
    title: str,
    description: str,
    language: str,
    home_url: str,
    feeds: Sequence[FeedLink],
    items: Sequence[StoredItem],
    updated: datetime | None,
) -> bytes:
    from markupsafe import Markup

    from .feeds import xml_safe

    template = environment().get_template("site/index.html.j2")
    html = template.render(
        title=title,
        description=description,
        language=language,
        home_url=home_url,
        feeds=feeds,
        main=feeds[0] if feeds else None,
        # Summaries were sanitised by the normaliser; nothing else is marked safe.
        items=[(item, Markup(item.summary_html)) for item in xml_safe(items)],
        updated=updated,
    )
    return html.encode("utf-8")
