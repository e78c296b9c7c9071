"""``iomfeed doctor``'s DNS checks against a DNS server on 127.0.0.1 that the test starts:
a good domain passes, and each missing or wrong record is named (SPF missing or not
permitting the relay, DKIM missing or another key, DMARC missing, p=none, a misaligned
From). Plus the SPF evaluator and the organisational-domain rule on their own."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest

from iomfeed.config import Config, MailConfig, SmtpConfig
from iomfeed.doctor import Check, DkimSettings, Status, dns_checks
from iomfeed.doctor.dns import Dns, parse_resolver
from iomfeed.doctor.domains import org_domain
from iomfeed.doctor.mailauth import check_dkim
from iomfeed.doctor.spf import evaluate
from iomfeed.errors import ConfigError

from .dnsserver import Records, dns_server

pytestmark = pytest.mark.network

RELAY_IP = "203.0.113.25"


def rsa_key(folder: Path, name: str) -> tuple[Path, str]:
    """A private key file (PEM) and its public key as a DKIM record's p= value."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / f"{name}.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, base64.b64encode(public).decode()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("dkim")
    return {"ours": rsa_key(folder, "ours"), "other": rsa_key(folder, "other")}


def good_records(public: str) -> dict[tuple[str, str], list[str]]:
    return {
        ("example.net", "TXT"): [
            "v=spf1 include:_spf.example.net -all",
            "google-site-verification=x",
        ],
        ("_spf.example.net", "TXT"): ["v=spf1 ip4:198.51.100.0/24 a:relay.example.net ~all"],
        ("relay.example.net", "A"): [RELAY_IP],
        ("news.example.net", "MX"): ["10 mx.example.net"],
        ("mail2024._domainkey.example.net", "TXT"): [f"v=DKIM1; k=rsa; p={public}"],
        ("_dmarc.example.net", "TXT"): ["v=DMARC1; p=quarantine; rua=mailto:dmarc@example.net"],
    }


def config(**mail: str) -> Config:
    values = {
        "transport": "smtp",
        "from_address": "news@news.example.net",
        "bounce_address": "bounces@example.net",
        **mail,
    }
    return Config(mail=MailConfig(**values, smtp=SmtpConfig(host="relay.example.net")))  # type: ignore[arg-type]


def run(records: Records, cfg: Config, dkim: DkimSettings | None) -> dict[str, Check]:
    with dns_server(records) as server:
        dns = Dns(server.address, timeout=3)
        checks = {c.name: c for c in dns_checks(cfg, dns)}
        checks["DKIM"] = check_dkim(dns, dkim)
    return checks


@pytest.fixture
def dkim(keys: dict[str, tuple[Path, str]]) -> DkimSettings:
    return DkimSettings("mail2024", keys["ours"][0], "example.net")


def test_a_good_domain_passes(keys: dict[str, tuple[Path, str]], dkim: DkimSettings) -> None:
    checks = run(good_records(keys["ours"][1]), config(), dkim)
    assert {n: c.status for n, c in checks.items()} == {
        "SPF": Status.OK,
        "DKIM": Status.OK,
        "DMARC": Status.OK,
        "alignment": Status.OK,
    }, checks
    assert "permits the relay relay.example.net (203.0.113.25)" in checks["SPF"].found
    assert "2 of 10 DNS lookups" in checks["SPF"].found  # include: and a:
    assert "policy quarantine" in checks["DMARC"].found
    assert "news.example.net" in checks["alignment"].found


