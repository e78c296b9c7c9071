"""Make scraped text safe for a mail header.

Titles come from web pages, so they are hostile input: a ``\\r\\n`` could start a new header,
and an RFC 2047 encoded word (``=?utf-8?q?=0D=0ABcc:...?=``) would be decoded by the email
package back into a line break. This module turns any text into one line of printable
characters, short enough for a Subject. It never builds a header itself.
"""

from __future__ import annotations

import re
import unicodedata

_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_SPACES = re.compile(r"\s+")
SUBJECT_LIMIT = 150


def _decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words the way a mail reader would, so what is checked below
    is what a reader would see."""
    from email.errors import MessageError
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeDecodeError, MessageError):  # CharsetError: "=?ë?q?x?="
        return _ENCODED_WORD.sub(" ", value)


#: The format characters a name is written with: the zero-width joiner and non-joiner, in
#: emoji sequences (a family, a flag with a word) and in Persian and Indic names.
JOINERS = frozenset("\u200c\u200d")


def _printable(value: str) -> str:
    # Cc: control characters (CR, LF, NUL, ...) and Zl/Zp (line and paragraph separators)
    # become a space; Cf, format characters that take no room (bidi overrides, zero-width
    # spaces), are dropped, but for the joiners.
    return "".join(_SHOWN.get(unicodedata.category(c), c) if c not in JOINERS else c for c in value)


_SHOWN = {"Cc": " ", "Zl": " ", "Zp": " ", "Cf": ""}


def clean_header_text(value: str, limit: int = SUBJECT_LIMIT) -> str:
    """One line of printable text, whitespace collapsed, at most ``limit`` characters (cut at
    a word with an ellipsis), with no encoded word left that a reader would decode."""
    if (
        len(value) <= limit
        and value.isprintable()  # no control, format or separator character but " "
        and "=?" not in value
        and "  " not in value
        and value.strip() == value
    ):
        return value  # already what the steps below make of it (most names and subjects)
    text = value
    for _ in range(3):  # nested encodings: =?utf-8?q?=3D=3F...?= decodes to another word
        if "=?" not in text:
            break
        text = _decode_words(_printable(text))
    text = _printable(text)
    # Anything that still looks like an encoded word is neutralised rather than trusted.
    text = _ENCODED_WORD.sub(lambda m: m.group(0).replace("=?", "= ?"), text)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > limit:
        cut = text[: limit - 1]
        if " " in cut[limit // 2 :]:
            cut = cut[: cut.rfind(" ")]
        text = cut.rstrip(" ,;:-") + "…"
    return text
