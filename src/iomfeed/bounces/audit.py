"""One digest's recipients, the ledger and the bounce log side by side: who got it, who
bounced, who complained (``iomfeed digests show N``). Reads the store; decides nothing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .records import BounceEvent, Kind

if TYPE_CHECKING:
    from ..models import DigestRecord
    from ..store import Store

_ALL = ("pending", "sending", "sent", "failed", "skipped")


@dataclass(frozen=True, slots=True)
class Recipient:
    subscriber_id: int
    address: str  # '' once forgotten
    delivery: str  # the ledger's status: sent, failed, skipped, pending, sending
    reply: str  # the relay's answer (or why it was skipped)
    events: tuple[BounceEvent, ...]  # what came back for this digest, newest first

    @property
    def outcome(self) -> str:
        """In one word, worst first: complained, bounced (hard), deferred (soft), or the
        ledger's status (an auto-reply does not change it)."""
        kinds = {e.kind for e in self.events}
        if Kind.COMPLAINT in kinds:
            return "complained"
        if Kind.HARD in kinds:
            return "bounced"
        if Kind.SOFT in kinds:
            return "soft-bounced"
        return self.delivery


@dataclass(frozen=True, slots=True)
class DigestAudit:
    record: DigestRecord
    recipients: tuple[Recipient, ...]

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r.outcome for r in self.recipients))


def digest_audit(store: Store, digest_id: int) -> DigestAudit | None:
    """Every ledger row of the digest with the bounce events about it; None: no digest."""
    record = store.digest(digest_id)
    if record is None:
        return None
    events: dict[int, list[BounceEvent]] = {}
    for e in store.bounce_events(digest_id=digest_id):
        if e.subscriber_id is not None:
            events.setdefault(e.subscriber_id, []).append(e)
    recipients = tuple(
        Recipient(
            subscriber_id=d.subscriber_id,
            address=d.address or "",
            delivery=d.status.value,
            reply=d.reply,
            events=tuple(events.get(d.subscriber_id, ())),
        )
        for d in store.deliveries(digest_id, _ALL)
    )
    return DigestAudit(record, recipients)
