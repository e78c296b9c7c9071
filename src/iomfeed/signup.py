"""Signing up and managing one's own subscription: double opt-in, preferences, data export,
forgetting. The core of the web forms (``/subscribe``, ``/confirm``, ``/preferences``) and
of ``iomfeed subscribers forget``: no web, no printing; typed results.

The lifecycle (the states are :class:`~iomfeed.consent.State`)::

    (nobody) --sign_up--> pending --confirm--> active --leave / bounces--> unsubscribed|bounced
                           ^  |                  |                             |
                           |  +-- sign_up: the confirmation again, at most once an hour
                           |                     +-- sign_up: "already subscribed", once a day
                           +---------------- sign_up: a new double opt-in ----+
    forget: any state --> no address, no name; a keyed hash of the address is suppressed
                          (sign_up starts a new double opt-in; imports skip it)

Only an active subscriber who is not paused gets digests (the store's ``create_digest``
and ``mark_sending``). A message that cannot be handed over is logged and reported in the
result (``mail_error``); the sign-up itself is kept, and the rate limit does not count it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

from .consent import (
    Consent,
    ConsentVia,
    Profile,
    State,
    SuppressionKeys,
    confirm_token,
    confirm_token_parts,
    preferences_token,
    truncate_ip,
    verify_confirm_token,
)
from .digest.unsubscribe import BadToken
from .errors import BadAddress, DeliveryError, InputError
from .subscribers import Subscriber, normalize_address, normalize_language

if TYPE_CHECKING:
    from .config import Config
    from .delivery.mailers import Mailer
    from .notices import Links, Notice, Story
    from .store import Store

log = logging.getLogger(__name__)

#: At most this many categories, each at most this long (a form's input is capped).
MAX_CATEGORIES = 50
MAX_CATEGORY_LENGTH = 100


class SignUpOutcome(Enum):
    """What :func:`sign_up` did. For the operator's logs and tests only: a web page must
    answer every outcome identically, or it tells strangers who is on the list."""

    CONFIRMATION_SENT = "confirmation sent"  # new (or left, or forgotten): a double opt-in
    CONFIRMATION_RESENT = "confirmation sent again"  # pending, and the hour has passed
    CONFIRMATION_HELD = "confirmation not sent again yet"  # pending, within the hour
    NOTICE_SENT = "already-subscribed message sent"  # active
    NOTICE_HELD = "already-subscribed message not sent again yet"  # active, within the day


@dataclass(frozen=True, slots=True)
class SignedUp:
    outcome: SignUpOutcome
    subscriber_id: int
    mail_error: str = ""  # the message could not be handed over (logged)


class ConfirmOutcome(Enum):
    CONFIRMED = "confirmed"  # pending -> active; the welcome went
    ALREADY = "already confirmed"  # active: nothing changed, no second welcome
    NOT_PENDING = "not pending"  # they left (or bounced) since: nothing changed


@dataclass(frozen=True, slots=True)
class Confirmed:
    outcome: ConfirmOutcome
    address: str
    preferences_url: str  # '' unless the subscriber is active
    mail_error: str = ""


def _secret(config: Config, store: Store) -> bytes:
    from .digest.unsubscribe import load_secret

    return load_secret(config, store)


def _suppression_keys(config: Config, store: Store) -> SuppressionKeys:
    from .digest.unsubscribe import suppression_keys

    return suppression_keys(config, store)


def clean_categories(categories: Sequence[str]) -> tuple[str, ...]:
    """The categories chosen, spaces tidied, duplicates and empty ones dropped, in order;
    :class:`InputError` when there are too many or one is too long."""
    seen: dict[str, None] = {}
    for raw in categories:
        name = " ".join(str(raw).split())
        if len(name) > MAX_CATEGORY_LENGTH:
            raise InputError(f"category {name[:40]!r}…: longer than {MAX_CATEGORY_LENGTH}")
        if name:
            seen.setdefault(name, None)
    if len(seen) > MAX_CATEGORIES:
        raise InputError(f"{len(seen)} categories chosen: at most {MAX_CATEGORIES}")
    return tuple(seen)


def sign_up(
    store: Store,
    config: Config,
    mailer: Mailer,
    *,
    address: str,
    name: str,
    language: str,
    categories: Sequence[str],
    via: ConsentVia,
    now: datetime,
    ip: str | None = None,
    retaken: bool = False,
) -> SignedUp:
    """Someone asks for the digest at ``address``: a new (or returning) address becomes
    *pending* and gets one confirmation message in ``language`` with the link
    ``{site.public_url}confirm?t=…`` (valid ``subscribe.confirm_days``); a pending one gets
    it again at most once every ``subscribe.confirm_resend_hours``; an active one gets "you
    are already subscribed" (with its preferences link) at most once every
    ``subscribe.notice_hours``, and nothing about it changes. ``ip`` is kept, truncated,
    only when ``subscribe.record_ip``. ``retaken``: a sign-up taken up again from a worker
    that died, whose message may have been counted as going and not gone: sent whatever
    those limits say (a second message, never none).

    A web layer must render every :class:`SignUpOutcome` (and ``mail_error``) the same way.
    Raises :class:`InputError` (:class:`~iomfeed.errors.BadAddress` for the address) when the
    address, the language or the categories are unusable: that answer may differ, as it
    depends only on what was typed."""
    sub = _checked(config, address, name, language)
    chosen = clean_categories(categories)
    consent = Consent(
        at=now,
        via=via,
        language=sub.language if via is ConsentVia.WEB_FORM else "",
        ip=truncate_ip(ip) if ip and config.subscribe.record_ip else "",
        confirmed=None,
    )
    found = store.profile(address=sub.address)
    hours = timedelta(hours=0 if retaken else config.subscribe.confirm_resend_hours)
    # Each message is counted as going first, by a change that holds only if nobody made it.
    if found is None:
        sid = store.add_pending(sub, chosen, consent, now)
        if sid is None:  # another process added the address just now, and sends
            return SignedUp(SignUpOutcome.CONFIRMATION_HELD, 0)
        return _send_confirmation(
            store, config, mailer, sid, now, SignUpOutcome.CONFIRMATION_SENT, before=None
        )
    store.skip_subscriber_id()  # as many ids used as by a new address: the ids tell nothing
    if found.state is State.ACTIVE:
        return _notice_again(store, config, mailer, found, now, retaken=retaken)
    restarted, before = store.restart_pending(
        found.id, sub, chosen, consent, state=found.state.value, now=now, resend_after=now - hours
    )
    if not restarted:  # a confirmation went within the hour, or another process sends one
        return SignedUp(SignUpOutcome.CONFIRMATION_HELD, found.id)
    again = found.state is State.PENDING
    outcome = SignUpOutcome.CONFIRMATION_RESENT if again else SignUpOutcome.CONFIRMATION_SENT
    return _send_confirmation(store, config, mailer, found.id, now, outcome, before=before)


def _checked(config: Config, address: str, name: str, language: str) -> Subscriber:
    """The sign-up's address, name and language as kept; InputError naming what is wrong."""
    try:
        checked = normalize_address(address)
    except BadAddress as exc:
        raise BadAddress(f"{address}: {exc}") from None
    try:
        lang = normalize_language(language, languages=config.digest.languages)
    except InputError as exc:
        raise InputError(f"language: {exc}") from None
    return Subscriber(checked, " ".join(name.split()), lang)


