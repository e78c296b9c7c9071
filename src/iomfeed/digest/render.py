"""Render a digest for one language: the subject, the HTML part (CSS inlined once) and the
plain-text part, with space-free tokens where each subscriber's values go.

Pure: a :class:`DigestContent` and the config in, a :class:`RenderedDigest` out. Nothing is
sent or stored here and no subscriber is seen: ``message.py`` fills :data:`TOKENS` for each
one (HTML-escaped in the HTML part), so the costly work (Jinja2, premailer) runs once per
digest and language, not once per subscriber.

Templates come from the package's ``templates/digest/`` folder (``iomfeed.templates``); the
folder named by ``digest.templates`` is searched first, so an operator can replace any
template or ``digest.css`` by putting a file of the same name in it, and some of a
language's words with a ``chrome.toml`` there (a ``[code]`` table per language, merged key
by key over the language file's ``[digest]`` table, see :mod:`iomfeed.languages`).

Two limits shape the HTML: Gmail clips an HTML part over about 102 KB, hiding the footer and
its unsubscribe link, so stories are dropped (and counted in "N more") until the part fits
``digest.max_bytes``; and the messages go out with 8bit transfer encoding, whose lines must
stay under 998 bytes, so long lines are broken where a break cannot change the rendering
(:mod:`.lines`). Both are measured with every token standing for a value of
:data:`TOKEN_STAND_IN` bytes.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import languages
from ..errors import ConfigError
from ..languages import Chrome, Language
from ..output_records import DigestContent, DigestEntry, RenderedDigest
from ..template_cache import template_cache
from .headers import clean_header_text
from .lines import (
    ADDRESS,
    GREETING,
    MAX_LINE_BYTES,
    PREFERENCES_URL,
    TOKEN_STAND_IN,
    TOKENS,
    UNSUBSCRIBE_URL,
    fold_html,
    fold_text,
    measure,
    pack_lines,
)
from .pages import WebCopy, local_day, page_url
from .segments import category_name
from .select import shorten
from .stories import (
    Group,
    Story,
    ascii_url,
    build_groups,
    clean_text,
    format_date,
    group_entries,
    usable_url,
)

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from jinja2 import BytecodeCache, Environment

    from ..config import Config

__all__ = [
    "ADDRESS",
    "GREETING",
    "MAX_LINE_BYTES",
    "PREFERENCES_URL",
    "TOKENS",
    "TOKEN_STAND_IN",
    "UNSUBSCRIBE_URL",
    "Chrome",
    "Group",
    "Story",
    "ascii_url",
    "clean_text",
    "fold_html",
    "fold_text",
    "format_date",
    "group_entries",
    "load_chrome",
    "measure",
    "pack_lines",
    "render_digest",
    "usable_url",
]

log = logging.getLogger(__name__)

TEXT_WIDTH = 72
IMAGE_WIDTH = 552  # the content column: 600 px less 24 px padding on each side
THUMB_WIDTH = 168
PREHEADER_TITLES = 3
PREHEADER_LIMIT = 150
#: Invisible characters after the preheader, so mail programs do not fill the inbox
#: preview with the greeting and the first lines of the message.
PREHEADER_FILL = ("\u200c\u00a0" * 8 + " ") * 6
TEMPLATE_FOLDER = "digest"
CHROME_FILE = "chrome.toml"
CSS_FILE = "digest.css"
HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"


# --------------------------------------------------------------------------- the words


def own_folder() -> Traversable:
    """The package's own digest templates."""
    import importlib.resources

    return importlib.resources.files("iomfeed.templates") / TEMPLATE_FOLDER


