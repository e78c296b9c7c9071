"""DNS for ``iomfeed doctor``: TXT, address and MX lookups through dnspython, asking the
system's resolver or the one ``--resolver HOST[:PORT]`` names.

dnspython is imported here and only here, when ``doctor`` runs: never on the cron path.
A name that does not exist and a name without records of the type asked for are both an
empty answer; a resolver that does not answer is a :class:`~iomfeed.errors.LookupFailed`
naming the name, the type and why.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from ..errors import ConfigError, LookupFailed

if TYPE_CHECKING:
    import dns.resolver

#: seconds for one question (every server, every retry) before it counts as unanswered
TIMEOUT = 5.0


def parse_resolver(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (``[::1]:5353`` for IPv6) as (address, port); HOST must be an IP
    address (dnspython asks servers by address)."""
    host, port = text.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif host.count(":") == 1:
        host, _, port = host.partition(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ConfigError(
            f"--resolver {text}: give the DNS server as an IP address, with an optional"
            " port (203.0.113.53, 127.0.0.1:5353, [::1]:5353)"
        ) from None
    if not 0 < number < 65536:
        raise ConfigError(f"--resolver {text}: port {number} is out of range")
    return host, number


class Dns:
    """The lookups the checks need; every answer a list (empty: no such record)."""

    def __init__(self, server: str | None = None, *, timeout: float = TIMEOUT) -> None:
        import dns.resolver

        if server:
            host, port = parse_resolver(server)
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [host]
            resolver.port = port
        else:
            resolver = dns.resolver.Resolver()
        resolver.lifetime = timeout
        resolver.timeout = timeout
        self._resolver: dns.resolver.Resolver = resolver
        self.where = server or "the system resolver"

    def _ask(self, name: str, rdtype: str) -> list[object]:
        import dns.exception
        import dns.resolver

        try:
            answer = self._resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"{name} {rdtype}: {exc} (asked {self.where})") from exc
        return list(answer)

    def txt(self, name: str) -> list[str]:
        """Each TXT record at ``name``, its strings joined (as SPF, DKIM and DMARC read
        them); bytes that are not UTF-8 are replaced."""
        return [
            b"".join(r.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
            for r in self._ask(name, "TXT")
        ]

    def addresses(self, name: str) -> list[str]:
        """The IPv4 and IPv6 addresses of ``name`` (an address literal is its own)."""
        try:
            return [str(ipaddress.ip_address(name))]
        except ValueError:
            pass
        return [r.address for r in self._ask(name, "A") + self._ask(name, "AAAA")]  # type: ignore[attr-defined]

    def mx(self, name: str) -> list[str]:
        """The mail exchangers of ``name``, most preferred first."""
        records = sorted(self._ask(name, "MX"), key=lambda r: r.preference)  # type: ignore[attr-defined]
        return [r.exchange.to_text(omit_final_dot=True) for r in records]  # type: ignore[attr-defined]
