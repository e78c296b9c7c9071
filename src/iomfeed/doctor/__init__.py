"""``iomfeed doctor``: the preflight an operator runs before the first send. It checks what
decides whether a digest lands in the inbox, in spam or nowhere, and says what to fix:

* ``mailauth``: SPF for the envelope domain permits the relay, the DKIM record matches the
  key, DMARC exists (and its policy), the From domain aligns;
* ``relay``: TLS as configured with a valid certificate, and the login (never MAIL);
* ``urls``: the one-click unsubscribe POST (a probe token: nobody is unsubscribed) and the
  feeds' public URLs;
* the digest's HTML, rendered from the store's stories, under Gmail's clipping size.

Imported only by the ``doctor`` command: dnspython and dkimpy load here, never on the cron
path. It writes nothing but what opening the store does (the unsubscribe secret, the first
time, as a send would).
"""

from __future__ import annotations

import ipaddress
import textwrap
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import LookupFailed
from ..preflight import is_example_host, is_loopback_host, warnings
from .mailauth import Relay, check_alignment, check_dkim, check_dmarc, check_spf
from .records import Check, DkimSettings, Report, Status, fail, ok, skip, warn
from .relay import check_relay
from .spf import Lookups
from .urls import check_feeds, check_unsubscribe

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["Check", "DkimSettings", "Report", "Status", "lines", "run_doctor"]

#: Gmail shows only the first 102 kB of a message's HTML ("[Message clipped]"), hiding the
#: rest, the postal address and the unsubscribe link; counted in bytes of 1000
GMAIL_CLIP_BYTES = 102_000


def run_doctor(
    config: Config,
    *,
    dns: Lookups,
    store: Store | None,
    now: datetime,
    environ: Mapping[str, str],
) -> Report:
    """Every check, in the order the checklist prints them. ``store`` None: there is none
    yet (doctor makes none), so what needs one is skipped."""
    checks = [_configuration(config, environ)]
    checks += dns_checks(config, dns)
    checks += relay_checks(config, environ, now)
    checks.append(unsubscribe_check(config, store))
    if store is None:
        checks.append(skip("digest size", "not measured: no store yet, no stories"))
    else:
        checks += size_checks(config, store, now)
    checks += feed_checks(config)
    return Report(tuple(checks))


def _configuration(config: Config, environ: Mapping[str, str]) -> Check:
    found = warnings(config, environ)
    if not found:
        return ok("configuration", "loads, and iomfeed check has nothing to warn about")
    return warn("configuration", "; ".join(found), "fix what iomfeed check reports")


def dkim_settings(config: Config) -> DkimSettings | None:
    """``[mail.dkim]``'s selector, key file and signing domain; None when not signing."""
    dkim = config.mail.dkim
    if not dkim.enabled:
        return None
    return DkimSettings(dkim.selector, config.path(dkim.key_file), config.mail.dkim_domain)


def envelope_domain(config: Config) -> str:
    """The envelope sender's domain, which SPF checks: VERP's bounce address, or From."""
    address = config.mail.bounce_address or config.mail.from_address
    return address.rpartition("@")[2].lower()


def dns_checks(config: Config, dns: Lookups) -> list[Check]:
    from_domain = config.mail.sender_domain
    envelope = envelope_domain(config)
    dkim = dkim_settings(config)
    dmarc_check, dmarc = check_dmarc(dns, from_domain)
    return [
        check_spf(dns, envelope, relay_for_spf(config, dns)),
        check_dkim(dns, dkim),
        dmarc_check,
        check_alignment(from_domain, envelope, dkim.domain if dkim else None, dmarc),
    ]


_PRIVATE = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
]


def relay_for_spf(config: Config, dns: Lookups) -> Relay:
    """The relay's addresses as the world sees them, or why they cannot be known here."""
    host = config.mail.smtp.host
    if config.mail.transport != "smtp":
        return Relay("", (), 'mail.transport is "outbox": no relay is configured')
    if is_loopback_host(host):
        return Relay(
            host,
            (),
            f"the relay ({host}) is on this machine: SPF must permit this machine's public"
            " address, which doctor cannot see from here",
        )
    try:
        addresses = tuple(dns.addresses(host))
    except LookupFailed as exc:
        return Relay(host, (), f"the relay's address could not be looked up: {exc}")
    if not addresses:
        return Relay(host, (), f"the relay's name {host} has no address in DNS")
    inside = [a for a in addresses if any(ipaddress.ip_address(a) in n for n in _PRIVATE)]
    if inside:
        return Relay(
            host,
            addresses,
            f"the relay {host} has a private address ({inside[0]}): SPF must permit the"
            " address it sends from to the internet",
        )
    return Relay(host, addresses)


