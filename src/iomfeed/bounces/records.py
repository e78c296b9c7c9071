"""The bounce log's rows, as the store keeps and returns them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .classify import Kind
from .policy import Action, Trust


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
