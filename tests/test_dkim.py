"""DKIM: every message signed once, as sent, over the headers Gmail wants signed; the
signature checked by dkimpy's verifier against the test's DNS answer."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dkim
import pytest

from iomfeed.config import Config, DkimConfig
from iomfeed.delivery.dkim import DkimSigner, signed_headers
from iomfeed.delivery.mailers import OutboxMailer, make_mailer
from iomfeed.digest.message import Outgoing
from iomfeed.pipeline import send_digest
from iomfeed.store import Store

from .conftest import NOW
from .digestkit import add_items, add_subscribers, digest_config
from .dkimkit import DkimKey, make_key
from .smtp import PUBLIC_URL, Behaviour, smtp_server

SELECTOR = "s2026"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> DkimKey:
    return make_key(tmp_path_factory.mktemp("dkim"))


def dns_for(key: DkimKey, domain: str = "feeds.example.org") -> Any:
    """dkimpy's ``dnsfunc``: the key's TXT record at SELECTOR._domainkey.DOMAIN only."""
    asked: list[bytes] = []

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        asked.append(name)
        return key.record if name == f"{SELECTOR}._domainkey.{domain}.".encode() else None

    dnsfunc.asked = asked  # type: ignore[attr-defined]
    return dnsfunc


def signing_config(tmp_path: Path, key: DkimKey, port: int, **dkim_keys: str) -> Config:
    config = digest_config(tmp_path)
    return dataclasses.replace(
        config,
        site=dataclasses.replace(config.site, public_url=PUBLIC_URL),
        mail=dataclasses.replace(
            config.mail,
            transport="smtp",
            retries=0,
            smtp=dataclasses.replace(
                config.mail.smtp, host="127.0.0.1", port=port, security="none", timeout=5.0
            ),
            dkim=DkimConfig(selector=SELECTOR, key_file=str(key.path), **dkim_keys),
        ),
    )


def clock() -> datetime:
    return NOW


def send_signed(tmp_path: Path, key: DkimKey, behaviour: Behaviour | None = None) -> list[bytes]:
    with smtp_server(behaviour) as (handler, port):
        config = signing_config(tmp_path, key, port)
        with Store(tmp_path / "db.sqlite") as store:
            add_subscribers(store, 3)
            add_items(store, range(3), NOW - timedelta(days=1))
            outcome = send_digest(config, store=store, mailer=make_mailer(config), clock=clock)
    assert outcome.status == "sent" and outcome.delivery is not None
    assert outcome.delivery.sent == 3
    return [r.data for r in handler.received]


def tampered(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


@pytest.mark.network
@pytest.mark.parametrize("eightbit", [True, False], ids=["8bit", "7bit-relay"])
def test_a_signed_digest_verifies_and_a_tampered_unsubscribe_does_not(
    tmp_path: Path, key: DkimKey, eightbit: bool
) -> None:
    received = send_signed(tmp_path, key, Behaviour(no_8bitmime=not eightbit))
    dnsfunc = dns_for(key)
    for data in received:
        assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
        assert dkim.verify(data, dnsfunc=dnsfunc), data[:600]
        d = dkim.DKIM(data)
        sig = dict(dkim.util.parse_tag_value(d.headers[0][1]))
        h = [n.strip() for n in sig[b"h"].split(b":")]
        for name in (
            b"from",
            b"to",
            b"subject",
            b"date",
            b"message-id",
            b"list-id",
            b"feedback-id",
        ):
            assert h.count(name) == 2  # signed, and a second copy refused (oversigned)
        assert h.count(b"list-unsubscribe") == 2 and h.count(b"list-unsubscribe-post") == 2
        assert sig[b"d"] == b"feeds.example.org" and sig[b"s"] == SELECTOR.encode()
        # The one-click link swapped for another: the signature no longer holds.
        forged = tampered(data, b"?t=", b"?t=X")
        assert not dkim.verify(forged, dnsfunc=dnsfunc)
        # A second List-Unsubscribe added on the way: refused too.
        added = tampered(data, b"\r\nTo: ", b"\r\nList-Unsubscribe: <https://evil.test/u>\r\nTo: ")
        assert not dkim.verify(added, dnsfunc=dnsfunc)
    assert len({d.partition(b"\r\n\r\n")[2] for d in received}) == 3  # personalised


def notice(with_unsubscribe: bool) -> Outgoing:
    data = (
        "From: news@feeds.example.org\r\nTo: reader@example.org\r\nSubject: Konfirmo\r\n"
        "Date: Tue, 02 Dec 2025 09:00:00 +0000\r\nMessage-ID: <c1@feeds.example.org>\r\n"
        + ("List-Unsubscribe: <https://news.test/u?t=1>\r\n" if with_unsubscribe else "")
        + 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: 8bit\r\n\r\nKonfirmoni: https://news.test/c?t=2\r\n"
        ".a line starting with a dot\r\n"
    ).encode()
    return Outgoing("<c1@feeds.example.org>", "news@feeds.example.org", "reader@example.org", data)


def test_a_message_without_the_list_headers_is_signed_and_cannot_gain_them(
    tmp_path: Path, key: DkimKey
) -> None:
    """A confirmation notice has no List-Unsubscribe: h= lists it once, as absent, so one
    added later (a one-click link of someone else's) breaks the signature."""
    signer = DkimSigner(key.path.read_bytes(), selector=SELECTOR, domain="feeds.example.org")
    mailer = OutboxMailer(tmp_path / "outbox", sign=signer.sign)
    message = notice(with_unsubscribe=False)
    assert signed_headers(message.data).count(b"list-unsubscribe") == 1
    mailer.send(message)
    data = mailer.path_for(message).read_bytes()
    dnsfunc = dns_for(key)
    assert dkim.verify(data, dnsfunc=dnsfunc)
    added = tampered(
        data, b"\r\nMIME-Version", b"\r\nList-Unsubscribe: <https://x.test/>\r\nMIME-Version"
    )
    assert not dkim.verify(added, dnsfunc=dnsfunc)
    assert signed_headers(notice(with_unsubscribe=True).data).count(b"list-unsubscribe") == 2


def test_signed_once_per_message_and_the_domain_key(tmp_path: Path, key: DkimKey) -> None:
    signer = DkimSigner(key.path.read_bytes(), selector=SELECTOR, domain="example.org")
    first = signer.sign(notice(False).data)
    assert signer.sign(notice(False).data) is first  # a retry of the same bytes: no new signature
    assert dkim.verify(first, dnsfunc=dns_for(key, "example.org"))
    assert not dkim.verify(first, dnsfunc=dns_for(key))  # d= is the configured domain


class Interleaved(DkimSigner):
    """A signer shared by two connections: between this one's second and third look at the
    last message signed, the other connection signs another message."""

    def __init__(self, key: bytes, other: tuple[bytes, bytes]) -> None:
        super().__init__(key, selector=SELECTOR, domain="example.org")
        self.other = other
        self.looks = 0

    @property
    def _last(self) -> tuple[bytes, bytes] | None:
        self.looks += 1
        return self.stored if self.looks <= 2 else self.other

    @_last.setter
    def _last(self, value: tuple[bytes, bytes] | None) -> None:
        self.stored = value
        self.looks = 0


def test_a_shared_signer_never_hands_one_message_another_s_bytes(key: DkimKey) -> None:
    own, other = notice(False).data, notice(True).data
    signer = DkimSigner(key.path.read_bytes(), selector=SELECTOR, domain="example.org")
    other_signed = signer.sign(other)
    shared = Interleaved(key.path.read_bytes(), (other, other_signed))
    first = shared.sign(own)
    again = shared.sign(own)  # a retry: the last message remembered is read once
    assert first.endswith(own) and again == first


def test_a_key_dkimpy_cannot_read_stops_before_the_first_message(
    tmp_path: Path, key: DkimKey
) -> None:
    from iomfeed.errors import ConfigError

    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"-----BEGIN PRIVATE KEY-----\nMIIBAAAA\n-----END PRIVATE KEY-----\n")
    config = signing_config(tmp_path, key, 25)
    config = dataclasses.replace(
        config,
        mail=dataclasses.replace(config.mail, dkim=DkimConfig(SELECTOR, str(bad))),
    )
    with pytest.raises(ConfigError, match=r"mail\.dkim\.key_file: .*bad\.pem: not an RSA"):
        make_mailer(config)


