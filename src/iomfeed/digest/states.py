"""The digest's stored states and a ledger row's, apart from the lifecycle's decisions
(:mod:`.lifecycle`, which re-exports both): the records and the store need the values
on every command, the decisions only when a digest is due or planned.
"""

from __future__ import annotations

from enum import StrEnum


class DigestState(StrEnum):
    """Where a digest is in its lifecycle. The values of the stored states
    (:data:`.lifecycle.STORED`) are the strings of the ``digests.status`` column;
    ``PARTIAL``'s is the one a step's outcome has always reported ('incomplete')."""

    DUE = "due"  # a scheduled time has passed and no digest is open: nothing recorded yet
    CREATED = "created"  # recorded with a pending ledger row per active subscriber
    SENDING = "sending"  # deliveries under way (stored as such)
    PARTIAL = "incomplete"  # this run ended with deliveries still due; the next one resumes
    SENT = "sent"  # every delivery is final
    SKIPPED = "skipped"  # recorded as not sent (and why), so the schedule moves on


class DeliveryStatus(StrEnum):
    """A ledger row's status (the strings of the ``deliveries.status`` column). 'skipped'
    is final and neither sent nor failed: the subscriber left or paused before their turn,
    or (with ``digest.skip_empty``) the digest had nothing new in their categories, a row
    made 'skipped' with the digest (its reply :data:`.lifecycle.NOTHING_FOR_THEM`)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
