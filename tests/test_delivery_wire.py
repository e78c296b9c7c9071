"""The bytes on the wire: a digest's message goes to DATA already dot-stuffed (made once per
rendering by the composer), and MAIL and RCPT skip smtplib's address parsing for plain
addresses. What the SMTP connection carries must stay byte for byte what smtplib's
``mail``, ``rcpt`` and ``data`` send for the same messages (what the mailer called before;
``sendmail`` would add a SIZE option): compared here on a real aiosmtpd server, with lines
that start with a dot in the bodies, the names and the addresses."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iomfeed.config import SmtpConfig
from iomfeed.delivery.dkim import DkimSigner
from iomfeed.delivery.mailers import SmtpMailer, _command
from iomfeed.digest.message import Composer, Outgoing, prefixed, stuffed
from iomfeed.digest.render import ADDRESS, GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL
from iomfeed.output_records import RenderedDigest

from .conftest import NOW
from .dkimkit import make_key
from .smtp import smtp_server
from .test_digest_message import SECRET, SENDER


def dotted(language: str = "en") -> RenderedDigest:
    """A rendering whose lines start with dots, alone and before and after the tokens."""
    html = (
        f"<html><body>\n.<p>{GREETING}</p>\n..two\n{UNSUBSCRIBE_URL}\n.{ADDRESS}.\n"
        f"<a href='{PREFERENCES_URL}'>.</a>\n.\n</body></html>\n"
    )
    text = f"{GREETING}\n.\n.{ADDRESS}\n{UNSUBSCRIBE_URL}\n. {PREFERENCES_URL}\n..\nend."
    return RenderedDigest(
        language=language,
        subject="News .",
        html=html,
        text=text,
        greeting="{name}",  # a name that starts with a dot starts a line
        greeting_no_name=".",
        shown=1,
        more=0,
        html_bytes=len(html),
    )


def smtplib_wire(data: bytes) -> bytes:
    """What ``SMTP.data`` sends for ``data``, from its own dot-stuffing."""
    q: bytes = smtplib._quote_periods(data)  # type: ignore[attr-defined]
    if q[-2:] != b"\r\n":
        q += b"\r\n"
    return q + b".\r\n"


NAMES = ["", ".", ".Ëlira", "John .Smith", "..", "Ë" * 30, "x" * 200]
ADDRESSES = [".a@example.org", "a.b@example.org", "reader@example.org"]


def messages() -> list[Outgoing]:
    composer = Composer(dotted(), sender=SENDER, digest_id=3, date=NOW, secret=SECRET)
    out = []
    for n, name in enumerate(NAMES):
        for address in ADDRESSES:
            out.append(composer.compose(n + 1, address, name))
    return out


def test_the_composer_stuffs_as_smtplib_does() -> None:
    made = messages()
    assert any(b"\r\n.." in m.wire for m in made)  # there was something to stuff
    for message in made:
        assert message.wire == smtplib_wire(message.data) == stuffed(message.data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"\r\n")))
def test_stuffed_matches_smtplib_on_any_bytes(data: bytes) -> None:
    assert stuffed(data) == smtplib_wire(data)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", ".", "\r\n", "x.y", "\r\n."]), max_size=12))
def test_a_header_in_front_is_stuffed_alone(lines: list[str]) -> None:
    head = ("".join(lines) + "\r\n").encode()
    body = b".first\r\nsecond\r\n"
    assert prefixed(head, stuffed(body)) == smtplib_wire(head + body)


def test_a_prefix_must_be_whole_lines() -> None:
    with pytest.raises(ValueError, match="line break"):
        prefixed(b"X-A: 1", stuffed(b".b\r\n"))


@pytest.mark.parametrize(
    "address",
    [*ADDRESSES, "o'neil+tag@example.org", "a..b@example.org", "a.@example.org", "<a@b.org>"],
)
def test_mail_and_rcpt_commands_match_smtplib(address: str) -> None:
    class Recorder(smtplib.SMTP):
        def __init__(self) -> None:
            super().__init__()
            self.sent: list[str] = []

        def putcmd(self, cmd: str, args: str = "") -> None:
            self.sent.append(f"{cmd} {args}")

        def getreply(self) -> tuple[int, bytes]:
            return 250, b"OK"

    ours, theirs = Recorder(), Recorder()
    _command(ours, "mail", "FROM", address, " BODY=8BITMIME")
    _command(ours, "rcpt", "TO", address, "")
    theirs.does_esmtp = True
    theirs.mail(address, ["BODY=8BITMIME"])
    theirs.rcpt(address)
    assert ours.sent == theirs.sent


class Once:
    """A signing function that signs each message once and answers the same bytes again."""

    def __init__(self, sign: Callable[[bytes], bytes]) -> None:
        self._sign = sign
        self.made: dict[bytes, bytes] = {}

    def sign(self, data: bytes) -> bytes:
        if data not in self.made:
            self.made[data] = self._sign(data)
        return self.made[data]


@contextmanager
def recording() -> Iterator[list[bytes]]:
    """Every byte an ``smtplib.SMTP`` connection writes, in order."""
    sent: list[bytes] = []
    real = smtplib.SMTP.send

    def send(self: smtplib.SMTP, s: bytes | str) -> None:
        sent.append(s.encode("ascii") if isinstance(s, str) else s)
        real(self, s)

    smtplib.SMTP.send = send  # type: ignore[method-assign,assignment]
    try:
        yield sent
    finally:
        smtplib.SMTP.send = real  # type: ignore[method-assign]


def via_smtplib(port: int, made: list[Outgoing], sign: Once | None) -> bytes:
    with recording() as sent:
        smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test")
        smtp.ehlo()
        for m in made:
            data = sign.sign(m.data) if sign else m.data
            assert smtp.mail(m.sender, ["BODY=8BITMIME"])[0] == 250
            assert smtp.rcpt(m.recipient)[0] == 250
            assert smtp.data(data)[0] == 250
        smtp.quit()
    return b"".join(sent)


def via_mailer(port: int, made: list[Outgoing], sign: Once | None) -> bytes:
    cfg = SmtpConfig(host="127.0.0.1", port=port, security="none", timeout=10)
    mailer = SmtpMailer(cfg, local_hostname="client.test", sign=sign.sign if sign else None)
    with recording() as sent:
        for m in made:
            mailer.send(m)
        mailer.close()
    return b"".join(sent)


@pytest.mark.network
@pytest.mark.parametrize("signed", [False, True], ids=["plain", "dkim"])
def test_the_wire_is_byte_for_byte_smtplibs(tmp_path: Path, signed: bool) -> None:
    made = messages()
    sign = None
    if signed:  # each message signed once, for both ways (a signature holds its time)
        signer = DkimSigner(make_key(tmp_path).path.read_bytes(), selector="s", domain="x.org")
        sign = Once(signer.sign)
    with smtp_server() as (handler, port):
        theirs = via_smtplib(port, made, sign)
        ours = via_mailer(port, made, sign)
    assert ours == theirs
    assert b"\r\n..\r\n" in ours  # the dotted lines went stuffed
    # The server took each message twice (once each way), unstuffed to the message itself.
    assert len(handler.received) == 2 * len(made)
    for got, m in zip(handler.received, made + made, strict=True):
        assert got.rcpt_tos == [m.recipient]
        assert got.data == (sign.sign(m.data) if sign else m.data)
