"""What a message in the bounce mailbox is: pure, from its bytes alone.

In this order, the first that fits:

1. an RFC 5965 ARF report (``multipart/report; report-type=feedback-report``): a
   complaint, naming the recipient from ``Original-Rcpt-To`` or the returned message's
   ``To``;
2. an RFC 3464 delivery status notification: per recipient (``Final-Recipient``, else
   ``Original-Recipient``) whose ``Action`` is ``failed`` (hard, or soft when its
   ``Status`` is 4.x.x) or ``delayed`` (soft), with its ``Status``;
3. an auto-reply: RFC 3834 ``Auto-Submitted`` (other than ``no``), ``X-Autoreply``,
   ``X-Autorespond``, ``Precedence: auto_reply`` or an out-of-office subject, unless the
   message is plainly a bounce (``X-Failed-Recipients``, a delivery-failure subject);
4. the free-text formats of Exim, qmail, Postfix, Exchange, Yahoo, old sendmail and more,
   by flufl.bounce's detectors (Mailman's); the status is the first enhanced status code
   (RFC 3463) of the text when its class agrees, else 5.0.0 or 4.0.0;
5. unrecognised.

``text`` is every header and every decoded text part, where the caller looks for the VERP
address the bounce was sent to (:mod:`iomfeed.delivery.verp`) and the tokens of the
returned message.
"""

from __future__ import annotations

import email
import logging
import re
from dataclasses import dataclass
from email.message import Message

from .records import Kind

__all__ = ["Classified", "Failure", "Kind", "classify"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Failure:
    """One recipient a bounce reports."""

    address: str  # lower-cased
    hard: bool
    status: str  # "5.1.1"; "5.0.0" or "4.0.0" when the report gives none


@dataclass(frozen=True, slots=True)
class Classified:
    kind: Kind
    message_id: str  # the message's own Message-ID ('' when it has none)
    failures: tuple[Failure, ...] = ()  # hard and soft: per recipient
    complained: tuple[str, ...] = ()  # a complaint: the addresses it names
    note: str = ""  # in words, for the log (a feedback type, a subject)
    text: str = ""  # headers and decoded text, to look for tokens in
    token: str = ""  # an unsubscribe request: the token its subject gives


_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BOUNCE_SUBJECT = re.compile(
    r"deliver|failure|failed|returned|undeliver|bounce|rejected|non-?remis", re.IGNORECASE
)
_AWAY_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|vacation|"
    r"away from|abwesenheit|r[ée]ponse automatique|auto:)",
    re.IGNORECASE,
)


def classify(raw: bytes) -> Classified:
    """What ``raw`` (one whole message) is; never raises on a malformed message."""
    msg = email.message_from_bytes(raw)
    message_id = " ".join(str(msg.get("Message-ID", "")).split())[:300]
    text = _text(msg)
    found = _arf(msg) or _dsn(msg) or _request(msg) or _auto_reply(msg) or _heuristic(msg, text)
    if found is None:
        subject = " ".join(str(msg.get("Subject", "")).split())[:120]
        found = Classified(Kind.UNRECOGNISED, "", note=f"subject {subject!r}")
    return Classified(
        found.kind,
        message_id,
        failures=found.failures,
        complained=found.complained,
        note=found.note,
        text=text,
        token=found.token,
    )


def _text(msg: Message) -> str:
    """Every part's headers and every text part decoded (base64 and quoted-printable too),
    and the raw form of the rest, as one string."""
    chunks: list[str] = []
    for part in msg.walk():
        chunks.extend(f"{k}: {v}" for k, v in part.items())
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            chunks.append(payload.decode("utf-8", "replace"))
        elif isinstance(part.get_payload(), str):
            chunks.append(str(part.get_payload()))
    return "\n".join(chunks)


def _address(value: str) -> str:
    """``rfc822; Ana@Example.org`` or ``<ana@example.org>`` -> ``ana@example.org``."""
    value = value.partition(";")[2] if ";" in value else value
    return email.utils.parseaddr(value.strip())[1].strip().lower()


def _report_parts(msg: Message, report_type: str, subtype: str) -> list[Message]:
    if msg.get_content_type() != "multipart/report":
        return []
    if str(msg.get_param("report-type", "")).lower() != report_type:
        return []
    return [p for p in msg.walk() if p.get_content_type() == f"message/{subtype}"]


def _arf(msg: Message) -> Classified | None:
    parts = _report_parts(msg, "feedback-report", "feedback-report")
    if not parts:
        return None
    fields = _fields(parts[0])
    addresses = [_address(v) for v in fields.get("original-rcpt-to", [])]
    for part in msg.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            addresses += [_address(v) for v in _returned_headers(part).get_all("To", [])]
    feedback = ", ".join(fields.get("feedback-type", [])) or "unspecified"
    complained = tuple(dict.fromkeys(a for a in addresses if "@" in a))
    return Classified(Kind.COMPLAINT, "", complained=complained, note=f"feedback {feedback}")


