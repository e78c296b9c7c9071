"""Which bounces are believed, and when they mark a subscriber bounced. Decides only: no
store, no clock (``now`` is given), no mail.

Trust (``bounces.trust_days``):

- a bounce or complaint carrying a VERP token (or, for a complaint, the returned message's
  unsubscribe token) that verifies names its subscriber and digest: it is acted on;
- one without (forwarded, mangled, or a report that quotes only the address) counts only
  for a subscriber who was sent a digest (or the welcome) in the last ``trust_days``
  (0: never), and is taken to be about the latest digest sent to them; one that names
  several such subscribers acts on none; a complaint without a token, when
  ``mail.bounce_address`` is set (a genuine one then carries the token), is only counted;
- anything else is recorded and ignored, so a forged bounce cannot silence an address
  that iomfeed has not mailed lately.

The rules (streaks are counted over the digests sent to the subscriber: the run of failed
digests in a row that the one the bounce is about belongs to, before and after it, so the
order bounces arrive in does not matter; a digest the relay refused during the send, 5xx,
counts as a hard bounce, as :mod:`iomfeed.delivery.policy` counts it):

- a hard bounce marks the subscriber bounced once ``mail.bounce_after`` digests in a row
  have bounced hard (the in-session rule, :class:`~iomfeed.delivery.policy.DeliveryPolicy`);
  one whose run reaches the latest digest sent to them also raises the send's own count of
  failures in a row to the streak (``Verdict.hard_streak``), so two bounces after the fact
  and a refusal during the next send are three in a row, as the reverse order is;
- a soft bounce only once ``bounces.soft_after`` digests in a row have bounced (soft or
  hard) and the first of them went at least ``bounces.soft_days`` before the last;
- a digest in between that went out and drew no bounce ends both streaks (one successful
  delivery resets); a bounce of a sign-up message (no digest), of a digest sent before
  the subscriber (re)joined, or of one whose send has not finished, is recorded and moves
  no streak;
- a complaint (believed, as above) unsubscribes at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..delivery.policy import DeliveryPolicy
from .records import Action, Kind, SentDigest, Trust

__all__ = ["Action", "BouncePolicy", "SentDigest", "Trust", "Verdict"]

if TYPE_CHECKING:
    from ..config import Config


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    detail: str
    # Hard failures in a row, this bounce's digest included, when that run reaches the
    # newest digest (0: not a hard bounce, or a run a later success ended): what the send's
    # own count of refusals in a row continues from.
    hard_streak: int = 0


@dataclass(frozen=True, slots=True)
class BouncePolicy:
    bounce_after: int = 3
    soft_after: int = 3
    soft_days: float = 14.0
    trust_days: float = 14.0  # 0: tokens only
    verp: bool = False  # mail.bounce_address is set: genuine complaints carry a token

    @classmethod
    def from_config(cls, config: Config) -> BouncePolicy:
        b = config.bounces
        return cls(
            bounce_after=DeliveryPolicy.from_config(config.mail).bounce_after,
            soft_after=b.soft_after,
            soft_days=b.soft_days,
            trust_days=b.trust_days,
            verp=bool(config.mail.bounce_address),
        )

    def trusted_since(self, now: datetime) -> datetime:
        """A message sent after this makes a bounce without a token believable."""
        return now - timedelta(days=self.trust_days)

    def verdict(
        self,
        kind: Kind,
        trust: Trust,
        digest_id: int | None,
        history: Sequence[SentDigest],
    ) -> Verdict:
        """What a bounce of ``kind`` about ``digest_id`` does to a subscriber (still on the
        list) whose digests are ``history`` (newest first, this bounce not yet in it)."""
        if trust is Trust.NONE:
            if self.trust_days <= 0:
                return Verdict(Action.IGNORED, "not trusted: no valid token (trust_days 0)")
            return Verdict(
                Action.IGNORED,
                f"not trusted: no valid token, and no digest was sent to this address in the"
                f" last {self.trust_days:g} days",
            )
        if kind is Kind.COMPLAINT and trust is Trust.RECENT and self.verp:
            return Verdict(Action.COUNTED, "complaint without a token: recorded, not acted on")
        if kind is Kind.COMPLAINT:
            return Verdict(Action.UNSUBSCRIBED, "complaint: unsubscribed at once")
        if kind not in (Kind.HARD, Kind.SOFT):
            return Verdict(Action.IGNORED, f"{kind.value}: never acted on")
        if digest_id is None:
            return Verdict(Action.COUNTED, "a sign-up message bounced: moves no streak")
        rows = _streak(kind, digest_id, history)
        if not rows:
            return Verdict(
                Action.COUNTED,
                f"digest {digest_id} is not among those sent to them since they joined (or"
                " its send is unfinished): moves no streak",
            )
        if kind is Kind.HARD:
            n = len(rows)
            # The send's own count continues only a run that reaches the newest digest.
            current = n if rows[0].digest_id == history[0].digest_id else 0
            if n >= self.bounce_after:
                return Verdict(Action.BOUNCED, f"{n} hard bounces in a row", current)
            return Verdict(
                Action.COUNTED, f"hard bounce {n} of {self.bounce_after} in a row", current
            )
        n = len(rows)
        span = (rows[0].sent - rows[-1].sent) if rows else timedelta(0)
        days = span.total_seconds() / 86400
        if n >= self.soft_after and days >= self.soft_days:
            return Verdict(Action.BOUNCED, f"{n} soft bounces in a row over {days:.0f} days")
        return Verdict(
            Action.COUNTED,
            f"soft bounce {n} of {self.soft_after} in a row ({days:.0f} of"
            f" {self.soft_days:g} days)",
        )


def _streak(kind: Kind, digest_id: int, history: Sequence[SentDigest]) -> list[SentDigest]:
    """The run of digests in a row that failed the way ``kind`` counts (hard: refused or
    hard; soft: any bounce) that ``digest_id`` is in, newest first: the ones before it and
    the ones after it, so bounces read in any order make the same run. Empty when
    ``history`` has no row for it (a digest of before they (re)joined, or one whose send has
    not finished): such a bounce moves no streak."""
    at = next((i for i, row in enumerate(history) if row.digest_id == digest_id), None)
    if at is None:
        return []

    def failed(row: SentDigest) -> bool:
        return row.refused or row.hard or (kind is Kind.SOFT and row.soft)

    first, last = at, at
    while first > 0 and failed(history[first - 1]):
        first -= 1
    while last + 1 < len(history) and failed(history[last + 1]):
        last += 1
    return list(history[first : last + 1])
