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


@lru_cache(maxsize=4)
def environment(override: str = "") -> Environment:
    """Templates from the override folder (if configured) first, then iomfeed's own."""
    import importlib.resources

    from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

    loaders = [FileSystemLoader(override)] if override else []
    own = importlib.resources.files("iomfeed.templates")
    loaders.append(FileSystemLoader(str(own)))
    env = Environment(loader=ChoiceLoader(loaders), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["longdate"] = lambda d: f"{d.day} {d:%B %Y}"
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
    template_dir: str = "",
) -> bytes:
    from markupsafe import Markup

    from .feeds import xml_safe

    template = environment(template_dir).get_template("site/index.html.j2")
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