def _send_confirmation(
    store: Store,
    config: Config,
    mailer: Mailer,
    sid: int,
    now: datetime,
    outcome: SignUpOutcome,
    *,
    before: datetime | None,
) -> SignedUp:
    """The confirmation, counted as going already (so that two processes taking up
    sign-ups of one address at once send one, not two), uncounted if it does not go;
    ``before``: when the one before went."""
    from .notices import Links, Notice

    error = "not sent"  # until _mail says otherwise: raised (a busy store, a bug) or not
    try:
        profile = store.profile(subscriber_id=sid)
        assert profile is not None
        token = confirm_token(_secret(config, store), config.list_id, sid, profile.address, now)
        # The preferences link lets the person correct language or categories, or leave,
        # before confirming (the page answers pending subscribers too).
        links = Links(
            confirm=f"{config.confirm_url}?t={token}",
            preferences=preferences_url(config, store, profile),
        )
        error = _mail(store, config, mailer, Notice.CONFIRM, profile, links, now)
    finally:
        if error:  # not sent, not counted: the next sign-up sends it
            store.release_sign_up_mail(sid, "confirm_sent", before)
    return SignedUp(outcome, sid, error)


def _notice_again(
    store: Store, config: Config, mailer: Mailer, profile: Profile, now: datetime, *, retaken: bool
) -> SignedUp:
    from .notices import Notice

    interval = timedelta(hours=0 if retaken else config.subscribe.notice_hours)
    if not store.claim_notice(profile.id, now, now - interval):
        return SignedUp(SignUpOutcome.NOTICE_HELD, profile.id)
    error = "not sent"  # until _mail says otherwise
    try:
        links = _member_links(store, config, profile)
        error = _mail(store, config, mailer, Notice.ALREADY, profile, links, now)
    finally:
        if error:  # not sent, not counted
            store.release_sign_up_mail(profile.id, "notice_sent", profile.notice_sent)
    return SignedUp(SignUpOutcome.NOTICE_SENT, profile.id, error)


