"""The DNS half of ``iomfeed doctor``: SPF for the envelope domain, the DKIM key record,
DMARC and the From domain's alignment. Each function asks DNS through the object it is
given and returns one :class:`~iomfeed.doctor.records.Check`; none of them sends anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import LookupFailed
from .domains import Dmarc, aligned, dkim_records, dmarc_records, org_domain, parse_dmarc, tags
from .records import Check, DkimSettings, fail, ok, warn
from .spf import MAX_LOOKUPS, Lookups, SpfResult, evaluate, spf_records

#: an address no SPF record permits by name (TEST-NET-1): evaluating it walks the whole
#: record, which counts its DNS lookups when the relay's own address is not known
_NOBODY = "192.0.2.1"


@dataclass(frozen=True, slots=True)
class Relay:
    """The relay as SPF sees it: its name, its addresses, and why those cannot be judged
    (``unknown``: not set, on this machine or a private network, not resolvable)."""

    host: str
    addresses: tuple[str, ...]
    unknown: str = ""


def check_spf(dns: Lookups, domain: str, relay: Relay) -> Check:
    name = "SPF"
    try:
        records = spf_records(dns, domain)
        if len(records) != 1:
            return _spf_count(domain, records, relay)
        record = records[0]
        if relay.unknown:
            result = evaluate(dns, domain, _NOBODY)
        else:
            results = {ip: evaluate(dns, domain, ip) for ip in relay.addresses}
    except LookupFailed as exc:
        return fail(name, f"could not look up the SPF record of {domain}: {exc}", _DNS_FIX)
    said = f'{domain}: "{record}"'
    if relay.unknown:
        if result.result == "permerror":
            return _spf_broken(said, result)
        return warn(
            name,
            f"{said} ({result.lookups} of {MAX_LOOKUPS} DNS lookups); could not tell whether"
            f" it permits the relay: {relay.unknown}",
            "make sure the record permits the address the relay sends from (ip4:, or the"
            " include: your relay provider documents)",
        )
    return _spf_verdict(said, relay, results)


def _spf_count(domain: str, records: list[str], relay: Relay) -> Check:
    if not records:
        return fail(
            "SPF",
            f"{domain} (the envelope sender's domain) has no SPF record (a TXT record"
            " starting v=spf1): receivers cannot tell which servers may send its mail",
            f'publish a TXT record at {domain}: "v=spf1 {_permit(relay)} -all"',
        )
    return fail(
        "SPF",
        f"{domain} has {len(records)} SPF records; receivers treat that as an error",
        "merge them into one TXT record starting v=spf1",
    )


def _permit(relay: Relay) -> str:
    if relay.unknown or not relay.addresses:
        return "include:<your relay provider's SPF domain>"
    return " ".join(("ip6:" if ":" in a else "ip4:") + a for a in relay.addresses)


def _spf_broken(said: str, result: SpfResult) -> Check:
    return fail(
        "SPF",
        f"{said} is broken for receivers (permerror: {result.note})",
        "fix the record: one v=spf1 record per domain, every include: with a record of its"
        f" own, at most {MAX_LOOKUPS} include/a/mx/exists/redirect terms in all (replace"
        " some by ip4:/ip6: networks)",
    )


def _spf_verdict(said: str, relay: Relay, results: dict[str, SpfResult]) -> Check:
    lookups = max(r.lookups for r in results.values())
    count = f"{lookups} of {MAX_LOOKUPS} DNS lookups"
    if broken := [r for r in results.values() if r.result == "permerror"]:
        return _spf_broken(said, broken[0])
    if all(r.result == "pass" for r in results.values()):
        addresses = ", ".join(results)
        return ok("SPF", f"{said} permits the relay {relay.host} ({addresses}); {count}")
    denied = {ip: r for ip, r in results.items() if r.result != "pass"}
    words = ", ".join(f"{ip}: {r.result}" for ip, r in denied.items())
    if unknown := [r for r in denied.values() if r.result == "unknown"]:
        return warn(
            "SPF",
            f"{said}: could not tell whether it permits the relay {relay.host} ({words}):"
            f" {unknown[0].note}",
            "check with your relay provider that the record covers its servers",
        )
    delegates = sorted({d for r in denied.values() for d in r.delegates})
    if delegates:
        return warn(
            "SPF",
            f"{said} does not permit the relay {relay.host} by its address ({words}); it"
            f" hands over to {', '.join(delegates)}",
            "if that is your relay provider's record and its servers send from other"
            f" addresses than {relay.host}'s, this is fine; otherwise add"
            f" {_permit(relay)} before the all term",
        )
    return fail(
        "SPF",
        f"{said} does not permit the relay {relay.host} ({words}); {count}",
        f"add {_permit(relay)} (or your relay provider's include:) before the all term",
    )


_DNS_FIX = "check that the resolver answers (or give one with --resolver HOST[:PORT])"


def check_dkim(dns: Lookups, dkim: DkimSettings | None) -> Check:
    name = "DKIM"
    if dkim is None:
        return warn(
            name,
            "DKIM signing is not configured ([mail.dkim]): the digest is authenticated by"
            " SPF alone",
            "Gmail and Yahoo ask bulk senders for DKIM too: make a key pair, publish the"
            " public key at <selector>._domainkey.<domain> and set [mail.dkim] selector and"
            " key_file",
        )
    where = f"{dkim.selector}._domainkey.{dkim.domain}"
    try:
        records = dkim_records(dns.txt(where))
    except LookupFailed as exc:
        return fail(name, f"could not look up {where}: {exc}", _DNS_FIX)
    if not records:
        return fail(
            name,
            f"no DKIM key record at {where}: receivers cannot check the signature",
            f'publish the public key of {dkim.key_file} as a TXT record at {where}: "v=DKIM1;'
            ' k=rsa; p=<the base64 public key>" (openssl rsa -in KEY -pubout prints it)',
        )
    if len(records) > 1:
        return fail(name, f"{where} has {len(records)} DKIM records", "keep one")
    record = records[0]
    if not tags(record).get("p"):
        return fail(
            name, f"{where}: the key is revoked (p= is empty)", "publish the current public key"
        )
    problem = _key_problem(record, dkim)
    if problem:
        return fail(name, f"{where}: {problem}", _DKIM_PAIR_FIX.format(key=dkim.key_file))
    return ok(name, f"{where} holds the public key of {dkim.key_file} (a test signature verifies)")


_DKIM_PAIR_FIX = (
    "publish the public key made from {key} (or point [mail.dkim] key_file at the private"
    " key of the published one)"
)


def _key_problem(record: str, dkim: DkimSettings) -> str:
    """Why a message signed with the configured key does not verify against ``record``
    ("" when it does)."""
    import dkim as dkimpy

    try:
        key = Path(dkim.key_file).read_bytes()
    except OSError as exc:
        return f"the private key cannot be read: {exc.strerror or exc} ({dkim.key_file})"
    kind = tags(record).get("k", "rsa").lower()
    if kind != "rsa":
        return f"the record holds a k={kind} key; iomfeed signs with RSA (rsa-sha256)"
    message = (
        f"From: doctor@{dkim.domain}\r\nTo: doctor@{dkim.domain}\r\n"
        "Subject: iomfeed doctor\r\n\r\nA DKIM key check; never sent.\r\n"
    ).encode()
    try:
        signature = dkimpy.sign(
            message,
            dkim.selector.encode(),
            dkim.domain.encode(),
            key,
            signature_algorithm=b"rsa-sha256",
            include_headers=[b"from"],
        )
    except Exception as exc:  # dkimpy raises several kinds for a key it cannot use
        return f"cannot sign with {dkim.key_file}: {exc}"
    verifier = dkimpy.DKIM(signature + message)
    if verifier.verify(dnsfunc=lambda _name, timeout=5: record.encode()):
        return ""
    return (
        f"a test message signed with {dkim.key_file} does not verify against the published"
        " key: they are not a pair"
    )


def check_dmarc(dns: Lookups, from_domain: str) -> tuple[Check, Dmarc | None]:
    name = "DMARC"
    where = f"_dmarc.{from_domain}"
    org = org_domain(from_domain)
    try:
        records = dmarc_records(dns.txt(where))
        if not records and org != from_domain:
            where = f"_dmarc.{org}"
            records = dmarc_records(dns.txt(where))
    except LookupFailed as exc:
        return fail(name, f"could not look up {where}: {exc}", _DNS_FIX), None
    if not records:
        return fail(
            name,
            f"no DMARC record at _dmarc.{from_domain}: Gmail and Yahoo refuse bulk mail"
            " from a domain without one",
            f'publish a TXT record at _dmarc.{from_domain}: "v=DMARC1; p=none;'
            f' rua=mailto:dmarc-reports@{from_domain}", then p=quarantine once the reports'
            " show your mail passing",
        ), None
    if len(records) > 1:
        return fail(name, f"{where} has {len(records)} DMARC records", "keep one"), None
    dmarc = parse_dmarc(records[0])
    inherited = where != f"_dmarc.{from_domain}"  # the organisational domain's: sp= first
    policy = (dmarc.subdomain_policy or dmarc.policy) if inherited else dmarc.policy
    said = f'{where}: "{records[0]}"'
    if policy not in ("none", "quarantine", "reject"):
        return fail(name, f"{said} has no valid policy (p=)", "add p=none (to start)"), dmarc
    if policy == "none":
        reports = "" if dmarc.reports else "; add rua=mailto:... to receive them"
        return warn(
            name,
            f"{said}: policy none: receivers deliver mail that fails DMARC as if it passed,"
            " so others can send in your domain's name",
            "once the aggregate reports show your digests passing SPF or DKIM aligned, move"
            f" to p=quarantine, then p=reject{reports}",
        ), dmarc
    return ok(name, f"{said}: policy {policy}"), dmarc


def _mode(strict: bool) -> str:
    return "strict" if strict else "relaxed"


def check_alignment(
    from_domain: str, envelope_domain: str, dkim_domain: str | None, dmarc: Dmarc | None
) -> Check:
    """DMARC passes when SPF or DKIM passes for a domain aligned with From."""
    strict_spf = dmarc.strict_spf if dmarc else False
    strict_dkim = dmarc.strict_dkim if dmarc else False
    by_spf = aligned(from_domain, envelope_domain, strict=strict_spf)
    by_dkim = dkim_domain is not None and aligned(from_domain, dkim_domain, strict=strict_dkim)
    parts = [
        f"the envelope domain {envelope_domain} (SPF, {_mode(strict_spf)})"
        + (" aligns" if by_spf else " does not align")
    ]
    if dkim_domain is not None:
        parts.append(
            f"the DKIM domain {dkim_domain} ({_mode(strict_dkim)})"
            + (" aligns" if by_dkim else " does not align")
        )
    said = f"From {from_domain}: " + "; ".join(parts)
    if by_spf or by_dkim:
        return ok("alignment", said)
    return fail(
        "alignment",
        said + ": DMARC fails for every digest, whatever SPF and DKIM say",
        f"put mail.bounce_address under {org_domain(from_domain)}, or sign with [mail.dkim]"
        f" domain = {from_domain!r}",
    )
