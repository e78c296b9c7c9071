"""The digest's lifecycle as one state machine: its states, the transitions allowed between
them, and the pure decisions that move a digest along. Decides only: no store, no mailer, no
clock of its own. :mod:`.steps` reads the store, asks these functions and applies the answers.

::

      (not recorded)               recorded in the store (digests.status)
      DUE ──nothing new, nobody to send to──> SKIPPED                        'skipped'
       │
       └──ledger made──> CREATED ──> SENDING ──every delivery final──> SENT   'sent'
                                      │   ^
             stopped, deferred, or an v   │ the next run resumes it
             error concerning everyone PARTIAL                              'sending'

``CREATED``, ``SENDING`` and ``PARTIAL`` are all stored as 'sending' (a digest whose ledger
still has rows due); a digest found so at the start of a run is ``PARTIAL`` and is resumed,
never made again. Only one such digest exists at a time (the store refuses a second).

A digest's ledger has one row per subscriber, a :class:`DeliveryStatus`: 'pending' until its
turn, 'sending' while the message is out (committed before it leaves, so a crash leaves at
most one row so, re-sent with the same Message-ID), then 'sent', 'failed' (refused, gave up,
or the message could not be made), 'skipped' (left the list before their turn, or nothing
new in their categories: see :mod:`.segments`), or 'pending' again (deferred to the next
run). The digest is ``SENT`` when no row is 'pending' or
'sending'. The retry and bounce rules of a delivery are in :mod:`..delivery.policy`.

The relay's quota (``mail.hourly_limit``, ``mail.daily_limit``) moves nothing: with no room
left a due digest is neither made nor resumed (:class:`Wait`), it stays as it is (not made
yet, or ``PARTIAL`` with its rows pending) until the quota frees up, and a send that fills
the quota half-way ends ``PARTIAL`` like a stopped one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..errors import ConfigError, IllegalTransition
from .states import DeliveryStatus as DeliveryStatus
from .states import DigestState as DigestState

if TYPE_CHECKING:
    from ..delivery.policy import QuotaState
    from ..models import DigestRecord
    from ..output_records import DigestContent


#: Why a ledger row was made 'skipped': nothing new in the subscriber's categories.
NOTHING_FOR_THEM = "nothing new in their categories"

#: The states the store records ('sending', 'sent', 'skipped'): CREATED and PARTIAL are
#: recorded as SENDING, DUE is never recorded.
STORED = frozenset({DigestState.SENDING, DigestState.SENT, DigestState.SKIPPED})

#: Every transition the lifecycle allows; anything else is :class:`IllegalTransition`.
TRANSITIONS: dict[DigestState, frozenset[DigestState]] = {
    DigestState.DUE: frozenset({DigestState.CREATED, DigestState.SKIPPED}),
    DigestState.CREATED: frozenset({DigestState.SENDING}),
    DigestState.SENDING: frozenset({DigestState.SENT, DigestState.PARTIAL}),
    DigestState.PARTIAL: frozenset({DigestState.SENDING}),
    DigestState.SENT: frozenset(),
    DigestState.SKIPPED: frozenset(),
}


def advance(current: DigestState, target: DigestState) -> DigestState:
    """``target``, when the lifecycle allows going there from ``current``."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.name for s in TRANSITIONS[current])) or "none, it is final"
        raise IllegalTransition(
            f"a digest cannot go from {current.name} to {target.name} (allowed: {allowed})"
        )
    return target


def state_of(record: DigestRecord) -> DigestState:
    """Where a recorded digest stands when a run finds it: one still 'sending' was left
    with deliveries due (by a stop, a deferral or a crash), so it is ``PARTIAL``."""
    status = DigestState(record.status)
    if status not in STORED:
        raise IllegalTransition(f"digest {record.id}: {status.value!r} is not a stored status")
    return DigestState.PARTIAL if status is DigestState.SENDING else status


def after_send(finished: bool) -> DigestState:
    """Where a send leaves its digest: ``SENT`` when every delivery is final."""
    return DigestState.SENT if finished else DigestState.PARTIAL


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True)
class Resume:
    """Send what is still due of the digest already recorded."""

    record: DigestRecord


@dataclass(frozen=True, slots=True)
class Skip:
    """Record the due digest as skipped, with why."""

    note: str


@dataclass(frozen=True, slots=True)
class Create:
    """Record the selected digest and its ledger, then send it."""


