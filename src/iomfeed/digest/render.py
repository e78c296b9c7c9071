"""Render a digest for one language: the subject, the HTML part (CSS inlined once) and the
plain-text part, with space-free tokens where each subscriber's values go.

Pure: a :class:`DigestContent` and the config in, a :class:`RenderedDigest` out. Nothing is
sent or stored here and no subscriber is seen: ``message.py`` fills :data:`TOKENS` for each
one (HTML-escaped in the HTML part), so the costly work (Jinja2, premailer) runs once per
digest and language, not once per subscriber.

Templates come from the package's ``templates/digest/`` folder (``iomfeed.templates``); the
folder named by ``digest.templates`` is searched first, so an operator can replace any
template, ``digest.css`` or some of the words in ``chrome.toml`` (merged key by key) by
putting a file of the same name in it.

Two limits shape the HTML: Gmail clips an HTML part over about 102 KB, hiding the footer and
its unsubscribe link, so stories are dropped (and counted in "N more") until the part fits
``digest.max_bytes``; and the messages go out with 8bit transfer encoding, whose lines must
stay under 998 bytes, so long lines are broken where a break cannot change the rendering.
Both are measured with every token standing for a value of :data:`TOKEN_STAND_IN` bytes.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import textwrap
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..errors import ConfigError
from ..models import DigestContent, DigestEntry, RenderedDigest
from .headers import clean_header_text
from .select import shorten

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from jinja2 import Environment

    from ..config import Config

log = logging.getLogger(__name__)

#: Filled for each subscriber by ``message.py``: the greeting line (``RenderedDigest.greeting``
#: with their name, or ``greeting_no_name``), their unsubscribe link, their address.
GREETING = "%%GREETING%%"
UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
ADDRESS = "%%ADDRESS%%"
TOKENS = (GREETING, UNSUBSCRIBE_URL, ADDRESS)

LANGUAGES = ("en", "sq")
#: Bytes a token may turn into (an address's longest legal form) when sizes are measured.
TOKEN_STAND_IN = 320
#: Longest line of the html and text returned, tokens counted as TOKEN_STAND_IN bytes:
#: under SMTP's 998 with room to spare.
MAX_LINE_BYTES = 900
TEXT_WIDTH = 72
#: A link longer than this could not sit on a line of its own: the index page is linked
#: instead (an image is left out).
MAX_URL_BYTES = 700
#: Longer runs of non-space characters in scraped text are cut with spaces, so every line
#: can be broken at a space.
MAX_WORD = 100
IMAGE_WIDTH = 552  # the content column: 600 px less 24 px padding on each side
THUMB_WIDTH = 168
PREHEADER_TITLES = 3
PREHEADER_LIMIT = 150
ALT_LIMIT = 125
#: Invisible characters after the preheader, so mail programs do not fill the inbox
#: preview with the greeting and the first lines of the message.
PREHEADER_FILL = ("\u200c\u00a0" * 8 + " ") * 6
TEMPLATE_FOLDER = "digest"
CHROME_FILE = "chrome.toml"
CSS_FILE = "digest.css"
HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"


# --------------------------------------------------------------------------- the words


@dataclass(frozen=True, slots=True)
class Chrome:
    """The words around the stories in one language (``chrome.toml``; placeholders in braces
    are described there)."""

    date_format: str  # a CLDR date pattern or length; month names are CLDR's
    preheader: str
    heading: str
    dateline: str
    greeting: str
    greeting_no_name: str
    intro: str
    intro_first: str
    empty: str
    other_news: str
    read_more: str
    more_one: str
    more_many: str
    more_first_one: str
    more_first_many: str
    more_link: str
    why: str
    sent_to: str
    unsubscribe_prompt: str
    unsubscribe: str
    website: str
    index_link: str
    language: str = "en"  # the table's language code (not a key of chrome.toml)


CHROME_KEYS = tuple(f.name for f in dataclasses.fields(Chrome) if f.name != "language")
#: Keys of older chrome.toml files, and what replaced them.
_RETIRED_KEYS = {
    "months": "month names come from CLDR (Babel) for the language; write"
    " date_format as a CLDR pattern such as 'd MMMM y'"
}


def own_folder() -> Traversable:
    """The package's own digest templates."""
    import importlib.resources

    return importlib.resources.files("iomfeed.templates") / TEMPLATE_FOLDER


def _read_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from exc