def relay_checks(config: Config, environ: Mapping[str, str], now: datetime) -> list[Check]:
    if config.mail.transport != "smtp":
        return [
            warn(
                "relay TLS",
                'mail.transport = "outbox": digests are written to files, not sent; no relay'
                " to check",
                'set mail.transport = "smtp" and the [mail.smtp] table',
            ),
            skip("relay login", "not tried: no relay"),
        ]
    smtp = config.mail.smtp
    ca_file = config.path(smtp.ca_file) if smtp.ca_file else None
    return list(check_relay(smtp, environ, ca_file, now))


def unsubscribe_check(config: Config, store: Store | None) -> Check:
    from urllib.parse import urlsplit

    from ..digest.message import unsubscribe_link
    from ..digest.unsubscribe import check_secret, load_secret, probe_token

    url = config.unsubscribe_url
    if is_example_host(urlsplit(url).hostname):
        return fail(
            "one-click unsubscribe",
            f"{url} is still the example address: not asked",
            "set site.public_url (or mail.unsubscribe_url) to where /unsubscribe is served",
        )
    if store is not None:
        secret = load_secret(config, store)
    elif value := check_secret(config):
        secret = value.encode("utf-8")
    else:
        return skip("one-click unsubscribe", "not asked: no store yet, whose secret signs")
    return check_unsubscribe(unsubscribe_link(url, probe_token(secret, config.list_id)))


def size_checks(config: Config, store: Store, now: datetime) -> list[Check]:
    from ..digest.steps import digest_content, render_languages

    content = digest_content(config, store, now)
    out = []
    for lang, r in render_languages(config, content).items():
        name = f"digest size ({lang})"
        size = f"{r.html_bytes / 1000:.1f} kB of HTML"
        if r.html_bytes > GMAIL_CLIP_BYTES:
            out.append(
                fail(
                    name,
                    f"{size} ({r.shown} stories shown): over Gmail's 102 kB, so Gmail clips"
                    " it, hiding the end and the unsubscribe link",
                    f"lower digest.max_bytes (now {config.digest.max_bytes}) below"
                    f" {GMAIL_CLIP_BYTES}, or digest.max_items",
                )
            )
        elif not content.entries and store.count() == 0:
            out.append(
                warn(
                    name,
                    f"{size}, but the store has no stories yet, so that says little",
                    "run iomfeed fetch, then iomfeed doctor again",
                )
            )
        elif not content.entries:
            out.append(
                warn(
                    name,
                    f"{size}, but nothing is new since the last digest, so that says little",
                    "run iomfeed doctor again when new stories wait for the next digest",
                )
            )
        elif config.digest.max_bytes > GMAIL_CLIP_BYTES:
            out.append(
                warn(
                    name,
                    f"{size} now, but digest.max_bytes ({config.digest.max_bytes}) lets a"
                    " digest grow past Gmail's 102 kB",
                    f"set digest.max_bytes to {GMAIL_CLIP_BYTES} or less",
                )
            )
        else:
            shown = f"{r.shown} of {len(content.entries)} stories shown"
            out.append(ok(name, f"{size} ({shown}), under Gmail's 102 kB"))
    return out


def feed_checks(config: Config) -> list[Check]:
    from urllib.parse import urlsplit

    url = config.site.public_url
    if is_example_host(urlsplit(url).hostname):
        return [
            fail(
                "public feeds",
                f"site.public_url is still the example address {url}: not asked",
                "set site.public_url to the address the feeds are served at",
            )
        ]
    return check_feeds(url)


def _fill(text: str, width: int, head: str) -> str:
    """``text`` wrapped after ``head``, names and addresses never split."""
    return textwrap.fill(
        text,
        width,
        initial_indent=head,
        subsequent_indent=" " * len(head),
        break_long_words=False,
        break_on_hyphens=False,
    )


def lines(report: Report, width: int = 100) -> list[str]:
    """The checklist as text: a line per check (status, name, what was found), the fix
    below it, then a summary."""
    out = []
    for c in report.checks:
        head = f"{c.status.value:<5} {c.name:<22} "
        out.append(_fill(c.found, width, head))
        if c.fix and c.status is not Status.OK:
            out.append(_fill(c.fix, width, "      fix: "))
    counts = report.counts()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    verdict = "ready to send" if report.passed() else "fix what failed before the first send"
    out.append(f"doctor: {summary}: {verdict}")
    return out