def _fields(part: Message) -> dict[str, list[str]]:
    """The ``Name: value`` fields of a report part (as header blocks or as text)."""
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else [email.message_from_string(str(payload))]
    out: dict[str, list[str]] = {}
    for block in blocks:
        if isinstance(block, Message):
            for k, v in block.items():
                out.setdefault(k.lower(), []).append(" ".join(str(v).split()))
    return out


def _returned_headers(part: Message) -> Message:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return email.message_from_string(str(payload))


def _dsn(msg: Message) -> Classified | None:
    parts = _report_parts(msg, "delivery-status", "delivery-status")
    failures: list[Failure] = []
    for part in parts:
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        for block in blocks[1:] if len(blocks) > 1 else blocks:  # the first is per message
            failure = _dsn_recipient(block) if isinstance(block, Message) else None
            if failure is not None:
                failures.append(failure)
    if not failures:
        return None
    return _bounce(failures, "delivery status notification")


def _dsn_recipient(block: Message) -> Failure | None:
    action = str(block.get("Action", "")).strip().lower()
    if not action.startswith(("failed", "delayed", "error")):
        return None  # delivered, relayed, expanded: no failure
    address = _address(str(block.get("Final-Recipient", "") or block.get("Original-Recipient", "")))
    original = _address(str(block.get("Original-Recipient", "")))
    address = original if original and "@" in original else address
    if "@" not in address:
        return None
    match = _STATUS.search(str(block.get("Status", "")))
    status = match.group(0) if match is not None and match.group(1) != "2" else ""
    if action.startswith("delayed"):
        return Failure(address, False, status if status.startswith("4") else "4.0.0")
    if not status:  # failed with no status, or a success code: a contradiction, taken as 5
        return Failure(address, True, "5.0.0")
    return Failure(address, status.startswith("5"), status)


def _bounce(failures: list[Failure], note: str) -> Classified:
    unique = tuple(dict.fromkeys(failures))
    kind = Kind.HARD if any(f.hard for f in unique) else Kind.SOFT
    return Classified(kind, "", failures=unique, note=note)


#: The subject a List-Unsubscribe mailto gives a message (``unsubscribe <token>``), as a
#: mail program sends it (perhaps with "Re:" before it, or encoded).
_REQUEST_SUBJECT = re.compile(
    r"^\s*(?:re:\s*)?unsubscribe\s+([1-9][0-9]{0,17}\.[A-Za-z0-9_-]{22})\s*$", re.IGNORECASE
)


def _request(msg: Message) -> Classified | None:
    """A subscriber's own mail to the List-Unsubscribe mailto address; who it is about is
    what its token proves, never its From."""
    from email.header import decode_header, make_header

    raw = str(msg.get("Subject", ""))
    try:
        subject = str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError):
        subject = raw
    found = _REQUEST_SUBJECT.match(" ".join(subject.split()))
    if found is None:
        return None
    return Classified(Kind.UNSUBSCRIBE, "", note="unsubscribe by mail", token=found.group(1))


def _auto_reply(msg: Message) -> Classified | None:
    subject = " ".join(str(msg.get("Subject", "")).split())
    if msg.get("X-Failed-Recipients") or _BOUNCE_SUBJECT.search(subject):
        return None  # Exim and Postfix mark their bounces auto-replied too
    submitted = str(msg.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(msg.get("Precedence", "")).strip().lower()
    if (
        not submitted.startswith("no")
        or msg.get("X-Autoreply")
        or msg.get("X-Autorespond")
        or precedence == "auto_reply"
        or _AWAY_SUBJECT.search(subject)
    ):
        return Classified(Kind.AUTO_REPLY, "", note=f"subject {subject[:120]!r}")
    return None


class _DetectorTrip(logging.Filter):
    """flufl.bounce logs a detector that trips over a message (junk, spam with an empty
    From) with its trace at error level, which reached the operator's stderr under ``-q``
    and cron's mail. For iomfeed that is an odd message, not an error: kept at debug."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith("Exception in detector"):
            trip = record.exc_info[1] if record.exc_info else None
            log.debug("bounces: flufl.bounce: %s: %r", record.getMessage(), trip)
            return False
        return True


_TRIPS = _DetectorTrip()


def _heuristic(msg: Message, text: str) -> Classified | None:
    from flufl.bounce import all_failures  # about 80 ms to import: only here

    found = logging.getLogger("flufl.bounce")
    if _TRIPS not in found.filters:
        found.addFilter(_TRIPS)

    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector that trips over a malformed message: not a bounce
        return None
    failures = [
        Failure(a.decode("ascii", "replace").lower(), hard, _status_near(text, hard))
        for hard, found in ((True, permanent), (False, temporary))
        for a in sorted(found)
    ]
    failures = [f for f in failures if "@" in f.address]
    return _bounce(failures, "non-standard bounce") if failures else None


def _status_near(text: str, hard: bool) -> str:
    """The first enhanced status code of the text whose class agrees with ``hard``."""
    for m in _STATUS.finditer(text):
        if (m.group(1) == "5") == hard and m.group(1) != "2":
            return m.group(0)
    return "5.0.0" if hard else "4.0.0"
