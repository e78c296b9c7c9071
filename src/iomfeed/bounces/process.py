"""The bounce step: read the mailbox, classify each message, decide, store, mark it read.

For each message: :func:`.classify.classify`; the subscribers it is about (a VERP token
that verifies, a complaint's unsubscribe token, else the addresses it reports, believed
only when recently mailed); :class:`.policy.BouncePolicy` says what each does; the events
and their effect are stored in one transaction; only then is the message marked processed
in the mailbox. A crash before the commit reads it again next time; a crash after it
(before the mark) reads it again too, and finds it recorded (by a hash of its bytes), so
nothing is lost and nothing counts twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from .classify import Classified, Failure, Kind, classify
from .policy import Action, BouncePolicy, Trust
from .records import BounceEvent

if TYPE_CHECKING:
    from ..config import Config
    from ..store import Store
    from .mailbox import Mailbox

log = logging.getLogger(__name__)

#: The kinds that may act; auto-replies and the unrecognised are never "ignored bounces".
_BOUNCES = (Kind.HARD, Kind.SOFT, Kind.COMPLAINT)
_UNSUBSCRIBE_TOKEN = re.compile(r"[?&]t=([1-9][0-9]{0,17}\.[A-Za-z0-9_-]{22})")


@dataclass(frozen=True, slots=True)
class BounceReport:
    """One pass over the bounce mailbox."""

    where: str
    read: int = 0  # messages processed now
    again: int = 0  # messages read before (recorded, not marked read): marked now
    kinds: dict[str, int] = field(default_factory=dict)  # messages by kind
    bounced: int = 0  # subscribers marked bounced
    unsubscribed: int = 0  # subscribers unsubscribed by a complaint
    requests: int = 0  # subscribers unsubscribed by their own mail (List-Unsubscribe)
    ignored: int = 0  # bounces and complaints not acted on: not believed, or nobody on the list
    error: str = ""  # why the pass stopped early ('' when it read everything)

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True, slots=True)
class _Target:
    subscriber_id: int
    address: str
    digest_id: int | None
    trust: Trust
    note: str = ""  # why it is not believed, when not for the usual reason


@dataclass(slots=True)
class _Context:
    config: Config
    store: Store
    secret: bytes
    policy: BouncePolicy
    now: datetime


def process_mailbox(
    config: Config,
    store: Store,
    mailbox: Mailbox,
    *,
    secret: bytes,
    clock: Callable[[], datetime],
    stopping: Callable[[], bool] = lambda: False,
) -> BounceReport:
    """Process every new message of ``mailbox``; a mailbox error ends the pass (reported),
    with every message before it done."""
    from ..errors import MailboxError

    policy = BouncePolicy.from_config(config)
    kinds: Counter[str] = Counter()
    actions: Counter[Action] = Counter()
    requests = 0
    read = again = 0
    error = ""
    try:
        for incoming in mailbox.messages():
            key = hashlib.sha256(incoming.raw).hexdigest()
            if store.bounce_seen(key):
                again += 1
            else:
                ctx = _Context(config, store, secret, policy, clock())
                where = f"{mailbox.where} {incoming.key}"
                found, events = _recorded(ctx, key, _classified(incoming.raw, where), where)
                kinds[found.kind.value] += 1
                actions.update(e.action for e in events if e.kind in _BOUNCES)
                requests += sum(
                    e.kind is Kind.UNSUBSCRIBE and e.action is Action.UNSUBSCRIBED for e in events
                )
                read += 1
                _log(events)
            mailbox.done(incoming.key)
            if stopping():
                break
    except MailboxError as exc:
        error = str(exc)
        log.error("bounces: %s", exc)
    return BounceReport(
        where=mailbox.where,
        read=read,
        again=again,
        kinds=dict(kinds),
        bounced=actions[Action.BOUNCED],
        unsubscribed=actions[Action.UNSUBSCRIBED],
        requests=requests,
        ignored=actions[Action.IGNORED],
        error=error,
    )


def _classified(raw: bytes, where: str) -> Classified:
    """:func:`classify`, and a message it trips over kept as unrecognised: one odd message
    must not stop the pass at the same place run after run (a bug: logged with its trace)."""
    try:
        return classify(raw)
    except Exception as exc:
        log.exception("bounces: %s could not be classified; kept as unrecognised", where)
        return Classified(Kind.UNRECOGNISED, "", note=f"could not be classified: {exc!r}"[:200])


def _recorded(
    ctx: _Context, key: str, found: Classified, where: str
) -> tuple[Classified, list[BounceEvent]]:
    """The message's events, stored; a message that trips up the rules or the store is
    stored as unrecognised instead (with what went wrong): like :func:`_classified`, one
    odd message must not stop every later pass at the same place."""
    try:
        events = message_events(ctx, key, found)
        ctx.store.record_bounce(events)
        return found, events
    except Exception as exc:
        log.exception("bounces: %s could not be processed; kept as unrecognised", where)
        note = f"could not be processed: {exc!r}"[:200]
        found = Classified(Kind.UNRECOGNISED, found.message_id, note=note)
        events = message_events(ctx, key, found)
        ctx.store.record_bounce(events)
        return found, events


def _log(events: list[BounceEvent]) -> None:
    for e in events:
        log.info(
            "bounces: %s %s%s: %s (%s)",
            e.kind.value,
            e.address or "(nobody known)",
            f" digest {e.digest_id}" if e.digest_id else "",
            e.action.value,
            e.detail,
        )


def message_events(ctx: _Context, key: str, found: Classified) -> list[BounceEvent]:
    """The events of one classified message: one per subscriber it is about, or one about
    nobody (auto-replies and the unrecognised with no token, reports naming strangers)."""
    events = [_event(ctx, key, found, t, f) for t, f in _targets(ctx, found)]
    if not events:
        address = found.failures[0].address if found.failures else ""
        address = address or (found.complained[0] if found.complained else "")
        why = "names no subscriber" if address else f"{found.kind.value}: never acted on"
        if found.kind is Kind.UNSUBSCRIBE:
            why = "an unsubscribe request whose token names nobody on this list: never acted on"
        elif found.kind in (Kind.AUTO_REPLY, Kind.UNRECOGNISED):
            why = f"{found.kind.value} ({found.note}): never acted on"
        events.append(
            BounceEvent(
                message_key=key,
                message_id=found.message_id,
                received=ctx.now,
                kind=found.kind,
                subscriber_id=None,
                digest_id=None,
                address=address,
                status=found.failures[0].status if found.failures else "",
                trust=Trust.NONE,
                action=Action.IGNORED,
                detail=why,
            )
        )
    return events


def _event(
    ctx: _Context, key: str, found: Classified, target: _Target, failure: Failure | None
) -> BounceEvent:
    kind = found.kind
    if failure is not None:
        kind = Kind.HARD if failure.hard else Kind.SOFT
    profile = ctx.store.profile(subscriber_id=target.subscriber_id)
    on_list = profile is not None and profile.state.value in ("active", "pending")
    streak = 0
    if kind in (Kind.AUTO_REPLY, Kind.UNRECOGNISED):
        verdict_action, detail = Action.IGNORED, f"{kind.value} ({found.note}): never acted on"
    elif not on_list:
        state = profile.state.value if profile is not None else "forgotten"
        verdict_action, detail = Action.IGNORED, f"subscriber already {state}"
    elif target.note:
        verdict_action, detail = Action.IGNORED, target.note
    elif kind is Kind.UNSUBSCRIBE:  # their token proves it is them: as the one-click link
        verdict_action, detail = Action.UNSUBSCRIBED, "asked by mail (List-Unsubscribe)"
    else:
        history = ctx.store.sent_digests(target.subscriber_id)
        verdict = ctx.policy.verdict(kind, target.trust, target.digest_id, history)
        verdict_action, detail, streak = verdict.action, verdict.detail, verdict.hard_streak
    if kind is Kind.COMPLAINT:
        detail = f"{found.note}; {detail}"
    return BounceEvent(
        message_key=key,
        message_id=found.message_id,
        received=ctx.now,
        kind=kind,
        subscriber_id=target.subscriber_id,
        digest_id=target.digest_id,
        address=target.address,
        status=failure.status if failure is not None else "",
        trust=target.trust,
        action=verdict_action,
        detail=detail,
        hard_streak=streak,
    )


def _targets(ctx: _Context, found: Classified) -> list[tuple[_Target, Failure | None]]:
    """The subscribers a message is about, each with the failure reported for them: those
    its tokens name (trusted); else the addresses it reports, believed (trusted as
    recent) only for one subscriber mailed within trust_days: a message without a token
    that names several such subscribers acts on none of them (a forged report listing
    the whole list must not silence it)."""
    worst = _worst(found.failures)
    tokened = _token_targets(ctx, found)
    if tokened:  # a verified token says whom it is about; the rest may be mangled
        return [
            (t, next((f for f in found.failures if f.address == t.address.lower()), worst))
            for t in tokened
        ]
    reported: list[tuple[str, Failure | None]] = [(f.address, f) for f in found.failures]
    reported += [(a, None) for a in found.complained]
    out: list[tuple[_Target, Failure | None]] = []
    named: set[int] = set()
    for address, failure in reported:
        sub = ctx.store.subscriber(address)
        if sub is None or sub.id in named:
            continue
        named.add(sub.id)
        mailed, digest_id = False, None
        if ctx.policy.trust_days > 0:
            mailed, digest_id = ctx.store.last_mailed(sub.id, ctx.policy.trusted_since(ctx.now))
        trust = Trust.RECENT if mailed else Trust.NONE
        out.append((_Target(sub.id, sub.address, digest_id, trust), failure))
    recent = sum(1 for t, _ in out if t.trust is Trust.RECENT)
    if recent > 1:
        note = f"no token, and it names {recent} subscribers mailed lately: acts on none"
        out = [(_Target(t.subscriber_id, t.address, None, Trust.NONE, note), f) for t, f in out]
    return out


def _worst(failures: tuple[Failure, ...]) -> Failure | None:
    hard = [f for f in failures if f.hard]
    return (hard or list(failures))[0] if failures else None


def _token_targets(ctx: _Context, found: Classified) -> list[_Target]:
    from ..delivery.verp import find_tokens, verify

    if found.kind is Kind.UNSUBSCRIBE:
        return _unsubscribe_targets(ctx, [found.token])
    out: list[_Target] = []
    list_id = ctx.config.list_id
    for token in find_tokens(found.text, ctx.config.mail.bounce_address):
        profile = ctx.store.profile(subscriber_id=token.subscriber_id)
        if (
            profile is not None
            and verify(ctx.secret, list_id, token, profile.address)
            and all(t.subscriber_id != profile.id for t in out)
        ):
            out.append(_Target(profile.id, profile.address, token.digest_id, Trust.TOKEN))
    if found.kind is Kind.COMPLAINT and not out:
        # A complaint's returned message carries its recipient's unsubscribe link.
        out += _unsubscribe_targets(
            ctx, (m.group(1) for m in _UNSUBSCRIBE_TOKEN.finditer(found.text))
        )
    return out


def _unsubscribe_targets(ctx: _Context, tokens: Iterable[str]) -> list[_Target]:
    """The subscriber the first of ``tokens`` that verifies names (an unsubscribe token)."""
    from ..digest.unsubscribe import BadToken, token_subscriber, verify_token

    out: list[_Target] = []
    for token in tokens:
        profile = ctx.store.profile(subscriber_id=token_subscriber(token))
        if profile is None:
            continue
        try:
            verify_token(ctx.secret, ctx.config.list_id, token, profile.address)
        except BadToken:
            continue
        _mailed, digest_id = ctx.store.last_mailed(profile.id, ctx.policy.trusted_since(ctx.now))
        out.append(_Target(profile.id, profile.address, digest_id, Trust.TOKEN))
        break
    return out