def load_chrome(language: str, folder: Path | None = None) -> Chrome:
    """The words for ``language``: the package's ``chrome.toml``, with the values of
    ``folder/chrome.toml`` (when there is one) replacing them key by key."""
    own = _read_toml(
        own_folder().joinpath(CHROME_FILE).read_text(encoding="utf-8"),
        f"templates/{TEMPLATE_FOLDER}/{CHROME_FILE}",
    )
    values = dict(own[language])
    where = f"templates/{TEMPLATE_FOLDER}/{CHROME_FILE}"
    if folder is not None and (folder / CHROME_FILE).is_file():
        path = folder / CHROME_FILE
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from exc
        override = _read_toml(text, where)
        for name, table in override.items():
            if name not in LANGUAGES:
                raise ConfigError(
                    f"{where}: [{name}]: unknown table (expected one of {', '.join(LANGUAGES)})"
                )
            if not isinstance(table, dict):
                raise ConfigError(f"{where}: {name}: expected a table")
        values.update(override.get(language, {}))
    return _chrome(values, f"{where}: [{language}]", language)


def _chrome(values: dict[str, Any], where: str, language: str) -> Chrome:
    from ..dates import check_pattern

    for key in values:
        if key in _RETIRED_KEYS:
            raise ConfigError(f"{where} {key}: no longer used: {_RETIRED_KEYS[key]}")
        if key not in CHROME_KEYS:
            raise ConfigError(f"{where} {key}: unknown key")
    for key in CHROME_KEYS:
        if key not in values:
            raise ConfigError(f"{where} {key}: required key is missing")
        value = values[key]
        if not isinstance(value, str):
            raise ConfigError(f"{where} {key}: expected a string, got {value!r}"[:200])
    problem = check_pattern(values["date_format"], language)
    if problem:
        raise ConfigError(f"{where} date_format: {problem}")
    return Chrome(**values, language=language)


def fill(template: str, **values: str) -> str:
    """``template`` with each ``{key}`` replaced (plain replacement: other braces stay)."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def format_date(value: datetime, chrome: Chrome, timezone: str) -> str:
    """'24 November 2026' / '24 nëntor 2026': the day in ``timezone``, written with the
    chrome's ``date_format`` and CLDR's words for its language, whatever the machine's
    locale."""
    from ..dates import format_day

    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(_zone(timezone))
    return format_day(local.date(), chrome.language, chrome.date_format)


# --------------------------------------------------------------------------- the stories


@dataclass(frozen=True, slots=True)
class Story:
    """A story as the templates show it: text cleaned, date formatted, links checked."""

    title: str
    url: str
    date: str
    summary: str  # the paragraphs, one a line
    paragraphs: tuple[str, ...]  # the summary's paragraphs: <p> each, lines in text
    image_url: str
    image_alt: str
    featured: bool  # leads the digest: its image is shown full width


@dataclass(frozen=True, slots=True)
class Group:
    """The stories of one category, newest first."""

    name: str
    stories: tuple[Story, ...]


def _newest_first(entry: DigestEntry) -> tuple[datetime, str]:
    return entry.published, entry.id


def group_entries(entries: Sequence[DigestEntry]) -> list[tuple[str, list[DigestEntry]]]:
    """``(category, entries)`` pairs: entries newest first, groups ordered by their newest
    entry, the entries without a category in a last group named ``""``."""
    groups: dict[str, list[DigestEntry]] = {}
    for entry in sorted(entries, key=_newest_first, reverse=True):
        groups.setdefault(clean_text(entry.category), []).append(entry)
    # dicts keep insertion order: the groups are already ordered by their newest entry.
    named = [(name, items) for name, items in groups.items() if name]
    return named + ([("", groups[""])] if "" in groups else [])


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_LONG_WORD = re.compile(rf"\S{{{MAX_WORD + 1},}}")


def clean_text(text: str, *, scraped: bool = True) -> str:
    """Text made safe to lay out: control characters gone, whitespace collapsed, words
    longer than MAX_WORD characters cut with spaces; and, for ``scraped`` text, no "%%"
    left that could spell a subscriber token (a hostile page must not get addresses or
    unsubscribe links filled into its text)."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    if scraped:
        text = text.replace("%%", "%\u2060%")
    return _LONG_WORD.sub(
        lambda m: " ".join(
            m.group(0)[i : i + MAX_WORD] for i in range(0, len(m.group(0)), MAX_WORD)
        ),
        text,
    )


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def ascii_url(url: str) -> str:
    """``url`` with its non-ASCII characters percent-encoded (as UTF-8): what the HTML
    serializer writes anyway, and what plain-text mail programs recognise as one link."""
    from urllib.parse import quote

    # "%%" is never valid in a URL; encoded, it cannot spell a subscriber token.
    return _NON_ASCII.sub(lambda m: quote(m.group(0), safe=""), url).replace("%%", "%25%25")


def usable_url(url: str) -> bool:
    """An absolute http(s) link (ASCII) short enough for a line of its own."""
    return (
        url.startswith(("https://", "http://"))
        and len(url) <= MAX_URL_BYTES
        and url.isascii()
        and url.isprintable()
        and " " not in url
    )


