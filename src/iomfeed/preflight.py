"""What a configuration that loads can still get wrong: settings left at the shipped example,
a password variable that is not set, a database others can read.

``iomfeed check`` prints :func:`warnings`; a digest sent by SMTP (or a test copy) first calls
:func:`require_sendable`, so a message is never handed to a real server with links that
lead nowhere. Reads the configuration, the environment and file modes; changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from .config import Config
from .errors import ConfigError
from .template_cache import cache_problem

# RFC 2606 / RFC 6761: names reserved for documentation, which the shipped config uses.
_EXAMPLE_DOMAINS = ("example.org", "example.com", "example.net", "example")


def is_example_host(host: str | None) -> bool:
    name = (host or "").lower().rstrip(".")
    return any(name == d or name.endswith("." + d) for d in _EXAMPLE_DOMAINS)


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` names this machine: ``localhost`` and its subdomains (RFC 6761) and
    the usual aliases of ``/etc/hosts``, or a loopback or unspecified address in any form a
    browser reads (``127.1``, ``2130706433``, ``0x7f.0.0.1``, ``::1``, ``::ffff:127.0.0.1``,
    ``::127.0.0.1``)."""
    import ipaddress
    import socket

    name = (host or "").lower().rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    address = name.strip("[]").split("%")[0]
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    except ValueError:
        try:  # the shorthand forms inet_aton reads, as URL parsers do
            ip = ipaddress.IPv4Address(socket.inet_aton(address))
        except (OSError, ValueError):
            return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif 1 < int(ip) < 2**32:  # IPv4-compatible (::a.b.c.d), deprecated but read
            ip = ipaddress.IPv4Address(int(ip))
    return ip.is_loopback or ip.is_unspecified


_LOOPBACK_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "loopback"}
)


def _example_urls(config: Config) -> list[tuple[str, str]]:
    """(key, value) of each address subscribers are sent to that is still an example, or
    this machine's own (loopback: a reader's own computer, for them)."""
    found = []
    for key, url in (
        ("site.public_url", config.site.public_url),
        ("mail.unsubscribe_url", config.mail.unsubscribe_url),
    ):
        host = urlsplit(url).hostname
        if url and (is_example_host(host) or is_loopback_host(host)):
            found.append((key, url))
    return found


def _example_sender(config: Config) -> str | None:
    """A warning of ``check`` (not a refusal: a relay of one's own may take it)."""
    if config.mail.transport != "smtp" or not is_example_host(
        config.mail.from_address.rpartition("@")[2]
    ):
        return None
    return (
        f"mail.from_address: {config.mail.from_address} is still the example sender:"
        " relays refuse or file as spam mail from a domain that is not yours; set it to"
        " an address of your domain"
    )


def _example_problem(key: str, url: str) -> str:
    loopback = is_loopback_host(urlsplit(url).hostname)
    what = "a loopback address" if loopback else "the example address"
    return (
        f"{key}: {url} is still {what}: the digest's links and its"
        " unsubscribe links would lead there; set it to the address the feeds and"
        " /unsubscribe are served at"
    )


def _missing_password(config: Config, environ: Mapping[str, str]) -> str | None:
    smtp = config.mail.smtp
    if config.mail.transport != "smtp" or not smtp.username or environ.get(smtp.password_env):
        return None
    return (
        f"mail.smtp.password_env: the environment variable {smtp.password_env} is not"
        f" set (the password for mail.smtp.username {smtp.username!r})"
    )


def _bounce_problems(config: Config, environ: Mapping[str, str]) -> list[str]:
    """A bounce mailbox that cannot be read, or read without VERP."""
    b = config.bounces
    found = []
    if b.imap_host and not environ.get(b.imap_password_env):
        found.append(
            f"bounces.imap_password_env: the environment variable {b.imap_password_env} is"
            f" not set (the password for bounces.imap_user {b.imap_user!r}): the bounce"
            " mailbox cannot be read"
        )
    if b.configured and not config.mail.bounce_address:
        found.append(
            "mail.bounce_address is not set: bounces are matched by the addresses they"
            " report only, and believed only for addresses mailed in the last"
            f" bounces.trust_days ({b.trust_days:g}) days; set it for VERP"
        )
    return found


def _readable_database(config: Config, environ: Mapping[str, str]) -> str | None:
    path = config.database_path
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None  # not made yet: it will be created readable by its owner only
    if not mode & 0o044:
        return None
    who = "every user of this machine" if mode & 0o004 else "its group"
    files = " ".join(
        str(p)
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        if p.exists()
    )
    fix = f"run 'chmod 600 {files}'"
    if not environ.get(config.mail.secret_env):
        return (
            f"{path} is readable by {who} (mode {mode:04o}) and keeps the unsubscribe"
            f" secret, since mail.secret_env's variable {config.mail.secret_env} is not"
            " set: whoever can read it can forge unsubscribe links and read the"
            f" subscribers' addresses; {fix}"
        )
    return (
        f"{path} is readable by {who} (mode {mode:04o}) and holds the subscribers' addresses; {fix}"
    )


def warnings(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """Everything ``iomfeed check`` warns about, each naming the key or file to fix."""
    env = os.environ if environ is None else environ
    found = [
        _example_problem(key, url) + " (a digest is not sent by SMTP until then)"
        for key, url in _example_urls(config)
    ]
    password = _missing_password(config, env)
    if password is not None:
        found.append(password + ": the digest cannot be sent")
    sender = _example_sender(config)
    if sender is not None:
        found.append(sender)
    found += _bounce_problems(config, env)
    database = _readable_database(config, env)
    if database is not None:
        found.append(database)
    if not any(src.enabled for src in config.sources):
        found.append(
            "sources: none enabled (add [[sources]]): 'iomfeed run' and 'iomfeed fetch'"
            " refuse to run, with a configuration error"
        )
    cache = cache_problem(config)
    return [*found, cache] if cache else found


def require_sendable(config: Config, environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`ConfigError` naming the key when a digest (or a test copy) must not go
    to an SMTP server yet: an example address in its links, or a login without a password.

    The outbox transport only writes files on this machine, so the shipped configuration
    (and the demo) can write messages before these are set.
    """
    if config.mail.transport != "smtp":
        return
    env = os.environ if environ is None else environ
    problems = [_example_problem(key, url) for key, url in _example_urls(config)]
    password = _missing_password(config, env)
    if password is not None:
        problems.append(password)
    if problems:
        raise ConfigError("; ".join(problems) + "; nothing was sent")
