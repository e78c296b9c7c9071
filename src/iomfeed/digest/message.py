"""The digest's email messages: built once per digest and language, personalised per
subscriber in microseconds.

The skeleton of each message is an :class:`email.message.EmailMessage` with the SMTP policy:
``multipart/alternative``, the text part first and the HTML part last, UTF-8 with 8bit
transfer encoding, ``From``, ``Subject``, ``Date``, ``List-Id``, ``List-Unsubscribe-Post``.
Building and serialising a whole ``EmailMessage`` costs about 4 ms per message, forty
times the budget for 10,000 subscribers, so the skeleton is serialised once and each
subscriber's message is that byte string with their parts filled in: the ``To`` header
(RFC 2047-encoded by :func:`email.utils.formataddr` / :class:`email.header.Header`), a
``Message-ID`` derived from (digest, subscriber), ``List-Unsubscribe`` with their token, and
the rendered bodies with the template tokens replaced (HTML-escaped in the HTML part).
Everything that reaches a header has been through ``headers.clean_header_text``.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from datetime import datetime
from email import base64mime, quoprimime
from email.header import Header
from email.utils import format_datetime, formataddr
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import quote

from ..output_records import RenderedDigest
from .headers import clean_header_text
from .unsubscribe import make_token

if TYPE_CHECKING:
    from email.message import EmailMessage
    from email.policy import EmailPolicy


@lru_cache(maxsize=1)
def mail_policy() -> EmailPolicy[EmailMessage]:
    """The policy of every message iomfeed writes: SMTP's (CRLF, 78-character lines), which
    writes a value set with ``set_raw`` as it is: :func:`set_subject` folded it already."""
    from email.policy import SMTP

    return SMTP.clone(refold_source="none")


NAME_LIMIT = 80
_TEXT_MARK = "@@IOMFEED-TEXT-PART@@"
_HTML_MARK = "@@IOMFEED-HTML-PART@@"


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sends, and the list's identity (from the config)."""

    address: str
    name: str
    list_id: str
    list_name: str
    unsubscribe_url: str
    unsubscribe_mailto: str
    reply_to: str = ""
    preferences_url: str = ""  # the preferences page; a token is added per subscriber
    bounce_address: str = ""  # VERP (mail.bounce_address); empty: the envelope is ``address``

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One personalised message, ready for a transport."""

    message_id: str  # with the angle brackets
    sender: str  # envelope sender
    recipient: str
    data: bytes  # the whole message, CRLF line ends, 8bit bodies
    #: ``data`` as SMTP's DATA sends it: dot-stuffed, ending with CRLF.CRLF (empty: the
    #: mailer makes it from ``data``, see :func:`stuffed`)
    wire: bytes = b""


#: What ends a message's data on the wire (RFC 5321 4.1.1.4).
END_OF_DATA = b".\r\n"


def stuffed(data: bytes) -> bytes:
    """``data`` dot-stuffed and ended as SMTP's DATA sends it, byte for byte what
    ``smtplib.SMTP.data`` makes of bytes (a line starting with a dot gets a second one)."""
    wire = _LEADING_DOT.sub(b"..", data)
    if wire[-2:] != b"\r\n":
        wire += b"\r\n"
    return wire + END_OF_DATA


_LEADING_DOT = re.compile(rb"(?m)^\.")


def prefixed(head: bytes, wire: bytes) -> bytes:
    """The wire form of ``head`` + a message whose wire form is ``wire`` (a header put in
    front, such as a DKIM signature): only ``head`` is stuffed."""
    if not head:
        return wire
    if head[-1:] != b"\n":  # not whole lines: the message's first line changes
        raise ValueError("a prefix of a message must end with a line break")
    return _LEADING_DOT.sub(b"..", head) + wire


class _Stuffer:
    """A message's data and its dot-stuffed wire form, made together from its pieces: a
    fixed piece comes with its stuffed form made once (:func:`_inner`), a value is stuffed
    as it is added; a dot that starts a piece is doubled when the piece starts a line."""

    __slots__ = ("data", "end", "line_start", "wire")

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.wire: list[bytes] = []
        self.line_start = True
        self.end = b""

    def add(self, raw: bytes, inner: bytes) -> None:
        """Add ``raw``, whose dots after a line break are already doubled in ``inner``."""
        if not raw:
            return
        if self.line_start and raw[0] == 0x2E:  # "."
            self.wire.append(b".")
        self.data.append(raw)
        self.wire.append(inner)
        self.line_start = raw[-1] == 0x0A
        self.end = raw[-2:] if len(raw) > 1 else self.end[-1:] + raw

    def value(self, raw: bytes) -> None:
        self.add(raw, _inner(raw))

    def result(self) -> tuple[bytes, bytes]:
        """(data, wire)."""
        close = [END_OF_DATA] if self.end == b"\r\n" else [b"\r\n", END_OF_DATA]
        return b"".join(self.data), b"".join([*self.wire, *close])


def _inner(raw: bytes) -> bytes:
    """``raw`` with each dot after a line break doubled (the one at its start is the
    joiner's: :class:`_Stuffer`)."""
    return raw.replace(b"\n.", b"\n..") if b"\n." in raw else raw


def _pieces(raw: bytes) -> tuple[bytes, bytes]:
    return raw, _inner(raw)


def message_id(
    sender: Sender, digest_id: int, subscriber_id: int, created: datetime | None = None
) -> str:
    """The same (digest, subscriber) always gets the same Message-ID, so a message re-sent
    after a crash is recognisably the same message; the digest's creation time keeps ids
    apart when a database is started again from scratch."""
    stamp = created.isoformat() if created else ""
    salt = hashlib.sha256(
        f"{sender.list_id}\0{digest_id}\0{subscriber_id}\0{stamp}".encode()
    ).hexdigest()[:12]
    return f"<digest-{digest_id}.{subscriber_id}.{salt}@{sender.domain}>"


#: The last field of every Feedback-ID: who sends (Gmail's feedback loop groups by it).
FEEDBACK_SENDER = "iomfeed"


def feedback_id(campaign: str, list_id: str) -> str:
    """``Feedback-ID: campaign:list:sender`` (Gmail's feedback loop): ``digest-17`` or a
    notice's kind, the List-Id, and :data:`FEEDBACK_SENDER`; no field holds a colon."""
    return ":".join(part.replace(":", ".") for part in (campaign, list_id, FEEDBACK_SENDER))


def unsubscribe_link(base: str, token: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}t={token}"


def address_header(name: str, address: str) -> str:
    """``Name <address>`` for a header, the name RFC 2047-encoded when it is not ASCII."""
    name = clean_header_text(name, NAME_LIMIT)
    if not name:
        return address
    return _encoded_address(name, address, "To")


def _encoded_address(name: str, address: str, header: str) -> str:
    """The name (quoted when ASCII needs it, else encoded) and the address after it: on
    the same line when the line stays within 78 characters, else on a line of its own."""
    if name.isascii():
        words = formataddr((name, address)).rpartition(" <")[0]
    else:
        words = encoded_name(name, header)
    line = words.rsplit("\n", 1)[-1] if "\n" in words else f"{header}: {words}"
    gap = " " if len(line) + len(address) + 3 <= 78 else "\r\n "
    return f"{words}{gap}<{address}>"


def set_subject(msg: EmailMessage, text: str, header: str = "Subject") -> None:
    """Set ``header`` to ``text`` (clean already): through the email policy when ASCII,
    else as RFC 2047 words that ``email.header.Header`` makes, folded. The policy's own
    folding of a long text of encoded words drops a space between two words, or adds one
    inside a word, which the reader then sees (a test holds random Albanian subjects and
    names to their round trip); ``msg``'s policy must be :func:`mail_policy`, which writes
    such a value as it is."""
    if text.isascii():
        msg[header] = text
    else:
        msg.set_raw(header, Header(text, "utf-8", header_name=header).encode(linesep="\r\n"))


def set_address(msg: EmailMessage, header: str, name: str, address: str) -> None:
    """Set ``header`` to ``name <address>`` (the name cleaned here), a name that is not
    ASCII encoded as :func:`set_subject` encodes text."""
    name = clean_header_text(name, NAME_LIMIT)
    if not name:  # a list's id is always in angle brackets (RFC 2919)
        msg[header] = f"<{address}>" if header == "List-Id" else address
    elif name.isascii():
        msg[header] = formataddr((name, address))
    else:
        msg.set_raw(header, _encoded_address(name, address, header))


#: Longest encoded text (without the ``=?utf-8?q?`` and ``?=``) written as one word at
#: once; the stdlib makes the same single word for these (a test compares them), and only
#: longer names need its character-by-character fitting.
ONE_WORD = 48


def encoded_name(name: str, header: str = "To") -> str:
    """``name`` (not ASCII) as RFC 2047 encoded words, as ``email.header.Header`` would
    write it in a To header: Q or B, whichever is shorter, Q on a tie. ``Header`` tries
    every prefix of the name to fit lines, about half of personalising a message with a
    non-ASCII name; a name that fits one word does not need that."""
    raw = name.encode("utf-8")
    b_length, q_length = base64mime.header_length(raw), quoprimime.header_length(raw)
    if min(b_length, q_length) <= ONE_WORD:
        if b_length < q_length:
            return base64mime.header_encode(raw, "utf-8")
        return quoprimime.header_encode(raw, "utf-8")
    return Header(name, "utf-8", header_name=header).encode(linesep="\r\n")


def _split(body: str, tokens: tuple[str, ...]) -> list[str]:
    """``body`` cut at the tokens: text, token, text, token, ..., text."""
    pattern = "(" + "|".join(re.escape(t) for t in tokens) + ")"
    return re.split(pattern, body)


def _encoded(pieces: list[str]) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """What :func:`_split` gave, as the texts in UTF-8 (each with its dot-stuffed form) and
    the tokens between them."""
    return [_pieces(p.encode("utf-8")) for p in pieces[0::2]], pieces[1::2]


def _skeleton(
    rendered: RenderedDigest, sender: Sender, digest_id: int, date: datetime, test: bool
) -> bytes:
    """The message of one digest and language with every per-subscriber part left out: the
    headers all its messages share, and marks where the two bodies go."""
    from email.message import EmailMessage

    skeleton = EmailMessage(policy=mail_policy())
    set_address(skeleton, "From", sender.name, sender.address)
    if sender.reply_to:
        skeleton["Reply-To"] = sender.reply_to
    subject = clean_header_text(rendered.subject)
    set_subject(skeleton, f"[TEST] {subject}" if test else subject)
    skeleton["Date"] = format_datetime(date)
    set_address(skeleton, "List-Id", sender.list_name, sender.list_id)
    if not test:
        skeleton["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Bulk mail that no vacation responder should answer (RFC 3834), and its campaign for
    # Gmail's feedback loop.
    skeleton["Precedence"] = "bulk"
    skeleton["Auto-Submitted"] = "auto-generated"
    skeleton["Feedback-ID"] = feedback_id(f"digest-{digest_id}", sender.list_id)
    skeleton.set_content(_TEXT_MARK + "\n", cte="8bit")
    skeleton.add_alternative(_HTML_MARK + "\n", subtype="html", cte="8bit")
    skeleton.set_boundary(
        f"=_iomfeed_{digest_id}_{rendered.language}_"
        + hashlib.sha256(rendered.html.encode()).hexdigest()[:16]
    )
    return skeleton.as_bytes()


def list_unsubscribe(link: str, mailto: str = "") -> str:
    """The ``List-Unsubscribe`` header line (no line end) for an https ``link`` and a
    ``mailto`` URL, folded between the two. Written as it is, not through the email
    policy: a URL longer than a line cannot be folded, so the policy would encode the
    whole value as RFC 2047 words, which no mail provider reads as a link (RFC 2369 and
    RFC 8058 want the URLs in angle brackets, as they are)."""
    return f"List-Unsubscribe: <{link}>" + (f",\r\n <{mailto}>" if mailto else "")


class Composer:
    """The messages of one digest in one language."""

    def __init__(
        self,
        rendered: RenderedDigest,
        *,
        sender: Sender,
        digest_id: int,
        date: datetime,
        secret: bytes,
        test: bool = False,
    ) -> None:
        from .render import ADDRESS, GREETING, PREFERENCES_URL, TOKENS, UNSUBSCRIBE_URL

        self.rendered = rendered
        self.sender = sender
        self.digest_id = digest_id
        self.date = date
        self.secret = secret
        self.test = test
        self._tokens = (GREETING, UNSUBSCRIBE_URL, ADDRESS, PREFERENCES_URL)
        assert set(self._tokens) == set(TOKENS)

        raw = _skeleton(rendered, sender, digest_id, date, test)
        head, _, body = raw.partition(b"\r\n\r\n")
        self._head = _pieces(head + b"\r\n")
        before_text, _, rest = body.partition(_TEXT_MARK.encode() + b"\r\n")
        between, _, after_html = rest.partition(_HTML_MARK.encode() + b"\r\n")
        self._body = tuple(_pieces(b) for b in (b"\r\n" + before_text, between, after_html))

        def crlf(text: str) -> str:
            text = text if text.endswith("\n") else text + "\n"
            return text.replace("\r\n", "\n").replace("\n", "\r\n")

        # The text between the tokens as bytes, once: a message encodes only its values.
        self._text = _encoded(_split(crlf(rendered.text), self._tokens))
        self._html = _encoded(_split(crlf(rendered.html), self._tokens))

    def values(
        self, address: str, name: str, unsubscribe_url: str, preferences_url: str
    ) -> dict[str, str]:
        name = clean_header_text(name, NAME_LIMIT)
        greeting = (
            self.rendered.greeting.replace("{name}", name)
            if name
            else self.rendered.greeting_no_name
        )
        return {
            self._tokens[0]: greeting,
            self._tokens[1]: unsubscribe_url,
            self._tokens[2]: address,
            self._tokens[3]: preferences_url,
        }

    @staticmethod
    def _fill(
        out: _Stuffer,
        parts: tuple[list[tuple[bytes, bytes]], list[str]],
        values: dict[str, str],
        escape: bool,
    ) -> None:
        texts, tokens = parts
        out.add(*texts[0])
        for token, text in zip(tokens, texts[1:], strict=True):
            value = values[token]
            out.value((html.escape(value) if escape else value).encode("utf-8"))
            out.add(*text)

    def compose(self, subscriber_id: int, address: str, name: str) -> Outgoing:
        token = make_token(self.secret, self.sender.list_id, subscriber_id, address)
        link = unsubscribe_link(self.sender.unsubscribe_url, token)
        mailto, to = "", self.sender.unsubscribe_mailto
        if to:  # only where such mail is acted on
            mailto = f"mailto:{to}?subject={quote('unsubscribe ' + token)}"
        mid = message_id(self.sender, self.digest_id, subscriber_id, self.date)
        envelope = self.envelope(subscriber_id, address)
        from ..consent import preferences_token

        preferences = preferences_token(self.secret, self.sender.list_id, subscriber_id, address)
        return self._message(
            mid, address, name, link, mailto, envelope, self._preferences(preferences)
        )

    def _preferences(self, token: str) -> str:
        return f"{self.sender.preferences_url}?t={token}"

    def envelope(self, subscriber_id: int, address: str) -> str:
        """The envelope sender of this subscriber's message (VERP: :mod:`..delivery.verp`)."""
        from ..delivery.verp import envelope_sender

        return envelope_sender(
            self.sender.bounce_address,
            self.sender.address,
            secret=self.secret,
            list_id=self.sender.list_id,
            digest_id=self.digest_id,
            subscriber_id=subscriber_id,
            address=address,
        )

    def compose_test(self, address: str, name: str, mid: str) -> Outgoing:
        """A test copy: no ledger, no working unsubscribe token."""
        link = unsubscribe_link(self.sender.unsubscribe_url, "TEST")
        return self._message(
            mid,
            address,
            name,
            link,
            "",
            self.sender.address,
            self._preferences("TEST"),
            listed=False,
        )

    def _message(
        self,
        mid: str,
        address: str,
        name: str,
        link: str,
        mailto: str,
        envelope: str,
        preferences: str,
        *,
        listed: bool = True,
    ) -> Outgoing:
        values = self.values(address, name, link, preferences)
        personal = [f"To: {address_header(name, address)}", f"Message-ID: {mid}"]
        if listed:  # (a test copy has no working unsubscribe)
            personal.append(list_unsubscribe(link, mailto))
        before_text, between, after_html = self._body
        out = _Stuffer()
        out.value("\r\n".join(personal).encode("ascii") + b"\r\n")
        out.add(*self._head)
        out.add(*before_text)
        self._fill(out, self._text, values, escape=False)
        out.add(*between)
        self._fill(out, self._html, values, escape=True)
        out.add(*after_html)
        data, wire = out.result()
        return Outgoing(message_id=mid, sender=envelope, recipient=address, data=data, wire=wire)
