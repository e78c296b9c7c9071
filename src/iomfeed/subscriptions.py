"""Joining and leaving the list: every change to a subscriber, written once for every door.

The command line (``subscribers add|remove|import|forget``, ``unsubscribe TOKEN``) and the
web pages (``/unsubscribe``, the one-click POST, ``/subscribe``, ``/confirm``,
``/preferences``) call these functions and only translate their arguments and render the
typed results; the rules (who may be re-added, what an unsubscribe token must prove, which
address an operator may still remove, what each way of leaving records as the reason, the
double opt-in and its rate limits) live here and in :mod:`iomfeed.signup`. Reading and
writing CSV and checking addresses are :mod:`iomfeed.subscribers`' (pure); keeping the
records is the store's; the states, tokens and hashes are :mod:`iomfeed.consent`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from .consent import ConsentVia, State, SuppressionKeys
from .errors import BadAddress, InputError
from .subscribers import RowProblem, Subscriber, normalize_address, normalize_language

if TYPE_CHECKING:
    from .config import Config
    from .consent import Profile
    from .store import Store
    from .subscribers import CsvRead


class Joined(Enum):
    """What :func:`subscribe` did."""

    ADDED = "added"  # new, or back on their own request (``resubscribe``)
    EXISTS = "exists"  # already active: nothing to do
    LEFT = "left"  # unsubscribed or bounced before: not re-added behind their back
    SUPPRESSED = "suppressed"  # forgotten on request: not re-added behind their back


class _Keep(Enum):
    """The default of an argument that stays as it is when left out."""

    KEEP = "keep"


KEEP = _Keep.KEEP


class Via(Enum):
    """How someone left by their unsubscribe token; the value is the reason recorded."""

    COMMAND_LINE = "unsubscribe link (command line)"
    PAGE = "unsubscribe page"
    ONE_CLICK = "one-click unsubscribe (RFC 8058)"
    PREFERENCES = "preferences page"


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
    suppressed: tuple[RowProblem, ...] = ()  # forgotten on request
    resubscribed: int = 0  # of ``added``: left or forgotten before, back by --resubscribe

    @property
    def notes(self) -> list[RowProblem]:
        """The rows not imported and why, in the file's order."""
        return sorted([*self.read.problems, *self.left, *self.suppressed], key=lambda p: p.line)


def subscribe(
    store: Store,
    address: str,
    name: str,
    language: str,
    now: datetime,
    *,
    languages: tuple[str, ...],
    keys: SuppressionKeys,
    resubscribe: bool = False,
    via: ConsentVia = ConsentVia.COMMAND_LINE,
) -> Subscribed:
    """Subscribe one address (checked, the name's spaces tidied), recording the operator's
    consent as given ``via`` (as of ``now``). Someone who left, or was forgotten on request
    (their address's hash, made with ``keys``, is suppressed), is added again only with
    ``resubscribe``, when they asked to come back. Raises :class:`InputError` naming the
    address when it or the language is unusable."""
    try:
        sub = Subscriber(
            normalize_address(address),
            " ".join(name.split()),
            normalize_language(language, languages=languages),
        )
    except InputError as exc:
        raise InputError(f"{address}: {exc}") from None
    return Subscribed(sub.address, _join(store, sub, now, keys, resubscribe, via)[0])


def _join(
    store: Store,
    sub: Subscriber,
    now: datetime,
    keys: SuppressionKeys,
    again: bool,
    via: ConsentVia,
) -> tuple[Joined, bool]:
    """What adding ``sub`` did, and whether the address was suppressed before (its
    hashes made and looked up once)."""
    suppressions = keys.hashes(sub.address)
    hidden = store.is_suppressed(*suppressions)
    if hidden:
        if not again:
            # Kept under the list's own key too, now that the address is at hand: no later
            # change of secret can lose it.
            store.suppress(keys.hash(sub.address), now)
            return Joined.SUPPRESSED, hidden
        store.unsuppress(*suppressions)
    joined = Joined(store.add_subscriber(sub, now, via))
    if joined is Joined.LEFT and again:
        store.resubscribe(sub.address, now, via)
        joined = Joined.ADDED
    return joined, hidden


def remove(store: Store, address: str, reason: str, now: datetime) -> tuple[str, Subscriber | None]:
    """An operator unsubscribes ``address`` (kept, marked unsubscribed, with ``reason``).
    Returns the address as stored and the subscriber as it was before (None: not one). An
    address an older, looser check let in can still be removed as it is stored. Someone who
    already left keeps the record of when and why (the consent trail): removing them again
    changes nothing, and a sign-up of theirs still waiting for confirmation is dropped."""
    try:
        found = normalize_address(address)
    except BadAddress as exc:
        if store.subscriber(address.strip()) is None:
            raise InputError(f"{address}: {exc}") from None
        found = address.strip()
    before = store.subscriber(found)
    if before is None or before.status in (State.UNSUBSCRIBED.value, State.BOUNCED.value):
        return found, before
    if not store.drop_unconfirmed_return(found):  # else: back to how they left, as then
        store.set_subscriber_status(found, State.UNSUBSCRIBED.value, reason, now)
    return found, before


def read_csv(data: bytes, *, languages: tuple[str, ...]) -> CsvRead:
    """A CSV file's bytes as rows to import (nothing written yet). Raises
    :class:`InputError` when the file as a whole cannot be read."""
    from .subscribers import decode_csv, parse_csv

    return parse_csv(decode_csv(data), default_language=languages[0], languages=languages)


