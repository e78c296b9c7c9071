"""Transports: where a finished message goes. One narrow interface, chosen by name in config.

A mailer's ``send(message)`` returns the server's reply (or a note) on success, raises
:class:`TemporaryFailure` when trying again later may work (a 4xx reply, a dropped or refused
connection) and :class:`PermanentFailure` when this address will not take it (a 5xx reply to
RCPT or DATA). A failure that concerns every message (the sender refused, a login rejected)
is a :class:`DeliveryError` that stops the send. Mailers know nothing of the ledger; a
mailer may also offer ``send_overlapped(message, start, meanwhile)`` (the SMTP one does),
which runs the ledger's ``start()`` and the next message's making while the server answers.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError, DeliveryError, PublishError
from ..files import PRIVATE, write_if_changed

if TYPE_CHECKING:
    import smtplib

    from ..config import Config, SmtpConfig
    from ..digest.message import Outgoing

log = logging.getLogger(__name__)

#: An SMTP reply: its code and text.
Reply = tuple[int, bytes]


class TemporaryFailure(DeliveryError):
    """Try this message again later.

    ``connection``: no server could be reached. ``server``: the reply concerns every message,
    not this address (421, or a 4xx to MAIL FROM: a quota, a rate limit), so the others
    would fail the same way and this try says nothing about this subscriber.
    ``maybe_delivered``: the connection broke after the message's data was sent, so the
    server may have taken it; a resend is a possible second copy.
    """

    def __init__(
        self,
        reply: str,
        *,
        connection: bool = False,
        server: bool = False,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(reply)
        self.reply = reply
        self.connection = connection
        self.server = server or connection
        self.maybe_delivered = maybe_delivered


class PermanentFailure(DeliveryError):
    """This address will not take this message (a 5xx reply for the recipient or its data)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class Mailer(Protocol):
    def send(self, message: Outgoing) -> str: ...

    def close(self) -> None: ...


_FILE_SAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class OutboxMailer:
    """One ``.eml`` file per message in a folder, written atomically (temp file, fsync,
    rename). The file is named after the Message-ID, so a message re-sent after a crash
    replaces its own copy instead of adding a second one. A message holds its recipient's
    address and unsubscribe token: the file is readable by its owner only (0600)."""

    def __init__(self, folder: Path, *, sign: Callable[[bytes], bytes] | None = None) -> None:
        self.folder = folder
        self.sign = sign  # DKIM (:mod:`.dkim`): applied to the bytes written

    def path_for(self, message: Outgoing) -> Path:
        return self.folder / (_FILE_SAFE.sub("_", message.message_id.strip("<>")) + ".eml")

    def send(self, message: Outgoing) -> str:
        path = self.path_for(message)
        data = self.sign(message.data) if self.sign else message.data
        try:
            write_if_changed(path, data, mode=PRIVATE)
        except PublishError as exc:
            raise DeliveryError(f"outbox: {exc}") from exc
        return f"written {path.name}"

    def close(self) -> None:
        pass


