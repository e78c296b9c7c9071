"""Subscribers of the email digest: validating addresses, reading / writing CSV, listing.

Pure: text in, records out. The store keeps them; the CLI wires the two. A row that cannot be
used is reported with its line number and why, and the good rows are kept.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .addresses import _SPECIAL_USE as _SPECIAL_USE  # where the tests compare it
from .addresses import is_plainly_valid as is_plainly_valid
from .addresses import normalize_address as normalize_address
from .errors import InputError
from .languages import BUILT_IN

#: The languages a subscriber may choose when the caller names none (the config's
#: ``digest.languages`` is what the CLI and the web pass).
LANGUAGES = BUILT_IN
STATUSES = ("pending", "active", "unsubscribed", "bounced")  # consent.State's values


@dataclass(frozen=True, slots=True)
class Subscriber:
    address: str
    name: str
    language: str
    status: str = "active"
    subscribed: datetime | None = None
    left: datetime | None = None
    reason: str = ""
    id: int = 0


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    address: str
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.address or '(empty)'}: {self.problem}"


def normalize_language(raw: str, default: str = "en", languages: Sequence[str] = LANGUAGES) -> str:
    """``raw`` as one of ``languages`` (``default`` when empty), or an InputError."""
    value = raw.strip().lower() or default
    if value not in languages:
        expected = " or ".join(filter(None, (", ".join(languages[:-1]), languages[-1])))
        raise InputError(f"unknown language {raw.strip()!r} (expected {expected})")
    return value


# Header names of the common exports, compared lower-cased without spaces or punctuation:
# Mailchimp ("Email Address", "First Name", "Last Name"), listmonk ("email", "name",
# "attributes", "status"), iomfeed's own export ("address", "name", "language", "status").
# The first of the address names the header has wins: Mailchimp also has a postal "Address".
_ADDRESS_COLUMNS = ("emailaddress", "email", "mail", "address")
_NAME_COLUMNS = ("name", "fullname", "displayname")
_FIRST_COLUMNS = ("firstname", "fname", "givenname")
_LAST_COLUMNS = ("lastname", "lname", "surname", "familyname")
_LANGUAGE_COLUMNS = ("language", "lang")
_STATUS_COLUMNS = ("status", "subscriptionstatus")
# Mailchimp's export of unsubscribed and cleaned (bounced) members: a time in these columns
# means the person left.
_LEFT_COLUMNS = ("unsubtime", "cleantime")
_STAYING = ("", "active", "subscribed", "enabled", "confirmed", "unconfirmed")
DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True, slots=True)
class CsvRead:
    """What :func:`parse_csv` made of a file: the usable rows with their line numbers, the
    rows that cannot be used (``problems``), the rows of people who left according to the
    file (``left``: never imported as subscribers), and how the file was read."""

    rows: tuple[tuple[int, Subscriber], ...]
    problems: tuple[RowProblem, ...]
    left: tuple[RowProblem, ...]
    delimiter: str
    columns: str
    not_utf8: int = 0


def decode_csv(data: bytes) -> str:
    """The text of a CSV file: UTF-8 with or without a BOM (Excel writes one), or UTF-16
    with its BOM (Excel's "Unicode text"). Bytes that are not UTF-8 are kept as lone
    surrogates, so :func:`parse_csv` reports the rows that hold them by line."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"not valid UTF-16 text at byte {exc.start}") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    return data.decode("utf-8", "surrogateescape")


#: The zero-width joiner and non-joiner: part of how a name is written (an emoji family, a
#: Persian name), harmless in a terminal (digest/headers.py keeps them in names too).
_JOINERS = frozenset("\u200c\u200d")


def printable(value: str) -> str:
    """A cell or line as it can be printed: undecodable bytes and control characters (an
    escape sequence, a NUL) as U+FFFD, so text from a sign-up never reaches a terminal as
    it was typed."""
    text = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(c if c.isprintable() or c in _JOINERS else "\ufffd" for c in text)


def _bad_byte(cells: list[str]) -> int | None:
    for cell in cells:
        for c in cell:
            if "\udc80" <= c <= "\udcff":
                return ord(c) - 0xDC00
    return None


def _key(header: str) -> str:
    return "".join(c for c in header.lower() if c.isalnum())


def sniff_delimiter(text: str) -> str:
    """The one of ``,`` ``;`` and tab that the first non-empty line uses most outside
    quotes (a comma when it uses none: a file of addresses alone)."""
    for line in text.splitlines():
        if not line.strip():
            continue
        counts = dict.fromkeys(DELIMITERS, 0)
        quoted = False
        for c in line:
            if c == '"':
                quoted = not quoted
            elif not quoted and c in counts:
                counts[c] += 1
        best = max(DELIMITERS, key=lambda d: counts[d])
        return best if counts[best] else ","
    return ","


@dataclass(frozen=True, slots=True)
class _Columns:
    address: int
    name: int | None = None
    first: int | None = None
    last: int | None = None
    language: int | None = None
    attributes: int | None = None
    status: int | None = None
    left: tuple[int, ...] = ()
    width: int | None = None  # positional rows: at most this many cells


_POSITIONAL = _Columns(address=0, name=1, language=2, width=3)


def _header(cells: list[str], line: int) -> _Columns | None:
    """The columns a header row names, or None when the row is data (it has an '@')."""
    keys = [_key(c) for c in cells]

    def find(names: tuple[str, ...]) -> int | None:
        for name in names:
            if name in keys:
                return keys.index(name)
        return None

    address = find(_ADDRESS_COLUMNS)
    if address is None:
        if any("@" in c for c in cells):
            return None
        found = ", ".join(repr(printable(c.strip())) for c in cells if c.strip())
        raise InputError(
            f"line {line}: a header row ({found}) without an address column; name it"
            " 'email', 'Email Address' or 'address' (or leave the header out: address,"
            " name, language)"
        )
    return _Columns(
        address=address,
        name=find(_NAME_COLUMNS),
        first=find(_FIRST_COLUMNS),
        last=find(_LAST_COLUMNS),
        language=find(_LANGUAGE_COLUMNS),
        attributes=find(("attributes", "attribs")),
        status=find(_STATUS_COLUMNS),
        left=tuple(i for i, k in enumerate(keys) if k in _LEFT_COLUMNS),
    )


def _describe(columns: _Columns, header: list[str] | None) -> str:
    if header is None:
        return "no header: address, name, language"

    def col(i: int | None) -> str | None:
        return None if i is None else repr(header[i].strip())

    parts = [f"address from {col(columns.address)}"]
    if columns.name is not None:
        parts.append(f"name from {col(columns.name)}")
    elif columns.first is not None or columns.last is not None:
        both = " + ".join(c for c in (col(columns.first), col(columns.last)) if c)
        parts.append(f"name from {both}")
    if columns.language is not None:
        parts.append(f"language from {col(columns.language)}")
    elif columns.attributes is not None:
        parts.append(f"language from {col(columns.attributes)} (JSON)")
    return ", ".join(parts)


#: What a spreadsheet takes a cell starting with for a formula (OWASP's CSV injection list).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _quoted_formula(value: str) -> bool:
    """Whether ``value`` is apostrophes, then what a spreadsheet runs as a formula."""
    return value.lstrip("'").startswith(_FORMULA_START)


def _cell(row: list[str], index: int | None) -> str:
    value = row[index] if index is not None and index < len(row) else ""
    if value.startswith("'") and _quoted_formula(value):
        value = value[1:]  # what :func:`to_csv` quoted, read back as it was
    return value.strip()


def _inert(value: str) -> str:
    """A cell a spreadsheet shows as text: one that it would run as a formula (a name from
    the public form such as ``=HYPERLINK(...)``) starts with an apostrophe, which Excel and
    LibreOffice hide and an import here reads past (one more on a value that already starts
    with apostrophes before such a character, so that it reads back as it was)."""
    return "'" + value if _quoted_formula(value) else value


def _language_of(row: list[str], columns: _Columns) -> str:
    value = _cell(row, columns.language)
    if not value and columns.attributes is not None:  # listmonk: {"language": "sq", ...}
        import json

        try:
            attributes = json.loads(_cell(row, columns.attributes) or "{}")
        except ValueError:
            raise InputError("the attributes column is not JSON") from None
        if isinstance(attributes, dict):
            found = attributes.get("language", attributes.get("lang", ""))
            value = found if isinstance(found, str) else ""
    # "en-US", "sq_AL": the language is what comes before the region
    return value.replace("_", "-").partition("-")[0]


def _name_of(row: list[str], columns: _Columns) -> str:
    name = _cell(row, columns.name)
    if not name:
        name = f"{_cell(row, columns.first)} {_cell(row, columns.last)}"
    return " ".join(name.split())


def _left_why(row: list[str], columns: _Columns, header: list[str]) -> str | None:
    status = _cell(row, columns.status)
    if status.lower() not in _STAYING:
        return f"{header[columns.status or 0].strip()} is {status!r} in the file"
    for i in columns.left:
        if _cell(row, i):
            return f"{header[i].strip()} is set in the file"
    return None


@dataclass(slots=True)
class _Tally:
    """What :func:`parse_csv` has found so far."""

    rows: list[tuple[int, Subscriber]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    left: list[RowProblem] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # address (lower case): first line
    not_utf8: int = 0


def _csv_rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """Each record of the CSV text with the line it starts on, or the error that made it
    unreadable (the reader then goes on with the next line)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter)
    end = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield end + 1, exc
            end = reader.line_num
            continue
        line, end = end + 1, reader.line_num
        yield line, row


def _take_row(
    tally: _Tally,
    line: int,
    row: list[str],
    columns: _Columns,
    header: list[str] | None,
    default_language: str,
    languages: Sequence[str],
) -> None:
    """Count one data row as a subscriber, a problem, or a person who left."""
    raw_address = _cell(row, columns.address)
    if columns.width is not None and len(row) > columns.width:
        tally.problems.append(
            RowProblem(
                line,
                printable(raw_address),
                f"{len(row)} columns, expected at most 3 (address,"
                " name, language) without a header row",
            )
        )
        return
    try:
        address = normalize_address(raw_address)
        language = normalize_language(_language_of(row, columns), default_language, languages)
    except InputError as exc:
        tally.problems.append(RowProblem(line, printable(raw_address), str(exc)))
        return
    key = address.lower()
    if key in tally.seen:
        tally.problems.append(
            RowProblem(line, printable(raw_address), f"duplicate of line {tally.seen[key]}")
        )
        return
    tally.seen[key] = line
    why = _left_why(row, columns, header) if header is not None else None
    if why is not None:
        tally.left.append(RowProblem(line, address, f"{why}: not imported"))
        return
    tally.rows.append(
        (line, Subscriber(address=address, name=_name_of(row, columns), language=language))
    )


def parse_csv(
    text: str, *, default_language: str = "en", languages: Sequence[str] = LANGUAGES
) -> CsvRead:
    """Subscribers from CSV text, with the line each starts on, and every row that cannot
    be used, with why.

    The delimiter is sniffed (comma, semicolon or tab). A header row names the columns (the
    names of Mailchimp's, listmonk's and iomfeed's own exports are understood; other
    columns are ignored); without one, the columns are address, name, language. A row whose
    status (or Mailchimp's unsubscribe or clean time) says the person left is never
    imported. Duplicates within the file are problems after their first appearance; a
    row with bytes that are not UTF-8 is a problem of its own line.
    """
    tally = _Tally()
    delimiter = sniff_delimiter(text)
    columns: _Columns | None = None
    header: list[str] | None = None
    for line, row in _csv_rows(text, delimiter):
        if isinstance(row, csv.Error):
            tally.problems.append(RowProblem(line, "", f"not readable as CSV: {row}"))
            continue
        if not row or all(not cell.strip() for cell in row):
            continue
        bad = _bad_byte(row)
        if bad is not None:
            tally.not_utf8 += 1
            where = _cell(row, (columns or _POSITIONAL).address)
            tally.problems.append(
                RowProblem(line, printable(where), f"not UTF-8 text (byte 0x{bad:02x})")
            )
            continue
        if columns is None:
            columns = _header(row, line)
            if columns is not None:
                header = row
                continue
            columns = _POSITIONAL
        _take_row(tally, line, row, columns, header, default_language, languages)
    return CsvRead(
        rows=tuple(tally.rows),
        problems=tuple(tally.problems),
        left=tuple(tally.left),
        delimiter=delimiter,
        columns=_describe(columns or _POSITIONAL, header),
        not_utf8=tally.not_utf8,
    )


def to_csv(subscribers: Iterable[Subscriber]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["address", "name", "language", "status", "subscribed", "left", "reason"])
    for s in subscribers:
        writer.writerow(
            [
                _inert(s.address),
                _inert(s.name),
                s.language,
                s.status,
                s.subscribed.isoformat() if s.subscribed else "",
                s.left.isoformat() if s.left else "",
                _inert(s.reason),
            ]
        )
    return out.getvalue()


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide (CJK) characters two, combining marks and
    format characters none."""
    width = 0
    for c in text:
        if unicodedata.combining(c) or unicodedata.category(c) in ("Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return width


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as lines of columns aligned by display width, two spaces apart."""
    if not rows:
        return []
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c + " " * (w - display_width(c)) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]


def table(subscribers: Iterable[Subscriber]) -> list[str]:
    """``iomfeed subscribers list``: one aligned line per subscriber under a header. Names
    come from sign-ups: control characters are shown as U+FFFD, never sent to a terminal."""

    def day(value: datetime | None) -> str:
        return f"{value:%Y-%m-%d}" if value else ""

    rows = [("address", "name", "lang", "status", "joined", "left", "reason")]
    rows += [
        (
            s.address,
            printable(s.name),
            s.language,
            s.status,
            day(s.subscribed),
            day(s.left),
            printable(s.reason),
        )
        for s in subscribers
    ]
    return aligned(rows) if len(rows) > 1 else []
