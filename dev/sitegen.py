"""Build the bundled offline snapshot of IOM Albania's news site from ``content.toml``.

The live site (a Drupal 10 install at ``albania.iom.int``) cannot be reached from tests, demos
or benchmarks, so iomfeed ships a static copy of it: the front page, the paged news listing,
one page per article, an old-CMS page from before 2016, ``robots.txt``, and the images and
PDFs those pages link. This module turns the hand-written content file into that folder, and
can also make any number of synthetic items for benchmarks.

The markup follows the patterns known from the real site (see the class names used below):
a scraper is driven by configured CSS selectors, so the class names here are part of the
contract and must not drift. Each item says how its article page exposes its date
(``date_markup``) and how the listing links it (``link``), so that every fall-back of the
scraper is exercised by some page.

Output is deterministic: the same items give the same bytes. Absolute URLs use the literal
origin ``https://albania.iom.int``; the snapshot server rewrites it to its own address.

This module must stay standard-library only and must not touch the network. It is a
development tool, not part of the installed package: the generated folder is what ships (as
``iomfeed/demo/site``), and a test regenerates it from ``content.toml`` and compares.

Run ``python -m dev.sitegen`` from the repository's root to regenerate
``src/iomfeed/demo/site/``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import itertools
import json
import math
import random
import re
import shutil
import struct
import tempfile
import tomllib
import unicodedata
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Final, Literal, TypeAlias, cast
from urllib.parse import quote

__all__ = [
    "DEFAULT_CONTENT",
    "DEFAULT_SITE",
    "FILES_PREFIX",
    "ORIGIN",
    "ContentItem",
    "build_site",
    "check_items",
    "cut_teaser",
    "load_content",
    "main",
    "slugify",
    "synthetic_items",
    "tirane_offset",
]

DateMarkup: TypeAlias = Literal["time", "meta", "jsonld", "submitted", "date_display", "none"]
LinkStyle: TypeAlias = Literal["relative", "index_php", "http_absolute"]
Layout: TypeAlias = Literal["drupal", "legacy"]
Language: TypeAlias = Literal["en", "sq"]
ReleaseType: TypeAlias = Literal["Local", "Global"]

DATE_MARKUPS: Final[tuple[DateMarkup, ...]] = (
    "time",
    "meta",
    "jsonld",
    "submitted",
    "date_display",
    "none",
)
LINK_STYLES: Final[tuple[LinkStyle, ...]] = ("relative", "index_php", "http_absolute")
LAYOUTS: Final[tuple[Layout, ...]] = ("drupal", "legacy")
LANGUAGES: Final[tuple[Language, ...]] = ("en", "sq")
RELEASE_TYPES: Final[tuple[ReleaseType, ...]] = ("Local", "Global")

ORIGIN: Final = "https://albania.iom.int"
"""The live origin, written literally into absolute URLs (the server rewrites it)."""
HTTP_ORIGIN: Final = "http://albania.iom.int"
FILES_PREFIX: Final = "/sites/g/files/tmzbdl1481/files"
"""Where Drupal's public files live on the site (site-relative)."""
SITE_NAME: Final = "IOM Albania"
LISTING_TITLE: Final = "Latest News on Migration"
LOGO_PATH: Final = "/themes/custom/iom/logo.png"
CSS_PATH: Final = "/themes/custom/iom/css/style.css"
DRUPAL_JS_PATH: Final = "/core/misc/drupal.js"
LEGACY_TV_SPOT: Final = "/images/stories/tvspot-think-before-you-leave.png"
FRONT_PUBLICATION: Final = FILES_PREFIX + "/documents/2023-06/iom-albania-country-strategy.pdf"
FEATURED_CUT: Final = 170
"""Teasers in the featured and "Latest News" blocks are cut near this many characters."""
FIRST_NODE_ID: Final = 1201
"""Node id of the oldest item; newer items count up from it."""

HERE: Final = Path(__file__).resolve().parent
DEFAULT_CONTENT: Final = HERE / "content.toml"
DEFAULT_SITE: Final = HERE.parent / "src" / "iomfeed" / "demo" / "site"
"""The snapshot the package ships (``iomfeed.demo.server.DEFAULT_ROOT``)."""

_SMALL_WORDS: Final = frozenset(
    {"a", "an", "the", "of", "to", "in", "on", "for", "and", "with", "by", "at"}
)
_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_FIGURE: Final = re.compile(r"\[figure\s+(?P<src>[^\s|\]]+)\s*\|\s*(?P<caption>[^\]]*)\]", re.S)
_LINKED_FILE: Final = re.compile(
    r"""(?:href|src)\s*=\s*["'](?P<path>""" + re.escape(FILES_PREFIX) + r"""/[^"'?#]+)"""
)
_NEWS_LINK: Final = re.compile(r"""href\s*=\s*["'](?:/index\.php)?/news/(?P<slug>[a-z0-9-]+)""")
_SLUG: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


# --------------------------------------------------------------------------------------------
# The content model


@dataclass(frozen=True, slots=True)
class ContentItem:
    """One news item of the snapshot, as written in ``content.toml``.

    ``teaser`` and ``body`` are plain text with paragraphs separated by blank lines. In the
    body, a paragraph of the form ``[figure 2021-09/file.png | caption]`` becomes a captioned
    image, and a paragraph starting with ``<`` is raw HTML passed through unchanged.
    """

    slug: str
    title: str
    type: ReleaseType
    language: Language
    published: datetime
    date_markup: DateMarkup
    link: LinkStyle
    layout: Layout
    featured: bool
    teaser: str
    image: str
    image_alt: str
    body: str
    legacy_id: int = 47
    """Numeric prefix of the old CMS's alias (``/47-<slug>``); used by legacy items only."""

    @property
    def path(self) -> str:
        """The item's canonical site-relative address."""
        if self.layout == "legacy":
            return f"/{self.legacy_id}-{self.slug}"
        return f"/news/{self.slug}"

    @property
    def url(self) -> str:
        """The item's canonical absolute URL on the live origin."""
        return ORIGIN + self.path

    @property
    def listing_href(self) -> str:
        """The address the news listing uses for this item."""
        if self.layout == "legacy":
            return self.path
        if self.link == "index_php":
            return "/index.php" + self.path
        if self.link == "http_absolute":
            return HTTP_ORIGIN + self.path
        return self.path

    @property
    def file_name(self) -> str:
        """Where the article page is written, relative to the site folder."""
        return self.path.lstrip("/") + ".html"

    @property
    def published_utc(self) -> datetime:
        return self.published.astimezone(UTC)

    @property
    def teaser_paragraphs(self) -> list[str]:
        return _paragraphs(self.teaser)

    @property
    def body_paragraphs(self) -> list[str]:
        return _paragraphs(self.body)

    def figures(self) -> list[tuple[str, str]]:
        """(image path, caption) of every figure line in the body."""
        found: list[tuple[str, str]] = []
        for para in self.body_paragraphs:
            match = _FIGURE.fullmatch(para)
            if match:
                found.append((match["src"], match["caption"].strip()))
        return found


