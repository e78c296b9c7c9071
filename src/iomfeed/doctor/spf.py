"""SPF (RFC 7208) as far as ``doctor`` needs it: find a domain's record and say whether it
permits one address, following ``include:``, ``redirect=``, ``a``, ``mx``, ``ip4``, ``ip6``
and ``exists:`` within RFC 7208's limit of 10 DNS-querying terms (4.6.4).

Decides only: the lookups come from an object with ``txt``, ``addresses`` and ``mx`` (the
real one is :class:`~iomfeed.doctor.dns.Dns`, the tests' a dict). What it cannot evaluate
without the message in hand (macros such as ``%{i}``, ``ptr``) makes the result
``unknown``, never a guess.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol

#: RFC 7208 4.6.4: at most this many terms that query DNS (include, a, mx, ptr, exists,
#: redirect) in one evaluation, includes and all
MAX_LOOKUPS = 10
#: RFC 7208 4.6.4: at most this many of those lookups may find nothing
MAX_VOIDS = 2
#: RFC 7208 4.6.4: at most this many addresses looked up for one ``mx`` term
MAX_MX = 10
_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


class Lookups(Protocol):
    def txt(self, name: str) -> list[str]: ...

    def addresses(self, name: str) -> list[str]: ...

    def mx(self, name: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class SpfResult:
    """What one address gets from a domain's SPF: ``pass``, ``fail``, ``softfail``,
    ``neutral``, ``none`` (no record), ``permerror`` (a broken record, or too many lookups)
    or ``unknown`` (doctor cannot evaluate it: ``note`` says why)."""

    result: str
    lookups: int
    note: str = ""
    #: the domains the record hands over to (include:, redirect=), in order met
    delegates: tuple[str, ...] = ()


def spf_records(dns: Lookups, domain: str) -> list[str]:
    """The TXT records of ``domain`` that are SPF records (``v=spf1``)."""
    return [t.strip() for t in dns.txt(domain) if t.strip().lower().split(" ", 1)[0] == "v=spf1"]


class _Evaluation:
    def __init__(self, dns: Lookups, ip: str) -> None:
        self.dns = dns
        self.ip = ipaddress.ip_address(ip)
        self.lookups = 0
        self.voids = 0
        self.note = ""
        self.delegates: list[str] = []

    def counted(self) -> bool:
        """Count one DNS-querying term; False once past the limit (a permerror)."""
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            self.note = f"more than {MAX_LOOKUPS} DNS lookups"
            return False
        return True

    def answered(self, answer: list[str]) -> list[str]:
        """``answer``, counting it when empty (a void lookup, RFC 7208 4.6.4)."""
        if not answer:
            self.voids += 1
        return answer

    def check(self, domain: str, depth: int = 0) -> str:
        records = spf_records(self.dns, domain)
        if not records:
            return "none"
        if len(records) > 1:
            self.note = f"{domain} has {len(records)} SPF records (one is allowed)"
            return "permerror"
        redirect = ""
        for term in records[0].split()[1:]:
            if "=" in term.split(":", 1)[0]:  # a modifier: redirect=, exp=, unknown ones
                name, _, value = term.partition("=")
                redirect = value if name.lower() == "redirect" else redirect
                continue
            qualifier = term[0] if term[0] in _QUALIFIERS else "+"
            outcome = self.term(term.lstrip("+-~?"), domain, depth)
            if self.voids > MAX_VOIDS:
                self.note = f"more than {MAX_VOIDS} DNS lookups found nothing (void lookups)"
                return "permerror"
            if outcome != "no match":
                return _QUALIFIERS[qualifier] if outcome == "match" else outcome
        if redirect:
            if not self.counted():
                return "permerror"
            self.delegates.append(redirect)
            result = self.check(redirect, depth + 1)
            return "permerror" if result == "none" else result
        return "neutral"

    def term(self, term: str, domain: str, depth: int) -> str:
        """``match``, ``no match``, or a result that ends the evaluation."""
        name, _, arg = term.partition(":")
        name, slash, cidr = name.partition("/")
        if slash:
            cidr = "/" + cidr
        elif name.lower() in ("a", "mx") and "/" in arg:
            arg, _, rest = arg.partition("/")
            cidr = "/" + rest
        name = name.lower()
        if "%" in arg:
            self.note = f"'{term}' uses a macro, which depends on the message"
            return "unknown"
        if name == "all":
            return "match"
        if name in ("ip4", "ip6"):
            return self._in_network(arg + cidr)
        if name == "include":
            return self._include(arg, depth)
        if name in ("a", "mx", "exists", "ptr") and not self.counted():
            return "permerror"
        if name == "a":
            return self._any(self.answered(self.dns.addresses(arg or domain)), cidr)
        if name == "mx":
            hosts = self.answered(self.dns.mx(arg or domain))[:MAX_MX]
            return self._any([a for h in hosts for a in self.dns.addresses(h)], cidr)
        if name == "exists":
            return "match" if self.answered(self.dns.addresses(arg)) else "no match"
        if name == "ptr":
            self.note = "'ptr' depends on the sender's reverse DNS (RFC 7208 advises against it)"
            return "unknown"
        self.note = f"unknown mechanism '{term}'"
        return "permerror"

    def _include(self, target: str, depth: int) -> str:
        if not self.counted():
            return "permerror"
        self.delegates.append(target)
        result = self.check(target, depth + 1)
        if result == "pass":
            return "match"
        if result in ("none", "permerror"):
            self.note = self.note or f"include:{target} has no SPF record"
            return "permerror"
        return "unknown" if result == "unknown" else "no match"

    def _in_network(self, text: str) -> str:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            self.note = f"'{text}' is not an address or network"
            return "permerror"
        return "match" if self.ip.version == network.version and self.ip in network else "no match"

    def _any(self, addresses: list[str], cidr: str) -> str:
        """Whether the address is one of ``addresses`` (within ``/n`` for IPv4 and
        ``//n`` for IPv6 when given)."""
        v4, v6 = _prefixes(cidr)
        for address in addresses:
            ip = ipaddress.ip_address(address)
            prefix = (v4 if ip.version == 4 else v6) or str(ip.max_prefixlen)
            try:
                network = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
            except ValueError:
                self.note = f"'{cidr}' is not a prefix length"
                return "permerror"
            if ip.version == self.ip.version and self.ip in network:
                return "match"
        return "no match"


def _prefixes(cidr: str) -> tuple[str, str]:
    """``/24``, ``//64`` or ``/24//64`` as (IPv4 prefix, IPv6 prefix), empty when not given."""
    if not cidr:
        return "", ""
    body = cidr[1:]
    if body.startswith("/"):
        return "", body[1:]
    v4, _, v6 = body.partition("//")
    return v4, v6


def evaluate(dns: Lookups, domain: str, ip: str) -> SpfResult:
    """What ``domain``'s SPF record says of mail from ``ip``."""
    run = _Evaluation(dns, ip)
    result = run.check(domain)
    return SpfResult(result, min(run.lookups, MAX_LOOKUPS + 1), run.note, tuple(run.delegates))
