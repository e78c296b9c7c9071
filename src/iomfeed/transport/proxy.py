"""Proxies from the environment, read when the real transport is made (and only imported
when one of the variables is set, so a cron run without a proxy does not pay for it).

``http_proxy``/``HTTP_PROXY`` for http URLs, ``https_proxy``/``HTTPS_PROXY`` for https URLs
(tunnelled with CONNECT), ``no_proxy``/``NO_PROXY`` for hosts reached directly. The lower-case
name wins when both are set, as in curl and urllib; ``HTTP_PROXY`` is ignored when
``REQUEST_METHOD`` is set (CGI, "httpoxy"). A user and password in the proxy URL are sent as
``Proxy-Authorization: Basic``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from . import ProxyError

__all__ = ["Proxy", "ProxySettings", "parse_proxy", "proxies_from_environment"]


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy: where it is, its credentials (if any) and the variable that named it."""

    host: str
    port: int
    variable: str
    authorization: str | None = None  # the whole Proxy-Authorization value

    def __str__(self) -> str:
        return f"{self.host}:{self.port} (from {self.variable})"


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """The proxies of the environment: one per URL scheme, and the hosts that bypass them."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: str = ""

    def for_url(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or not self.no_proxy:
            return proxy
        # Undocumented but stable since Python 3.0 (typeshed leaves it out), and the same
        # matching urllib itself does; imported only for a proxy with NO_PROXY set.
        from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

        # With the port always given, "host:port" entries match default ports too.
        name = f"[{host}]" if ":" in host else host
        if bool(proxy_bypass_environment(f"{name}:{port}", {"no": self.no_proxy})):
            return None
        if "/" in self.no_proxy and _in_networks(host, self.no_proxy):
            return None
        return proxy


def _in_networks(host: str, no_proxy: str) -> bool:
    """Whether ``host``, an IP address, is in one of the networks (CIDR: ``10.0.0.0/8``,
    ``fd00::/8``) that ``no_proxy`` lists, as curl and Go read them; urllib's matching
    knows host names and suffixes only."""
    import ipaddress

    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a host name: matched by name only
    for entry in no_proxy.split(","):
        entry = entry.strip()
        if "/" not in entry:
            continue
        try:
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            continue
        if address.version == network.version and address in network:
            return True
    return False


def _environment_value(environ: Mapping[str, str], lower: str) -> tuple[str, str] | None:
    """(variable name, value) of ``lower`` or its upper-case twin; lower case wins, and a
    set but empty lower-case variable turns the proxy off."""
    if lower in environ:
        value = environ[lower].strip()
        return (lower, value) if value else None
    upper = lower.upper()
    if upper == "HTTP_PROXY" and "REQUEST_METHOD" in environ:
        return None  # a CGI request header could have set it ("httpoxy")
    value = environ.get(upper, "").strip()
    return (upper, value) if value else None


def parse_proxy(variable: str, value: str) -> Proxy:
    """A proxy URL such as ``http://user:secret@proxy.example:3128``; ``proxy:3128`` means
    http. Raises :class:`~iomfeed.errors.ConfigError` naming the variable when it is not
    usable (no guessing: a proxy ignored would send the requests past it)."""
    from ..errors import ConfigError

    url = value if "://" in value else f"http://{value}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{variable}={value!r}: not a proxy URL ({exc})") from None
    if parts.scheme != "http":
        raise ConfigError(
            f"{variable}={value!r}: only http:// proxies are supported"
            f" (https URLs go through them with CONNECT)"
        )
    if not parts.hostname:
        raise ConfigError(f"{variable}={value!r}: the proxy URL names no host")
    authorization = None
    if parts.username is not None:
        import base64

        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    return Proxy(parts.hostname, port or 80, variable, authorization)


def proxies_from_environment(environ: Mapping[str, str] | None = None) -> ProxySettings:
    """The proxy settings of ``environ`` (the process environment by default)."""
    env = os.environ if environ is None else environ
    found: dict[str, Proxy | None] = {}
    for scheme in ("http", "https"):
        named = _environment_value(env, f"{scheme}_proxy")
        found[scheme] = parse_proxy(*named) if named else None
    no_proxy = _environment_value(env, "no_proxy")
    return ProxySettings(found["http"], found["https"], no_proxy[1] if no_proxy else "")


def proxy_error(proxy: Proxy, exc: OSError) -> OSError | ProxyError:
    """The failure to reach a site through ``proxy``, said with the proxy's name."""
    import ssl

    if isinstance(exc, ssl.SSLError | TimeoutError):
        return exc  # the tunnel was up: the site's TLS, or slowness, is not the proxy's fault
    text = str(exc)
    if text.startswith("Tunnel connection failed: "):
        answer = text.removeprefix("Tunnel connection failed: ")
        code = answer[:3]
        return ProxyError(
            f"proxy {proxy} refused the tunnel: {answer}",
            permanent=code.isdigit() and 400 <= int(code) < 500,
        )
    if isinstance(exc, ConnectionRefusedError):
        return ProxyError(f"proxy {proxy} refused the connection")
    return ProxyError(f"proxy {proxy} not reachable: {type(exc).__name__}: {exc}")
