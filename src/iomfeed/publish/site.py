"""Render the HTML pages for people who land on the feeds folder: ``index.html`` (the latest
items, how to subscribe, and links to older stories) and one page per month
(``months/YYYY-MM.html``). Pure: records in, bytes out. Jinja2 with autoescape; item HTML is
already sanitised by the normaliser and is marked safe explicitly, nothing else is. The
pages' words are the ``[pages]`` table of their language's file (:mod:`iomfeed.languages`),
escaped like any text, with links put in where they say ``{website}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..models import StoredItem

if TYPE_CHECKING:
    from jinja2 import BytecodeCache, Environment
    from markupsafe import Markup

    from ..forms import SignUpView
    from ..languages import FormsWords, PagesWords
    from .digests import DigestLink


@dataclass(frozen=True, slots=True)
class FeedLink:
    """One subscribe link: a feed set's title and its three addresses."""

    title: str
    atom_url: str
    rss_url: str
    json_url: str


#: The language of the pages' words (its file's ``[pages]`` table), and so of their dates
#: and month names, which come from CLDR through Babel.
PAGES_LANGUAGE = "en"


@lru_cache(maxsize=4)
def pages_words(language: str = PAGES_LANGUAGE) -> PagesWords:
    """The pages' words in ``language``: its built-in file's ``[pages]`` table."""
    from .. import languages

    words = languages.load(language).pages
    if words is None:
        raise ConfigError(f"language {language!r}: its file has no [pages] table")
    return words


@lru_cache(maxsize=1)
def forms_words(language: str = PAGES_LANGUAGE) -> FormsWords:
    """The sign-up form's words on the pages: the ``[forms]`` table of their language."""
    from .. import languages

    words = languages.load(language).forms
    if words is None:
        raise ConfigError(f"language {language!r}: its file has no [forms] table")
    return words


def long_date(value: datetime, language: str = PAGES_LANGUAGE) -> str:
    """'20 June 2024' (the day of ``value`` as stored, written with the language's
    ``[pages] date_format``), whatever the machine's locale."""
    from ..dates import format_day

    return format_day(value.date(), language, pages_words(language).date_format)


def say(text: str, **values: object) -> Markup:
    """``text`` (plain words) escaped, each ``{name}`` replaced by ``values[name]``, itself
    escaped unless it is already markup (a link)."""
    from markupsafe import Markup, escape

    out = str(escape(text))
    for name, value in values.items():
        out = out.replace("{" + name + "}", str(escape(value)))
    return Markup(out)


def website_link(words: PagesWords, home_url: str, author: str) -> Markup:
    """The link to the site the stories come from, in the pages' words."""
    from markupsafe import Markup

    return Markup('<a href="{}">{}</a>').format(home_url, say(words.website, author=author))


@lru_cache(maxsize=4)
def environment(cache: BytecodeCache | None = None) -> Environment:
    """iomfeed's own templates (the package ``iomfeed.templates``), autoescaped; compiled
    ones kept in ``cache`` (:mod:`iomfeed.template_cache`) when given."""
    import importlib.resources

    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    own = importlib.resources.files("iomfeed.templates")
    env = Environment(
        loader=FileSystemLoader(str(own)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=cache,
    )
    env.filters["longdate"] = long_date
    env.globals["say"] = say
    return env


@dataclass(frozen=True, slots=True)
class MonthLink:
    """One month page: its month (``YYYY-MM``) and how many stories it holds."""

    month: str
    count: int
    language: str = PAGES_LANGUAGE

    @property
    def path(self) -> str:
        """Relative to the publish folder (and to ``index.html``)."""
        return f"months/{self.month}.html"

    @property
    def name(self) -> str:
        from ..dates import month_name

        return month_name(int(self.month[5:7]), self.language)

    @property
    def year(self) -> str:
        return self.month[:4]

    @property
    def label(self) -> str:
        return f"{self.name} {self.year}"


@lru_cache(maxsize=1)
def templates_digest() -> str:
    """A hash of every page template and style sheet (the pages' folder, and the web forms'
    whose sign-up form the index holds): part of the index's and each month page's
    fingerprint, so that a change of how pages look writes them again."""
    import hashlib
    import importlib.resources

    digest = hashlib.sha256()
    for part in ("site", "web"):
        folder = importlib.resources.files("iomfeed.templates") / part
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_file():
                digest.update(f"{part}/{entry.name}\0".encode() + entry.read_bytes() + b"\0")
    return digest.hexdigest()


def _render(
    name: str, items: Sequence[StoredItem], cache: BytecodeCache | None, **values: object
) -> bytes:
    from markupsafe import Markup

    from .feeds import xml_safe

    template = environment(cache).get_template(name)
    words = pages_words()
    html = template.render(
        words=words,
        website=website_link(words, str(values["home_url"]), str(values["author"])),
        # Summaries were sanitised by the normaliser; nothing else is marked safe.
        items=[(item, Markup(item.summary_html)) for item in xml_safe(items)],
        **values,
    )
    return html.encode("utf-8")


def render_index(
    *,
    title: str,
    description: str,
    language: str,
    home_url: str,
    author: str,
    feeds: Sequence[FeedLink],
    items: Sequence[StoredItem],
    updated: datetime | None,
    months: Sequence[MonthLink] = (),
    digests: str = "",
    form: SignUpView | None = None,
    cache: BytecodeCache | None = None,
) -> bytes:
    """``index.html``: the newest ``items``, the feeds, ``months`` (newest first), a link
    to the digest archive's index (``digests``, relative) when there is one, and the
    sign-up ``form`` (the web forms' own, posting to ``iomfeed serve``)."""
    years: dict[str, list[MonthLink]] = {}
    for month in months:
        years.setdefault(month.year, []).append(month)
    return _render(
        "site/index.html.j2",
        items,
        cache,
        title=title,
        description=description,
        language=language,
        home_url=home_url,
        author=author,
        feeds=feeds,
        updated=updated,
        years=list(years.items()),
        digests=digests,
        form=form,
        fw=forms_words(),
    )


def render_digests(
    *,
    title: str,
    home_url: str,
    author: str,
    digests: Sequence[DigestLink],
    feed_url: str,
    updated: datetime,
    cache: BytecodeCache | None = None,
) -> bytes:
    """``digests/index.html``: every digest that went out, newest first, with its pages."""
    words = pages_words()
    return _render(
        "site/digests.html.j2",
        (),
        cache,
        title=title,
        description=words.digests_lead.replace(
            "{website}", words.website.replace("{author}", author)
        ),
        language=PAGES_LANGUAGE,
        home_url=home_url,
        author=author,
        feeds=(),
        digests=digests,
        feed_url=feed_url,
        updated=updated,
    )


def render_month(
    *,
    title: str,
    language: str,
    home_url: str,
    author: str,
    feeds: Sequence[FeedLink],
    month: MonthLink,
    items: Sequence[StoredItem],
    newer: MonthLink | None,
    older: MonthLink | None,
    cache: BytecodeCache | None = None,
) -> bytes:
    """One month's page: every story published in it, newest first, and links to the
    months on either side and to ``index.html``."""
    description = pages_words().month_description.replace("{author}", author)
    description = description.replace("{month}", month.label)
    return _render(
        "site/month.html.j2",
        items,
        cache,
        title=title,
        language=language,
        home_url=home_url,
        author=author,
        feeds=feeds,
        month=month,
        newer=newer,
        older=older,
        description=description,
        updated=max((i.updated for i in items), default=None),
    )
