"""The relay half of ``iomfeed doctor``: the SMTP relay offers TLS as ``mail.smtp.security``
says (STARTTLS, or TLS from the first byte) with a certificate valid for its name, and the
configured login works. It says EHLO, STARTTLS, AUTH and QUIT: never MAIL, so nothing is
sent.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from ..config import SmtpConfig
from ..preflight import is_loopback_host
from .records import Check, fail, ok, skip, warn

#: a certificate that expires sooner than this many days gets a warning
EXPIRY_WARN_DAYS = 14


def tls_reason(exc: ssl.SSLError) -> str:
    """Why a TLS handshake failed, in words: a certificate's fault first."""
    verify = getattr(exc, "verify_message", "")
    if verify:
        return f"the certificate is not valid: {verify}"
    return str(exc.reason or exc)


def _context(ca_file: Path | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def _connect(cfg: SmtpConfig, ca_file: Path | None) -> smtplib.SMTP:
    if cfg.security == "tls":
        return smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=_context(ca_file))
    return smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)


def _certificate(smtp: smtplib.SMTP, now: datetime) -> tuple[str, int]:
    """(who issued it and until when, days left) of the relay's certificate."""
    sock = smtp.sock
    cert = sock.getpeercert() if isinstance(sock, ssl.SSLSocket) else None
    if not cert:
        return "", 999_999
    issuer = dict(pair for rdn in cert.get("issuer", ()) for pair in rdn)  # type: ignore[misc]
    until = datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), UTC)
    days = (until - now).days
    who = issuer.get("organizationName") or issuer.get("commonName", "?")
    return f"issued by {who}, valid until {until:%Y-%m-%d}", days


def check_relay(
    cfg: SmtpConfig, environ: Mapping[str, str], ca_file: Path | None, now: datetime
) -> tuple[Check, Check]:
    """(the TLS check, the login check)."""
    where = f"{cfg.host}:{cfg.port}"
    try:
        smtp = _connect(cfg, ca_file)
    except ssl.SSLError as exc:
        return _tls_failed(where, exc, cfg), skip("relay login", "not tried: TLS failed")
    except (OSError, smtplib.SMTPException) as exc:
        found = f"cannot connect to the relay {where}: {exc}"
        return (
            fail("relay TLS", found, "check mail.smtp.host and mail.smtp.port"),
            skip("relay login", "not tried: no connection"),
        )
    try:
        tls = _tls(smtp, cfg, where, ca_file, now)
        if tls.status.value == "fail":
            return tls, skip("relay login", "not tried: TLS failed")
        return tls, _login(smtp, cfg, environ, where)
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _tls_failed(where: str, exc: ssl.SSLError, cfg: SmtpConfig) -> Check:
    reason = tls_reason(exc)
    return fail(
        "relay TLS",
        f"{where}: TLS failed: {reason}",
        "the relay needs a certificate valid for the name mail.smtp.host gives"
        f" ({cfg.host}), from an authority this machine trusts (or name that authority's"
        " certificate in mail.smtp.ca_file)",
    )


def _tls(
    smtp: smtplib.SMTP, cfg: SmtpConfig, where: str, ca_file: Path | None, now: datetime
) -> Check:
    smtp.ehlo()
    if cfg.security == "starttls":
        if not smtp.has_extn("starttls"):
            return fail(
                "relay TLS",
                f"{where} does not offer STARTTLS: the password and the digests would cross"
                " the network unencrypted",
                "use the relay's submission port with STARTTLS (587), or implicit TLS (465,"
                ' mail.smtp.security = "tls")',
            )
        try:
            smtp.starttls(context=_context(ca_file))
        except ssl.SSLError as exc:
            return _tls_failed(where, exc, cfg)
        smtp.ehlo()
    elif cfg.security == "none":
        if is_loopback_host(cfg.host):
            return ok("relay TLS", f"{where} is on this machine: no TLS needed")
        return warn(
            "relay TLS",
            f'{where}: mail.smtp.security = "none": the password and the digests cross the'
            " network unencrypted",
            'set mail.smtp.security = "starttls" (port 587) or "tls" (port 465)',
        )
    how = "STARTTLS" if cfg.security == "starttls" else "implicit TLS"
    issued, days = _certificate(smtp, now)
    found = f"{where} offers {how} with a certificate valid for {cfg.host} ({issued})"
    if days < EXPIRY_WARN_DAYS:
        return warn(
            "relay TLS", f"{found}: it expires in {days} day(s)", "ask for it to be renewed"
        )
    return ok("relay TLS", found)


def _login(smtp: smtplib.SMTP, cfg: SmtpConfig, environ: Mapping[str, str], where: str) -> Check:
    if not cfg.username:
        return ok(
            "relay login",
            f"no login configured (mail.smtp.username is empty): {where} must take mail"
            " from this machine without one",
        )
    password = environ.get(cfg.password_env, "")
    if not password:
        return fail(
            "relay login",
            f"the environment variable {cfg.password_env} (mail.smtp.password_env) is not"
            f" set: no password for {cfg.username!r}",
            f"set {cfg.password_env} in the environment iomfeed runs in",
        )
    try:
        smtp.login(cfg.username, password)
    except smtplib.SMTPAuthenticationError as exc:
        reply = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return fail(
            "relay login",
            f"{where} refused the login of {cfg.username!r}: {exc.smtp_code} {reply}",
            f"check mail.smtp.username and the password in {cfg.password_env}",
        )
    except smtplib.SMTPNotSupportedError:
        return fail(
            "relay login",
            f"{where} offers no login (AUTH) on this connection",
            "check mail.smtp.port and mail.smtp.security: relays offer AUTH on the"
            " submission port, after TLS",
        )
    except (UnicodeEncodeError, smtplib.SMTPException) as exc:
        return fail("relay login", f"{where}: the login failed: {exc}", "check mail.smtp.username")
    return ok("relay login", f"{where} accepted the login of {cfg.username!r}")
