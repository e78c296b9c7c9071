"""Turn a fetched body into text with the right character set.

Order, as browsers do it (WHATWG encoding sniffing, simplified): a byte-order mark, the charset
declared in the Content-Type header, a ``<meta charset>`` or ``http-equiv`` declaration in the
first 2 KB, then UTF-8 if the bytes are valid UTF-8, else windows-1252. Labels are mapped like
browsers map them: ``iso-8859-1`` and ``us-ascii`` mean windows-1252, so curly quotes in an
"ISO-8859-1" page do not turn into control characters.
"""

from __future__ import annotations

import codecs
import re

_META_RE = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_HEADER_RE = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)

# Labels that browsers decode as windows-1252 (WHATWG Encoding Standard).
_AS_WINDOWS_1252 = {
    "iso-8859-1",
    "iso8859-1",
    "latin1",
    "latin-1",
    "l1",
    "us-ascii",
    "ascii",
    "ansi_x3.4-1968",
    "cp819",
    "ibm819",
    "iso-ir-100",
    "windows-1252",
    "cp1252",
    "x-cp1252",
}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _normalise_label(label: str) -> str | None:
    label = label.strip().lower()
    if label in _AS_WINDOWS_1252:
        return "cp1252"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def detect_charset(body: bytes, content_type: str = "") -> str:
    """The codec name to decode ``body`` with."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return codec
    declared = _HEADER_RE.search(content_type)
    if declared and (label := _normalise_label(declared.group(1))):
        return label
    meta = _META_RE.search(body[:2048])
    if meta and (label := _normalise_label(meta.group(1).decode("ascii", "replace"))):
        # A page that says "utf-16" in a meta tag is really ASCII-compatible (WHATWG).
        return "utf-8" if label.startswith("utf-16") else label
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def decode_body(body: bytes, content_type: str = "") -> str:
    """Decode ``body``; undecodable bytes become U+FFFD rather than an exception."""
    name = detect_charset(body, content_type)
    text = body.decode(name, errors="replace")
    return text[1:] if text.startswith("\ufeff") else text