def _member_links(store: Store, config: Config, profile: Profile) -> Links:
    """The preferences and unsubscribe links of someone on the list."""
    from urllib.parse import quote

    from .digest.message import unsubscribe_link
    from .digest.unsubscribe import make_token
    from .notices import Links

    secret = _secret(config, store)
    unsubscribe = make_token(secret, config.list_id, profile.id, profile.address)
    return Links(
        preferences=preferences_url(config, store, profile),
        unsubscribe=unsubscribe_link(config.unsubscribe_url, unsubscribe),
        unsubscribe_mailto=(
            f"mailto:{config.unsubscribe_mailto}?subject={quote('unsubscribe ' + unsubscribe)}"
            if config.unsubscribe_mailto  # only where such mail is acted on
            else ""
        ),
    )


def preferences_url(config: Config, store: Store, profile: Profile) -> str:
    """``{site.public_url}preferences?t=…`` for this subscriber (the token lasts as long as
    the address is on the list)."""
    token = preferences_token(_secret(config, store), config.list_id, profile.id, profile.address)
    return f"{config.preferences_url}?t={token}"


def _mail(
    store: Store,
    config: Config,
    mailer: Mailer,
    kind: Notice,
    profile: Profile,
    links: Links,
    now: datetime,
) -> str:
    """Render and hand over one sign-up message; '' when it went, else why not (logged)."""
    from .delivery.quota import quota_state
    from .notices import compose, render

    language = config_language(config, profile.language)
    stories = latest_stories(store, config, profile) if kind.value == "welcome" else None
    # The confirmation goes to an address nobody has vouched for yet, so it carries none of
    # the form's free text: a name typed by a stranger could be any message to anyone.
    name = "" if kind.value == "confirm" else profile.name
    rendered = render(
        kind,
        config=config,
        language=language,
        address=profile.address,
        name=name,
        links=links,
        stories=stories,
    )
    message = compose(
        kind,
        rendered,
        config=config,
        language=language.code,
        subscriber_id=profile.id,
        address=profile.address,
        name=name,
        links=links,
        now=now,
    )
    message = replace(message, sender=_envelope(config, store, profile, message.sender))
    quota = quota_state(config, store, now)
    if quota.full:  # not queued: the sign-up answers as for a relay that is down
        log.warning(
            "%s message to subscriber %d not sent: %s", kind.value, profile.id, quota.note()
        )
        return quota.note()
    try:
        mailer.send(message)
    except DeliveryError as exc:
        log.warning("%s message to subscriber %d not sent: %s", kind.value, profile.id, exc)
        return str(exc) or type(exc).__name__
    store.record_sent(now, kind.value)  # counted for mail.hourly_limit / mail.daily_limit
    log.info("%s message sent to subscriber %d", kind.value, profile.id)
    return ""


