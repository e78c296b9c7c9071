"""A subscriber's lifecycle as data: states, the consent record, the signed links of sign-up
and preferences, the suppression hash, and when a sign-up message may go again.

Pure: no store, no clock, no mail. :mod:`iomfeed.subscriptions` applies these rules.

Tokens are URL-safe and space-free, like the unsubscribe ones (:mod:`.digest.unsubscribe`),
and signed with the same secret, each with its own purpose string so that one kind can
never be used as another:

* confirmation: ``<subscriber id>.<issued, Unix seconds>.<HMAC of (purpose, list, id,
  address, issued)>``; it expires ``subscribe.confirm_days`` after it was issued;
* preferences: ``<subscriber id>.<HMAC of (purpose, list, id, address)>``; it lasts as
  long as the address is on the list (forgetting the address voids it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from .digest.unsubscribe import BadToken

_CONFIRM_RE = re.compile(r"^([1-9][0-9]{0,17})\.([0-9]{1,12})\.([A-Za-z0-9_-]{22})$")
_PREFERENCES_RE = re.compile(r"^([1-9][0-9]{0,17})\.([A-Za-z0-9_-]{22})$")
_CONFIRM = "iomfeed-confirm"
_PREFERENCES = "iomfeed-preferences"
_SUPPRESS = "iomfeed-suppress"


class State(Enum):
    """Where a subscriber is; the value is what the store keeps."""

    PENDING = "pending"  # signed up, not confirmed: gets no digest
    ACTIVE = "active"  # confirmed, or added by the operator with consent
    UNSUBSCRIBED = "unsubscribed"  # left (or was forgotten)
    BOUNCED = "bounced"  # mail.bounce_after permanent failures in a row


class ConsentVia(Enum):
    """How consent was given; the value is what the store keeps."""

    WEB_FORM = "web form"
    CSV_IMPORT = "CSV import"
    COMMAND_LINE = "command line"


@dataclass(frozen=True, slots=True)
class Consent:
    """What is recorded about a subscriber's consent."""

    at: datetime | None  # None: added before iomfeed recorded consent
    via: ConsentVia | None
    language: str  # the form's language ('' when not given by a form)
    ip: str  # the client's address, truncated; '' unless subscribe.record_ip
    confirmed: datetime | None


@dataclass(frozen=True, slots=True)
class Profile:
    """Everything stored about one subscriber besides their deliveries."""

    id: int
    address: str
    name: str
    language: str
    state: State
    subscribed: datetime
    left: datetime | None
    reason: str
    failures: int
    consent: Consent
    categories: tuple[str, ...]  # empty: every category
    paused_until: datetime | None
    confirm_sent: datetime | None
    notice_sent: datetime | None

    def paused(self, now: datetime) -> bool:
        return self.paused_until is not None and self.paused_until > now


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One digest's delivery to a subscriber, as the ledger has it."""

    digest_id: int
    digest_created: datetime
    status: str
    attempts: int
    updated: datetime
    reply: str


def _mac(secret: bytes, *parts: str) -> str:
    message = "\0".join(parts).encode("utf-8")
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def confirm_token(
    secret: bytes, list_id: str, subscriber_id: int, address: str, issued: datetime
) -> str:
    stamp = str(int(issued.timestamp()))
    mac = _mac(secret, _CONFIRM, list_id, str(subscriber_id), address.lower(), stamp)
    return f"{subscriber_id}.{stamp}.{mac}"


def confirm_token_parts(token: str) -> tuple[int, datetime]:
    """The subscriber id and issue time a well-formed confirmation token names (not yet
    verified), or :class:`BadToken`."""
    match = _CONFIRM_RE.match(token.strip())
    if match is None:
        raise BadToken("malformed confirmation token")
    return int(match.group(1)), datetime.fromtimestamp(int(match.group(2)), UTC)


def verify_confirm_token(
    secret: bytes, list_id: str, token: str, address: str, now: datetime, days: float
) -> int:
    """The subscriber id when ``token`` was issued for ``address`` on this list less than
    ``days`` ago (and not in the future); else :class:`BadToken`."""
    subscriber_id, issued = confirm_token_parts(token)
    stamp = token.strip().split(".")[1]
    expected = _mac(secret, _CONFIRM, list_id, str(subscriber_id), address.lower(), stamp)
    if not hmac.compare_digest(expected, token.strip().rpartition(".")[2]):
        raise BadToken("confirmation token does not match (forged, changed or for another list)")
    if issued > now + timedelta(minutes=5) or now - issued > timedelta(days=days):
        raise BadToken(f"confirmation token has expired (links last {days:g} days)")
    return subscriber_id


def preferences_token(secret: bytes, list_id: str, subscriber_id: int, address: str) -> str:
    mac = _mac(secret, _PREFERENCES, list_id, str(subscriber_id), address.lower())
    return f"{subscriber_id}.{mac}"


def preferences_token_subscriber(token: str) -> int:
    match = _PREFERENCES_RE.match(token.strip())
    if match is None:
        raise BadToken("malformed preferences token")
    return int(match.group(1))


def verify_preferences_token(secret: bytes, list_id: str, token: str, address: str) -> int:
    subscriber_id = preferences_token_subscriber(token)
    expected = _mac(secret, _PREFERENCES, list_id, str(subscriber_id), address.lower())
    if not hmac.compare_digest(expected, token.strip().partition(".")[2]):
        raise BadToken("preferences token does not match (forged, changed or for another list)")
    return subscriber_id


def suppression_hash(key: bytes, address: str) -> str:
    """The key under which a forgotten address is kept: HMAC-SHA256 with ``key`` of the
    address lower-cased (hex). Without the key the hash cannot be tested against guessed
    addresses."""
    message = f"{_SUPPRESS}\0{address.strip().lower()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SuppressionKeys:
    """What forgotten addresses are hashed with: the list's ``own`` key, kept in the store
    and never changed, so a new signing secret cannot let an import add a forgotten person
    back; and ``earlier``, the signing secrets that may have hashed entries kept before the
    list had a key of its own (none when there are no such entries)."""

    own: bytes
    earlier: tuple[bytes, ...] = ()

    def hash(self, address: str) -> str:
        """The hash a new entry is kept under."""
        return suppression_hash(self.own, address)

    def hashes(self, address: str) -> tuple[str, ...]:
        """Every hash an entry for ``address`` may be kept under."""
        return (self.hash(address), *(suppression_hash(k, address) for k in self.earlier))


def truncate_ip(raw: str) -> str:
    """The client's address with its host part zeroed: IPv4 to its /24, IPv6 to its /48
    (an IPv4-mapped IPv6 address counts as IPv4); '' for something that is no address."""
    try:
        ip = ipaddress.ip_address(raw.strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
