"""The web half of ``iomfeed doctor``: the one-click unsubscribe URL answers an RFC 8058
POST with 200 and no redirect, and the feeds' public URLs answer 200 with their content
types. One request each, redirects never followed, certificates checked, bodies read no
further than a few kilobytes.

The unsubscribe POST carries a *probe token* (:func:`iomfeed.digest.unsubscribe.probe_token`):
signed with the list's secret, naming no subscriber, so iomfeed's server answers it 200 and
changes nothing, and a server run with another secret refuses it. Nobody is unsubscribed.
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from .records import Check, fail, ok, warn
from .relay import tls_reason

TIMEOUT = 15.0
_READ = 64 * 1024

#: the files ``publish`` writes at the root of site.public_url, and the content types a
#: reader expects of them; the second set is tolerated with a warning
FEEDS = {
    "atom.xml": (("application/atom+xml",), ("application/xml", "text/xml")),
    "rss.xml": (("application/rss+xml",), ("application/xml", "text/xml")),
    "feed.json": (("application/feed+json",), ("application/json",)),
    "index.html": (("text/html",), ()),
}


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    location: str
    body: bytes


def request(
    url: str, method: str = "GET", body: bytes = b"", headers: dict[str, str] | None = None
) -> Answer:
    """One request, no redirect followed; OSError / HTTPException / ssl errors propagate."""
    parts = urlsplit(url)
    port = parts.port
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "", port, timeout=TIMEOUT, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", port, timeout=TIMEOUT)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(
            method,
            path,
            body=body or None,
            headers={"User-Agent": "iomfeed-doctor", **(headers or {})},
        )
        response = connection.getresponse()
        data = response.read(_READ)
        return Answer(
            response.status,
            response.getheader("Content-Type", "") or "",
            response.getheader("Location", "") or "",
            data,
        )
    finally:
        connection.close()


def _unreachable(url: str, exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        reason = tls_reason(exc)
        return f"{url}: TLS failed: {reason}"
    return f"{url}: no answer: {exc}"


def check_unsubscribe(url: str) -> Check:
    """``url``: the unsubscribe link with the probe token, as a digest's header has it."""
    name = "one-click unsubscribe"
    shown = url.split("?", 1)[0]
    try:
        answer = request(
            url,
            "POST",
            b"List-Unsubscribe=One-Click",
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return fail(
            name,
            _unreachable(shown, exc),
            "serve /unsubscribe at that address (iomfeed serve behind your web server), or"
            " fix mail.unsubscribe_url",
        )
    if 300 <= answer.status < 400:
        return fail(
            name,
            f"{shown} answered the one-click POST with {answer.status}, a redirect to"
            f" {answer.location or '?'}: mailbox providers do not follow it (RFC 8058)",
            "point mail.unsubscribe_url (or site.public_url) at the final address, so that"
            " it answers itself",
        )
    if answer.status != 200:
        return fail(
            name,
            f"{shown} answered the one-click POST with {answer.status} instead of 200",
            "if this is iomfeed's server, it runs an older iomfeed or another secret"
            " (mail.secret_env) or database than this configuration; otherwise make the"
            " handler at that address answer 200 to POST List-Unsubscribe=One-Click",
        )
    return ok(
        name,
        f"{shown} answered the one-click POST (a probe token: nobody unsubscribed) with 200,"
        " no redirect",
    )


def check_feeds(public_url: str) -> list[Check]:
    return [_check_feed(name, urljoin(public_url, name)) for name in FEEDS]


def _check_feed(name: str, url: str) -> Check:
    label = f"public {name}"
    good, tolerated = FEEDS[name]
    try:
        answer = request(url)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return fail(label, _unreachable(url, exc), _SERVE_FIX)
    kind = answer.content_type.split(";", 1)[0].strip().lower()
    if answer.status != 200:
        where = f" (to {answer.location})" if answer.location else ""
        return fail(label, f"{url} answered {answer.status}{where}", _SERVE_FIX)
    if kind in good:
        return ok(label, f"{url}: 200, {kind}")
    if kind in tolerated:
        return warn(
            label,
            f"{url}: 200, but {kind} rather than {good[0]}: most readers cope, some do not",
            f"serve {name} as {good[0]} (iomfeed serve does; a web server needs the type"
            " configured)",
        )
    return fail(
        label,
        f"{url}: 200, but {kind or 'no content type'} instead of {good[0]}",
        f"serve {name} as {good[0]}",
    )


_SERVE_FIX = (
    "serve the publish.folder at site.public_url (iomfeed serve, or your web server), run"
    " iomfeed publish, or fix site.public_url"
)