def _envelope(config: Config, store: Store, profile: Profile, fallback: str) -> str:
    """A sign-up message's envelope sender: VERP naming no digest (:mod:`.delivery.verp`)."""
    from .delivery.verp import envelope_sender

    secret = _secret(config, store) if config.mail.bounce_address else b""
    return envelope_sender(
        config.mail.bounce_address,
        fallback,
        secret=secret,
        list_id=config.list_id,
        digest_id=None,
        subscriber_id=profile.id,
        address=profile.address,
    )


def config_language(config: Config, code: str) -> Any:
    """The language file of ``code`` (the config's first language when it is no longer
    offered)."""
    from .languages import load

    if code not in config.digest.languages:
        code = config.digest.languages[0]
    return load(code, config.languages_path)


def latest_stories(store: Store, config: Config, profile: Profile) -> list[Story]:
    """The welcome's list: the newest ``digest.first_items`` stories (of the categories
    chosen, when some are), as the list's first digest would show them."""
    from .digest.stories import format_date
    from .notices import Story

    limit = config.digest.first_items
    if profile.categories:
        found = {
            i.id: i for c in profile.categories for i in store.items_in_category(c, limit=limit)
        }
        items = sorted(found.values(), key=lambda i: (i.published, i.id), reverse=True)[:limit]
    else:
        items = store.items(limit=limit)
    chrome = config_language(config, profile.language).chrome
    return [
        Story(i.title, i.url, format_date(i.published, chrome, config.site.timezone)) for i in items
    ]


def confirm(store: Store, config: Config, mailer: Mailer, token: str, now: datetime) -> Confirmed:
    """The confirmation link was followed (a web layer calls this on POST only: link
    scanners prefetch GETs). A pending subscriber becomes active and gets the welcome
    message with the latest stories and their preferences link. Raises :class:`BadToken`,
    with nothing changed, for a token that is malformed, forged, changed, expired, issued
    before the latest sign-up of its address, or names nobody (forgotten since)."""
    from .notices import Notice

    profile = confirm_holder(store, config, token, now)
    if profile.state is State.ACTIVE:
        return Confirmed(
            ConfirmOutcome.ALREADY, profile.address, preferences_url(config, store, profile)
        )
    if profile.state is not State.PENDING:
        return Confirmed(ConfirmOutcome.NOT_PENDING, profile.address, "")
    store.activate(profile.id, now)
    store.unsuppress(*_suppression_keys(config, store).hashes(profile.address))
    links = _member_links(store, config, profile)
    error = _mail(store, config, mailer, Notice.WELCOME, profile, links, now)
    return Confirmed(ConfirmOutcome.CONFIRMED, profile.address, links.preferences, error)


def confirm_holder(store: Store, config: Config, token: str, now: datetime) -> Profile:
    """The subscriber a confirmation token names, once the token proves it; changes
    nothing (the confirmation page's GET shows its button with it). Raises
    :class:`BadToken` as :func:`confirm` does."""
    sid, issued = confirm_token_parts(token)
    profile = store.profile(subscriber_id=sid)
    if profile is None:
        raise BadToken("confirmation token names no subscriber")
    verify_confirm_token(
        _secret(config, store),
        config.list_id,
        token,
        profile.address,
        now,
        config.subscribe.confirm_days,
    )
    replaced = profile.consent.at is not None and issued < profile.consent.at.replace(microsecond=0)
    if profile.state is State.PENDING and replaced:
        raise BadToken("confirmation token was replaced by a later sign-up")
    return profile
