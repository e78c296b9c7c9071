"""Text and HTML: one-line plain text, allow-listed HTML with absolute links, text blocks,
folded titles.

Pure functions only. :func:`sanitize_html` is what makes a page's HTML safe for a feed or an
email; :func:`text_blocks` is the plain text the summaries, the digest and the feeds read.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any
from urllib.parse import urljoin

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


def text_blocks(html: str) -> list[str]:
    """The plain text of each block (paragraph, list item, heading) of an HTML fragment.

    Inline markup does not split words; figures and their captions are left out (they are
    not part of the running text).
    """
    parser = _text_parser()(convert_charrefs=True)
    parser.feed(html)
    parser.close()
    parser.flush()
    blocks: list[str] = parser.blocks
    return blocks


@functools.cache
def _text_parser() -> type[Any]:
    """The parser :func:`text_blocks` reads with (a class made once: ``html.parser`` is
    imported only by what reads markup)."""
    from html.parser import HTMLParser

    class TextParser(HTMLParser):
        def reset(self) -> None:
            super().reset()
            self.blocks: list[str] = []
            self.current: list[str] = []
            self.skipping = 0

        def flush(self) -> None:
            text = clean_text("".join(self.current))
            if text:
                self.blocks.append(text)
            self.current.clear()

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in _SKIPPED_TAGS:
                self.skipping += 1
            elif tag in _BLOCK_TAGS:
                self.flush()

        def handle_endtag(self, tag: str) -> None:
            if tag in _SKIPPED_TAGS:
                self.skipping = max(0, self.skipping - 1)
            elif tag in _BLOCK_TAGS:
                self.flush()

        def handle_data(self, data: str) -> None:
            if not self.skipping:
                self.current.append(data)

    return TextParser


def title_key(title: str) -> str:
    """A title folded for near-duplicate matching: no accents, case, punctuation or spacing."""
    decomposed = unicodedata.normalize("NFKD", title)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = re.findall(r"\w+", re.sub(r"['’‘`]", "", stripped.casefold()))
    return " ".join(words)
