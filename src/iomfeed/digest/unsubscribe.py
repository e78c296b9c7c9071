"""Unsubscribe tokens: opaque, unforgeable, one per (subscriber, list).

A token is ``<subscriber id>.<HMAC-SHA256 of (list, subscriber id, address), 128 bits,
base64url>``: URL-safe and space-free, so it sits in a link, a ``List-Unsubscribe`` header
or a mailto subject as it is. The secret comes from the environment variable named by
``mail.secret_env``; without one, a random secret is made once and kept in the database
(tokens stay valid as long as the database does). The list's suppression key, which hashes
forgotten addresses, is kept there too (:func:`suppression_keys`). Pure apart from the
functions that read or note those in the store (:func:`load_secret`,
:func:`accept_secret`, :func:`suppression_keys`, :func:`earlier_lost`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, InputError

if TYPE_CHECKING:
    from ..config import Config
    from ..consent import SuppressionKeys
    from ..store import Store

log = logging.getLogger(__name__)

_TOKEN_RE = re.compile(r"^([1-9][0-9]{0,17})\.([A-Za-z0-9_-]{22})$")  # ids fit SQLite
MIN_SECRET_LENGTH = 16
_STORED_SECRET = "unsubscribe_secret"


class BadToken(InputError):
    """A token that is malformed or was not made with this secret for this list."""


def _mac(secret: bytes, list_id: str, subscriber_id: int, address: str) -> str:
    message = f"iomfeed-unsubscribe\0{list_id}\0{subscriber_id}\0{address.lower()}"
    digest = hmac.new(secret, message.encode("utf-8"), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def make_token(secret: bytes, list_id: str, subscriber_id: int, address: str) -> str:
    return f"{subscriber_id}.{_mac(secret, list_id, subscriber_id, address)}"


def token_subscriber(token: str) -> int:
    """The subscriber id a well-formed token names (not yet verified), or BadToken."""
    match = _TOKEN_RE.match(token.strip())
    if match is None:
        raise BadToken("malformed unsubscribe token")
    return int(match.group(1))


def verify_token(secret: bytes, list_id: str, token: str, address: str) -> int:
    """The subscriber id when ``token`` was made for ``address`` on this list; else BadToken
    (compared in constant time)."""
    subscriber_id = token_subscriber(token)
    expected = _mac(secret, list_id, subscriber_id, address)
    if not hmac.compare_digest(expected, token.strip().partition(".")[2]):
        raise BadToken("unsubscribe token does not match (forged, or for another list)")
    return subscriber_id


#: A probe token starts so: no subscriber has the id 0, so it never names anyone.
PROBE_PREFIX = "0."


def probe_token(secret: bytes, list_id: str) -> str:
    """The token ``iomfeed doctor`` sends in its one-click POST: signed with the list's
    secret (so the server proves it holds the same one), naming nobody."""
    message = f"iomfeed-unsubscribe-probe\0{list_id}"
    digest = hmac.new(secret, message.encode("utf-8"), hashlib.sha256).digest()[:16]
    return PROBE_PREFIX + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def is_probe(secret: bytes, list_id: str, token: str) -> bool:
    return hmac.compare_digest(probe_token(secret, list_id), token.strip())


def check_secret(config: Config, environ: Mapping[str, str] | None = None) -> str:
    """The secret ``mail.secret_env`` names in the environment ('' when unset: the store
    keeps one); raises :class:`ConfigError` when it is too short to sign with (``iomfeed
    check`` asks too, so a cron run does not find it out at digest time)."""
    name = config.mail.secret_env
    value = (os.environ if environ is None else environ).get(name, "")
    if value and len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"mail.secret_env: the environment variable {name} holds a secret shorter"
            f" than {MIN_SECRET_LENGTH} characters; use a long random value"
        )
    return value


def load_secret(config: Config, store: Store) -> bytes:
    """The secret from the environment, or the one kept in the database; raises
    :class:`SecretChanged` when it is not the one that signed the links already mailed."""
    value = check_secret(config)
    name = config.mail.secret_env
    if value:
        secret, where = value.encode("utf-8"), _FROM_ENVIRONMENT
    else:
        log.debug("%s is not set: using the unsubscribe secret kept in the database", name)
        made = store.setting_default(_STORED_SECRET, lambda: secrets.token_urlsafe(32))
        secret, where = made.encode(), _FROM_DATABASE
    known = store.setting(_FINGERPRINT)
    if known is not None and _signed_with(known, secret):
        return secret
    if known is not None and store.mailed_anyone():
        raise SecretChanged(_changed(config, known, where))
    # The first one, or nothing mailed with it yet.
    store.set_setting(_FINGERPRINT, f"{_fingerprint(secret)} {where}")
    return secret


class SecretChanged(ConfigError):
    """The secret now at hand is not the one that signed the links already mailed."""


_FINGERPRINT = "unsubscribe_secret_fingerprint"
_FROM_ENVIRONMENT, _FROM_DATABASE = "environment", "database"


def _fingerprint(secret: bytes) -> str:
    """Which secret it is, without saying anything about it."""
    return hmac.new(secret, b"iomfeed: which secret signs", hashlib.sha256).hexdigest()[:24]


def _signed_with(known: str, secret: bytes) -> bool:
    """Whether ``secret`` is the one the noted fingerprint (``known``: it and where the
    secret came from) names."""
    return bool(secret) and _fingerprint(secret) == known.split()[0]


def _changed(config: Config, known: str, where: str) -> str:
    """Why another secret is refused (an environment that lost the variable would sign new
    links with the database's secret, and every link already mailed would stop working,
    silently)."""
    name = config.mail.secret_env
    return (
        f"mail.secret_env: the links in the mail already sent were signed with "
        f"{_said(known.split()[-1], name)}, and now it would be {_said(where, name)}: they "
        f"would stop working. Set {name} to the value it had (check the environment of "
        f"cron or of the service); to sign with this secret from now on all the same, run "
        f"'iomfeed check --new-secret'"
    )


def secret_problem(config: Config, database: Path) -> str | None:
    """``iomfeed check``'s question to :func:`load_secret`'s refusal, asked through a
    read-only connection: nothing is migrated or written, so checking a new release's
    configuration against a store an older one still runs on changes nothing. None when
    it cannot be told (no store, an older or damaged one: the commands that open it say)."""
    from ..store.sent import peek_settings

    value = check_secret(config)
    found = peek_settings(database, (_FINGERPRINT, _STORED_SECRET, _EARLIER_SUPPRESSIONS))
    if found is None:
        return None
    settings, mailed = found
    how = settings.get(_EARLIER_SUPPRESSIONS, "")
    at_hand = (value.encode("utf-8"), settings.get(_STORED_SECRET, "").encode())
    if how and how != _UNKNOWN and not _hashed_earlier(how, at_hand):
        return _unmatched(config)
    known = settings.get(_FINGERPRINT)
    if not known:
        return None
    if value:
        secret, where = value.encode("utf-8"), _FROM_ENVIRONMENT
    else:  # the database's secret, or a new one it would make
        secret, where = settings.get(_STORED_SECRET, "").encode(), _FROM_DATABASE
    if _signed_with(known, secret):
        return None
    return _changed(config, known, where) if mailed else None


def _said(where: str, name: str) -> str:
    if where == _FROM_ENVIRONMENT:
        return f"a secret from the environment variable {name}"
    return f"the secret kept in the database ({name} unset)"


def accept_secret(config: Config, store: Store) -> str:
    """``iomfeed check --new-secret``: sign with the secret at hand from now on, whatever
    signed the links already mailed (they stop working); which secret that is, in words.
    Forgotten addresses kept before the list had a key of its own were hashed with the
    secret noted then: the words say so when neither the environment's nor the database's
    secret is that one any more."""
    known = store.setting(_FINGERPRINT)
    if store.setting(_EARLIER_SUPPRESSIONS) == _UNKNOWN and known:
        # Which secret hashed them was not noted: the one that signed until now, surely.
        store.set_setting(_EARLIER_SUPPRESSIONS, known.split()[0])
    store.drop_setting(_FINGERPRINT)
    load_secret(config, store)
    where = _FROM_ENVIRONMENT if check_secret(config) else _FROM_DATABASE
    words = _said(where, config.mail.secret_env)
    if earlier_lost(config, store):  # accepted, as the refusals of add and import asked
        store.drop_setting(_EARLIER_SUPPRESSIONS)
        return f"{words}; {_LOST}"
    return words


def suppression_keys(config: Config, store: Store, *, adding: bool = False) -> SuppressionKeys:
    """What forgotten addresses are hashed with: the list's own key (made on first use)
    and, while entries from before it are kept, the secret that hashed those, if it is
    still at hand (the environment's or the database's: a change of secret made before
    any mail, which :func:`load_secret` allows, leaves that one kept). ``adding`` (an
    operator's add or import): raises :class:`ForgottenUnchecked` when such entries are
    kept but that secret is not at hand, for then nobody can tell who was forgotten."""
    from ..consent import SuppressionKeys

    own = store.setting_default(_SUPPRESSION_KEY, lambda: secrets.token_urlsafe(32))
    earlier = _earlier_keys(config, store)
    if not earlier and store.setting(_EARLIER_SUPPRESSIONS):
        if adding:
            raise ForgottenUnchecked(_unmatched(config))
        log.warning("%s (%s)", _LOST, config.mail.secret_env)
    return SuppressionKeys(own.encode(), earlier)


class ForgottenUnchecked(ConfigError):
    """Addresses forgotten before the list's own key are kept, hashed with a secret that
    is not at hand: an add or import could bring one of them back."""


def _unmatched(config: Config) -> str:
    name = config.mail.secret_env
    return (
        f"mail.secret_env: addresses forgotten before the list had a suppression key of its"
        f" own were hashed with the secret that signed then, which neither {name} nor the"
        f" database holds now, so an add or import cannot tell whether it brings one of them"
        f" back. Set {name} to that secret again; or, if it is lost, run 'iomfeed check"
        f" --new-secret' to accept that those entries are no longer recognised"
    )


def earlier_lost(config: Config, store: Store) -> bool:
    """Whether entries from before the list's own key are kept but no secret at hand is
    the one that hashed them (they match nothing: said by ``check --new-secret``, logged
    by every change to the list)."""
    how = store.setting(_EARLIER_SUPPRESSIONS)
    return bool(how) and how != _UNKNOWN and not _earlier_keys(config, store)


def _earlier_keys(config: Config, store: Store) -> tuple[bytes, ...]:
    how = store.setting(_EARLIER_SUPPRESSIONS)
    if not how:
        return ()
    at_hand = (check_secret(config).encode("utf-8"), (store.setting(_STORED_SECRET) or "").encode())
    return _hashed_earlier(how, at_hand)


def _hashed_earlier(how: str, at_hand: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """The secrets of ``at_hand`` (the environment's, the database's) that may have hashed
    the entries from before the list's own key: the one whose fingerprint was noted
    (``how``), or both when none was."""
    candidates = tuple(dict.fromkeys(k for k in at_hand if k))
    if how == _UNKNOWN:
        return candidates  # (no fingerprint noted: try both)
    return tuple(k for k in candidates if _fingerprint(k) == how)


_SUPPRESSION_KEY = "suppression_key"
#: Set by the schema step that gave the list its own key, when entries were kept already:
#: the fingerprint of the secret that hashed them, or "1" when none was noted.
_EARLIER_SUPPRESSIONS = "suppressed_with_signing_secret"
_UNKNOWN = "1"
_LOST = (
    "addresses forgotten before the list had a suppression key of its own were kept under"
    " another secret and are no longer recognised: an import or 'subscribers add' could add"
    " them back (set that secret again to match them)"
)