@dataclass(frozen=True, slots=True)
class Wait:
    """Send nothing now: the relay's quota is full until ``until``. ``record``: the open
    digest, left as it is (None: none is open, and none is made)."""

    until: datetime | None
    note: str
    record: DigestRecord | None = None


Step = Resume | Skip | Create | Wait


def decide(
    *,
    open_digest: DigestRecord | None,
    content: DigestContent,
    skip_empty: bool,
    active_subscribers: int,
    wanted: int | None = None,
    quota: QuotaState | None = None,
) -> Step:
    """What a send does with a due digest: resume the open one (whatever is new since: its
    items are frozen), skip when nothing is new (``digest.skip_empty``) or nobody is there to
    receive it, or make it of ``content``. ``wanted``: how many of the active subscribers
    have something new in the categories they chose (None: all of them); with
    ``skip_empty``, a digest that has nothing for anybody is skipped as an empty one is.
    ``quota``: the relay's quota now; a full one means :class:`Wait` instead of resuming or
    making one (a skip sends nothing, so it is recorded whatever the quota)."""
    full = quota is not None and quota.full
    if open_digest is not None:
        if full:
            assert quota is not None
            return Wait(quota.frees_at, quota.note(), open_digest)
        return Resume(open_digest)
    if not content.entries and skip_empty:
        since = content.since.isoformat() if content.since else "the start"
        return Skip(f"nothing new since {since}")
    if active_subscribers == 0:
        return Skip("no active subscribers")
    if wanted == 0 and skip_empty:
        return Skip("nothing new in the categories the subscribers chose")
    if full:
        assert quota is not None
        return Wait(quota.frees_at, quota.note())
    return Create()


def first_status(*, has_stories: bool, skip_empty: bool) -> DeliveryStatus:
    """A new digest's ledger row for one recipient: 'pending', or 'skipped' (final, neither
    sent nor failed) when their category segment has nothing new and ``digest.skip_empty``
    says an empty digest is not sent (:data:`NOTHING_FOR_THEM`)."""
    return DeliveryStatus.SKIPPED if skip_empty and not has_stories else DeliveryStatus.PENDING


def next_due(
    schedule: str, timezone: str, mark: datetime, key: str = "schedule.digest"
) -> datetime:
    """The first scheduled time strictly after ``mark`` (a crontab expression in
    ``timezone``): a digest made at 08:00:00 for the 08:00 slot has used that slot."""
    from ..cron import quick_next
    from ..cron import trigger as cron_trigger

    quick = quick_next(schedule, timezone, mark + timedelta(seconds=1))
    if quick is not None:  # the usual expressions, without loading APScheduler
        return quick
    try:
        trigger = cron_trigger(schedule, timezone)
    except ConfigError as exc:
        raise ConfigError(f"{key}: invalid crontab expression {schedule!r}: {exc}") from exc
    when = trigger.get_next_fire_time(None, mark + timedelta(seconds=1))
    if when is None:  # pragma: no cover - a crontab expression always fires again
        raise ConfigError(f"{key}: {schedule!r} never fires")
    return when  # type: ignore[no-any-return]


def next_digest(
    *,
    schedule: str,
    timezone: str,
    now: datetime,
    last: DigestRecord | None,
    open_digest: DigestRecord | None,
    first_run: datetime | None,
) -> datetime | None:
    """When the next digest is due (``now`` while one is being sent); None before iomfeed
    ever ran."""
    if open_digest is not None:
        return now
    mark = last.created if last is not None else first_run
    return None if mark is None else next_due(schedule, timezone, mark)


def is_due(
    *,
    schedule: str,
    timezone: str,
    now: datetime,
    last: DigestRecord | None,
    open_digest: DigestRecord | None,
    first_run: datetime | None,
) -> bool:
    """Whether a run should send a digest now.

    Due when one is still being sent (resume it), or when a scheduled time has passed since
    the last digest was made (sent or skipped), or, before the first digest, since iomfeed
    first ran. One missed time or ten, the answer is one digest: a service that was down at
    the scheduled time sends one catch-up digest when it comes back, not zero and not two.
    """
    when = next_digest(
        schedule=schedule,
        timezone=timezone,
        now=now,
        last=last,
        open_digest=open_digest,
        first_run=first_run,
    )
    return when is not None and when <= now
