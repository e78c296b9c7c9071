"""Normalisation: canonical URLs, clean HTML with absolute links, time-zone aware dates.

Pure functions only: no network, no store, no clock (``now`` and time zones are passed in).
Sources call :func:`canonical_url` to recognise items they already stored; the pipeline calls
:func:`normalize_item` on everything a source yields before it reaches the store.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from .models import Item

# ----------------------------------------------------------------------------- URLs

#: Query parameters that only track the reader; they never change what a page shows.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "vero_id",
        "oly_anon_id",
        "oly_enc_id",
        "rb_clickid",
        "s_cid",
        "ref_src",
        "ncid",
        "srsltid",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "hsa_")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT_RE = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _is_tracking(key: str) -> bool:
    k = key.lower()
    return k in TRACKING_PARAMS or k.startswith(_TRACKING_PREFIXES)


def _fix_escapes(text: str) -> str:
    """Decode escapes of unreserved characters and upper-case the others (RFC 3986 6.2.2)."""

    def repl(m: re.Match[str]) -> str:
        ch = chr(int(m.group(0)[1:], 16))
        return ch if ch in _UNRESERVED else m.group(0).upper()

    return _PERCENT_RE.sub(repl, text)


def _remove_dot_segments(path: str) -> str:
    if "." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def _origin_key(scheme: str, host: str, port: int | None) -> tuple[str, int | None]:
    return host, (None if port == _DEFAULT_PORTS.get(scheme) else port)


@dataclasses.dataclass(frozen=True, slots=True)
class Origin:
    """A site iomfeed knows, whose http and https addresses are one and the same."""

    scheme: str
    host: str
    port: int | None

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".")
        _h, port = _origin_key(scheme, host, parts.port)
        return cls(scheme, host, port)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def canonical_url(url: str, origins: Sequence[Origin] = ()) -> str:
    """The one address that identifies a page, so its variants dedupe to one item.

    Lower-case scheme and host, no default port, no fragment, no tracking parameters, a sorted
    query, normalised escapes and dot segments, the Drupal ``/index.php/`` alias folded. A URL
    on one of ``origins`` takes that origin's scheme (the site serves http and https alike);
    any other http URL is upgraded to https.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return url.strip()
    host = parts.hostname.rstrip(".")
    key = _origin_key(scheme, host, port)
    for origin in origins:
        if origin.host == host and (key[1] is None or key[1] == origin.port):
            scheme, netloc = origin.scheme, origin.netloc
            break
    else:
        if scheme == "http" and key[1] is None:
            scheme = "https"
        bracketed = f"[{host}]" if ":" in host else host
        netloc = bracketed if key[1] is None else f"{bracketed}:{key[1]}"
        if parts.username:
            userinfo = parts.username + (f":{parts.password}" if parts.password else "")
            netloc = f"{userinfo}@{netloc}"
    path = _remove_dot_segments(_fix_escapes(parts.path or "/"))
    if path == "/index.php":
        path = "/"
    elif path.startswith("/index.php/"):
        path = path[len("/index.php") :]
    query_pairs = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    ]
    query = urlencode(sorted(query_pairs))
    return urlunsplit((scheme, netloc, path, query, ""))


def is_web_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) address (not ``javascript:``, ``mailto:`` ...)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def same_site(url: str, origins: Sequence[Origin]) -> bool:
    try:
        o = Origin.of(url)
    except ValueError:
        return False
    return any(o.host == k.host for k in origins)


# ----------------------------------------------------------------------------- text and HTML

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_SPACE_RE = re.compile(r"\s+")

ALLOWED_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "dd",
        "del",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "small",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
    }
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "ol": {"start"},
    "*": {"lang", "dir"},
}
_URL_ATTRIBUTES = frozenset({("a", "href"), ("img", "src"), ("blockquote", "cite"), ("q", "cite")})
_DROP_WITH_CONTENT = frozenset(
    {
        "script",
        "style",
        "iframe",
        "object",
        "embed",
        "noscript",
        "template",
        "svg",
        "math",
        "form",
        "select",
        "textarea",
        "button",
    }
)


