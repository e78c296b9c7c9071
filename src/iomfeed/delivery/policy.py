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
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """

    policy: DeliveryPolicy
    refused: list[tuple[int, bool]] = field(default_factory=list)  # (subscriber, bounced)
    deferred: list[tuple[int, int]] = field(default_factory=list)  # (subscriber, tries)

    def on_sent(self) -> None:
        self.refused.clear()
        self.deferred.clear()

    def on_refused(self, subscriber_id: int, bounced: bool) -> bool:
        """Count a permanent failure (``bounced``: it marked the subscriber bounced). True
        when the streak says the server refuses everyone: stop and undo the streak."""
        self.refused.append((subscriber_id, bounced))
        self.deferred.clear()
        return len(self.refused) >= self.policy.refused_in_a_row

    def on_deferred(self, subscriber_id: int, tries: int) -> bool:
        """Count a delivery deferred after ``tries`` tries this run. True when the streak
        says the server defers everyone for now: stop and give the streak's tries back."""
        self.deferred.append((subscriber_id, tries))
        return len(self.deferred) >= self.policy.deferred_in_a_row

    @property
    def refused_ids(self) -> list[int]:
        return [sid for sid, _ in self.refused]

    @property
    def refused_bounces(self) -> int:
        """Subscribers the refused streak marked bounced."""
        return sum(bounced for _, bounced in self.refused)