def _story(
    entry: DigestEntry, *, featured: bool, chrome: Chrome, timezone: str, fallback_url: str
) -> Story:
    url = ascii_url(entry.url)
    if not usable_url(url):
        log.debug("story %s: link unusable in a mail, linking the index page", entry.id)
        url = fallback_url
    image_url = ascii_url(entry.image_url)
    image_url = image_url if usable_url(image_url) else ""
    # The summary's paragraphs stay apart (clean_text would join them with a space).
    paragraphs = tuple(p for p in map(clean_text, entry.summary.split("\n")) if p)
    return Story(
        title=clean_text(entry.title),
        url=url,
        date=format_date(entry.published, chrome, timezone),
        summary="\n".join(paragraphs),
        paragraphs=paragraphs,
        image_url=image_url,
        image_alt=shorten(clean_text(entry.image_alt), ALT_LIMIT),
        featured=featured,
    )


def build_groups(
    entries: Sequence[DigestEntry],
    *,
    chrome: Chrome,
    timezone: str,
    fallback_url: str,
    names: Callable[[str], str] = str,
) -> list[Group]:
    """The stories as the templates show them, grouped (see :func:`group_entries`) under
    their category's name in the digest's language (``names``); the first story leads the
    digest."""
    groups = []
    for index, (name, items) in enumerate(group_entries(entries)):
        stories = tuple(
            _story(
                entry,
                featured=(index == 0 and n == 0),
                chrome=chrome,
                timezone=timezone,
                fallback_url=fallback_url,
            )
            for n, entry in enumerate(items)
        )
        groups.append(
            Group(name=clean_text(names(name)) if name else chrome.other_news, stories=stories)
        )
    return groups


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
def environment(folder: str = "") -> Environment:
    """The digest's Jinja2 environment: the override ``folder`` (when given) searched before
    the package's own templates; HTML autoescaped, undefined names an error. Cached per
    folder."""
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
    return environment(str(folder) if folder is not None else "")


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


# --------------------------------------------------------------------------- line lengths


def measure(text: str) -> int:
    """Bytes of ``text`` (UTF-8) with every token counted as TOKEN_STAND_IN bytes."""
    size = len(text.encode())
    if "%%" in text:
        for token in TOKENS:
            size += text.count(token) * (TOKEN_STAND_IN - len(token))
    return size


_HTML_PIECES = re.compile(
    r"<!--.*?-->|<![^>]*>|</?[A-Za-z][^\s/>]*(?:[^>\"']|\"[^\"]*\"|'[^']*')*>|[^<]+|<", re.S
)
_IN_TAG = re.compile(r"\"[^\"]*\"|'[^']*'|\s+|[^\s\"']+")
_SPACES = re.compile(r"(\s+)")


class _Break(str):
    """A place a line may be broken: the text there when it is not (a space or nothing)."""

    __slots__ = ()


def _html_pieces(line: str) -> list[str]:
    """``line`` cut into unbreakable pieces and the :class:`_Break` between them: at the
    whitespace of text, between a tag's attributes, and before the ``>`` closing a tag
    (where HTML allows whitespace). Never inside an attribute value or a comment."""
    pieces: list[str] = []
    for match in _HTML_PIECES.finditer(line):
        part = match.group(0)
        if part.startswith("<!") or part == "<":
            pieces.append(part)
        elif part.startswith("<"):
            for bit in _IN_TAG.findall(part[:-1]):
                pieces.append(_Break(bit) if bit.isspace() else bit)
            # "<br/>" stays whole at its end: whitespace may not split "/>".
            pieces += [">"] if part.endswith("/>") else [_Break(""), ">"]
        else:
            pieces += [_Break(p) if p.isspace() else p for p in _SPACES.split(part) if p]
    return pieces


def _fold(pieces: list[str], limit: int) -> str:
    """Greedy line filling: a line is broken at its last break when the next piece would
    take it over ``limit`` (a piece longer than that on its own stays whole)."""
    lines: list[str] = []
    line: list[str] = []
    size = 0
    last = -1
    for piece in pieces:
        if isinstance(piece, _Break):
            last = len(line)
            line.append(piece)
            size += measure(piece)
            continue
        cost = measure(piece)
        if size + cost > limit and last >= 0:
            lines.append("".join(line[:last]))
            line = line[last + 1 :]
            size = sum(measure(p) for p in line)
            last = -1
        line.append(piece)
        size += cost
    lines.append("".join(line))
    return "\n".join(lines)


def fold_html(html: str, limit: int = MAX_LINE_BYTES) -> str:
    """``html`` with every line over ``limit`` bytes (see :func:`measure`) broken where a
    line break changes nothing: at whitespace in text or between attributes, or inside a
    tag before its ``>``."""
    return "\n".join(
        line if measure(line) <= limit else _fold(_html_pieces(line), limit)
        for line in html.split("\n")
    )


