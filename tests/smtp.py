"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the tests, with behaviours the tests switch
on: accept, answer 4xx a number of times, answer 5xx for one address, drop the connection in
the middle of a message, call a hook (to kill a client) at a chosen point. Plus a test
certificate authority and a server certificate for STARTTLS, made with ``cryptography``."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Behaviour:
    #: address -> how many more times RCPT gets a 451 reply
    temporary: dict[str, int] = field(default_factory=dict)
    #: addresses whose RCPT gets a 550 reply
    reject: set[str] = field(default_factory=set)
    #: 1-based numbers of DATA commands during which the server drops the connection
    drop_data: set[int] = field(default_factory=set)
    #: called as hook(event, n) for "rcpt" / "data" (n: 1-based count of that event)
    hook: Callable[[str, int], None] | None = None
    #: 1-based number of a MAIL command -> the reply it gets instead of 250
    mail_reply: dict[int, str] = field(default_factory=dict)
    #: 1-based number of a DATA command -> the reply it gets instead of 250
    data_reply: dict[int, str] = field(default_factory=dict)
    #: leave 8BITMIME out of the EHLO answer
    no_8bitmime: bool = False


class Handler:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.received: list[Received] = []
        self.rcpt_count = 0
        self.data_count = 0
        self.mail_count = 0
        self.commands: list[str] = []
        self.connections = 0
        self.lock = threading.Lock()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.behaviour.no_8bitmime:
            responses = [r for r in responses if "8BITMIME" not in r]
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        with self.lock:
            self.mail_count += 1
            n = self.mail_count
        reply = self.behaviour.mail_reply.get(n)
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        self.commands.append("RSET")
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        b = self.behaviour
        with self.lock:
            self.rcpt_count += 1
            n = self.rcpt_count
        if b.hook:
            b.hook("rcpt", n)
        if address in b.reject:
            return "550 5.1.1 No such user here"
        if b.temporary.get(address, 0) > 0:
            b.temporary[address] -= 1
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.data_count += 1
            n = self.data_count
        if n in self.behaviour.drop_data:
            server.transport.close()
            return "421 closing"  # never reaches the client: the connection is gone
        if n in self.behaviour.data_reply:
            return self.behaviour.data_reply[n]
        with self.lock:
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content or envelope.content),
                )
            )
        if self.behaviour.hook:
            self.behaviour.hook("data", n)
        return f"250 2.0.0 Ok: queued as Q{n}"


PUBLIC_URL = "https://news.iomfeed.test/iom-albania/"


def smtp_config_edits(port: int, rate: float = 0.0) -> dict[str, str]:
    """Edits of the shipped config.toml's text that send through this test server (with a
    public address that is not the shipped example, which a send by SMTP refuses)."""
    return {
        'transport = "outbox"': 'transport = "smtp"',
        "https://feeds.example.org/iom-albania/": PUBLIC_URL,
        'host = "localhost"': 'host = "127.0.0.1"',
        "port = 587": f"port = {port}",
        'security = "starttls"': 'security = "none"',
        "rate = 0": f"rate = {rate}",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server(
    behaviour: Behaviour | None = None,
    *,
    tls: ssl.SSLContext | None = None,
    auth: tuple[str, str] | None = None,
    implicit_tls: ssl.SSLContext | None = None,
) -> Iterator[tuple[Handler, int]]:
    """An aiosmtpd server on 127.0.0.1; STARTTLS (required) when ``tls`` is given, and
    AUTH LOGIN/PLAIN with ``auth`` = (user, password)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    handler = Handler(behaviour or Behaviour())
    kwargs: dict[str, Any] = {"ready_timeout": 10.0}
    if tls is not None:
        kwargs.update(tls_context=tls, require_starttls=True)
    if implicit_tls is not None:
        kwargs.update(ssl_context=implicit_tls)
    if auth is not None:

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and (data.login.decode(), data.password.decode()) == auth
            )
            return AuthResult(success=ok, handled=False)

        kwargs.update(
            authenticator=authenticator, auth_required=True, auth_require_tls=tls is not None
        )
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@dataclass(frozen=True)
class TestCA:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def make_test_ca(folder: Path) -> TestCA:
    """A certificate authority and a server certificate for localhost / 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "iomfeed test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "key.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TestCA(ca_file, cert_file, key_file)
