"""E-mail addresses as iomfeed stores them: checked and normalised (:func:`normalize_address`,
through email-validator, imported only when an address is not plainly valid), and the quick
check that accepts only what email-validator accepts unchanged (:func:`is_plainly_valid`).

A module of its own, with no records: loading the configuration checks its addresses here,
and a cron cycle must not build the subscriber records or load the CSV reader for that.
"""

from __future__ import annotations

import re

from .errors import BadAddress


def normalize_address(raw: str) -> str:
    """The address in the form iomfeed stores it, or :class:`BadAddress` saying what is
    wrong. Accepts plain addresses only: no display names, no comments, no quoted names.

    The syntax is email-validator's (no DNS lookup): the domain lower-cased and in its
    ASCII (IDNA, "xn--") form, one spelling per mailbox and what SMTP and mail headers
    carry; the name part as given (mailboxes may be case-sensitive). Imported here, not
    at the top: it costs about 55 ms to import, and a run that checks no address (cron
    with nothing new) does not pay it."""
    value = raw.strip()
    if not value:
        raise BadAddress("empty address")
    if any(c.isspace() for c in value) or any(c in value for c in '<>(),;:"[]\\'):
        raise BadAddress("not a plain e-mail address (spaces, brackets or separators in it)")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise BadAddress("an address needs one '@' with a name before it and a domain after")
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        why = str(exc)
        if "after the @-sign" in why or "domain" in why.lower():
            raise BadAddress(f"invalid domain {domain!r}: {why}") from None
        raise BadAddress(f"invalid name part {local!r}: {why}") from None
    assert checked.ascii_email is not None  # allow_smtputf8=False: always ASCII
    return checked.ascii_email


# What ``_is_plainly_valid`` accepts without email-validator: an ASCII name part of
# unquoted atoms and a lower-case domain of letters, digits and inner hyphens under a
# top-level domain of letters, no IDNA ("xn--") or other "??--" label. Everything
# it accepts, email-validator accepts unchanged (a test checks this); anything else is
# decided by email-validator.
_PLAIN_LOCAL_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_PLAIN_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# email-validator's SPECIAL_USE_DOMAIN_NAMES (a test keeps the two equal): left to it.
_SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")


def is_plainly_valid(value: str) -> bool:
    """True when ``value`` is an address email-validator would accept and store unchanged,
    decided without importing it: the configuration's addresses are checked at every load,
    and the cron path stays light. False means "ask :func:`normalize_address`", not
    "invalid"."""
    local, at, domain = value.rpartition("@")
    if not at or len(value) > 254 or len(local) > 64 or len(domain) > 253:
        return False
    labels = domain.split(".")
    return (
        _PLAIN_LOCAL_RE.fullmatch(local) is not None
        and len(labels) >= 2
        and all(_PLAIN_LABEL_RE.fullmatch(label) for label in labels)
        and labels[-1].isalpha()
        and not any(label[2:4] == "--" for label in labels)
        and not any(label in _SPECIAL_USE for label in labels[-2:])
    )