PROBE = """
import sys
from pathlib import Path
from iomfeed.config import load_config
from iomfeed.delivery.mailers import make_mailer
path = Path(sys.argv[1])
plain = load_config(path.with_name("plain.toml"))
make_mailer(plain).close()
print("dkim" in sys.modules)
config = load_config(path)  # the key file is checked without dkimpy
print("dkim" in sys.modules)
make_mailer(config).close()
print("dkim" in sys.modules)
"""


def test_dkimpy_is_imported_only_when_a_signing_mailer_is_made(
    tmp_path: Path, key: DkimKey
) -> None:
    import subprocess
    import sys

    from .conftest import CONFIG_FILE

    text = CONFIG_FILE.read_text(encoding="utf-8")
    (tmp_path / "plain.toml").write_text(text, encoding="utf-8")
    signed = text.replace('selector = ""', f'selector = "{SELECTOR}"').replace(
        'key_file = ""', f'key_file = "{key.path}"'
    )
    (tmp_path / "signed.toml").write_text(signed, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "signed.toml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "True"]


@pytest.mark.network
def test_a_signed_digest_verifies_through_a_dns_server(tmp_path: Path, key: DkimKey) -> None:
    """The same check a receiver makes: the key looked up over DNS (the tests' server on
    127.0.0.1, through dnspython, as dkimpy does), not handed to the verifier."""
    import dns.resolver

    from .dnsserver import dns_server

    name = f"{SELECTOR}._domainkey.feeds.example.org"
    received = send_signed(tmp_path, key)
    with dns_server({(name, "TXT"): [key.record.decode()]}) as server:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = ["127.0.0.1"], server.port

        def dnsfunc(qname: bytes, timeout: int = 5) -> bytes | None:
            try:
                answer = resolver.resolve(qname.decode(), "TXT", lifetime=timeout)
            except dns.resolver.NXDOMAIN:
                return None
            return b"".join(answer.rrset[0].strings) if answer.rrset else None

        for data in received:
            assert dkim.verify(data, dnsfunc=dnsfunc)
            assert not dkim.verify(tampered(data, b"?t=", b"?t=X"), dnsfunc=dnsfunc)
        assert (name, "TXT") in {(n.rstrip("."), t) for n, t in server.questions}


def test_openssl_does_the_rsa_step_and_the_signature_is_dkimpys_byte_for_byte(
    key: DkimKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RSASSA-PKCS1-v1_5 is deterministic: the same message, key and time give the same
    # signature whether dkimpy's arithmetic or OpenSSL does the RSA step.
    pytest.importorskip("cryptography", reason="the dkim extra (cryptography) is not installed")
    import dkim.crypto

    monkeypatch.setattr(dkim.time, "time", lambda: 1_764_000_000.0)  # t= in the signature
    data = notice(True).data
    fast = DkimSigner(key.path.read_bytes(), selector=SELECTOR, domain="example.org")
    assert fast.openssl
    signed = fast.sign(data)
    monkeypatch.setattr(dkim, "RSASSA_PKCS1_v1_5_sign", dkim.crypto.RSASSA_PKCS1_v1_5_sign)
    plain = DkimSigner(key.path.read_bytes(), selector=SELECTOR, domain="example.org")
    assert plain.sign(data) == signed
    assert dkim.verify(signed, dnsfunc=dns_for(key, "example.org"))
    # A key it was not given (another signer's, made elsewhere) goes to dkimpy's own step.
    monkeypatch.undo()
    monkeypatch.setattr(dkim.time, "time", lambda: 1_764_000_000.0)
    other = make_key(key.path.parent, name="other.pem")
    untouched = DkimSigner(other.path.read_bytes(), selector=SELECTOR, domain="example.org",
                           openssl=False)  # fmt: skip
    assert not untouched.openssl
    assert dkim.verify(untouched.sign(data), dnsfunc=dns_for(other, "example.org"))