def _broken(
    keys: dict[str, tuple[Path, str]], case: str
) -> tuple[dict[tuple[str, str], list[str]], Config]:
    records = good_records(keys["ours"][1])
    cfg = config()
    if case == "SPF missing":
        records[("example.net", "TXT")] = ["google-site-verification=x"]
    elif case == "SPF not permitting the relay":
        records[("_spf.example.net", "TXT")] = ["v=spf1 ip4:198.51.100.0/24 -all"]
        records[("example.net", "TXT")] = ["v=spf1 ip4:192.0.2.7 -all"]
    elif case == "DKIM missing":
        del records[("mail2024._domainkey.example.net", "TXT")]
    elif case == "DKIM another key":
        records[("mail2024._domainkey.example.net", "TXT")] = [f"v=DKIM1; p={keys['other'][1]}"]
    elif case == "DMARC missing":
        del records[("_dmarc.example.net", "TXT")]
    elif case == "DMARC p=none":
        records[("_dmarc.example.net", "TXT")] = ["v=DMARC1; p=none"]
    elif case == "From misaligned":
        cfg = config(from_address="news@iom-news.org")
        records[("_dmarc.iom-news.org", "TXT")] = ["v=DMARC1; p=reject"]
    return records, cfg


BROKEN = [
    ("SPF missing", "SPF", Status.FAIL, "example.net (the envelope sender's domain) has no SPF"),
    ("SPF not permitting the relay", "SPF", Status.FAIL, "does not permit the relay"),
    ("DKIM missing", "DKIM", Status.FAIL, "no DKIM key record at mail2024._domainkey.example.net"),
    ("DKIM another key", "DKIM", Status.FAIL, "they are not a pair"),
    ("DMARC missing", "DMARC", Status.FAIL, "no DMARC record at _dmarc.news.example.net"),
    ("DMARC p=none", "DMARC", Status.WARN, "policy none"),
    ("From misaligned", "alignment", Status.FAIL, "DMARC fails for every digest"),
]