def clean_text(text: str) -> str:
    """One line of plain text: no control characters, whitespace collapsed."""
    return _SPACE_RE.sub(" ", _CONTROL_RE.sub(" ", text)).strip()


def sanitize_html(html: str, base_url: str = "") -> str:
    """Allow-listed HTML with every link and image absolute.

    No scripts, event handlers, styles, iframes, forms or ``javascript:``/``data:`` URLs
    survive; links get ``rel="noopener noreferrer"``. Safe to put in a feed or an email.
    """
    if not html.strip():
        return ""
    import nh3

    def absolutise(tag: str, attr: str, value: str) -> str | None:
        if (tag, attr) in _URL_ATTRIBUTES:
            value = value.strip()
            if not value:
                return None
            return urljoin(base_url, value) if base_url else value
        return value

    cleaned: str = nh3.clean(
        _CONTROL_RE.sub("", html),
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=absolutise,
        url_schemes={"http", "https", "mailto"},
        strip_comments=True,
        link_rel="noopener noreferrer",
    )
    return cleaned.strip()


def html_to_text(html: str) -> str:
    """The plain text of an HTML fragment on one line: its blocks (see :func:`text_blocks`)
    joined by a space, so paragraphs do not run together and inline markup does not split
    words."""
    return " ".join(text_blocks(html))


# ----------------------------------------------------------------------------- summaries

#: Elements that end a block of the plain text (``br`` a line): their text never runs into
#: the text before or after them.
_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    }
)
#: Elements whose text is not running text: left out of summaries and plain text.
_SKIPPED_TAGS = frozenset({"figure", "figcaption", "script", "style", "template"})
_SENTENCE_END_RE = re.compile(r"[.!?…][\"'”’»)\]]*$")
_MIN_PART = 40  # characters of a further block worth starting in a summary
_ELLIPSIS_RE = re.compile(r"\s*(?:\.\.\.|…)$")


def text_blocks(html: str) -> list[str]:
    """The plain text of each block (paragraph, list item, heading) of an HTML fragment.

    Inline markup does not split words; figures and their captions are left out (they are
    not part of the running text).
    """
    from html.parser import HTMLParser

    blocks: list[str] = []
    current: list[str] = []
    skipping = 0

    def flush() -> None:
        text = clean_text("".join(current))
        if text:
            blocks.append(text)
        current.clear()

    class _Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            nonlocal skipping
            if tag in _SKIPPED_TAGS:
                skipping += 1
            elif tag in _BLOCK_TAGS:
                flush()

        def handle_endtag(self, tag: str) -> None:
            nonlocal skipping
            if tag in _SKIPPED_TAGS:
                skipping = max(0, skipping - 1)
            elif tag in _BLOCK_TAGS:
                flush()

        def handle_data(self, data: str) -> None:
            if not skipping:
                current.append(data)

    parser = _Parser(convert_charrefs=True)
    parser.feed(html)
    parser.close()
    flush()
    return blocks


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


# ----------------------------------------------------------------------------- dates

_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_RANGE = r"(?:\s*[-–—]\s*[0-3]?\d)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_TIME = r"(?:\s*[-–,@]?\s*(?P<hour>[0-2]?\d):(?P<minute>[0-5]\d)(?:\s*(?P<ampm>[ap]\.?m\.?))?)?"


@dataclasses.dataclass(frozen=True, slots=True)
class _DateForms:
    """The date patterns for one set of languages, and their month names (from CLDR)."""

    months: dict[str, int]
    patterns: tuple[re.Pattern[str], ...]


def _date_languages(language: str) -> tuple[str, ...]:
    """The item's own language first (its names win a clash), then the always-known ones."""
    from .dates import PARSE_LANGUAGES

    language = language.replace("_", "-").split("-")[0].lower()  # en-US: en's names
    first = (language,) if language and language not in PARSE_LANGUAGES else ()
    return first + PARSE_LANGUAGES