def load_chrome(
    language: str,
    folder: Path | None = None,
    *,
    languages_dir: Path | None = None,
    codes: Sequence[str] = languages.BUILT_IN,
) -> Chrome:
    """The words for ``language``: its language file's ``[digest]`` table (found in
    ``languages_dir`` or the package), with the values of ``folder/chrome.toml`` (when there
    is one) replacing them key by key; that file's tables are named by ``codes``."""
    own = languages.load(language, languages_dir)
    path = folder / CHROME_FILE if folder is not None else None
    if path is None or not path.is_file():
        return own.chrome
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    override = languages.read_toml(text, str(path))
    for name, table in override.items():
        if name not in codes:
            raise ConfigError(
                f"{path}: [{name}]: unknown table (expected one of {', '.join(codes)})"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {name}: expected a table")
    values = {key: getattr(own.chrome, key) for key in languages.CHROME_KEYS}
    values.update(override.get(language, {}))
    return languages.chrome(values, f"{path}: [{language}]", language)


def fill(template: str, **values: str) -> str:
    """``template`` with each ``{key}`` replaced (plain replacement: other braces stay)."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


# --------------------------------------------------------------------------- templates


def _autoescape(name: str | None) -> bool:
    """Escape HTML everywhere but in the plain-text templates."""
    return not (name or "").endswith(".txt.j2")


def wrap_text(text: str, width: int = TEXT_WIDTH) -> str:
    """A paragraph of plain text wrapped at ``width`` columns (long words, such as links,
    are not cut)."""
    # Its input is already clean (or the chrome's own text, tokens included).
    return textwrap.fill(
        clean_text(str(text), scraped=False),
        width=width,
        break_long_words=False,
        break_on_hyphens=False,
    )


@lru_cache(maxsize=8)
def environment(folder: str = "", cache: BytecodeCache | None = None) -> Environment:
    """The digest's Jinja2 environment: the override ``folder`` (when given) searched before
    the package's own templates; HTML autoescaped, undefined names an error; compiled
    templates kept in ``cache`` (:mod:`iomfeed.template_cache`). Cached per folder."""
    from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

    loaders = [FileSystemLoader(folder)] if folder else []
    loaders.append(FileSystemLoader(str(own_folder())))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=cache,
    )
    env.filters["wrap"] = wrap_text
    return env


def _environment(config: Config) -> Environment:
    folder = config.templates_path
    if folder is not None and not folder.is_dir():
        raise ConfigError(
            f"digest.templates: {folder} is not a folder (it holds templates"
            ' that replace the built-in ones; "" for none)'
        )
    return environment(str(folder) if folder is not None else "", template_cache(config, "digest"))


def _source(env: Environment, name: str) -> str:
    from jinja2 import TemplateError

    assert env.loader is not None
    try:
        return env.loader.get_source(env, name)[0]
    except TemplateError as exc:  # pragma: no cover - the package always has it
        raise ConfigError(f"digest template {name}: {exc}") from exc


def _render(env: Environment, name: str, context: dict[str, Any]) -> str:
    from jinja2 import TemplateError

    try:
        return env.get_template(name).render(context)
    except TemplateError as exc:
        raise ConfigError(
            f"digest template {name}: {exc} (check the templates in the"
            " folder digest.templates names)"
        ) from exc


@lru_cache(maxsize=1)
def _subject_environment() -> Environment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


def render_subject(
    template: str, *, key: str, title: str, count: int, date: str, first: bool = False
) -> str:
    """The subject line from the config's template (plain Jinja2: a header is not HTML),
    made header-safe by :func:`clean_header_text`."""
    from jinja2 import TemplateError

    try:
        text = (
            _subject_environment()
            .from_string(template)
            .render(title=title, count=count, date=date, first=first)
        )
    except TemplateError as exc:
        raise ConfigError(f"{key}: {exc} (variables: title, count, date, first)") from exc
    return clean_header_text(text)


# --------------------------------------------------------------------------- inlining


def inline_css(html: str, css: str) -> str:
    """``css`` written into the style attributes of ``html``'s elements. The rules that
    cannot be inlined (``@media``, ``:hover``) are kept, ``!important`` and all, in a
    ``<style>`` block in the head. No network, no file access; links are left as they are
    (the tokens in them must survive)."""
    from premailer import Premailer

    inliner = Premailer(
        html=html,
        css_text=[css],
        allow_network=False,
        allow_loading_external_files=False,
        # premailer strips !important from the @media rules it keeps by default: the
        # inlined styles would then always win and the phone layout would never apply.
        strip_important=False,
        remove_classes=False,
        # Only what cannot be inlined goes to the <style> block, not the whole sheet again.
        keep_style_tags=False,
        # vendor properties (mso-*, -webkit-*) are meant for mail programs, not errors.
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        # Styles must not turn into width/height attributes (height: auto would give
        # height="auto"); the templates set the width attributes themselves.
        disable_basic_attributes=["width", "height"],
        base_url=None,
    )
    return str(inliner.transform(pretty_print=True))


# --------------------------------------------------------------------------- rendering


def index_url(config: Config) -> str:
    """The feeds' index page, which lists every story."""
    base = config.site.public_url
    return (base if base.endswith("/") else base + "/") + "index.html"


def _preheader(groups: Sequence[Group], chrome: Chrome, intro: str) -> str:
    titles = [s.title for g in groups for s in g.stories][:PREHEADER_TITLES]
    if not titles:
        return shorten(intro, PREHEADER_LIMIT)
    return shorten(fill(chrome.preheader, titles=" · ".join(titles)), PREHEADER_LIMIT)


def _more_text(chrome: Chrome, more: int, first: bool) -> str:
    """ "N more new stories" (or, in the list's first digest, whose older stories are not
    new to anybody, "N more stories")."""
    if first:
        return fill(chrome.more_first_one if more == 1 else chrome.more_first_many, count=str(more))
    return fill(chrome.more_one if more == 1 else chrome.more_many, count=str(more))


@dataclass(frozen=True, slots=True)
class Setting:
    """What a digest in one language is rendered from, the same for every size attempt."""

    language: Language
    chrome: Chrome  # the language's words, with the override folder's chrome.toml
    title: str  # the digest's name in the language, cleaned
    date: str  # the digest's date in words
    first: bool  # the list's first digest
    config: Config
    page: str  # the digest's web page name without the language (pages.page_stem)
    web: WebCopy | None = None  # the web copy's parts, or None for the messages


def _context(entries: Sequence[DigestEntry], more: int, setting: Setting) -> dict[str, Any]:
    config, chrome, title = setting.config, setting.chrome, setting.title
    date, first = setting.date, setting.first
    index = index_url(config)
    groups = build_groups(
        entries,
        chrome=chrome,
        timezone=config.site.timezone,
        fallback_url=index,
        names=lambda name: category_name(config, setting.language, name),
    )
    home = ascii_url(config.site.home_url)
    home = home if usable_url(home) else index
    intro = fill(chrome.intro_first if first else chrome.intro, title=title, date=date)
    code = setting.language.code
    return {
        "language": code,
        "view_url": page_url(config.site.public_url, setting.page, code),
        "web": setting.web,
        "web_note": fill(chrome.web_note, title=title, date=date),
        "chrome": chrome,
        "first": first,
        "heading": fill(chrome.heading, title=title, date=date),
        "dateline": fill(chrome.dateline, title=title, date=date),
        "intro": intro,
        "preheader": _preheader(groups, chrome, intro),
        "preheader_fill": PREHEADER_FILL,
        "groups": groups,
        "more": more,
        "more_text": _more_text(chrome, more, first),
        "index_url": index,
        "home_url": home,
        "why": fill(chrome.why, title=title),
        "sent_to": fill(chrome.sent_to, address=ADDRESS),
        "postal_address": clean_text(config.mail.postal_address.get(setting.language.code)),
        "image_width": IMAGE_WIDTH,
        "thumb_width": THUMB_WIDTH,
        "GREETING": GREETING,
        "UNSUBSCRIBE_URL": UNSUBSCRIBE_URL,
        "ADDRESS": ADDRESS,
        "PREFERENCES_URL": PREFERENCES_URL,
        "preferences_prompt": setting.language.subscribe.preferences_prompt,
        "preferences": setting.language.subscribe.preferences,
    }


def _largest_fitting(count: int, max_bytes: int, attempt: Callable[[int], tuple[str, int]]) -> int:
    """The most entries (fewer than ``count``, which do not fit) whose HTML fits
    ``max_bytes``, or 0. The size grows about linearly with the entries, so each probe is
    interpolated between the largest number known to fit and the smallest known not to:
    three or four attempts in all, at most ``count + 1``."""
    low, low_size = 0, attempt(0)[1]
    high, high_size = count, attempt(count)[1]
    while high - low > 1 and low_size <= max_bytes:
        per_entry = (high_size - low_size) / (high - low)
        probe = (
            low + int((max_bytes - low_size) / per_entry) if per_entry > 0 else (low + high) // 2
        )
        probe = min(max(probe, low + 1), high - 1)
        size = attempt(probe)[1]
        if size <= max_bytes:
            low, low_size = probe, size
        else:
            high, high_size = probe, size
    return low


def _setting(content: DigestContent, code: str, config: Config, web: WebCopy | None) -> Setting:
    codes = config.digest.languages
    if code not in codes:
        raise ConfigError(f"no digest language {code!r} (digest.languages: {', '.join(codes)})")
    language = languages.load(code, config.languages_path)
    chrome = load_chrome(
        code, config.templates_path, languages_dir=config.languages_path, codes=codes
    )
    return Setting(
        language=language,
        chrome=chrome,
        title=clean_text(config.digest.title.get(code)),
        date=format_date(content.created, chrome, config.site.timezone),
        first=content.first,
        config=config,
        page=content.page or local_day(content.created, config.site.timezone),
        web=web,
    )


def _subject(content: DigestContent, setting: Setting) -> str:
    """The subject line: the config's template for the language, else its file's."""
    code = setting.language.code
    config_subject = setting.config.digest.subject
    template = config_subject.given(code)
    if template is None:
        template, key = setting.language.subject, f"{setting.language.source}: subject"
    else:
        key = f"digest.subject.{code}" if config_subject.languages else "digest.subject"
    count = len(content.entries) + content.more
    return render_subject(
        template,
        key=key,
        title=setting.title,
        # The first digest's older stories are not new: it counts the stories it holds.
        count=len(content.entries) if content.first else count,
        date=setting.date,
        first=content.first,
    )


def digest_subject(content: DigestContent, language: str, config: Config) -> str:
    """The digest's subject line in ``language``, without rendering the rest."""
    return _subject(content, _setting(content, language, config, None))


def render_digest(
    content: DigestContent, language: str, config: Config, *, web: WebCopy | None = None
) -> RenderedDigest:
    """The digest in ``language`` (a code of ``digest.languages``), inlined once (once per
    size attempt). ``web``: its web copy instead, with no token and no personal part, all
    its stories (a page is not clipped like a message) and no text part."""
    env = _environment(config)
    setting = _setting(content, language, config, web)
    subject = _subject(content, setting)
    css = _source(env, CSS_FILE)
    entries = content.entries
    count = len(entries) + content.more
    attempts: dict[int, tuple[str, int]] = {}

    def attempt(shown: int) -> tuple[str, int]:
        if shown not in attempts:
            context = _context(entries[:shown], count - shown, setting)
            html = pack_lines(fold_html(inline_css(_render(env, HTML_TEMPLATE, context), css)))
            attempts[shown] = (html, measure(html))
        return attempts[shown]

    shown = len(entries)
    max_bytes = config.digest.max_bytes
    if web is None and attempt(shown)[1] > max_bytes and shown > 0:
        shown = _largest_fitting(shown, max_bytes, attempt)
        log.warning(
            "digest (%s): %d of %d stories kept so the HTML part stays within"
            " digest.max_bytes (%d bytes, limit %d); the others are linked",
            language,
            shown,
            len(entries),
            attempt(shown)[1],
            max_bytes,
        )
    html, html_bytes = attempt(shown)
    context = _context(entries[:shown], count - shown, setting)
    text = "" if web else fold_text(_render(env, TEXT_TEMPLATE, context))
    return RenderedDigest(
        language=language,
        subject=subject,
        html=html,
        text=text,
        greeting=setting.chrome.greeting,
        greeting_no_name=setting.chrome.greeting_no_name,
        shown=shown,
        more=count - shown,
        html_bytes=html_bytes,
    )