@pytest.mark.parametrize(("case", "name", "status", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_missing_or_wrong_record_is_named(
    keys: dict[str, tuple[Path, str]],
    dkim: DkimSettings,
    case: str,
    name: str,
    status: Status,
    words: str,
) -> None:
    records, cfg = _broken(keys, case)
    checks = run(records, cfg, dkim)
    assert checks[name].status is status, checks[name]
    assert words in checks[name].found
    assert checks[name].fix  # says what to do
    others = {n: c.status for n, c in checks.items() if n != name}
    assert set(others.values()) == {Status.OK}, others  # only that one is named


def test_the_p_none_warning_advises_the_next_policy(
    keys: dict[str, tuple[Path, str]], dkim: DkimSettings
) -> None:
    records, cfg = _broken(keys, "DMARC p=none")
    fix = run(records, cfg, dkim)["DMARC"].fix
    assert "p=quarantine" in fix and "rua=" in fix


def test_a_subdomain_inherits_the_organisations_dmarc_record(
    keys: dict[str, tuple[Path, str]], dkim: DkimSettings
) -> None:
    # news.example.net has none of its own: example.net's holds (sp= for subdomains).
    records = good_records(keys["ours"][1])
    records[("_dmarc.example.net", "TXT")] = ["v=DMARC1; p=reject; sp=none"]
    dmarc = run(records, config(), dkim)["DMARC"]
    assert dmarc.status is Status.WARN and "_dmarc.example.net" in dmarc.found


def test_a_record_of_another_key_type_is_named(
    keys: dict[str, tuple[Path, str]], dkim: DkimSettings
) -> None:
    records = good_records(keys["ours"][1])
    records[("mail2024._domainkey.example.net", "TXT")] = [
        "v=DKIM1; k=ed25519; p=" + "A" * 43 + "="
    ]
    check = run(records, config(), dkim)["DKIM"]
    assert check.status is Status.FAIL and "k=ed25519" in check.found


def test_a_key_that_cannot_be_read_is_named(
    tmp_path: Path, keys: dict[str, tuple[Path, str]]
) -> None:
    missing = DkimSettings("mail2024", tmp_path / "nope.pem", "example.net")
    check = run(good_records(keys["ours"][1]), config(), missing)["DKIM"]
    assert check.status is Status.FAIL and "nope.pem" in check.found


def test_strict_alignment_asked_by_dmarc_is_honoured(
    keys: dict[str, tuple[Path, str]], dkim: DkimSettings
) -> None:
    records = good_records(keys["ours"][1])
    records[("_dmarc.example.net", "TXT")] = ["v=DMARC1; p=reject; aspf=s; adkim=s"]
    records[("_dmarc.news.example.net", "TXT")] = ["v=DMARC1; p=reject; aspf=s; adkim=s"]
    check = run(records, config(), dkim)["alignment"]
    # From news.example.net, envelope example.net, d=example.net: aligned only relaxed.
    assert check.status is Status.FAIL and "strict" in check.found


def test_no_dkim_configured_is_a_warning(keys: dict[str, tuple[Path, str]]) -> None:
    check = run(good_records(keys["ours"][1]), config(), None)["DKIM"]
    assert check.status is Status.WARN and "[mail.dkim]" in check.found


def test_a_resolver_that_does_not_answer_is_said(tmp_path: Path) -> None:
    with dns_server({}) as server:
        port = server.port
    checks = {c.name: c for c in dns_checks(config(), Dns(f"127.0.0.1:{port}", timeout=0.5))}
    assert checks["SPF"].status is Status.FAIL
    assert "could not look up" in checks["SPF"].found and f"127.0.0.1:{port}" in checks["SPF"].found


def test_parse_resolver() -> None:
    assert parse_resolver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_resolver("203.0.113.53") == ("203.0.113.53", 53)
    assert parse_resolver("[::1]:5300") == ("::1", 5300)
    assert parse_resolver("2001:db8::53") == ("2001:db8::53", 53)
    with pytest.raises(ConfigError, match="as an IP address"):
        parse_resolver("dns.example.net")


# ------------------------------------------------------------------ SPF, pure


class FakeDns:
    def __init__(self, records: Records) -> None:
        self.records = records

    def txt(self, name: str) -> list[str]:
        return list(self.records.get((name, "TXT"), []))

    def addresses(self, name: str) -> list[str]:
        return list(self.records.get((name, "A"), [])) + list(self.records.get((name, "AAAA"), []))

    def mx(self, name: str) -> list[str]:
        return [v.split()[1] for v in self.records.get((name, "MX"), [])]


@pytest.mark.parametrize(
    ("record", "ip", "result"),
    [
        ("v=spf1 ip4:203.0.113.0/24 -all", "203.0.113.25", "pass"),
        ("v=spf1 ip4:203.0.113.0/24 -all", "198.51.100.1", "fail"),
        ("v=spf1 ip4:203.0.113.0/24 ~all", "198.51.100.1", "softfail"),
        ("v=spf1 ip4:203.0.113.0/24", "198.51.100.1", "neutral"),
        ("v=spf1 ip6:2001:db8::/32 -all", "2001:db8::25", "pass"),
        ("v=spf1 a/24 -all", "198.51.100.77", "pass"),
        ("v=spf1 a:relay.test -all", "203.0.113.9", "pass"),
        ("v=spf1 mx -all", "192.0.2.10", "pass"),
        ("v=spf1 mx:other.test/30 -all", "192.0.2.10", "fail"),
        ("v=spf1 redirect=_spf.test", "203.0.113.9", "pass"),
        ("v=spf1 -include:_spf.test ip4:203.0.113.9 +all", "203.0.113.9", "fail"),
        ("v=spf1 exists:%{i}.spf.test -all", "203.0.113.9", "unknown"),
        ("v=spf1 ptr -all", "203.0.113.9", "unknown"),
        ("v=spf1 include:nothing.test -all", "203.0.113.9", "permerror"),
        ("v=spf1 ip4:300.1.1.1 -all", "203.0.113.9", "permerror"),
    ],
)
def test_the_spf_evaluator(record: str, ip: str, result: str) -> None:
    dns = FakeDns(
        {
            ("d.test", "TXT"): [record],
            ("d.test", "A"): ["198.51.100.1"],
            ("d.test", "MX"): ["10 mx.d.test"],
            ("mx.d.test", "A"): ["192.0.2.10"],
            ("other.test", "MX"): ["10 mx.other.test"],
            ("mx.other.test", "A"): ["192.0.2.200"],
            ("relay.test", "A"): ["203.0.113.9"],
            ("_spf.test", "TXT"): ["v=spf1 ip4:203.0.113.9 -all"],
        }
    )
    assert evaluate(dns, "d.test", ip).result == result


def test_more_than_ten_lookups_is_a_permerror() -> None:
    records: dict[tuple[str, str], list[str]] = {
        ("d.test", "TXT"): [" ".join(f"include:i{n}.test" for n in range(11)) + " -all"]
    }
    records[("d.test", "TXT")][0] = "v=spf1 " + records[("d.test", "TXT")][0]
    for n in range(11):
        records[(f"i{n}.test", "TXT")] = [f"v=spf1 ip4:192.0.2.{n} -all"]
    got = evaluate(FakeDns(records), "d.test", "203.0.113.9")
    assert got.result == "permerror" and "more than 10 DNS lookups" in got.note
    assert evaluate(FakeDns(records), "d.test", "192.0.2.9").result == "pass"  # the 10th


def test_more_than_two_void_lookups_is_a_permerror() -> None:
    records = {("d.test", "TXT"): ["v=spf1 a:n1.test a:n2.test ip4:192.0.2.9 -all"]}
    assert evaluate(FakeDns(records), "d.test", "192.0.2.9").result == "pass"  # two: allowed
    records = {("d.test", "TXT"): ["v=spf1 a:n1.test mx:n2.test exists:n3.test ip4:192.0.2.9 -all"]}
    got = evaluate(FakeDns(records), "d.test", "192.0.2.9")
    assert got.result == "permerror" and "void lookups" in got.note


def test_two_spf_records_are_a_permerror() -> None:
    dns = FakeDns({("d.test", "TXT"): ["v=spf1 -all", "v=spf1 +all"]})
    assert evaluate(dns, "d.test", "192.0.2.1").result == "permerror"


def test_a_relay_covered_only_through_an_include_elsewhere_is_a_warning() -> None:
    from iomfeed.doctor.mailauth import Relay, check_spf

    dns = FakeDns(
        {
            ("d.test", "TXT"): ["v=spf1 include:_spf.provider.test -all"],
            ("_spf.provider.test", "TXT"): ["v=spf1 ip4:192.0.2.0/24 -all"],
        }
    )
    check = check_spf(dns, "d.test", Relay("smtp.provider.test", ("203.0.113.9",)))
    assert check.status is Status.WARN and "_spf.provider.test" in check.found


@pytest.mark.parametrize(
    ("name", "org"),
    [
        ("news.example.net", "example.net"),
        ("example.net", "example.net"),
        ("a.b.news.iom.org.al", "iom.org.al"),
        ("mail.example.co.uk", "example.co.uk"),
        ("lajme.gov.al", "lajme.gov.al"),
        ("news.example.al", "example.al"),
        ("Example.NET.", "example.net"),
    ],
)
def test_the_organisational_domain_rule(name: str, org: str) -> None:
    assert org_domain(name) == org


def test_the_dkim_settings_come_from_mail_dkim(tmp_path: Path) -> None:
    from iomfeed.config import DkimConfig
    from iomfeed.doctor import dkim_settings

    off = config()
    assert dkim_settings(off) is None
    on = dataclasses.replace(
        off,
        base_dir=tmp_path,
        mail=dataclasses.replace(off.mail, dkim=DkimConfig("mail2024", "keys/dkim.pem")),
    )
    assert dkim_settings(on) == DkimSettings(
        "mail2024", tmp_path / "keys/dkim.pem", "news.example.net"
    )
    other = dataclasses.replace(
        on, mail=dataclasses.replace(on.mail, dkim=DkimConfig("s", "k.pem", "Example.NET"))
    )
    settings = dkim_settings(other)
    assert settings is not None and settings.domain == "example.net"
