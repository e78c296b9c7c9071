"""The bounce log's words and rows: what a message is (:class:`Kind`), why it is believed
(:class:`Trust`), what it did (:class:`Action`), and the rows the store keeps and returns.
Light on purpose: the store imports it on every open, so it imports no email parser."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Kind(StrEnum):
    """What a message is; the value is what the store keeps."""

    HARD = "hard"  # a permanent failure (5.x.x)
    SOFT = "soft"  # a temporary one (4.x.x, delayed)
    COMPLAINT = "complaint"  # a feedback-loop report: unsubscribe
    AUTO_REPLY = "auto-reply"  # out of office and the like: never acted on
    UNRECOGNISED = "unrecognised"  # kept and counted, never acted on
    UNSUBSCRIBE = "unsubscribe"  # a subscriber's own mail to the List-Unsubscribe mailto


class Trust(StrEnum):
    """Why a bounce is believed; the value is what the store keeps."""

    TOKEN = "token"  # its VERP (or unsubscribe) token verifies
    RECENT = "recent"  # no token, but the address was mailed within trust_days
    NONE = "none"  # neither: recorded, never acted on


class Action(StrEnum):
    """What a bounce did; the value is what the store keeps."""

    BOUNCED = "bounced"  # marked the subscriber bounced
    UNSUBSCRIBED = "unsubscribed"  # a complaint, or their own request: unsubscribed at once
    COUNTED = "counted"  # believed, one more in a row; no change yet
    IGNORED = "ignored"  # not believed, not a bounce, or nobody to act on


@dataclass(frozen=True, slots=True)
class SentDigest:
    """One digest sent to a subscriber, with what came back for it (newest first)."""

    digest_id: int
    sent: datetime
    refused: bool  # the relay refused it during the send (5xx)
    hard: bool  # a hard bounce was recorded for it
    soft: bool  # a soft bounce was recorded for it


@dataclass(frozen=True, slots=True)
class BounceEvent:
    """One message of the bounce mailbox about one recipient (or about nobody known)."""

    message_key: str  # SHA-256 of the raw message: a message read twice counts once
    message_id: str  # the bounce's own Message-ID ('' when it has none)
    received: datetime  # when iomfeed read it
    kind: Kind
    subscriber_id: int | None
    digest_id: int | None  # the digest it is about (None: a sign-up message, or unknown)
    address: str  # the recipient it names ('' when none, or once forgotten)
    status: str  # the enhanced status code (5.1.1), '' when none
    trust: Trust
    action: Action
    detail: str  # in words: the streak, why it was ignored, the feedback type
    # Hard failures in a row up to the latest digest that this event's run makes (0: none,
    # or a run a later success ended). Not kept in the bounce log: the store applies it to
    # the subscriber's count of failures in a row.
    hard_streak: int = 0
