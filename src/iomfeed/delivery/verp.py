"""VERP: an envelope sender per message, so that a bounce names its recipient by itself.

With ``mail.bounce_address = "bounces@example.org"`` the message of digest 12 to subscriber
345 leaves with the envelope sender ``bounces+12-345-<mac>@example.org``; a server that
cannot deliver it answers that address, whatever its report says (or mangles). The token
is ``<digest>-<subscriber>-<mac>``: ``0`` for a message of no digest (a confirmation or a
welcome), and the mac an HMAC-SHA256 with the list's secret (the one that signs the
unsubscribe and preferences links, :func:`iomfeed.digest.unsubscribe.load_secret`) over
(purpose, list, digest, subscriber, address), 80 bits in lower-case base32. Digits,
lower-case letters and ``-`` are atext (RFC 5321), and a relay that lower-cases local parts
changes nothing: the token is read case-blind. The From header is not touched.

Pure: no store, no clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

_PURPOSE = "iomfeed-bounce"
_TOKEN = r"([0-9]{1,18})-([1-9][0-9]{0,17})-([a-z2-7]{16})"


@dataclass(frozen=True, slots=True)
class VerpToken:
    """What a token names (not yet verified): the digest (None: a sign-up message) and
    the subscriber, and its mac."""

    digest_id: int | None
    subscriber_id: int
    mac: str


def _mac(
    secret: bytes, list_id: str, digest_id: int | None, subscriber_id: int, address: str
) -> str:
    message = "\0".join(
        (_PURPOSE, list_id, str(digest_id or 0), str(subscriber_id), address.lower())
    )
    digest = hmac.new(secret, message.encode("utf-8"), hashlib.sha256).digest()[:10]
    return base64.b32encode(digest).decode("ascii").lower()


def make_token(
    secret: bytes, list_id: str, digest_id: int | None, subscriber_id: int, address: str
) -> str:
    mac = _mac(secret, list_id, digest_id, subscriber_id, address)
    return f"{digest_id or 0}-{subscriber_id}-{mac}"


def envelope_sender(
    bounce_address: str,
    fallback: str,
    *,
    secret: bytes,
    list_id: str,
    digest_id: int | None,
    subscriber_id: int,
    address: str,
) -> str:
    """The envelope sender of one message: ``local+TOKEN@domain`` of ``bounce_address``,
    or ``fallback`` (the From address, as before VERP) when no bounce address is set."""
    if not bounce_address:
        return fallback
    local, _, domain = bounce_address.rpartition("@")
    token = make_token(secret, list_id, digest_id, subscriber_id, address)
    return f"{local}+{token}@{domain}"


def find_tokens(text: str, bounce_address: str) -> list[VerpToken]:
    """Every VERP token of ``bounce_address`` in ``text`` (a bounce's headers and body,
    where the envelope address it was sent to appears), case-blind, in order, once each."""
    if not bounce_address:
        return []
    local, _, domain = bounce_address.lower().rpartition("@")
    pattern = re.compile(
        rf"(?<![A-Za-z0-9.+_-]){re.escape(local)}\+{_TOKEN}@{re.escape(domain)}\b",
        re.IGNORECASE | re.ASCII,  # IGNORECASE alone lets "[a-z]" match U+017F and U+212A
    )
    found: list[VerpToken] = []
    for m in pattern.finditer(text):
        digest = int(m.group(1))
        token = VerpToken(digest or None, int(m.group(2)), m.group(3).lower())
        if token not in found:
            found.append(token)
    return found


def verify(secret: bytes, list_id: str, token: VerpToken, address: str) -> bool:
    """Whether ``token`` was made for ``address`` on this list (constant time); a mac
    that is not ASCII (which no token of ours is) is not ours."""
    if not token.mac.isascii():
        return False
    expected = _mac(secret, list_id, token.digest_id, token.subscriber_id, address)
    return hmac.compare_digest(expected, token.mac)
