"""DKIM signing (RFC 6376) with dkimpy: once per message, on the bytes a transport sends.

Relaxed/relaxed canonicalisation, rsa-sha256. The signature's ``h=`` lists each of
:data:`SIGNED` as many times as the message has it, plus once more ("oversigning", RFC 6376
§8.15): a header the message has cannot be replaced or doubled, and one it lacks (a sign-up
notice has no ``List-Unsubscribe``) cannot be added, without breaking the signature.

dkimpy (and the dnspython it loads, about a fifth of a second) is imported only when
``[mail.dkim]`` is configured and a mailer is made: a cron ``fetch`` never pays for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import ConfigError, DeliveryError

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

#: The header fields the signature covers: the ones Gmail wants signed (the one-click pair
#: among them), and Feedback-ID, so that a feedback-loop report names a campaign of ours.
SIGNED = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"feedback-id",
)


def header_names(data: bytes) -> list[bytes]:
    """The lower-cased names of a message's header fields, in order (repeats kept)."""
    head = data.partition(b"\r\n\r\n")[0]
    names = []
    for line in head.split(b"\r\n"):
        if line and line[:1] not in (b" ", b"\t"):
            names.append(line.partition(b":")[0].strip().lower())
    return names


def signed_headers(data: bytes) -> list[bytes]:
    """``h=`` for this message: each of :data:`SIGNED` once per occurrence, plus once more."""
    present = header_names(data)
    return [name for name in SIGNED for _ in range(present.count(name) + 1)]


class DkimSigner:
    """Signs with one key, selector and domain. Remembers the last message it signed, so
    the retries of one message in one run carry the same signature (signed once)."""

    def __init__(self, key: bytes, *, selector: str, domain: str) -> None:
        self.key = key
        self.selector = selector.encode("ascii")
        self.domain = domain.encode("ascii")
        self._last: tuple[bytes, bytes] | None = None

    @classmethod
    def from_config(cls, config: Config) -> DkimSigner:
        """The signer of ``[mail.dkim]``; its key parsed now, so a key dkimpy cannot use
        stops the send before the first message, naming the key."""
        from dkim.crypto import UnparsableKeyError, parse_pem_private_key

        dkim = config.mail.dkim
        path = config.path(dkim.key_file)
        try:
            key = path.read_bytes()
            parse_pem_private_key(key)
        except OSError as exc:
            raise ConfigError(f"mail.dkim.key_file: {path}: cannot read it ({exc})") from exc
        except (UnparsableKeyError, ValueError, IndexError) as exc:
            raise ConfigError(
                f"mail.dkim.key_file: {path}: not an RSA private key dkimpy can sign with ({exc})"
            ) from exc
        return cls(key, selector=dkim.selector, domain=config.mail.dkim_domain)

    def sign(self, data: bytes) -> bytes:
        """``data`` (CRLF line ends) with a ``DKIM-Signature`` header in front."""
        if self._last is not None and self._last[0] == data:
            return self._last[1]
        import dkim

        try:
            signer = dkim.DKIM(data, linesep=b"\r\n")
            signature: bytes = signer.sign(
                self.selector,
                self.domain,
                self.key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=signed_headers(data),
            )
        except dkim.DKIMException as exc:
            raise DeliveryError(f"DKIM signing failed (mail.dkim): {exc}") from exc
        signed = signature + data
        self._last = (data, signed)
        return signed
