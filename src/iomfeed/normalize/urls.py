"""Canonical URLs: the one address of a page, so its variants dedupe to one item.

Pure functions only, no network. :class:`Origin` names a site whose http and https addresses
are one; :func:`canonical_url` is the dedup key sources and the store rely on.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: Query parameters that only track the reader; they never change what a page shows.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "vero_id",
        "oly_anon_id",
        "oly_enc_id",
        "rb_clickid",
        "s_cid",
        "ref_src",
        "ncid",
        "srsltid",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "hsa_")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT_RE = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _is_tracking(key: str) -> bool:
    k = key.lower()
    return k in TRACKING_PARAMS or k.startswith(_TRACKING_PREFIXES)


def _fix_escapes(text: str) -> str:
    """Decode escapes of unreserved characters and upper-case the others (RFC 3986 6.2.2)."""

    def repl(m: re.Match[str]) -> str:
        ch = chr(int(m.group(0)[1:], 16))
        return ch if ch in _UNRESERVED else m.group(0).upper()

    return _PERCENT_RE.sub(repl, text)


def _remove_dot_segments(path: str) -> str:
    if "." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def _origin_key(scheme: str, host: str, port: int | None) -> tuple[str, int | None]:
    return host, (None if port == _DEFAULT_PORTS.get(scheme) else port)


@dataclasses.dataclass(frozen=True, slots=True)
class Origin:
    """A site iomfeed knows, whose http and https addresses are one and the same."""

    scheme: str
    host: str
    port: int | None

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".")
        _h, port = _origin_key(scheme, host, parts.port)
        return cls(scheme, host, port)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def canonical_url(url: str, origins: Sequence[Origin] = ()) -> str:
    """The one address that identifies a page, so its variants dedupe to one item.

    Lower-case scheme and host, no default port, no fragment, no tracking parameters, a sorted
    query, normalised escapes and dot segments, the Drupal ``/index.php/`` alias folded. A URL
    on one of ``origins`` takes that origin's scheme (the site serves http and https alike);
    any other http URL is upgraded to https.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return url.strip()
    host = parts.hostname.rstrip(".")
    key = _origin_key(scheme, host, port)
    for origin in origins:
        if origin.host == host and (key[1] is None or key[1] == origin.port):
            scheme, netloc = origin.scheme, origin.netloc
            break
    else:
        if scheme == "http" and key[1] is None:
            scheme = "https"
        bracketed = f"[{host}]" if ":" in host else host
        netloc = bracketed if key[1] is None else f"{bracketed}:{key[1]}"
        if parts.username:
            userinfo = parts.username + (f":{parts.password}" if parts.password else "")
            netloc = f"{userinfo}@{netloc}"
    path = _remove_dot_segments(_fix_escapes(parts.path or "/"))
    if path == "/index.php":
        path = "/"
    elif path.startswith("/index.php/"):
        path = path[len("/index.php") :]
    query_pairs = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    ]
    query = urlencode(sorted(query_pairs))
    return urlunsplit((scheme, netloc, path, query, ""))


def is_web_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) address (not ``javascript:``, ``mailto:`` ...)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def same_site(url: str, origins: Sequence[Origin]) -> bool:
    try:
        o = Origin.of(url)
    except ValueError:
        return False
    return any(o.host == k.host for k in origins)
