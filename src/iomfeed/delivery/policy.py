"""The rules of a send, in one object: how often and how soon a message is tried again, when
a temporary failure is given up, and when failures in a row say that the mail server, not
the addresses, is the problem. Decides only: no SMTP, no database, no clock; :mod:`.send`
applies the answers to the ledger.

The rules, with their ``mail.*`` keys:

- A temporary failure (a 4xx reply, a dropped connection) is tried again at once, up to
  ``mail.retries`` times in a run, waiting ``mail.backoff`` seconds, doubled each time; then
  it is left pending for the next run. After ``mail.max_attempts`` tries over all runs it is
  given up (failed). A failure that concerns every message (421, a quota at MAIL FROM, no
  connection) is the server's: the row is pending again with its tries given back, and the
  send stops.
- A permanent failure (a 5xx reply) is not tried again; it counts towards the subscriber's
  refusals in a row (over digests, kept by the store), and ``mail.bounce_after`` of them
  mark the subscriber bounced. A success ends the count.
- :data:`MAX_PERMANENT_IN_A_ROW` addresses refused in a row in one send: a relay refusing
  everyone is a configuration problem, not a reason to bounce the list. The send stops, the
  streak's rows are pending again and its refusals and bounces undone.
- :data:`MAX_TEMPORARY_IN_A_ROW` addresses in a row still deferred after their retries: a
  quota or a rate limit answered at RCPT, not greylisting. The send stops and the streak's
  tries are given back.
- The relay's quotas, ``mail.hourly_limit`` and ``mail.daily_limit`` (:class:`Quota`): at
  most that many messages handed over in any 60 minutes / any 24 hours (rolling windows,
  counted in the store: digests and sign-up notices alike, so a restart or another process
  does not start from zero). With no room left the send stops before the next message, as
  a stop request does: that row and those after it stay pending, nobody is charged a try,
  and the digest stays open (:mod:`..digest.lifecycle`: no new digest is made either) until
  :attr:`QuotaState.frees_at`, when the next run or ``digest --send`` goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import MailConfig

#: Refusals in a row after which the send stops (and the streak is undone).
MAX_PERMANENT_IN_A_ROW = 10
#: Addresses in a row deferred after their retries after which the send stops.
MAX_TEMPORARY_IN_A_ROW = 5


class Verdict(StrEnum):
    """What becomes of a delivery after a temporary failure."""

    RETRY = "retry"  # try again in this run, after :meth:`DeliveryPolicy.pause`
    DEFER = "defer"  # pending for the next run, this run's tries counted
    GIVE_UP = "give up"  # failed for good: tried ``max_attempts`` times in all
    HOLD = "hold"  # the server's problem: pending, the tries given back, the send stops


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """The retry, give-up and stop rules of a send (defaults as in ``config.toml``)."""

    retries: int = 3  # tries again in one run after the first
    backoff: float = 2.0  # seconds before the first try again, doubled for each next one
    max_attempts: int = 12  # tries in all, over every run, before a delivery is given up
    bounce_after: int = 3  # refusals in a row (over digests) that mark a subscriber bounced
    refused_in_a_row: int = MAX_PERMANENT_IN_A_ROW
    deferred_in_a_row: int = MAX_TEMPORARY_IN_A_ROW

    @classmethod
    def from_config(cls, mail: MailConfig) -> DeliveryPolicy:
        return cls(
            retries=mail.retries,
            backoff=mail.backoff,
            max_attempts=mail.max_attempts,
            bounce_after=mail.bounce_after,
        )

    @property
    def tries_per_run(self) -> int:
        """At most this many tries of one message in one run."""
        return self.retries + 1

    def pause(self, retry: int) -> float:
        """Seconds to wait after the failed try ``retry`` of this run (0 for the first)."""
        return self.backoff * 2.0**retry

    def after_temporary(
        self, *, retry: int, attempts: int, server: bool, stopping: bool = False
    ) -> Verdict:
        """The verdict on try ``retry`` of this run (0 for the first) failing for now, after
        ``attempts`` tries in all. ``server``: the failure concerns every message.
        ``stopping``: a stop was requested during the pause, so no more tries now."""
        if not stopping and retry < self.retries and attempts < self.max_attempts:
            return Verdict.RETRY
        if server:
            return Verdict.HOLD
        if attempts >= self.max_attempts:
            return Verdict.GIVE_UP
        return Verdict.DEFER


@dataclass(slots=True)
class Streaks:
    """One send's failures in a row, and whether they stop it.

    A success ends both streaks; a refusal ends the deferred one (the server is taking
    commands); a deferral leaves the refused one as it is, and a delivery given up leaves
    both.

    A streak stops the send once: with several connections the messages already in flight
    are answered after the stop, and none of those answers stops it (or undoes a streak)
    again. While nothing has broken the streak that stopped the send, a failure of its
    kind answered after the stop is the same server's (:meth:`continues`): it is undone on
    its own, as the streak's were.
    """

    policy: DeliveryPolicy
    refused: list[tuple[int, bool]] = field(default_factory=list)  # (subscriber, bounced)
    deferred: list[tuple[int, int]] = field(default_factory=list)  # (subscriber, tries)
    stopped: bool = False  # a streak has stopped the send
    unbroken: str = ""  # "refused" or "deferred": the streak that stopped it, not broken since

    def on_sent(self) -> None:
        self.refused.clear()
        self.deferred.clear()
        self.unbroken = ""

    def continues(self, kind: str) -> bool:
        """True when a failure of ``kind`` ("refused", "deferred") answered now continues
        the streak that stopped the send: undo it as the streak was, do not count it."""
        return self.unbroken == kind

    def on_refused(self, subscriber_id: int, bounced: bool) -> bool:
        """Count a permanent failure (``bounced``: it marked the subscriber bounced). True
        when the streak says the server refuses everyone: stop and undo the streak (once)."""
        self.refused.append((subscriber_id, bounced))
        self.deferred.clear()
        if self.unbroken == "deferred":
            self.unbroken = ""
        return self._stops("refused", len(self.refused) >= self.policy.refused_in_a_row)

    def on_deferred(self, subscriber_id: int, tries: int) -> bool:
        """Count a delivery deferred after ``tries`` tries this run. True when the streak
        says the server defers everyone for now: stop and give the streak's tries back
        (once)."""
        self.deferred.append((subscriber_id, tries))
        return self._stops("deferred", len(self.deferred) >= self.policy.deferred_in_a_row)

    def _stops(self, kind: str, reached: bool) -> bool:
        if self.stopped or not reached:
            return False
        self.stopped, self.unbroken = True, kind
        return True

    @property
    def refused_ids(self) -> list[int]:
        return [sid for sid, _ in self.refused]

    @property
    def refused_bounces(self) -> int:
        """Subscribers the refused streak marked bounced."""
        return sum(bounced for _, bounced in self.refused)


HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class QuotaState:
    """How much of the relay's quota is left now. ``room``: messages that may go now (None:
    no limit); ``frees_at``: when the first message may go again (None while there is
    room); ``used``: messages of each limited window ("hour", "day") so far."""

    room: int | None
    frees_at: datetime | None = None
    used: tuple[tuple[str, int], ...] = ()
    limits: tuple[tuple[str, int], ...] = ()

    @property
    def full(self) -> bool:
        return self.room == 0

    def note(self) -> str:
        """Why nothing goes now, in words (for a log line, a digest note, ``status``)."""
        if not self.full or self.frees_at is None:
            return ""
        used = dict(self.used)
        over = [f"{used[w]}/{n} in the last {w}" for w, n in self.limits if used[w] >= n]
        when = self.frees_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"sending quota reached ({', '.join(over)}); sending again from {when}"


@dataclass(frozen=True, slots=True)
class Quota:
    """``mail.hourly_limit`` and ``mail.daily_limit`` (0: none), in rolling windows."""

    hourly: int = 0
    daily: int = 0

    @classmethod
    def from_config(cls, mail: MailConfig) -> Quota:
        return cls(hourly=mail.hourly_limit, daily=mail.daily_limit)

    @property
    def windows(self) -> tuple[tuple[str, timedelta, int], ...]:
        """(name, length, limit) of each window with a limit."""
        both = (("hour", HOUR, self.hourly), ("day", DAY, self.daily))
        return tuple(w for w in both if w[2] > 0)

    @property
    def span(self) -> timedelta | None:
        """How far back the sends that count go; None with no limit."""
        return max((length for _, length, _n in self.windows), default=None)

    def state(self, now: datetime, sent: Sequence[datetime]) -> QuotaState:
        """The quota at ``now``, given the times of the messages sent in the last
        :attr:`span` (oldest first). A window of length W with limit N and c >= N sends
        in it frees up when its (c - N + 1)th oldest send is W old."""
        if not self.windows:
            return QuotaState(room=None)
        room: int | None = None
        frees: list[datetime] = []
        used = []
        for name, length, limit in self.windows:
            inside = [t for t in sent if t > now - length]
            used.append((name, len(inside)))
            left = limit - len(inside)
            room = left if room is None else min(room, left)
            if left <= 0:
                frees.append(inside[len(inside) - limit] + length)
        return QuotaState(
            room=max(room or 0, 0),
            frees_at=max(frees) if frees else None,
            used=tuple(used),
            limits=tuple((name, limit) for name, _l, limit in self.windows),
        )
