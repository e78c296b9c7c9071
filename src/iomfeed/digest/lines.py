"""Line lengths of a rendered digest, and the tokens each subscriber's values replace.

The messages go out with 8bit transfer encoding, whose lines must stay under 998 bytes, so
long lines are broken where a break cannot change the rendering; sizes are measured with
every token standing for a value of :data:`TOKEN_STAND_IN` bytes. Pure string work.
"""

from __future__ import annotations

import re

#: Filled for each subscriber by ``message.py``: the greeting line (``RenderedDigest.greeting``
#: with their name, or ``greeting_no_name``), their unsubscribe link, their address, the
#: link to their preferences page.
GREETING = "%%GREETING%%"
UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
ADDRESS = "%%ADDRESS%%"
PREFERENCES_URL = "%%PREFERENCES_URL%%"
TOKENS = (GREETING, UNSUBSCRIBE_URL, ADDRESS, PREFERENCES_URL)

#: Bytes a token may turn into (an address's longest legal form) when sizes are measured.
TOKEN_STAND_IN = 320
#: Longest line of the html and text returned, tokens counted as TOKEN_STAND_IN bytes:
#: under SMTP's 998 with room to spare.
MAX_LINE_BYTES = 900


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