def import_rows(
    store: Store,
    read: CsvRead,
    now: datetime,
    *,
    keys: SuppressionKeys,
    resubscribe: bool = False,
) -> Imported:
    """Import what :func:`read_csv` read, recording consent as given by CSV import: every
    good row is added, re-imported ones count as unchanged; people who left and people
    forgotten on request (suppressed) are reported and not added back, unless
    ``resubscribe`` (the operator has their fresh consent). Rows the file itself marks as
    left (its status column) are never added."""
    added = unchanged = back = 0
    left, suppressed = list(read.left), []
    for line, sub in read.rows:
        was = store.subscriber(sub.address)
        joined, hidden = _join(store, sub, now, keys, resubscribe, ConsentVia.CSV_IMPORT)
        if joined is Joined.ADDED:
            added += 1
            back += hidden or (was is not None and was.status in ("unsubscribed", "bounced"))
        elif joined is Joined.EXISTS:
            unchanged += 1
        elif joined is Joined.SUPPRESSED:
            suppressed.append(
                RowProblem(
                    line,
                    sub.address,
                    "forgotten on request (suppressed); not re-added (--resubscribe if they"
                    " gave fresh consent)",
                )
            )
        else:
            left.append(
                RowProblem(
                    line,
                    sub.address,
                    "unsubscribed or bounced earlier; not re-added (--resubscribe if they"
                    " gave fresh consent)",
                )
            )
    return Imported(
        read=read,
        added=added,
        unchanged=unchanged,
        left=tuple(left),
        suppressed=tuple(suppressed),
        resubscribed=back,
    )


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


# ------------------------------------------------ a subscriber's own preferences and data


@dataclass(frozen=True, slots=True)
class Forgotten:
    address: str  # as given, normalised when it could be
    found: bool  # False: nobody had it (it is suppressed all the same)


def preferences_holder(store: Store, config: Config, token: str) -> Profile:
    """The subscriber a preferences token names, once the token proves it. Raises
    :class:`~iomfeed.digest.unsubscribe.BadToken` (nothing changed) for a token that is
    malformed, forged, changed, or names nobody (forgotten since): a web layer answers
    all of them with the same "this link does not work" page (400)."""
    from .consent import preferences_token_subscriber, verify_preferences_token
    from .digest.unsubscribe import BadToken, load_secret

    profile = store.profile(subscriber_id=preferences_token_subscriber(token))
    if profile is None:
        raise BadToken("preferences token names no subscriber")
    verify_preferences_token(load_secret(config, store), config.list_id, token, profile.address)
    return profile


def set_preferences(
    store: Store,
    config: Config,
    token: str,
    *,
    language: str | None = None,
    categories: Sequence[str] | None = None,
    paused_until: datetime | _Keep | None = KEEP,
) -> Profile:
    """Change what the token's subscriber gets: ``language`` (a code of
    ``digest.languages``), ``categories`` (empty: every category), ``paused_until`` (an
    aware time, or None to resume; no digest goes to them before it). Arguments left out
    stay as they are. Returns the subscriber as now stored (a web layer shows it back).
    Raises BadToken as :func:`preferences_holder` does, :class:`InputError` for a value
    that cannot be used (nothing changed either way)."""
    from .signup import clean_categories

    profile = preferences_holder(store, config, token)
    lang = (
        profile.language
        if language is None
        else normalize_language(language, languages=config.digest.languages)
    )
    cats = profile.categories if categories is None else clean_categories(categories)
    pause = profile.paused_until if isinstance(paused_until, _Keep) else paused_until
    if pause is not None and pause.tzinfo is None:
        raise InputError("paused_until: a time with its time zone is needed")
    store.set_preferences(profile.id, language=lang, categories=cats, paused_until=pause)
    after = store.profile(subscriber_id=profile.id)
    assert after is not None
    return after


def export_data(store: Store, config: Config, token: str) -> dict[str, Any]:
    """Everything stored about the token's subscriber, JSON-ready: the subscriber record
    (address, name, language, state, consent record, categories, pause, failures, the
    times of the last sign-up messages), what a sign-up waiting for confirmation replaced
    of it (``before_this_sign_up``: empty unless they had left), and every delivery of a
    digest to them (digest, its date, status, attempts, the server's last reply). Raises
    BadToken as :func:`preferences_holder` does."""
    from .jsonout import to_json

    profile = preferences_holder(store, config, token)
    return {
        "list": config.list_id,
        "subscriber": to_json(profile),
        "before_this_sign_up": store.kept_profile(profile.id),
        "deliveries": [to_json(d) for d in store.history(profile.id)],
    }


def forget(store: Store, config: Config, address: str, now: datetime) -> Forgotten:
    """Erase ``address`` and its name from the list and keep only a keyed hash of the
    address (HMAC-SHA256 with the list's own key, which no new signing secret changes), so
    no import re-adds it without ``--resubscribe`` and a sign-up starts a new double
    opt-in. The ledger keeps its rows (for the digests' totals) with no address and no
    server replies. An address nobody has is suppressed all the same. Raises
    :class:`InputError` for an unusable address that is not on the list."""
    from .digest.unsubscribe import suppression_keys

    try:
        found = normalize_address(address)
    except BadAddress as exc:
        if store.profile(address=address.strip()) is None:
            raise InputError(f"{address}: {exc}") from None
        found = address.strip()
    keys = suppression_keys(config, store)
    store.drop_queued_sign_ups(found)  # a web sign-up not yet acted on is forgotten too
    profile = store.profile(address=found)
    if profile is None:
        store.suppress(keys.hash(found), now)
        return Forgotten(found, False)
    store.forget_subscriber(profile.id, keys.hash(found), now)
    return Forgotten(found, True)