def _paragraphs(text: str) -> list[str]:
    """Split text on blank lines; keep each paragraph's inner text as written."""
    blocks = re.split(r"\n[ \t]*\n", text.strip("\n"))
    return [b.strip("\n") for b in blocks if b.strip()]


def slugify(title: str) -> str:
    """Make a Drupal pathauto-style slug: ASCII, lower case, small words dropped, hyphens."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", ascii_text.lower().replace("'", ""))
    kept = [w for w in words if w not in _SMALL_WORDS]
    return "-".join(kept)[:100].strip("-")


def _last_sunday(year: int, month: int) -> int:
    """Day of the month of the last Sunday of ``month``."""
    next_month = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    last = next_month - timedelta(days=1)
    return last.day - (last.weekday() + 1) % 7


def tirane_offset(instant: datetime) -> timedelta:
    """Europe/Tirane's UTC offset at an aware instant (EU rules: CET, CEST in summer)."""
    utc = instant.astimezone(UTC)
    start = datetime(utc.year, 3, _last_sunday(utc.year, 3), 1, tzinfo=UTC)
    end = datetime(utc.year, 10, _last_sunday(utc.year, 10), 1, tzinfo=UTC)
    return timedelta(hours=2) if start <= utc < end else timedelta(hours=1)


def _to_tirane(instant: datetime) -> datetime:
    return instant.astimezone(timezone(tirane_offset(instant)))


# --------------------------------------------------------------------------------------------
# Loading and checking content


