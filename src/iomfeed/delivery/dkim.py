"""DKIM signing (RFC 6376) with dkimpy: once per message, on the bytes a transport sends.

Relaxed/relaxed canonicalisation, rsa-sha256. The signature's ``h=`` lists each of
:data:`SIGNED` as many times as the message has it, plus once more ("oversigning", RFC 6376
§8.15): a header the message has cannot be replaced or doubled, and one it lacks (a sign-up
notice has no ``List-Unsubscribe``) cannot be added, without breaking the signature.

dkimpy (and the dnspython it loads, about a fifth of a second) is imported only when
``[mail.dkim]`` is configured and a mailer is made: a cron ``fetch`` never pays for it.

dkimpy does the RSA step itself, in Python (two 1,024-bit modular exponentiations for a
2,048-bit key: most of a signature's 8-14 ms). When the ``cryptography`` package is installed
(the ``dkim`` extra), that one step is done by OpenSSL instead, about a tenth of the time:
dkimpy still canonicalises, selects and hashes the header fields and writes the header, and
RSASSA-PKCS1-v1_5 is deterministic, so the signature is byte for byte the one dkimpy makes
(a test compares them). dkimpy has no hook for it: :func:`_use_openssl` wraps its module's
``RSASSA_PKCS1_v1_5_sign`` once, for the keys registered here only; any other key, hash or
failure goes to dkimpy's own function.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, DeliveryError

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)
_WRAPPING = threading.Lock()

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

    def __init__(self, key: bytes, *, selector: str, domain: str, openssl: bool = True) -> None:
        self.key = key
        self.selector = selector.encode("ascii")
        self.domain = domain.encode("ascii")
        self._last: tuple[bytes, bytes] | None = None
        #: Whether OpenSSL does the RSA step (``cryptography`` installed, an RSA key).
        self.openssl = openssl and _use_openssl(key)

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
        last = self._last  # read once: connections share the signer, each its own message
        if last is not None and last[0] == data:
            return last[1]
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


#: The keys OpenSSL signs with, by modulus (how dkimpy's parsed key names itself).
_OPENSSL_KEYS: dict[int, Any] = {}


def _use_openssl(key_pem: bytes) -> bool:
    """Register ``key_pem`` for OpenSSL's RSA and wrap dkimpy's RSA step (once); False (and
    dkimpy's own arithmetic) when ``cryptography`` is missing or the key is not RSA."""
    try:
        import dkim
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError:
        return False
    original = getattr(dkim, "RSASSA_PKCS1_v1_5_sign", None)
    if original is None:  # a dkimpy without it: nothing to speed up
        return False
    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    if not isinstance(key, rsa.RSAPrivateKey):
        return False
    _OPENSSL_KEYS[key.private_numbers().public_numbers.n] = key
    with _WRAPPING:
        if not getattr(dkim.RSASSA_PKCS1_v1_5_sign, "iomfeed_openssl", False):
            dkim.RSASSA_PKCS1_v1_5_sign = _openssl_sign(original)
    return True


def _openssl_sign(original: Callable[[Any, Any], bytes]) -> Callable[[Any, Any], bytes]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    algorithms = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}

    def sign(hash_object: Any, private_key: Any) -> bytes:
        key = _OPENSSL_KEYS.get(private_key.get("modulus")) if private_key else None
        algorithm = algorithms.get(str(getattr(hash_object, "name", "")).lower())
        if key is None or algorithm is None:
            return original(hash_object, private_key)
        try:
            signature: bytes = key.sign(
                hash_object.digest(), padding.PKCS1v15(), utils.Prehashed(algorithm)
            )
        except ValueError:  # (a digest too large for the key): dkimpy says it its way
            return original(hash_object, private_key)
        return signature

    sign.iomfeed_openssl = True  # type: ignore[attr-defined]
    return sign