def _reply_text(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"[:500]


class SmtpMailer:
    """One SMTP connection reused for many messages (STARTTLS, implicit TLS or plain), with
    TCP_NODELAY, an optional messages-per-second limit, and a fresh connection when the
    old one was dropped."""

    def __init__(
        self,
        cfg: SmtpConfig,
        *,
        password: str = "",
        ca_file: Path | None = None,
        rate: float = 0.0,
        local_hostname: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        sign: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.cfg = cfg
        self.sign = sign  # DKIM (:mod:`.dkim`): applied last, to the bytes sent
        self.password = password
        self.ca_file = ca_file
        self.rate = rate
        self.local_hostname = local_hostname
        self._clock = clock
        self._sleep = sleep
        self._smtp: smtplib.SMTP | None = None
        self._eightbit = True
        self._next_slot = 0.0
        self.connections = 0  # how many times a connection was opened (for the report)

    def sibling(self) -> SmtpMailer:
        """Another connection with the same settings (``mail.connections``); the pace
        (``rate``) is shared out between the siblings by the caller."""
        return SmtpMailer(
            self.cfg,
            password=self.password,
            ca_file=self.ca_file,
            rate=self.rate,
            local_hostname=self.local_hostname,
            clock=self._clock,
            sleep=self._sleep,
            sign=self.sign,
        )

    # -- connection

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def _connect(self) -> smtplib.SMTP:
        import smtplib

        cfg = self.cfg
        where = f"{cfg.host}:{cfg.port}"
        smtp: smtplib.SMTP | None = None
        try:
            if cfg.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    cfg.host,
                    cfg.port,
                    timeout=cfg.timeout,
                    context=self._context(),
                    local_hostname=self.local_hostname,
                )
            else:
                smtp = smtplib.SMTP(
                    cfg.host, cfg.port, timeout=cfg.timeout, local_hostname=self.local_hostname
                )
            if smtp.sock is not None:
                # Small writes (commands) must not wait for ACKs: with TLS, Nagle's algorithm
                # alone cuts throughput by an order of magnitude.
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if cfg.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(
                        f"SMTP server {where} does not offer STARTTLS"
                        " (mail.smtp.security = 'starttls')"
                    )
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if cfg.username:
                try:
                    smtp.login(cfg.username, self.password)
                except UnicodeEncodeError:
                    raise DeliveryError(
                        f"SMTP login of {cfg.username!r}: Python's SMTP client sends only"
                        " ASCII user names and passwords (check mail.smtp.username and the"
                        f" variable {cfg.password_env})"
                    ) from None
        except BaseException as exc:
            if smtp is not None:
                smtp.close()
            if isinstance(exc, smtplib.SMTPAuthenticationError):
                raise DeliveryError(
                    f"SMTP server {where} refused the login of {cfg.username!r}:"
                    f" {_reply_text(exc.smtp_code, exc.smtp_error)}"
                ) from exc
            if isinstance(exc, ssl.SSLError):
                raise DeliveryError(f"SMTP server {where}: TLS failed: {exc}") from exc
            if isinstance(exc, (smtplib.SMTPException, OSError)):
                raise TemporaryFailure(
                    f"cannot connect to {where}: {exc}", connection=True
                ) from exc
            raise
        self._eightbit = smtp.has_extn("8bitmime")
        self.connections += 1
        log.debug("connected to %s (8BITMIME: %s)", where, self._eightbit)
        return smtp

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except Exception:
                self._smtp.close()
            self._smtp = None

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    # -- sending

    def _pace(self) -> None:
        if self.rate <= 0:
            return
        now = self._clock()
        if self._next_slot > now:
            self._sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = now + 1.0 / self.rate

    def _wire(self, message: Outgoing) -> bytes:
        """What DATA sends: the composer's dot-stuffed bytes when they can go as they are,
        with a DKIM signature in front when signing; otherwise stuffed here."""
        from ..digest.message import prefixed, stuffed

        data = message.data if self._eightbit else to_7bit(message.data)
        signed = self.sign(data) if self.sign is not None else data  # signed as sent
        if not (self._eightbit and message.wire and signed.endswith(data)):
            return stuffed(signed)
        return prefixed(signed[: len(signed) - len(data)], message.wire)

    def send(self, message: Outgoing) -> str:
        reply = self.send_overlapped(message, lambda: True)
        assert reply is not None
        return reply

    def send_overlapped(
        self,
        message: Outgoing,
        start: Callable[[], bool],
        meanwhile: Callable[[], None] | None = None,
        before_wait: Callable[[], None] | None = None,
    ) -> str | None:
        """:meth:`send`, with the sender's own work done while the server answers:
        ``start()`` (the ledger's 'sending', which must be committed before the message's
        data leaves) runs while MAIL is answered, and ``meanwhile()`` (making the next
        message) while the data is. None, and the transaction reset, when ``start()`` says
        the message must not go after all. ``before_wait()`` runs first when the message
        must wait (for the rate's next slot, or a connection)."""
        import smtplib

        waits = self._smtp is None or (self.rate > 0 and self._next_slot > self._clock())
        if before_wait is not None and waits:
            before_wait()  # what the sender holds is recorded before, not during, a wait
        self._pace()
        if self._smtp is None:
            self._smtp = self._connect()
        smtp = self._smtp
        wire = self._wire(message)
        stage = "MAIL"
        try:
            _put(smtp, "mail", "FROM", message.sender, self._mail_options)
            try:
                started = start()
            except BaseException:
                self._drop()  # its answer to MAIL is unread: out of step
                raise
            code, reply = smtp.getreply()
            if not started:
                self._reset(code)
                return None
            self._mail_answer(message, code, reply)
            stage = "RCPT"
            _put(smtp, "rcpt", "TO", message.recipient, "")
            code, reply = smtp.getreply()
            if code not in (250, 251):
                self._reset(code)  # end the transaction; the connection stays usable
                raise _failure(code, reply)
            stage = "DATA"
            code, reply = _data(smtp, wire, meanwhile)  # raises only when DATA is refused
            if code != 250:  # the answer to the message: queued, or not
                self._reset(code)
                raise _failure(code, reply)
        except smtplib.SMTPDataError as exc:
            self._reset(exc.smtp_code)
            raise _failure(exc.smtp_code, exc.smtp_error) from exc
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise TemporaryFailure(
                f"connection lost at {stage}: {exc}", maybe_delivered=stage == "DATA"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise _failure(exc.smtp_code, exc.smtp_error) from exc
        return _reply_text(code, reply)

    def _mail_answer(self, message: Outgoing, code: int, reply: bytes) -> None:
        if code == 250:
            return
        self._reset(code)
        if 400 <= code < 500:
            raise TemporaryFailure(_reply_text(code, reply), server=True)
        raise DeliveryError(
            f"SMTP server refused the sender {message.sender}:"
            f" {_reply_text(code, reply)} (check mail.from_address)"
        )

    @property
    def _mail_options(self) -> str:
        return " BODY=8BITMIME" if self._eightbit else ""

    def _reset(self, code: int) -> None:
        """End a failed transaction (a server keeps it open after a refused DATA and would
        answer the next MAIL with 503), or drop a connection the server is closing (421)."""
        if code == 421 or self._smtp is None:
            self._drop()
            return
        try:
            self._smtp.rset()
        except Exception:
            self._drop()


#: An address ``smtplib.quoteaddr`` leaves as it is (between angle brackets); any other
#: goes through it, so the commands are byte for byte what ``SMTP.mail`` and ``rcpt`` send.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def _put(smtp: smtplib.SMTP, verb: str, field: str, address: str, options: str) -> None:
    """Write ``MAIL FROM:<address>`` or ``RCPT TO:<address>`` with ``options`` (each with
    the space before it), as ``smtplib`` would, without parsing a plain address."""
    if _PLAIN_ADDRESS.fullmatch(address):
        quoted = f"<{address}>"
    else:
        import smtplib

        quoted = smtplib.quoteaddr(address)
    smtp.putcmd(verb, f"{field}:{quoted}{options}")


def _command(smtp: smtplib.SMTP, verb: str, field: str, address: str, options: str) -> Reply:
    """:func:`_put`, and the server's answer."""
    _put(smtp, verb, field, address, options)
    return smtp.getreply()


def _data(smtp: smtplib.SMTP, wire: bytes, meanwhile: Callable[[], None] | None = None) -> Reply:
    """``SMTP.data`` for bytes already dot-stuffed and ended (``Outgoing.wire``): the same
    commands and bytes, without stuffing the whole message again for every recipient;
    ``meanwhile()`` runs once the data is written, before the answer is read."""
    import smtplib

    smtp.putcmd("data")
    code, reply = smtp.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    smtp.send(wire)
    if meanwhile is not None:
        meanwhile()
    return smtp.getreply()


def _failure(code: int, reply: bytes | str) -> DeliveryError:
    text = _reply_text(code, reply)
    if 500 <= code < 600:
        return PermanentFailure(text)
    return TemporaryFailure(text, server=code == 421)


def to_7bit(data: bytes) -> bytes:
    """The message re-encoded for a server without 8BITMIME (base64 bodies); slow, rare."""
    import email
    from email.policy import SMTP

    # refold_source="none": the headers go out exactly as they came (refolding would turn
    # List-Unsubscribe's URLs into encoded words, which breaks one-click unsubscribe).
    policy = SMTP.clone(refold_source="none")
    msg = email.message_from_bytes(data, policy=policy)
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            text = part.get_content().replace("\r\n", "\n")
            subtype = part.get_content_subtype()
            part.set_content(text, subtype=subtype, cte="base64")
    return msg.as_bytes(policy=policy.clone(cte_type="7bit"))


def make_mailer(config: Config) -> Mailer:
    """The transport the config names."""
    mail = config.mail
    sign = None
    if mail.dkim.enabled:
        from .dkim import DkimSigner

        sign = DkimSigner.from_config(config).sign
    if mail.transport == "outbox":
        return OutboxMailer(config.outbox_path, sign=sign)
    password = ""
    if mail.smtp.username:
        password = os.environ.get(mail.smtp.password_env, "")
        if not password:
            raise ConfigError(
                f"mail.smtp.password_env: the environment variable {mail.smtp.password_env}"
                f" is not set (the password for {mail.smtp.username!r})"
            )
    ca_file = config.path(mail.smtp.ca_file) if mail.smtp.ca_file else None
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"mail.smtp.ca_file: {ca_file}: no such file")
    return SmtpMailer(mail.smtp, password=password, ca_file=ca_file, rate=mail.rate, sign=sign)