def _choice(value: object, allowed: tuple[str, ...], key: str, where: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{where}: {key} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _text(raw: Mapping[str, object], key: str, where: str, *, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key} must be a string")
    return value


def _datetime(value: object, where: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{where}: published is not an ISO 8601 date-time") from exc
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{where}: published must be an ISO date-time with a UTC offset")
    return value


def _item_from_table(raw: Mapping[str, object], index: int) -> ContentItem:
    where = f"item {index + 1} ({raw.get('slug', '?')})"
    featured = raw.get("featured", False)
    legacy_id = raw.get("legacy_id", 47)
    if not isinstance(featured, bool):
        raise ValueError(f"{where}: featured must be true or false")
    if not isinstance(legacy_id, int) or isinstance(legacy_id, bool):
        raise ValueError(f"{where}: legacy_id must be an integer")
    return ContentItem(
        slug=_text(raw, "slug", where),
        title=_text(raw, "title", where),
        type=cast(ReleaseType, _choice(raw.get("type"), RELEASE_TYPES, "type", where)),
        language=cast(Language, _choice(raw.get("language"), LANGUAGES, "language", where)),
        published=_datetime(raw.get("published"), where),
        date_markup=cast(
            DateMarkup, _choice(raw.get("date_markup"), DATE_MARKUPS, "date_markup", where)
        ),
        link=cast(LinkStyle, _choice(raw.get("link", "relative"), LINK_STYLES, "link", where)),
        layout=cast(Layout, _choice(raw.get("layout", "drupal"), LAYOUTS, "layout", where)),
        featured=featured,
        teaser=_text(raw, "teaser", where),
        image=_text(raw, "image", where, default=""),
        image_alt=_text(raw, "image_alt", where, default=""),
        body=_text(raw, "body", where),
        legacy_id=legacy_id,
    )


def _flatten(text: str) -> str:
    return " ".join(text.split())


def check_items(items: Sequence[ContentItem]) -> None:
    """Raise ``ValueError`` naming the first item that breaks the snapshot's invariants.

    Slugs are unique and well-formed, local offsets match Europe/Tirane, each body starts with
    its teaser, images are PNGs, and featured items are ordinary Drupal articles.
    """
    seen: set[str] = set()
    for item in items:
        where = f"item {item.slug!r}"
        if not _SLUG.fullmatch(item.slug):
            raise ValueError(f"{where}: slug must be lower-case ASCII words joined by hyphens")
        if item.path in seen:
            raise ValueError(f"{where}: address {item.path} is used twice")
        seen.add(item.path)
        if not item.title.strip() or not item.teaser.strip() or not item.body.strip():
            raise ValueError(f"{where}: title, teaser and body must not be empty")
        if item.published.utcoffset() != tirane_offset(item.published):
            raise ValueError(f"{where}: offset of {item.published.isoformat()} is not Tirana's")
        if not _flatten(item.body).startswith(_flatten(item.teaser)):
            raise ValueError(f"{where}: the body must start with the teaser text")
        for image in [item.image, *(src for src, _ in item.figures())]:
            if image and (image.startswith("/") or not image.endswith(".png")):
                raise ValueError(f"{where}: image {image!r} must be a relative .png path")
        if item.featured and (item.layout != "drupal" or item.link != "relative"):
            raise ValueError(f"{where}: featured items must be relative-linked Drupal articles")


def load_content(path: Path | None = None) -> list[ContentItem]:
    """Read the snapshot's items (newest first) from ``content.toml`` or ``path``."""
    source = DEFAULT_CONTENT if path is None else path
    with source.open("rb") as handle:
        data = tomllib.load(handle)
    tables = data.get("item", [])
    if not isinstance(tables, list):
        raise ValueError(f"{source}: expected [[item]] tables")
    items = [_item_from_table(cast(Mapping[str, object], t), i) for i, t in enumerate(tables)]
    check_items(items)
    for newer, older in itertools.pairwise(items):
        if newer.published < older.published:
            raise ValueError(f"{source}: items must be newest first ({older.slug!r} is out)")
    return items


# --------------------------------------------------------------------------------------------
# Small formatting helpers


def _esc(text: str) -> str:
    """Escape text content; non-breaking spaces are written as ``&nbsp;`` like CKEditor."""
    return html.escape(text, quote=False).replace("\xa0", "&nbsp;")


def _attr(text: str) -> str:
    return html.escape(text, quote=True).replace("\xa0", "&nbsp;")


def cut_teaser(text: str, limit: int = FEATURED_CUT) -> str:
    """Cut text at a word boundary near ``limit`` characters and append ``...``."""
    flat = _flatten(text)
    if len(flat) <= limit:
        return flat
    cut = flat[: limit + 1]
    space = cut.rfind(" ")
    head = cut[:space] if space > limit // 2 else flat[:limit]
    return head.rstrip(" ,;:–-") + "..."


def _itok(style: str, image: str) -> str:
    """A Drupal-like image-style token: 8 url-safe base64 characters."""
    digest = hashlib.sha256(f"{style}:public://{image}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:8]


def _style_src(style: str, image: str) -> str:
    return f"{FILES_PREFIX}/styles/{style}/public/{image}?itok={_itok(style, image)}"


def _long_date(moment: datetime) -> str:
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


def _submitted(moment: datetime) -> str:
    weekday = _WEEKDAYS[moment.weekday()]
    month = _MONTHS[moment.month - 1]
    return f"Posted: {weekday}, {month} {moment.day}, {moment.year} - {moment:%H:%M}"


def _date_display(moment: datetime) -> str:
    weekday = _WEEKDAYS[moment.weekday()][:3]
    return f"{weekday}, {moment:%m/%d/%Y - %H:%M}"


def _utc_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_script(data: object) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("</", "<\\/")


def _node_ids(items: Sequence[ContentItem]) -> dict[str, int]:
    """Node ids counting up from the oldest item, as a CMS would have assigned them."""
    order = sorted(range(len(items)), key=lambda i: (items[i].published_utc, -i))
    return {items[i].path: FIRST_NODE_ID + rank for rank, i in enumerate(order)}


# --------------------------------------------------------------------------------------------
# Page chrome


_NAV: Final = (
    ("/", "Home"),
    ("/who-we-are", "Who We Are"),
    ("/what-we-do", "What We Do"),
    ("/news", "News"),
    ("/publications", "Publications"),
    ("/data-and-resources", "Data and Resources"),
    ("/contact-us", "Contact Us"),
)
_SOCIAL: Final = (
    ("https://www.facebook.com/IOMAlbania", "Facebook"),
    ("https://twitter.com/IOMAlbania", "X (Twitter)"),
    ("https://www.instagram.com/iomalbania/", "Instagram"),
    ("https://www.youtube.com/@IOMAlbania", "YouTube"),
    ("https://www.linkedin.com/company/iom-albania/", "LinkedIn"),
)


def _settings_blob(*, current_path: str, is_front: bool, language: str) -> str:
    """The ``drupalSettings`` JSON that Drupal 10 prints in every page's head."""
    settings = {
        "path": {
            "baseUrl": "/",
            "pathPrefix": "",
            "currentPath": current_path,
            "currentPathIsAdmin": False,
            "isFront": is_front,
            "currentLanguage": language,
        },
        "pluralDelimiter": "\u0003",
        "suppressDeprecationErrors": True,
        "ajaxPageState": {
            "libraries": "core/drupal,iom/global-styling,iom/social-share,system/base",
            "theme": "iom",
            "theme_token": None,
        },
        "user": {"uid": 0, "permissionsHash": "c1f5a2d7e0b94c3a8f6e2d1b7a9c4e5f"},
    }
    return (
        '<script type="application/json" data-drupal-selector="drupal-settings-json">'
        + _json_script(settings)
        + "</script>"
    )


def _header(active: str) -> str:
    items = []
    for href, label in _NAV:
        cls = "menu-item menu-item--active-trail" if href == active else "menu-item"
        items.append(f'<li class="{cls}"><a href="{href}">{_esc(label)}</a></li>')
    return (
        '<header role="banner" class="site-header"><div class="region region-header">'
        '<div class="block block-system-branding-block site-branding">'
        f'<a href="/" rel="home" class="site-logo"><img src="{LOGO_PATH}" alt="Home" '
        'width="180" height="60"></a><div class="site-name"><a href="/" rel="home">'
        'IOM Albania</a></div><div class="site-slogan">UN Migration</div></div></div>'
        '<nav role="navigation" aria-labelledby="block-iom-main-menu-menu" '
        'class="block block-menu navigation menu--main">'
        '<h2 class="visually-hidden" id="block-iom-main-menu-menu">Main navigation</h2>'
        f'<ul class="menu">{"".join(items)}</ul></nav></header>'
    )


def _footer() -> str:
    social = "".join(
        f'<li><a href="{href}" target="_blank" rel="noopener">{_esc(label)}</a></li>'
        for href, label in _SOCIAL
    )
    return (
        '<footer role="contentinfo" class="site-footer"><div class="region region-footer">'
        '<div class="block block-contact"><h2>Contact</h2>'
        '<p class="address">IOM Albania, Rruga Brigada e VIII, Villa 2/1, Tirana, Albania</p>'
        '<p><a href="mailto:iomtirana@iom.int">iomtirana@iom.int</a></p></div>'
        '<div class="block block-social"><h2>Follow us</h2>'
        f'<ul class="social-links">{social}</ul></div>'
        '<p class="copyright">© 2024 International Organization for Migration (IOM). '
        '<a href="/terms-use">Terms of use</a></p></div></footer>'
    )


def _page(
    *,
    title: str,
    main: str,
    current_path: str,
    head_extra: Sequence[str] = (),
    lang: str = "en",
    canonical: str | None = None,
    body_class: str = "",
    active_nav: str = "/news",
    is_front: bool = False,
    header: str | None = None,
) -> str:
    """Wrap a page's main region in the site's head, header and footer."""
    head = [
        '<meta charset="utf-8">',
        '<meta name="Generator" content="Drupal 10 (https://www.drupal.org)">',
        '<meta name="MobileOptimized" content="width">',
        '<meta name="HandheldFriendly" content="true">',
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">',
    ]
    if canonical is not None:
        head.append(f'<link rel="canonical" href="{_attr(canonical)}">')
    head.extend(head_extra)
    head.append(f"<title>{_esc(title)} | {SITE_NAME}</title>")
    head.append(f'<link rel="stylesheet" media="all" href="{CSS_PATH}">')
    head.append(_settings_blob(current_path=current_path, is_front=is_front, language=lang))
    head.append(f'<script src="{DRUPAL_JS_PATH}"></script>')
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{lang}" dir="ltr" prefix="og: https://ogp.me/ns#">\n'
        "<head>\n" + "\n".join(head) + "\n</head>\n"
        f'<body class="{body_class}">\n'
        '<a href="#main-content" class="visually-hidden focusable skip-link">'
        "Skip to main content</a>\n"
        '<div class="dialog-off-canvas-main-canvas" data-off-canvas-main-canvas>\n'
        + (header if header is not None else _header(active_nav))
        + "\n"
        + main
        + "\n"
        + _footer()
        + "\n</div>\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------------------------
# Listing pages


def _teaser_html(item: ContentItem) -> str:
    return "".join(f"<p>{_esc(p)}</p>" for p in item.teaser_paragraphs)


def _listing_row(item: ContentItem) -> str:
    href = _attr(item.listing_href)
    image = ""
    if item.image:
        image = (
            '<div class="field field--name-field-image">'
            f'<a href="{href}"><img src="{_attr(_style_src("teaser", item.image))}" '
            f'alt="{_attr(item.image_alt)}" width="360" height="240" loading="lazy"></a></div>'
        )
    return (
        '<div class="views-row"><article class="node node--type-press-release '
        f'node--view-mode-teaser">{image}'
        f'<h3 class="teaser-title"><a href="{href}" hreflang="{item.language}">'
        f"{_esc(item.title)}</a></h3>"
        '<div class="field field--name-body field--type-text-with-summary">'
        f"{_teaser_html(item)}</div></article></div>"
    )


def _featured_block(featured: Sequence[ContentItem], *, css: str, row_css: str, tag: str) -> str:
    rows = "\n".join(
        f'<div class="{row_css}"><{tag}><a href="{_attr(item.path)}">{_esc(item.title)}</a>'
        f"</{tag}><p>{_esc(cut_teaser(item.teaser))}</p></div>"
        for item in featured
    )
    return f'<div class="{css}">\n{rows}\n</div>'


def _pager(current: int, total: int, quantity: int = 9) -> str:
    """Drupal's full pager (``pager.html.twig``) for 0-based page ``current`` of ``total``."""
    if total <= 1:
        return ""
    middle = math.ceil(quantity / 2)
    first = current + 1 - middle + 1
    last = current + 1 + quantity - middle
    if last > total:
        first += total - last
        last = total
    if first <= 0:
        last += 1 - first
        first = 1
    last = min(last, total)
    parts: list[str] = []
    if current > 0:
        parts.append(
            '<li class="pager__item pager__item--first"><a href="?page=0" '
            'title="Go to first page">« First</a></li>'
        )
        parts.append(
            f'<li class="pager__item pager__item--previous"><a href="?page={current - 1}" '
            'title="Go to previous page" rel="prev">‹ Previous</a></li>'
        )
    if first > 1:
        parts.append('<li class="pager__item pager__item--ellipsis" role="presentation">…</li>')
    for number in range(first, last + 1):
        page = number - 1
        if page == current:
            parts.append(
                f'<li class="pager__item is-active"><a href="?page={page}" title="Current page" '
                f'aria-current="page">{number}</a></li>'
            )
        else:
            parts.append(
                f'<li class="pager__item"><a href="?page={page}" title="Go to page {number}">'
                f"{number}</a></li>"
            )
    if last < total:
        parts.append('<li class="pager__item pager__item--ellipsis" role="presentation">…</li>')
    if current < total - 1:
        parts.append(
            f'<li class="pager__item pager__item--next"><a href="?page={current + 1}" '
            'title="Go to next page" rel="next">Next ›</a></li>'
        )
        parts.append(
            f'<li class="pager__item pager__item--last"><a href="?page={total - 1}" '
            'title="Go to last page" rel="last">Last »</a></li>'
        )
    return (
        '<nav class="pager" role="navigation" aria-labelledby="pagination-heading">'
        '<h4 id="pagination-heading" class="visually-hidden">Pagination</h4>'
        '<ul class="pager__items js-pager__items">\n' + "\n".join(parts) + "\n</ul></nav>"
    )


def _listing_page(
    items: Sequence[ContentItem], featured: Sequence[ContentItem], page: int, total: int
) -> str:
    canonical = f"{ORIGIN}/news" if page == 0 else f"{ORIGIN}/news?page={page}"
    block = ""
    if page == 0 and featured:
        block = _featured_block(
            featured, css="block-featured-news", row_css="featured-item", tag="h2"
        )
    rows = "\n".join(_listing_row(item) for item in items)
    main = (
        '<main role="main" id="main-content">\n'
        f'<h1 class="page-title">{LISTING_TITLE}</h1>\n{block}\n'
        '<div class="view view-news view-id-news view-display-id-page_1">\n'
        f'<div class="view-content">\n{rows}\n</div>\n{_pager(page, total)}\n</div></main>'
    )
    head = [
        f'<meta name="description" content="{_attr(LISTING_TITLE)} from IOM Albania.">',
        f'<meta property="og:title" content="{_attr(LISTING_TITLE)}">',
        f'<meta property="og:url" content="{_attr(canonical)}">',
    ]
    return _page(
        title=LISTING_TITLE,
        main=main,
        current_path="news",
        head_extra=head,
        canonical=canonical,
        body_class="path-news page-view-news",
    )


# --------------------------------------------------------------------------------------------
# Article pages


def _body_html(item: ContentItem) -> str:
    parts: list[str] = []
    for para in item.body_paragraphs:
        figure = _FIGURE.fullmatch(para)
        if figure:
            src = f"{FILES_PREFIX}/{figure['src']}"
            caption = figure["caption"].strip()
            parts.append(
                f'<figure role="group"><img src="{_attr(src)}" alt="{_attr(caption)}">'
                f"<figcaption>{_esc(caption)}</figcaption></figure>"
            )
        elif para.lstrip().startswith("<"):
            parts.append(para)
        else:
            parts.append(f"<p>{_esc(_flatten_lines(para))}</p>")
    return "\n".join(parts)


def _flatten_lines(para: str) -> str:
    """Join a paragraph hard-wrapped over several lines; one-line paragraphs stay as written."""
    if "\n" not in para:
        return para
    return " ".join(line.strip(" \t") for line in para.split("\n"))


def _related(item: ContentItem, items: Sequence[ContentItem], index: int) -> list[ContentItem]:
    others = [items[(index + k) % len(items)] for k in range(1, len(items))]
    return [o for o in others if o.layout == "drupal" and o.slug != item.slug][:3]


def _share_links(item: ContentItem) -> str:
    url = quote(item.url, safe="")
    text = quote(item.title, safe="")
    return (
        '<div class="social-share"><span class="social-share__label">Share this:</span> '
        f'<a href="https://www.facebook.com/sharer/sharer.php?u={url}" target="_blank" '
        'rel="noopener">Share</a> '
        f'<a href="https://twitter.com/intent/tweet?url={url}&amp;text={text}" target="_blank" '
        'rel="noopener">Tweet</a> '
        f'<a href="https://www.linkedin.com/sharing/share-offsite/?url={url}" target="_blank" '
        'rel="noopener">LinkedIn</a> '
        f'<a href="mailto:?subject={text}&amp;body={url}">Email</a></div>'
    )


def _article_page(item: ContentItem, related: Sequence[ContentItem], node_id: int) -> str:
    local = item.published
    head = [
        f'<meta name="description" content="{_attr(cut_teaser(item.teaser, 160))}">',
        f'<link rel="shortlink" href="{ORIGIN}/node/{node_id}">',
        f'<meta property="og:site_name" content="{SITE_NAME}">',
        '<meta property="og:type" content="article">',
        f'<meta property="og:url" content="{_attr(item.url)}">',
        f'<meta property="og:title" content="{_attr(item.title)}">',
    ]
    if item.image:
        og_image = f"{ORIGIN}{FILES_PREFIX}/{item.image}"
        head.append(f'<meta property="og:image" content="{_attr(og_image)}">')
    if item.date_markup == "meta":
        modified = _to_tirane(item.published + timedelta(days=2, hours=3, minutes=17))
        head.append(f'<meta property="article:published_time" content="{local.isoformat()}">')
        head.append(f'<meta property="article:modified_time" content="{modified.isoformat()}">')
    if item.date_markup == "jsonld":
        graph = {
            "@context": "https://schema.org",
            "@graph": [
                {
                    "@type": "NewsArticle",
                    "headline": item.title,
                    "datePublished": local.isoformat(),
                    "publisher": {"@type": "Organization", "name": SITE_NAME},
                }
            ],
        }
        head.append(f'<script type="application/ld+json">{_json_script(graph)}</script>')

    date = ""
    if item.date_markup == "time":
        date = (
            '<div class="field field--name-field-published-date">'
            f'<time datetime="{_utc_z(local)}">{_long_date(local)}</time></div>'
        )
    elif item.date_markup == "submitted":
        date = f'<div class="submitted">{_submitted(local)}</div>'
    elif item.date_markup == "date_display":
        date = f'<span class="date-display-single">{_date_display(local)}</span>'
    image = ""
    if item.image:
        image = (
            '<div class="field field--name-field-image">'
            f'<img src="{_attr(_style_src("large", item.image))}" alt="{_attr(item.image_alt)}" '
            'width="1200" height="800"></div>'
        )
    type_slug = item.type.lower()
    related_rows = "\n".join(
        f'<li><time datetime="{_utc_z(r.published)}">{_long_date(r.published)}</time> '
        f'<a href="{_attr(r.path)}" hreflang="{r.language}">{_esc(r.title)}</a></li>'
        for r in related
    )
    main = (
        '<main role="main" id="main-content"><div class="region region-content">\n'
        f'<article data-history-node-id="{node_id}" class="node node--type-press-release '
        'node--view-mode-full">\n'
        '<div class="node__meta"><div class="field field--name-field-content-type">News</div>'
        '<div class="field field--name-field-press-release-type">'
        f'<a href="/press-release-type/{type_slug}">{item.type}</a></div></div>'
        f'<h1 class="page-title"><span class="field field--name-title">{_esc(item.title)}</span>'
        f"</h1>\n{date}{image}\n"
        '<div class="clearfix text-formatted field field--name-body '
        f'field--type-text-with-summary">\n{_body_html(item)}\n</div>'
        f"\n{_share_links(item)}\n</article></div>\n"
        '<aside class="region region-sidebar" role="complementary">'
        '<div class="block block-related-news"><h2>Related news</h2>'
        f'<ul class="related-news">\n{related_rows}\n</ul></div></aside></main>'
    )
    return _page(
        title=item.title,
        main=main,
        current_path=f"node/{node_id}",
        head_extra=head,
        lang=item.language,
        canonical=item.url,
        body_class="path-node page-node-type-press-release",
    )


def _legacy_page(item: ContentItem) -> str:
    """An article as the pre-2016 CMS showed it: section heading, no canonical, no date."""
    header = (
        '<div id="header"><div class="logo"><a href="/"><img src="'
        f'{LOGO_PATH}" alt="IOM" width="180" height="60"></a></div>'
        '<div class="site-title">International Organization for Migration</div>'
        '<ul class="menu" id="mainmenu"><li><a href="/index.php/en/">Home</a></li>'
        '<li class="active"><a href="/index.php/en/what-we-do">What We Do</a></li>'
        '<li><a href="/index.php/en/news">News</a></li>'
        '<li><a href="/index.php/en/contact">Contact</a></li></ul></div>'
    )
    body = "\n".join(f"<p>{_esc(_flatten_lines(p))}</p>" for p in item.body_paragraphs)
    main = (
        '<div id="main-content"><div id="content">'
        '<div class="componentheading">What We Do</div>'
        '<div class="moduletable module-tvspot"><h3>Latest TV Spot</h3>'
        '<a href="https://www.youtube.com/@IOMAlbania" target="_blank">'
        f'<img src="{LEGACY_TV_SPOT}" alt="" width="240" height="160"></a></div>'
        '<div class="item-page">'
        f'<h2 class="contentheading">{_esc(item.title)}</h2>'
        f'<div class="article-body">{body}</div></div></div></div>'
    )
    return _page(
        title=item.title,
        main=main,
        current_path=item.path.lstrip("/"),
        lang=item.language,
        canonical=None,
        body_class="legacy-page",
        header=header,
    )


# --------------------------------------------------------------------------------------------
# Front page


def _front_page(featured: Sequence[ContentItem]) -> str:
    latest = _featured_block(featured, css="view-content", row_css="latest-news-item", tag="h3")
    main = (
        '<main role="main" id="main-content">'
        '<div class="block block-hero"><h1 class="visually-hidden">IOM Albania</h1>'
        "<p>IOM has worked in Albania since 1992, supporting the Government and the people of "
        "Albania to manage migration in a safe, orderly and humane way.</p></div>"
        f'<div class="block block-latest-news"><h2>Latest News</h2>{latest}'
        '<div class="more-link"><a href="/news">More news</a></div></div>'
        '<div class="block block-what-we-do"><h2>What We Do</h2><ul>'
        '<li><a href="/migration-governance">Migration Governance</a></li>'
        '<li><a href="/diaspora-engagement">Diaspora Engagement</a></li>'
        '<li><a href="/counter-trafficking">Counter-Trafficking</a></li>'
        '<li><a href="/return-and-reintegration">Return and Reintegration</a></li>'
        '<li><a href="/border-management">Immigration and Border Management</a></li>'
        "</ul></div>"
        '<div class="block block-publications"><h2>Publications</h2>'
        f'<p><a href="{FRONT_PUBLICATION}">IOM Albania Country Strategy 2023–2026 (PDF)</a>'
        "</p></div></main>"
    )
    head = [
        '<meta name="description" content="IOM, the UN Migration Agency, in Albania.">',
        f'<meta property="og:url" content="{ORIGIN}/">',
        f'<meta property="og:title" content="{SITE_NAME}">',
    ]
    return _page(
        title="Home",
        main=main,
        current_path="node/1",
        head_extra=head,
        canonical=f"{ORIGIN}/",
        body_class="path-frontpage",
        active_nav="/",
        is_front=True,
    )


# --------------------------------------------------------------------------------------------
# Static files: images, PDFs, robots.txt, CSS, JS


def png_bytes(width: int, height: int, name: str) -> bytes:
    """A valid RGB PNG: a vertical two-colour gradient with colours derived from ``name``."""
    digest = hashlib.sha256(name.encode()).digest()
    top = [48 + b % 160 for b in digest[0:3]]
    bottom = [24 + b % 120 for b in digest[3:6]]
    rows = bytearray()
    for y in range(height):
        t = y / max(1, height - 1)
        colour = bytes(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        rows += b"\x00" + colour * width

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def pdf_bytes(title: str) -> bytes:
    """A valid one-page PDF showing ``title`` (ASCII only), with a correct xref table."""
    safe = title.encode("ascii", "replace").decode("ascii")
    safe = safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = (
        f"BT /F1 16 Tf 56 770 Td ({safe}) Tj 0 -28 Td /F1 11 Tf "
        "(IOM Albania - offline snapshot placeholder document) Tj ET"
    ).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


ROBOTS_TXT: Final = """\
#
# robots.txt
#
# This file is to prevent the crawling and indexing of certain parts
# of your site by web crawlers and spiders run by sites like Yahoo!
# and Google. By telling these "robots" where not to go on your site,
# you save bandwidth and server resources.
#
# This file will be ignored unless it is at the root of your host:
# Used:    http://example.com/robots.txt
# Ignored: http://example.com/site/robots.txt
#
# For more information about the robots.txt standard, see:
# http://www.robotstxt.org/robotstxt.html

User-agent: *
# CSS, JS, Images
Allow: /core/*.css$
Allow: /core/*.css?
Allow: /core/*.js$
Allow: /core/*.js?
Allow: /core/*.gif
Allow: /core/*.jpg
Allow: /core/*.jpeg
Allow: /core/*.png
Allow: /core/*.svg
Allow: /profiles/*.css$
Allow: /profiles/*.css?
Allow: /profiles/*.js$
Allow: /profiles/*.js?
Allow: /profiles/*.gif
Allow: /profiles/*.jpg
Allow: /profiles/*.jpeg
Allow: /profiles/*.png
Allow: /profiles/*.svg
# Directories
Disallow: /core/
Disallow: /profiles/
# Files
Disallow: /README.md
Disallow: /composer/Metapackage/README.txt
Disallow: /composer/Plugin/ProjectMessage/README.md
Disallow: /composer/Plugin/Scaffold/README.md
Disallow: /composer/Plugin/VendorHardening/README.txt
Disallow: /composer/Template/README.txt
Disallow: /modules/README.txt
Disallow: /sites/README.txt
Disallow: /themes/README.txt
Disallow: /web.config
# Paths (clean URLs)
Disallow: /admin/
Disallow: /comment/reply/
Disallow: /filter/tips
Disallow: /node/add/
Disallow: /search/
Disallow: /user/register
Disallow: /user/password
Disallow: /user/login
Disallow: /user/logout
Disallow: /media/oembed
Disallow: /*/media/oembed
# Paths (no clean URLs)
Disallow: /index.php/admin/
Disallow: /index.php/comment/reply/
Disallow: /index.php/filter/tips
Disallow: /index.php/node/add/
Disallow: /index.php/search/
Disallow: /index.php/user/password
Disallow: /index.php/user/register
Disallow: /index.php/user/login
Disallow: /index.php/user/logout
Disallow: /index.php/media/oembed
Disallow: /index.php/*/media/oembed
"""

_STYLE_CSS: Final = """\
body{margin:0;font-family:"Open Sans",Arial,sans-serif;color:#222;line-height:1.5}
a{color:#0033a0}
.visually-hidden{position:absolute!important;clip:rect(1px,1px,1px,1px);overflow:hidden;\
height:1px;width:1px}
.site-header,.site-footer,#header{background:#0033a0;color:#fff;padding:1rem 2rem}
.site-header a,.site-footer a,#header a{color:#fff}
.menu,.social-links{list-style:none;display:flex;gap:1rem;padding:0}
main,#main-content{max-width:70rem;margin:0 auto;padding:1rem 2rem}
.views-row{border-bottom:1px solid #ddd;padding:1rem 0;overflow:hidden}
.views-row img{float:left;margin-right:1rem;width:180px;height:120px}
.block-featured-news,.block-latest-news{background:#eef3fb;padding:1rem}
.pager__items{list-style:none;display:flex;gap:.5rem;padding:0}
.pager__item.is-active a{font-weight:bold}
.field--name-field-image img,figure img{max-width:100%;height:auto}
.region-sidebar{border-top:2px solid #0033a0;margin-top:2rem}
"""

_DRUPAL_JS: Final = """\
/* Drupal core behaviours (trimmed copy for the offline snapshot). */
window.Drupal = window.Drupal || { behaviors: {} };
(function (Drupal) {
  "use strict";
  Drupal.attachBehaviors = function (context) {
    Object.keys(Drupal.behaviors).forEach(function (name) {
      var behavior = Drupal.behaviors[name];
      if (typeof behavior.attach === "function") { behavior.attach(context || document); }
    });
  };
  document.addEventListener("DOMContentLoaded", function () { Drupal.attachBehaviors(); });
})(window.Drupal);
"""

# Original upload, and the two image styles the theme uses (same colours, 3:2 like the markup).
_IMAGE_SIZES: Final = {
    "": (96, 64),
    "styles/teaser/public/": (72, 48),
    "styles/large/public/": (120, 80),
}


def _linked_files(items: Iterable[ContentItem]) -> tuple[set[str], set[str]]:
    """(images, documents) under the files folder, as paths relative to it."""
    images: set[str] = set()
    documents: set[str] = set()
    prefix = FILES_PREFIX + "/"
    for item in items:
        if item.image:
            images.add(item.image)
        images.update(src for src, _ in item.figures())
        for para in item.body_paragraphs:
            if not para.lstrip().startswith("<"):
                continue
            for match in _LINKED_FILE.finditer(para):
                rel = match["path"][len(prefix) :]
                if rel.endswith(".png"):
                    images.add(rel)
                elif rel.endswith(".pdf"):
                    documents.add(rel)
                else:
                    raise ValueError(f"item {item.slug!r}: cannot make a placeholder for {rel}")
    return images, documents


def _check_news_links(items: Sequence[ContentItem]) -> None:
    slugs = {item.slug for item in items if item.layout == "drupal"}
    for item in items:
        for para in item.body_paragraphs:
            for match in _NEWS_LINK.finditer(para):
                if match["slug"] not in slugs:
                    raise ValueError(f"item {item.slug!r} links a missing article {match[0]!r}")


def _document_title(rel: str) -> str:
    stem = rel.rsplit("/", 1)[-1].removesuffix(".pdf")
    return stem.replace("-", " ").replace("_", " ").capitalize()


class _Writer:
    """Writes files below a folder, creating parents, with fixed bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def write(self, rel: str, data: bytes | str) -> None:
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        self.count += 1


# --------------------------------------------------------------------------------------------
# Building


def build_site(items: Sequence[ContentItem], out_dir: Path, *, per_page: int = 10) -> None:
    """Write the static site for ``items`` (newest first after sorting) into ``out_dir``.

    Files written: ``index.html``, ``news/index.html`` and ``news/page-N.html``, one
    ``news/<slug>.html`` per Drupal article, ``<legacy_id>-<slug>.html`` at the root for legacy
    items, ``robots.txt``, and the images, PDFs, CSS and JS the pages reference. Existing
    files in ``out_dir`` are overwritten but not removed.
    """
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    check_items(items)
    _check_news_links(items)
    ordered = sorted(items, key=lambda item: item.published_utc, reverse=True)
    featured = [item for item in ordered if item.featured]
    node_ids = _node_ids(ordered)
    out = _Writer(out_dir)

    total = max(1, math.ceil(len(ordered) / per_page))
    for page in range(total):
        chunk = ordered[page * per_page : (page + 1) * per_page]
        name = "news/index.html" if page == 0 else f"news/page-{page}.html"
        out.write(name, _listing_page(chunk, featured, page, total))

    for index, item in enumerate(ordered):
        if item.layout == "legacy":
            out.write(item.file_name, _legacy_page(item))
        else:
            related = _related(item, ordered, index)
            out.write(item.file_name, _article_page(item, related, node_ids[item.path]))

    out.write("index.html", _front_page(featured))
    out.write("robots.txt", ROBOTS_TXT)
    out.write(CSS_PATH.lstrip("/"), _STYLE_CSS)
    out.write(DRUPAL_JS_PATH.lstrip("/"), _DRUPAL_JS)
    out.write(LOGO_PATH.lstrip("/"), png_bytes(180, 60, "iom-logo"))
    out.write(LEGACY_TV_SPOT.lstrip("/"), png_bytes(120, 80, LEGACY_TV_SPOT))

    images, documents = _linked_files(ordered)
    documents.add(FRONT_PUBLICATION[len(FILES_PREFIX) + 1 :])
    files = FILES_PREFIX.lstrip("/")
    for image in sorted(images):
        for style, (width, height) in _IMAGE_SIZES.items():
            out.write(f"{files}/{style}{image}", png_bytes(width, height, image))
    for document in sorted(documents):
        out.write(f"{files}/{document}", pdf_bytes(_document_title(document)))


# --------------------------------------------------------------------------------------------
# Synthetic items for benchmarks


_SYN_ACTIONS: Final = (
    "IOM supports",
    "Training on",
    "Workshop on",
    "Community dialogue on",
    "New partnership for",
    "Consultation on",
    "Progress review of",
    "Local authorities discuss",
    "Young people engage in",
    "Field visit on",
)
_SYN_SUBJECTS: Final = (
    ("return and reintegration", "returning migrants and their families"),
    ("counter-trafficking", "front-line staff who identify victims of trafficking"),
    ("border management", "officers of the Border and Migration Police"),
    ("diaspora engagement", "diaspora associations and professionals"),
    ("labour migration", "jobseekers and employers"),
    ("remittances and savings", "families receiving remittances"),
    ("migration governance", "national and local institutions"),
    ("youth employment", "young jobseekers"),
    ("migration data", "statistical officers and researchers"),
    ("climate and migration", "rural communities exposed to floods and drought"),
    ("mixed migration", "migrants and asylum seekers in transit"),
    ("safe migration information", "secondary-school students and teachers"),
)
_SYN_PLACES: Final = (
    "Tirana",
    "Durrës",
    "Shkodër",
    "Korçë",
    "Elbasan",
    "Vlorë",
    "Fier",
    "Berat",
    "Kukës",
    "Lezhë",
    "Dibër",
    "Gjirokastër",
    "Kapshtica",
    "Kakavija",
    "Morina",
    "Hani i Hotit",
)
_SYN_PARTNERS: Final = (
    "the Ministry of Interior",
    "the State Agency for Migration",
    "the National Agency for Employment and Skills",
    "the National Diaspora Agency",
    "the municipality",
    "local civil society organizations",
    "the Albanian Border and Migration Police",
    "the Institute of Statistics",
)
_SYN_DONORS: Final = (
    "the European Union",
    "the IOM Development Fund",
    "the Italian Agency for Development Cooperation (AICS)",
    "the Government of Switzerland",
    "the United Kingdom",
)
_SYN_PARAGRAPHS: Final = (
    "Participants reviewed the lessons learned so far and agreed on next steps, including "
    "joint follow-up visits and the exchange of data between institutions.",
    "The activity is part of a project funded by {donor}, which supports Albania in managing "
    "migration in a safe, orderly and regular way.",
    "Representatives of {partner} stressed the importance of coordination between central and "
    "local institutions, so that services reach {people} where they live.",
    "Since the start of the project, more than {number} people have received counselling, "
    "referrals or direct assistance through the services supported by IOM.",
    "IOM will continue to work with {partner} and with civil society to turn the "
    "recommendations of the meeting into concrete measures in the coming months.",
    "A short survey carried out among participants showed that most of them would like further "
    "sessions on practical case management and on referral procedures.",
    "The meeting also served to present information materials in Albanian and English, which "
    "will be distributed through municipal offices, schools and community centres.",
)
_SYN_SQ_SUBJECTS: Final = (
    "riintegrimin e migrantëve të kthyer",
    "luftën kundër trafikimit të qenieve njerëzore",
    "angazhimin e diasporës",
    "punësimin e të rinjve",
    "qeverisjen e migracionit",
)
_SYN_SQ_PLACES: Final = (
    "Tiranë",
    "Durrës",
    "Shkodër",
    "Korçë",
    "Elbasan",
    "Vlorë",
    "Fier",
    "Berat",
    "Kukës",
    "Lezhë",
)
_SYN_SQ_PARAGRAPHS: Final = (
    "Aktiviteti u zhvillua në bashkëpunim me bashkinë dhe me institucionet vendore, të cilat "
    "ofrojnë shërbime për qytetarët dhe familjet e tyre.",
    "Pjesëmarrësit diskutuan sfidat kryesore dhe mundësitë për një bashkëpunim më të ngushtë "
    "ndërmjet institucioneve qendrore dhe vendore.",
    "IOM mbetet e përkushtuar të mbështesë institucionet shqiptare në menaxhimin e migracionit "
    "në mënyrë të sigurt, të rregullt dhe dinjitoze.",
)
_SYN_MARKUPS: Final[tuple[tuple[DateMarkup, int], ...]] = (
    ("time", 60),
    ("meta", 10),
    ("jsonld", 10),
    ("submitted", 7),
    ("date_display", 7),
    ("none", 6),
)


def _dateline(rng: random.Random, place: str, local: datetime) -> str:
    """A dateline in one of the site's styles for a local date."""
    month = _MONTHS[local.month - 1]
    styles = (
        f"{place} {local.day} {month} {local.year}: ",
        f"{place}, {month} {local.day}, {local.year}: ",
        f"{local.day} {month}, {place}, Albania – ",
        f"Albania, {local.day} {month} {local.year} – ",
    )
    return rng.choice(styles)


def _unique_titles(rng: random.Random, n: int) -> list[tuple[str, int, int, int]]:
    """``n`` distinct (title, action, subject, place) combinations in random order."""
    combos = [
        (a, s, p)
        for a in range(len(_SYN_ACTIONS))
        for s in range(len(_SYN_SUBJECTS))
        for p in range(len(_SYN_PLACES))
    ]
    rng.shuffle(combos)
    chosen: list[tuple[str, int, int, int]] = []
    for i in range(n):
        a, s, p = combos[i % len(combos)]
        title = f"{_SYN_ACTIONS[a]} {_SYN_SUBJECTS[s][0]} in {_SYN_PLACES[p]}"
        if i >= len(combos):
            title += f" – phase {i // len(combos) + 1}"
        chosen.append((title, a, s, p))
    return chosen


def synthetic_items(
    n: int, *, seed: int = 0, years: float = 15.0, undated: float = 0.0
) -> list[ContentItem]:
    """Make ``n`` varied, realistic-looking items, newest first, for benchmarks.

    The result is deterministic for a given ``(n, seed)``: titles and slugs are unique, dates
    go back in time from June 2024 a few days apart (closer together when ``n`` items would
    otherwise reach back more than ``years``: a 50,000-item site spans 15 years, not
    400), the date markup is mixed (items with
    ``"none"`` carry a dateline), about four in five have an image, a few are in Albanian or
    linked through ``/index.php/`` or ``http://``, and three of the ten newest are featured.

    ``undated`` is the share of English items left with no date anywhere (no date markup, no
    dateline), as a real archive has a few: drawn from a generator of their own, so that with
    the default of none every other choice, and so the site, stays byte for byte the same.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    rng = random.Random(seed)
    undated_rng = random.Random(f"undated-{seed}")
    markups = [m for m, _ in _SYN_MARKUPS]
    weights = [w for _, w in _SYN_MARKUPS]
    featured_at = set(rng.sample(range(min(n, 10)), k=min(n, 3)))
    moment = datetime(2024, 6, 28, 8, 30, tzinfo=UTC)
    low, high = 18 * 60, 5 * 24 * 60  # minutes between two items
    span = years * 365.25 * 24 * 60
    mean = span / n if n else span
    if (low + high) / 2 > mean:
        high = int(2 * mean) - low
        if high < low:  # closer than 18 hours: anywhere from half to one and a half times
            low, high = max(int(mean / 2), 1), max(int(mean * 1.5), 1)
    used: dict[str, int] = {}
    items: list[ContentItem] = []
    for index, (title, _, subject, place) in enumerate(_unique_titles(rng, n)):
        moment -= timedelta(minutes=rng.randint(low, high))
        local = _to_tirane(moment.replace(second=0))
        markup = rng.choices(markups, weights)[0]
        language: Language = "sq" if rng.random() < 0.03 else "en"
        if language == "sq":
            sq_subject = rng.choice(_SYN_SQ_SUBJECTS)
            sq_place = rng.choice(_SYN_SQ_PLACES)
            title = f"IOM mbështet {sq_subject} në {sq_place} ({index + 1})"
            lead = (
                f"{sq_place}, {local.day}.{local.month:02d}.{local.year} – Organizata "
                f"Ndërkombëtare për Migracionin (IOM) mbështeti {sq_subject} në {sq_place}, "
                "në bashkëpunim me partnerët vendorë."
            )
            rest = list(_SYN_SQ_PARAGRAPHS)
        else:
            topic, people = _SYN_SUBJECTS[subject]
            partner = rng.choice(_SYN_PARTNERS)
            dated = markup == "none" or rng.random() < 0.3
            dateline = _dateline(rng, _SYN_PLACES[place], local) if dated else ""
            if undated and undated_rng.random() < undated:
                markup, dateline = "none", ""
            participants = rng.randint(12, 160)
            lead = (
                f"{dateline}IOM Albania, together with {partner}, brought together "
                f"{participants} participants in {_SYN_PLACES[place]} to work on {topic}, "
                f"with a focus on {people}."
            )
            picks = rng.sample(_SYN_PARAGRAPHS, k=rng.randint(2, 4))
            rest = [
                p.format(
                    donor=rng.choice(_SYN_DONORS),
                    partner=partner,
                    people=people,
                    number=f"{rng.randrange(200, 5000, 50):,}",
                )
                for p in picks
            ]
        base = slugify(title)
        slug = base
        if base in used:
            slug = f"{base}-{used[base]}"
            used[base] += 1
        else:
            used[base] = 0
        image = ""
        if rng.random() < 0.8:
            image = f"{local:%Y-%m}/{slug}.png"
            if rng.random() < 0.25:
                rest.insert(1, f"[figure {image} | {title}: participants during the activity]")
        link: LinkStyle = "relative"
        roll = rng.random()
        if index not in featured_at and roll < 0.03:
            link = "index_php"
        elif index not in featured_at and roll < 0.05:
            link = "http_absolute"
        items.append(
            ContentItem(
                slug=slug,
                title=title,
                type="Global" if rng.random() < 0.15 else "Local",
                language=language,
                published=local,
                date_markup=markup,
                link=link,
                layout="drupal",
                featured=index in featured_at,
                teaser=lead,
                image=image,
                image_alt=f"{title}." if image else "",
                body="\n\n".join([lead, *rest]),
            )
        )
    return items


# --------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate the bundled site folder from ``content.toml``, removing stale files."""
    parser = argparse.ArgumentParser(
        prog="python -m dev.sitegen",
        description="Regenerate the offline snapshot of the IOM Albania news site.",
    )
    parser.add_argument("--content", type=Path, default=DEFAULT_CONTENT, help="content file (TOML)")
    parser.add_argument("--out", type=Path, default=DEFAULT_SITE, help="site folder to replace")
    parser.add_argument(
        "--per-page", type=int, default=10, help="items per listing page (default 10)"
    )
    args = parser.parse_args(argv)
    items = load_content(args.content)
    out: Path = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target, then swap, so a failed build leaves the old site in place.
    staging = Path(tempfile.mkdtemp(prefix=".site-", dir=out.parent))
    try:
        build_site(items, staging, per_page=args.per_page)
        staging.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pages = max(1, math.ceil(len(items) / args.per_page))
    files = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"Wrote {files} files for {len(items)} items ({pages} listing pages) to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
