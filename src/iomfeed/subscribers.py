"""Subscribers of the email digest: validating addresses and reading / writing CSV.

Pure: text in, records out. The store keeps them; the CLI wires the two. A row that cannot be
used is reported with its line number and why, and the good rows are kept.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

LANGUAGES = ("en", "sq")
STATUSES = ("active", "unsubscribed", "bounced")

_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


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


def normalize_address(raw: str) -> str:
    """The address in the form iomfeed stores it (domain lower-cased), or ValueError saying
    what is wrong. Accepts plain addresses only: no display names, no comments."""
    value = raw.strip()
    if not value:
        raise ValueError("empty address")
    if any(c.isspace() for c in value) or any(c in value for c in '<>(),;:"[]\\'):
        raise ValueError("not a plain e-mail address (spaces, brackets or separators in it)")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("an address needs one '@' with a name before it and a domain after")
    if not _LOCAL_RE.match(local) or local.startswith(".") or local.endswith(".") \
            or ".." in local:
        raise ValueError(f"invalid name part {local!r}")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError(f"invalid domain {domain!r}") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels) \
            or labels[-1].isdigit() or len(ascii_domain) > 253:
        raise ValueError(f"invalid domain {domain!r}")
    # The domain in its ASCII (IDNA, "xn--") form: one spelling per mailbox, and what
    # SMTP and mail headers carry.
    return f"{local}@{ascii_domain}"


def normalize_language(raw: str, default: str = "en") -> str:
    value = raw.strip().lower() or default
    if value not in LANGUAGES:
        raise ValueError(f"unknown language {raw.strip()!r} (expected en or sq)")
    return value


def parse_csv(text: str, *, default_language: str = "en"
              ) -> tuple[list[tuple[int, Subscriber]], list[RowProblem]]:
    """Rows of ``address,name,language`` (a header row is optional) as subscribers, with
    their line numbers, and every row that cannot be used. Duplicates within the file are
    problems after their first appearance."""
    good: list[tuple[int, Subscriber]] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if line == 1 and row[0].strip().lower() in ("address", "email", "e-mail"):
            continue
        raw_address = row[0].strip()
        if len(row) > 3:
            problems.append(RowProblem(line, raw_address, f"{len(row)} columns, expected at"
                                                          " most 3 (address, name, language)"))
            continue
        try:
            address = normalize_address(raw_address)
            language = normalize_language(row[2] if len(row) > 2 else "", default_language)
        except ValueError as exc:
            problems.append(RowProblem(line, raw_address, str(exc)))
            continue
        key = address.lower()
        if key in seen:
            problems.append(RowProblem(line, raw_address, f"duplicate of line {seen[key]}"))
            continue
        seen[key] = line
        name = " ".join((row[1] if len(row) > 1 else "").split())
        good.append((line, Subscriber(address=address, name=name, language=language)))
    return good, problems


def to_csv(subscribers: Iterable[Subscriber]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["address", "name", "language", "status", "subscribed", "left", "reason"])
    for s in subscribers:
        writer.writerow([s.address, s.name, s.language, s.status,
                         s.subscribed.isoformat() if s.subscribed else "",
                         s.left.isoformat() if s.left else "", s.reason])
    return out.getvalue()
