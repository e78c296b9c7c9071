"""Joining and leaving the list: every change to a subscriber, written once for every door.

The command line (``subscribers add|remove|import``, ``unsubscribe TOKEN``) and the web
pages (``/unsubscribe``, the one-click POST) call these functions and only translate their
arguments and render the typed results; the rules (who may be re-added, what an
unsubscribe token must prove, which address an operator may still remove, what each way
of leaving records as the reason) live here. Reading and writing CSV and checking
addresses are :mod:`iomfeed.subscribers`' (pure); keeping the records is the store's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

from .errors import BadAddress, InputError
from .subscribers import RowProblem, Subscriber, normalize_address, normalize_language

if TYPE_CHECKING:
    from .config import Config
    from .store import Store
    from .subscribers import CsvRead


class Joined(Enum):
    """What :func:`subscribe` did."""

    ADDED = "added"  # new, or back on their own request (``resubscribe``)
    EXISTS = "exists"  # already active: nothing to do
    LEFT = "left"  # unsubscribed or bounced before: not re-added behind their back


class Via(Enum):
    """How someone left by their unsubscribe token; the value is the reason recorded."""

    COMMAND_LINE = "unsubscribe link (command line)"
    PAGE = "unsubscribe page"
    ONE_CLICK = "one-click unsubscribe (RFC 8058)"


@dataclass(frozen=True, slots=True)
class Subscribed:
    address: str
    joined: Joined


@dataclass(frozen=True, slots=True)
class Imported:
    """An imported CSV file: what was read, what was added, and every row not added."""

    read: CsvRead
    added: int
    unchanged: int  # already subscribed (a re-import)
    left: tuple[RowProblem, ...]  # they left, here or by the file's status column

    @property
    def notes(self) -> list[RowProblem]:
        """The rows not imported and why, in the file's order."""
        return sorted([*self.read.problems, *self.left], key=lambda p: p.line)


def subscribe(
    store: Store,
    address: str,
    name: str,
    language: str,
    now: datetime,
    *,
    languages: tuple[str, ...],
    resubscribe: bool = False,
) -> Subscribed:
    """Subscribe one address (checked, the name's spaces tidied). Someone who left is added
    again only with ``resubscribe``, when they asked to come back. Raises
    :class:`InputError` naming the address when it or the language is unusable."""
    try:
        sub = Subscriber(
            normalize_address(address),
            " ".join(name.split()),
            normalize_language(language, languages=languages),
        )
    except InputError as exc:
        raise InputError(f"{address}: {exc}") from None
    joined = Joined(store.add_subscriber(sub, now))
    if joined is Joined.LEFT and resubscribe:
        store.resubscribe(sub.address, now)
        joined = Joined.ADDED
    return Subscribed(sub.address, joined)


def remove(store: Store, address: str, reason: str, now: datetime) -> tuple[str, bool]:
    """An operator unsubscribes ``address`` (kept, marked unsubscribed, with ``reason``).
    Returns the address as stored and whether it was a subscriber. An address an older,
    looser check let in can still be removed as it is stored."""
    try:
        found = normalize_address(address)
    except BadAddress as exc:
        if store.subscriber(address.strip()) is None:
            raise InputError(f"{address}: {exc}") from None
        found = address.strip()
    return found, store.set_subscriber_status(found, "unsubscribed", reason, now)


def read_csv(data: bytes, *, languages: tuple[str, ...]) -> CsvRead:
    """A CSV file's bytes as rows to import (nothing written yet). Raises
    :class:`InputError` when the file as a whole cannot be read."""
    from .subscribers import decode_csv, parse_csv

    return parse_csv(decode_csv(data), default_language=languages[0], languages=languages)


def import_rows(store: Store, read: CsvRead, now: datetime) -> Imported:
    """Import what :func:`read_csv` read: every good row is added, re-imported ones count
    as unchanged, people who left are not added back."""
    added = unchanged = 0
    left = list(read.left)
    for line, sub in read.rows:
        joined = Joined(store.add_subscriber(sub, now))
        if joined is Joined.ADDED:
            added += 1
        elif joined is Joined.EXISTS:
            unchanged += 1
        else:
            left.append(
                RowProblem(line, sub.address, "unsubscribed or bounced earlier; not re-added")
            )
    return Imported(read=read, added=added, unchanged=unchanged, left=tuple(left))


def token_holder(store: Store, config: Config, token: str) -> Subscriber | None:
    """The subscriber an unsubscribe token names, once the token proves it (signed with
    this list's secret for their address); None when it names nobody. Raises
    :class:`~iomfeed.digest.unsubscribe.BadToken` for a forged or malformed token."""
    from .digest.unsubscribe import load_secret, token_subscriber, verify_token

    sub = store.subscriber_by_id(token_subscriber(token))
    if sub is not None:
        verify_token(load_secret(config, store), config.list_id, token, sub.address)
    return sub


def leave(store: Store, sub: Subscriber, via: Via, now: datetime) -> bool:
    """The subscriber leaves the list by their token; False when they were no longer
    active (already unsubscribed or bounced: nothing changes)."""
    if sub.status != "active":
        return False
    store.set_subscriber_status(sub.address, "unsubscribed", via.value, now)
    return True