@lru_cache(maxsize=32)
def _date_forms(languages: tuple[str, ...]) -> _DateForms:
    """Built once per set of languages, on the first date read in words (Babel's data is
    loaded then, never at import)."""
    from .dates import month_numbers

    months = month_numbers(languages)
    names = "|".join(re.escape(name) for name in sorted(months, key=len, reverse=True))
    month = rf"(?P<month>{names})\.?"
    return _DateForms(
        months,
        (
            # 18-19 June 2024 / 5 November 2018 / 14-16 June 2021
            re.compile(rf"\b{_DAY}{_RANGE}\s+(?:of\s+)?{month},?\s+{_YEAR}\b{_TIME}", re.I),
            # October 29, 2019 / Wednesday, September 19, 2018 - 17:11
            re.compile(rf"\b{month}\s+{_DAY}{_RANGE},?\s+{_YEAR}\b{_TIME}", re.I),
            # 01/22/2021 - 03:19 (Drupal 7's default US format)
            re.compile(rf"\b(?P<mnum>[01]?\d)/{_DAY}/{_YEAR}\b{_TIME}", re.I),
            # 18 December (no year: the nearest one not in the future)
            re.compile(rf"\b{_DAY}\s+{month}(?!\s*,?\s*\d)\b", re.I),
            # Throughout March 2024 / March 2024
            re.compile(rf"\b{month}\s+{_YEAR}\b", re.I),
        ),
    )


DATELINE_WINDOW = 160  # characters of body text a dateline may start within
YEARLESS_MAX_AGE = timedelta(days=45)  # a date without a year is trusted only this recent


def parse_iso(text: str, tz: tzinfo) -> datetime | None:
    """An ISO 8601 / RFC 3339 date or date-time; naive values are local to ``tz``."""
    value = text.strip()
    if not value or not value[0].isdigit():
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        try:
            d = date.fromisoformat(value[:10])
        except ValueError:
            return None
        dt = datetime(d.year, d.month, d.day)  # noqa: DTZ001 - made aware just below
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)


def parse_date_text(
    text: str, tz: tzinfo, *, reference: datetime, language: str = ""
) -> datetime | None:
    """Find a date in free text ("Posted: Wednesday, September 19, 2018 - 17:11").

    ``reference`` decides the year of a date written without one (the nearest that is not
    after it). Month names are CLDR's for ``language`` (the text's, when known) and for
    :data:`iomfeed.dates.PARSE_LANGUAGES`. Returns an aware datetime in ``tz``, or ``None``.
    """
    text = clean_text(text)
    iso = parse_iso(text, tz)
    if iso is not None:
        return iso
    forms = _date_forms(_date_languages(language))
    for m in _matches(text, forms):
        found = _from_match(m, forms, tz, reference)
        if found is not None:
            return found
    return None


def _matches(text: str, forms: _DateForms) -> list[re.Match[str]]:
    """Every date-like match in ``text``, the earliest first (the longest at one place)."""
    found = [m for pattern in forms.patterns for m in pattern.finditer(text)]
    return sorted(found, key=lambda m: (m.start(), -(m.end() - m.start())))


def _from_match(
    m: re.Match[str], forms: _DateForms, tz: tzinfo, reference: datetime
) -> datetime | None:
    groups = m.groupdict()
    if groups.get("mnum"):
        month = int(groups["mnum"])
    else:
        month = forms.months[groups["month"].lower().rstrip(".")]
    day = int(groups["day"]) if groups.get("day") else 1
    hour = int(groups["hour"]) if groups.get("hour") else 0
    minute = int(groups["minute"]) if groups.get("minute") else 0
    ampm = (groups.get("ampm") or "").replace(".", "").lower()
    if ampm == "pm" and hour < 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0
    if hour > 23:
        return None
    local_ref = reference.astimezone(tz)
    year = int(groups["year"]) if groups.get("year") else local_ref.year
    try:
        found = datetime(year, month, day, hour, minute, tzinfo=tz)
    except ValueError:
        return None
    if not groups.get("year"):
        if found > local_ref:
            try:
                found = found.replace(year=year - 1)
            except ValueError:
                return None
        # Without a year, only fresh news can be dated with confidence: an old article read
        # now would get the wrong year, so it is left undated (first-seen) instead.
        if local_ref - found > YEARLESS_MAX_AGE:
            return None
    return found