def pack_lines(html: str, limit: int = MAX_LINE_BYTES) -> str:
    """Join consecutive lines with a space while the result stays within ``limit`` bytes.

    Outside ``<pre>`` and ``<textarea>`` (the digest has neither) a line break and a space
    are the same whitespace to HTML and CSS, so nothing changes on screen; but a message of
    a few hundred long lines instead of a thousand short ones costs an SMTP server (which
    reads DATA line by line) noticeably less.
    """
    if re.search(r"<(pre|textarea)\b", html, re.I):
        return html
    out: list[str] = []
    size = -1
    for line in html.split("\n"):
        n = measure(line)
        if out and size + 1 + n <= limit:
            out[-1] += " " + line
            size += 1 + n
        else:
            out.append(line)
            size = n
    return "\n".join(out)


_UNITS = re.compile(r"%%[A-Z_]+%%|.", re.S)


def fold_text(text: str, limit: int = MAX_LINE_BYTES) -> str:
    """Plain text with trailing spaces removed, runs of blank lines shortened to one, and
    any line still over ``limit`` bytes broken at a space (or, failing that, anywhere but
    in a token)."""
    out: list[str] = []
    for raw in text.split("\n"):
        line = raw.rstrip()
        if not line and out and not out[-1]:
            continue
        if measure(line) <= limit:
            out.append(line)
            continue
        folded = _fold([_Break(p) if p.isspace() else p for p in _SPACES.split(line) if p], limit)
        for part in folded.split("\n"):
            chunk = ""
            for unit in _UNITS.findall(part):
                if measure(chunk + unit) > limit:
                    out.append(chunk)
                    chunk = ""
                chunk += unit
            out.append(chunk)
    return "\n".join(out).strip("\n") + "\n"


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


def _context(
    entries: Sequence[DigestEntry],
    more: int,
    *,
    language: str,
    chrome: Chrome,
    title: str,
    date: str,
    config: Config,
    first: bool = False,
) -> dict[str, Any]:
    index = index_url(config)
    groups = build_groups(
        entries,
        chrome=chrome,
        timezone=config.site.timezone,
        fallback_url=index,
        names=lambda name: config.digest.categories.get(name, language),
    )
    home = ascii_url(config.site.home_url)
    home = home if usable_url(home) else index
    intro = fill(chrome.intro_first if first else chrome.intro, title=title, date=date)
    return {
        "language": language,
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
        "postal_address": clean_text(config.mail.postal_address.get(language)),
        "image_width": IMAGE_WIDTH,
        "thumb_width": THUMB_WIDTH,
        "GREETING": GREETING,
        "UNSUBSCRIBE_URL": UNSUBSCRIBE_URL,
        "ADDRESS": ADDRESS,
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


def render_digest(content: DigestContent, language: str, config: Config) -> RenderedDigest:
    """The digest in ``language`` ("en" or "sq"), inlined once (once per size attempt)."""
    if language not in LANGUAGES:
        raise ConfigError(f"no digest language {language!r} (expected one of {LANGUAGES})")
    env = _environment(config)
    chrome = load_chrome(language, config.templates_path)
    title = config.digest.title_sq if language == "sq" else config.digest.title_en
    date = format_date(content.created, chrome, config.site.timezone)
    entries = content.entries
    count = len(entries) + content.more
    subject = render_subject(
        config.digest.subject_sq if language == "sq" else config.digest.subject_en,
        key=f"digest.subject_{language}",
        title=clean_text(title),
        # The first digest's older stories are not new: it counts the stories it holds.
        count=len(entries) if content.first else count,
        date=date,
        first=content.first,
    )
    css = _source(env, CSS_FILE)

    def context(shown: int) -> dict[str, Any]:
        return _context(
            entries[:shown],
            count - shown,
            language=language,
            chrome=chrome,
            title=clean_text(title),
            date=date,
            config=config,
            first=content.first,
        )

    attempts: dict[int, tuple[str, int]] = {}

    def attempt(shown: int) -> tuple[str, int]:
        if shown not in attempts:
            html = pack_lines(
                fold_html(inline_css(_render(env, HTML_TEMPLATE, context(shown)), css))
            )
            attempts[shown] = (html, measure(html))
        return attempts[shown]

    shown = len(entries)
    max_bytes = config.digest.max_bytes
    if attempt(shown)[1] > max_bytes and shown > 0:
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
    text = fold_text(_render(env, TEXT_TEMPLATE, context(shown)))
    return RenderedDigest(
        language=language,
        subject=subject,
        html=html,
        text=text,
        greeting=chrome.greeting,
        greeting_no_name=chrome.greeting_no_name,
        shown=shown,
        more=count - shown,
        html_bytes=html_bytes,
    )