def find_dateline(
    body_text: str, tz: tzinfo, *, reference: datetime, language: str = ""
) -> datetime | None:
    """A date in the first words of a body ("Tirana 5 November 2018: ..."), or ``None``;
    month names as in :func:`parse_date_text`."""
    head = clean_text(body_text)[:DATELINE_WINDOW]
    forms = _date_forms(_date_languages(language))
    for m in _matches(head, forms):
        found = _from_match(m, forms, tz, reference)
        if found is not None and found <= reference + timedelta(days=1):
            return found
    return None


@lru_cache(maxsize=32)
def zone(name: str) -> tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


# ----------------------------------------------------------------------------- titles


def title_key(title: str) -> str:
    """A title folded for near-duplicate matching: no accents, case, punctuation or spacing."""
    decomposed = unicodedata.normalize("NFKD", title)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = re.findall(r"\w+", re.sub(r"['’‘`]", "", stripped.casefold()))
    return " ".join(words)


# ----------------------------------------------------------------------------- items


def _host(url: str) -> str:
    try:
        return Origin.of(url).host
    except ValueError:
        return ""


def _local(value: datetime | None, tz: tzinfo) -> datetime | None:
    """An aware datetime in the source's time zone (a naive one is taken to be local)."""
    if value is None:
        return None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for v in values:
        v = clean_text(v)
        if v and v.casefold() not in {s.casefold() for s in seen}:
            seen[v] = None
    return tuple(seen)


#: A date further than this after the fetch is a mistake on the page, not news to come.
FUTURE_DATE_GRACE = timedelta(days=1)


def normalize_item(
    item: Item,
    *,
    origins: Sequence[Origin],
    tz: tzinfo,
    language: str,
    summary_length: int,
    now: datetime,
) -> Item:
    """The stored form of a found item: canonical URL, clean HTML, aware date.

    A teaser the site cut mid-word (see :func:`teaser_is_cut`) is replaced by a summary
    made from the body, at most ``summary_length`` characters, cut at a word. A date more
    than :data:`FUTURE_DATE_GRACE` after ``now`` (the fetch) is dropped, and ``date_note``
    says so: the store then dates the item by when it was first seen.
    """
    base = item.base_url or item.url
    link = urljoin(base, item.url.strip())
    url = canonical_url(link, origins)
    also_at = tuple(canonical_url(u, origins) for u in item.also_at)
    if item.canonical_hint:
        hint = urljoin(base, item.canonical_hint.strip())
        # rel=canonical is trusted only when it stays on the same site as the page.
        if same_site(hint, origins) and same_site(link, origins) and _host(hint) == _host(link):
            preferred = canonical_url(hint, origins)
            if preferred != url:
                also_at = (*also_at, url)  # the listing's address stays known
                url = preferred
    published = _local(item.published, tz)
    date_note = item.date_note
    if published is not None and published > now + FUTURE_DATE_GRACE:
        # A typo in the year would pin the item above every real story for years.
        date_note = (
            f"ignored the date {published.isoformat()}"
            f" ({item.date_source or 'unknown source'}): more than a day after it"
            f" was fetched ({now.astimezone(tz).isoformat()})"
        )
        published = None
    image = urljoin(base, item.image_url.strip()) if item.image_url.strip() else ""
    summary = sanitize_html(item.summary_html, base)
    content = sanitize_html(item.content_html, base)
    if summary and content and teaser_is_cut(summary, content):
        summary = summary_from_body(content, summary_length)
    return dataclasses.replace(
        item,
        url=url,
        base_url="",
        title=clean_text(item.title),
        summary_html=summary,
        content_html=content,
        published=published,
        date_source=item.date_source if published is not None else None,
        image_url=image if image.startswith(("http://", "https://")) else "",
        image_alt=clean_text(item.image_alt),
        categories=_unique(item.categories),
        language=(item.language or language).strip().lower(),
        author=clean_text(item.author),
        canonical_hint="",
        also_at=also_at,
        date_note=date_note,
    )
